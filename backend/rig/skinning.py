"""Smooth skinning weights: rigid cores, and each joint's rotation faded out across the surface.

Each joint owns a core of vertices that must move rigidly with it (the skull and face with the head,
the arm stubs with the shoulders, the bottom of the bust with the root). Away from the head and neck
cores their rotation fades out with distance along the surface, measured in a metric where each
edge counts its length over its distance from the joint (rotation_graph): a rotation moves a point
in proportion to that distance, so fading evenly in this metric stretches the skin about evenly.
Hair far behind the neck or a collar's rim gets a long transition, the neck itself a short one, and
the stretch of a 45 degree turn stays under about 2x. No body core lies within that reach of the
head and neck cores (hair hanging onto a collar would otherwise be a seam), except the bust's
bottom band, which the fade always reaches zero at. (Harmonic weights were tried first: pinned
regions with corners make their gradients blow up next to the corner, which tore the skin under
the chin. backend/rig/measure.py measures the stretch.)
Three nested fractions:
    a = how much a vertex follows head rotation   (1 on the head core, 0 beyond its reach)
    b = how much it follows neck rotation         (1 on the head and neck, 0 beyond its reach)
    c = how the rest divides among the body joints (root, collars, shoulders)
giving head = a, neck = b - a, body joint k = (1 - b) * c_k: rows sum to 1 by construction.
Vertices outside the main surface (mouth interior parts) copy the nearest main-surface vertex.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
from scipy.spatial import cKDTree

from backend.rig.skeleton import CHIN, JAW_ANGLES, Skeleton

# Face-mesh landmarks at the left/right edges of the face (cheekbones by the ears).
FACE_SIDES = (234, 454)


@dataclass
class SkinningConfig:
    jaw_margin_m: float = 0.012  # the head core reaches this far below the chin / jaw line
    face_margin_m: float = 0.02  # and this far beyond the face's sides, below the ears
    neck_core_above_m: float = 0.02  # neck rotation is whole above neck base + this
    # This far below the neck base, whatever lies beyond the head's and neck's reach follows the
    # body alone (a short neck, or a chin near the chest, twists a little upper chest instead).
    torso_below_neck_m: float = 0.07
    shoulder_core_inset_m: float = 0.01  # arm core starts this far inside the shoulder joint
    collar_core_m: float = 0.05  # radius of the collar core around the collar-shoulder midpoint
    root_core_height_m: float = 0.05  # bottom band of the bust that moves only with the root
    pivot_floor_m: float = 0.03  # rotation_graph: distances from a joint count at least this much
    # How far, in rotation_graph's metric (about radians), the head's / neck's rotation fades out
    # from its core. A turn by theta faded by `ease` over length L shears the skin by at most about
    # 1.33 * 2 sin(theta / 2) / L: 0.8 at 45 degrees for L = 1.25.
    head_reach: float = 1.25
    neck_reach: float = 1.25


def ease(t: np.ndarray, corner: float = 0.25) -> np.ndarray:
    """0 -> 1 over t in [0, 1], flat at both ends (C1), with the least steepest slope for that:
    the slope rises linearly over the first `corner` of the way, holds at 1 / (1 - corner), falls
    over the last. (smoothstep's steepest slope is 1.5; this one's 1.33 stretches skin less.)"""
    t = np.clip(t, 0.0, 1.0)
    m = 1.0 / (1.0 - corner)
    return np.where(t < corner, 0.5 * m * t * t / corner,
                    np.where(t > 1.0 - corner, 1.0 - 0.5 * m * (1.0 - t) ** 2 / corner, m * (t - 0.5 * corner)))


def edge_graph(verts: np.ndarray, faces: np.ndarray) -> sp.csr_matrix:
    """(V, V) symmetric sparse matrix of mesh edge lengths."""
    f = np.asarray(faces, dtype=np.int64)
    edges = np.unique(np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1), axis=0)
    length = np.linalg.norm(verts[edges[:, 0]] - verts[edges[:, 1]], axis=1)
    length = np.maximum(length, 1e-9)  # a zero would read as "no edge"
    n = len(verts)
    g = sp.coo_matrix((length, (edges[:, 0], edges[:, 1])), shape=(n, n))
    return (g + g.T).tocsr()


def rotation_graph(graph: sp.csr_matrix, verts: np.ndarray, pivot: np.ndarray, floor_m: float) -> sp.csr_matrix:
    """The edge graph with each edge's length divided by its midpoint's distance from `pivot`
    (at least floor_m). A joint rotation moves a point in proportion to that distance, so a weight
    blended evenly in this metric stretches the skin about evenly: far from the joint (hair hanging
    behind the neck, a collar's rim) the transition is drawn out, near it (the neck) it is short."""
    g = graph.tocoo()
    mid = 0.5 * (verts[g.row] + verts[g.col])
    reach = np.maximum(np.linalg.norm(mid - pivot, axis=1), floor_m)
    return sp.csr_matrix((g.data / reach, (g.row, g.col)), shape=g.shape)


def surface_distance(graph: sp.csr_matrix, sources: np.ndarray) -> np.ndarray:
    """(V,) distance along mesh edges to the nearest vertex in `sources` ((V,) bool); inf when
    there are none or they cannot be reached."""
    if not sources.any():
        return np.full(graph.shape[0], np.inf)
    return csgraph.dijkstra(graph, directed=False, indices=np.flatnonzero(sources), min_only=True)


def fade(d_core: np.ndarray, d_zero: np.ndarray, reach: float) -> np.ndarray:
    """1 on a core, 0 at `reach` from it or on the zero set, whichever comes first, eased between
    (distances (V,) to the core and to the zero set)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        across = np.nan_to_num(d_core / (d_core + d_zero), nan=1.0)
    across = np.where(np.isfinite(d_core) & ~np.isfinite(d_zero), 0.0, across)
    return 1.0 - ease(np.maximum(d_core / reach, across))


def _main_component(faces: np.ndarray, n_verts: int) -> np.ndarray:
    """(V,) bool: vertices of the largest connected piece of the surface."""
    f = np.asarray(faces, dtype=np.int64)
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    graph = sp.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n_verts, n_verts))
    _, label = csgraph.connected_components(graph, directed=False)
    return label == np.bincount(label).argmax()


def head_core(verts: np.ndarray, landmarks_m: np.ndarray, skeleton: Skeleton,
              config: SkinningConfig) -> np.ndarray:
    """(V,) bool: skull, face and jaw — everything above the skull base (the head joint's height),
    and below it what lies between the face's sides above a plane through the chin and the jaw
    angles (lowered by a margin): not hair hanging beside the jaw or behind the neck."""
    lm = np.asarray(landmarks_m, dtype=np.float64)
    chin, jaw_r, jaw_l = lm[CHIN], lm[JAW_ANGLES[0]], lm[JAW_ANGLES[1]]
    normal = np.cross(jaw_l - chin, jaw_r - chin)
    normal /= np.linalg.norm(normal)
    if normal[2] < 0:
        normal = -normal
    above_jaw = (verts - chin) @ normal > -config.jaw_margin_m
    head_z = skeleton.rest_m[skeleton.names.index("head"), 2]
    face_half = float(np.abs(lm[list(FACE_SIDES), 0]).max()) + config.face_margin_m
    # Everything above the skull base is skull (the back of the head included, whatever the jaw
    # plane's tilt); below it, only what is between the face's sides above the jaw plane.
    return (above_jaw & (np.abs(verts[:, 0]) < face_half)) | (verts[:, 2] > head_z)


def body_cores(verts: np.ndarray, skeleton: Skeleton, config: SkinningConfig) -> dict[str, np.ndarray]:
    """(V,) bool per body joint: arm stubs, tops of the shoulders by the collars, the bottom band."""
    joint = {name: skeleton.rest_m[i].astype(np.float64) for i, name in enumerate(skeleton.names)}
    z = verts[:, 2]
    neck_z = joint["neck"][2]
    cores = {}
    for side, name in ((1.0, "left"), (-1.0, "right")):
        sx = joint[f"{name}_shoulder"][0]
        cores[f"{name}_shoulder"] = (side * verts[:, 0] > abs(sx) - config.shoulder_core_inset_m) & (z < neck_z)
        mid = 0.5 * (joint[f"{name}_collar"] + joint[f"{name}_shoulder"])
        near = np.linalg.norm((verts - mid)[:, :2] * [1.0, 0.5], axis=1) < config.collar_core_m
        cores[f"{name}_collar"] = near & (z < neck_z) & ~cores[f"{name}_shoulder"]
    root = z < z.min() + config.root_core_height_m
    for m in list(cores.values()):
        root &= ~m
    cores["root"] = root
    return cores


def skin_weights(verts_m: np.ndarray, faces: np.ndarray, landmarks_m: np.ndarray, skeleton: Skeleton,
                 config: SkinningConfig | None = None) -> np.ndarray:
    """verts_m (V, 3), faces (F, 3), landmarks_m (478, 3) -> (V, J) float32 weights in
    skeleton.names order, rows summing to 1."""
    c = config or SkinningConfig()
    verts = np.asarray(verts_m, dtype=np.float64)
    n = len(verts)
    names = skeleton.names
    main = _main_component(faces, n)
    index = np.flatnonzero(main)
    remap = -np.ones(n, dtype=np.int64)
    remap[index] = np.arange(len(index))
    f = np.asarray(faces, dtype=np.int64)
    v = verts[main]
    graph = edge_graph(v, remap[f[main[f].all(axis=1)]])
    z = v[:, 2]
    neck_z = float(skeleton.rest_m[names.index("neck"), 2])

    joint = {name: skeleton.rest_m[i].astype(np.float64) for i, name in enumerate(names)}
    g_head = rotation_graph(graph, v, joint["head"], c.pivot_floor_m)
    g_neck = rotation_graph(graph, v, joint["neck"], c.pivot_floor_m)
    cores = body_cores(v, skeleton, c)
    head = head_core(v, landmarks_m, skeleton, c)
    neck = head | (z > neck_z + c.neck_core_above_m)
    d_head = surface_distance(g_head, head)
    d_neck = surface_distance(g_neck, neck)
    # Nothing but the bust's bottom band binds to the body within a turn's reach of the head and
    # neck cores: hair hanging beside the jaw onto a collar, a chin near the chest, get a whole
    # transition instead of a seam.
    clear = (d_head >= c.head_reach) & (d_neck >= c.neck_reach)
    cores = {k: m & (clear | (k == "root")) for k, m in cores.items()}
    torso = (z < neck_z - c.torso_below_neck_m) & clear
    for m in cores.values():
        torso |= m

    a = fade(d_head, surface_distance(g_head, torso), c.head_reach)
    b = np.maximum(fade(d_neck, surface_distance(g_neck, torso), c.neck_reach), a)
    # The body's share divides by inverse squared distance to each body core (Shepard): flat on
    # the cores, smooth between them.
    body_names = [k for k in names if k not in ("head", "neck")]
    d_body = np.stack([surface_distance(graph, cores[k]) for k in body_names], axis=1)
    inv = 1.0 / np.maximum(d_body, 1e-6) ** 2
    split = inv / inv.sum(axis=1, keepdims=True)

    w_main = np.zeros((len(v), len(names)))
    w_main[:, names.index("head")] = a
    w_main[:, names.index("neck")] = b - a
    for k, name in enumerate(body_names):
        w_main[:, names.index(name)] = (1.0 - b) * split[:, k]
    w_main /= w_main.sum(axis=1, keepdims=True)

    weights = np.zeros((n, len(names)))
    weights[main] = w_main
    if (~main).any():
        _, nearest = cKDTree(v).query(verts[~main])
        weights[~main] = w_main[nearest]
    return weights.astype(np.float32)
