"""Face-mesh landmarks in every frame of a driving video, with mediapipe's video-mode tracker.

Video mode re-uses the last frame's face box, so the mesh model runs without the detector on most
frames (~5 ms a frame here). Frames where no face is found are recorded, not invented: the solver
bridges them afterwards and reports which they were. With a ShoulderConfig the shoulders are
tracked in the same pass (backend/animation/video/shoulders.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from backend.animation.video.shoulders import ShoulderConfig, ShoulderTrack, ShoulderTracker
from backend.errors import CancelledError


@dataclass
class Track:
    """landmarks_px: (T, 478, 3) float32 column, row, depth (pixels, like perception's), NaN where
    no face was found; found: (T,) bool; shoulders: the pose track when it was asked for."""

    landmarks_px: np.ndarray
    found: np.ndarray
    shoulders: ShoulderTrack | None = None

    def missing_ranges(self) -> list[tuple[int, int]]:
        """[(first, last), ...] inclusive frame ranges without a face."""
        ranges, start = [], None
        for i, ok in enumerate(self.found):
            if not ok and start is None:
                start = i
            if ok and start is not None:
                ranges.append((start, i - 1))
                start = None
        if start is not None:
            ranges.append((start, len(self.found) - 1))
        return ranges


def track_faces(frames: Iterable[np.ndarray], total: int = 0,
                progress: Callable[[int, int], None] | None = None,
                should_cancel: Callable[[], bool] | None = None,
                min_confidence: float = 0.5, shoulders: ShoulderConfig | None = None) -> Track:
    """frames: (H, W, 3) uint8 each -> Track. ``progress(done, total)`` every 30 frames;
    ``should_cancel()`` is checked as often and raises CancelledError. ``shoulders``: also track
    the shoulders with this config (None: the face only)."""
    import mediapipe as mp

    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1,
                                           refine_landmarks=True,
                                           min_detection_confidence=min_confidence,
                                           min_tracking_confidence=min_confidence)
    pose = ShoulderTracker(shoulders, total) if shoulders is not None else None
    rows: list[np.ndarray] = []
    nothing = np.full((478, 3), np.nan, np.float32)
    try:
        for i, frame in enumerate(frames):
            if i % 30 == 0:
                if should_cancel and should_cancel():
                    raise CancelledError(f"cancelled at frame {i}")
                if progress:
                    progress(i, total)
            h, w = frame.shape[:2]
            if pose is not None:
                pose.add(frame)
            found = mesh.process(np.ascontiguousarray(frame)).multi_face_landmarks
            if not found:
                rows.append(nothing)
                continue
            pts = np.array([[p.x, p.y, p.z] for p in found[0].landmark], np.float32)
            rows.append(np.stack([pts[:, 0] * w, pts[:, 1] * h, pts[:, 2] * w], axis=1))
    finally:
        mesh.close()
        if pose is not None:
            pose.close()
    landmarks = np.stack(rows) if rows else np.zeros((0, 478, 3), np.float32)
    return Track(landmarks_px=landmarks, found=~np.isnan(landmarks[:, 0, 0]),
                 shoulders=pose.result() if pose is not None else None)
