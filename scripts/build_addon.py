#!/usr/bin/env python3
"""Build the Blender extension zip: dist/headlift-<version>.zip.

Contents (at the zip root, as Blender's own `extension build` lays them out):
    blender_manifest.toml   from blender_addon/, its `wheels` and `platforms` set to what was fetched
    *.py                    the add-on (blender_addon/)
    shared/                 the repo's wire protocol package, imported as `headlift.shared`
    wheels/                 pyzmq wheels for desktop Blender's platforms (CPython 3.11)

Wheels are cached in dist/wheels/, so a rebuild needs no network. A platform whose wheel cannot be
fetched is left out (with a warning) and the zip is still built for the rest.

    python scripts/build_addon.py [--offline] [--out DIR] [--no-validate]
"""
from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ADDON_DIR = ROOT / "blender_addon"
SHARED_DIR = ROOT / "shared"
MANIFEST = "blender_manifest.toml"
PYTHON_VERSION = "3.11"  # Blender 4.2 to 5.0 all embed CPython 3.11
FALLBACK_PYZMQ = "27.3.0"

# Blender platform -> pip --platform tags to ask for (newest first).
PIP_PLATFORMS: dict[str, list[str]] = {
    "linux-x64": ["manylinux_2_28_x86_64", "manylinux2014_x86_64"],
    "macos-arm64": ["macosx_11_0_arm64"],
    "macos-x64": ["macosx_10_15_x86_64"],
    "windows-x64": ["win_amd64"],
}
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same sources give the same zip


def log(msg: str) -> None:
    print(f"[build_addon] {msg}", file=sys.stderr)


def pyzmq_version() -> str:
    """The version pinned in requirements.txt, so the add-on ships what the backend was tested with."""
    req = ROOT / "requirements.txt"
    if req.exists():
        match = re.search(r"^pyzmq==([\w.]+)\s*$", req.read_text(), re.M)
        if match:
            return match.group(1)
    return FALLBACK_PYZMQ


def wheel_platforms(filename: str) -> set[str]:
    """Blender platforms a wheel file serves, from its platform tag (universal2 serves both Macs)."""
    tags = filename[:-len(".whl")].split("-")[-1].split(".")
    platforms: set[str] = set()
    for tag in tags:
        if "linux" in tag and tag.endswith("x86_64"):
            platforms.add("linux-x64")
        elif tag.startswith("macosx") and tag.endswith("universal2"):
            platforms |= {"macos-arm64", "macos-x64"}
        elif tag.startswith("macosx") and tag.endswith("arm64"):
            platforms.add("macos-arm64")
        elif tag.startswith("macosx") and tag.endswith("x86_64"):
            platforms.add("macos-x64")
        elif tag == "win_amd64":
            platforms.add("windows-x64")
    return platforms


def cached_wheel(cache: Path, version: str, platform: str) -> Path | None:
    abi = "cp" + PYTHON_VERSION.replace(".", "")
    for path in sorted(cache.glob(f"pyzmq-{version}-{abi}-{abi}-*.whl")):
        if platform in wheel_platforms(path.name):
            return path
    return None


def fetch_wheels(cache: Path, version: str, offline: bool) -> dict[str, Path]:
    """Blender platform -> wheel path, for every platform whose wheel is cached or downloadable."""
    cache.mkdir(parents=True, exist_ok=True)
    found: dict[str, Path] = {}
    for platform, pip_tags in PIP_PLATFORMS.items():
        wheel = cached_wheel(cache, version, platform)
        if wheel is None and not offline:
            cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                   "--only-binary=:all:", "--no-deps", "--python-version", PYTHON_VERSION,
                   *(arg for tag in pip_tags for arg in ("--platform", tag)),
                   "--dest", str(cache), f"pyzmq=={version}"]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
                log(f"WARNING: no pyzmq {version} wheel for {platform}: {last}")
            wheel = cached_wheel(cache, version, platform)
        if wheel is None:
            log(f"WARNING: building without {platform}: its pyzmq wheel is not available")
        else:
            found[platform] = wheel
    return found


def manifest_text(platform_wheels: dict[str, Path]) -> str:
    """The source manifest with `platforms` and `wheels` set to what this build ships."""
    text = (ADDON_DIR / MANIFEST).read_text()
    platforms = [p for p in PIP_PLATFORMS if p in platform_wheels]
    wheels = sorted({f"./wheels/{w.name}" for w in platform_wheels.values()})

    def toml_list(key: str, items: list[str]) -> str:
        body = "".join(f'  "{item}",\n' for item in items)
        return f"{key} = [\n{body}]"

    for key, items in (("platforms", platforms), ("wheels", wheels)):
        pattern = re.compile(rf"^{key}\s*=\s*\[.*?\]", re.S | re.M)
        if not pattern.search(text):
            raise SystemExit(f"{MANIFEST} has no '{key} = [...]' to fill in")
        if items:
            text = pattern.sub(lambda _m: toml_list(key, items), text, count=1)
        else:
            # No wheels at all: the add-on then relies on a pyzmq that Blender already has.
            text = pattern.sub("", text, count=1)
    tomllib.loads(text)  # fail here, not in Blender, if the rewrite broke the TOML
    return text


def source_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def write_zip(zip_path: Path, manifest: str, platform_wheels: dict[str, Path]) -> None:
    entries: list[tuple[str, bytes]] = [(MANIFEST, manifest.encode())]
    entries += [(p.relative_to(ADDON_DIR).as_posix(), p.read_bytes()) for p in source_files(ADDON_DIR)]
    entries += [("shared/" + p.relative_to(SHARED_DIR).as_posix(), p.read_bytes())
                for p in source_files(SHARED_DIR)]
    for wheel in sorted(set(platform_wheels.values())):
        entries.append((f"wheels/{wheel.name}", wheel.read_bytes()))

    zip_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = zip_path.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    tmp.replace(zip_path)


def blender_ext_cli() -> Path | None:
    """Blender's own extension CLI (blender_ext.py) inside the bpy package, without importing bpy."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        hits = sorted(Path(location).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if hits:
            return hits[-1]
    return None


def validate(zip_path: Path) -> None:
    cli = blender_ext_cli()
    if cli is None:
        log("bpy not found: checked the manifest parses, skipped Blender's `extension validate`")
        return
    proc = subprocess.run([sys.executable, str(cli), "validate", str(zip_path)],
                          capture_output=True, text=True)
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        raise SystemExit(f"Blender's extension validate rejected {zip_path}:\n{output}")
    log(f"validated by Blender: {output.splitlines()[-1] if output else 'ok'}")


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default dist/)")
    parser.add_argument("--wheel-cache", type=Path, default=ROOT / "dist" / "wheels")
    parser.add_argument("--offline", action="store_true", help="use cached wheels only")
    parser.add_argument("--no-validate", action="store_true")
    args = parser.parse_args(argv)

    version = tomllib.loads((ADDON_DIR / MANIFEST).read_text())["version"]
    platform_wheels = fetch_wheels(args.wheel_cache, pyzmq_version(), args.offline)
    zip_path = args.out / f"headlift-{version}.zip"
    write_zip(zip_path, manifest_text(platform_wheels), platform_wheels)
    if not args.no_validate:
        validate(zip_path)
    log(f"built {zip_path} ({zip_path.stat().st_size // 1024} KiB; "
        f"platforms: {', '.join(sorted(platform_wheels)) or 'none'})")
    print(zip_path)
    return zip_path


if __name__ == "__main__":
    main()
