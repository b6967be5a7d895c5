"""The skull: an egg in the canonical head frame, sized from the face's landmarks.

One owner for the skull's shape: the head prior grows hair round it, the ears are attached to its
sides, and both read it from here (a value handed to them, not a call back into the prior).

Canonical frame (metres): x toward the subject's left, y backward (the face looks along -y), z up.
The egg has one half-breadth (x) and height (z), and a forward (-y) and a backward (+y) reach.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# Forehead and temple part of the face-mesh outline (above the eyes), which should sit on the skull.
UPPER_FACE_OUTLINE = [10, 338, 297, 332, 284, 251, 389, 109, 67, 103, 54, 21, 162]
FACE_SURFACE = slice(0, 468)  # the 10 iris landmarks are left out of the surface


@dataclass(frozen=True)
class SkullConfig:
    half_breadth_m: float = 0.078
    front_m: float = 0.080  # forward reach of the egg when the face outline cannot fit it
    face_inset_m: float = 0.004  # the skull stays this far behind the face outline
    back_m: float = 0.100
    half_height_m: float = 0.118
    centre_m: tuple[float, float, float] = (0.0, 0.0, 0.025)


@dataclass(frozen=True)
class Skull:
    centre_m: tuple[float, float, float]
    half_breadth_m: float
    front_m: float  # forward (-y) reach from the centre
    back_m: float  # backward (+y) reach
    half_height_m: float

    @classmethod
    def fit(cls, landmarks_m: np.ndarray, config: SkullConfig = SkullConfig()) -> "Skull":
        """landmarks_m (478, 3) -> the egg: at least as broad as the face outline (so the face never
        sticks out sideways), reaching forward so the forehead and temples of the outline lie on it
        (the face then continues into the skull instead of standing in front of it)."""
        c = config
        face_half_width = float(np.abs(landmarks_m[FACE_SURFACE, 0]).max())
        half_breadth = max(c.half_breadth_m, face_half_width + 0.006)
        ring = landmarks_m[UPPER_FACE_OUTLINE].astype(np.float64) - np.asarray(c.centre_m)
        rest = 1.0 - (ring[:, 0] / half_breadth) ** 2 - (ring[:, 2] / c.half_height_m) ** 2
        ok = (rest > 0.05) & (ring[:, 1] < 0)
        if ok.any():
            reach = np.median(-ring[ok, 1] / np.sqrt(rest[ok])) - c.face_inset_m
            front = float(np.clip(reach, 0.06, 0.11))
        else:
            front = c.front_m
        return cls(c.centre_m, half_breadth, front, c.back_m, c.half_height_m)

    def radii(self, d: torch.Tensor) -> torch.Tensor:
        """d (..., 3) offsets from the centre -> (..., 3) the egg's semi-axes on d's side."""
        ry = torch.where(d[..., 1] < 0, torch.tensor(self.front_m), torch.tensor(self.back_m))
        return torch.stack([torch.full_like(ry, self.half_breadth_m), ry,
                            torch.full_like(ry, self.half_height_m)], dim=-1)

    def side_x(self, y: float, z: float) -> float:
        """The egg's half-breadth at canonical (y, z) (0 outside its side outline)."""
        cy, cz = self.centre_m[1], self.centre_m[2]
        ry = self.front_m if y - cy < 0 else self.back_m
        rest = 1.0 - ((y - cy) / ry) ** 2 - ((z - cz) / self.half_height_m) ** 2
        return float(self.half_breadth_m * np.sqrt(max(rest, 0.0)))

    def outside(self, points_m: torch.Tensor) -> torch.Tensor:
        """points_m (N, 3) -> (N,) bool: beyond the bare egg."""
        d = points_m - torch.tensor(self.centre_m, dtype=torch.float32)
        return (d / self.radii(d)).norm(dim=1) > 1.0

    def silhouette_radius(self, R_cam_from_canonical: np.ndarray, bins: int) -> np.ndarray:
        """(bins,) the egg's silhouette radius round its centre in a camera's image plane."""
        g = torch.randn(40000, 3, generator=torch.Generator().manual_seed(0))
        g = g / g.norm(dim=1, keepdim=True)
        surface = (g * self.radii(g)).numpy().astype(np.float64)
        return silhouette_radius(surface @ R_cam_from_canonical.T, bins)


def angle_bin(xy: np.ndarray, bins: int) -> np.ndarray:
    """(N, 2) image-plane offsets from the skull centre -> (N,) int angle bins."""
    return ((np.arctan2(xy[:, 1], xy[:, 0]) + np.pi) / (2 * np.pi) * bins).astype(int) % bins


def silhouette_radius(proj: np.ndarray, bins: int) -> np.ndarray:
    """(bins,) how far points (N, 3) in camera axes, relative to the skull centre, reach from it in
    the image plane, per angle bin (0 where none)."""
    r = np.zeros(bins)
    np.maximum.at(r, angle_bin(proj[:, :2], bins), np.hypot(proj[:, 0], proj[:, 1]))
    return r
