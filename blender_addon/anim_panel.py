"""The "Animation" sub-panel of the Headlift tab, shown for the active reconstructed head.

Only the expressions this head's rig supports are listed (a head may have none yet), grouped as
an animator scans a face (shared.controls.ARKIT_GROUPS). Every slider is an animatable property:
hover and press I, or right-click > Insert Keyframe.
"""
from __future__ import annotations

import bpy

from . import anim_live, bake_cache, head_state, panel


def _head(context):
    obj = context.active_object
    return obj if head_state.is_head(obj) else None


class HEADLIFT_PT_animation(bpy.types.Panel):
    bl_idname = "HEADLIFT_PT_animation"
    bl_label = "Animation"
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "Headlift"
    bl_parent_id = "HEADLIFT_PT_main"

    @classmethod
    def poll(cls, context):
        return _head(context) is not None

    def draw(self, context):
        layout = self.layout
        obj = _head(context)
        settings = context.scene.headlift_anim
        job = context.window_manager.headlift_anim_job
        controls = obj.headlift_anim
        baked = bake_cache.record(obj)

        if anim_live.is_unknown(obj):
            box = layout.box()
            box.label(text="The backend does not know this head (restarted?)", icon='ERROR')
            box.operator("headlift.reattach", icon='FILE_REFRESH')

        row = layout.row(align=True)
        row.prop(settings, "live_update", toggle=True, icon='PLAY' if settings.live_update else 'PAUSE')
        row.operator("headlift.reset_controls", text="", icon='LOOP_BACK')
        row.operator("headlift.reattach", text="", icon='FILE_REFRESH')  # the link live update needs
        live_ms = anim_live.last_round_trip_ms()
        if live_ms and settings.live_update and not baked:
            row.label(text=f"{live_ms:.0f} ms")
        if baked:
            layout.label(text=f"Baked: sliders do not move the head (frames {baked['frame_start']}-"
                              f"{baked['frame_start'] + baked['frames'] - 1})", icon='INFO')
        # Bake, rig, re-attach and video jobs share this state: show it above every section, not
        # inside Bake, where a running video job would read as a bake.
        panel.draw_job(layout, job, "headlift.anim_cancel")

        names = head_state.supported_expressions(obj)
        header, body = layout.panel("headlift_expressions", default_closed=False)
        header.label(text=f"Expressions ({len(names)})")
        if body is not None:
            if not names:
                body.label(text="This head's rig has no expression shapes", icon='INFO')
            for label, members in head_state.visible_groups(names):
                sub_header, sub_body = body.panel(f"headlift_expr_{label}", default_closed=True)
                sub_header.label(text=f"{label} ({len(members)})")
                if sub_body is not None:
                    col = sub_body.column(align=True)
                    for name in members:
                        col.prop(controls, name, slider=True)

        joints = head_state.supported_joints(obj)
        header, body = layout.panel("headlift_pose", default_closed=False)
        header.label(text="Pose")
        if body is not None:
            for joint in joints:
                body.prop(controls, joint)

        # Takes key the sliders above, so they come before Bake (which reads those keys).
        header, body = layout.panel("headlift_keys", default_closed=False)
        header.label(text="Keys From")
        if body is not None:
            col = body.column(align=True)
            col.operator("headlift.import_take", text="Take File (.csv / .npz)…", icon='IMPORT')
            col.operator("headlift.drive_from_video", text="Video of a Face…", icon='FILE_MOVIE')

        header, body = layout.panel("headlift_bake", default_closed=False)
        header.label(text="Bake")
        if body is not None:
            body.prop(settings, "bake_method")
            row = body.row(align=True)
            row.operator("headlift.bake_animation", icon='RENDER_ANIMATION')
            row.operator("headlift.clear_bake", text="", icon='TRASH')

        header, body = layout.panel("headlift_export", default_closed=True)
        header.label(text="Export")
        if body is not None:
            body.operator("headlift.export_rig", icon='ARMATURE_DATA')


classes = (HEADLIFT_PT_animation,)
