"""What the photo shows at a canonical point: its colour, whether the person mask covers it, and the
two colours the head's stages tell apart (the skin at the face's sides and the hair on top).

The ears (is that skin or hair where an ear would be?) and the head prior's hair profile (is the
bump beside the skull an ear or hair?) both read the photo through here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.reconstruct.silhouette import Canvas
from backend.render.camera import OrthoCamera

FOREHEAD_TOP = 10
NOSE_TIP = 1
# Face-outline landmarks from temple to jaw on both sides: the skin there faces sideways, as an
# ear does, so it is lit more like one than the cheeks' highlights are.
SIDE_LANDMARKS = (234, 93, 132, 58, 454, 323, 361, 288)


def side_skin_points(landmarks_m: np.ndarray) -> np.ndarray:
    """(8, 3) skin at the sides of the face: a fifth of the way in from the outline's side
    landmarks toward the nose tip."""
    lm = np.asarray(landmarks_m, np.float64)
    side = lm[list(SIDE_LANDMARKS)]
    return side + 0.2 * (lm[NOSE_TIP] - side)


@dataclass(frozen=True)
class PhotoColours:
    image_rgb: np.ndarray  # (H, W, 3) uint8, the portrait
    camera: OrthoCamera
    canvas: Canvas  # the person mask in the camera's image plane

    def in_mask(self, points_m: np.ndarray) -> np.ndarray:
        """(N, 3) canonical points -> (N,) bool: inside the person mask (False off the canvas)."""
        canvas_px = np.round(self.canvas.to_pixel((points_m @ self.camera.R_cam_from_canonical.T)[:, :2])).astype(int)
        ok = ((canvas_px >= 0) & (canvas_px < self.canvas.mask.shape[0])).all(1)
        ok[ok] = self.canvas.mask[canvas_px[ok, 1], canvas_px[ok, 0]]
        return ok

    def at(self, points_m: np.ndarray) -> np.ndarray:
        """(N, 3) canonical points -> (M, 3) the photo's colours in [0, 1] at those inside the photo
        and the person mask."""
        h, w = self.image_rgb.shape[:2]
        px = np.round(self.camera.project(points_m)[:, :2]).astype(int)
        ok = ((px >= 0) & (px < [w, h])).all(1) & self.in_mask(points_m)
        return self.image_rgb[px[ok, 1], px[ok, 0]].astype(np.float64) / 255.0

    def skin_and_hair(self, landmarks_m: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(3,) the photo's skin at the face's sides and (3,) its hair under the top of the
        silhouette above the forehead (a bald scalp is skin there); None where it shows none."""
        column = landmarks_m[FOREHEAD_TOP].astype(np.float64) + np.outer(np.arange(0, 0.2, 0.0025), [0, 0, 1])
        inside = self.in_mask(column)
        top_z = column[np.flatnonzero(inside)[-1], 2] if inside.any() else column[0, 2]
        dx, dz = np.meshgrid(np.linspace(-0.02, 0.02, 5), np.linspace(-0.02, -0.005, 4))
        crown = np.stack([landmarks_m[FOREHEAD_TOP, 0] + dx.ravel(),
                          np.full(dx.size, landmarks_m[FOREHEAD_TOP, 1]), top_z + dz.ravel()], 1)
        skin = self.at(side_skin_points(landmarks_m))
        hair = self.at(crown)
        if len(skin) == 0 or len(hair) == 0:
            return None, None
        return np.median(skin, 0), np.median(hair, 0)

    def skin_likeness(self, skin: np.ndarray | None, hair: np.ndarray | None) -> np.ndarray:
        """(S, S) bool over the canvas: in the person mask and nearer the face's side skin (3,) in
        colour than the hair (3,) (skin_and_hair; all of the mask when the two look alike, as on a
        bald head, or when the photo shows neither)."""
        cfg = self.canvas.config
        size = self.canvas.mask.shape[0]
        axis = (np.arange(size) + 0.5) * cfg.resolution_m - cfg.half_extent_m
        px = np.stack(np.meshgrid(axis, axis), -1) * self.camera.pixels_per_metre + self.camera.principal_px
        h, w = self.image_rgb.shape[:2]
        col = np.clip(np.round(px[..., 0]).astype(int), 0, w - 1)
        row = np.clip(np.round(px[..., 1]).astype(int), 0, h - 1)
        colour = self.image_rgb[row, col].astype(np.float32) / 255.0
        if skin is None or np.linalg.norm(skin - hair) < 0.1:
            return self.canvas.mask
        nearer_skin = np.linalg.norm(colour - skin, axis=-1) < np.linalg.norm(colour - hair, axis=-1)
        return self.canvas.mask & nearer_skin
