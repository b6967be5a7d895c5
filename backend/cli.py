"""``python -m backend.cli reconstruct PORTRAIT -o head.glb``: batch reconstruction without Blender.

Several portraits may be given with ``-o`` naming a folder; each head is written as NAME.glb (or
.obj with ``--format obj``). A failure on one portrait is reported and the rest go on.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from backend.errors import BackendError
from backend.export import write
from backend.imagefile import decode_image


def _reconstruct_one(portrait: Path, output: Path, texture_size: int) -> list[Path]:
    from backend.pipeline import ReconstructConfig, reconstruct

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
    args = parser.parse_args(argv)

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
