"""Turning rendered frames into things people look at: a labelled contact sheet and a GIF. No bpy."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def contact_sheet(frames: list[tuple[float, Path]], out_path: Path, columns: int = 6,
                  tile_px: int = 256) -> Path:
    """Grid of all views, each labelled with its yaw, in view order."""
    columns = max(1, min(columns, len(frames)))
    rows = math.ceil(len(frames) / columns)
    label_px = max(14, tile_px // 12)
    sheet = Image.new("RGB", (columns * tile_px, rows * (tile_px + label_px + 6)), (24, 24, 28))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=label_px)
    for i, (yaw, path) in enumerate(frames):
        x, y = (i % columns) * tile_px, (i // columns) * (tile_px + label_px + 6)
        tile = Image.open(path).convert("RGB").resize((tile_px, tile_px), Image.LANCZOS)
        sheet.paste(tile, (x, y))
        draw.text((x + tile_px // 2, y + tile_px + 3), f"yaw {yaw:g}°", fill=(230, 230, 230),
                  font=font, anchor="mt")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_path)
    return out_path


def turntable_gif(frames: list[tuple[float, Path]], out_path: Path, size_px: int = 320,
                  seconds_per_turn: float = 3.0) -> Path:
    """Looping GIF of the views in order."""
    import imageio.v3 as iio

    images = [np.asarray(Image.open(path).convert("RGB").resize((size_px, size_px), Image.LANCZOS))
              for _, path in frames]
    frame_ms = 1000.0 * seconds_per_turn / max(1, len(images))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(out_path, np.stack(images), extension=".gif", duration=frame_ms, loop=0)
    return out_path
