"""What several add-on modules need to know about a head, in one place that imports none of them.

- the head's stored info: ID properties on the object (head id, the expressions and joints its rig
  has, the reconstruct options, how its bake is stored), so a saved .blend can re-attach to a
  restarted backend;
- the live-update pause: while anything holds ``paused()`` (a bake sampling frames, a batch of
  control edits) a moved control sends nothing;
- the control-changed hook: the sliders' update callback calls ``control_changed(obj)``; live update
  (anim_live) installs the listener at register time, so the properties never import it.
"""
from __future__ import annotations

import contextlib
import json
from typing import Callable

from .shared.controls import ARKIT_GROUPS, ARKIT_NAMES, POSE_JOINTS

PROP_HEAD_ID = "headlift_head_id"  # str: the backend's id of the head
PROP_EXPRESSIONS = "headlift_expressions"  # list[str]: what the head supports, ARKit order
PROP_JOINTS = "headlift_joints"  # list[str]
PROP_OPTIONS = "headlift_options"  # JSON text of the reconstruct options
PROP_BAKE = "headlift_bake"  # dict: how the current bake is stored (see bake_cache.py)

_paused = 0
_listener: Callable[[object], None] | None = None


@contextlib.contextmanager
def paused():
    """No live requests inside (e.g. while a bake samples frames with scene.frame_set)."""
    global _paused
    _paused += 1
    try:
        yield
    finally:
        _paused -= 1


def is_paused() -> bool:
    return _paused > 0


def set_control_listener(listener: Callable[[object], None] | None) -> None:
    """``listener(obj)`` is called whenever a control of head ``obj`` changes (None: nobody)."""
    global _listener
    _listener = listener


def control_changed(obj) -> None:
    if _listener is not None:
        _listener(obj)


def is_head(obj) -> bool:
    return obj is not None and obj.type == 'MESH' and bool(obj.get(PROP_HEAD_ID))


def supported_expressions(obj) -> list[str]:
    """The ARKit names this head's rig has (may be empty: a head without expressions)."""
    names = set(obj.get(PROP_EXPRESSIONS, []) or [])
    return [n for n in ARKIT_NAMES if n in names]


def supported_joints(obj) -> list[str]:
    joints = obj.get(PROP_JOINTS)
    if joints is None:
        return list(POSE_JOINTS)
    return [j for j in POSE_JOINTS if j in set(joints)]


def visible_groups(expression_names) -> list[tuple[str, list[str]]]:
    """ARKIT_GROUPS cut down to the supported names; empty groups dropped."""
    names = set(expression_names)
    return [(label, [n for n in members if n in names]) for label, members in ARKIT_GROUPS
            if any(n in names for n in members)]


def current_values(obj) -> tuple[dict[str, float], dict[str, list[float]]]:
    """The controls as an ``animate`` body: supported expressions and every supported joint."""
    controls = obj.headlift_anim
    expressions = {n: float(getattr(controls, n)) for n in supported_expressions(obj)}
    pose = {j: [float(v) for v in getattr(controls, j)] for j in supported_joints(obj)}
    return expressions, pose


def options(obj) -> dict:
    try:
        return dict(json.loads(obj.get(PROP_OPTIONS, "{}")))
    except (TypeError, ValueError):
        return {}


def store_head_info(obj, expression_names, joint_names, options_: dict) -> None:
    obj[PROP_EXPRESSIONS] = [str(n) for n in expression_names]
    obj[PROP_JOINTS] = [str(n) for n in joint_names] if joint_names else list(POSE_JOINTS)
    obj[PROP_OPTIONS] = json.dumps(options_ or {}, sort_keys=True)


def control_path(name: str) -> str:
    return f"headlift_anim.{name}"
