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
                 free: np.ndarray, order: int = 2):
        self.constrained = np.asarray(constrained, dtype=np.int64)
        self.free = np.asarray(free, dtype=np.int64)
        if order == 1:
            energy = -laplacian
        else:
            energy = laplacian.T @ sp.diags(1.0 / mass) @ laplacian
        energy = energy.tocsr()
        self._free_free = splu(energy[self.free][:, self.free].tocsc())
        self._free_fixed = energy[self.free][:, self.constrained].tocsr()

    def solve(self, values: np.ndarray) -> np.ndarray:
        """values (C, K) at the constrained vertices -> (N_free, K) at the free vertices."""
        values = np.asarray(values, dtype=np.float64)
        flat = values.reshape(len(self.constrained), -1)
        out = self._free_free.solve(-(self._free_fixed @ flat))
        return out.reshape((len(self.free),) + values.shape[1:])
