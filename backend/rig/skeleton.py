"""Where the bust's joints sit: SMPL's root, neck, collars, head and shoulders, from the mesh itself.

The reconstructed bust has no bones to read, so each joint is placed from anatomy the geometry does
show: the face landmarks (chin, jaw angles, the canonical origin between the ears), the neck as the
narrow part of the mesh below the chin, the shoulders as the widest part below it, the cut at the
bottom of the bust. Left is the subject's left, +X.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.controls import POSE_JOINTS, POSE_PARENTS

CHIN = 152
JAW_ANGLES = (172, 397)  # face-mesh landmarks at the angles of the mandible (right, left)


@dataclass
class SkeletonConfig:
    # The skull base (atlas) sits this fraction of the ear-to-chin drop below the ears.
    head_drop_fraction: float = 0.3
    slab_m: float = 0.004  # half-thickness of the horizontal slices that measure the mesh
    # The neck ends where the mesh below the chin grows this much wider than the neck itself.
    shoulder_widening: float = 1.3
    min_neck_length_m: float = 0.035  # chin to neck base, clamps for odd meshes
    max_neck_length_m: float = 0.10
    collar_half_spacing_m: float = 0.035  # sternoclavicular joints either side of the sternum
    collar_drop_m: float = 0.015
    shoulder_inset_fraction: float = 0.8  # glenohumeral joint inside the outermost shoulder point
    max_shoulder_half_breadth_m: float = 0.19
    shoulder_depth_m: float = 0.045  # joint centre below the top of the shoulder
    root_above_bottom_m: float = 0.04


@dataclass
class Skeleton:
    """names == POSE_JOINTS; parents (J,) int32, -1 for the root; rest_m (J, 3) float32 canonical.
    neck_half_width_m: how wide the neck measured (skinning uses it to tell neck from hair)."""

    names: tuple[str, ...]
    parents: np.ndarray
    rest_m: np.ndarray
    neck_half_width_m: float


def joint_parents(names: tuple[str, ...] = POSE_JOINTS) -> np.ndarray:
    """(J,) int32 parent indices from shared.controls.POSE_PARENTS, -1 for the root."""
    parents = [POSE_PARENTS[n] for n in names]
    return np.array([-1 if p is None else names.index(p) for p in parents], dtype=np.int32)


def _slices(verts_m: np.ndarray, z_levels: np.ndarray, slab_m: float):
    """Per level: the vertices within slab_m of that height (list of (N_i, 3))."""
    order = np.argsort(verts_m[:, 2])
    z_sorted = verts_m[order, 2]
    lo = np.searchsorted(z_sorted, z_levels - slab_m)
    hi = np.searchsorted(z_sorted, z_levels + slab_m)
    return [verts_m[order[a:b]] for a, b in zip(lo, hi)]


def _half_width(points: np.ndarray) -> float:
    """Half the x-extent of a slice, robust to a few stray vertices."""
    if len(points) < 8:
        return 0.0
    left, right = np.percentile(points[:, 0], [1, 99])
    return 0.5 * float(right - left)


def build_skeleton(verts_m: np.ndarray, landmarks_m: np.ndarray, bust_bottom_z_m: float | None = None,
                   config: SkeletonConfig | None = None) -> Skeleton:
    """verts_m (V, 3) canonical metres, landmarks_m (478, 3) -> the rest skeleton.

    bust_bottom_z_m: where the bust is cut (the prior's), else the mesh's lowest point.
    """
    c = config or SkeletonConfig()
    verts = np.asarray(verts_m, dtype=np.float64)
    lm = np.asarray(landmarks_m, dtype=np.float64)
    chin = lm[CHIN]
    bottom = float(verts[:, 2].min()) if bust_bottom_z_m is None else max(bust_bottom_z_m, verts[:, 2].min())

    # Neck base: walk down from the chin until the slices widen into shoulders.
    z_levels = np.arange(chin[2] - 0.01, bottom + 0.02, -0.005)
    slices = _slices(verts, z_levels, c.slab_m)
    widths = np.array([_half_width(s) for s in slices])
    top = z_levels >= chin[2] - 0.01 - c.min_neck_length_m
    neck_width = float(np.median(widths[top])) if top.any() else float(widths[0])
    wide = (widths > c.shoulder_widening * neck_width) & ~top
    neck_z = float(z_levels[np.argmax(wide)]) + 0.01 if wide.any() else chin[2] - c.max_neck_length_m
    neck_z = float(np.clip(neck_z, chin[2] - c.max_neck_length_m, chin[2] - c.min_neck_length_m))

    # The neck's front-to-back centre, from the slices between the chin and the neck base.
    neck_slices = [s for z, s in zip(z_levels, slices) if neck_z <= z <= chin[2] - 0.01 and len(s) >= 8]
    neck_pts = np.concatenate(neck_slices) if neck_slices else verts[np.abs(verts[:, 2] - neck_z) < 0.01]
    central = neck_pts[np.abs(neck_pts[:, 0]) < 0.04]
    if len(central) < 8:
        central = neck_pts
    front, back = np.percentile(central[:, 1], [1, 99])
    neck_y = float(np.clip(0.5 * (front + back), -0.03, 0.04))

    head = np.array([0.0, float(np.clip(neck_y, -0.01, 0.03)), c.head_drop_fraction * chin[2]])
    neck = np.array([0.0, neck_y, neck_z])
    collar_y = 0.5 * (front + neck_y)

    # Shoulders: the widest part of the bust below the neck base, on each side.
    below = verts[(verts[:, 2] < neck_z) & (verts[:, 2] > bottom + 0.01)]
    if len(below) < 8:
        below = verts
    joints = {"root": np.array([0.0, neck_y, bottom + c.root_above_bottom_m]), "neck": neck, "head": head}
    for side, name in ((1.0, "left"), (-1.0, "right")):
        joints[f"{name}_collar"] = np.array([side * c.collar_half_spacing_m, collar_y, neck_z - c.collar_drop_m])
        reach = float(np.percentile(side * below[:, 0], 99.5))
        x = side * min(c.shoulder_inset_fraction * reach, c.max_shoulder_half_breadth_m)
        column = below[np.abs(below[:, 0] - x) < 0.01]
        if len(column) >= 8:
            top_z = float(np.percentile(column[:, 2], 99))
            y = float(np.clip(np.median(column[:, 1]), front, back))
        else:
            top_z, y = neck_z, neck_y
        z = max(top_z - c.shoulder_depth_m, bottom + 0.02)
        joints[f"{name}_shoulder"] = np.array([x, y, z])

    rest = np.stack([joints[n] for n in POSE_JOINTS]).astype(np.float32)
    return Skeleton(POSE_JOINTS, joint_parents(), rest, neck_width)
