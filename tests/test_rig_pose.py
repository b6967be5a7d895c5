"""Posing a reconstructed head through its skinning: how far the skin stretches, measured
(backend/rig/measure.py), and whether a head turned by the rig reads as turned to mediapipe."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from backend.rig.measure import REGIONS, edge_stretch, mesh_edges, stretch_report


def _tetrahedron() -> tuple[np.ndarray, np.ndarray]:
    verts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    return verts, faces


def test_edges_are_unique_and_undirected():
    _, faces = _tetrahedron()
    edges = mesh_edges(faces)
    assert edges.shape == (6, 2) and (edges[:, 0] < edges[:, 1]).all()


def test_a_rigid_motion_stretches_nothing_and_a_scaling_stretches_everything_alike():
    verts, faces = _tetrahedron()
    edges = mesh_edges(faces)
    moved = verts @ Rotation.from_rotvec([0.3, -1.0, 0.5]).as_matrix().T + [0.2, 0.1, -3.0]
    assert np.allclose(edge_stretch(verts, moved, edges), 1.0)
    assert np.allclose(edge_stretch(verts, 2.5 * verts, edges), 2.5)


def test_the_report_finds_the_stretched_edge_and_its_region():
    verts, faces = _tetrahedron()
    posed = verts.copy()
    posed[3, 2] = 3.0  # edges to vertex 3 grow; edge 0-3 triples
    labels = np.array([REGIONS.index("neck")] * 3 + [REGIONS.index("face")])
    report = stretch_report(verts, posed, faces, labels)
    assert np.isclose(report["all"].max, 3.0) and np.allclose(report["all"].worst_rest_m, [0, 0, 0.5])
    assert np.isclose(report["neck"].max, 3.0) and np.isclose(report["all"].min, 1.0)
    # Edges belong to their lower-index end, so vertex 3 ("face") owns none.
    assert "face" not in report and report["neck"].n_edges == 6
