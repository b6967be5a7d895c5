"""Headlift: one portrait in, a textured 3D head out. The add-on is thin; a local backend computes."""
import bpy

from . import (
    anim_drive,
    anim_live,
    anim_ops,
    anim_panel,
    anim_props,
    bake_cache,
    local_backend,
    operators,
    panel,
    preferences,
    properties,
)

_classes = (
    *preferences.classes,
    *properties.classes,
    *anim_props.classes,
    *operators.classes,
    *anim_ops.classes,
    *anim_drive.classes,
    *panel.classes,
    *anim_panel.classes,
)


def register():
    for cls in _classes:
        bpy.utils.register_class(cls)
    properties.register_props()
    anim_props.register_props()
    anim_live.register()
    bake_cache.register()


def unregister():
    # A backend this session started must not outlive the add-on and keep holding its port.
    local_backend.stop()
    bake_cache.unregister()
    anim_live.unregister()
    anim_props.unregister_props()
    properties.unregister_props()
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
