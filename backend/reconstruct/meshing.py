"""Meshing: the triplane's decoded field on a grid -> marching cubes -> one clean closed surface,
then an adaptive triangle budget (fine at the face, coarser elsewhere).

Triangle budget (MeshingConfig defaults): marching cubes on the 256^3 grid (2.5 mm cells) gives a
uniform ~200k triangles for head, hair, neck and shoulders. `max_triangles` (100k, ~50k vertices,
the animation target) bounds the head the pipeline returns, mouth included. It is split so:

  face (lips, eyelids, nose)  full resolution, never decimated          26-31k measured
  mouth's parts               held back (extract_mesh's reserve_triangles = MouthConfig.max_triangles,
                              2k): backend/rig/mouth.py adds them after meshing, 15 per lip-loop
                              vertex + 552; 1.1-1.7k measured (16 heads, loops of 38-78)
  rest of the head (hair)     decimated to a half   } scaled down together, when over, to what
  neck, shoulders, bust       decimated to a sixth  } the face and the mouth's share leave

Regions are decimated apart with their shared borders fixed, then stitched, so the mesh stays
watertight and in one piece; every try is checked closed, in one piece and within the budget.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import fast_simplification
import mcubes
import numpy as np
import torch
import trimesh

from backend.reconstruct.triplane import Triplane, decode_grid, decode_sdf


@dataclass
class MeshingConfig:
    taubin_iterations: int = 4  # removes marching-cubes terracing without shrinking the head
    projection_iterations: int = 3
    # The face in the canonical frame (origin between the ears, eyes ~2.5 cm above it, the face
    # toward -Y): in front of the temples, from under the chin to above the hairline.
    face_min_forward_m: float = 0.03
    face_half_width_m: float = 0.085
    face_z_range_m: tuple[float, float] = (-0.13, 0.11)
    body_below_z_m: float = -0.12  # under the chin: neck, shoulders, bust
    head_keep: float = 0.5  # fraction of triangles kept on the rest of the head
    body_keep: float = 1 / 6
    max_triangles: int = 100_000  # the returned head's, mouth included (see reserve_triangles)
    decimation_aggressiveness: float = 5.0  # fast-simplification's agg; 7 leaves folded slivers
    retry_scales: tuple[float, ...] = (1.0, 0.97, 1.03, 0.9)  # head/body targets tried in turn
    # then these aggressiveness values at the first target: two_faces with ears pinched the same
    # edge at every target above, and at none with 4 or 6
    retry_aggressiveness: tuple[float, ...] = (4.0, 6.0)


def extract_mesh(tri: Triplane, config: MeshingConfig | None = None,
                 reserve_triangles: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Triplane -> (verts_m (V, 3) float32, faces (F, 3) int32), closed, outward-facing, one component,
    at most config.max_triangles - reserve_triangles triangles (reserve_triangles: the share of the
    budget that later stages add, e.g. the mouth's parts)."""
    config = config or MeshingConfig()
    budget = config.max_triangles - reserve_triangles
    field = decode_grid(tri).numpy()
    # A positive border guarantees a closed surface even where the head touches the cube.
    padded = np.pad(field, 1, constant_values=float(field.max()) + 1.0)
    verts_idx, faces = mcubes.marching_cubes(-padded, 0.0)
    step = tri.size_m / tri.resolution
    verts = tri.origin_m.numpy() + (verts_idx - 1 + 0.5) * step
    verts = project_to_surface(tri, verts, config.projection_iterations)
    # process=False: merging vertices that the projection brought together would open holes
    mesh = trimesh.Trimesh(verts, faces.astype(np.int64), process=False)
    parts = mesh.split(only_watertight=False)
    if len(parts) > 1:
        mesh = max(parts, key=lambda m: len(m.faces))
    if config.taubin_iterations:
        trimesh.smoothing.filter_taubin(mesh, iterations=config.taubin_iterations)
    verts, faces = adaptive_decimate(mesh.vertices, mesh.faces, config, budget)
    mesh = trimesh.Trimesh(verts, faces, process=False)
    if mesh.volume < 0:
        mesh.invert()
    return mesh.vertices.astype(np.float32), mesh.faces.astype(np.int32)


def region_of_faces(verts_m: np.ndarray, faces: np.ndarray, config: MeshingConfig) -> np.ndarray:
    """(F,) int8 per triangle: 0 face, 1 rest of the head, 2 neck/shoulders/bust (by centroid)."""
    c = verts_m[faces].mean(axis=1)
    lo, hi = config.face_z_range_m
    face = ((c[:, 1] < -config.face_min_forward_m) & (np.abs(c[:, 0]) < config.face_half_width_m)
            & (c[:, 2] > lo) & (c[:, 2] < hi))
    region = np.where(c[:, 2] < config.body_below_z_m, 2, 1).astype(np.int8)
    region[face] = 0
    return region


