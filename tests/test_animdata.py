"""Animation files as arrays (shared/animdata.py): Live Link Face CSV, AMASS .npz, PC2 caches."""
from __future__ import annotations

import io
import struct

import numpy as np
import pytest

from shared import animdata
from shared.controls import ARKIT_NAMES, POSE_JOINTS, SMPL_INDEX

# The first lines of a Live Link Face take as the app writes them (60 fps, PascalCase names,
# head and eye angles in radians after the 52 shapes).
LLF_HEADER = ("Timecode,BlendShapeCount," + ",".join(n[0].upper() + n[1:] for n in ARKIT_NAMES)
              + ",HeadYaw,HeadPitch,HeadRoll,LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,"
                "RightEyePitch,RightEyeRoll")


def llf_row(timecode: str, jaw: float, yaw: float = 0.0, blink: float = 0.0) -> str:
    values = [0.0] * 61
    values[ARKIT_NAMES.index("jawOpen")] = jaw
    values[ARKIT_NAMES.index("eyeBlinkLeft")] = blink
    values[52] = yaw
    return f"{timecode},61," + ",".join(f"{v:.4f}" for v in values)


def test_rotation_vectors_survive_matrix_round_trips_including_near_pi():
    rng = np.random.default_rng(0)
    axes = rng.normal(size=(200, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.concatenate([rng.uniform(0, np.pi - 1e-2, 190), np.pi - rng.uniform(0, 1e-4, 10)])
    rotvecs = axes * angles[:, None]
    back = animdata.matrix_to_rotvec(animdata.rotvec_to_matrix(rotvecs))
    same = np.linalg.norm(back - rotvecs, axis=1) < 1e-6
    flipped = np.linalg.norm(back + rotvecs, axis=1) < 1e-3  # at pi, -axis is the same rotation
    assert np.all(same | (flipped & (angles > np.pi - 1e-3)))
    assert np.allclose(animdata.matrix_to_rotvec(np.eye(3)), 0.0)


def test_a_live_link_take_parses_names_times_and_head_turn():
    text = "\n".join([LLF_HEADER, llf_row("14:03:52:58.000", 0.5, yaw=0.3, blink=1.0),
                      llf_row("14:03:52:59.000", 0.6, yaw=0.3), llf_row("14:03:53:00.500", 0.7)])
    take = animdata.read_live_link_csv(io.StringIO(text))
    assert take.source_fps == 60.0  # frame fields reach 59: a 60 fps capture
    assert np.allclose(take.times_s, [0.0, 1 / 60, 2.5 / 60])
    assert set(take.expressions) == set(ARKIT_NAMES)
    assert np.allclose(take.expressions["jawOpen"], [0.5, 0.6, 0.7])
    assert np.allclose(take.expressions["eyeBlinkLeft"], [1.0, 0.0, 0.0])
    # Yaw turns the head about the canonical up axis (+Z).
    assert np.allclose(take.pose["head"][0], [0.0, 0.0, 0.3], atol=1e-6)
    assert take.ignored == list(animdata.LIVE_LINK_EYES)


def test_the_csv_writer_and_reader_agree_and_resampling_lands_on_scene_frames():
    fps_in = 60.0
    t = np.arange(121) / fps_in
    expr = {"jawOpen": (0.5 + 0.5 * np.sin(t * 3)).astype(np.float32),
            "mouthSmileLeft": np.linspace(0, 1, 121, dtype=np.float32)}
    head = np.stack([0.2 * np.sin(t), 0.1 * np.cos(t), 0.4 * np.sin(2 * t)], -1)
    text = animdata.write_live_link_csv(t, expr, head, fps=fps_in, start_s=3600 * 23 + 59 * 61.5)
    assert text.splitlines()[0].split(",") == list(animdata.LIVE_LINK_COLUMNS)
    take = animdata.read_live_link_csv(io.StringIO(text), fps=fps_in)  # crosses midnight
    assert np.allclose(take.times_s, t, atol=1e-6)
    assert np.allclose(take.expressions["jawOpen"], expr["jawOpen"], atol=1e-5)
    assert np.allclose(take.expressions["eyeBlinkLeft"], 0.0)
    assert np.allclose(take.pose["head"], head, atol=1e-5)

    frames, at24 = take.resample(24.0, frame_start=10)
    assert frames[0] == 10 and frames[-1] == 10 + 48  # 2 s at 24 fps
    k = 24  # scene frame 34 is t = 1 s
    assert at24.expressions["jawOpen"][k] == pytest.approx(0.5 + 0.5 * np.sin(3.0), abs=1e-3)
    assert at24.expressions["mouthSmileLeft"][k] == pytest.approx(0.5, abs=1e-5)


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("Frame,JawOpen\n1,0.5\n", "Timecode"),
    (LLF_HEADER + "\n", "no frames"),
    (LLF_HEADER + "\n" + llf_row("00:00:00:01.0", float("nan")), "not finite"),
    (LLF_HEADER + "\n" + llf_row("00:00:00:01.0", 0.1).replace("0.1000", "lots", 1), "JawOpen"),
    (LLF_HEADER + "\n" + llf_row("00:00:01:00.0", 0.1) + "\n" + llf_row("00:00:00:05.0", 0.1), "increase"),
    (LLF_HEADER + "\n" + llf_row("yesterday", 0.1), "timecode"),
    (LLF_HEADER + "\n0:0:0:0,61,0.5", "fields"),
])
def test_unreadable_csvs_are_refused_with_a_message_naming_the_problem(text, message):
    with pytest.raises(ValueError, match=message):
        animdata.read_live_link_csv(io.StringIO(text))


