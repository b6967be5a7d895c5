"""Driving a head from a video: the independent judge on a real clip, the CLI's Live Link CSV, the
server's drive job (progress, result, missing frames, cancel) and bad input refused with a clear
code while the server keeps serving."""
from __future__ import annotations

import io
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from video_clips import write_video

from shared.client import HeadliftClient
from shared.controls import ARKIT_NAMES
from shared.errors import ErrorCode, ProtocolError
from shared.messages import Drive, DriveResult, Error, Progress

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

BOUND_S = 900.0  # hang guard only: a loaded 2-core machine is slow
CLIP_FRAMES = 60  # 2 s of lp_d3 for the wire and CLI tests


@pytest.fixture(scope="module")
def d3_frames(driving_dir: Path) -> list[np.ndarray]:
    from backend.animation.video.frames import iter_frames

    return [f for _, f in zip(range(CLIP_FRAMES), iter_frames(driving_dir / "lp_d3.mp4"))]


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory, d3_frames) -> Path:
    return write_video(tmp_path_factory.mktemp("clip") / "d3_2s.mp4", d3_frames, 30.0)


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    """A private backend (this module stops it at the end)."""
    from conftest import start_backend_process

    process = start_backend_process(tmp_path_factory.mktemp("drive-backend"))
    yield process
    process.stop()


@pytest.fixture
def client(backend):
    with HeadliftClient(backend.address) as c:
        yield c


# --- the judge ---------------------------------------------------------------------------------

def test_a_driven_head_follows_the_actor_on_its_renders(driving_dir: Path, portraits_dir: Path):
    """The issue's judge on the first 4 s of lp_d3: a head reconstructed from a portrait, driven
    through the backend's own path, rendered from the front and measured by mediapipe, tracks the
    actor's mouth, both eyes and head turn."""
    from evaluate_driving import TARGETS, evaluate_driving, reconstruct_head

    head = reconstruct_head(portraits_dir / "astronaut.png")
    metrics, picks = evaluate_driving(driving_dir / "lp_d3.mp4", head, max_seconds=4.0)
    assert metrics["frames"] == 120 and metrics["missing"] == []
    assert metrics["frames_judged_render"] >= 0.95 * metrics["frames"]
    assert metrics["mouth_r"] >= TARGETS["mouth_r"], metrics
    assert metrics["eye_left_r"] >= TARGETS["eye_left_r"], metrics
    assert metrics["eye_right_r"] >= TARGETS["eye_right_r"], metrics
    assert metrics["yaw_rms_deg"] <= TARGETS["yaw_rms_deg"], metrics
    assert metrics["pitch_rms_deg"] <= TARGETS["pitch_rms_deg"], metrics
    assert len(picks) == 8


# --- the solve, checked on the actor's own landmarks ------------------------------------------

def _openings(landmarks_m: np.ndarray) -> np.ndarray:
    """(T, 478, 3) canonical landmarks -> (T, 3) inner-lip gap, left and right lid gap (x and
    height, over the outer-eye-corner span)."""
    span = np.linalg.norm(landmarks_m[:, 263] - landmarks_m[:, 33], axis=1)
    gap = lambda a, b: np.linalg.norm((landmarks_m[:, a] - landmarks_m[:, b])[:, [0, 2]], axis=1)  # noqa: E731
    return np.stack([gap(13, 14), gap(386, 374), gap(159, 145)], axis=1) / span[:, None]


