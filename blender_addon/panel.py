"""The "Headlift" tab in the 3D viewport's sidebar (N panel)."""
from __future__ import annotations

import bpy

from . import head_state, local_backend, preferences


class HEADLIFT_PT_main(bpy.types.Panel):
    bl_idname = "HEADLIFT_PT_main"
    bl_label = "Headlift"
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "Headlift"

    def draw(self, context):
        layout = self.layout
        prefs = preferences.get(context)
        job = context.window_manager.headlift_job
        settings = context.scene.headlift

        box = layout.box()
        box.label(text="Backend")
        box.prop(prefs, "backend_address", text="")
        row = box.row(align=True)
        if local_backend.is_alive():
            row.label(text=f"Local backend running (pid {local_backend.pid()})", icon='CHECKMARK')
            row.operator("headlift.stop_backend", text="", icon='CANCEL')
        else:
            row.operator("headlift.start_backend", icon='PLAY')

        col = layout.column()
        col.prop(settings, "image_path")
        col.enabled = not job.running
        if not job.running:
            row = layout.row()
            row.enabled = bool(settings.image_path)  # greyed until a portrait is chosen
            row.operator("headlift.reconstruct", icon='USER')
        draw_job(layout, job, "headlift.cancel")

        # Turntable works on any mesh: label it, so it does not read as a step of Reconstruct.
        layout.separator()
        layout.label(text="Turntable (active object)")
        row = layout.row(align=True)
        row.prop(settings, "turntable_views")
        row.operator("headlift.turntable", text="Add", icon='CAMERA_DATA')

        # The Animation sub-panel only appears for a head: say so instead of leaving a gap.
        if not head_state.is_head(context.active_object):
            layout.label(text="Select a Headlift head to animate it", icon='INFO')


def draw_job(layout, job, cancel_op: str) -> None:
    """A running job's progress bar and Cancel, then its last status line (error or outcome)."""
    if job.running:
        layout.progress(factor=job.progress, type='BAR',
                        text=f"{job.stage or 'Waiting'} {job.progress * 100:.0f}%")
        layout.operator(cancel_op, icon='X')
    if job.status:
        layout.label(text=job.status, icon='ERROR' if job.status_is_error else 'INFO')


classes = (HEADLIFT_PT_main,)
