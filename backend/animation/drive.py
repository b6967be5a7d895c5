"""Drive a head from a video of a face: the one entry point the CLI, the server job and the
evaluation share. Frames stream from the file (backend/animation/video/frames.py, length-capped), the face is
tracked in every frame, and the take is solved for ARKit expression weights and neck/head rotation
against the landmark-level expression basis of backend/rig/expressions.py; where the shoulders are
in view, also for the bust's roll and the collars' shrugs (backend/animation/video/shoulders.py).

Memory stays bounded by the take's length cap: one decoded frame at a time, plus 478 landmarks per
frame (10 min at 30 fps is ~100 MB of landmarks).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from backend.animation.video.frames import FrameConfig, iter_frames, probe
from backend.animation.video.solve import Drive, SolveConfig, solve_drive
from backend.animation.video.track import track_faces

# progress(stage, fraction in [0, 1]) like the reconstruction pipeline's.
Progress = Callable[[str, float], None]


@dataclass
class DriveConfig:
    frames: FrameConfig = field(default_factory=FrameConfig)
    solve: SolveConfig = field(default_factory=SolveConfig)
    track_shoulders: bool = True  # pose-track the shoulders (solve.shoulders) beside the face


def expression_basis(neutral_m: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    """The ARKit landmark basis (backend/rig/expressions.landmark_basis) on the actor's neutral face."""
    from backend.rig.expressions import landmark_basis

    return landmark_basis(neutral_m)


def drive_from_video(path: Path, config: DriveConfig | None = None, progress: Progress | None = None,
                     should_cancel: Callable[[], bool] | None = None,
                     neutral_px: np.ndarray | None = None) -> Drive:
    """A video file or a folder of frames -> Drive at the video's own frame rate.

    neutral_px: (478, 3) landmarks of the actor at rest (pixels of any image), or None to take the
    take's own median face. Raises BadVideoError (unreadable, too long, too large),
    NoFaceError (no frame has a face), CancelledError (should_cancel() turned true; checked every
    30 frames while tracking).
    """
    config = config or DriveConfig()
    info = probe(Path(path), config.frames)
    tracked = 0.9  # tracking is most of the time; the solve the rest

    def tracking(done: int, total: int) -> None:
        if progress:
            progress("track", tracked * min(done / max(total, 1), 1.0))

    track = track_faces(iter_frames(Path(path), config.frames), info.frames, tracking, should_cancel,
                        shoulders=config.solve.shoulders if config.track_shoulders else None)
    if should_cancel and should_cancel():
        from backend.errors import CancelledError
        raise CancelledError("cancelled after tracking")
    if progress:
        progress("solve", tracked)
    drive = solve_drive(track, info.fps, expression_basis, config.solve, info.size, neutral_px=neutral_px)
    if progress:
        progress("solve", 1.0)
    return drive


# --- the server's drive job ---------------------------------------------------------------------

MAX_ZIP_BYTES = 2 << 30  # unpacked size of a zip of frames (a zip bomb is refused, not unpacked)


def drive_request(video: bytes, name: str, frames_fps: float = 0.0, config: DriveConfig | None = None,
                  progress: Progress | None = None,
                  should_cancel: Callable[[], bool] | None = None) -> Drive:
    """A drive request's bytes -> Drive. The bytes go to a private temporary file (ffmpeg reads
    files) or, for a .zip of frames, a temporary folder; both are removed afterwards."""
    import tempfile
    import zipfile

    from backend.animation.video.frames import IMAGE_SUFFIXES
    from backend.errors import BadVideoError

    config = config or DriveConfig()
    suffix = Path(name).suffix.lower()[:8] or ".mp4"
    with tempfile.TemporaryDirectory(prefix="headlift_drive_") as tmp:
        source = Path(tmp) / f"take{suffix}"
        source.write_bytes(video)
        if suffix == ".zip":
            frames = Path(tmp) / "frames"
            frames.mkdir()
            try:
                with zipfile.ZipFile(source) as archive:
                    members = [m for m in archive.infolist() if not m.is_dir()
                               and Path(m.filename).suffix.lower() in IMAGE_SUFFIXES]
                    if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
                        raise BadVideoError(f"{name}: the frames unpack to more than "
                                            f"{MAX_ZIP_BYTES >> 30} GiB")
                    for i, m in enumerate(sorted(members, key=lambda m: m.filename)):
                        # Flat, numbered names: no path from the archive is ever used.
                        (frames / f"{i:06d}{Path(m.filename).suffix.lower()}").write_bytes(archive.read(m))
            except (zipfile.BadZipFile, OSError) as exc:
                raise BadVideoError(f"{name} is not a readable zip of frames") from exc
            source = frames
            if frames_fps > 0:
                from dataclasses import replace
                config = replace(config, frames=replace(config.frames, folder_fps=frames_fps))
        return drive_from_video(source, config, progress, should_cancel)


def to_drive_result(request_id: str, drive: Drive):
    """Drive -> the protocol's DriveResult (shared.messages)."""
    from shared.messages import DriveResult

    return DriveResult(id=request_id, fps=float(drive.fps), expression_names=list(drive.expression_names),
                       joint_names=list(drive.joint_names), weights=drive.weights, poses=drive.poses,
                       missing=[[int(a), int(b)] for a, b in drive.missing],
                       warnings=list(drive.warnings))
