"""Driving video, read and tracked: frames stream from real files, the tracker finds the actor's face,
head rotation agrees with an independent estimate, and bad files are refused with a clear error."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from video_clips import write_video

from backend.animation.video.frames import FrameConfig, iter_frames, probe
from backend.animation.video.smooth import smooth_take
from backend.animation.video.solve import R_FRONT, _head_rotations, canonicalise
from backend.animation.video.track import Track, track_faces
from backend.errors import BadVideoError, NoFaceError
from backend.reconstruct.camera import estimate_camera


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
    from backend.animation.video.solve import solve_drive

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


def test_smoothing_takes_out_frame_to_frame_jitter_but_follows_a_step_without_lag():
    """Jitter shows as change from one frame to the next: the smoothing leaves under half of it
    (measured: 0.31), yet a jump stays where it was."""
    fps = 30.0
    rng = np.random.default_rng(0)
    still = 0.5 + 0.02 * rng.standard_normal((60, 1))
    assert np.diff(smooth_take(still, fps), axis=0).std() < 0.5 * np.diff(still, axis=0).std()
    step = np.r_[np.zeros(30), np.ones(30)][:, None]
    filtered = smooth_take(step, fps)[:, 0]
    assert filtered[29] < 0.5 < filtered[30]  # the jump stays between the same two frames
    assert filtered[30 + 5] > 0.9 and filtered[30 - 6] < 0.1
    assert -0.1 < filtered.min() and filtered.max() < 1.1  # rings by under a tenth round the jump


def test_smoothing_keeps_a_take_shorter_than_its_window():
    """A take of a few frames is smoothed with the window that fits, or not at all: never an error."""
    for n in (1, 3, 5, 6, 9):
        values = np.linspace(0.0, 1.0, n)[:, None]
        out = smooth_take(values, 30.0)
        assert out.shape == values.shape and np.allclose(out, values)  # a ramp is its own fit


# --- the shoulders ------------------------------------------------------------------------------

ROLL_DEG = np.interp(np.arange(60), [0, 10, 25, 45, 59], [0, 0, 8, -8, 0])  # counter-clockwise


@pytest.fixture(scope="module")
def rolled_drive(portraits_dir: Path):
    """fr_obama.jpg (shoulders in view), small, rotated in-plane about a point low in the chest by
    ROLL_DEG over 60 frames, tracked and solved like a take."""
    from PIL import Image

    from backend.animation.drive import expression_basis
    from backend.animation.video.shoulders import ShoulderConfig
    from backend.animation.video.solve import solve_drive

    image = Image.open(portraits_dir / "fr_obama.jpg").convert("RGB").resize((364, 456))
    w, h = image.size
    frames = [np.asarray(image.rotate(a, resample=Image.BILINEAR, center=(w / 2, 0.9 * h),
                                      fillcolor=(128, 128, 128))) for a in ROLL_DEG]
    track = track_faces(frames, shoulders=ShoulderConfig())
    return solve_drive(track, 30.0, expression_basis, image_size=(w, h))


def _joint(drive, name: str):
    return Rotation.from_rotvec(drive.poses[:, drive.joint_names.index(name)].astype(float))


def test_the_bust_rolls_with_the_shoulder_line(rolled_drive):
    """The root's roll (about canonical +Y) follows the image's known roll; a counter-clockwise
    turn on screen raises the subject's left (image-right) shoulder: a negative turn about +Y.
    Measured: 1.95 deg worst frame (the zero-lag smoothing rounds the 8 deg corners)."""
    assert rolled_drive.warnings == []
    assert {"root", "left_collar", "right_collar"} <= set(rolled_drive.joint_names)
    expected = -np.radians(ROLL_DEG)
    root = rolled_drive.poses[:, rolled_drive.joint_names.index("root")].astype(float)
    assert np.degrees(np.abs(root[:, 1] - (expected - np.median(expected)))).max() < 3.0
    assert np.degrees(np.abs(root[:, [0, 2]])).max() < 1e-6  # roll only
    # A turn of the whole picture is no shrug (measured: collars within 3 deg, pose-model noise).
    collars = rolled_drive.poses[:, [rolled_drive.joint_names.index(n)
                                     for n in ("left_collar", "right_collar")]]
    assert np.degrees(np.abs(collars)).max() < 6.0


def test_a_rolled_bust_does_not_roll_the_head_twice(rolled_drive):
    """root * neck * head, relative to the first (unrolled) frame, rolls as the image does
    (measured: 1.1 deg worst frame), and neck * head alone stays nearly level (measured 1.7 deg)
    while the image rolls +-8 deg: the neck/head share is what is left after the bust's roll."""
    root, neck, head = (_joint(rolled_drive, n) for n in ("root", "neck", "head"))
    whole = root * neck * head
    rolled = (whole * whole[0].inv()).as_rotvec()[:, 1]
    assert np.degrees(np.abs(rolled + np.radians(ROLL_DEG))).max() < 2.5
    own = (neck * head).as_rotvec()[:, 1]
    assert np.degrees(np.abs(own - own[0])).max() < 3.5
    camera = Rotation.from_rotvec(rolled_drive.head_rotation.astype(float))
    assert np.degrees((camera.inv() * whole).magnitude()).max() < 0.01  # the face's own rotation


