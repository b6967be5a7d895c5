"""Camera and canonical head frame from the face-mesh landmarks.

The portrait is treated as a scaled-orthographic view (portraits are shot with long lenses, and
mediapipe's landmark depth is itself orthographic). Rotation comes from the landmarks' own
symmetry: left/right pairs give the head's X axis, chin -> forehead its up axis.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.render.camera import OrthoCamera

# Face-mesh indices of left/right symmetric landmarks (the person's left first, on the image right).
LEFT = np.array([263, 362, 454, 291, 356, 323, 361, 288, 397, 386, 374])
RIGHT = np.array([33, 133, 234, 61, 127, 93, 132, 58, 172, 159, 145])
FOREHEAD, CHIN = 10, 152
EYE_OUTER = (33, 263)
FACE_SIDES = (234, 454)


@dataclass
class CameraConfig:
    # Adult averages used to give the head metric size (one photo has no absolute scale).
    eye_outer_distance_m: float = 0.090
    face_width_m: float = 0.140
    # The chin->forehead line of the face mesh leans back from the head's vertical axis.
    face_line_pitch_deg: float = 8.0
    # The ear axis sits behind the face contour at cheek level and a little below the eyes.
    ear_behind_contour_m: float = 0.025
    ear_below_eyes_m: float = 0.025


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def head_rotation(landmarks_px: np.ndarray, config: CameraConfig) -> np.ndarray:
    """landmarks_px: (478, 3) column, row, depth -> R_cam_from_canonical (3, 3).

    Columns of R are the canonical axes seen in camera space (x right, y down, z away):
    +X the person's left, +Y the back of the head, +Z up.
    """
    x_axis = _unit((landmarks_px[LEFT] - landmarks_px[RIGHT]).mean(axis=0))
    face_up = landmarks_px[FOREHEAD] - landmarks_px[CHIN]
    up = _unit(face_up - x_axis * (face_up @ x_axis))
    back = np.cross(up, x_axis)
    # Tilt the face line forward about X so that +Z is the skull's vertical, not the face's slope.
    a = np.radians(config.face_line_pitch_deg)
    up, back = np.cos(a) * up + np.sin(a) * back, np.cos(a) * back - np.sin(a) * up
    return np.stack([x_axis, back, up], axis=1)


def estimate_camera(landmarks_px: np.ndarray, image_size: tuple[int, int],
                    config: CameraConfig | None = None) -> tuple[OrthoCamera, np.ndarray]:
    """landmarks_px: (478, 3) -> (camera, landmarks_m (478, 3) in the canonical frame)."""
    config = config or CameraConfig()
    R = head_rotation(landmarks_px, config)
    eyes = np.linalg.norm(landmarks_px[EYE_OUTER[0]] - landmarks_px[EYE_OUTER[1]])
    width = np.linalg.norm(landmarks_px[FACE_SIDES[0]] - landmarks_px[FACE_SIDES[1]])
    pixels_per_metre = 0.5 * (eyes / config.eye_outer_distance_m + width / config.face_width_m)

    rotated_m = landmarks_px @ R / pixels_per_metre  # canonical axes, origin not yet placed
    sides = rotated_m[list(FACE_SIDES)]
    eyes_z = rotated_m[list(EYE_OUTER), 2].mean()
    origin_m = np.array([sides[:, 0].mean(), sides[:, 1].mean() + config.ear_behind_contour_m,
                         eyes_z - config.ear_below_eyes_m])
    landmarks_m = rotated_m - origin_m
    origin_px = R @ origin_m * pixels_per_metre
    camera = OrthoCamera(R_cam_from_canonical=R, pixels_per_metre=float(pixels_per_metre),
                         principal_px=origin_px[:2].copy(), image_size=tuple(image_size))
    return camera, landmarks_m.astype(np.float32)
