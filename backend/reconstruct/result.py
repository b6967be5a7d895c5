"""The result of reconstructing one portrait: plain arrays, no torch, ready for the wire or a file."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from backend.render.camera import OrthoCamera

if TYPE_CHECKING:  # the rig module needs torch; a Reconstruction stays plain arrays
    from backend.rig.model import HeadRig


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
