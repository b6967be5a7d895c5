"""A native Blender rig from the backend's RigData: an armature with the SMPL joints and a copy of
the head with one shape key per expression and one vertex group per joint, so artists can animate
without the backend and export to glTF / FBX.

Why the bones point along +Y: a bone's rest frame in Blender has its Y axis along the bone. With
every bone pointing +Y (roll 0) all rest frames are the canonical axes, exactly as the backend's
joint frames are (shared/controls.py), so a pose bone's axis-angle rotation *is* the control
value, and Blender's armature deform (shape keys first, then linear blend skinning about each
bone's head) reproduces ``backend.rig.model.pose_vertices``.
"""
from __future__ import annotations

import bpy
import numpy as np

from .shared import messages

BONE_LENGTH_M = 0.04
MIN_WEIGHT = 1e-4  # smaller skin weights are dropped (Blender renormalises what is left)


def build(context, source, rig: messages.RigData, rest_m: np.ndarray):
    """Link ``<name> Rig`` (armature) and ``<name> Rigged`` (mesh, parented, Armature modifier)
    into the scene; returns (armature_object, mesh_object). Nothing is left behind on failure."""
    rest = np.ascontiguousarray(rest_m, dtype=np.float32).reshape(-1, 3)
    weights = np.asarray(rig.skin_weights, dtype=np.float32)
    deltas = np.asarray(rig.expression_deltas, dtype=np.float32)
    if len(rest) != len(source.data.vertices) or weights.shape[0] != len(rest):
        raise ValueError(f"the rig has {weights.shape[0]} vertices, '{source.name}' has "
                         f"{len(source.data.vertices)}")
    created = []
    try:
        mesh = source.data.copy()
        created.append(mesh)
        mesh.name = f"{source.name} Rigged"
        if mesh.shape_keys is not None:  # a shape-key bake on the source: start clean
            holder = bpy.data.objects.new("headlift_tmp", mesh)
            holder.shape_key_clear()
            bpy.data.objects.remove(holder)
        mesh.vertices.foreach_set("co", rest.ravel())
        mesh.update()

        arm_data = bpy.data.armatures.new(f"{source.name} Rig")
        created.append(arm_data)
        arm_obj = bpy.data.objects.new(f"{source.name} Rig", arm_data)
        created.append(arm_obj)
        obj = bpy.data.objects.new(f"{source.name} Rigged", mesh)
        created.append(obj)
        collection = context.collection or context.scene.collection
        collection.objects.link(arm_obj)
        collection.objects.link(obj)

        _add_bones(context, arm_obj, rig)
        _add_shape_keys(obj, rest, rig.expression_names, deltas)
        _add_vertex_groups(obj, rig.joint_names, weights)
        obj.parent = arm_obj
        modifier = obj.modifiers.new("Armature", 'ARMATURE')
        modifier.object = arm_obj
        obj["headlift_rig_of"] = source.name
    except BaseException:
        bpy.data.batch_remove(created)
        raise
    return arm_obj, obj


def _add_bones(context, arm_obj, rig: messages.RigData) -> None:
    joints = np.asarray(rig.joint_rest_m, dtype=np.float64)
    # Edit bones exist only in edit mode, which needs the armature active in a view layer.
    view_layer = context.view_layer
    previous = view_layer.objects.active
    view_layer.objects.active = arm_obj
    bpy.ops.object.mode_set(mode='EDIT')
    try:
        bones = []
        for name, parent, head in zip(rig.joint_names, rig.joint_parents, joints):
            bone = arm_obj.data.edit_bones.new(name)
            bone.head = head
            bone.tail = head + (0.0, BONE_LENGTH_M, 0.0)
            bone.roll = 0.0
            if parent >= 0:
                bone.parent = bones[parent]
                bone.use_connect = False
            bones.append(bone)
    finally:
        bpy.ops.object.mode_set(mode='OBJECT')
        view_layer.objects.active = previous
    for pose_bone in arm_obj.pose.bones:
        pose_bone.rotation_mode = 'AXIS_ANGLE'  # the controls' own form: angle + axis


def _add_shape_keys(obj, rest: np.ndarray, names, deltas: np.ndarray) -> None:
    if not len(names):
        return
    obj.shape_key_add(name="Basis", from_mix=False)
    for name, delta in zip(names, deltas):
        key = obj.shape_key_add(name=str(name), from_mix=False)
        key.data.foreach_set("co", (rest + delta).ravel())
        key.slider_min, key.slider_max = 0.0, 1.0
        key.value = 0.0  # Blender 5 adds new keys at 1: the rig must start at rest


def _add_vertex_groups(obj, joint_names, weights: np.ndarray) -> None:
    for j, name in enumerate(joint_names):
        group = obj.vertex_groups.new(name=str(name))
        column = weights[:, j]
        full = np.flatnonzero(column >= 1.0 - 1e-6)
        if len(full):  # rigid cores: one call for all of them
            group.add(full.tolist(), 1.0, 'REPLACE')
        for v in np.flatnonzero((column >= MIN_WEIGHT) & (column < 1.0 - 1e-6)):
            group.add([int(v)], float(column[v]), 'REPLACE')


def pose_to_controls(arm_obj, pose: dict) -> None:
    """Set pose bones from {joint: (3,) axis-angle radians} (the control form)."""
    for joint, rotvec in pose.items():
        bone = arm_obj.pose.bones.get(joint)
        if bone is None:
            continue
        r = np.asarray(rotvec, dtype=np.float64)
        angle = float(np.linalg.norm(r))
        axis = r / angle if angle > 1e-12 else np.array([0.0, 0.0, 1.0])
        bone.rotation_axis_angle = (angle, *axis)