@pytest.mark.parametrize("clip, mirrored", [("lp_d9.mp4", False), ("lp_d3.mp4", True)])
def test_the_solved_weights_rebuild_the_actors_lip_and_lid_openings(driving_dir: Path, clip: str,
                                                                   mirrored: bool):
    """Put back on the actor's own landmark basis, the solved (and smoothed) weights open and shut
    the lips and lids when the actor does, frame by frame: lp_d9's actor keeps his lips shut
    but for a few 4-frame lip pops, which neither the corner motion nor the smoothing may swallow;
    lp_d3 is mirrored left-right (an unseen clip)."""
    from backend.animation.drive import expression_basis
    from backend.animation.video.frames import iter_frames, probe
    from backend.animation.video.solve import solve_drive, take_neutral
    from backend.animation.video.track import track_faces

    info = probe(driving_dir / clip)
    frames = (f[:, ::-1] if mirrored else f for f in iter_frames(driving_dir / clip))
    track = track_faces(frames, info.frames)
    drive = solve_drive(track, info.fps, expression_basis, image_size=info.size)
    _, canonical, neutral = take_neutral(track, info.size)
    names, basis = expression_basis(neutral)
    assert names == drive.expression_names
    rebuilt = neutral + np.einsum("te,eld->tld", drive.weights, basis)
    seen, solved = _openings(canonical), _openings(rebuilt)
    r = [np.corrcoef(seen[:, k], solved[:, k])[0, 1] for k in range(3)]
    assert min(r) >= 0.9, r
    # Shut lips stay shut: the solved gap at rest is within a millimetre of the actor's.
    assert abs(np.median(solved[:, 0]) - np.median(seen[:, 0])) < 0.011, (np.median(solved[:, 0]), np.median(seen[:, 0]))


def test_whole_take_smoothing_keeps_a_short_pulse_on_its_frames():
    """A 4-frame lip pop, smoothed for keying a whole take, keeps its frames and most of its height,
    and what it rings on either side is small (measured: peak 1.03, 0.09 at most beside it)."""
    from backend.animation.video.smooth import smooth_take

    pulse = np.zeros((60, 1))
    pulse[30:34] = 1.0
    out = smooth_take(pulse, 30.0)[:, 0]
    assert 30 <= int(np.argmax(out)) <= 33 and out.max() > 0.85
    assert np.abs(np.delete(out, np.arange(28, 36))).max() < 0.15


# --- the CLI -----------------------------------------------------------------------------------

def test_the_cli_writes_a_live_link_csv_other_tools_read(short_clip: Path, tmp_path: Path, capsys):
    from backend.cli import main
    from shared.animdata import read_live_link_csv

    out = tmp_path / "take.csv"
    assert main(["drive", str(short_clip), "-o", str(out)]) == 0
    take = read_live_link_csv(out)
    assert len(take.times_s) == CLIP_FRAMES
    assert take.source_fps == pytest.approx(30.0)
    assert {"jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft"} <= set(take.expressions)
    assert set(take.expressions) <= set(ARKIT_NAMES)
    assert "head" in take.pose and np.isfinite(take.pose["head"]).all()
    # The actor talks and turns in these 2 s: the curves are not flat.
    assert max(np.ptp(v) for v in take.expressions.values()) > 0.1
    assert np.degrees(np.ptp(take.pose["head"], axis=0)).max() > 2.0
    header = out.read_text().splitlines()[0].split(",")
    assert header[:2] == ["Timecode", "BlendShapeCount"] and {"HeadYaw", "HeadPitch", "HeadRoll"} <= set(header)


def test_the_cli_refuses_a_file_that_is_not_a_video(tmp_path: Path, capsys):
    from backend.cli import main

    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    assert main(["drive", str(bad), "-o", str(tmp_path / "x.csv")]) == 1
    assert "not a video" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


# --- the server's drive job --------------------------------------------------------------------

def test_the_server_drives_a_take_with_progress(client: HeadliftClient, short_clip: Path):
    assert Drive.TYPE in client.hello().capabilities
    progress: list[Progress] = []
    result = client.drive(short_clip.read_bytes(), name=short_clip.name,
                          on_progress=progress.append, timeout_s=BOUND_S)
    assert isinstance(result, DriveResult)
    assert result.fps == pytest.approx(30.0)
    assert result.weights.shape == (CLIP_FRAMES, len(result.expression_names))
    assert result.poses.shape == (CLIP_FRAMES, len(result.joint_names), 3)
    assert {"neck", "head"} == set(result.joint_names)
    assert result.missing == []
    # lp_d3's shoulders are below the frame: no root or collar, and the result says so.
    assert len(result.warnings) == 1 and "no shoulder joint driven" in result.warnings[0]
    assert progress and all(0 <= p.fraction <= 1 for p in progress)


