"""Writing a Reconstruction to files other tools read: GLB (one file, texture inside) or OBJ + PNG."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from backend.reconstruct.result import Reconstruction


def split_by_uv(verts_m: np.ndarray, faces: np.ndarray, loop_uvs: np.ndarray):
    """Per-corner UVs -> per-vertex UVs, duplicating a vertex wherever a UV seam crosses it.

    Returns (verts (V', 3), faces (F, 3), uvs (V', 2)). File formats without per-corner UVs need
    this; Blender does not (the add-on keeps the watertight mesh and per-loop UVs).
    """
    corner_vertex = faces.reshape(-1)
    corner_uv = loop_uvs.reshape(-1, 2)
    key = np.concatenate([corner_vertex[:, None].astype(np.float64), np.round(corner_uv * 1e6)], axis=1)
    unique, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    return verts_m[corner_vertex[first]], inverse.reshape(-1, 3).astype(np.int64), corner_uv[first]


def to_trimesh(head: Reconstruction) -> trimesh.Trimesh:
    verts, faces, uvs = split_by_uv(head.verts_m, head.faces, head.loop_uvs)
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=Image.fromarray(head.texture),
                                                   metallicFactor=0.0, roughnessFactor=0.8)
    visual = trimesh.visual.TextureVisuals(uv=uvs, material=material)
    return trimesh.Trimesh(verts, faces, visual=visual, process=False)


def write(head: Reconstruction, path: Path) -> list[Path]:
    """Write `head` as .glb or .obj (+ .mtl + .png beside it). Returns the files written."""
    path = Path(path)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".glb":
        to_trimesh(head).export(path)
        return [path]
    if suffix == ".obj":
        texture_path = path.with_suffix(".png")
        Image.fromarray(head.texture).save(texture_path)
        verts, faces, uvs = split_by_uv(head.verts_m, head.faces, head.loop_uvs)
        lines = [f"mtllib {path.with_suffix('.mtl').name}", f"o {head.name}"]
        lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in verts]
        lines += [f"vt {u:.6f} {v:.6f}" for u, v in uvs]
        lines.append("usemtl head")
        lines += [f"f {a}/{a} {b}/{b} {c}/{c}" for a, b, c in faces + 1]
        path.write_text("\n".join(lines) + "\n")
        path.with_suffix(".mtl").write_text(f"newmtl head\nKd 1 1 1\nmap_Kd {texture_path.name}\n")
        return [path, path.with_suffix(".mtl"), texture_path]
    raise ValueError(f"unsupported output format {suffix!r}: use .glb or .obj")
