"""The person mask, resampled into the camera's metric image plane, and what it says about volume.

Everything here lives on a "canvas": the image plane of the estimated orthographic camera, in metres,
centred on the canonical origin's projection, at a fixed metric resolution (so big and small photos
are treated alike). Canvas pixel (row i, col j) is camera-plane point
    x = (j + 0.5) * res - half_extent,  y = (i + 0.5) * res - half_extent   (x right, y down).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from backend.reconstruct.person_mask import keep_component_at
from backend.render.camera import OrthoCamera


@dataclass
class CanvasConfig:
    half_extent_m: float = 0.45
    resolution_m: float = 0.0025
    mask_threshold: float = 0.5
    # Poisson inflation: laplace(f) = -c inside, f = 0 on the outline, thickness = sqrt(f).
    # c = 2 makes a tube as deep as it is wide and a disc 0.7 times its radius.
    inflation_c: float = 2.0
    inflation_downsample: int = 2
    max_half_depth_m: float = 0.105  # a torso is about 0.2 m deep


@dataclass
class Canvas:
    """mask: (S, S) bool; sdf_m: (S, S) float32 signed distance to the outline (negative inside);
    half_depth_m: (S, S) float32 inflated half-thickness (0 outside)."""

    mask: np.ndarray
    sdf_m: np.ndarray
    half_depth_m: np.ndarray
    config: CanvasConfig

    def to_pixel(self, xy_m: np.ndarray) -> np.ndarray:
        """(N, 2) camera-plane metres -> (N, 2) fractional canvas (col, row)."""
        c = self.config
        return (xy_m + c.half_extent_m) / c.resolution_m - 0.5


def _canvas_size(config: CanvasConfig) -> int:
    return int(round(2 * config.half_extent_m / config.resolution_m))


def resample_to_canvas(image: np.ndarray, camera: OrthoCamera, config: CanvasConfig,
                       border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """Warp an image-aligned array (H, W[, C]) onto the metric canvas (S, S[, C]).

    Replicating the border continues a body cut by the frame (shoulders, chest) instead of
    ending it at the photo's edge.
    """
    s = _canvas_size(config)
    ppm = camera.pixels_per_metre
    # canvas (col, row) -> image (u, v): u = ((col + 0.5) * res - half) * ppm + principal_u
    a = config.resolution_m * ppm
    b = (0.5 * config.resolution_m - config.half_extent_m) * ppm
    M = np.array([[a, 0, b + camera.principal_px[0]], [0, a, b + camera.principal_px[1]]])
    return cv2.warpAffine(image, M, (s, s), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=border)


def build_canvas(person_mask: np.ndarray, camera: OrthoCamera, chin_m: np.ndarray,
                 config: CanvasConfig | None = None) -> Canvas:
    """person_mask: (H, W) float32 probability; chin_m: (3,) canonical chin point -> Canvas."""
    config = config or CanvasConfig()
    prob = resample_to_canvas(person_mask.astype(np.float32), camera, config)
    # Above the photo's top edge we know nothing: leave it empty rather than replicate hair upward.
    rows = (np.arange(prob.shape[0]) + 0.5) * config.resolution_m - config.half_extent_m
    top_row_y = -camera.principal_px[1] / camera.pixels_per_metre
    prob[rows < top_row_y] = 0.0
    R = camera.R_cam_from_canonical
    chin_px = Canvas(prob, prob, prob, config).to_pixel((R @ chin_m)[None, :2])[0]
    # The subject is the part under the chin, however large a second person or a stray blob is.
    mask = keep_component_at(prob > config.mask_threshold, chin_px)
    mask = ndi.binary_fill_holes(mask)
    up_dir = R[:2, 2] / np.linalg.norm(R[:2, 2])
    sdf = (ndi.distance_transform_edt(~mask) - ndi.distance_transform_edt(mask))
    half_depth = inflate(_body_region(mask, chin_px, up_dir), config)
    return Canvas(mask=mask, sdf_m=(sdf * config.resolution_m).astype(np.float32),
                  half_depth_m=half_depth, config=config)


def _body_region(mask: np.ndarray, chin_px: np.ndarray, up_dir: np.ndarray) -> np.ndarray:
    """The mask below the chin line, mirrored upward across it.

    The mirror makes the line a symmetry axis of the inflation (zero slope there), so the neck keeps
    its thickness up into the head instead of pinching shut at the chin.
    """
    rows, cols = np.indices(mask.shape, dtype=np.float64)
    height = (cols - chin_px[0]) * up_dir[0] + (rows - chin_px[1]) * up_dir[1]
    above = height > 0
    mc = cols - 2 * height * up_dir[0]
    mr = rows - 2 * height * up_dir[1]
    mirrored = ndi.map_coordinates(mask.astype(np.float32), [mr[above], mc[above]], order=0, mode="constant")
    body = mask & ~above
    body[above] = mirrored > 0.5
    return body


def inflate(mask: np.ndarray, config: CanvasConfig) -> np.ndarray:
    """Half-thickness (metres) of a body whose outline is `mask`, by Poisson inflation.

    Solves laplace(f) = -c on a downsampled grid with f = 0 outside the mask; sqrt(f) is exact for a
    sphere seen from the front and round for tubes (neck, arms), then capped at a torso's depth.
    """
    k = config.inflation_downsample
    small = cv2.resize(mask.astype(np.uint8), (mask.shape[1] // k, mask.shape[0] // k),
                       interpolation=cv2.INTER_AREA) > 0
    h = config.resolution_m * k
    idx = -np.ones(small.shape, np.int64)
    inside = np.flatnonzero(small)
    idx.flat[inside] = np.arange(inside.size)
    rows, cols = np.unravel_index(inside, small.shape)
    entries_r, entries_c, values = [np.arange(inside.size)], [np.arange(inside.size)], [np.full(inside.size, 4.0)]
    for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        rr, cc = rows + dr, cols + dc
        ok = (rr >= 0) & (rr < small.shape[0]) & (cc >= 0) & (cc < small.shape[1])
        nb = np.full(inside.size, -1)
        nb[ok] = idx[rr[ok], cc[ok]]
        has = nb >= 0
        entries_r.append(np.arange(inside.size)[has])
        entries_c.append(nb[has])
        values.append(np.full(has.sum(), -1.0))
    A = sp.csr_matrix((np.concatenate(values), (np.concatenate(entries_r), np.concatenate(entries_c))),
                      shape=(inside.size, inside.size))
    f = spla.spsolve(A.tocsc(), np.full(inside.size, config.inflation_c * h * h))
    field = np.zeros(small.shape, np.float32)
    field.flat[inside] = np.sqrt(np.maximum(f, 0.0))
    field = cv2.resize(field, (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.minimum(field, config.max_half_depth_m) * mask