def adaptive_decimate(verts_m: np.ndarray, faces: np.ndarray, config: MeshingConfig,
                      max_triangles: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Quadric decimation per region of a closed mesh: verts (V, 3), faces (F, 3) -> same kinds,
    at most max_triangles (default config.max_triangles) triangles.

    Each region is simplified on its own with its border vertices fixed (fast-simplification's
    preserve_border keeps them bit-exact), then the regions are stitched back on those vertices.
    When no try (config.retry_scales, then config.retry_aggressiveness) gives one closed piece
    within the budget, the whole mesh is simplified as one (the face then loses its full
    resolution; the budget still holds).
    """
    budget = config.max_triangles if max_triangles is None else max_triangles
    verts_m = np.asarray(verts_m, np.float64)
    faces = np.asarray(faces, np.int64)
    region = region_of_faces(verts_m, faces, config)
    keep = np.array([1.0, config.head_keep, config.body_keep])
    counts = np.bincount(region, minlength=3)
    wanted = counts * keep
    if wanted.sum() > budget:  # the face keeps its share; the other regions give way
        spare = max(budget - wanted[0], 0.0)
        wanted[1:] *= spare / max(wanted[1:].sum(), 1.0)
    # Now and then a collapse next to a fixed border pinches an edge between four triangles; other
    # targets or another aggressiveness collapse other edges, so a few of each are tried.
    tries = ([(scale, config) for scale in config.retry_scales]
             + [(1.0, dataclasses.replace(config, decimation_aggressiveness=agg))
                for agg in config.retry_aggressiveness])
    for scale, cfg in tries:
        verts, merged = _decimate_regions(verts_m, faces, region, wanted * np.array([1.0, scale, scale]), cfg)
        if len(merged) <= budget and _one_closed_piece(verts, merged):
            return verts, merged
    if len(faces) <= budget and _one_closed_piece(verts_m, faces):
        return verts_m, faces
    for scale in (1.0, 0.97, 0.94):
        verts, merged = _simplify(verts_m, faces, int(budget * scale), config)
        if _one_closed_piece(verts, merged):
            return verts, merged
    return verts, merged


def _one_closed_piece(verts_m: np.ndarray, faces: np.ndarray) -> bool:
    mesh = trimesh.Trimesh(verts_m, faces, process=False)
    return mesh.is_watertight and len(mesh.split(only_watertight=False)) == 1


def _simplify(verts_m: np.ndarray, faces: np.ndarray, target: int,
              config: MeshingConfig) -> tuple[np.ndarray, np.ndarray]:
    """The whole closed mesh simplified as one to about target triangles, folded pairs dropped."""
    pts, new_faces = fast_simplification.simplify(verts_m, faces, target_count=target,
                                                  agg=config.decimation_aggressiveness)
    used, new_faces = np.unique(_drop_folded_pairs(np.asarray(new_faces, np.int64)), return_inverse=True)
    return np.asarray(pts, np.float64)[used], new_faces.reshape(-1, 3)


def _decimate_regions(verts_m: np.ndarray, faces: np.ndarray, region: np.ndarray, wanted: np.ndarray,
                      config: MeshingConfig) -> tuple[np.ndarray, np.ndarray]:
    """Each region simplified to its wanted triangle count, borders fixed, stitched back."""
    out_verts, out_faces = [], []
    global_of_border: dict[int, int] = {}
    n_out = 0
    for r in range(3):
        sel = faces[region == r]
        if len(sel) == 0:
            continue
        used, local = np.unique(sel, return_inverse=True)
        local = local.reshape(-1, 3)
        pts = verts_m[used]
        if wanted[r] < len(sel) * 0.98:
            new_pts, new_faces = fast_simplification.simplify(
                pts, local, target_count=int(wanted[r]), agg=config.decimation_aggressiveness,
                preserve_border=True)
            new_faces = _drop_folded_pairs(np.asarray(new_faces, np.int64))
        else:
            new_pts, new_faces = pts, local
        # the region's border vertices (edges with one triangle) come back at the same positions
        edges = np.sort(np.concatenate([local[:, [0, 1]], local[:, [1, 2]], local[:, [2, 0]]]), axis=1)
        uniq, n = np.unique(edges, axis=0, return_counts=True)
        border = np.unique(uniq[n == 1])
        by_position = {pts[i].tobytes(): int(used[i]) for i in border}
        index = np.empty(len(new_pts), np.int64)
        for i, p in enumerate(new_pts):
            original = by_position.get(np.asarray(p, np.float64).tobytes())
            if original is None:
                index[i] = n_out
                n_out += 1
                out_verts.append(p)
            else:
                if original not in global_of_border:
                    global_of_border[original] = n_out
                    n_out += 1
                    out_verts.append(p)
                index[i] = global_of_border[original]
        out_faces.append(index[new_faces])
    verts = np.asarray(out_verts, np.float64)
    merged = np.concatenate(out_faces)
    used, merged = np.unique(merged, return_inverse=True)
    return verts[used], merged.reshape(-1, 3)


def _drop_folded_pairs(faces: np.ndarray) -> np.ndarray:
    """Remove triangle pairs on the same three vertices (a fold the decimator leaves as a flap)."""
    _, inverse, count = np.unique(np.sort(faces, axis=1), axis=0, return_inverse=True, return_counts=True)
    return faces[count[inverse.reshape(-1)] == 1]
def project_to_surface(tri: Triplane, verts_m: np.ndarray, iterations: int) -> np.ndarray:
    """Newton steps that move marching-cubes vertices onto the decoded zero level set.

    The decoded field is a max over planes, not a distance: far from the surface one plane's value
    can dwarf the others, so marching cubes' linear interpolation along grid edges lands vertices
    off the surface in a staircase. The field is linear along each plane's depth axis near the
    surface, so a few Newton steps (clamped to half a texel) recover the true crossing.
    """
    step = tri.size_m / tri.resolution
    h = 0.25 * step
    p = torch.from_numpy(np.ascontiguousarray(verts_m, dtype=np.float32))
    offsets = torch.eye(3) * h
    for _ in range(iterations):
        value = decode_sdf(tri, p)
        grad = torch.stack([(decode_sdf(tri, p + offsets[i]) - decode_sdf(tri, p - offsets[i])) / (2 * h)
                            for i in range(3)], dim=1)
        move = -(value / grad.pow(2).sum(1).clamp_min(1e-6))[:, None] * grad
        length = move.norm(dim=1, keepdim=True)
        p = p + move * torch.clamp(0.5 * step / length.clamp_min(1e-12), max=1.0)
    return p.numpy().astype(np.float64)
