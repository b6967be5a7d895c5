"""How much a pose stretches the skin: edge length ratios of a posed mesh against its rest mesh.

Linear blend skinning cannot cut a connected mesh, so "tearing" shows as edges drawn out where the
weights change faster than the joints' motion allows (hair smeared between the head and the back,
a collar pulled toward the chin). The ratio posed / rest of every mesh edge measures that; 1 is
rigid, 2 is an edge drawn to twice its length, 0.5 squashed to half. Regions are cut simply from
the skeleton and the landmarks so a report says where the worst edge is.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.rig.skeleton import CHIN, Skeleton

REGIONS = ("face", "back_of_head", "neck", "shoulders")


def mesh_edges(faces: np.ndarray) -> np.ndarray:
    """faces (F, 3) -> (E, 2) int64 unique undirected edges, lower index first."""
    f = np.asarray(faces, dtype=np.int64)
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    return np.unique(edges, axis=0)


def edge_stretch(rest_verts: np.ndarray, posed_verts: np.ndarray, edges: np.ndarray,
                 min_rest_m: float = 1e-6) -> np.ndarray:
    """rest (V, 3), posed (V, 3), edges (E, 2) -> (E,) posed / rest edge length (1 where the rest
    edge is shorter than min_rest_m: a degenerate edge has no length to stretch)."""
    rest = np.asarray(rest_verts, dtype=np.float64)
    posed = np.asarray(posed_verts, dtype=np.float64)
    l0 = np.linalg.norm(rest[edges[:, 0]] - rest[edges[:, 1]], axis=1)
    l1 = np.linalg.norm(posed[edges[:, 0]] - posed[edges[:, 1]], axis=1)
    ok = l0 >= min_rest_m
    return np.where(ok, l1 / np.where(ok, l0, 1.0), 1.0)


def vertex_regions(verts_m: np.ndarray, landmarks_m: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """(V,) int index into REGIONS, from rest positions:
    shoulders    below the neck base (collars, shoulders, chest, back, hair lying on them);
    back_of_head behind the head joint and above the neck base (skull, nape, hair behind the neck);
    face         in front of the head joint and above the chin;
    neck         the rest: in front of the head joint between the neck base and the chin."""
    v = np.asarray(verts_m, dtype=np.float64)
    names = skeleton.names
    head_y = float(skeleton.rest_m[names.index("head"), 1])
    neck_z = float(skeleton.rest_m[names.index("neck"), 2])
    chin_z = float(np.asarray(landmarks_m)[CHIN, 2])
    label = np.full(len(v), REGIONS.index("neck"), dtype=np.int64)
    label[v[:, 2] >= chin_z] = REGIONS.index("face")
    label[v[:, 1] >= head_y] = REGIONS.index("back_of_head")
    label[v[:, 2] < neck_z] = REGIONS.index("shoulders")
    return label


@dataclass
class RegionStretch:
    """Stretch of the edges of one region (an edge belongs to the region of its lower-index end)."""

    n_edges: int
    max: float            # largest posed / rest ratio
    p99: float
    min: float            # smallest ratio (compression)
    worst_rest_m: tuple   # (3,) rest midpoint of the most stretched edge


def stretch_report(rest_verts: np.ndarray, posed_verts: np.ndarray, faces: np.ndarray,
                   labels: np.ndarray) -> dict[str, RegionStretch]:
    """Per region of REGIONS (labels (V,) from vertex_regions) plus "all": the stretch figures.
    Regions without edges are left out."""
    edges = mesh_edges(faces)
    ratio = edge_stretch(rest_verts, posed_verts, edges)
    mid = 0.5 * (np.asarray(rest_verts)[edges[:, 0]] + np.asarray(rest_verts)[edges[:, 1]])
    edge_label = np.asarray(labels)[edges[:, 0]]
    out: dict[str, RegionStretch] = {}
    for k, name in [(-1, "all")] + list(enumerate(REGIONS)):
        sel = np.ones(len(edges), bool) if k < 0 else edge_label == k
        if not sel.any():
            continue
        r = ratio[sel]
        worst = int(np.argmax(r))
        out[name] = RegionStretch(int(sel.sum()), float(r.max()), float(np.percentile(r, 99)),
                                  float(r.min()), tuple(float(x) for x in mid[sel][worst]))
    return out


def vertex_stretch(n_verts: int, edges: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """(V,) largest ratio of any edge at each vertex (1 on isolated vertices), for colouring."""
    out = np.ones(n_verts)
    np.maximum.at(out, edges[:, 0], ratio)
    np.maximum.at(out, edges[:, 1], ratio)
    return out
