"""The canonical triplane: three axis-aligned planes that hold the head's geometry and colour.

Planes (index, in-plane axes u/v, depth axis): 0 = XY (x, y; z), 1 = XZ (x, z; y), 2 = YZ (y, z; x).
Each plane is a layered depth image of the head seen along its depth axis:

geometry (3, 5, R, R) channels:
    0  outline: 2-D signed distance (m) to the head's silhouette on that plane, negative inside
    1  near:    depth coordinate (m) of the first surface along +axis (e.g. the face for XZ)
    2  far:     depth coordinate (m) of the last surface (e.g. the back of the head for XZ)
    3  near slack, 4 far slack (m): how much a texel's depth is uncertain because the surface is
       steep seen from that plane (slope x texel size); steep surfaces are left to the plane that
       sees them head-on, which avoids terraces where a plane views a surface at a grazing angle.
appearance (3, 7, Ra, Ra) channels: near RGB, far RGB (linear 0..1), and the near layer's
    confidence (how directly the photo saw it); filled in by `backend.reconstruct.appearance`.

Decoding: a point is inside a plane's layer when it is inside that plane's outline and between
its near and far depths; the head is the intersection over the three planes:
    d_p(x) = max(outline_p, near_p - slack_near_p - w, w - far_p - slack_far_p)   (w: x's depth)
    sdf(x) = max(d_XY, d_XZ, d_YZ)
This reproduces any shape whose hollows are visible along at least one axis (a head, a neck under
the chin, shoulders), is exact at the planes' texels, deterministic and cheap to evaluate.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F

PLANE_AXES = ((0, 1, 2), (0, 2, 1), (1, 2, 0))  # (u axis, v axis, depth axis) per plane


@dataclass
class TriplaneConfig:
    resolution: int = 256
    appearance_resolution: int = 1024
    origin_m: tuple[float, float, float] = (-0.32, -0.32, -0.34)  # corner of the cube
    size_m: float = 0.64
    coarse_stride: int = 4
    chunk: int = 1 << 19
    slack_per_slope: float = 0.75
    # Up to a decimetre: near a plane's silhouette (the top plane at the temples) its depth is
    # steepest and its chords cut the side of the skull in per-texel ridges unless left loose there.
    max_slack_m: float = 0.1


@dataclass
class Triplane:
    geometry: torch.Tensor  # (3, 5, R, R) float32
    origin_m: torch.Tensor  # (3,) float32
    size_m: float
    appearance: torch.Tensor | None = None  # (3, 7, Ra, Ra) float32

    @property
    def resolution(self) -> int:
        return self.geometry.shape[-1]

    def grid_axis(self, resolution: int | None = None) -> torch.Tensor:
        """(R,) texel-centre coordinates along each axis, relative to the origin (metres)."""
        r = resolution or self.resolution
        return (torch.arange(r, dtype=torch.float32) + 0.5) * (self.size_m / r)

    def plane_coords(self, points_m: torch.Tensor, plane: int) -> tuple[torch.Tensor, torch.Tensor]:
        """points_m (N, 3) -> grid_sample coordinates (N, 2) in [-1, 1] and depth (N,) in metres."""
        u, v, w = PLANE_AXES[plane]
        local = (points_m - self.origin_m) / self.size_m * 2.0 - 1.0
        return torch.stack([local[:, u], local[:, v]], dim=-1), points_m[:, w]


def sample_plane(plane: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """plane (C, R, R), uv (N, 2) in [-1, 1] (u along columns) -> (N, C), bilinear."""
    out = F.grid_sample(plane[None], uv.view(1, 1, -1, 2), mode="bilinear",
                        padding_mode="border", align_corners=False)
    return out[0, :, 0].T


def decode_sdf(tri: Triplane, points_m: torch.Tensor) -> torch.Tensor:
    """points_m (N, 3) -> (N,) signed value, negative inside (metres, a level set)."""
    result = None
    for p in range(3):
        uv, w = tri.plane_coords(points_m, p)
        outline, near, far, near_slack, far_slack = sample_plane(tri.geometry[p], uv).unbind(-1)
        d = torch.maximum(outline, torch.maximum(near - near_slack - w, w - far - far_slack))
        result = d if result is None else torch.maximum(result, d)
    return result


def decode_grid(tri: Triplane) -> torch.Tensor:
    """The decoded field at every texel centre of the cube: (R, R, R) indexed [x, y, z].

    At texel centres the bilinear lookup is the texel itself, so this is broadcasting only.
    """
    axis = tri.grid_axis() + 0.0
    xs, ys, zs = (axis + tri.origin_m[i] for i in range(3))
    g = tri.geometry
    outline, near, far = g[:, 0], g[:, 1] - g[:, 3], g[:, 2] + g[:, 4]
    # plane XY: stored [y(row), x(col)], depth along z
    d_xy = torch.maximum(outline[0].T[:, :, None],
                         torch.maximum(near[0].T[:, :, None] - zs, zs - far[0].T[:, :, None]))
    # plane XZ: stored [z, x], depth along y
    y = ys[None, :, None]
    d_xz = torch.maximum(outline[1].T[:, None, :],
                         torch.maximum(near[1].T[:, None, :] - y, y - far[1].T[:, None, :]))
    # plane YZ: stored [z, y], depth along x
    x = xs[:, None, None]
    d_yz = torch.maximum(outline[2].T[None], torch.maximum(near[2].T[None] - x, x - far[2].T[None]))
    return torch.maximum(d_xy, torch.maximum(d_xz, d_yz))


def sample_volume(field: Callable[[torch.Tensor], torch.Tensor], config: TriplaneConfig) -> torch.Tensor:
    """Evaluate a field on the cube's R^3 texel centres, coarse to fine: (R, R, R) float32 [x, y, z].

    A coarse pass finds the cells near the surface; only those are evaluated at full resolution,
    the rest keep the coarse value (only their sign matters there).
    """
    r, s = config.resolution, config.coarse_stride
    origin = torch.tensor(config.origin_m, dtype=torch.float32)
    step = config.size_m / r

    def evaluate(idx: torch.Tensor) -> torch.Tensor:  # idx (N, 3) fine-grid integer indices
        out = torch.empty(idx.shape[0])
        for start in range(0, idx.shape[0], config.chunk):
            pts = origin + (idx[start:start + config.chunk].float() + 0.5) * step
            out[start:start + config.chunk] = field(pts)
        return out

    rc = r // s
    coarse_idx = torch.stack(torch.meshgrid(*(torch.arange(rc) * s + s // 2,) * 3, indexing="ij"), -1)
    coarse = evaluate(coarse_idx.view(-1, 3)).view(rc, rc, rc)
    volume = F.interpolate(coarse[None, None], size=(r, r, r), mode="trilinear", align_corners=False)[0, 0]
    # The prior is not a true distance (hair scaling stretches it), hence the generous band.
    near_cells = coarse.abs() < 2.5 * s * step * np.sqrt(3)
    near_cells = F.max_pool3d(near_cells[None, None].float(), 3, 1, 1)[0, 0] > 0
    fine = near_cells.repeat_interleave(s, 0).repeat_interleave(s, 1).repeat_interleave(s, 2)
    idx = fine.nonzero()
    volume[idx[:, 0], idx[:, 1], idx[:, 2]] = evaluate(idx)
    return volume


def _layer_depths(inside: np.ndarray, volume: np.ndarray, axis: int, coords: np.ndarray):
    """First and last crossing along `axis` with sub-texel interpolation -> (near, far, hit) 2-D."""
    vol = np.moveaxis(volume, axis, -1)
    occ = np.moveaxis(inside, axis, -1)
    n = occ.shape[-1]
    hit = occ.any(-1)
    first = np.argmax(occ, -1)
    last = n - 1 - np.argmax(occ[..., ::-1], -1)

    def crossing(i_in: np.ndarray, i_out: np.ndarray) -> np.ndarray:
        i_out_c = np.clip(i_out, 0, n - 1)
        v_in = np.take_along_axis(vol, i_in[..., None], -1)[..., 0]
        v_out = np.take_along_axis(vol, i_out_c[..., None], -1)[..., 0]
        t = np.where((i_out >= 0) & (i_out < n), v_out / np.maximum(v_out - v_in, 1e-9), 0.5)
        return coords[i_out_c] + (coords[i_in] - coords[i_out_c]) * np.clip(t, 0, 1)

    return crossing(first, first - 1), crossing(last, last + 1), hit


def build_geometry(field: Callable[[torch.Tensor], torch.Tensor],
                   config: TriplaneConfig | None = None) -> Triplane:
    """Project a field (negative inside) onto the three planes as layered depth images."""
    config = config or TriplaneConfig()
    volume = sample_volume(field, config).numpy()
    inside = volume < 0
    r = config.resolution
    step = config.size_m / r
    planes = np.zeros((3, 5, r, r), np.float32)
    for p, (u, v, w) in enumerate(PLANE_AXES):
        coords = config.origin_m[w] + (np.arange(r) + 0.5) * step
        near, far, hit = _layer_depths(inside, volume, w, coords)
        # arrays are indexed [remaining axes in x, y, z order]; we store [v, u]
        near, far, hit = near.T, far.T, hit.T
        outside_d, (ri, ci) = ndi.distance_transform_edt(~hit, return_indices=True)
        inside_d = ndi.distance_transform_edt(hit)
        # The outline is only texel-accurate; pushed out by 1.5 texels it never cuts the surface
        # itself (that is the sub-texel near/far depths' job) and only clears empty space.
        planes[p, 0] = (np.where(hit, 0.5 - inside_d, outside_d - 0.5) - 1.5) * step
        # Beyond the outline, carry the nearest depths so bilinear lookups at the edge stay sane.
        planes[p, 1] = near[ri, ci]
        planes[p, 2] = far[ri, ci]
        for layer in (1, 2):
            slope = np.hypot(*np.gradient(planes[p, layer], step))
            planes[p, layer + 2] = np.minimum(config.slack_per_slope * step * slope, config.max_slack_m)
    return Triplane(geometry=torch.from_numpy(planes), origin_m=torch.tensor(config.origin_m, dtype=torch.float32),
                    size_m=config.size_m)
