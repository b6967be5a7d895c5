"""The result of reconstructing one portrait: plain arrays, no torch, ready for the wire or a file."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the rig module needs torch; a Reconstruction stays plain arrays
    from backend.rig.model import HeadRig


# A camera that sees the head squarely (canonical -> OpenCV camera axes): image right = canonical
# +X, image down = -Z, away from the viewer = +Y. The one copy: render, metrics and the video
# solve all start their cameras and head rotations from it.
R_FRONT = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@dataclass
class OrthoCamera:
    """Scaled-orthographic camera that saw the portrait.

    A canonical point p (metres; +X right of the image, +Z up, face toward -Y) lands on pixel
        (u, v) = pixels_per_metre * (R_cam_from_canonical @ p)[:2] + principal_px
    in camera space x right, y down, z away from the viewer (OpenCV axes). u is the column, v the row.
    """

    R_cam_from_canonical: np.ndarray  # (3, 3) float64, rotation
    pixels_per_metre: float
    principal_px: np.ndarray  # (2,) float64, pixel of the canonical origin
    image_size: tuple[int, int]  # (width, height) of the portrait in pixels

    def project(self, points_m: np.ndarray) -> np.ndarray:
        """points_m: (N, 3) canonical metres -> (N, 3): pixel u, pixel v, depth in metres (larger = farther)."""
        cam = points_m @ self.R_cam_from_canonical.T
        uv = cam[:, :2] * self.pixels_per_metre + self.principal_px
        return np.concatenate([uv, cam[:, 2:3]], axis=1)


@dataclass
class Reconstruction:
    """A textured head in the canonical head frame.

    verts_m:    (V, 3) float32, metres, canonical frame (origin between the ears, +Z up, face toward -Y)
    faces:      (F, 3) int32, counter-clockwise seen from outside (normals point out)
    loop_uvs:   (F, 3, 2) float32, per-corner UVs in [0, 1], origin bottom-left (Blender's convention)
    texture:    (T, T, 3) uint8 RGB, row 0 is the TOP of the image (as image files store it)
    landmarks_m:(478, 3) float32, the face-mesh landmarks lifted into the canonical frame
    """

    name: str
    verts_m: np.ndarray
    faces: np.ndarray
    loop_uvs: np.ndarray
    texture: np.ndarray
    landmarks_m: np.ndarray
    camera: OrthoCamera
    timings_s: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    rig: HeadRig | None = None  # expressions + skeleton; verts_m / faces are its rest mesh
