"""UV atlas for a head mesh with xatlas, returned as per-corner (loop) UVs.

The mesh's own vertices are never split: xatlas cuts seams by duplicating vertices in its output,
but we only read the UVs back per face corner, so the geometry stays watertight and the seams live
in the UVs alone (as Blender stores them, one UV per loop).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xatlas


@dataclass
class AtlasOptions:
    """xatlas chart settings. Lengths are in units of sqrt(mesh surface area), so that they do not
    depend on the mesh's scale (a head of ~0.116 m^2 has sqrt(area) = 0.34 m).

    Measured on marching-cubes heads (ellipsoid + nose/ears, 25k and 100k triangles), resolution
    2048, padding 4, on a 2-core CPU shared with other jobs (so +-50 %):
      xatlas defaults:                 25k: 12 s, 1086 charts   100k: 71 s, 4480 charts
      max_boundary_length 0.88 (0.3 m): 25k: 1.3 s, 201 charts   100k: 9-12 s, 1791 charts
      max_boundary_length 0.44 (0.15 m):                         100k: 4.6-8.7 s, 1514 charts
      max_boundary_length 0.29 (0.1 m):                          100k: 7.9 s, 1688 charts
      max_cost 4, max_iterations 2, max_chart_area, rotate_charts off: no gain beyond the noise.
      build_atlas with these defaults:                           100k: 5.5-6.3 s, ~1500 charts
    Unlimited charts grow until their flattening fails and xatlas shatters them piecewise (slow,
    and thousands of tiny charts); a boundary limit keeps charts cheap to flatten. Timing depends on
    the mesh in odd ways: a perfectly regular 82k icosphere took 123 s (3075 charts) even with the
    limit, the same sphere with 0.2 mm vertex noise 6-10 s. Charting dominates; packing is cheap
    (resolution 512 instead of 2048 saves ~20 %).
    """

    max_boundary_length: float = 0.44
    block_align: bool = True  # packs a little faster; charts start on 4-texel blocks


class AtlasError(RuntimeError):
    """xatlas could not unwrap the mesh into one atlas (no area, several atlases, reordered faces)."""


def build_atlas(verts_m: np.ndarray, faces: np.ndarray, resolution: int, padding_px: int,
                options: AtlasOptions | None = None) -> np.ndarray:
    """Unwrap a mesh into one square texture atlas.

    verts_m:    (V, 3) float32, metres
    faces:      (F, 3) int32 vertex indices
    resolution: texture size the atlas is packed for, texels per side
    padding_px: empty texels kept between charts (at `resolution`; never fewer after rescaling)
    Returns loop_uvs: (F, 3, 2) float32 in [0, 1], origin bottom-left (Blender's convention), one
    UV per face corner, in the order of `faces`. Charts may come out mirrored (xatlas does not
    keep their winding); baking and rendering through the same UVs do not care. Faces that xatlas
    leaves out (near-zero area) get the UV of a neighbouring vertex at all three corners.
    """
    options = options or AtlasOptions()
    verts = np.ascontiguousarray(verts_m, dtype=np.float32)
    faces = np.ascontiguousarray(faces, dtype=np.uint32)
    corners = verts[faces].astype(np.float64)
    area = 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0],
                                         corners[:, 2] - corners[:, 0]), axis=1).sum()
    if not area > 0:
        raise AtlasError("the mesh has no surface area to unwrap")
    scale = float(np.sqrt(area))

    chart_options = xatlas.ChartOptions()
    chart_options.max_boundary_length = options.max_boundary_length * scale
    pack_options = xatlas.PackOptions()
    pack_options.resolution = resolution
    pack_options.padding = padding_px
    pack_options.bilinear = True
    pack_options.blockAlign = options.block_align

    atlas = xatlas.Atlas()
    atlas.add_mesh(verts, faces)
    atlas.generate(chart_options, pack_options)
    if atlas.atlas_count != 1:
        raise AtlasError(f"xatlas needed {atlas.atlas_count} atlases at {resolution} texels")
    vmapping, out_faces, uvs = atlas.get_mesh(0)
    if out_faces.shape != faces.shape or not np.array_equal(vmapping[out_faces], faces):
        raise AtlasError("xatlas changed the face order")

    # xatlas normalises u by the atlas width and v by its height; use one scale for both so charts
    # keep their aspect, and fill [0, 1] along the longer side (padding only grows in texels).
    texel = uvs.astype(np.float64) * [atlas.width, atlas.height]
    uvs = texel / max(atlas.width, atlas.height)
    loop_uvs = np.clip(uvs[out_faces], 0.0, 1.0).astype(np.float32)  # (F, 3 corners, 2)

    _, chart_of_vertex = atlas.get_mesh_vertex_assignment(0)
    unplaced = chart_of_vertex[out_faces[:, 0]] == np.iinfo(np.uint32).max
    return _place_ignored_faces(loop_uvs, faces.astype(np.int64), unplaced)


def _place_ignored_faces(loop_uvs: np.ndarray, faces: np.ndarray, unplaced: np.ndarray) -> np.ndarray:
    """Collapse faces that xatlas left out of every chart onto a UV of one of their vertices.

    xatlas skips (near-)zero-area faces, such as the slivers marching cubes makes, and leaves their
    UVs at (0, 0): a corner of the atlas with some unrelated colour. Such a face is tiny, so one
    texel of the surface next to it is the right colour for all of it.
    loop_uvs: (F, 3, 2), faces: (F, 3), unplaced: (F,) bool. Returns loop_uvs, updated in place.
    """
    n_verts = int(faces.max()) + 1 if faces.size else 0
    while unplaced.any():
        vertex_uv = np.full((n_verts, 2), np.nan, dtype=np.float32)
        vertex_uv[faces[~unplaced].reshape(-1)] = loop_uvs[~unplaced].reshape(-1, 2)
        corner_uv = vertex_uv[faces[unplaced]]  # (U, 3, 2), NaN where the vertex has no UV yet
        known = ~np.isnan(corner_uv[:, :, 0])
        placeable = known.any(axis=1)
        if not placeable.any():
            break  # a component made only of ignored faces: leave it at (0, 0)
        first = corner_uv[np.arange(len(corner_uv)), known.argmax(axis=1)]  # (U, 2)
        index = np.flatnonzero(unplaced)[placeable]
        loop_uvs[index] = first[placeable][:, None, :]
        unplaced[index] = False
    return loop_uvs
