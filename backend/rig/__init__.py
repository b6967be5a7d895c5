"""The animation rig of a reconstructed head: expression shapes, skeleton, skinning weights."""
from __future__ import annotations

import numpy as np

from backend.rig.model import HeadRig, pose_vertices
from backend.rig.skeleton import build_skeleton
from backend.rig.skinning import skin_weights

__all__ = ["HeadRig", "build_rig", "pose_vertices"]


def _expressions(verts_m, faces, landmarks_m, mouth) -> tuple[tuple[str, ...], np.ndarray]:
    """H1's expression shapes when that module is present, else none (E = 0)."""
    try:
        from backend.rig.expressions import build_expressions
    except ImportError:
        return (), np.zeros((0, len(verts_m), 3), dtype=np.float32)
    names, deltas = build_expressions(verts_m, faces, landmarks_m, mouth)
    return tuple(names), np.asarray(deltas, dtype=np.float32)


def build_rig(verts_m: np.ndarray, faces: np.ndarray, landmarks_m: np.ndarray, prior=None,
              mouth=None) -> HeadRig:
    """verts_m (V, 3) / faces (F, 3): the rest mesh; landmarks_m (478, 3); prior: the HeadPrior the
    mesh came from (its bust cut is used), or None; mouth: MouthGeometry or None -> HeadRig."""
    bust_bottom = prior.config.bust_bottom_z_m if prior is not None else None
    skeleton = build_skeleton(verts_m, landmarks_m, bust_bottom)
    weights = skin_weights(verts_m, faces, landmarks_m, skeleton)
    names, deltas = _expressions(verts_m, faces, landmarks_m, mouth)
    return HeadRig(expression_names=names, expression_deltas=deltas, joint_names=skeleton.names,
                   joint_parents=skeleton.parents, joint_rest_m=skeleton.rest_m, skin_weights=weights)
