"""Drive a head from a video of a face: the one entry point the CLI, the server job and the
evaluation share. Frames stream from the file (backend/video/frames.py, length-capped), the face is
tracked in every frame, and the take is solved for ARKit expression weights and neck/head rotation
against the landmark-level expression basis of backend/rig/expressions.py.

Memory stays bounded by the take's length cap: one decoded frame at a time, plus 478 landmarks per
frame (10 min at 30 fps is ~100 MB of landmarks).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from backend.video.frames import FrameConfig, iter_frames, probe
from backend.video.solve import Drive, SolveConfig, solve_drive
from backend.video.track import track_faces

# progress(stage, fraction in [0, 1]) like the reconstruction pipeline's.
Progress = Callable[[str, float], None]


@dataclass
class DriveConfig:
    frames: FrameConfig = field(default_factory=FrameConfig)
    solve: SolveConfig = field(default_factory=SolveConfig)


def expression_basis(neutral_m: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    """The ARKit landmark basis (backend/rig/expressions.landmark_basis) on the actor's neutral face."""
    from backend.rig.expressions import landmark_basis

    return landmark_basis(neutral_m)


def drive_from_video(path: Path, config: DriveConfig | None = None, progress: Progress | None = None,
                     should_cancel: Callable[[], bool] | None = None,
                     neutral_px: np.ndarray | None = None) -> Drive:
    """A video file or a folder of frames -> Drive at the video's own frame rate.

    neutral_px: (478, 3) landmarks of the actor at rest (pixels of any image), or None to take the
    take's own least-activated face. Raises BadVideoError (unreadable, too long, too large),
    NoFaceError (no frame has a face), CancelledError (should_cancel() turned true; checked every
    30 frames while tracking).
    """
    config = config or DriveConfig()
    info = probe(Path(path), config.frames)
    tracked = 0.9  # tracking is most of the time; the solve the rest

    def tracking(done: int, total: int) -> None:
        if progress:
            progress("track", tracked * min(done / max(total, 1), 1.0))

    track = track_faces(iter_frames(Path(path), config.frames), info.frames, tracking, should_cancel)
    if should_cancel and should_cancel():
        from backend.errors import CancelledError
        raise CancelledError("cancelled after tracking")
    if progress:
        progress("solve", tracked)
    drive = solve_drive(track, info.fps, expression_basis, config.solve, info.size, neutral_px=neutral_px)
    if progress:
        progress("solve", 1.0)
    return drive
