"""Smooth functions on a triangle mesh: cotangent Laplacian, harmonic and biharmonic interpolation.

The rig spreads values known at a few vertices (landmark handles, lip lines) over the surface. A
solve on the mesh graph follows the surface, not straight lines through space, so a cut (the lip
slit) keeps the two lips apart even where they touch.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra
from scipy.sparse.linalg import splu


def cotangent_laplacian(verts: np.ndarray, faces: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """verts (V, 3), faces (F, 3) -> (L (V, V) symmetric, negative semi-definite; mass (V,) lumped area).

    Cotangent weights are clamped at zero: obtuse slivers from marching cubes would otherwise give
    negative weights, and the smooth solves below lose their maximum principle.
    """
    v = np.asarray(verts, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    n = len(v)
    rows, cols, vals = [], [], []
    corners = v[f]  # (F, 3 corners, 3)
    double_area = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    for k in range(3):
        i, j, o = f[:, (k + 1) % 3], f[:, (k + 2) % 3], f[:, k]
        a, b = v[i] - v[o], v[j] - v[o]
        cot = (a * b).sum(1) / np.maximum(np.linalg.norm(np.cross(a, b), axis=1), 1e-12)
        w = 0.5 * np.clip(cot, 0.0, 1e3)
        rows += [i, j]
        cols += [j, i]
        vals += [w, w]
    off = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsr()
    # A tiny uniform term keeps isolated needle fans (all-zero clamped weights) connected.
    adjacency = (off > 0) + edge_adjacency(f, n)
    off = off + 1e-3 * np.mean(off.data) * (adjacency > 0).astype(np.float64)
    laplacian = off - sp.diags(np.asarray(off.sum(1)).ravel())
    mass = np.bincount(f.ravel(), weights=np.repeat(double_area / 6.0, 3), minlength=n)
    return laplacian.tocsr(), np.maximum(mass, 1e-12)


def unique_edges(faces: np.ndarray) -> np.ndarray:
    """(F, 3) faces -> (E, 2) int64 undirected edges, each once, smaller index first."""
    f = np.asarray(faces, dtype=np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    return np.unique(np.sort(e, axis=1), axis=0)


def edge_adjacency(faces: np.ndarray, n_verts: int, lengths_of: np.ndarray | None = None) -> sp.csr_matrix:
    """(V, V) symmetric adjacency of the mesh edges; entries are edge lengths if vertex positions
    lengths_of (V, 3) are given, else 1."""
    e = unique_edges(faces)
    w = np.ones(len(e)) if lengths_of is None else np.linalg.norm(lengths_of[e[:, 0]] - lengths_of[e[:, 1]], axis=1) + 1e-9
    return sp.coo_matrix((np.concatenate([w, w]), (np.concatenate([e[:, 0], e[:, 1]]), np.concatenate([e[:, 1], e[:, 0]]))),
                         shape=(n_verts, n_verts)).tocsr()


def shortest_path(graph: sp.csr_matrix, source: int, target: int) -> np.ndarray:
    """Vertex indices of the shortest path source -> target in a weighted graph, both ends included."""
    _, pred = dijkstra(graph, directed=False, indices=source, return_predecessors=True)
    if pred[target] < 0 and target != source:
        raise ValueError("no path between the two vertices")
    path = [target]
    while path[-1] != source:
        path.append(int(pred[path[-1]]))
    return np.array(path[::-1], dtype=np.int64)


class ConstrainedSolver:
    """Harmonic (order 1) or biharmonic (order 2) interpolation with fixed values at some vertices.

    Minimises the Dirichlet (order 1) or Laplacian (order 2) energy of x over the free vertices,
    x = given values at the constrained ones. The free block is factorised once; solve() then runs
    for any number of right-hand sides (one per expression shape and axis).
    """

    def __init__(self, laplacian: sp.csr_matrix, mass: np.ndarray, constrained: np.ndarray,
                 free: np.ndarray, order: int = 2, regularise: float = 1e-9):
        self.constrained = np.asarray(constrained, dtype=np.int64)
        self.free = np.asarray(free, dtype=np.int64)
        if order == 1:
            energy = -laplacian
        else:
            energy = laplacian.T @ sp.diags(1.0 / mass) @ laplacian
        # A whisker of identity keeps free islands that touch no constraint solvable (they go to 0).
        energy = (energy + regularise * abs(energy.diagonal()).mean() * sp.identity(energy.shape[0])).tocsr()
        # Symmetric positive definite: a symmetric ordering and no pivoting keep the factor small.
        self._free_free = splu(energy[self.free][:, self.free].tocsc(), permc_spec="MMD_AT_PLUS_A",
                               diag_pivot_thresh=0.0, options={"SymmetricMode": True})
        self._free_fixed = energy[self.free][:, self.constrained].tocsr()

    def solve(self, values: np.ndarray) -> np.ndarray:
        """values (C, K) at the constrained vertices -> (N_free, K) at the free vertices."""
        values = np.asarray(values, dtype=np.float64)
        flat = values.reshape(len(self.constrained), -1)
        out = self._free_free.solve(-(self._free_fixed @ flat))
        return out.reshape((len(self.free),) + values.shape[1:])


class FrontView:
    """The mesh seen from the front (from -Y, orthographic) over an x-z box: per pixel the first
    triangle and its depth (canonical y). pixel_m: pixel size in metres."""

    def __init__(self, verts: np.ndarray, faces: np.ndarray, lo_xz, hi_xz, pixel_m: float = 0.0004,
                 max_y: float = np.inf):
        import torch

        from backend.render.raster import rasterize

        v = np.asarray(verts, dtype=np.float64)
        self.lo, self.hi, self.pixel = np.asarray(lo_xz, float), np.asarray(hi_xz, float), pixel_m
        self.width, self.height = (np.ceil((self.hi - self.lo) / pixel_m).astype(int) + 1)
        near = ((v[:, 0] > self.lo[0]) & (v[:, 0] < self.hi[0]) & (v[:, 2] > self.lo[1]) & (v[:, 2] < self.hi[1])
                & (v[:, 1] < max_y))
        f = np.asarray(faces, dtype=np.int64)
        self.faces = f[near[f].all(axis=1)]  # only triangles in the box (and in front of max_y) are drawn
        px = np.stack([(v[:, 0] - self.lo[0]) / pixel_m, (self.hi[1] - v[:, 2]) / pixel_m, v[:, 1]], axis=1)
        frags = rasterize(torch.as_tensor(px, dtype=torch.float32), torch.as_tensor(self.faces),
                          int(self.height), int(self.width))
        self.tri = frags.tri_id.numpy()
        self.bary = frags.bary.numpy()
        self.depth = frags.depth.numpy()

    def snap(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) -> (N,) the nearest corner of the triangle seen at each point's pixel, -1 on a miss."""
        row, col = self.pixel_of(points)
        tri = self.tri[row, col]
        corner = np.argmax(self.bary[row, col], axis=1)
        return np.where(tri >= 0, self.faces[np.maximum(tri, 0), corner], -1)

    def pixel_of(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = np.asarray(points, dtype=np.float64)
        col = np.clip(((p[:, 0] - self.lo[0]) / self.pixel).astype(int), 0, self.width - 1)
        row = np.clip(((self.hi[1] - p[:, 2]) / self.pixel).astype(int), 0, self.height - 1)
        return row, col


def front_snap(verts: np.ndarray, faces: np.ndarray, points: np.ndarray, pixel_m: float = 0.0004,
               view: FrontView | None = None) -> np.ndarray:
    """The mesh vertex each point (N, 3) lands on when the mesh is seen from the front (from -Y,
    orthographic): the nearest corner of the first triangle straight in front of or behind it.
    Points that miss the mesh take the nearest vertex in 3-D. -> (N,) int64 vertex indices.
    view: a FrontView of this mesh covering the points, to reuse.

    Lifted landmarks can sit a centimetre behind the surface round the eyes; the nearest vertex in
    3-D would then slide sideways, the surface straight in front of them does not."""
    from scipy.spatial import cKDTree

    v = np.asarray(verts, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64)
    if view is None:
        view = FrontView(v, faces, p[:, [0, 2]].min(0) - 0.01, p[:, [0, 2]].max(0) + 0.01, pixel_m)
    out = view.snap(p)
    if (out < 0).any():
        _, nearest = cKDTree(v).query(p[out < 0])
        out[out < 0] = nearest
    return out.astype(np.int64)