def test_shoulders_at_the_frame_edge_drive_no_shoulder_joint(driving_dir: Path):
    """lp_d9's shoulders are cut by the bottom edge (mediapipe still places them at y 1.00 with
    visibility 0.75-0.99): the take drives neck and head only and says why. Told the take's
    length, the pose model stops once half the take can no longer see them (16 of 30 runs)."""
    from backend.animation.drive import expression_basis
    from backend.animation.video.shoulders import ShoulderConfig
    from backend.animation.video.solve import solve_drive

    clip = driving_dir / "lp_d9.mp4"
    frames = [f for _, f in zip(range(60), iter_frames(clip))]
    track = track_faces(frames, len(frames), shoulders=ShoulderConfig())
    assert track.found.all() and track.shoulders.sampled.sum() == 16
    assert not track.shoulders.seen.any()
    drive = solve_drive(track, 30.0, expression_basis, image_size=probe(clip).size)
    assert drive.joint_names == ("neck", "head")
    assert len(drive.warnings) == 1 and "no shoulder joint driven" in drive.warnings[0]


def test_shoulder_signs_follow_the_canonical_frame():
    """Pure geometry: the image-right shoulder (the subject's left, +X) dropping is a positive
    roll, which turns +X downwards about +Y; whichever label mediapipe gives each shoulder (a
    mirrored take swaps them); both shoulders raised towards the ears is a rise on both sides."""
    from backend.animation.video.shoulders import ShoulderConfig, collar_rotations, shoulder_motion

    face = np.zeros((3, 478, 3))
    face[:, 234, :2], face[:, 454, :2] = [80, 50], [120, 50]  # ear level, row 50
    level, dropped, shrug = [[150, 100], [50, 100]], [[150, 110], [50, 90]], [[150, 90], [50, 90]]
    for order in (slice(None), slice(None, None, -1)):
        points = np.array([level, dropped, shrug], float)[:, order]
        motion = shoulder_motion(points, np.ones(3, bool), face)
        assert motion.roll[0] == pytest.approx(0) and motion.roll[1] > 0.15
        assert Rotation.from_rotvec([0, motion.roll[1], 0]).apply([1, 0, 0])[2] < 0
        # 10 px of a 100 px width (rises are relative to the take's median, so compare frames)
        assert motion.rise[2] - motion.rise[0] == pytest.approx([0.1, 0.1], abs=1e-9)
        collars = collar_rotations(motion.rise, ShoulderConfig())
        # A raised collar lifts its shoulder end: left (+X) end and right (-X) end both go up.
        assert Rotation.from_rotvec(collars[2, 0]).apply([1, 0, 0])[2] > 0.05
        assert Rotation.from_rotvec(collars[2, 1]).apply([-1, 0, 0])[2] > 0.05


# --- the expression solve -----------------------------------------------------------------------

