"""Bake a colour field on the surface into a UV texture.

The texture is a square RGB image, row 0 at the top (v = 1), like image files. Texel (column c,
row r) has its centre at u = (c + 0.5) / size, v = 1 - (r + 0.5) / size. Texels whose centre lies in
a UV triangle get colour_fn of the surface point there, a thin band around each chart gets it at
the surface extrapolated past the chart's edge, and every other texel takes the colour of the
nearest covered texel: bilinear filtering and mipmaps never blend in an unrelated background.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from scipy import ndimage

from backend.render.normals import vertex_normals
from backend.render.raster import rasterize

ColourFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""colour_fn(points_m: (N, 3) float32, normals: (N, 3) float32 unit) -> (N, 3) float32 RGB in [0, 1]."""


def bake_texture(verts_m, faces, loop_uvs, size: int, colour_fn: ColourFn, extrapolate_px: float = 2.0,
                 chunk_texels: int = 1 << 20, device: str | torch.device = "cpu") -> np.ndarray:
    """Evaluate colour_fn on the surface behind every texel.

    verts_m:  (V, 3) float32 metres; faces: (F, 3) int vertex indices
    loop_uvs: (F, 3, 2) float32 per-corner UVs in [0, 1], origin bottom-left
    size:     texture side in texels
    colour_fn: called on surface points and smooth unit normals (canonical frame), in chunks of at
        most chunk_texels, as torch tensors on `device`
    extrapolate_px: empty texels up to this far from a chart also get colour_fn, at the point where
        the plane of the nearest covered texel's triangle continues. Bilinear lookups just inside a
        chart's edge read them, so the colour keeps its gradient across seams instead of flattening
        to the edge texel's value. Farther texels copy the nearest covered texel.
    Returns (size, size, 3) uint8 RGB, row 0 = top (v = 1).
    """
    v = torch.as_tensor(np.asarray(verts_m), dtype=torch.float32, device=device)
    f = torch.as_tensor(np.asarray(faces), dtype=torch.int64, device=device)
    uv = torch.as_tensor(np.asarray(loop_uvs), dtype=torch.float32, device=device).reshape(-1, 2)

    # Each face corner is its own UV-space vertex; depth is irrelevant (charts do not overlap).
    uv_px = torch.stack([uv[:, 0] * size, (1.0 - uv[:, 1]) * size, torch.zeros_like(uv[:, 0])], 1)
    corner_ids = torch.arange(uv_px.shape[0], device=device).reshape(-1, 3)
    frags = rasterize(uv_px, corner_ids, size, size)
    covered = (frags.tri_id >= 0).cpu().numpy()
    if not covered.any():
        return np.zeros((size, size, 3), np.uint8)

    distance, (rows, cols) = ndimage.distance_transform_edt(~covered, return_indices=True)
    nearest = torch.as_tensor((rows * size + cols).reshape(-1), device=device)
    texel = torch.as_tensor(np.flatnonzero(distance <= extrapolate_px), device=device)
    tri = frags.tri_id.reshape(-1)[nearest[texel]]
    # Barycentrics of the texel centre in its (nearest) triangle: exact where covered, extrapolated
    # (some negative) in the band around each chart.
    centre = torch.stack([texel % size, torch.div(texel, size, rounding_mode="floor")], 1) + 0.5
    bary = _barycentrics(uv_px[:, :2].reshape(-1, 3, 2)[tri], centre.to(torch.float32))
    # Past the edge of a sliver the weights explode; bound them (sums stay >= 1) to stay nearby.
    bary = bary.clamp(min=-1.0)
    bary = bary / bary.sum(dim=1, keepdim=True)
    corner_verts = f[tri]  # (N, 3)
    points = torch.einsum("nk,nkd->nd", bary, v[corner_verts])
    normals = torch.einsum("nk,nkd->nd", bary, vertex_normals(v, f)[corner_verts])
    normals = torch.nn.functional.normalize(normals, dim=1)

    rgb = torch.zeros((size * size, 3), dtype=torch.uint8, device=device)
    for start in range(0, texel.numel(), chunk_texels):
        part = slice(start, start + chunk_texels)
        colour = colour_fn(points[part], normals[part]).to(torch.float32)
        rgb[texel[part]] = (colour.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    rgb = rgb.cpu().numpy()
    far = distance.reshape(-1) > extrapolate_px
    rgb[far] = rgb[nearest.cpu().numpy()[far]]
    return rgb.reshape(size, size, 3)


def _barycentrics(corners: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(N, 3, 2) triangle corners, (N, 2) points -> (N, 3) barycentric weights (any sign)."""
    a, b, c = corners.unbind(1)
    ab, ac, ap = b - a, c - a, points - a
    det = ab[:, 0] * ac[:, 1] - ab[:, 1] * ac[:, 0]
    w1 = (ap[:, 0] * ac[:, 1] - ap[:, 1] * ac[:, 0]) / det
    w2 = (ab[:, 0] * ap[:, 1] - ab[:, 1] * ap[:, 0]) / det
    return torch.stack([1.0 - w1 - w2, w1, w2], 1)
