"""Runs one add-on scenario in a fresh headless Blender (bpy keeps global state, so one process per
scenario) and prints its findings as one JSON line after RESULT_MARKER.

    python tests/blender_driver.py SCENARIO '{"zip": "...", ...}'

Scenarios: install, reconstruct, rollback, local_backend, backend_killed (tests/test_addon.py,
tests/test_addon_faults.py) and anim_* (tests/test_addon_animation.py) read the JSON.
"""
from __future__ import annotations

import importlib
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import blender_session as bs  # noqa: E402

RESULT_MARKER = "HEADLIFT_DRIVER_RESULT "


def scenario_install(args: dict) -> dict:
    import bpy

    module = bs.install_addon(Path(args["zip"]))
    panel = getattr(bpy.types, "HEADLIFT_PT_main", None)
    return {
        "module": module.__name__,
        "operators": sorted(name for name in dir(bpy.ops.headlift) if not name.startswith("_")),
        "panel_category": getattr(panel, "bl_category", None),
        "panel_space": getattr(panel, "bl_space_type", None),
        "default_address": bs.addon_prefs().backend_address,
        "scene_settings": hasattr(bpy.context.scene, "headlift"),
        "animation_panel_parent": getattr(getattr(bpy.types, "HEADLIFT_PT_animation", None),
                                          "bl_parent_id", None),
        "object_controls": hasattr(bpy.types.Object, "headlift_anim"),
        "shared_client": importlib.import_module(f"{module.__name__}.shared.client").__name__,
    }


def scenario_reconstruct(args: dict) -> dict:
    """Reconstruct args["image"] from args["address"], undo once (and redo), optionally render one view."""
    import bpy

    bs.install_addon(Path(args["zip"]))
    bs.configure(address=args["address"], image=Path(args["image"]))
    bpy.ops.ed.undo_push(message="before reconstruct")  # background Blender starts with no undo step
    before = bs.scene_counts()
    t0 = time.monotonic()
    try:
        outcome = {"result": sorted(bs.reconstruct()), "error": None}
    except RuntimeError as exc:
        outcome = {"result": None, "error": str(exc).strip()}
    outcome["seconds"] = time.monotonic() - t0
    outcome["counts_before"], outcome["counts_after"] = before, bs.scene_counts()
    if outcome["error"] is not None:
        return outcome

    obj = bpy.context.view_layer.objects.active
    image = obj.active_material.node_tree.nodes["Headlift Texture"].image
    outcome["object"] = {
        "name": obj.name,
        "type": obj.type,
        "location": list(obj.location),
        "rotation": list(obj.rotation_euler),
        "scale": list(obj.scale),
        "vertices": len(obj.data.vertices),
        "faces": len(obj.data.polygons),
        "smooth": all(p.use_smooth for p in obj.data.polygons[:100]),
        "uv_layers": [uv.name for uv in obj.data.uv_layers],
        "material_uses_image": image is not None,
        "image_packed": image is not None and image.packed_file is not None,
        "image_size": list(image.size) if image is not None else None,
        "head_id": obj.get("headlift_head_id"),
        "camera_keys": sorted(obj["headlift_camera"].keys()) if "headlift_camera" in obj else [],
        "bbox_z": [min(c[2] for c in obj.bound_box), max(c[2] for c in obj.bound_box)],
    }
    name = obj.name
    bpy.ops.ed.undo()
    outcome["after_undo"] = {"counts": bs.scene_counts(), "object_exists": name in bpy.data.objects}
    bpy.ops.ed.redo()
    if args.get("render_yaw") is not None:
        obj = bpy.data.objects[name]
        bs.use_workbench(bpy.context.scene, args.get("resolution", 512))
        n_views = args.get("views", 24)
        index = bs.view_index(args["render_yaw"], n_views)
        ((yaw, path),) = bs.render_turntable(obj, Path(args["render_dir"]), n_views, views=[index])
        outcome["render"] = {"yaw": yaw, "path": str(path)}
    return outcome


def scenario_rollback(args: dict) -> dict:
    """The importer fails halfway (bad texture after mesh and image creation steps)."""
    import bpy
    import numpy as np

    module = bs.install_addon(Path(args["zip"]))
    imp_head = importlib.import_module(f"{module.__name__}.imp_head")
    before = bs.scene_counts()
    verts = np.array([[0, 0, 0], [0.1, 0, 0], [0, 0, 0.1], [0, -0.1, 0]], np.float32)
    faces = np.array([[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]], np.int32)
    head = imp_head.HeadData(name="broken", verts_m=verts, faces=faces,
                             loop_uvs=np.zeros((4, 3, 2), np.float32),
                             texture=np.zeros((8, 8, 3), np.float32))  # wrong dtype: fails after the mesh
    try:
        imp_head.import_head(bpy.context, head)
        error = None
    except ValueError as exc:
        error = str(exc)
    return {"error": error, "counts_before": before, "counts_after": bs.scene_counts(),
            "leftover_names": [m.name for m in bpy.data.meshes if m.name.startswith("broken")]}


