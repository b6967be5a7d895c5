"""Encoded image file (bytes) -> (H, W, 3) uint8 RGB, with a pixel limit checked before decoding.

Conversions, so every portrait reaches the pipeline the same way:
- EXIF orientation is applied (phones store portraits sideways and say so in EXIF).
- Transparency (RGBA, LA, palette with a transparent colour) is composited onto WHITE: a cut-out
  portrait then looks like a studio shot, whereas dropping alpha would expose whatever colour the
  encoder left under transparent pixels (often black, sometimes garbage).
- 16/32-bit grey-scale is scaled to 8 bits by its bit depth (65535 -> 255), not clipped.
- Grey-scale, 1-bit, palette, CMYK and YCbCr are converted to RGB. Animated files: first frame.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from backend.errors import BadImageError, ImageTooLargeError

WHITE = (255, 255, 255, 255)


@dataclass(frozen=True)
class ImageLimits:
    """max_pixels: width * height allowed (40 MP: a 50 MP phone photo must be scaled down first).
    Pillow's own bomb guard (about 179 MP) still applies above this, whatever is set here."""

    max_pixels: int = 40_000_000


def decode_image(data: bytes, limits: ImageLimits = ImageLimits()) -> np.ndarray:
    """Decode an image file. Returns (H, W, 3) uint8 RGB, C-contiguous, row 0 at the top.

    Raises ImageTooLargeError when the header announces more than ``limits.max_pixels`` pixels
    (checked before any pixel is decoded) and BadImageError for anything that is not a complete,
    readable image.
    """
    if not data:
        raise BadImageError("the image file is empty")
    img = _open(data, limits)
    width, height = img.size
    if width < 1 or height < 1:
        raise BadImageError(f"the image has no pixels ({width}x{height})")
    if width * height > limits.max_pixels:
        raise _too_large(width, height, limits)
    try:
        img.load()
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... for bad data
        raise BadImageError(f"the {img.format or 'image'} file is truncated or corrupt "
                            f"({_reason(exc)})") from None
    img = _upright(img)
    return np.ascontiguousarray(_to_rgb(img), dtype=np.uint8)


def _open(data: bytes, limits: ImageLimits) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # We check the pixel count ourselves, with our own limit and message.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"the image is far beyond the limit of {limits.max_pixels / 1e6:.1f} "
                                 f"megapixels ({exc})") from None
    except UnidentifiedImageError:
        raise BadImageError("the file is not an image format the backend can read "
                            "(JPEG, PNG, WebP, TIFF, BMP, ...)") from None
    except Exception as exc:
        raise BadImageError(f"the image header is corrupt ({_reason(exc)})") from None


def _too_large(width: int, height: int, limits: ImageLimits) -> ImageTooLargeError:
    return ImageTooLargeError(f"the image is {width}x{height} = {width * height / 1e6:.1f} "
                              f"megapixels; the limit is {limits.max_pixels / 1e6:.1f}. "
                              f"Scale it down first (2000 pixels on the long side is plenty).")


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def _upright(img: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img)
    except Exception:
        return img  # unreadable EXIF: keep the pixels as stored rather than refuse the photo


def _to_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # Pillow would clip these to 0..255; scale by the bit depth instead.
        grey = np.asarray(img).astype(np.float64)
        full = 65535.0 if mode.startswith("I;16") or grey.max(initial=0) <= 65535 else 2**32 - 1
        grey8 = np.clip(np.rint(grey * (255.0 / full)), 0, 255).astype(np.uint8)
        return np.repeat(grey8[:, :, None], 3, axis=2)
    if mode == "F":
        grey = np.nan_to_num(np.asarray(img, dtype=np.float64))
        scale = 255.0 if grey.max(initial=0) <= 1.0 else 1.0  # 0..1 floats vs 0..255 floats
        grey8 = np.clip(np.rint(grey * scale), 0, 255).astype(np.uint8)
        return np.repeat(grey8[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, WHITE)
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(img.convert("RGB"))
