"""Scene settings (saved with the .blend) and runtime job state (window manager, never saved)."""
from __future__ import annotations

import bpy
from bpy.props import BoolProperty, FloatProperty, IntProperty, PointerProperty, StringProperty


class HeadliftSceneSettings(bpy.types.PropertyGroup):
    image_path: StringProperty(
        name="Portrait",
        description="Photo of one person, face visible",
        subtype='FILE_PATH',
        default="",
    )
    turntable_views: IntProperty(
        name="Views",
        description="Number of turntable views around the head",
        default=24, min=4, max=360,
    )


class HeadliftJobState(bpy.types.PropertyGroup):
    # Lives on the window manager so that a running job is never written into a .blend.
    running: BoolProperty(default=False)
    cancel_requested: BoolProperty(default=False)
    progress: FloatProperty(default=0.0, min=0.0, max=1.0, subtype='FACTOR')
    stage: StringProperty(default="")
    status: StringProperty(default="")
    status_is_error: BoolProperty(default=False)


classes = (HeadliftSceneSettings, HeadliftJobState)


def register_props():
    bpy.types.Scene.headlift = PointerProperty(type=HeadliftSceneSettings)
    bpy.types.WindowManager.headlift_job = PointerProperty(type=HeadliftJobState)


def unregister_props():
    del bpy.types.WindowManager.headlift_job
    del bpy.types.Scene.headlift