def scenario_local_backend(args: dict) -> dict:
    """Start Local Backend, send it a request, Stop Local Backend."""
    import bpy

    module = bs.install_addon(Path(args["zip"]))
    local_backend = importlib.import_module(f"{module.__name__}.local_backend")
    prefs = bs.addon_prefs()
    prefs.backend_address, prefs.python_path, prefs.backend_dir = (
        args["address"], sys.executable, str(ROOT))
    bpy.ops.headlift.start_backend()
    alive_after_start = local_backend.is_alive()
    bs.configure(image=Path(args["image"]))
    try:
        bs.reconstruct()
        error = None
    except RuntimeError as exc:
        error = str(exc).strip()
    bpy.ops.headlift.stop_backend()
    return {"alive_after_start": alive_after_start, "reconstruct_error": error,
            "alive_after_stop": local_backend.is_alive(), "output": local_backend.recent_output(20)}


def scenario_backend_killed(args: dict) -> dict:
    """kill -9 the backend while Reconstruct runs, then restart it on the same port and
    reconstruct again."""
    import signal
    import threading

    import bpy
    from backend_process import BackendProcess

    bs.install_addon(Path(args["zip"]))
    backend = BackendProcess()
    bs.configure(address=backend.endpoint, image=Path(args["image"]))
    bpy.ops.ed.undo_push(message="before reconstruct")
    before = bs.scene_counts()
    killed: dict = {}

    def kill_mid_job() -> None:
        # The job starts once the worker has loaded the pipeline; a few seconds later it is deep
        # inside it (a reconstruct takes tens of seconds on a CPU).
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not any("pipeline_loaded" in l for l in backend.log):
            time.sleep(0.1)
        time.sleep(args.get("kill_after_s", 3.0))
        killed["stage_log_lines"] = len(backend.log)
        backend.process.send_signal(signal.SIGKILL)
        killed["at"] = time.monotonic()

    killer = threading.Thread(target=kill_mid_job, daemon=True)
    killer.start()
    try:
        bs.reconstruct()
        error = None
    except RuntimeError as exc:
        error = str(exc).strip()
    reported_at = time.monotonic()
    killer.join()
    outcome = {"error": error, "counts_before": before, "counts_after_kill": bs.scene_counts(),
               "seconds_from_kill_to_report": reported_at - killed.get("at", reported_at),
               "killed_status": backend.process.wait(timeout=30)}

    port = backend.endpoint.rsplit(":", 1)[1]
    with BackendProcess(bind=f"tcp://127.0.0.1:{port}") as restarted:
        outcome["restarted_at_same_address"] = restarted.endpoint == backend.endpoint
        try:
            outcome["after_restart"] = {"result": sorted(bs.reconstruct()), "error": None}
        except RuntimeError as exc:
            outcome["after_restart"] = {"result": None, "error": str(exc).strip()}
        outcome["counts_after_restart"] = bs.scene_counts()
        if args.get("bake_frames") and outcome["after_restart"]["error"] is None:
            outcome["bake"] = _kill_during_bake(restarted, args)
    return outcome


def _kill_during_bake(backend, args: dict) -> dict:
    """Issue 5 for bakes: kill -9 the backend while a bake streams into its cache file; then
    restart it (the head is gone with it: unknown_head), Re-attach, and bake again."""
    import signal
    import threading

    import bpy
    import numpy as np
    from backend_process import BackendProcess

    bake_cache = _addon("bake_cache")
    obj = bpy.context.view_layer.objects.active
    work = Path(args["work_dir"])
    work.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(work / "scene.blend"))  # the cache goes beside it
    frames = int(args["bake_frames"])
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, frames
    _key_motion(obj, frames, None)
    bpy.ops.ed.undo_push(message="keys")
    cache = bake_cache.cache_dir()
    one_frame = 32 + len(obj.data.vertices) * 12
    before = anim_counts()
    killed: dict = {}

    def kill_when_frames_arrive() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            parts = list(cache.glob("*.part")) if cache.is_dir() else []
            if any(p.stat().st_size >= one_frame for p in parts if p.exists()):
                killed["part_bytes"] = max(p.stat().st_size for p in parts if p.exists())
                backend.process.send_signal(signal.SIGKILL)
                killed["at"] = time.monotonic()
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_when_frames_arrive, daemon=True)
    killer.start()
    out = {"frames": frames, "error": _bake("PC2")}
    reported_at = time.monotonic()
    killer.join()
    out.update(killed_status=backend.process.wait(timeout=30), counts_before=before,
               counts_after_kill=anim_counts(), baked_after_kill=bake_cache.record(obj) is not None,
               part_bytes_at_kill=killed.get("part_bytes", 0),
               seconds_from_kill_to_report=reported_at - killed.get("at", reported_at))

    port = backend.endpoint.rsplit(":", 1)[1]
    with BackendProcess(bind=f"tcp://127.0.0.1:{port}") as again:
        out["unknown_error"] = _bake("PC2")
        out["counts_after_unknown"] = anim_counts()
        out["reattach_error"] = _run_op(bpy.ops.headlift.reattach)
        out["counts_after_reattach"] = anim_counts()
        out["after_restart_error"] = _bake("PC2")
        out["counts_after_bake"] = anim_counts()
        rec = bake_cache.record(obj)
        out["record"] = rec
        if rec is not None:
            frame = frames // 2
            scene.frame_set(frame)
            with importlib.import_module(f"{bs.ADDON_MODULE}.shared.client").HeadliftClient(
                    again.endpoint) as client:
                want = client.animate(obj["headlift_head_id"], *_controls_at(obj, frame), timeout_s=60)
            out["max_error_m"] = float(np.abs(_evaluated_verts(obj) - want).max())
    return out