def test_the_sparse_solve_minimises_its_stated_objective():
    """_solve_weights returns, per frame, the minimiser over [0, 1]^E of
    |A w - b|^2 + lam |w|^2 + mu sum(w) (A: landmark and opening rows), checked against a general
    bounded optimiser on a random basis; and the L1 pull leaves fewer shapes active than none."""
    from dataclasses import replace

    from scipy.optimize import minimize

    from backend.animation.video.solve import SKIN, SolveConfig, _solve_weights, opening_rows

    rng = np.random.default_rng(3)
    basis = np.zeros((8, 478, 3))
    basis[:, :SKIN] = 0.002 * rng.standard_normal((8, SKIN, 3))
    truth = np.array([[0.7, 0, 0, 0.3, 0, 0, 0, 0], [0, 0.5, 0.02, 0, 0, 0.9, 0.03, 0]])
    offsets = np.einsum("te,eld->tld", truth, basis) + 0.0005 * rng.standard_normal((2, 478, 3))
    config = SolveConfig()
    weights = _solve_weights(offsets, basis, np.ones(2, bool), config)

    scale = np.array([1.0, 1.0, config.depth_weight])
    root = np.sqrt(config.opening_weight)
    A = np.concatenate([(basis[:, :SKIN] * scale).reshape(8, -1), root * opening_rows(basis)], 1).T
    norm = np.mean(np.sum(A * A, axis=0))
    lam, mu = config.ridge * norm, config.sparsity * norm
    for w, off in zip(weights, offsets):
        b = np.concatenate([(off[:SKIN] * scale).ravel(), root * opening_rows(off)])
        cost = lambda x: np.sum((A @ x - b) ** 2) + lam * x @ x + mu * x.sum()  # noqa: E731
        best = minimize(cost, np.full(8, 0.5), bounds=[(0, 1)] * 8, method="L-BFGS-B",
                        options={"ftol": 1e-15, "gtol": 1e-12}).x
        assert cost(w) <= cost(best) + 1e-9 * abs(cost(best))
    dense = _solve_weights(offsets, basis, np.ones(2, bool), replace(config, sparsity=0.0))
    assert (weights > 1e-6).sum() < (dense > 1e-6).sum()


def test_mouth_close_never_exceeds_jaw_open(d3_track):
    """ARKit's mouthClose is the lips staying shut while the jaw opens. Lips pressed together with
    the jaw shut (the landmark motion of mouthClose alone) must not come out as mouthClose over
    jawOpen; without the rule the same frames do."""
    from dataclasses import replace

    from backend.animation.video.solve import SolveConfig, _solve_weights, take_neutral
    from backend.rig.expressions import landmark_basis

    track, size = d3_track
    _, _, neutral = take_neutral(track, size)
    names, basis = landmark_basis(neutral)
    jaw, close = names.index("jawOpen"), names.index("mouthClose")
    mix = np.zeros((3, len(names)))
    mix[:, close] = (0.3, 0.6, 0.6)
    mix[:, jaw] = (0.0, 0.0, 0.8)
    offsets = np.einsum("te,eld->tld", mix, basis)
    config = SolveConfig()
    weights = _solve_weights(offsets, basis, np.ones(3, bool), config, names)
    assert (weights[:, close] <= weights[:, jaw] + 1e-9).all()
    assert weights[2, [jaw, close]] == pytest.approx([0.8, 0.6], abs=0.1)  # lips shut over an open jaw
    free = _solve_weights(offsets, basis, np.ones(3, bool), replace(config, close_within_jaw=False), names)
    assert (free[:2, close] > free[:2, jaw] + 0.1).all()


def test_the_rest_face_has_the_lips_shut(d3_track):
    """The shapes start from shut lips, so the take's rest face is the actor with the lips shut,
    not the plain median face of a talking take (lips apart)."""
    from backend.animation.video.solve import LIP_PAIRS, SolveConfig, take_neutral

    track, size = d3_track
    _, canonical, neutral = take_neutral(track, size)
    up, low = np.array(LIP_PAIRS).T
    gap = lambda face: np.mean(face[..., up, 2] - face[..., low, 2], axis=-1)  # noqa: E731
    median_face = np.median(canonical[track.found], axis=0)
    assert gap(neutral) <= SolveConfig.shut_gap_m
    assert gap(neutral) < 0.5 * gap(median_face)


def test_a_take_with_the_lips_shut_throughout_rests_on_its_usual_mouth():
    """Lips shut in every frame, pressed together in a third of them: the rest is the usual shut
    mouth, not the pressed one (which would read the usual mouth as a steady pucker)."""
    from backend.animation.video.solve import LIP_PAIRS, rest_face

    up, low = np.array(LIP_PAIRS).T
    usual = np.zeros((478, 3))
    usual[:, 2] = np.linspace(0.05, -0.05, 478)  # eyes above, mouth below (metres)
    usual[up, 2], usual[low, 2] = -0.03 + 0.0001, -0.03
    pressed = usual.copy()
    pressed[up, 2], pressed[low, 2] = -0.03 - 0.0002, -0.03  # lips squeezed over each other
    pressed[up, 1] = pressed[low, 1] = -0.004  # and pushed out
    take = np.stack([pressed if t % 3 == 0 else usual for t in range(30)])
    rest = rest_face(take)
    assert np.abs(rest[up] - usual[up]).max() < 1e-9
    assert np.abs(rest[low] - usual[low]).max() < 1e-9
