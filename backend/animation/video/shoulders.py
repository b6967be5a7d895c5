"""The shoulders of a driving take: tracked with mediapipe's pose model beside the face mesh, solved
for the bust's roll and each collar's shrug.

Tracking: mediapipe 0.10.21's legacy ``solutions.pose`` in video mode, landmarks 11 (the subject's
left shoulder) and 12 (right). Only the full model (model_complexity=1) ships with the wheel; the
lite one is downloaded on first use, which an offline backend cannot do. The model costs ~3x the face
mesh here, so it runs on every ``every``-th frame and the solve interpolates between (shoulders move
slowly; the curves are smoothed afterwards anyway). A frame counts as seeing the shoulders only when
both are confidently visible AND inside the frame: at the frame's edge mediapipe still answers with
high visibility for shoulders it only guesses (lp_d9's are cut by the bottom edge: y 1.00, visibility
0.75-0.99).

Solve, relative to the take's median (as the face's rest is the median face):
- roll: the shoulder line's in-plane tilt, given to the ROOT joint as a rotation about the forward
  axis. The root turns the whole bust about a point low in the chest, which is what a leaning body
  does: the neck base and the head travel with the shoulders. Rolling the collars instead would only
  lift one shoulder's tip while the neck stayed upright on a level chest.
- rise: each shoulder's height below an ear-level face point (landmarks 234/454, which a shrug does
  not move and a nod barely does), in the bust's rolled frame, in shoulder widths -> that side's
  collar rotation about the forward axis. Two shoulder points cannot tell a leaning bust from one
  shoulder shrugged alone (no lower body in a bust shot); ``roll_share`` of the line's tilt goes to
  the root, the rest to opposite collar shrugs. The default gives it all to the root: a take's
  shoulders tilt with the body far more often than one shrugs alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FACE_EARS = (234, 454)  # face-mesh points at the sides of the face, ear level


@dataclass
class ShoulderConfig:
    every: int = 2  # run the pose model on every n-th frame (1: all), interpolate between
    min_visibility: float = 0.5  # mediapipe's per-landmark visibility, both shoulders
    edge_margin: float = 0.03  # of the frame's width/height; a shoulder nearer the edge is a guess
    min_seen_fraction: float = 0.5  # of the pose-tracked frames; fewer: no shoulder joint is driven
    min_confidence: float = 0.5  # the pose detector's and tracker's own thresholds
    roll_share: float = 1.0  # of the shoulder line's tilt read as bust roll, the rest as shrugs
    # Collar joint to shoulder joint, in shoulder widths: backend/rig/skeleton.py puts the collars
    # 0.035 m either side of the sternum and the shoulders at up to 0.19 m (~0.4 of a 0.34 m width).
    collar_lever: float = 0.4
    max_collar_rad: float = 0.5


@dataclass
class ShoulderTrack:
    """points_px: (T, 2, 2) column, row of the left (11) and right (12) shoulders, NaN where not
    seen; sampled: (T,) bool, frames the pose model ran on; seen: (T,) bool, frames where both
    shoulders were visible inside the frame (a subset of sampled)."""

    points_px: np.ndarray
    sampled: np.ndarray
    seen: np.ndarray


class ShoulderTracker:
    """Feed every frame in order with ``add(frame)``; ``result()`` -> ShoulderTrack.

    total: the take's expected frame count (0: unknown). Once so many frames have missed the
    shoulders that the take can no longer reach ``min_seen_fraction``, the pose model stops: a
    face-only take (the usual webcam framing) then pays for half its pose frames, not all."""

    def __init__(self, config: ShoulderConfig | None = None, total: int = 0) -> None:
        import mediapipe as mp

        self.config = config or ShoulderConfig()
        self._pose = mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1,
                                            smooth_landmarks=False, enable_segmentation=False,
                                            min_detection_confidence=self.config.min_confidence,
                                            min_tracking_confidence=self.config.min_confidence)
        self._points: list[np.ndarray] = []
        self._sampled: list[bool] = []
        every = max(self.config.every, 1)
        expected = -(-total // every)  # frames the model would run on
        self._give_up_after = (1 - self.config.min_seen_fraction) * expected if total > 0 else np.inf
        self._unseen = 0

    def add(self, frame: np.ndarray) -> None:
        """frame: (H, W, 3) uint8."""
        c = self.config
        i = len(self._points)
        point = np.full((2, 2), np.nan, np.float32)
        sampled = i % max(c.every, 1) == 0 and self._unseen <= self._give_up_after
        if sampled:
            h, w = frame.shape[:2]
            found = self._pose.process(np.ascontiguousarray(frame)).pose_landmarks
            if found:
                marks = [found.landmark[k] for k in (11, 12)]
                xy = np.array([[m.x, m.y] for m in marks])
                inside = ((xy >= c.edge_margin) & (xy <= 1 - c.edge_margin)).all()
                if inside and min(m.visibility for m in marks) >= c.min_visibility:
                    point = (xy * [w, h]).astype(np.float32)
            self._unseen += int(np.isnan(point[0, 0]))
        self._points.append(point)
        self._sampled.append(sampled)

    def result(self) -> ShoulderTrack:
        points = np.stack(self._points) if self._points else np.zeros((0, 2, 2), np.float32)
        return ShoulderTrack(points_px=points, sampled=np.array(self._sampled, bool),
                             seen=~np.isnan(points[:, 0, 0]))

    def close(self) -> None:
        self._pose.close()


@dataclass
class ShoulderMotion:
    """Per frame, relative to the take's median, before smoothing: roll (T,) radians of the bust
    about the forward axis (canonical +Y, positive lowers the subject's left shoulder); rise (T, 2)
    left, right shoulder elevation in shoulder widths (positive up). NaN where not seen."""

    roll: np.ndarray
    rise: np.ndarray


def shoulder_motion(points_px: np.ndarray, seen: np.ndarray, face_px: np.ndarray,
                    roll_share: float = 1.0) -> ShoulderMotion:
    """points_px (T, 2, 2) the two shoulders (either order), seen (T,), face_px (T, 478, 2+)
    face-mesh landmarks (NaN rows where no face) -> ShoulderMotion (left: the image-right one).
    Frames without a face or shoulders are NaN."""
    T = len(seen)
    roll, rise = np.full(T, np.nan), np.full((T, 2), np.nan)
    ok = seen & np.isfinite(face_px[:, 0, 0])
    if not ok.any():
        return ShoulderMotion(roll, rise)
    # By image side, not by mediapipe's anatomical label: the face solve reads image right as the
    # subject's left (+X), and a mirrored (selfie) take must not flip the line by 180 deg.
    pts = points_px[ok].astype(np.float64)
    swap = pts[:, 0, 0] < pts[:, 1, 0]
    pts[swap] = pts[swap][:, ::-1]
    left, right = pts[:, 0], pts[:, 1]
    ear = face_px[ok][:, list(FACE_EARS), :2].astype(np.float64).mean(1)
    d = left - right
    # Image rows grow downwards: the subject's left shoulder (image right) dropping is a positive
    # angle, which is a positive rotation about canonical +Y (x left, z up: +X goes to -Z).
    line = np.arctan2(d[:, 1], d[:, 0])
    width = np.hypot(d[:, 0], d[:, 1])
    # Each shoulder's height below the ear point, measured across the shoulder line (so a rolled
    # bust reads no shrug), in shoulder widths.
    across = np.stack([-np.sin(line), np.cos(line)], 1)  # unit "down" of the rolled bust, image px
    depth = np.stack([np.sum((p - ear) * across, 1) for p in (left, right)], 1) / width[:, None]
    # The tilt the root does not take is shared as opposite shrugs: half the height difference it
    # makes between the shoulders goes to each side (a positive tilt drops the left one).
    tilt = line - np.median(line)
    side = 0.5 * np.sin((1 - roll_share) * tilt)
    roll[ok] = roll_share * tilt
    rise[ok] = np.median(depth, 0) - depth + np.stack([-side, side], 1)
    return ShoulderMotion(roll, rise)


def collar_rotations(rise: np.ndarray, config: ShoulderConfig) -> np.ndarray:
    """rise (T, 2) left/right in shoulder widths -> (T, 2, 3) axis-angle of the left and right
    collars (canonical frame). Raising the left (+X) end is a negative turn about +Y, the right
    (-X) end a positive one."""
    angle = np.arcsin(np.clip(rise / config.collar_lever, -1.0, 1.0))
    angle = np.clip(angle, -config.max_collar_rad, config.max_collar_rad)
    out = np.zeros((len(rise), 2, 3))
    out[:, 0, 1], out[:, 1, 1] = -angle[:, 0], angle[:, 1]
    return out