# --- animation (issue 4) -----------------------------------------------------------------------

def _addon(name: str):
    return importlib.import_module(f"{bs.ADDON_MODULE}.{name}")


def _open_head(args: dict):
    """Install the add-on, open a copy of the prepared head's .blend in args["work_dir"] (so its
    bake cache folder is the test's own) and point the add-on at args["address"]."""
    import shutil

    import bpy

    bs.install_addon(Path(args["zip"]))
    work = Path(args["work_dir"])
    work.mkdir(parents=True, exist_ok=True)
    blend = work / "head.blend"
    shutil.copyfile(args["blend"], blend)
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    bs.configure(address=args["address"])
    obj = bpy.data.objects[args["object"]]
    for other in bpy.context.selected_objects:
        other.select_set(False)
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj
    return obj


def anim_counts() -> dict[str, int]:
    """scene_counts plus what a bake adds (modifiers, shape keys) and the bake cache's files."""
    import bpy

    counts = bs.scene_counts()
    counts["modifiers"] = sum(len(o.modifiers) for o in bpy.data.objects)
    counts["shape_keys"] = len(bpy.data.shape_keys)
    counts["fcurves"] = sum(len(_fcurves(o)) for o in bpy.data.objects)
    cache = _addon("bake_cache").cache_dir()
    counts["cache_files"] = len(list(cache.glob("*"))) if cache.is_dir() else 0
    return counts


def _fcurves(obj) -> list:
    ad = obj.animation_data
    if ad is None or ad.action is None:
        return []
    from bpy_extras.anim_utils import action_get_channelbag_for_slot

    bag = action_get_channelbag_for_slot(ad.action, ad.action_slot)
    return list(bag.fcurves) if bag is not None else []


def _evaluated_verts(obj):
    import bpy
    import numpy as np

    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        co = np.empty(len(mesh.vertices) * 3, np.float32)
        mesh.vertices.foreach_get("co", co)
    finally:
        evaluated.to_mesh_clear()
    return co.reshape(-1, 3)


def _mesh_verts(obj):
    import numpy as np

    co = np.empty(len(obj.data.vertices) * 3, np.float32)
    obj.data.vertices.foreach_get("co", co)
    return co.reshape(-1, 3)


def _backend_client(args: dict):
    return importlib.import_module(f"{bs.ADDON_MODULE}.shared.client").HeadliftClient(args["address"])


def _run_op(op, *a, **kw) -> str | None:
    """Run an operator as a click would; None on success, else its error report."""
    try:
        op('EXEC_DEFAULT', *a, **kw)
        return None
    except RuntimeError as exc:
        return str(exc).strip()


