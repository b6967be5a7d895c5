"""The head object: mesh + material + image, imported atomically.

Either everything is built and linked into the scene, or (on any exception) every datablock made so
far is removed again and the scene is exactly as before. The operator that calls this is one undo step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import bpy
import numpy as np

from . import head_state, imp_material, imp_mesh

PROP_HEAD_ID = "headlift_head_id"
PROP_CAMERA = "headlift_camera"
PROP_SOURCE = "headlift_source"


@dataclass
class HeadData:
    """What the importer needs, in plain arrays (the add-on's view of a ``result`` message)."""

    name: str
    verts_m: np.ndarray  # (V, 3) float32, metres, canonical frame
    faces: np.ndarray  # (F, 3) int32
    loop_uvs: np.ndarray  # (F, 3, 2) float32, origin bottom-left
    texture: np.ndarray  # (T, T, 3) uint8, row 0 is the top
    head_id: str = ""
    camera: dict[str, Any] = field(default_factory=dict)
    source_path: str = ""
    expression_names: list[str] = field(default_factory=list)  # ARKit names the rig supports
    joint_names: list[str] = field(default_factory=list)  # pose joints (empty: all of POSE_JOINTS)
    options: dict[str, Any] = field(default_factory=dict)  # the reconstruct options, for re-attach


def import_head(context: bpy.types.Context, head: HeadData) -> bpy.types.Object:
    """Build and link the head object at the world origin; roll back everything on failure."""
    created: list[bpy.types.ID] = []
    try:
        mesh = imp_mesh.build_mesh(head.name, head.verts_m, head.faces, head.loop_uvs)
        created.append(mesh)
        image = imp_material.build_image(f"{head.name}_texture", head.texture)
        created.append(image)
        material = imp_material.build_material(head.name, image)
        created.append(material)
        mesh.materials.append(material)

        obj = bpy.data.objects.new(head.name, mesh)
        created.append(obj)
        # The canonical frame is Blender's frame: no rotation or scale, origin between the ears.
        obj.location = (0.0, 0.0, 0.0)
        obj[PROP_HEAD_ID] = head.head_id
        obj[PROP_CAMERA] = _idprop(head.camera)
        obj[PROP_SOURCE] = head.source_path
        head_state.store_head_info(obj, head.expression_names, head.joint_names, head.options)
        collection = context.collection or context.scene.collection
        collection.objects.link(obj)
    except BaseException:
        # batch_remove unlinks objects from every collection too, so nothing dangles.
        bpy.data.batch_remove(created)
        raise

    _make_active(context, obj)
    return obj


def _make_active(context: bpy.types.Context, obj: bpy.types.Object) -> None:
    view_layer = context.view_layer
    if view_layer is None:
        return
    for other in context.selected_objects:
        other.select_set(False)
    try:
        obj.select_set(True)
        view_layer.objects.active = obj
    except RuntimeError:
        pass  # linked into a collection this view layer excludes: nothing to select


def _idprop(value: Any) -> Any:
    """JSON-like value with numpy arrays turned into lists: ID properties hold only plain types."""
    if isinstance(value, dict):
        return {str(k): _idprop(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_idprop(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
