"""Frames of a driving video (or a folder of images), read as a stream so memory stays bounded.

Videos are decoded by the ffmpeg binary that ships in the imageio-ffmpeg wheel, one frame at a
time; nothing holds more than the current frame. Length is capped (``FrameConfig.max_seconds``) so a
4-hour file is refused up front with a clear message instead of tying the backend up for hours.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from backend.errors import BadVideoError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


@dataclass
class FrameConfig:
    max_seconds: float = 600.0  # 10 minutes: longer takes are split by the artist
    folder_fps: float = 30.0  # a folder of frames carries no rate of its own
    max_pixels: int = 4096 * 4096
    first_seconds: float | None = None  # use only the start of the take (None: all of it)


@dataclass(frozen=True)
class VideoInfo:
    """fps: frames per second; size: (width, height); frames: count (estimated from the duration
    for videos, exact for folders)."""

    fps: float
    size: tuple[int, int]
    frames: int


def _folder_images(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def probe(path: Path, config: FrameConfig | None = None) -> VideoInfo:
    """What the source holds, checked against the limits. Raises BadVideoError."""
    config = config or FrameConfig()
    path = Path(path)
    if path.is_dir():
        images = _folder_images(path)
        if not images:
            raise BadVideoError(f"{path} holds no image frames ({', '.join(IMAGE_SUFFIXES)})")
        first = _read_image(images[0])
        info = VideoInfo(config.folder_fps, (first.shape[1], first.shape[0]), len(images))
    else:
        meta = _open_video(path)[1]
        fps = float(meta.get("fps") or 0.0)
        duration = float(meta.get("duration") or 0.0)
        if not (fps > 0 and np.isfinite(fps)):
            raise BadVideoError(f"{path.name}: the video has no usable frame rate")
        info = VideoInfo(fps, tuple(int(n) for n in meta["size"]), int(round(duration * fps)))
    if config.first_seconds is not None:
        info = VideoInfo(info.fps, info.size, min(info.frames, int(round(config.first_seconds * info.fps))))
    if info.frames / info.fps > config.max_seconds:
        raise BadVideoError(f"{path.name}: {info.frames / info.fps:.0f} s is longer than the "
                            f"{config.max_seconds:.0f} s a driving take may last; trim it first")
    if info.size[0] * info.size[1] > config.max_pixels:
        raise BadVideoError(f"{path.name}: {info.size[0]}x{info.size[1]} frames are too large")
    return info


def iter_frames(path: Path, config: FrameConfig | None = None) -> Iterator[np.ndarray]:
    """Yield (H, W, 3) uint8 RGB frames in order. Call ``probe`` first for the limits."""
    config = config or FrameConfig()
    path = Path(path)
    info = probe(path, config)
    limit = int(config.max_seconds * max(info.fps, 1.0)) + 1
    if config.first_seconds is not None:
        limit = info.frames
    if path.is_dir():
        for image in _folder_images(path)[:limit]:
            yield _read_image(image)
        return
    reader, meta = _open_video(path)
    width, height = (int(n) for n in meta["size"])
    try:
        for count, raw in enumerate(reader):
            if count >= limit:
                break
            yield np.frombuffer(raw, np.uint8).reshape(height, width, 3)
    finally:
        reader.close()


def _open_video(path: Path):
    import imageio_ffmpeg

    if not path.is_file():
        raise BadVideoError(f"{path} does not exist or is not a file")
    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as exc:
        raise BadVideoError(f"{path.name} is not a video ffmpeg can read") from exc
    if "size" not in meta:
        reader.close()
        raise BadVideoError(f"{path.name} has no video stream")
    return reader, meta


def _read_image(path: Path) -> np.ndarray:
    from backend.reconstruct.imagefile import decode_image

    return decode_image(path.read_bytes())