def _key_motion(obj, frames: int, expression: str | None) -> None:
    """A head turn with a nod and a shrug (and ``expression`` rising and falling) over frames."""
    controls = obj.headlift_anim
    last = frames
    for frame, yaw, pitch, shrug, weight in ((1, 0.0, 0.0, 0.0, 0.0),
                                             (max(2, last // 2), 0.6, 0.25, 0.2, 1.0),
                                             (last, -0.4, -0.1, 0.0, 0.3)):
        controls.head = (pitch, 0.0, yaw)
        controls.neck = (0.5 * pitch, 0.0, 0.3 * yaw)
        controls.left_shoulder = (0.0, -shrug, 0.0)
        obj.keyframe_insert("headlift_anim.head", frame=frame)
        obj.keyframe_insert("headlift_anim.neck", frame=frame)
        obj.keyframe_insert("headlift_anim.left_shoulder", frame=frame)
        if expression:
            setattr(controls, expression, weight)
            obj.keyframe_insert(f"headlift_anim.{expression}", frame=frame)


def _controls_at(obj, frame: int) -> tuple[dict, dict]:
    """The control values the animation gives at ``frame`` (as sent to the backend)."""
    head_state = _addon("head_state")
    names, joints = head_state.supported_expressions(obj), head_state.supported_joints(obj)
    curves = {(fc.data_path, fc.array_index): fc for fc in _fcurves(obj)}

    def value(name, index=0, default=0.0):
        fc = curves.get((f"headlift_anim.{name}", index))
        return float(fc.evaluate(frame)) if fc is not None else default

    expressions = {n: value(n, 0, float(getattr(obj.headlift_anim, n))) for n in names}
    pose = {j: [value(j, i, float(getattr(obj.headlift_anim, j)[i])) for i in range(3)]
            for j in joints}
    return expressions, pose


def scenario_anim_prepare(args: dict) -> dict:
    """Reconstruct once through the add-on and save the head's .blend for the other scenarios."""
    import bpy

    bs.install_addon(Path(args["zip"]))
    bs.configure(address=args["address"], image=Path(args["image"]))
    bs.reconstruct()
    obj = bpy.context.view_layer.objects.active
    head_state = _addon("head_state")
    blend = Path(args["blend"])
    blend.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    return {"object": obj.name, "head_id": obj["headlift_head_id"],
            "vertices": len(obj.data.vertices),
            "expressions": head_state.supported_expressions(obj),
            "joints": head_state.supported_joints(obj),
            "options": head_state.options(obj), "source": obj.get("headlift_source")}


def scenario_anim_live(args: dict) -> dict:
    """Move sliders: the mesh follows through animate round trips; compare with client.animate."""
    import bpy
    import numpy as np

    obj = _open_head(args)
    anim_live, head_state = _addon("anim_live"), _addon("head_state")
    rest = _mesh_verts(obj)
    names = head_state.supported_expressions(obj)
    out = {"groups": [[label, members] for label, members in head_state.visible_groups(names)],
           "animatable": [], "cases": [],
           "tooltips": {n: type(obj.headlift_anim).bl_rna.properties[n].description for n in names}}
    for path in ("headlift_anim.head", "headlift_anim.neck", *[f"headlift_anim.{n}" for n in names[:3]]):
        out["animatable"].append([path, obj.keyframe_insert(path, frame=1)])
    bpy.ops.ed.undo_push(message="keys")
    obj.animation_data_clear()

    cases = [({}, {"head": [0.0, 0.0, 0.5]}),
             ({}, {"neck": [0.2, 0.0, 0.0], "head": [0.0, 0.15, -0.3], "right_shoulder": [0.0, 0.2, 0.0]})]
    if "jawOpen" in names:
        cases.append(({"jawOpen": 0.8}, {"head": [0.0, 0.0, 0.2]}))
    with _backend_client(args) as client:
        for expressions, pose in cases:
            with anim_live.coalesced(obj):
                bpy.ops.headlift.reset_controls()
                for name, weight in expressions.items():
                    setattr(obj.headlift_anim, name, weight)
                for joint, rotvec in pose.items():
                    setattr(obj.headlift_anim, joint, rotvec)
            finished = anim_live.flush(60.0)
            got = _mesh_verts(obj)
            want = client.animate(obj["headlift_head_id"], expressions, pose, timeout_s=60)
            out["cases"].append({"expressions": expressions, "pose": pose, "flushed": finished,
                                 "max_error_m": float(np.abs(got - want).max()),
                                 "moved_m": float(np.linalg.norm(got - rest, axis=1).max())})
    # A dragged slider: many changes in a row, each one waited for (what an artist feels).
    anim_live.timings.clear()
    for k in range(int(args.get("drags", 10))):
        obj.headlift_anim.head = (0.0, 0.0, 0.02 * (k + 1))
        anim_live.flush(60.0)
    out["latency_s"] = [t for t, _ in anim_live.timings]
    out["apply_s"] = [a for _, a in anim_live.timings]
    out["errors"] = [list(e) for e in anim_live.errors]
    return out


def _bake(method: str, **kw) -> str | None:
    import bpy

    bpy.context.scene.headlift_anim.bake_method = method
    return _run_op(bpy.ops.headlift.bake_animation, **kw)


def _compare_frames(obj, client, frames) -> dict:
    import bpy
    import numpy as np

    errors = {}
    for frame in frames:
        bpy.context.scene.frame_set(frame)
        expressions, pose = _controls_at(obj, frame)
        want = client.animate(obj["headlift_head_id"], expressions, pose, timeout_s=60)
        errors[str(frame)] = float(np.abs(_evaluated_verts(obj) - want).max())
    return errors


def scenario_anim_bake(args: dict) -> dict:
    """Key 120 frames, bake to a .pc2, re-bake as shape keys, re-bake as .pc2; compare frames
    with client.animate; then reload the saved file without a backend and play it."""
    import time

    import bpy
    import numpy as np

    obj = _open_head(args)
    head_state, bake_cache = _addon("head_state"), _addon("bake_cache")
    scene = bpy.context.scene
    frames = int(args.get("frames", 120))
    scene.frame_start, scene.frame_end = 1, frames
    names = head_state.supported_expressions(obj)
    expression = "jawOpen" if "jawOpen" in names else (names[0] if names else None)
    _key_motion(obj, frames, expression)
    bpy.ops.ed.undo_push(message="keys")
    out = {"expression": expression, "counts_keyed": anim_counts()}
    check = [1, 2, frames // 3, frames // 2, frames]
    with _backend_client(args) as client:
        t0 = time.monotonic()
        out["pc2_error"] = _bake("PC2")
        out["pc2_seconds"] = time.monotonic() - t0
        rec = bake_cache.record(obj)
        out["pc2_record"] = rec
        out["pc2_file_exists"] = Path(bpy.path.abspath(obj.modifiers["Headlift Bake"].filepath)).is_file()
        out["pc2_max_error_m"] = _compare_frames(obj, client, check)
        out["counts_pc2"] = anim_counts()
        first_file = Path(rec["path"])

        # Change the take, bake it the other way: the old bake goes completely.
        fc = next(f for f in _fcurves(obj) if f.data_path == "headlift_anim.head" and f.array_index == 2)
        fc.keyframe_points[1].co.y = -0.5
        fc.update()
        out["keys_error"] = _bake("SHAPE_KEYS")
        out["keys_record"] = bake_cache.record(obj)
        out["first_file_exists_after_rebake"] = first_file.exists()
        out["modifiers_after_keys"] = [m.type for m in obj.modifiers]
        out["shape_keys"] = len(obj.data.shape_keys.key_blocks) if obj.data.shape_keys else 0
        out["keys_max_error_m"] = _compare_frames(obj, client, check)
        out["counts_keys"] = anim_counts()

        out["pc2_again_error"] = _bake("PC2")
        out["counts_pc2_again"] = anim_counts()
        out["shape_keys_after_pc2"] = obj.data.shape_keys is not None
        out["pc2_again_max_error_m"] = _compare_frames(obj, client, check)
        scene.frame_set(frames // 2)
        expected_mid = client.animate(obj["headlift_head_id"], *_controls_at(obj, frames // 2),
                                      timeout_s=60).copy()
    # "Save As" into another folder: the cache goes along (copied: the first file keeps its own).
    moved = Path(args["work_dir"]) / "moved" / "take.blend"
    moved.parent.mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(moved))
    out["old_cache_still_there"] = Path(bake_cache.record(obj)["path"]).parent != moved.parent and \
        any((Path(args["work_dir"]) / "headlift_cache").glob("*.pc2"))
    out["moved_cache_files"] = sorted(p.name for p in (moved.parent / "headlift_cache").glob("*"))

    # Offline: reopen with no backend anywhere and play the bake back.
    bs.configure(address="tcp://127.0.0.1:9")
    bpy.ops.wm.open_mainfile(filepath=str(moved))
    obj = bpy.data.objects[args["object"]]
    bpy.context.scene.frame_set(frames // 2)
    out["offline_max_error_m"] = float(np.abs(_evaluated_verts(obj) - expected_mid).max())
    out["offline_modifier_path"] = obj.modifiers["Headlift Bake"].filepath
    return out


def scenario_anim_bad_bake(args: dict) -> dict:
    """Bakes that must be refused with a clear error and leave the scene as it was."""
    import math
    import uuid

    import bpy

    obj = _open_head(args)
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 24
    _key_motion(obj, 24, None)
    out = {}

    def attempt(label: str, **kw) -> None:
        before = anim_counts()
        error = _bake("PC2", **kw)
        out[label] = {"error": error, "unchanged": anim_counts() == before,
                      "baked": _addon("bake_cache").record(obj) is not None}

    attempt("empty_range", use_scene_range=False, frame_start=10, frame_end=9)
    attempt("huge_range", use_scene_range=False, frame_start=1, frame_end=100_000)
    fc = next(f for f in _fcurves(obj) if f.data_path == "headlift_anim.head" and f.array_index == 2)
    saved = fc.keyframe_points[1].co.y
    fc.keyframe_points[1].co.y = math.nan
    fc.update()
    attempt("nan_key")
    fc.keyframe_points[1].co.y = math.inf
    fc.update()
    attempt("inf_key")
    fc.keyframe_points[1].co.y = saved
    fc.update()
    real_id = obj["headlift_head_id"]
    obj["headlift_head_id"] = uuid.uuid4().hex
    attempt("unknown_head")
    out["reattach_offered"] = _addon("anim_live").is_unknown(obj)
    obj["headlift_head_id"] = real_id
    return out


def _write_takes(folder: Path) -> dict:
    """Sample takes in the formats' real layouts (shared/animdata.py writes them)."""
    import numpy as np

    animdata = importlib.import_module(f"{bs.ADDON_MODULE}.shared.animdata")
    folder.mkdir(parents=True, exist_ok=True)
    # Live Link Face at 60 fps, 2 s: jaw opens, smile, a head turn; plus two junk columns.
    t = np.arange(120) / 60.0
    expressions = {"jawOpen": 0.5 - 0.5 * np.cos(np.pi * t), "mouthSmileLeft": t / 2.0,
                   "eyeBlinkRight": (t > 1.0).astype(float)}
    yaw = 0.4 * np.sin(np.pi * t)
    head = animdata.head_angles_to_rotvec(yaw, np.zeros_like(t), np.zeros_like(t))
    text = animdata.write_live_link_csv(t, expressions, head, fps=60.0)
    lines = text.splitlines()
    lines[0] += ",Foo,Bar Baz"
    lines[1:] = [line + ",1,2" for line in lines[1:]]
    csv_path = folder / "take_60fps.csv"
    csv_path.write_text("\n".join(lines) + "\n")
    bad = lines[:]
    bad_path = folder / "take_nan.csv"
    header = bad[0].split(",")
    cells = bad[5].split(",")
    cells[header.index("JawOpen")] = "nan"
    bad[5] = ",".join(cells)
    bad_path.write_text("\n".join(bad) + "\n")
    junk_path = folder / "take_junk_only.csv"
    junk_path.write_text("Timecode,BlendShapeCount,Foo,Bar\n00:00:00:00.000,2,0.1,0.2\n"
                         "00:00:00:01.000,2,0.3,0.4\n")

    # AMASS-style SMPL-H poses (T, 156) at 60 fps: the head nods, the neck turns.
    n = 90
    poses = np.zeros((n, 156))
    s = np.arange(n) / 60.0
    poses[:, 15 * 3 + 0] = 0.3 * np.sin(2 * np.pi * s)  # head about SMPL x
    poses[:, 12 * 3 + 1] = 0.2 * s  # neck about SMPL y (up): a turn
    poses[:, 16 * 3 + 2] = -0.25 * s  # left shoulder about SMPL z
    npz_path = folder / "amass_60fps.npz"
    animdata.write_amass_npz(npz_path, poses, 60.0, rate_key="mocap_framerate")
    npz30 = folder / "smplx_30fps.npz"
    animdata.write_amass_npz(npz30, poses[::2], 30.0, rate_key="mocap_frame_rate")
    broken = folder / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    return {"csv": csv_path, "csv_nan": bad_path, "csv_junk": junk_path, "npz": npz_path,
            "npz30": npz30, "npz_broken": broken}


def scenario_anim_import(args: dict) -> dict:
    """Import a Live Link Face CSV and AMASS .npz takes at 24 fps; read back the keys."""
    import bpy

    obj = _open_head(args)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    scene.frame_start, scene.frame_end = 1, 10
    takes = _write_takes(Path(args["work_dir"]) / "takes")
    out = {"bad": {}}
    for label in ("csv_nan", "csv_junk", "npz_broken"):
        before = anim_counts()
        error = _run_op(bpy.ops.headlift.import_take, filepath=str(takes[label]))
        out["bad"][label] = {"error": error, "unchanged": anim_counts() == before}

    def keys() -> dict:
        found = {}
        for fc in _fcurves(obj):
            found[f"{fc.data_path}[{fc.array_index}]"] = [list(map(float, p.co)) for p in fc.keyframe_points]
        return found

    state = bpy.context.window_manager.headlift_anim_job
    error = _run_op(bpy.ops.headlift.import_take, filepath=str(takes["csv"]))
    out["csv"] = {"error": error, "status": state.status, "keys": keys(),
                  "frame_range": [scene.frame_start, scene.frame_end]}
    obj.animation_data_clear()
    error = _run_op(bpy.ops.headlift.import_take, filepath=str(takes["npz"]),
                    use_scene_start=False, frame_start=11)
    out["npz"] = {"error": error, "status": state.status, "keys": keys()}
    obj.animation_data_clear()
    error = _run_op(bpy.ops.headlift.import_take, filepath=str(takes["npz30"]))
    out["npz30"] = {"error": error, "keys": keys()}
    out["takes"] = {k: str(v) for k, v in takes.items()}
    return out


def scenario_anim_rig(args: dict) -> dict:
    """Build Export Rig, pose it natively, compare with client.animate; export glTF."""
    import json as json_
    import struct

    import bpy
    import numpy as np

    obj = _open_head(args)
    obj.headlift_anim.head = (0.0, 0.0, 0.3)  # a live-posed head must still export from rest
    _addon("anim_live").flush(60.0)
    before = anim_counts()
    error = _run_op(bpy.ops.headlift.export_rig)
    out = {"error": error, "counts_before": before, "counts_after": anim_counts()}
    if error:
        return out
    arm = next(o for o in bpy.data.objects if o.type == 'ARMATURE')
    rigged = next(o for o in bpy.data.objects if o.get("headlift_rig_of") == obj.name)
    out["bones"] = {b.name: (b.parent.name if b.parent else None) for b in arm.data.bones}
    out["vertex_groups"] = [g.name for g in rigged.vertex_groups]
    keys = rigged.data.shape_keys
    out["shape_keys"] = [k.name for k in keys.key_blocks][1:] if keys else []
    out["rigged_vertices"] = len(rigged.data.vertices)

    with _backend_client(args) as client:
        rest = client.animate(obj["headlift_head_id"], {}, {}, timeout_s=60)
    out["rest_max_error_m"] = float(np.abs(_evaluated_verts(rigged) - rest).max())
    names = out["shape_keys"]
    expressions = {"jawOpen": 1.0} if "jawOpen" in names else ({names[0]: 0.7} if names else {})
    pose = {"head": [0.0, 0.0, 0.5], "neck": [0.15, 0.0, 0.1], "left_shoulder": [0.0, -0.2, 0.0]}
    _addon("rig_build").pose_to_controls(arm, pose)
    for name, weight in expressions.items():
        keys.key_blocks[name].value = weight
    with _backend_client(args) as client:
        want = client.animate(obj["headlift_head_id"], expressions, pose, timeout_s=60)
    got = _evaluated_verts(rigged)
    out["posed_max_error_m"] = float(np.abs(got - want).max())
    out["posed_moved_m"] = float(np.linalg.norm(want - rest, axis=1).max())

    path = Path(args["work_dir"]) / "rigged.glb"
    for other in bpy.context.selected_objects:
        other.select_set(False)
    arm.select_set(True)
    rigged.select_set(True)
    try:
        result = bpy.ops.export_scene.gltf(filepath=str(path), export_format='GLB',
                                           use_selection=True, export_skins=True,
                                           export_morph=True, export_animations=False)
        out["gltf_result"] = sorted(result)
    except Exception as exc:  # noqa: BLE001 - reported to the test
        out["gltf_result"] = [f"{type(exc).__name__}: {exc}"]
        return out
    data = path.read_bytes()
    length = struct.unpack_from("<I", data, 12)[0]
    doc = json_.loads(data[20:20 + length])
    out["gltf"] = {
        "skins": [len(s["joints"]) for s in doc.get("skins", [])],
        "joint_names": [doc["nodes"][j]["name"] for s in doc.get("skins", []) for j in s["joints"]],
        "morph_targets": [len(p.get("targets", [])) for m in doc.get("meshes", [])
                          for p in m["primitives"]],
        "target_names": [n for m in doc.get("meshes", []) for n in m.get("extras", {}).get("targetNames", [])],
        "bytes": len(data),
    }
    return out


def scenario_anim_driven(args: dict) -> dict:
    """A control driven by a driver (not keyed): the timeline moves the head live, and a bake
    samples it by evaluating every frame; then Clear Bake hands the head back to the sliders."""
    import bpy
    import numpy as np

    obj = _open_head(args)
    anim_live, bake_cache = _addon("anim_live"), _addon("bake_cache")
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 24
    driver = obj.driver_add("headlift_anim.head", 2).driver
    driver.type, driver.expression = 'SCRIPTED', "frame * 0.02"
    scene.frame_set(10)
    out = {"flushed": anim_live.flush(60.0)}
    with _backend_client(args) as client:
        def want(frame):
            return client.animate(obj["headlift_head_id"], {}, {"head": [0.0, 0.0, 0.02 * frame]},
                                  timeout_s=60)

        out["live_frame_10_error_m"] = float(np.abs(_mesh_verts(obj) - want(10)).max())
        before = anim_counts()
        out["bake_error"] = _bake("PC2")
        errors = {}
        for frame in (1, 12, 24):
            scene.frame_set(frame)
            errors[str(frame)] = float(np.abs(_evaluated_verts(obj) - want(frame)).max())
        out["baked_max_error_m"] = errors
        out["frame_after_bake"] = scene.frame_current
        out["clear_error"] = _run_op(bpy.ops.headlift.clear_bake)
        out["counts_cleared_equal_before"] = anim_counts() == before
        scene.frame_set(5)
        out["flushed_after_clear"] = anim_live.flush(60.0)
        out["live_after_clear_error_m"] = float(np.abs(_evaluated_verts(obj) - want(5)).max())
    return out


def scenario_anim_measure(args: dict) -> dict:
    """Figures for the report (no test asserts them): live slider latency as bpy sees it, and per
    bake length the import (attach) time, playback time per frame and saved .blend size for a
    .pc2 Mesh Cache vs shape keys. Not run by the tests."""
    import shutil
    import statistics
    import time

    import bpy
    import numpy as np

    obj = _open_head(args)
    anim_live, head_state = _addon("anim_live"), _addon("head_state")
    bake_cache = _addon("bake_cache")
    animdata = importlib.import_module(f"{bs.ADDON_MODULE}.shared.animdata")
    names = head_state.supported_expressions(obj)
    out = {"vertices": len(obj.data.vertices), "expressions": len(names)}
    anim_live.timings.clear()
    for k in range(int(args.get("drags", 40))):
        with anim_live.coalesced(obj):
            obj.headlift_anim.head = (0.0, 0.0, 0.01 * (k % 20))
            if "jawOpen" in names:
                obj.headlift_anim.jawOpen = 0.05 * (k % 20)
        anim_live.flush(60.0)
    rt = sorted(t for t, _ in anim_live.timings)
    out["live_ms"] = {"n": len(rt), "median": 1000 * statistics.median(rt),
                      "p90": 1000 * rt[int(0.9 * (len(rt) - 1))], "max": 1000 * rt[-1],
                      "apply_median": 1000 * statistics.median(a for _, a in anim_live.timings)}
    scene = bpy.context.scene
    work = Path(args["work_dir"])
    for frames in args.get("lengths", [120, 250]):
        scene.frame_start, scene.frame_end = 1, frames
        obj.animation_data_clear()
        _key_motion(obj, frames, "jawOpen" if "jawOpen" in names else None)
        with _backend_client(args) as client:
            t0 = time.monotonic()
            verts = client.bake(obj["headlift_head_id"], *anim_sample_curves(obj, frames),
                                frame_start=1, timeout_s=600)
            backend_s = time.monotonic() - t0
        row = {"backend_and_transfer_s": backend_s}
        for method in ("PC2", "SHAPE_KEYS"):
            path = bake_cache.new_cache_path(obj)
            path.parent.mkdir(parents=True, exist_ok=True)
            t0 = time.monotonic()
            animdata.write_pc2(path, verts, start_frame=1.0)
            write_s = time.monotonic() - t0
            t0 = time.monotonic()
            bake_cache.attach(obj, path, 1, frames, method)
            attach_s = time.monotonic() - t0
            t0 = time.monotonic()
            for f in range(1, frames + 1):
                scene.frame_set(f)
                bpy.context.evaluated_depsgraph_get()
            play_s = (time.monotonic() - t0) / frames
            blend = work / f"m_{frames}_{method}.blend"
            bpy.ops.wm.save_as_mainfile(filepath=str(blend), copy=True)
            row[method] = {"write_pc2_s": write_s, "attach_s": attach_s,
                           "import_s": write_s + attach_s if method == "PC2" else write_s + attach_s,
                           "playback_ms_per_frame": 1000 * play_s,
                           "blend_mb": blend.stat().st_size / 1e6,
                           "cache_mb": (path.stat().st_size / 1e6) if path.exists() else 0.0}
            bake_cache.clear(obj)
        t0 = time.monotonic()
        scene.headlift_anim.bake_method = "PC2"
        error = _run_op(bpy.ops.headlift.bake_animation)
        row["operator_pc2_s"] = time.monotonic() - t0
        row["operator_error"] = error
        bake_cache.clear(obj)
        out[str(frames)] = row
    shutil.rmtree(bake_cache.cache_dir(), ignore_errors=True)
    return out


def anim_sample_curves(obj, frames: int):
    return _addon("anim_sample").sample_controls(importlib.import_module("bpy").context.scene,
                                                 obj, 1, frames)


SCENARIOS = {
    "install": scenario_install,
    "reconstruct": scenario_reconstruct,
    "rollback": scenario_rollback,
    "local_backend": scenario_local_backend,
    "backend_killed": scenario_backend_killed,
    "anim_prepare": scenario_anim_prepare,
    "anim_live": scenario_anim_live,
    "anim_bake": scenario_anim_bake,
    "anim_bad_bake": scenario_anim_bad_bake,
    "anim_import": scenario_anim_import,
    "anim_rig": scenario_anim_rig,
    "anim_driven": scenario_anim_driven,
    "anim_measure": scenario_anim_measure,
}


def main() -> int:
    name, args = sys.argv[1], json.loads(sys.argv[2])
    bs.isolate_user_dirs(Path(args.get("user_dir") or tempfile.mkdtemp(prefix="headlift-bpy-")))
    try:
        result = {"ok": True, **SCENARIOS[name](args)}
    except Exception:  # the test shows the traceback instead of a bare non-zero exit
        result = {"ok": False, "traceback": traceback.format_exc()}
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
