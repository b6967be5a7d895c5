"""A bake stored the Blender way, so playback and rendering need no backend.

The bake arrives as a complete point cache (anim_jobs.BakeJob streams it to disk). Two ways to
keep it, both measured (see the report / README figures):
- ``PC2`` (default): the file stays at ``//headlift_cache/<object>_<id>.pc2`` next to the saved
  .blend (the temp folder while unsaved), read by a Mesh Cache modifier. The canonical frame is
  Blender's, so the modifier's axes stay forward +Y / up +Z (no rotation), and its
  ``frame_start`` is the bake's first frame (sample 0 shows there). Writing it costs one file
  write; playback reads one frame at a time, so long takes cost no memory in the .blend.
- ``SHAPE_KEYS``: one shape key per frame on a copy of the mesh, each keyed 0 -> 1 -> 0 around
  its frame, then swapped in. Everything lives inside the .blend (no side file), at the price of
  T x V x 12 bytes in it and a slower import.

Attaching is atomic: the new storage is complete first (file finished, keys made on a spare
mesh), only then is the previous bake removed (modifier and file, or keys and action) and the new
one hooked up. A failure leaves the object as it was.
"""
from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from pathlib import Path

import bpy
import numpy as np

from .anim_sample import ensure_fcurve
from .head_state import PROP_BAKE
from .shared import animdata

MODIFIER_NAME = "Headlift Bake"
CACHE_DIR = "headlift_cache"
SHAPE_KEY_PREFIX = "headlift_frame_"


def cache_dir() -> Path:
    """Next to the saved .blend (kept with the project), else the temp folder."""
    if bpy.data.filepath:
        return Path(bpy.path.abspath("//")) / CACHE_DIR
    return Path(tempfile.gettempdir()) / CACHE_DIR


def new_cache_path(obj) -> Path:
    """Where the next bake of ``obj`` goes (a fresh name: the previous bake stays intact until
    the new one is complete)."""
    stem = re.sub(r"[^\w.-]+", "_", obj.name)[:40] or "head"
    return cache_dir() / f"{stem}_{uuid.uuid4().hex[:8]}.pc2"


def attach(obj, pc2_path: Path, frame_start: int, frames: int, method: str = "PC2") -> dict:
    """Make the complete point cache ``pc2_path`` (T frames from ``frame_start``) the bake of
    ``obj``, replacing any previous bake. PC2 keeps the file; SHAPE_KEYS copies it into shape
    keys and deletes it. Returns the record kept in ``obj["headlift_bake"]``. On failure the
    object is as it was and the file is deleted."""
    pc2_path = Path(pc2_path)
    try:
        verts, start, _rate = animdata.read_pc2(pc2_path) if method == "SHAPE_KEYS" else (None, 0, 0)
        points = _pc2_points(pc2_path)
        if points != len(obj.data.vertices):
            raise ValueError(f"the bake has {points} vertices, '{obj.name}' has "
                             f"{len(obj.data.vertices)}")
        if method == "PC2":
            clear(obj)
            _add_modifier(obj, pc2_path, frame_start)
            rec = {"method": "PC2", "path": str(pc2_path), "modifier": MODIFIER_NAME}
        elif method == "SHAPE_KEYS":
            mesh, action = _mesh_with_frame_keys(obj, verts, frame_start)
            old_mesh = obj.data
            try:
                clear(obj)
                obj.data = mesh
            except BaseException:
                bpy.data.batch_remove([mesh, action])
                raise
            name = old_mesh.name
            if old_mesh.users == 0:
                bpy.data.meshes.remove(old_mesh)
                mesh.name = name
            pc2_path.unlink(missing_ok=True)
            rec = {"method": "SHAPE_KEYS", "action": action.name}
        else:
            raise ValueError(f"unknown bake method '{method}'")
    except BaseException:
        pc2_path.unlink(missing_ok=True)
        raise
    rec.update(frame_start=int(frame_start), frames=int(frames))
    obj[PROP_BAKE] = rec
    return rec


def _pc2_points(path: Path) -> int:
    with open(path, "rb") as f:
        return animdata.PC2_HEADER.unpack(f.read(animdata.PC2_HEADER.size))[2]


def record(obj) -> dict | None:
    value = obj.get(PROP_BAKE)
    return value.to_dict() if hasattr(value, "to_dict") else (dict(value) if value else None)


def clear(obj) -> None:
    """Remove the bake of ``obj`` (modifier and cache file, or shape keys and their action)."""
    rec = record(obj)
    if rec is None:
        return
    if rec.get("method") == "PC2":
        modifier = obj.modifiers.get(rec.get("modifier", MODIFIER_NAME))
        path = Path(rec.get("path", ""))
        if modifier is not None:
            path = Path(bpy.path.abspath(modifier.filepath))  # follows a moved .blend
            obj.modifiers.remove(modifier)
        if path.parent.name == CACHE_DIR and path.suffix == ".pc2":  # only files we wrote
            path.unlink(missing_ok=True)
    elif rec.get("method") == "SHAPE_KEYS":
        key = obj.data.shape_keys
        action = bpy.data.actions.get(rec.get("action", ""))
        if key is not None and key.animation_data is not None:
            key.animation_data.action = None
        if key is not None:
            obj.shape_key_clear()
        if action is not None and action.users == 0:
            bpy.data.actions.remove(action)
    del obj[PROP_BAKE]


