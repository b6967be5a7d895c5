"""Contact sheet of a head's expression shapes: `python scripts/expression_sheet.py PORTRAIT --out sheet.png`.

Reconstructs the portrait, then renders the face from the front with the backend's own software
renderer (backend/render/views.py) at rest and with each ARKit shape at weight 1 (and jawOpen with
mouthClose, and with tongueOut), one labelled tile each.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.reconstruct.imagefile import decode_image  # noqa: E402
from backend.reconstruct.pipeline import ReconstructConfig, reconstruct  # noqa: E402
from backend.render.views import front_camera, render_textured  # noqa: E402
from backend.rig import pose_vertices  # noqa: E402
from shared.controls import POSE_JOINTS  # noqa: E402


def sheet(head, tile_px: int = 160, columns: int = 8, view_m: float = 0.17) -> Image.Image:
    """One tile per shape (rest first), the face centred and framed view_m wide."""
    rig = head.rig
    names = list(rig.expression_names)
    tiles = [("rest", {})] + [(n, {n: 1.0}) for n in names]
    # mouthClose only means something over an open jaw (alone it presses the lips into each other).
    if "mouthClose" in names:
        tiles.append(("jawOpen+mouthClose", {"jawOpen": 0.5, "mouthClose": 0.5}))
    if "tongueOut" in names:
        tiles.append(("jawOpen+tongueOut", {"jawOpen": 1.0, "tongueOut": 1.0}))
    weights = np.zeros((len(tiles), len(names)), np.float32)
    for row, (_, w) in enumerate(tiles):
        for name, value in w.items():
            weights[row, names.index(name)] = value
    posed = pose_vertices(rig, head.verts_m, weights, np.zeros((len(tiles), len(POSE_JOINTS), 3), np.float32))
    centre = head.landmarks_m[:468].mean(axis=0)
    camera = front_camera(2 * tile_px, 2 * tile_px / view_m, centre)
    font = ImageFont.load_default(size=12)
    rows = (len(tiles) + columns - 1) // columns
    out = Image.new("RGB", (columns * tile_px, rows * tile_px), (255, 255, 255))
    for k, ((label, _), verts) in enumerate(zip(tiles, posed)):
        rgb = render_textured(verts, head.faces, head.loop_uvs, head.texture, camera).rgb
        tile = Image.fromarray(rgb).resize((tile_px, tile_px), Image.LANCZOS)
        ImageDraw.Draw(tile).text((3, 2), label, fill=(200, 0, 0), font=font)
        out.paste(tile, ((k % columns) * tile_px, (k // columns) * tile_px))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("portrait", type=Path)
    parser.add_argument("--out", type=Path, default=Path("expressions.png"))
    parser.add_argument("--tile", type=int, default=160)
    args = parser.parse_args()
    head = reconstruct(decode_image(args.portrait.read_bytes()), ReconstructConfig(texture_size=1024),
                       name=args.portrait.stem)
    print(f"rig timings: mouth {head.timings_s.get('mouth', 0):.2f} s, rig {head.timings_s['rig']:.2f} s")
    # A 256-colour palette keeps the sheet small enough for the docs.
    sheet(head, args.tile).quantize(colors=256).save(args.out, optimize=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
