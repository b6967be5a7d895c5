"""Operators: Reconstruct (non-blocking), Cancel, Start/Stop local backend, Turntable rig."""
from __future__ import annotations

from pathlib import Path

import bpy

from . import imp_head, local_backend, preferences, turntable
from .job import ReconstructJob
from .shared.liveness import CurveKeys

POLL_INTERVAL_S = 0.1
# A backend this session just started may still be importing torch; give it longer to answer.
LOCAL_START_GRACE_S = 60.0
MAX_NAME_BYTES = 63  # Blender's ID name limit


def connect_timeout(prefs) -> float:
    """The preferences' connect timeout, longer while a backend this session started warms up."""
    timeout = prefs.connect_timeout_s
    return max(timeout, LOCAL_START_GRACE_S) if local_backend.is_alive() else timeout


class HEADLIFT_OT_reconstruct(bpy.types.Operator):
    """Send the portrait to the backend and import the textured head"""

    bl_idname = "headlift.reconstruct"
    bl_label = "Reconstruct"
    bl_options = {'REGISTER', 'UNDO'}

    _job: ReconstructJob | None = None
    _timer = None

    @classmethod
    def poll(cls, context):
        return not context.window_manager.headlift_job.running

    def invoke(self, context, event):
        return self.execute(context)

    def execute(self, context):
        state = context.window_manager.headlift_job
        try:
            job = self._start_job(context)
        except (OSError, ValueError) as exc:
            return self._fail(context, str(exc))
        state.running, state.cancel_requested = True, False
        state.progress, state.stage, state.status, state.status_is_error = 0.0, job.stage, "", False

        if bpy.app.background:
            # No event loop: timers and modal handlers never run, so drive the same job here.
            job.run_blocking(POLL_INTERVAL_S / 2)
            return self._finish(context, job)

        self._job = job
        wm = context.window_manager
        self._timer = wm.event_timer_add(POLL_INTERVAL_S, window=context.window)
        wm.modal_handler_add(self)
        return {'RUNNING_MODAL'}

    def modal(self, context, event):
        if event.type != 'TIMER':
            return {'PASS_THROUGH'}
        job, state = self._job, context.window_manager.headlift_job
        if state.cancel_requested:
            job.cancel()
        job.poll()
        state.progress, state.stage = job.fraction, job.stage
        _redraw_panels(context)
        if not job.done:
            return {'PASS_THROUGH'}
        self._stop_timer(context)
        return self._finish(context, job)

    def cancel(self, context):
        # Blender ends the modal itself (file load, quit): drop the job, leave the scene alone.
        self._stop_timer(context)
        if self._job is not None:
            self._job.cancel()
            self._job.close()
        context.window_manager.headlift_job.running = False

    # --- helpers ------------------------------------------------------------------------------

    def _start_job(self, context) -> ReconstructJob:
        prefs = preferences.get(context)
        image_path = Path(bpy.path.abspath(context.scene.headlift.image_path))
        if not context.scene.headlift.image_path:
            raise ValueError("Choose a portrait image first")
        if not image_path.is_file():
            raise ValueError(f"Portrait not found: {image_path}")
        if image_path.stat().st_size == 0:
            raise ValueError(f"Portrait file is empty: {image_path}")
        return ReconstructJob(
            prefs.backend_address, image_path.read_bytes(), _object_name(image_path),
            source_path=str(image_path), connect_timeout_s=connect_timeout(prefs),
            curve=_curve_keys(prefs))

    def _finish(self, context, job: ReconstructJob):
        state = context.window_manager.headlift_job
        state.running = False
        _redraw_panels(context)
        if job.error is not None:
            code, message = job.error
            if code == "backend_unreachable" and local_backend.pid() is None and local_backend.recent_output():
                message += f"\nLocal backend output:\n{local_backend.recent_output(5)}"
            return self._fail(context, f"Reconstruct failed [{code}]: {message}")
        try:
            obj = imp_head.import_head(context, job.head)
        except Exception as exc:  # the importer rolled back; report instead of raising into Blender
            return self._fail(context, f"Import failed, scene left unchanged: {exc}")
        for warning in job.warnings:
            self.report({'WARNING'}, warning)
        state.status, state.status_is_error = f"Imported '{obj.name}'", False
        self.report({'INFO'}, f"Headlift: imported '{obj.name}' ({len(obj.data.vertices)} vertices)")
        return {'FINISHED'}

    def _fail(self, context, message: str):
        state = context.window_manager.headlift_job
        state.running = False
        state.status, state.status_is_error = message.splitlines()[0], True
        self.report({'ERROR'}, message)
        return {'CANCELLED'}

    def _stop_timer(self, context):
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None


class HEADLIFT_OT_cancel(bpy.types.Operator):
    """Stop the running reconstruction"""

    bl_idname = "headlift.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return context.window_manager.headlift_job.running

    def execute(self, context):
        context.window_manager.headlift_job.cancel_requested = True
        return {'FINISHED'}


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


def _curve_keys(prefs) -> CurveKeys | None:
    """The CURVE keys from the preferences, None when neither path is set (a loopback backend)."""
    server_key = bpy.path.abspath(prefs.server_key_path) if prefs.server_key_path else ""
    client_key = bpy.path.abspath(prefs.client_key_path) if prefs.client_key_path else ""
    if not server_key and not client_key:
        return None
    if not (server_key and client_key):
        raise ValueError("Set both Server Public Key and Client Key Pair in the Headlift "
                         "preferences (or neither, for a backend on this computer)")
    return CurveKeys.from_files(server_key, client_key)


def _object_name(image_path: Path) -> str:
    name = image_path.stem or "head"
    while len(name.encode()) > MAX_NAME_BYTES:
        name = name[:-1]
    return name


def _redraw_panels(context):
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == 'VIEW_3D':
                area.tag_redraw()


classes = (
    HEADLIFT_OT_reconstruct,
    HEADLIFT_OT_cancel,
    HEADLIFT_OT_start_backend,
    HEADLIFT_OT_stop_backend,
    HEADLIFT_OT_turntable,
)
