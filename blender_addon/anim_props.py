"""The animation controls on a head object: one slider per ARKit expression, one rotation per joint.

They live in ``object.headlift_anim`` (a PropertyGroup), so I-key / right-click keyframing, drivers,
the Graph Editor and the NLA treat them like any other property. Data paths look like
``headlift_anim.jawOpen`` and ``headlift_anim.head`` (index 0..2).

Pose values: a joint's three numbers are its axis-angle rotation vector (direction = axis, length =
angle) in the canonical frame, which is Blender's (+X the subject's left, +Y back, +Z up), relative
to the parent joint (shared/controls.py). Stored in radians; ``unit='ROTATION'`` makes the UI show
degrees. So ``head = (0, 0, 30°)`` turns the face 30° toward the subject's left.

What the head was made from (head id, source image, options, the expressions it supports) is kept
as ID properties on the object, so a saved .blend can re-attach to a restarted backend.
"""
from __future__ import annotations

import json

import bpy
from bpy.props import (BoolProperty, EnumProperty, FloatProperty, FloatVectorProperty,
                       PointerProperty)

from .shared.controls import ARKIT_GROUPS, ARKIT_HINTS, ARKIT_NAMES, MAX_POSE_ANGLE_RAD, POSE_JOINTS

PROP_EXPRESSIONS = "headlift_expressions"  # list[str]: what the head supports, ARKit order
PROP_JOINTS = "headlift_joints"  # list[str]
PROP_OPTIONS = "headlift_options"  # JSON text of the reconstruct options
PROP_BAKE = "headlift_bake"  # dict: how the current bake is stored (see bake_cache.py)


def _on_control_changed(self, context):
    # Imported here: anim_live imports this module for the data paths.
    from . import anim_live

    anim_live.control_changed(self.id_data)


def _control_annotations() -> dict:
    ann = {}
    for name in ARKIT_NAMES:
        ann[name] = FloatProperty(
            name=name, description=f"ARKit blendshape '{name}' (0 = rest, 1 = full)"
                                   + (f"; {ARKIT_HINTS[name]}" if name in ARKIT_HINTS else ""),
            default=0.0, min=-2.0, max=2.0, soft_min=0.0, soft_max=1.0,
            options={'ANIMATABLE'}, update=_on_control_changed)
    for joint in POSE_JOINTS:
        ann[joint] = FloatVectorProperty(
            name=joint.replace("_", " ").title(),
            description=f"'{joint}' rotation: axis-angle vector in the canonical frame (radians, "
                        "shown in degrees), relative to the parent joint",
            size=3, subtype='XYZ', unit='ROTATION', default=(0.0, 0.0, 0.0),
            min=-MAX_POSE_ANGLE_RAD, max=MAX_POSE_ANGLE_RAD,
            options={'ANIMATABLE'}, update=_on_control_changed)
    return ann


HeadliftAnimControls = type("HeadliftAnimControls", (bpy.types.PropertyGroup,),
                            {"__annotations__": _control_annotations(),
                             "__doc__": "Expression and pose controls of a Headlift head"})


class HeadliftAnimSettings(bpy.types.PropertyGroup):
    live_update: BoolProperty(
        name="Live Update", default=True,
        description="Send slider changes to the backend and show the posed head at once")
    bake_method: EnumProperty(
        name="Store Bake As",
        items=[('PC2', "Mesh Cache (.pc2)",
                "A point-cache file next to the .blend read by a Mesh Cache modifier: fast to "
                "write, constant memory, scales to long takes"),
               ('SHAPE_KEYS', "Shape Keys",
                "One shape key per frame, keyed on and off: lives inside the .blend, "
                "slow and heavy for long takes")],
        default='PC2')


classes = (HeadliftAnimControls, HeadliftAnimSettings)


def register_props():
    bpy.types.Object.headlift_anim = PointerProperty(type=HeadliftAnimControls)
    bpy.types.Scene.headlift_anim = PointerProperty(type=HeadliftAnimSettings)


def unregister_props():
    del bpy.types.Scene.headlift_anim
    del bpy.types.Object.headlift_anim


# --- reading the controls ------------------------------------------------------------------------

def is_head(obj) -> bool:
    return obj is not None and obj.type == 'MESH' and bool(obj.get("headlift_head_id"))


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
