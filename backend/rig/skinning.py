"""Smooth skinning weights: harmonic interpolation over the mesh between rigid cores.

Each joint owns a core of vertices that must move rigidly with it (the skull and face with the head,
the arm stubs with the shoulders, the bottom of the bust with the root); everything between cores is
solved from Laplace's equation on the surface, so weights change as slowly as the geometry allows and
long hair blends over its whole length instead of tearing at one seam. Three nested fields:
    a = how much a vertex follows head rotation   (1 on the head core, 0 at the neck base and below)
    b = how much it follows neck rotation         (1 on the head and neck, 0 on the chest)
    c = how the rest divides among the body joints (root, collars, shoulders)
giving head = a, neck = b - a, body joint k = (1 - b) * c_k: rows sum to 1 by construction.
Vertices outside the main surface (mouth interior parts) copy the nearest main-surface vertex.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.sparse.linalg as spla
from scipy.spatial import cKDTree

from backend.rig.skeleton import CHIN, JAW_ANGLES, Skeleton

# Face-mesh landmarks at the left/right edges of the face (cheekbones by the ears).
FACE_SIDES = (234, 454)


@dataclass
class SkinningConfig:
    jaw_margin_m: float = 0.012  # the head core reaches this far below the chin / jaw line
    face_margin_m: float = 0.02  # and this far beyond the face's sides, below the ears
    # Head rotation fades out this far below the neck base (a short neck twists into the chest).
    head_fade_below_neck_m: float = 0.04
    neck_core_above_m: float = 0.02  # neck rotation is whole above neck base + this
    neck_fade_below_m: float = 0.05  # and gone this far below the neck base
    shoulder_core_inset_m: float = 0.01  # arm core starts this far inside the shoulder joint
    collar_core_m: float = 0.05  # radius of the collar core around the collar-shoulder midpoint
    root_core_height_m: float = 0.05  # bottom band of the bust that moves only with the root


def cotangent_laplacian(verts: np.ndarray, faces: np.ndarray) -> sp.csr_matrix:
    """(V, V) symmetric positive semi-definite Laplacian with cotangent weights clamped at zero
    (obtuse marching-cubes triangles would otherwise break the maximum principle, letting weights
    leave [0, 1]) plus a small uniform term so every mesh edge connects."""
    v = np.asarray(verts, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    rows, cols, vals = [], [], []
    for k in range(3):
        i, j, o = f[:, (k + 1) % 3], f[:, (k + 2) % 3], f[:, k]
        e1, e2 = v[i] - v[o], v[j] - v[o]
        cross = np.linalg.norm(np.cross(e1, e2), axis=1)
        cot = (e1 * e2).sum(1) / np.maximum(cross, 1e-18)
        rows += [i, j]
        cols += [j, i]
        vals += [0.5 * cot, 0.5 * cot]
    n = len(v)
    w = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsr()
    w.data = np.maximum(w.data, 0.0)
    adjacency = sp.coo_matrix((np.ones(6 * len(f)), (np.concatenate(rows), np.concatenate(cols))),
                              shape=(n, n)).tocsr()
    adjacency.data[:] = 1.0
    w = w + 1e-3 * adjacency
    return (sp.diags(np.asarray(w.sum(axis=1)).ravel()) - w).tocsr()


def harmonic(laplacian: sp.csr_matrix, fixed: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Solve L x = 0 on the free vertices with x = values on the fixed ones.

    fixed: (V,) bool; values: (V, K) float (only the fixed rows are read) -> (V, K) float64.
    """
    values = np.asarray(values, dtype=np.float64)
    out = values.copy()
    free = ~fixed
    if not free.any():
        return out
    l_ff = laplacian[free][:, free].tocsc()
    rhs = -(laplacian[free][:, fixed] @ values[fixed])
    out[free] = spla.splu(l_ff).solve(np.ascontiguousarray(rhs))
    return out


def _main_component(faces: np.ndarray, n_verts: int) -> np.ndarray:
    """(V,) bool: vertices of the largest connected piece of the surface."""
    f = np.asarray(faces, dtype=np.int64)
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    graph = sp.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n_verts, n_verts))
    _, label = csgraph.connected_components(graph, directed=False)
    return label == np.bincount(label).argmax()