def test_frames_without_a_face_are_reported_and_bridged(client: HeadliftClient, d3_frames, tmp_path):
    """A folder of frames (sent zipped) where the actor leaves for frames 20..29: reported, and
    the curves there lie between their neighbours instead of dropping to zero."""
    frames = [f.copy() for f in d3_frames]
    for i in range(20, 30):
        frames[i][:] = 200
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for i, frame in enumerate(frames):
            png = io.BytesIO()
            Image.fromarray(frame).save(png, format="PNG")
            zf.writestr(f"take/frame_{i:04d}.png", png.getvalue())
    result = client.drive(archive.getvalue(), name="frames.zip", frames_fps=24.0, timeout_s=BOUND_S)
    assert result.fps == pytest.approx(24.0)
    assert result.missing == [[20, 29]]
    head = result.poses[:, result.joint_names.index("head")]
    assert np.abs(head[20:30]).max() > 0.3 * np.abs(head[[19, 30]]).min()  # bridged, not zeroed
    lo, hi = np.minimum(head[19], head[30]), np.maximum(head[19], head[30])
    assert np.all(head[20:30] >= lo - 0.02) and np.all(head[20:30] <= hi + 0.02)


@pytest.mark.parametrize("content, name, code", [
    (b"this is not a video", "take.mp4", ErrorCode.BAD_VIDEO),
    (b"PK\x03\x04broken", "frames.zip", ErrorCode.BAD_VIDEO),
])
def test_bad_input_is_refused_and_the_server_keeps_serving(client: HeadliftClient, content, name, code):
    with pytest.raises(ProtocolError) as info:
        client.drive(content, name=name, timeout_s=BOUND_S)
    assert info.value.code == code
    assert client.ping() is not None


def test_a_video_without_a_face_says_no_face(client: HeadliftClient, tmp_path: Path):
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 255, (96, 96, 3), np.uint8) for _ in range(15)]
    clip = write_video(tmp_path / "noise.mp4", noise, 30.0)
    with pytest.raises(ProtocolError) as info:
        client.drive(clip.read_bytes(), name=clip.name, timeout_s=BOUND_S)
    assert info.value.code == ErrorCode.NO_FACE
    assert client.ping() is not None


def test_a_drive_cancelled_midway_ends_in_cancelled(client: HeadliftClient, driving_dir: Path):
    """Cancelled while tracking the full lp_d3 take: the job answers 'cancelled' (no result),
    and the next drive is served."""
    request_id = client.submit(Drive(video=(driving_dir / "lp_d3.mp4").read_bytes(), name="lp_d3.mp4"),
                               BOUND_S)
    deadline = time.monotonic() + BOUND_S
    final = None
    cancelled = False
    while final is None and time.monotonic() < deadline:
        for event in client.poll_events(0.2):
            if event.id != request_id:
                continue
            if isinstance(event, Progress) and event.stage == "track" and not cancelled:
                assert client.cancel(request_id).ok
                cancelled = True
            elif not isinstance(event, Progress):
                final = event
    assert isinstance(final, Error) and final.code == ErrorCode.CANCELLED, final
    assert client.ping() is not None