def test_an_amass_npz_gives_the_bust_joints_in_the_canonical_frame_relative_root():
    n, fps = 50, 120.0
    poses = np.zeros((n, 156))
    head_turn = np.linspace(0, 0.8, n)
    poses[:, 3 * SMPL_INDEX["head"] + 1] = head_turn  # about SMPL's +y (up): a head turn
    poses[:, 3 * SMPL_INDEX["neck"] + 0] = 0.2  # about +x: a nod
    # AMASS roots carry the capture world's Z-up turn, then the body's own turn about its up axis.
    body_turn = np.linspace(0, 0.5, n)
    world = animdata.rotvec_to_matrix(np.array([np.pi / 2, 0.0, 0.0]))
    poses[:, 0:3] = animdata.matrix_to_rotvec(
        world @ animdata.rotvec_to_matrix(np.stack([0 * body_turn, body_turn, 0 * body_turn], -1)))
    poses[:, 3 * 20:3 * 21] = 1.0  # a wrist: no bust joint takes it
    buffer = io.BytesIO()
    animdata.write_amass_npz(buffer, poses, fps, rate_key="mocap_frame_rate")
    buffer.seek(0)
    take = animdata.read_amass_npz(buffer)
    assert take.source_fps == fps and np.allclose(take.times_s, np.arange(n) / fps)
    assert list(take.pose) == list(POSE_JOINTS)
    assert np.allclose(take.pose["head"], np.stack([0 * head_turn, 0 * head_turn, head_turn], -1), atol=1e-6)
    assert np.allclose(take.pose["neck"], [0.2, 0.0, 0.0])
    assert np.allclose(take.pose["root"][0], 0.0, atol=1e-6)  # upright at the first frame
    assert np.allclose(take.pose["root"], np.stack([0 * body_turn, 0 * body_turn, body_turn], -1), atol=1e-5)
    assert np.allclose(take.pose["left_shoulder"], 0.0)
    assert "trans" in take.ignored


@pytest.mark.parametrize("arrays, message", [
    ({"poses": np.zeros((4, 72))}, "framerate"),
    ({"trans": np.zeros((4, 3)), "mocap_framerate": 30.0}, "poses"),
    ({"poses": np.zeros((4, 10)), "mocap_framerate": 30.0}, r"\(T, 72\)"),
    ({"poses": np.full((4, 72), np.nan), "mocap_framerate": 30.0}, "not finite"),
    ({"poses": np.zeros((0, 72)), "mocap_framerate": 30.0}, "no frames"),
    ({"poses": np.zeros((4, 72)), "mocap_framerate": 0.0}, "frame rate"),
])
def test_bad_npz_files_are_refused_with_a_message(arrays, message):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    with pytest.raises(ValueError, match=message):
        animdata.read_amass_npz(buffer)


def test_pc2_has_the_documented_layout_and_reads_back(tmp_path):
    verts = np.random.default_rng(1).normal(size=(5, 7, 3)).astype(np.float32)
    path = tmp_path / "take.pc2"
    animdata.write_pc2(path, verts, start_frame=12.0)
    raw = path.read_bytes()
    assert raw[:12] == b"POINTCACHE2\0"
    assert struct.unpack("<iifFi".replace("F", "f"), raw[12:32]) == (1, 7, 12.0, 1.0, 5)
    assert len(raw) == 32 + 5 * 7 * 3 * 4
    assert np.array_equal(np.frombuffer(raw[32:], "<f4").reshape(5, 7, 3), verts)
    back, start, rate = animdata.read_pc2(path)
    assert np.array_equal(back, verts) and (start, rate) == (12.0, 1.0)
    path.write_bytes(raw[:-4])
    with pytest.raises(ValueError, match="header says"):
        animdata.read_pc2(path)
