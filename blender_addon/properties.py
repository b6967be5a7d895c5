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
    """A backend job's progress and outcome, as the panels show it (job_operator.py fills it).

    One on the window manager for Reconstruct (``headlift_job``) and one for the jobs on a head
    (``headlift_anim_job``: bake, rig, re-attach, drive, and live-update errors), so a bake can
    run while another head is reconstructed. On the window manager, a running job is never
    written into a .blend.
    """

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
    bpy.types.WindowManager.headlift_anim_job = PointerProperty(type=HeadliftJobState)


def unregister_props():
    del bpy.types.WindowManager.headlift_anim_job
    del bpy.types.WindowManager.headlift_job
    del bpy.types.Scene.headlift
