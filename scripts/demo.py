#!/usr/bin/env python3
"""End-to-end demo: portrait -> backend -> Blender add-on -> turntable renders, GIF and .blend.

    python scripts/demo.py [PORTRAIT] [--out out] [--views 24] [--resolution 512]

Starts the backend on a free loopback port, runs headless Blender (bpy) with its user folders in a
temp dir, installs and enables dist/headlift-<version>.zip exactly as a user would, clicks
Reconstruct, renders the turntable with Workbench and writes:
    out/turntable/frame_###.png  out/contact_sheet.png  out/turntable.gif  out/head.blend
Without PORTRAIT it uses scikit-image's astronaut photo (public domain, ships with the wheel).
scripts/demo.sh also runs setup.sh and builds the zip first.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tomllib
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
sys.path.insert(0, str(SCRIPTS))

import blender_session  # noqa: E402  (sets Blender's folders, so it must come before bpy)
import media  # noqa: E402
from backend_process import BackendProcess  # noqa: E402


def log(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


class ExistingBackend:
    """A backend someone else started: used as is, left running."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint, self.log = endpoint, []

    def __enter__(self) -> "ExistingBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def default_portrait(tmp: Path) -> Path:
    from PIL import Image
    from skimage import data

    path = tmp / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


def default_zip() -> Path:
    version = tomllib.loads((ROOT / "blender_addon" / "blender_manifest.toml").read_text())["version"]
    return ROOT / "dist" / f"headlift-{version}.zip"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("portrait", nargs="?", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "out")
    parser.add_argument("--zip", type=Path, default=None, help="add-on zip (default dist/headlift-<version>.zip)")
    parser.add_argument("--views", type=int, default=24)
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--engine", choices=("workbench", "cycles"), default="workbench",
                        help="workbench: about a second per view; cycles: soft lights, a few seconds")
    parser.add_argument("--address", help="use the backend already listening here instead of starting one")
    args = parser.parse_args(argv)
    zip_path = args.zip or default_zip()
    if not zip_path.exists():
        parser.error(f"{zip_path} not found: run scripts/build_addon.py (or scripts/demo.sh)")

    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="headlift-demo-"))
    portrait = args.portrait.resolve() if args.portrait else default_portrait(tmp)
    out = args.out.resolve()
    frames_dir = out / "turntable"
    frames_dir.mkdir(parents=True, exist_ok=True)
    for stale in frames_dir.glob("frame_*.png"):
        stale.unlink()

    blender_session.isolate_user_dirs(tmp / "blender")
    log(f"portrait {portrait}")
    with (ExistingBackend(args.address) if args.address else BackendProcess()) as backend:
        log(f"backend ready at {backend.endpoint}")
        import bpy

        blender_session.install_addon(zip_path)
        log(f"installed {zip_path.name} into a fresh Blender {bpy.app.version_string} profile")
        # An empty stage: the turntable brings its own camera and lights.
        bpy.data.batch_remove(list(bpy.data.objects))
        blender_session.configure(address=backend.endpoint, image=portrait)

        t0 = time.monotonic()
        try:
            blender_session.reconstruct()
        except RuntimeError as exc:
            log(f"Reconstruct failed: {exc}".rstrip())
            log("backend log tail:\n" + "\n".join(backend.log[-15:]))
            return 1
        head = bpy.context.view_layer.objects.active
        log(f"reconstructed '{head.name}' in {time.monotonic() - t0:.1f} s: "
            f"{len(head.data.vertices)} vertices, {len(head.data.polygons)} faces, "
            f"texture {tuple(head.active_material.node_tree.nodes['Headlift Texture'].image.size)}")

    scene = bpy.context.scene
    if args.engine == "cycles":
        blender_session.use_cycles(scene, args.resolution)
    else:
        blender_session.use_workbench(scene, args.resolution)
    t0 = time.monotonic()
    frames = blender_session.render_turntable(head, frames_dir, args.views)
    log(f"rendered {len(frames)} views in {time.monotonic() - t0:.1f} s -> {frames_dir}")
    log(f"wrote {media.contact_sheet(frames, out / 'contact_sheet.png')}")
    log(f"wrote {media.turntable_gif(frames, out / 'turntable.gif')}")
    scene.frame_set(scene.frame_start)
    bpy.ops.wm.save_as_mainfile(filepath=str(out / "head.blend"))
    log(f"wrote {out / 'head.blend'}")
    log(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
