"""The base of every operator that runs a BackendJob (Reconstruct, Bake, Build Export Rig,
Re-attach, Drive from Video).

In the UI a timer polls the job from a modal handler, so Blender never blocks; in background mode
(no event loop: timers never fire) the same job runs to its end in a loop. Progress and the outcome
go to a ``JobState`` on the window manager (properties.py), which the panels draw. The scene is
only edited once the complete answer is in hand, and a failed edit is reported, never raised.
"""
from __future__ import annotations

import bpy

from . import local_backend
from .job import BackendJob
from .shared.liveness import CurveKeys

POLL_INTERVAL_S = 0.1
# A backend this session just started may still be importing torch; give it longer to answer.
LOCAL_START_GRACE_S = 60.0


class JobOperator:
    """Mixin for a ``bpy.types.Operator``: ``_run(context, job)`` starts the job; once it is done,
    ``_apply(context, job)`` edits the scene and returns the status text.

    Subclasses name the window manager's JobState they report into (``STATE``) and may reword a
    backend error (``_error_text``).
    """

    STATE = "headlift_job"  # attribute of the window manager holding this operator's JobState
    APPLY_NAME = ""  # what the scene edit is called when it fails (empty: the operator's label)

    _job: BackendJob | None = None
    _timer = None

    def _state(self, context):
        return getattr(context.window_manager, self.STATE)

    def _run(self, context, job: BackendJob):
        state = self._state(context)
        state.running, state.cancel_requested = True, False
        state.progress, state.stage, state.status, state.status_is_error = 0.0, job.stage, "", False
        if bpy.app.background:
            job.run_blocking(POLL_INTERVAL_S / 2)  # no event loop: timers never fire
            return self._end(context, job)
        self._job = job
        wm = context.window_manager
        self._timer = wm.event_timer_add(POLL_INTERVAL_S, window=context.window)
        wm.modal_handler_add(self)
        return {'RUNNING_MODAL'}

    def modal(self, context, event):
        if event.type != 'TIMER':
            return {'PASS_THROUGH'}
        job, state = self._job, self._state(context)
        if state.cancel_requested:
            job.cancel()
        job.poll()
        state.progress, state.stage = job.fraction, job.stage
        redraw_panels(context)
        if not job.done:
            return {'PASS_THROUGH'}
        self._stop_timer(context)
        return self._end(context, job)

    def cancel(self, context):
        # Blender ends the modal itself (file load, quit): drop the job, leave the scene alone.
        self._stop_timer(context)
        if self._job is not None:
            self._job.abandon()  # tells the backend to stop; a partial bake is discarded
        self._state(context).running = False

    def _end(self, context, job: BackendJob):
        state = self._state(context)
        state.running = False
        redraw_panels(context)
        if job.error is not None:
            return self._fail(context, self._error_text(context, *job.error))
        try:
            text = self._apply(context, job)
        except Exception as exc:  # the scene edit rolled back; report instead of raising
            return self._fail(context, f"{self.APPLY_NAME or self.bl_label} failed, scene left "
                                       f"unchanged: {exc}")
        state.status, state.status_is_error = text, False
        self.report({'INFO'}, f"Headlift: {text}")
        return {'FINISHED'}

    def _error_text(self, context, code: str, message: str) -> str:
        return f"{self.bl_label} failed [{code}]: {message}"

    def _apply(self, context, job: BackendJob) -> str:
        raise NotImplementedError

    def _fail(self, context, message: str):
        state = self._state(context)
        state.running = False
        state.status, state.status_is_error = message.splitlines()[0], True
        self.report({'ERROR'}, message)
        return {'CANCELLED'}

    def _stop_timer(self, context):
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None


class CancelOperator:
    """Mixin for a ``bpy.types.Operator``: ask the job reporting into ``STATE`` to stop."""

    STATE = "headlift_job"

    @classmethod
    def poll(cls, context):
        return getattr(context.window_manager, cls.STATE).running

    def execute(self, context):
        getattr(context.window_manager, self.STATE).cancel_requested = True
        return {'FINISHED'}


def connection(prefs) -> dict:
    """The keyword arguments every BackendJob takes from the preferences."""
    return {"connect_timeout_s": connect_timeout(prefs), "curve": curve_keys(prefs)}


def connect_timeout(prefs) -> float:
    """The preferences' connect timeout, longer while a backend this session started warms up."""
    timeout = prefs.connect_timeout_s
    return max(timeout, LOCAL_START_GRACE_S) if local_backend.is_alive() else timeout


def curve_keys(prefs) -> CurveKeys | None:
    """The CURVE keys from the preferences, None when neither path is set (a loopback backend)."""
    server_key = bpy.path.abspath(prefs.server_key_path) if prefs.server_key_path else ""
    client_key = bpy.path.abspath(prefs.client_key_path) if prefs.client_key_path else ""
    if not server_key and not client_key:
        return None
    if not (server_key and client_key):
        raise ValueError("Set both Server Public Key and Client Key Pair in the Headlift "
                         "preferences (or neither, for a backend on this computer)")
    return CurveKeys.from_files(server_key, client_key)


def redraw_panels(context):
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == 'VIEW_3D':
                area.tag_redraw()
