"""Live update: a moved slider (or a frame change of an animated, unbaked head) poses the head.

Never blocks: a change sends ``animate`` when nothing is in flight for that head, otherwise it only
marks the head dirty; when the answer arrives (a timer polls every few milliseconds) the vertices
are written with one ``foreach_set`` and, if the controls moved meanwhile, the latest values go out.
So a dragged slider costs one request at a time per head and always ends on the final value.

Background Blender has no timers: ``flush()`` drives the same loop until nothing is pending.
"""
from __future__ import annotations

import contextlib
import time
from collections import deque
from dataclasses import dataclass

import bpy
import numpy as np

from . import head_state, preferences
from .shared import client, messages
from .shared.errors import ErrorCode

POLL_S = 0.01
ANIMATE_TIMEOUT_S = 10.0

# The latest round trips, request sent -> vertices in the mesh: (round_trip_s, apply_s).
timings: deque[tuple[float, float]] = deque(maxlen=200)
errors: deque[tuple[str, str]] = deque(maxlen=20)  # (code, message), newest last


def last_round_trip_ms() -> float:
    """The latest live update, request sent to vertices written, in ms (0: none yet)."""
    return timings[-1][0] * 1000 if timings else 0.0


@dataclass
class _Head:
    obj_name: str
    address: str
    request_id: str | None = None
    sent_at: float = 0.0
    dirty: bool = False
    sent_values: tuple | None = None


_heads: dict[int, _Head] = {}  # by Object.session_uid (stable across renames within a session)
_clients: dict[str, client.HeadliftClient] = {}
def wants_live(obj) -> bool:
    scene = bpy.context.scene
    return (not head_state.is_paused() and head_state.is_head(obj) and scene is not None
            and scene.headlift_anim.live_update and not obj.get(head_state.PROP_BAKE))


def control_changed(obj) -> None:
    """A control of ``obj`` changed: pose the head with the new values soon."""
    if not wants_live(obj) or is_unknown(obj):
        return
    head = _heads.get(obj.session_uid)
    address = preferences.get().backend_address
    if head is None or head.address != address:
        head = _heads[obj.session_uid] = _Head(obj.name, address)
    head.obj_name, head.dirty = obj.name, True
    _pump()
    if not bpy.app.background and not bpy.app.timers.is_registered(_tick):
        bpy.app.timers.register(_tick, first_interval=POLL_S)


