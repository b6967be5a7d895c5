#!/usr/bin/env python3
"""End-to-end demo: portrait -> backend -> Blender add-on -> turntable renders, GIF and .blend.

    python scripts/demo.py [PORTRAIT] [--out out] [--views 24] [--resolution 512]

Starts the backend on a free loopback port, runs headless Blender (bpy) with its user folders in a
temp dir, installs and enables dist/headlift-<version>.zip exactly as a user would, clicks
Reconstruct, renders the turntable with Workbench, then keys a short take on the head's sliders (a
head turn and nod, plus an expression when the head has one), presses Bake Animation and renders
the baked clip. Writes:
    out/turntable/frame_###.png  out/contact_sheet.png  out/turntable.gif
    out/clip/frame_###.png  out/clip_strip.png  out/clip.gif
    out/head.blend  out/headlift_cache/*.pc2 (the bake, read by the head's Mesh Cache modifier)
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
    parser.add_argument("--clip-frames", type=int, default=36,
                        help="length of the animated clip (0: no clip)")
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
    clip_dir = out / "clip"
    for folder in (frames_dir, clip_dir):
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("frame_*.png"):
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
        # Saved first, so the bake's point cache lands beside the .blend (out/headlift_cache/).
        bpy.context.preferences.filepaths.save_version = 0  # no head.blend1 from the final save
        bpy.ops.wm.save_as_mainfile(filepath=str(out / "head.blend"))
        clip = None
        if args.clip_frames > 0:
            clip = key_and_bake_clip(head, args.clip_frames)
            if clip is None:
                return 1

    scene = bpy.context.scene
    if args.engine == "cycles":
        blender_session.use_cycles(scene, args.resolution)
    else:
        blender_session.use_workbench(scene, args.resolution)
    t0 = time.monotonic()
    frames = blender_session.render_turntable(head, frames_dir, args.views)
    rig = bpy.data.objects.get("Headlift Turntable")
    log(f"rendered {len(frames)} views in {time.monotonic() - t0:.1f} s -> {frames_dir}")
    log(f"wrote {media.contact_sheet(frames, out / 'contact_sheet.png')}")
    log(f"wrote {media.turntable_gif(frames, out / 'turntable.gif')}")
    if clip is not None:
        render_clip(scene, rig, clip, clip_dir, out)
    scene.frame_set(scene.frame_start)
    bpy.ops.wm.save_as_mainfile(filepath=str(out / "head.blend"))
    log(f"wrote {out / 'head.blend'}")
    log(f"done in {time.monotonic() - started:.0f} s")
    return 0


CLIP_START = 101  # after the turntable's frames, so both live in one .blend


def key_and_bake_clip(head, n_frames: int) -> tuple[int, int] | None:
    """Key a head turn with a nod (and a smile / open jaw where the head has those shapes) on the
    Headlift sliders, then Bake Animation; returns the clip's frame range, None on failure."""
    import bpy

    controls = head.headlift_anim
    supported = set(head.get("headlift_expressions", []))
    expressions = [n for n in ("jawOpen", "mouthSmileLeft", "mouthSmileRight", "browInnerUp")
                   if n in supported]
    first, last = CLIP_START, CLIP_START + n_frames - 1
    # (fraction of the clip, head yaw, head pitch, neck yaw, expression weight)
    beats = ((0.0, 0.0, 0.0, 0.0, 0.0), (0.35, 0.55, 0.12, 0.15, 1.0),
             (0.75, -0.45, -0.08, -0.12, 0.6), (1.0, 0.0, 0.0, 0.0, 0.0))
    for fraction, yaw, pitch, neck_yaw, weight in beats:
        frame = round(first + fraction * (last - first))
        controls.head = (pitch, 0.0, yaw)
        controls.neck = (0.0, 0.0, neck_yaw)
        head.keyframe_insert("headlift_anim.head", frame=frame)
        head.keyframe_insert("headlift_anim.neck", frame=frame)
        for name in expressions:
            setattr(controls, name, weight)
            head.keyframe_insert(f"headlift_anim.{name}", frame=frame)
    t0 = time.monotonic()
    try:
        bpy.ops.headlift.bake_animation('EXEC_DEFAULT', use_scene_range=False,
                                        frame_start=first, frame_end=last)
    except RuntimeError as exc:
        log(f"Bake Animation failed: {exc}".rstrip())
        return None
    log(f"keyed head turn + nod{' + ' + ', '.join(expressions) if expressions else ''} "
        f"(head has {len(supported)} expression shapes); baked frames {first}-{last} in "
        f"{time.monotonic() - t0:.1f} s -> {head['headlift_bake']['path']}")
    return first, last


def render_clip(scene, rig, clip: tuple[int, int], clip_dir: Path, out: Path) -> None:
    """Render the baked clip from the front (the turntable's camera, held at yaw 0)."""
    import bpy
    from PIL import Image

    first, last = clip
    if rig is not None:  # hold the orbit at the front view for the clip's frames
        rig.rotation_euler[2] = 0.0
        rig.keyframe_insert("rotation_euler", index=2, frame=first - 1)
    paths = []
    t0 = time.monotonic()
    for frame in range(first, last + 1):
        scene.frame_set(frame)
        path = clip_dir / f"frame_{frame - first:03d}.png"
        scene.render.filepath = str(path)
        bpy.ops.render.render(write_still=True)
        paths.append((float(frame), path))
    log(f"rendered the {len(paths)}-frame clip in {time.monotonic() - t0:.1f} s -> {clip_dir}")
    fps = scene.render.fps / scene.render.fps_base
    log(f"wrote {media.turntable_gif(paths, out / 'clip.gif', seconds_per_turn=len(paths) / fps)}")
    picks = [paths[round(i * (len(paths) - 1) / 5)][1] for i in range(6)]
    tiles = [Image.open(p).convert("RGB").resize((256, 256), Image.LANCZOS) for p in picks]
    strip = Image.new("RGB", (256 * len(tiles), 256))
    for i, tile in enumerate(tiles):
        strip.paste(tile, (256 * i, 0))
    strip.save(out / "clip_strip.png")
    log(f"wrote {out / 'clip_strip.png'}")


if __name__ == "__main__":
    sys.exit(main())