# --- the add-on --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def addon_drive(run_blender, addon_zip, backend, portraits_dir, driving_dir, d3_frames, short_clip,
                tmp_path_factory) -> dict:
    """Drive from Video in headless Blender on a head reconstructed through the add-on."""
    import json
    import subprocess

    from blender_driver import RESULT_MARKER
    from conftest import BLENDER_SCENARIO_TIMEOUT_S, REPO_ROOT

    work = tmp_path_factory.mktemp("addon-drive")
    blend = work / "prepared" / "head.blend"
    head = run_blender("anim_prepare", address=backend.address,
                       image=str(portraits_dir / "fr_obama.jpg"), blend=str(blend))
    folder = work / "frames"
    folder.mkdir()
    for i, frame in enumerate(d3_frames):
        Image.fromarray(np.full_like(frame, 200) if 20 <= i < 30 else frame).save(folder / f"f{i:03d}.png")
    not_a_video = work / "notes.mp4"
    not_a_video.write_text("not a video")
    # 1 s of fr_obama.jpg (shoulders in view) rolled in-plane 0 -> +8 -> 0 deg about a low point.
    portrait = Image.open(portraits_dir / "fr_obama.jpg").convert("RGB").resize((364, 456))
    rolled = [np.asarray(portrait.rotate(a, resample=Image.BILINEAR, center=(182, 410),
                                         fillcolor=(128, 128, 128)))
              for a in np.interp(np.arange(30), [0, 15, 29], [0, 8, 0])]
    shoulders = write_video(work / "shoulders.mp4", rolled, 30.0)
    args = {"zip": str(addon_zip), "user_dir": str(work / "user"),
            "blend": str(blend), "work_dir": str(work / "scene"), "object": head["object"],
            "address": backend.address, "video": str(short_clip), "folder": str(folder),
            "long_video": str(driving_dir / "lp_d3.mp4"), "not_a_video": str(not_a_video),
            "shoulders_video": str(shoulders)}
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "tests" / "blender_drive_driver.py"),
                           json.dumps(args)], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=BLENDER_SCENARIO_TIMEOUT_S)
    lines = [l for l in proc.stdout.splitlines() if l.startswith(RESULT_MARKER)]
    assert proc.returncode == 0 and lines, (proc.stdout + proc.stderr)[-4000:]
    result = json.loads(lines[-1].split(" ", 1)[1])
    assert result.pop("ok"), result.get("traceback")
    return result


def test_the_addon_keys_a_video_take_at_the_scene_rate(addon_drive):
    """2 s at 30 fps become keys on every frame 1..48 of a 24 fps scene, weights in [0, 1], on the
    expression sliders and the neck and head rotations."""
    video = addon_drive["video"]
    assert video["error"] is None, video["error"]
    keys = video["keys"]
    expressions = [k for k in keys if k.split("[")[0].split(".")[-1] in addon_drive["expressions"]]
    assert expressions and any("head" in k for k in keys) and any("neck" in k for k in keys)
    for path, points in keys.items():
        assert [f for f, _ in points] == list(range(1, 49)), path
    assert all(0.0 <= v <= 1.0 for k in expressions for _, v in keys[k])
    assert video["frame_range"][1] >= 48
    # lp_d3 does not show the shoulders: reported, and no root or collar is keyed.
    assert "no shoulder joint driven" in video["status"]
    assert not any(j in k for k in keys for j in ("root", "collar"))


def test_the_addon_reports_frames_without_a_face_and_keys_across_them(addon_drive):
    folder = addon_drive["folder"]
    assert folder["error"] is None, folder["error"]
    assert "no face in 10 video frame(s)" in folder["status"]
    assert all(len(points) == CLIP_FRAMES for points in folder["keys"].values())


def test_the_addon_keys_the_bust_and_collars_when_the_take_shows_the_shoulders(addon_drive):
    """1 s at 30 fps (rolled +8 deg and back) keys root and both collars on frames 1..24 like the
    neck and head; the root's roll about +Y swings by several degrees."""
    shoulders = addon_drive["shoulders"]
    assert shoulders["error"] is None, shoulders["error"]
    assert "no shoulder joint" not in shoulders["status"]  # no warning
    keys = shoulders["keys"]
    for joint in ("root", "left_collar", "right_collar", "neck", "head"):
        for axis in range(3):
            assert [f for f, _ in keys[f"headlift_anim.{joint}[{axis}]"]] == list(range(1, 25)), joint
    roll = [v for _, v in keys["headlift_anim.root[1]"]]
    assert np.degrees(max(roll) - min(roll)) > 4.0


def test_the_addon_leaves_the_scene_untouched_on_a_bad_file_or_a_cancelled_drive(addon_drive):
    bad = addon_drive["bad"]
    assert bad["error"] and "bad_video" in bad["error"] and bad["unchanged"]
    cancelled = addon_drive["cancelled"]
    assert cancelled["error"][0] == "cancelled"
    assert cancelled["unchanged"] and cancelled["keys"] == 0