def flush(timeout_s: float = 30.0) -> bool:
    """Drive requests until none is pending (background mode, tests); True when all finished."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _pump():
            return True
        time.sleep(POLL_S / 2)
    return False


def stop() -> None:
    """Drop every pending request and close the connections (add-on unregister, file load)."""
    _heads.clear()
    for c in _clients.values():
        c.close()
    _clients.clear()
    if bpy.app.timers.is_registered(_tick):
        bpy.app.timers.unregister(_tick)


def _tick():
    try:
        return POLL_S if _pump() else None
    except Exception as exc:  # a timer that raises is dropped silently: say why live updates stop
        errors.append((ErrorCode.INTERNAL.value, f"live update stopped: {type(exc).__name__}: {exc}"))
        _heads.clear()
        return None


def _pump() -> bool:
    """Handle answers, send what is due; True while anything is pending."""
    for address, c in list(_clients.items()):
        for event in c.poll_events():
            _on_event(event)
    busy = False
    for uid, head in list(_heads.items()):
        obj = bpy.data.objects.get(head.obj_name)
        if obj is None or obj.session_uid != uid:
            del _heads[uid]
            continue
        if head.dirty and head.request_id is None:
            _send(obj, head)
        busy = busy or head.dirty or head.request_id is not None
    return busy


def _client(address: str) -> client.HeadliftClient:
    if address not in _clients:
        from .job_operator import curve_keys  # the same keys as every other request

        _clients[address] = client.HeadliftClient(address, curve=curve_keys(preferences.get()))
    return _clients[address]


def _send(obj, head: _Head) -> None:
    head.dirty = False
    if not wants_live(obj):
        return
    expressions, pose = head_state.current_values(obj)
    values = (tuple(expressions.items()), tuple((k, tuple(v)) for k, v in pose.items()))
    if values == head.sent_values:
        return  # e.g. a frame change that moved nothing
    message = messages.Animate(head_id=obj["headlift_head_id"], expressions=expressions, pose=pose)
    try:
        head.request_id = _client(head.address).submit(message, timeout_s=ANIMATE_TIMEOUT_S)
    except Exception as exc:  # an invalid value or address: report, never raise into a slider
        _report(ErrorCode.BAD_MESSAGE.value, f"live update not sent: {exc}", obj)
        return
    head.sent_at, head.sent_values = time.monotonic(), values


def _on_event(event: messages.Message) -> None:
    head = next((h for h in _heads.values() if h.request_id == event.id), None)
    if head is None:
        return
    head.request_id = None
    obj = bpy.data.objects.get(head.obj_name)
    if obj is None:
        return
    if isinstance(event, messages.Error):
        head.sent_values = None  # try again on the next change
        code = event.code.value if isinstance(event.code, ErrorCode) else str(event.code)
        _report(code, event.message, obj)
    elif isinstance(event, messages.Frame):
        received = time.monotonic()
        if write_vertices(obj, event.verts_m):
            done = time.monotonic()
            timings.append((done - head.sent_at, done - received))
            _redraw_viewports()


def _redraw_viewports() -> None:
    # A timer's data edits do not redraw by themselves; the viewport must show the new pose now.
    wm = bpy.context.window_manager
    for window in getattr(wm, "windows", []):
        for area in window.screen.areas:
            if area.type == 'VIEW_3D':
                area.tag_redraw()


def write_vertices(obj, verts_m: np.ndarray) -> bool:
    """Replace the mesh's vertex positions; False (nothing written) when the counts differ."""
    mesh = obj.data
    verts = np.ascontiguousarray(verts_m, dtype=np.float32).reshape(-1, 3)
    if len(verts) != len(mesh.vertices) or mesh.shape_keys is not None:
        _report(ErrorCode.INTERNAL.value, f"live frame has {len(verts)} vertices, '{obj.name}' has "
                f"{len(mesh.vertices)}{' and shape keys' if mesh.shape_keys else ''}", obj)
        return False
    mesh.vertices.foreach_set("co", verts.ravel())
    mesh.update()
    return True


def _report(code: str, message: str, obj) -> None:
    errors.append((code, message))
    state = bpy.context.window_manager.headlift_anim_job
    if code == ErrorCode.UNKNOWN_HEAD.value:
        mark_unknown(obj)
        message = f"the backend does not know '{obj.name}' (restarted?): press Re-attach"
    state.status, state.status_is_error = f"Live update failed [{code}]: {message}", True


# Head ids the backend said it does not know (runtime only: nothing is written into the scene).
unknown_heads: set[str] = set()


def mark_unknown(obj) -> None:
    unknown_heads.add(str(obj.get("headlift_head_id", "")))


def is_unknown(obj) -> bool:
    return str(obj.get("headlift_head_id", "")) in unknown_heads


def forget(obj, old_head_id: str | None = None) -> None:
    """Drop live state of ``obj`` (after a bake or a re-attach): nothing stale is applied later."""
    _heads.pop(obj.session_uid, None)
    if old_head_id:
        unknown_heads.discard(str(old_head_id))


@contextlib.contextmanager
def coalesced(obj):
    """Many control edits inside, one live update after."""
    with head_state.paused():
        yield
    control_changed(obj)


@bpy.app.handlers.persistent
def on_frame_change(scene, depsgraph=None) -> None:
    """Animated, unbaked heads follow the timeline (coalesced like slider drags)."""
    if head_state.is_paused() or not scene.headlift_anim.live_update:
        return
    for obj in scene.objects:
        if obj.animation_data is not None and head_state.is_head(obj):
            control_changed(obj)


@bpy.app.handlers.persistent
def on_load_pre(*_args) -> None:
    """Another .blend: nothing pending belongs to it."""
    stop()
    unknown_heads.clear()


_HANDLERS = ((bpy.app.handlers.frame_change_post, on_frame_change),
             (bpy.app.handlers.load_pre, on_load_pre))


def register() -> None:
    head_state.set_control_listener(control_changed)
    for handlers, fn in _HANDLERS:
        if fn not in handlers:
            handlers.append(fn)


def unregister() -> None:
    for handlers, fn in _HANDLERS:
        if fn in handlers:
            handlers.remove(fn)
    head_state.set_control_listener(None)
    stop()
