"""The tools around the add-on: the zip builder, the demo's backend launcher and its pictures. No bpy."""
from __future__ import annotations

import shutil
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "scripts"))

import backend_process  # noqa: E402
import build_addon  # noqa: E402
import media  # noqa: E402


def test_a_universal2_wheel_serves_both_macs_and_manylinux_serves_linux():
    assert build_addon.wheel_platforms("pyzmq-27.3.0-cp311-cp311-macosx_10_15_universal2.whl") == {
        "macos-arm64", "macos-x64"}
    assert build_addon.wheel_platforms(
        "pyzmq-27.3.0-cp311-cp311-manylinux_2_26_x86_64.manylinux_2_28_x86_64.whl") == {"linux-x64"}
    assert build_addon.wheel_platforms("pyzmq-27.3.0-cp311-cp311-win_amd64.whl") == {"windows-x64"}


def test_a_platform_without_its_wheel_is_left_out_and_the_rest_still_builds(addon_zip, tmp_path, capsys):
    with zipfile.ZipFile(addon_zip) as zf:
        linux = [n for n in zf.namelist() if n.startswith("wheels/") and "linux" in n]
        if not linux:
            pytest.skip("no linux pyzmq wheel could be fetched for this build")
        cache = tmp_path / "cache"
        cache.mkdir()
        (cache / Path(linux[0]).name).write_bytes(zf.read(linux[0]))

    zip_path = build_addon.main(["--offline", "--wheel-cache", str(cache), "--out", str(tmp_path / "out")])

    with zipfile.ZipFile(zip_path) as zf:
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
        wheels = [n for n in zf.namelist() if n.startswith("wheels/")]
    assert manifest["platforms"] == ["linux-x64"]
    assert manifest["wheels"] == [f"./{linux[0]}"] and wheels == linux
    assert "building without windows-x64" in capsys.readouterr().err


def test_the_demo_finds_the_endpoint_in_either_ready_line():
    json_line = '{"t": 1.0, "event": "ready", "address": "tcp://127.0.0.1:41873", "max_message_bytes": 1}'
    assert backend_process.ready_endpoint(json_line) == "tcp://127.0.0.1:41873"
    assert backend_process.ready_endpoint("headlift backend ready at tcp://127.0.0.1:5555\n") == \
        "tcp://127.0.0.1:5555"
    assert backend_process.ready_endpoint('{"event": "request", "address": "tcp://127.0.0.1:1"}') is None
    assert backend_process.ready_endpoint("loading torch") is None


def test_the_contact_sheet_has_a_labelled_tile_per_view_and_the_gif_a_frame_per_view(tmp_path):
    frames = []
    for i, yaw in enumerate((0.0, 90.0, 180.0, 270.0)):
        path = tmp_path / f"frame_{i:03d}.png"
        Image.fromarray(np.full((64, 64, 3), 60 * i, np.uint8)).save(path)
        frames.append((yaw, path))

    sheet = Image.open(media.contact_sheet(frames, tmp_path / "sheet.png", columns=3, tile_px=64))
    gif = media.turntable_gif(frames, tmp_path / "turntable.gif", size_px=32)

    assert sheet.width == 3 * 64 and sheet.height > 2 * 64  # 2 rows of tiles plus their labels
    import imageio.v3 as iio
    assert iio.imread(gif, index=None).shape[:3] == (4, 32, 32)
