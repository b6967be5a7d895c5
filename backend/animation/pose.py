"""Animation requests as arrays: validated controls in, posed vertices out.

The wire has already checked every value (finite, |weight| <= 2, rotations <= 2 pi, 1..10,000
frames, names among the ARKit / pose-joint names). What is left here is what only the head knows:
which expressions it supports, and putting the controls into its rig's order before calling
``backend.rig.model.pose_vertices``. Missing names mean weight 0 / no rotation.
"""
from __future__ import annotations

from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from backend.errors import BadRequestError, CancelledError, NoRigError
from backend.reconstruct.result import Reconstruction

FLOAT_BYTES = 4


def rig_of(head: Reconstruction):
    """The head's HeadRig; NoRigError if it was reconstructed without one."""
    rig = getattr(head, "rig", None)
    if rig is None:
        raise NoRigError(f"head {head.name!r} has no animation rig (it was made by a backend "
                         f"without the rig stage); reconstruct it again to animate it")
    return rig


def _columns(wanted: Sequence[str], available: Sequence[str], what: str) -> list[int]:
    """Index in ``available`` of each name in ``wanted``; BadRequestError lists the missing ones."""
    index = {name: i for i, name in enumerate(available)}
    missing = [n for n in wanted if n not in index]
    if missing:
        raise BadRequestError(f"this head has no {what} {', '.join(map(repr, missing))}; "
                              f"it supports: {', '.join(available) or 'none'}")
    return [index[n] for n in wanted]


def curve_arrays(rig, expression_names: Sequence[str], pose_joints: Sequence[str],
                 expressions: np.ndarray, poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """expressions (T, E') for ``expression_names``, poses (T, J', 3) for ``pose_joints`` ->
    (T, E) and (T, J, 3) float32 in the rig's order, zero where a name was not given."""
    n_frames = expressions.shape[0]
    expr = np.zeros((n_frames, len(rig.expression_names)), np.float32)
    expr[:, _columns(expression_names, rig.expression_names, "expression shape(s)")] = expressions
    rot = np.zeros((n_frames, len(rig.joint_names), 3), np.float32)
    rot[:, _columns(pose_joints, rig.joint_names, "joint(s)")] = poses
    return expr, rot


def control_arrays(rig, expressions: Mapping[str, float],
                   pose: Mapping[str, Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """One frame of controls ({name: weight}, {joint: (3,)}) -> (1, E) and (1, J, 3) float32."""
    names, joints = list(expressions), list(pose)
    values = np.array([[expressions[n] for n in names]], np.float32).reshape(1, len(names))
    rotations = np.array([[pose[j] for j in joints]], np.float32).reshape(1, len(joints), 3)
    return curve_arrays(rig, names, joints, values, rotations)


def pose_frames(head: Reconstruction, expressions: np.ndarray, poses: np.ndarray) -> np.ndarray:
    """(T, E), (T, J, 3) in the rig's order -> (T, V, 3) float32 posed vertices."""
    from backend.rig.model import pose_vertices  # torch: imported when the first request needs it

    return pose_vertices(rig_of(head), head.verts_m, expressions, poses)


def animate(head: Reconstruction, expressions: Mapping[str, float],
            pose: Mapping[str, Sequence[float]]) -> np.ndarray:
    """The head posed once: (V, 3) float32."""
    expr, rot = control_arrays(rig_of(head), expressions, pose)
    return pose_frames(head, expr, rot)[0]


def frames_per_chunk(n_verts: int, max_bytes: int) -> int:
    """How many (V, 3) float32 frames fit in ``max_bytes`` (at least one)."""
    return max(1, max_bytes // max(1, n_verts * 3 * FLOAT_BYTES))


def bake_chunks(head: Reconstruction, expressions: np.ndarray, poses: np.ndarray,
                per_chunk: int, should_cancel: Callable[[], bool] = lambda: False
                ) -> Iterator[tuple[int, np.ndarray]]:
    """(offset, verts (t, V, 3)) for consecutive chunks of at most ``per_chunk`` frames.

    Only one chunk exists at a time, so a 10,000-frame bake never holds (T, V, 3) in memory.
    ``should_cancel`` is asked before each chunk; CancelledError when it says so.
    """
    n_frames = expressions.shape[0]
    for start in range(0, n_frames, per_chunk):
        if should_cancel():
            raise CancelledError(f"the bake was cancelled after {start} of {n_frames} frames")
        stop = min(n_frames, start + per_chunk)
        yield start, pose_frames(head, expressions[start:stop], poses[start:stop])
