"""Mesh datablock from the reconstruction's arrays (all bulk data through foreach_set)."""
from __future__ import annotations

import bpy
import numpy as np


def build_mesh(name: str, verts_m: np.ndarray, faces: np.ndarray, loop_uvs: np.ndarray) -> bpy.types.Mesh:
    """A smooth-shaded triangle mesh with one UV layer.

    verts_m:  (V, 3) float, metres, canonical frame (kept as is: Blender's frame is the same)
    faces:    (F, 3) int, vertex indices, counter-clockwise from outside
    loop_uvs: (F, 3, 2) float, per-corner UVs, origin bottom-left
    """
    verts_m = np.ascontiguousarray(verts_m, dtype=np.float32).reshape(-1, 3)
    faces = np.ascontiguousarray(faces, dtype=np.int32).reshape(-1, 3)
    loop_uvs = np.ascontiguousarray(loop_uvs, dtype=np.float32).reshape(-1, 3, 2)
    n_verts, n_faces = len(verts_m), len(faces)
    if len(loop_uvs) != n_faces:
        raise ValueError(f"loop_uvs has {len(loop_uvs)} faces, faces has {n_faces}")
    if n_faces and (faces.min() < 0 or faces.max() >= n_verts):
        raise ValueError("faces index a vertex that does not exist")

    mesh = bpy.data.meshes.new(name)
    try:
        mesh.vertices.add(n_verts)
        mesh.vertices.foreach_set("co", verts_m.ravel())
        # Triangles only: loop i*3+k is corner k of face i, so faces.ravel() is the loop order
        # and loop_uvs.reshape(-1, 2) lines up with it.
        mesh.loops.add(3 * n_faces)
        mesh.loops.foreach_set("vertex_index", faces.ravel())
        mesh.polygons.add(n_faces)
        mesh.polygons.foreach_set("loop_start", np.arange(0, 3 * n_faces, 3, dtype=np.int32))

        uv_layer = mesh.uv_layers.new(name="UVMap")
        uv_layer.data.foreach_set("uv", loop_uvs.ravel())

        mesh.update(calc_edges=True)
        # validate() fixes what would crash Blender later (duplicate faces, degenerate corners);
        # it returns True when it had to change something, which a good result never needs.
        mesh.validate(clean_customdata=False)
        mesh.shade_smooth()
    except Exception:
        bpy.data.meshes.remove(mesh)
        raise
    return mesh
