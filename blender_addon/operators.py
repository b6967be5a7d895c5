"""Operators: Reconstruct (non-blocking), Cancel, Start/Stop local backend, Turntable rig."""
from __future__ import annotations

from pathlib import Path

import bpy

from . import imp_head, local_backend, preferences, turntable
from .job import ReconstructJob
from .job_operator import CancelOperator, JobOperator, connection

MAX_NAME_BYTES = 63  # Blender's ID name limit


class HEADLIFT_OT_reconstruct(JobOperator, bpy.types.Operator):
    """Send the portrait to the backend and import the textured head"""

    bl_idname = "headlift.reconstruct"
    bl_label = "Reconstruct"
    bl_options = {'REGISTER', 'UNDO'}

    APPLY_NAME = "Import"

    @classmethod
    def poll(cls, context):
        return not context.window_manager.headlift_job.running

    def invoke(self, context, event):
        return self.execute(context)

    def execute(self, context):
        try:
            job = self._start_job(context)
        except (OSError, ValueError) as exc:
            return self._fail(context, str(exc))
        return self._run(context, job)

    def _start_job(self, context) -> ReconstructJob:
        prefs = preferences.get(context)
        image_path = Path(bpy.path.abspath(context.scene.headlift.image_path))
        if not context.scene.headlift.image_path:
            raise ValueError("Choose a portrait image first")
        if not image_path.is_file():
            raise ValueError(f"Portrait not found: {image_path}")
        if image_path.stat().st_size == 0:
            raise ValueError(f"Portrait file is empty: {image_path}")
        return ReconstructJob(prefs.backend_address, image_path.read_bytes(),
                              _object_name(image_path), source_path=str(image_path),
                              **connection(prefs))

    def _error_text(self, context, code: str, message: str) -> str:
        if code == "backend_unreachable" and local_backend.pid() is None and local_backend.recent_output():
            message += f"\nLocal backend output:\n{local_backend.recent_output(5)}"
        return super()._error_text(context, code, message)

    def _apply(self, context, job: ReconstructJob) -> str:
        obj = imp_head.import_head(context, job.head)
        for warning in job.warnings:
            self.report({'WARNING'}, warning)
        return f"imported '{obj.name}' ({len(obj.data.vertices)} vertices)"


class HEADLIFT_OT_cancel(CancelOperator, bpy.types.Operator):
    """Stop the running reconstruction"""

    bl_idname = "headlift.cancel"
    bl_label = "Cancel"


class HEADLIFT_OT_start_backend(bpy.types.Operator):
    """Start the Headlift backend on this computer, listening on the configured address"""

    bl_idname = "headlift.start_backend"
    bl_label = "Start Local Backend"

    def execute(self, context):
        prefs = preferences.get(context)
        try:
            pid = local_backend.start(prefs.backend_address, prefs.python_path, prefs.backend_dir)
        except local_backend.StartError as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        self.report({'INFO'}, f"Headlift backend starting (pid {pid}) on {prefs.backend_address}")
        return {'FINISHED'}


class HEADLIFT_OT_stop_backend(bpy.types.Operator):
    """Stop the backend that this Blender session started"""

    bl_idname = "headlift.stop_backend"
    bl_label = "Stop Local Backend"

    @classmethod
    def poll(cls, context):
        return local_backend.is_alive()

    def execute(self, context):
        local_backend.stop()
        self.report({'INFO'}, "Headlift backend stopped")
        return {'FINISHED'}


class HEADLIFT_OT_turntable(bpy.types.Operator):
    """Add a camera and lights that orbit the active object, one view per frame"""

    bl_idname = "headlift.turntable"
    bl_label = "Turntable"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        return context.active_object is not None and context.active_object.type == 'MESH'

    def execute(self, context):
        rig = turntable.build(context, context.active_object, context.scene.headlift.turntable_views)
        self.report({'INFO'}, f"Turntable: {len(rig.yaws_deg)} views on frames "
                              f"{context.scene.frame_start}-{context.scene.frame_end}")
        return {'FINISHED'}


def _object_name(image_path: Path) -> str:
    name = image_path.stem or "head"
    while len(name.encode()) > MAX_NAME_BYTES:
        name = name[:-1]
    return name


classes = (
    HEADLIFT_OT_reconstruct,
    HEADLIFT_OT_cancel,
    HEADLIFT_OT_start_backend,
    HEADLIFT_OT_stop_backend,
    HEADLIFT_OT_turntable,
)