def head_core(verts: np.ndarray, landmarks_m: np.ndarray, skeleton: Skeleton,
              config: SkinningConfig) -> np.ndarray:
    """(V,) bool: skull, face and jaw — everything above a plane through the chin and the jaw angles
    (lowered by a margin), except hair hanging beside the jaw below the skull base."""
    lm = np.asarray(landmarks_m, dtype=np.float64)
    chin, jaw_r, jaw_l = lm[CHIN], lm[JAW_ANGLES[0]], lm[JAW_ANGLES[1]]
    normal = np.cross(jaw_l - chin, jaw_r - chin)
    normal /= np.linalg.norm(normal)
    if normal[2] < 0:
        normal = -normal
    above_jaw = (verts - chin) @ normal > -config.jaw_margin_m
    head_z = skeleton.rest_m[skeleton.names.index("head"), 2]
    face_half = float(np.abs(lm[list(FACE_SIDES), 0]).max()) + config.face_margin_m
    return above_jaw & ((np.abs(verts[:, 0]) < face_half) | (verts[:, 2] > head_z))


def skin_weights(verts_m: np.ndarray, faces: np.ndarray, landmarks_m: np.ndarray, skeleton: Skeleton,
                 config: SkinningConfig | None = None) -> np.ndarray:
    """verts_m (V, 3), faces (F, 3), landmarks_m (478, 3) -> (V, J) float32 weights in
    skeleton.names order, rows summing to 1."""
    c = config or SkinningConfig()
    verts = np.asarray(verts_m, dtype=np.float64)
    n = len(verts)
    names = skeleton.names
    joint = {name: skeleton.rest_m[i].astype(np.float64) for i, name in enumerate(names)}
    main = _main_component(faces, n)
    index = np.flatnonzero(main)
    remap = -np.ones(n, dtype=np.int64)
    remap[index] = np.arange(len(index))
    f = np.asarray(faces, dtype=np.int64)
    f_main = remap[f[main[f].all(axis=1)]]
    v = verts[main]
    lap = cotangent_laplacian(v, f_main)
    z = v[:, 2]
    neck_z = joint["neck"][2]

    # Body cores: arm stubs, tops of the shoulders by the collars, the bottom band of the bust.
    cores = {}
    for side, name in ((1.0, "left"), (-1.0, "right")):
        sx = joint[f"{name}_shoulder"][0]
        cores[f"{name}_shoulder"] = (side * v[:, 0] > abs(sx) - c.shoulder_core_inset_m) & (z < neck_z)
        mid = 0.5 * (joint[f"{name}_collar"] + joint[f"{name}_shoulder"])
        near = np.linalg.norm((v - mid)[:, :2] * [1.0, 0.5], axis=1) < c.collar_core_m
        cores[f"{name}_collar"] = near & (z < neck_z) & ~cores[f"{name}_shoulder"]
    bottom = z.min()
    cores["root"] = z < bottom + c.root_core_height_m
    for name in ("left_shoulder", "right_shoulder", "left_collar", "right_collar"):
        cores["root"] &= ~cores[name]
    body = np.zeros(len(v), dtype=bool)
    for m in cores.values():
        body |= m

    head = head_core(v, landmarks_m, skeleton, c) & ~body
    # a: head rotation, fades out below the neck base.
    a_zero = (z < neck_z - c.head_fade_below_neck_m) | body
    a = harmonic(lap, head | a_zero, head[:, None].astype(float))[:, 0]
    # b: neck rotation, whole above the neck base, gone on the chest.
    b_one = (head | (z > neck_z + c.neck_core_above_m)) & ~body
    b_zero = ((z < neck_z - c.neck_fade_below_m) | body) & ~b_one
    b = harmonic(lap, b_one | b_zero, b_one[:, None].astype(float))[:, 0]
    b = np.maximum(b, a)
    # c: how the body's share divides among root, collars and shoulders.
    body_names = [n_ for n_ in names if n_ not in ("head", "neck")]
    fixed_values = np.stack([cores[n_] for n_ in body_names], axis=1).astype(float)
    split = harmonic(lap, body, fixed_values)

    w_main = np.zeros((len(v), len(names)))
    w_main[:, names.index("head")] = a
    w_main[:, names.index("neck")] = b - a
    for k, name in enumerate(body_names):
        w_main[:, names.index(name)] = (1.0 - b) * split[:, k]
    w_main = np.clip(w_main, 0.0, None)
    w_main /= w_main.sum(axis=1, keepdims=True)

    weights = np.zeros((n, len(names)))
    weights[main] = w_main
    if (~main).any():
        _, nearest = cKDTree(v).query(verts[~main])
        weights[~main] = w_main[nearest]
    return weights.astype(np.float32)
