"""``python -m backend.cli reconstruct PORTRAIT -o head.glb``: batch reconstruction without Blender.

Several portraits may be given with ``-o`` naming a folder; each head is written as NAME.glb (or
.obj with ``--format obj``). A failure on one portrait is reported and the rest go on.

``python -m backend.cli drive VIDEO -o take.csv [--neutral PHOTO]``: a video of a face (or a folder
of frames) -> ARKit weights and head yaw/pitch/roll per frame, in the Live Link Face CSV layout
(backend/animation/drive.py), so the take also opens in other tools. Frames without a face are bridged and
listed on stderr.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from backend.errors import BackendError
from backend.reconstruct.export import write
from backend.reconstruct.imagefile import decode_image


def _reconstruct_one(portrait: Path, output: Path, texture_size: int) -> list[Path]:
    from backend.reconstruct.pipeline import ReconstructConfig, reconstruct

    image = decode_image(portrait.read_bytes())
    with tqdm(total=100, desc=portrait.name, unit="%", leave=False) as bar:
        def progress(stage: str, fraction: float) -> None:
            bar.set_postfix_str(stage)
            bar.update(round(fraction * 100) - bar.n)

        head = reconstruct(image, ReconstructConfig(texture_size=texture_size), name=portrait.stem,
                           progress=progress)
    for warning in head.warnings:
        print(f"{portrait.name}: warning: {warning}", file=sys.stderr)
    timings = ", ".join(f"{k} {v:.2f}s" for k, v in head.timings_s.items())
    print(f"{portrait.name}: {len(head.verts_m)} vertices, {len(head.faces)} triangles, "
          f"texture {head.texture.shape[0]}²; {timings}", file=sys.stderr)
    return write(head, output)


def _drive(video: Path, output: Path, neutral: Path | None) -> int:
    from backend.animation.drive import drive_from_video
    from shared.animdata import write_live_link_csv

    neutral_px = None
    if neutral is not None:
        from backend.reconstruct.perception import Perceiver
        neutral_px = Perceiver()(decode_image(neutral.read_bytes())).landmarks_px
    with tqdm(total=100, desc=video.name, unit="%", leave=False) as bar:
        def progress(stage: str, fraction: float) -> None:
            bar.set_postfix_str(stage)
            bar.update(round(fraction * 100) - bar.n)

        drive = drive_from_video(video, progress=progress, neutral_px=neutral_px)
    frames = len(drive.weights)
    times = np.arange(frames) / drive.fps
    weights = {name: drive.weights[:, e] for e, name in enumerate(drive.expression_names)}
    output.write_text(write_live_link_csv(times, weights, drive.head_rotation, fps=drive.fps))
    lost = sum(b - a + 1 for a, b in drive.missing)
    print(f"{video.name}: {frames} frames at {drive.fps:g} fps -> {output}", file=sys.stderr)
    if drive.missing:
        spans = ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in drive.missing)
        print(f"{video.name}: no face in {lost} frame(s) ({spans}); bridged from their neighbours",
              file=sys.stderr)
    for warning in drive.warnings:
        print(f"{video.name}: {warning}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.cli", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("reconstruct", help="portrait(s) -> textured head file(s)")
    rec.add_argument("portraits", nargs="+", type=Path)
    rec.add_argument("-o", "--output", type=Path, required=True,
                     help="a .glb/.obj file for one portrait, or a folder for several")
    rec.add_argument("--format", choices=("glb", "obj"), default="glb",
                     help="file format when --output is a folder (default glb)")
    rec.add_argument("--texture-size", type=int, default=2048)
    drv = sub.add_parser("drive", help="video of a face -> Live Link Face CSV of ARKit weights + head angles")
    drv.add_argument("video", type=Path, help=".mp4/.mov (or any ffmpeg-readable video) or a folder of frames")
    drv.add_argument("-o", "--output", type=Path, required=True, help="the .csv to write")
    drv.add_argument("--neutral", type=Path, help="a photo of the actor at rest (default: the take's "
                                                  "own least-activated face)")
    args = parser.parse_args(argv)

    if args.command == "drive":
        try:
            return _drive(args.video, args.output, args.neutral)
        except (BackendError, OSError, ValueError) as exc:
            print(f"{args.video}: error: {exc}", file=sys.stderr)
            return 1

    single = len(args.portraits) == 1 and args.output.suffix.lower() in (".glb", ".obj")
    failures = 0
    for portrait in args.portraits:
        output = args.output if single else args.output / f"{portrait.stem}.{args.format}"
        try:
            for path in _reconstruct_one(portrait, output, args.texture_size):
                print(path)
        except (BackendError, OSError, ValueError) as exc:
            failures += 1
            print(f"{portrait}: error: {exc}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
