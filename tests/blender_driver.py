"""Runs one add-on scenario in a fresh headless Blender (bpy keeps global state, so one process per
scenario) and prints its findings as one JSON line after RESULT_MARKER.

    python tests/blender_driver.py SCENARIO '{"zip": "...", ...}'

Scenarios: install, reconstruct, rollback, local_backend, backend_killed. tests/test_addon.py reads the JSON.
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
    return outcome


SCENARIOS = {
    "install": scenario_install,
    "reconstruct": scenario_reconstruct,
    "rollback": scenario_rollback,
    "local_backend": scenario_local_backend,
    "backend_killed": scenario_backend_killed,
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
