"""Writing short test videos (the driving tests make clips of real frames, noise or black)."""
from __future__ import annotations

from pathlib import Path

import imageio_ffmpeg
import numpy as np


def write_video(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """frames: (H, W, 3) uint8 each -> an H.264 .mp4 at ``path``."""
    h, w = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, macro_block_size=1,
                                         ffmpeg_log_level="error")
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame, np.uint8).tobytes())
    writer.close()
    return path
