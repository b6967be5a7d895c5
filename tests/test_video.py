"""Driving video, read and tracked: frames stream from real files, the tracker finds the actor's face,
head rotation agrees with an independent estimate, and bad files are refused with a clear error."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from backend.camera import estimate_camera
from backend.errors import BadVideoError, NoFaceError
from backend.video.frames import FrameConfig, iter_frames, probe
from backend.video.smooth import one_euro
from backend.video.solve import R_FRONT, _head_rotations, canonicalise
from backend.video.track import Track, track_faces
from video_clips import write_video


@pytest.fixture(scope="module")
def d3_track(driving_dir: Path) -> tuple[Track, tuple[int, int]]:
    clip = driving_dir / "lp_d3.mp4"
    info = probe(clip)
    frames = (f for i, f in enumerate(iter_frames(clip)) if i < 120)
    return track_faces(frames, 120), info.size


def test_probe_reads_rate_size_and_length(driving_dir: Path):
    info = probe(driving_dir / "lp_d3.mp4")
    assert info.fps == pytest.approx(30.0)
    assert info.size == (512, 512)
    assert 340 <= info.frames <= 360  # 11.8 s at 30 fps


def test_a_folder_of_frames_is_a_video(tmp_path: Path, portraits_dir: Path):
    import shutil
    for i in range(3):
        shutil.copy(portraits_dir / "fr_obama.jpg", tmp_path / f"frame_{i:03d}.jpg")
    info = probe(tmp_path, FrameConfig(folder_fps=24))
    assert (info.fps, info.frames) == (24, 3)
    assert [f.shape for f in iter_frames(tmp_path)] == [tuple(reversed(info.size)) + (3,)] * 3


@pytest.mark.parametrize("content", [b"", b"not a video at all", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64])
def test_a_file_that_is_not_a_video_is_refused(tmp_path: Path, content: bytes):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(content)
    with pytest.raises(BadVideoError):
        probe(bad)


def test_a_four_hour_video_is_refused_before_any_frame_is_read(tmp_path: Path):
    black = np.zeros((16, 16, 3), np.uint8)
    long_clip = write_video(tmp_path / "four_hours.mp4", [black] * (4 * 3600), fps=1)
    with pytest.raises(BadVideoError, match="longer than"):
        probe(long_clip)


def test_the_tracker_follows_the_actor_in_every_frame(d3_track):
    track, _ = d3_track
    assert len(track.found) == 120 and track.found.all()
    assert np.isfinite(track.landmarks_px).all()


def test_frames_without_a_face_are_recorded_as_missing(tmp_path: Path, driving_dir: Path):
    frames = [f for i, f in zip(range(20), iter_frames(driving_dir / "lp_d3.mp4"))]
    for i in range(8, 12):
        frames[i] = np.full_like(frames[i], 200)  # the actor leaves the frame
    track = track_faces(frames)
    assert track.missing_ranges() == [(8, 11)]
    assert np.isnan(track.landmarks_px[8:12]).all()


def test_a_video_without_a_face_says_so(tmp_path: Path):
    from backend.video.solve import solve_drive

    noise = [np.random.default_rng(i).integers(0, 255, (64, 64, 3), np.uint8) for i in range(10)]
    track = track_faces(noise)
    assert not track.found.any()
    with pytest.raises(NoFaceError):
        solve_drive(track, 30.0, basis=lambda neutral: ((), np.zeros((0, 478, 3))))


def test_head_rotation_agrees_with_the_symmetry_estimate(d3_track):
    """Rotation from the rigid-landmark fit vs the camera module's per-frame symmetry estimate: an
    independent method on the same frames must agree within a few degrees."""
    track, size = d3_track
    _, reference = estimate_camera(track.landmarks_px[0].astype(float), size)
    rotations, canonical = canonicalise(track, reference.astype(float))
    rotations, _ = canonicalise(track, np.nanmedian(canonical, axis=0))
    fitted = np.degrees(_head_rotations(rotations, track.found))
    symmetric = np.array([
        np.degrees(Rotation.from_matrix(
            R_FRONT.T @ estimate_camera(lm.astype(float), size)[0].R_cam_from_canonical).as_rotvec())
        for lm in track.landmarks_px])
    rms = np.sqrt(np.mean((fitted - symmetric) ** 2, axis=0))
    assert (rms < 4.0).all(), rms
    assert np.ptp(fitted[:, 2]) > 5.0  # the actor does turn her head in this clip


def test_one_euro_smooths_jitter_but_follows_a_step_quickly():
    fps = 30.0
    rng = np.random.default_rng(0)
    still = 0.5 + 0.02 * rng.standard_normal((60, 1))
    assert one_euro(still, fps).std() < 0.5 * still.std()
    step = np.r_[np.zeros(30), np.ones(30)][:, None]
    filtered = one_euro(step, fps)
    assert filtered[30 + 5, 0] > 0.8  # within 5 frames (~0.17 s) of the jump