def keep_with_blend(filepath: str) -> list[Path]:
    """Before the .blend is saved to ``filepath``: every .pc2 bake not yet in its
    ``headlift_cache`` folder goes there (moved out of the temp folder, copied from elsewhere so a
    "Save As" leaves the old file working) and its modifier points there by a relative path.
    Returns the new cache paths."""
    if not filepath:
        return []
    target_dir = Path(filepath).resolve().parent / CACHE_DIR
    temp_dir = Path(tempfile.gettempdir()) / CACHE_DIR
    placed = []
    for obj in bpy.data.objects:
        rec = record(obj)
        modifier = obj.modifiers.get(rec.get("modifier", "")) if rec and rec.get("method") == "PC2" else None
        if modifier is None:
            continue
        source = Path(bpy.path.abspath(modifier.filepath)).resolve()
        if source.parent == target_dir or not source.is_file():
            continue
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / source.name
        if source.parent == temp_dir.resolve():
            shutil.move(source, target)
        else:
            shutil.copyfile(source, target)
        # Relative to the current file: Blender's Save As remaps relative paths to the new one.
        modifier.filepath = bpy.path.relpath(str(target)) if bpy.data.filepath else str(target)
        rec["path"] = str(target)
        obj[PROP_BAKE] = rec
        placed.append(target)
    return placed


def relative_paths() -> None:
    """After a first save: absolute cache paths beside the .blend become relative (next save)."""
    if not bpy.data.filepath:
        return
    for obj in bpy.data.objects:
        rec = record(obj)
        modifier = obj.modifiers.get(rec.get("modifier", "")) if rec and rec.get("method") == "PC2" else None
        if modifier is not None and not modifier.filepath.startswith("//"):
            modifier.filepath = bpy.path.relpath(modifier.filepath)


# --- PC2 ------------------------------------------------------------------------------------------

def _add_modifier(obj, path: Path, frame_start: int) -> None:
    modifier = obj.modifiers.new(MODIFIER_NAME, 'MESH_CACHE')
    modifier.cache_format = 'PC2'
    modifier.filepath = bpy.path.relpath(str(path)) if bpy.data.filepath else str(path)
    modifier.play_mode = 'SCENE'
    modifier.time_mode = 'FRAME'
    modifier.frame_start = float(frame_start)
    modifier.frame_scale = 1.0
    modifier.forward_axis, modifier.up_axis = 'POS_Y', 'POS_Z'  # canonical == Blender: no turn
    modifier.deform_mode = 'OVERWRITE'
    modifier.interpolation = 'LINEAR'
    # First in the stack: anything the artist added later deforms the baked frames.
    obj.modifiers.move(len(obj.modifiers) - 1, 0)


# --- shape keys -------------------------------------------------------------------------------------

def _mesh_with_frame_keys(obj, verts: np.ndarray, frame_start: int):
    """A copy of obj's mesh with a basis and one key per frame, keyed on at its frame."""
    mesh = obj.data.copy()
    holder = bpy.data.objects.new("headlift_bake_tmp", mesh)  # shape_key_add needs an object
    action = None
    try:
        if mesh.shape_keys is not None:
            holder.shape_key_clear()
        holder.shape_key_add(name="Basis", from_mix=False)
        for k, frame_verts in enumerate(verts):
            key = holder.shape_key_add(name=f"{SHAPE_KEY_PREFIX}{frame_start + k:05d}", from_mix=False)
            key.data.foreach_set("co", frame_verts.ravel())
            key.value = 0.0  # the F-curves below switch it on at its frame only
        key_id = mesh.shape_keys
        key_id.use_relative = True
        action = bpy.data.actions.new(f"{obj.name} bake")
        key_id.animation_data_create().action = action
        for k in range(len(verts)):
            frame = frame_start + k
            path = f'key_blocks["{SHAPE_KEY_PREFIX}{frame:05d}"].value'
            fcurve = ensure_fcurve(action, key_id, path)
            fcurve.keyframe_points.add(3)
            fcurve.keyframe_points.foreach_set(
                "co", np.array([frame - 1, 0.0, frame, 1.0, frame + 1, 0.0], np.float32))
            for point in fcurve.keyframe_points:
                point.interpolation = 'LINEAR'
            fcurve.update()
    except BaseException:
        bpy.data.objects.remove(holder)
        bpy.data.batch_remove([x for x in (mesh, action) if x is not None])
        raise
    bpy.data.objects.remove(holder)
    return mesh, action


# --- bakes travel with the .blend ------------------------------------------------------------------

save_errors: list[str] = []  # why a save could not copy its bakes, newest last (also printed)


@bpy.app.handlers.persistent
def on_save_pre(filepath="", *_args) -> None:
    """Bakes travel with the .blend: their .pc2 files go into its headlift_cache folder."""
    try:
        keep_with_blend(filepath if isinstance(filepath, str) else "")
    except OSError as exc:  # a full disk must not stop the save itself
        save_errors.append(f"bake cache not copied beside the .blend: {exc}")
        print(f"Headlift: {save_errors[-1]}")


@bpy.app.handlers.persistent
def on_save_post(*_args) -> None:
    relative_paths()


_HANDLERS = ((bpy.app.handlers.save_pre, on_save_pre), (bpy.app.handlers.save_post, on_save_post))


def register() -> None:
    for handlers, fn in _HANDLERS:
        if fn not in handlers:
            handlers.append(fn)


def unregister() -> None:
    for handlers, fn in _HANDLERS:
        if fn in handlers:
            handlers.remove(fn)
