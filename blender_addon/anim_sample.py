"""Control values over a frame range, as the animation system evaluates them.

Fast path: the head's own action F-curves are evaluated directly, no scene update per frame.
When anything else may drive the controls (drivers, NLA strips), every frame is evaluated with
``scene.frame_set`` instead, which runs the whole animation system, and the original frame is
restored afterwards.
"""
from __future__ import annotations

import numpy as np

from . import head_state
from .shared.controls import MAX_BAKE_FRAMES, MAX_POSE_ANGLE_RAD

try:  # Blender 4.4+: layered actions keep F-curves in per-slot channel bags
    from bpy_extras.anim_utils import action_get_channelbag_for_slot
except ImportError:  # pragma: no cover - Blender 4.2/4.3
    action_get_channelbag_for_slot = None


def check_range(frame_start: int, frame_end: int) -> int:
    """The number of frames, or ValueError with a message for the artist."""
    frames = frame_end - frame_start + 1
    if frames < 1:
        raise ValueError(f"the frame range {frame_start}-{frame_end} is empty")
    if frames > MAX_BAKE_FRAMES:
        raise ValueError(f"the frame range {frame_start}-{frame_end} has {frames} frames; one bake "
                         f"takes at most {MAX_BAKE_FRAMES} (bake long takes in parts)")
    return frames


def sample_controls(scene, obj, frame_start: int, frame_end: int
                    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """name -> (T,) weights and joint -> (T, 3) rotation vectors for frames frame_start..frame_end.

    Raises ValueError for an empty or too long range and for values that are not finite or
    outside what the backend accepts (the message names the control and the frame)."""
    n = check_range(frame_start, frame_end)
    names, joints = head_state.supported_expressions(obj), head_state.supported_joints(obj)
    frames = np.arange(frame_start, frame_end + 1)
    curves = _own_fcurves(obj)
    if curves is not None:
        expressions = {name: _evaluate(curves, obj, name, None, frames) for name in names}
        pose = {j: np.stack([_evaluate(curves, obj, j, i, frames) for i in range(3)], axis=1)
                for j in joints}
    else:
        expressions, pose = _sample_by_frame_set(scene, obj, names, joints, frames)
    _check(expressions, pose, frame_start)
    assert all(len(v) == n for v in (*expressions.values(), *pose.values()))
    return expressions, pose


def _own_fcurves(obj) -> dict[tuple[str, int], object] | None:
    """The action's F-curves by (data path, index); None when drivers or NLA are involved."""
    ad = obj.animation_data
    if ad is None:
        return {}
    if any(d.data_path.startswith("headlift_anim.") for d in ad.drivers) or len(ad.nla_tracks):
        return None
    action = ad.action
    if action is None:
        return {}
    if action_get_channelbag_for_slot is not None:
        bag = action_get_channelbag_for_slot(action, ad.action_slot)
        fcurves = bag.fcurves if bag is not None else []
    else:  # pragma: no cover
        fcurves = action.fcurves
    return {(fc.data_path, fc.array_index): fc for fc in fcurves if not fc.mute}


def ensure_fcurve(action, id_data, data_path: str, index: int = 0):
    """The F-curve of ``action`` animating ``id_data``'s data_path[index], made if missing."""
    if hasattr(action, "fcurve_ensure_for_datablock"):  # Blender 4.4+: layered actions, slots
        return action.fcurve_ensure_for_datablock(id_data, data_path, index=index)
    fcurve = action.fcurves.find(data_path, index=index)  # pragma: no cover - Blender 4.2/4.3
    return fcurve or action.fcurves.new(data_path, index=index)


def _evaluate(curves, obj, name: str, index: int | None, frames: np.ndarray) -> np.ndarray:
    fc = curves.get((head_state.control_path(name), index or 0))
    if fc is None:
        value = getattr(obj.headlift_anim, name)
        value = value[index] if index is not None else value
        return np.full(len(frames), float(value), np.float32)
    return np.array([fc.evaluate(float(f)) for f in frames], np.float32)


def _sample_by_frame_set(scene, obj, names, joints, frames):
    expressions = {n: np.empty(len(frames), np.float32) for n in names}
    pose = {j: np.empty((len(frames), 3), np.float32) for j in joints}
    frame, subframe = scene.frame_current, scene.frame_subframe
    controls = obj.headlift_anim
    with head_state.paused():
        try:
            for k, f in enumerate(frames):
                scene.frame_set(int(f))
                for n in names:
                    expressions[n][k] = getattr(controls, n)
                for j in joints:
                    pose[j][k] = getattr(controls, j)
        finally:
            scene.frame_set(frame, subframe=subframe)
    return expressions, pose


def _check(expressions, pose, frame_start: int) -> None:
    for name, values in expressions.items():
        bad = np.flatnonzero(~np.isfinite(values) | (np.abs(values) > 2.0))
        if len(bad):
            raise ValueError(f"'{name}' is {values[bad[0]]} at frame {frame_start + bad[0]}: "
                             "weights must be finite and within -2..2")
    for joint, values in pose.items():
        length = np.linalg.norm(values, axis=1)
        bad = np.flatnonzero(~np.isfinite(length) | (length > MAX_POSE_ANGLE_RAD))
        if len(bad):
            raise ValueError(f"'{joint}' rotation {values[bad[0]].tolist()} at frame "
                             f"{frame_start + bad[0]} is not finite or longer than a full turn")

