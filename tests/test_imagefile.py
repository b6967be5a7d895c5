"""decode_image: every portrait file reaches the pipeline as (H, W, 3) uint8 RGB, upright, or is
refused with a typed error before any pixel is decoded."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from backend.errors import BadImageError, ImageTooLargeError
from backend.reconstruct.imagefile import ImageLimits, decode_image


def encoded(img: Image.Image, fmt: str = "PNG", **save_args) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **save_args)
    return buf.getvalue()


def test_a_portrait_jpeg_decodes_to_rgb_uint8(portraits_dir):
    rgb = decode_image((portraits_dir / "fr_obama.jpg").read_bytes())
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    assert rgb.flags.c_contiguous


@pytest.mark.parametrize("mode", ["1", "L", "P", "CMYK", "YCbCr", "RGB"])
def test_every_colour_mode_becomes_rgb(mode):
    img = Image.new("RGB", (6, 4), (200, 100, 50)).convert(mode)
    fmt = "JPEG" if mode in ("CMYK", "YCbCr") else "TIFF"
    rgb = decode_image(encoded(img, fmt))
    assert rgb.shape == (4, 6, 3) and rgb.dtype == np.uint8


def test_transparent_pixels_are_composited_on_white():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red stays red
    rgba[0, 1] = (0, 0, 0, 0)  # fully transparent black becomes white
    rgba[1, 0] = (0, 0, 0, 128)  # half-transparent black becomes mid grey
    rgb = decode_image(encoded(Image.fromarray(rgba, "RGBA")))
    assert rgb[0, 0].tolist() == [255, 0, 0]
    assert rgb[0, 1].tolist() == [255, 255, 255]
    assert 120 <= rgb[1, 0, 0] <= 135


def test_a_palette_image_with_a_transparent_colour_is_composited_on_white():
    img = Image.new("P", (2, 1), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.putpixel((1, 0), 1)
    rgb = decode_image(encoded(img, transparency=0))
    assert rgb[0, 0].tolist() == [255, 255, 255] and rgb[0, 1].tolist() == [255, 0, 0]


def test_16_bit_grey_is_scaled_by_its_bit_depth_not_clipped():
    grey = np.array([[0, 257 * 128, 65535]], np.uint16)
    rgb = decode_image(encoded(Image.fromarray(grey)))
    assert rgb[0, :, 0].tolist() == [0, 128, 255]
    assert (rgb[..., 0] == rgb[..., 2]).all()


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    assert decode_image(encoded(img, "JPEG", exif=exif)).shape == (40, 20, 3)


def test_the_pixel_count_is_checked_from_the_header_before_decoding():
    img = Image.new("1", (300, 200))
    with pytest.raises(ImageTooLargeError, match="megapixels"):
        decode_image(encoded(img), ImageLimits(max_pixels=300 * 200 - 1))
    assert decode_image(encoded(img), ImageLimits(max_pixels=300 * 200)).shape == (200, 300, 3)


def test_an_image_beyond_pillows_bomb_guard_is_image_too_large():
    with pytest.raises(ImageTooLargeError):
        decode_image(encoded(Image.new("1", (20000, 20000))))


@pytest.mark.parametrize("data", [b"", b"GIF89a", b"not an image at all", b"\x89PNG\r\n\x1a\n"],
                         ids=["empty", "gif-magic-only", "text", "png-magic-only"])
def test_bytes_that_are_not_an_image_are_bad_image(data):
    with pytest.raises(BadImageError):
        decode_image(data)


def test_a_truncated_file_is_bad_image_and_says_so(portraits_dir):
    jpeg = (portraits_dir / "fr_obama.jpg").read_bytes()
    with pytest.raises(BadImageError, match="truncated"):
        decode_image(jpeg[: len(jpeg) // 3])
    png = encoded(Image.effect_noise((64, 64), 50))
    with pytest.raises(BadImageError):
        decode_image(png[: len(png) // 2])


def test_an_animated_image_gives_its_first_frame():
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 0, 255))]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert decode_image(data)[0, 0].tolist() == [255, 0, 0]
