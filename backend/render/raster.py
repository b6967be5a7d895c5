"""Vectorised triangle rasteriser in torch (runs unchanged on CPU and CUDA tensors).

Pixel (column c, row r) has its centre at (c + 0.5, r + 0.5) in the x_px / y_px coordinates of the
vertices. A pixel is covered by a triangle when its centre lies inside or exactly on the triangle's
boundary; the nearest covering fragment (smallest depth) wins, ties go to the smaller triangle index.

How it works, and why:
  1. Each triangle's pixel bounding box is clipped to the image; boxes larger than TILE_PX on a side
     are cut into TILE_PX x TILE_PX tiles, so one huge triangle never needs one huge tensor.
  2. Boxes/tiles are bucketed by their (width, height) rounded up to a few fixed sizes. Within a
     bucket every item enumerates the same (w x h) grid of candidate pixels by broadcasting, so the
     per-candidate work is a handful of dense elementwise ops with no gathers.
  3. Edge functions are evaluated as cross products of (vertex - pixel centre) pairs. That form is
     exactly antisymmetric in float arithmetic (swapping an edge's two vertices negates it bit for
     bit), so two triangles sharing an edge never both miss a pixel on it: no cracks.
  4. The z-buffer is one int64 per pixel holding (sortable depth bits << 32 | triangle index), so a
     single scatter_reduce(amin) resolves depth and the tie-break at once, independent of the order
     in which chunks are processed: the result is deterministic on every device.
  5. Barycentrics are recomputed once per covered pixel for the winning triangle.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

TILE_PX = 64
# Candidate grid sizes per side; the ~1.5x steps keep the wasted candidates per bucket small.
_GRID_SIDES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
_EMPTY_KEY = torch.iinfo(torch.int64).max
_LOW32 = 0xFFFFFFFF
_MAG31 = 0x7FFFFFFF


@dataclass
class Fragments:
    """What each pixel sees.

    tri_id: (H, W) int64, index into faces of the visible triangle, -1 where empty
    bary:   (H, W, 3) float32, barycentric weights of faces[tri_id]'s three corners (0 where empty)
    depth:  (H, W) float32, interpolated vertex depth (+inf where empty)
    """

    tri_id: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """(H, W) bool, True where a triangle is visible."""
        return self.tri_id >= 0


def rasterize(
    verts_px: torch.Tensor,
    faces: torch.Tensor,
    height: int,
    width: int,
    cull_backfaces: bool = False,
    chunk_candidates: int = 1 << 22,
) -> Fragments:
    """Rasterise triangles into a z-buffer.

    verts_px: (V, 3) float32, [x_px (column), y_px (row), depth (smaller = nearer)]
    faces:    (F, 3) int64 vertex indices
    height, width: output image size in pixels
    cull_backfaces: drop triangles that wind clockwise as the viewer sees them (in y-down pixel
        coordinates that is a positive signed area). With a camera whose depth axis points away from
        the viewer and faces counter-clockwise seen from outside, those are the back faces.
    chunk_candidates: upper bound on candidate pixels tested per step (memory ~ 60 bytes each).
    Triangles with non-finite or zero-area projections are skipped.
    """
    device = verts_px.device
    verts = verts_px.to(torch.float32)
    faces = faces.to(device=device, dtype=torch.int64).reshape(-1, 3)
    tri_xyz = verts.index_select(0, faces.reshape(-1)).view(-1, 3, 3)  # (F, 3 corners, 3 xyz)
    keys = torch.full((height * width,), _EMPTY_KEY, dtype=torch.int64, device=device)

    items = _tiles(tri_xyz, height, width, cull_backfaces)
    if items is not None:
        item_xyz, tri_index, x0, y0, w, h = items
        for bucket, sw, sh in _buckets(w, h):
            step = max(1, chunk_candidates // (sw * sh))
            for start in range(0, bucket.numel(), step):
                sel = bucket[start:start + step]
                _scatter_chunk(keys, item_xyz[sel], tri_index[sel], x0[sel], y0[sel], w[sel], h[sel],
                               sw, sh, width)
    return _resolve(keys, tri_xyz, height, width)


def _tiles(tri, height, width, cull_backfaces):
    """Clip, cull and tile the triangles, given their corners tri: (F, 3 corners, 3 xyz).

    Returns per item (a triangle, or a TILE_PX tile of a big one): corner coordinates (N, 3, 3)
    with positive winding, the original triangle index (N,), and the pixel box x0, y0, w, h (N,)
    int64; or None when nothing is drawable.
    """
    x, y = tri[..., 0], tri[..., 1]
    area2 = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (y[:, 1] - y[:, 0]) * (x[:, 2] - x[:, 0])
    keep = torch.isfinite(tri).all(dim=(1, 2)) & (area2 != 0)
    if cull_backfaces:
        keep &= area2 < 0

    # Pixel c is a candidate when min_x <= c + 0.5 <= max_x. Clamp in float first so that
    # far-away vertices cannot overflow the integer conversion.
    x_lo = torch.ceil(x.amin(1) - 0.5).clamp(-1, width).long().clamp(min=0)
    x_hi = torch.floor(x.amax(1) - 0.5).clamp(-1, width).long().clamp(max=width - 1)
    y_lo = torch.ceil(y.amin(1) - 0.5).clamp(-1, height).long().clamp(min=0)
    y_hi = torch.floor(y.amax(1) - 0.5).clamp(-1, height).long().clamp(max=height - 1)
    keep &= (x_lo <= x_hi) & (y_lo <= y_hi)
    index = keep.nonzero().squeeze(1)
    if index.numel() == 0:
        return None

    # Swap corners 1 and 2 of negatively wound triangles so "inside" is always "all edges >= 0".
    tri = tri[index]
    neg = area2[index] < 0
    tri = torch.where(neg[:, None, None], tri[:, [0, 2, 1]], tri)
    x_lo, x_hi, y_lo, y_hi = x_lo[index], x_hi[index], y_lo[index], y_hi[index]

    w, h = x_hi - x_lo + 1, y_hi - y_lo + 1
    ntx, nty = (w + TILE_PX - 1) // TILE_PX, (h + TILE_PX - 1) // TILE_PX
    n_tiles = ntx * nty
    if bool((n_tiles == 1).all()):
        return tri, index, x_lo, y_lo, w, h
    owner = torch.repeat_interleave(torch.arange(index.numel(), device=tri.device), n_tiles)
    first = torch.cumsum(n_tiles, 0) - n_tiles
    k = torch.arange(owner.numel(), device=tri.device) - first[owner]
    tx, ty = k % ntx[owner], k // ntx[owner]
    x0 = x_lo[owner] + tx * TILE_PX
    y0 = y_lo[owner] + ty * TILE_PX
    tw = torch.minimum(x_hi[owner] - x0 + 1, torch.full_like(x0, TILE_PX))
    th = torch.minimum(y_hi[owner] - y0 + 1, torch.full_like(y0, TILE_PX))
    return tri[owner], index[owner], x0, y0, tw, th


def _buckets(w: torch.Tensor, h: torch.Tensor):
    """Yield (item indices, grid width, grid height) for each non-empty size bucket."""
    sides = torch.tensor(_GRID_SIDES, device=w.device)
    iw = torch.searchsorted(sides, w)
    ih = torch.searchsorted(sides, h)
    bucket_key = iw * len(_GRID_SIDES) + ih
    order = torch.argsort(bucket_key, stable=True)
    present, counts = torch.unique_consecutive(bucket_key[order], return_counts=True)
    start = 0
    for key, count in zip(present.tolist(), counts.tolist()):
        sw, sh = _GRID_SIDES[key // len(_GRID_SIDES)], _GRID_SIDES[key % len(_GRID_SIDES)]
        yield order[start:start + count], sw, sh
        start += count


def _edge_functions(dx, dy):
    """Doubled signed areas of (corner j, corner k, pixel) opposite each corner i.

    dx, dy: 3-tuples of (corner x - pixel centre x) and (corner y - pixel centre y), broadcastable.
    Returns e0, e1, e2, summing to twice the triangle's signed area. Plain products and a separate
    subtraction (never a fused multiply-add), so e for edge (a, b) is exactly -e for edge (b, a).
    """
    dx0, dx1, dx2 = dx
    dy0, dy1, dy2 = dy
    return ((dx1 * dy2).sub_(dy1 * dx2), (dx2 * dy0).sub_(dy2 * dx0), (dx0 * dy1).sub_(dy0 * dx1))


def _scatter_chunk(keys, tri_xyz, tri_index, x0, y0, w, h, sw, sh, width):
    """Test an (n, sh, sw) candidate grid per item and min-scatter the covered fragments into keys.

    Pixel-centre differences are separable (columns only shift x, rows only shift y), so they are
    formed on (n, 1, sw) and (n, sh, 1) tensors; only the edge products run on the full grid.
    """
    device = keys.device
    gx = torch.arange(sw, device=device)
    gy = torch.arange(sh, device=device)
    nan = torch.tensor(float("nan"), device=device)
    # NaN centres outside an item's own box make every edge test there false, for free.
    fx = torch.where(gx < w[:, None], (x0[:, None] + gx).to(torch.float32) + 0.5, nan)  # (n, sw)
    fy = torch.where(gy < h[:, None], (y0[:, None] + gy).to(torch.float32) + 0.5, nan)  # (n, sh)
    dx = (tri_xyz[:, :, 0, None] - fx[:, None, :]).unsqueeze(2).unbind(1)  # 3 x (n, 1, sw)
    dy = (tri_xyz[:, :, 1, None] - fy[:, None, :]).unsqueeze(3).unbind(1)  # 3 x (n, sh, 1)
    e0, e1, e2 = _edge_functions(dx, dy)  # (n, sh, sw) each
    inside = torch.minimum(torch.minimum(e0, e1, out=e0), e2, out=e0) >= 0  # NaN -> False
    flat = inside.view(-1).nonzero().squeeze(1)
    if flat.numel() == 0:
        return

    # Depth is a plane over the triangle, z = z0 + a (x - x0) + b (y - y0): separable as well.
    xs, ys, z = tri_xyz[:, :, 0], tri_xyz[:, :, 1], tri_xyz[:, :, 2]
    ex1, ey1, ez1 = xs[:, 1] - xs[:, 0], ys[:, 1] - ys[:, 0], z[:, 1] - z[:, 0]
    ex2, ey2, ez2 = xs[:, 2] - xs[:, 0], ys[:, 2] - ys[:, 0], z[:, 2] - z[:, 0]
    det = ex1 * ey2 - ey1 * ex2
    a = (ez1 * ey2 - ey1 * ez2) / det
    b = (ex1 * ez2 - ez1 * ex2) / det
    zx = z[:, 0, None] + a[:, None] * (fx - xs[:, 0, None])  # (n, sw)
    zy = b[:, None] * (fy - ys[:, 0, None])  # (n, sh)
    depth = (zx[:, None, :] + zy[:, :, None]).view(-1).index_select(0, flat)
    # A plane through a sliver can overshoot (or give NaN); the true depth lies within the
    # corners' range.
    row = torch.div(flat, sh * sw, rounding_mode="floor")
    z_far = z.amax(1).index_select(0, row)
    depth = torch.minimum(torch.maximum(depth, z.amin(1).index_select(0, row)), z_far)
    depth = torch.where(torch.isnan(depth), z_far, depth)

    grid_offset = (gy[:, None] * width + gx).view(-1)  # (sh * sw,) pixel offset within a box
    pixel = (y0 * width + x0).index_select(0, row) + grid_offset.index_select(0, flat - row * (sh * sw))
    keys.scatter_reduce_(0, pixel, _pack(depth, tri_index.index_select(0, row)), reduce="amin")


def _pack(depth: torch.Tensor, tri_index: torch.Tensor) -> torch.Tensor:
    """(N,) float32 depth + (N,) int64 index -> (N,) int64 keys that order by depth, then index."""
    bits = (depth + 0.0).view(torch.int32).to(torch.int64)  # + 0.0 turns -0.0 into +0.0
    # IEEE floats order like sign-magnitude integers; flipping the magnitude bits of negative
    # values makes them order like two's-complement ones.
    ordered = torch.where(bits < 0, bits ^ _MAG31, bits)
    return (ordered << 32) | tri_index


def _unpack_depth(keys: torch.Tensor) -> torch.Tensor:
    ordered = keys >> 32
    bits = torch.where(ordered < 0, ordered ^ _MAG31, ordered)
    return bits.to(torch.int32).view(torch.float32)


def _resolve(keys, tri_xyz, height, width) -> Fragments:
    """Turn the packed z-buffer into Fragments, recomputing barycentrics of the winners."""
    hit = keys != _EMPTY_KEY
    tri_id = torch.where(hit, keys & _LOW32, -1)
    depth = torch.where(hit, _unpack_depth(keys), float("inf"))
    bary = torch.zeros((height * width, 3), dtype=torch.float32, device=keys.device)
    covered = hit.nonzero().squeeze(1)
    if covered.numel():
        corners = tri_xyz[:, :, :2].reshape(-1, 6).index_select(0, tri_id.index_select(0, covered))
        corners = corners.view(-1, 3, 2)  # (N, 3 corners, xy)
        py = torch.div(covered, width, rounding_mode="floor")
        px = (covered - py * width).to(torch.float32) + 0.5
        py = py.to(torch.float32) + 0.5
        dx = (corners[:, :, 0] - px[:, None]).unbind(1)
        dy = (corners[:, :, 1] - py[:, None]).unbind(1)
        e = torch.stack(_edge_functions(dx, dy), dim=1)
        bary.index_copy_(0, covered, e / e.sum(dim=1, keepdim=True))
    return Fragments(tri_id.view(height, width), bary.view(height, width, 3),
                     depth.view(height, width))
