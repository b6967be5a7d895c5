"""The animation controls on a head object: one slider per ARKit expression, one rotation per joint.

They live in ``object.headlift_anim`` (a PropertyGroup), so I-key / right-click keyframing, drivers,
the Graph Editor and the NLA treat them like any other property. Data paths look like
``headlift_anim.jawOpen`` and ``headlift_anim.head`` (index 0..2).

Pose values: a joint's three numbers are its axis-angle rotation vector (direction = axis, length =
angle) in the canonical frame, which is Blender's (+X the subject's left, +Y back, +Z up), relative
to the parent joint (shared/controls.py). Stored in radians; ``unit='ROTATION'`` makes the UI show
degrees. So ``head = (0, 0, 30°)`` turns the face 30° toward the subject's left.

What the head was made from (head id, options, the expressions it supports) is kept as ID
properties on the object: head_state.py reads and writes them.
"""
from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, FloatVectorProperty, PointerProperty

from . import head_state
from .shared.controls import ARKIT_HINTS, ARKIT_NAMES, MAX_POSE_ANGLE_RAD, POSE_JOINTS


def _on_control_changed(self, context):
    head_state.control_changed(self.id_data)


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
