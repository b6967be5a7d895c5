"""Quality measures that need no ground-truth 3-D: silhouettes and landmarks on our own renders.

The judge is independent of the reconstruction where it can be: mediapipe's face detector and face
mesh run again on renders of the head (see ../shared/DESIGN.md, "How quality is measured").
"""
from __future__ import annotations

import numpy as np

from backend.reconstruction import OrthoCamera

LEFT_EYE_OUTER, RIGHT_EYE_OUTER = 263, 33


def bust_region(camera: OrthoCamera, bust_bottom_z_m: float, half_width_m: float) -> np.ndarray:
    """(H, W) bool: pixels whose line of sight crosses the head's mid-plane inside the bust volume
    (above the bust's bottom cut and within its side walls), where the mesh can exist at all."""
    w, h = camera.image_size
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    x = (u - camera.principal_px[0]) / camera.pixels_per_metre
    y = (v - camera.principal_px[1]) / camera.pixels_per_metre
    R = camera.R_cam_from_canonical
    canon = np.stack([x, y, np.zeros_like(x)], -1) @ R  # R^T [x, y, 0]
    return (canon[..., 2] > bust_bottom_z_m) & (np.abs(canon[..., 0]) < half_width_m)


def silhouette_iou(render_mask: np.ndarray, person_mask: np.ndarray, region: np.ndarray) -> float:
    """IoU of the rendered head's silhouette and the person mask, both limited to `region`."""
    a = render_mask & region
    b = (person_mask > 0.5) & region
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def landmark_nme(found_px: np.ndarray, expected_px: np.ndarray) -> float:
    """Mean landmark distance over the inter-ocular distance (outer eye corners), both (N, 2+)."""
    iod = np.linalg.norm(expected_px[LEFT_EYE_OUTER, :2] - expected_px[RIGHT_EYE_OUTER, :2])
    return float(np.linalg.norm(found_px[:, :2] - expected_px[:, :2], axis=1).mean() / iod)
