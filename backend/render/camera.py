"""The cameras every part shares: the squarely-facing rotation and the scaled-orthographic camera
that saw a portrait."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
