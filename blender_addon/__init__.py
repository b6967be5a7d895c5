"""Headlift: one portrait in, a textured 3D head out. The add-on is thin; a local backend computes."""
import bpy

from . import local_backend, operators, panel, preferences, properties

_classes = (
    *preferences.classes,
    *properties.classes,
    *operators.classes,
    *panel.classes,
)


def register():
    for cls in _classes:
        bpy.utils.register_class(cls)
    properties.register_props()


def unregister():
    # A backend this session started must not outlive the add-on and keep holding its port.
    local_backend.stop()
    properties.unregister_props()
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
