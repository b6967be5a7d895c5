"""Drive from Video in a fresh headless Blender (the pattern of tests/blender_driver.py, whose
helpers it reuses): ``python tests/blender_drive_driver.py '{"zip": ..., "blend": ..., ...}'``.

Prints one JSON line after blender_driver.RESULT_MARKER with what the tests check.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import blender_driver as bd  # noqa: E402
from blender_driver import _addon, _fcurves, _open_head, _run_op, anim_counts, bs  # noqa: E402


def _keys(obj) -> dict[str, list[list[float]]]:
    return {f"{fc.data_path}[{fc.array_index}]": [list(map(float, p.co)) for p in fc.keyframe_points]
            for fc in _fcurves(obj)}


def scenario_drive(args: dict) -> dict:
    import bpy

    obj = _open_head(args)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    scene.frame_start, scene.frame_end = 1, 10
    state = bpy.context.window_manager.headlift_anim_job
    out: dict = {}

    # Bad input: refused with the backend's code, nothing changes.
    before = anim_counts()
    error = _run_op(bpy.ops.headlift.drive_from_video, filepath=args["not_a_video"])
    out["bad"] = {"error": error, "status": state.status, "unchanged": anim_counts() == before}

    # Cancelled midway: the job ends 'cancelled' and no keyframe exists.
    drive = _addon("anim_drive")
    video, name = drive.read_source(Path(args["long_video"]))
    job = drive.DriveJob(args["address"], video, name)
    deadline = time.monotonic() + 600
    while job.stage != "Tracking" and not job.done and time.monotonic() < deadline:
        job.poll()
        time.sleep(0.05)
    job.cancel()
    job.run_blocking()
    out["cancelled"] = {"error": list(job.error) if job.error else None,
                        "unchanged": anim_counts() == before, "keys": len(_keys(obj))}

    # A 2 s clip at 30 fps, keyed at the scene's 24 fps.
    error = _run_op(bpy.ops.headlift.drive_from_video, filepath=args["video"])
    out["video"] = {"error": error, "status": state.status, "keys": _keys(obj),
                    "frame_range": [scene.frame_start, scene.frame_end]}

    # A folder of frames (the scene's rate) with the actor gone for a while.
    obj.animation_data_clear()
    error = _run_op(bpy.ops.headlift.drive_from_video, filepath=args["folder"] + "/", use_folder=True)
    out["folder"] = {"error": error, "status": state.status, "keys": _keys(obj)}

    # A take that shows the shoulders: the root and collars are keyed like the neck and head.
    obj.animation_data_clear()
    error = _run_op(bpy.ops.headlift.drive_from_video, filepath=args["shoulders_video"])
    out["shoulders"] = {"error": error, "status": state.status, "keys": _keys(obj)}
    out["expressions"] = _addon("head_state").supported_expressions(obj)
    return out


def main() -> int:
    args = json.loads(sys.argv[1])
    bs.isolate_user_dirs(Path(args.get("user_dir") or tempfile.mkdtemp(prefix="headlift-bpy-")))
    try:
        result = {"ok": True, **scenario_drive(args)}
    except Exception:
        result = {"ok": False, "traceback": traceback.format_exc()}
    print(bd.RESULT_MARKER + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
