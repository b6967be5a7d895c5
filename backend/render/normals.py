"""Smooth vertex normals of a triangle mesh (numpy or torch in, the same kind out)."""
from __future__ import annotations

import numpy as np
import torch


def vertex_normals(verts, faces):
    """Smooth unit vertex normals: face normals weighted by face area, summed, normalised.

    verts: (V, 3) float, faces: (F, 3) int, counter-clockwise seen from outside.
    Returns (V, 3) float32 of the same kind as verts (numpy array or torch tensor). Vertices with no
    area around them get (0, 0, 0).
    """
    as_numpy = isinstance(verts, np.ndarray)
    v = torch.as_tensor(verts, dtype=torch.float32)
    f = torch.as_tensor(faces, dtype=torch.int64, device=v.device)
    corners = v[f]  # (F, 3 corners, 3 xyz)
    # The unnormalised cross product is twice the face area times its unit normal: area weighting.
    face_n = torch.linalg.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0], dim=1)
    normals = torch.zeros_like(v).index_add_(0, f.reshape(-1), face_n.repeat_interleave(3, dim=0))
    normals = torch.nn.functional.normalize(normals, dim=1)
    return normals.numpy() if as_numpy else normals
