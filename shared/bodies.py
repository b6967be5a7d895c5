"""Per-type bodies of protocol v1: which buffers each message carries, how each body is checked
on the way in (``DECODERS``) and built on the way out (``ENCODERS``). ``protocol`` owns the frames
and the header; this module owns what is inside ``body`` and the buffers' meaning.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .controls import ARKIT_NAMES, MAX_BAKE_FRAMES, MAX_DRIVE_FRAMES, MAX_POSE_ANGLE_RAD, POSE_JOINTS
from .errors import ErrorCode
from .fields import (
    Fields, bad, check_float, check_float_list, check_int, check_known, check_names, check_str,
)
from .messages import (
    Ack, Animate, Bake, BakeChunk, BakeDone, CameraInfo, Cancel, Drive, DriveResult, Error, Frame,
    Hello, Message, Ping, Pong, Progress, Reconstruct, Result, Rig, RigData, Shutdown,
)

# The buffers each message type carries: name -> (dtype, shape pattern; None = any length).
BUFFER_SPECS: dict[str, dict[str, tuple[str, tuple[int | None, ...]]]] = {
    Reconstruct.TYPE: {"image": ("|u1", (None,))},
    Result.TYPE: {
        "verts_m": ("<f4", (None, 3)),
        "faces": ("<i4", (None, 3)),
        "loop_uvs": ("<f4", (None, 3, 2)),
        "texture": ("|u1", (None, None, 3)),
        "landmarks_m": ("<f4", (None, 3)),
    },
    Frame.TYPE: {"verts_m": ("<f4", (None, 3))},
    Bake.TYPE: {"expressions": ("<f4", (None, None)), "poses": ("<f4", (None, None, 3))},
    BakeChunk.TYPE: {"verts_m": ("<f4", (None, None, 3))},
    Drive.TYPE: {"video": ("|u1", (None,))},
    DriveResult.TYPE: {"weights": ("<f4", (None, None)), "poses": ("<f4", (None, None, 3))},
    RigData.TYPE: {
        "expression_deltas": ("<f4", (None, None, 3)),
        "joint_rest_m": ("<f4", (None, 3)),
        "skin_weights": ("<f4", (None, None)),
    },
}


# Strings: (max characters). Names become Blender object names, which are short anyway.
MAX_NAME, MAX_AGENT, MAX_STAGE, MAX_TEXT, MAX_ERROR_TEXT = 128, 128, 64, 1000, 4000
MAX_OPTIONS, MAX_OPTION_KEY, MAX_OPTION_STR = 32, 64, 256
MAX_TIMINGS, MAX_WARNINGS = 64, 64
JSON_SAFE_INT = 2**53  # integers beyond this do not survive a JSON float round trip
# Animation controls. Weights beyond +-2 are a unit or scale mix-up, refused rather than clamped.
MAX_EXPRESSION_WEIGHT = 2.0
ANGLE_SLACK = 1e-5  # float32 rounding of a vector exactly MAX_POSE_ANGLE_RAD long
MAX_FRAME = 1_048_574  # Blender's last frame number (MAXFRAME); frame numbers lie in +-MAX_FRAME


def to_wire(value: Any, dtype: str, where: str) -> np.ndarray:
    """An array in its wire dtype, C-contiguous. Floats may narrow (f8 -> f4); integers must fit."""
    arr = np.asarray(value)
    want = np.dtype(dtype)
    if arr.dtype.kind != want.kind and not (want.kind == "i" and arr.dtype.kind == "u"):
        raise bad(where, f"must hold {want.name} data, got {arr.dtype.name}")
    if want.kind in "iu" and arr.size and arr.dtype != want:
        info = np.iinfo(want)
        if arr.min() < info.min or arr.max() > info.max:
            raise bad(where, f"values do not fit {want.name}")
    return np.ascontiguousarray(arr, dtype=want)


def _options(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or len(value) > MAX_OPTIONS:
        raise bad(where, f"must be a JSON object of at most {MAX_OPTIONS} options")
    for key, v in value.items():
        check_str(key, f"{where} key", min_len=1, max_len=MAX_OPTION_KEY)
        if isinstance(v, str):
            check_str(v, f"{where}.{key}", max_len=MAX_OPTION_STR)
        elif isinstance(v, float):
            check_float(v, f"{where}.{key}")
        elif isinstance(v, int) and not isinstance(v, bool):
            check_int(v, f"{where}.{key}", lo=-JSON_SAFE_INT, hi=JSON_SAFE_INT)
        elif v is not None and not isinstance(v, bool):
            raise bad(f"{where}.{key}", "must be a boolean, number, string or null")
    return dict(value)


def _string_list(value: list, where: str, max_len: int) -> list[str]:
    return [check_str(s, f"{where}[{i}]", max_len=max_len) for i, s in enumerate(value)]


def _camera_to_json(cam: CameraInfo) -> dict:
    return {"R_cam_from_canonical": np.asarray(cam.R_cam_from_canonical, float).tolist(),
            "pixels_per_metre": float(cam.pixels_per_metre),
            "principal_px": np.asarray(cam.principal_px, float).tolist(),
            "image_size": [int(n) for n in cam.image_size]}


def _camera_from_json(value: Any, where: str) -> CameraInfo:
    f = Fields(value, where)
    rows = f.list("R_cam_from_canonical", min_len=3, max_len=3)
    rot = np.array([check_float_list(r, f"{where}.R_cam_from_canonical[{i}]", length=3)
                    for i, r in enumerate(rows)])
    ppm = f.float("pixels_per_metre", lo=1e-9)
    principal = np.array(check_float_list(f.list("principal_px", min_len=2, max_len=2),
                                          f"{where}.principal_px", length=2))
    size = f.list("image_size", min_len=2, max_len=2)
    width, height = (check_int(n, f"{where}.image_size", lo=1, hi=1 << 20) for n in size)
    f.done()
    return CameraInfo(R_cam_from_canonical=rot, pixels_per_metre=ppm, principal_px=principal,
                      image_size=(width, height))


def check_result_arrays(a: dict[str, np.ndarray]) -> None:
    verts, faces, uvs = a["verts_m"], a["faces"], a["loop_uvs"]
    if len(verts) < 3 or len(faces) < 1:
        raise bad("result.buffers", f"a head needs >= 3 vertices and >= 1 face, got "
                                    f"{len(verts)} and {len(faces)}")
    if faces.min() < 0 or faces.max() >= len(verts):
        raise bad("result.buffers.faces", f"indices must be in 0..{len(verts) - 1}")
    if len(uvs) != len(faces):
        raise bad("result.buffers.loop_uvs", f"needs one entry per face ({len(faces)}), got {len(uvs)}")
    if a["texture"].shape[0] < 1 or a["texture"].shape[1] < 1:
        raise bad("result.buffers.texture", "must be at least 1x1")
    for name in ("verts_m", "loop_uvs", "landmarks_m"):
        if not np.isfinite(a[name]).all():
            raise bad(f"result.buffers.{name}", "contains NaN or infinity")


def check_mesh_frames(verts: np.ndarray, where: str) -> None:
    """verts (..., V, 3): at least one vertex, all finite."""
    if verts.shape[-2] < 1:
        raise bad(where, "holds no vertices")
    if not np.isfinite(verts).all():
        raise bad(where, "contains NaN or infinity")


def check_expression_values(values: Any, where: str, names: list[str] | None = None) -> None:
    """Weights (any shape, last axis = ``names`` when given): finite and within +-2."""
    arr = np.asarray(values, dtype=np.float64)
    bad_at = np.argwhere(~np.isfinite(arr) | (np.abs(arr) > MAX_EXPRESSION_WEIGHT))
    if len(bad_at):
        index = tuple(int(i) for i in bad_at[0])
        label = f" ({names[index[-1]]!r})" if names and arr.ndim else ""
        raise bad(where, f"expression weight {float(arr[index])!r} at {list(index)}{label} is "
                         f"not a finite number in [-{MAX_EXPRESSION_WEIGHT:g}, "
                         f"{MAX_EXPRESSION_WEIGHT:g}] ({len(bad_at)} bad value(s))")


def check_pose_values(values: Any, where: str, joints: list[str] | None = None) -> None:
    """Axis-angle vectors (..., 3): finite, each at most MAX_POSE_ANGLE_RAD long."""
    arr = np.asarray(values, dtype=np.float64)
    if not np.isfinite(arr).all():
        index = [int(i) for i in np.argwhere(~np.isfinite(arr))[0]]
        raise bad(where, f"rotation contains NaN or infinity at {index}")
    norms = np.linalg.norm(arr, axis=-1) if arr.size else np.zeros(arr.shape[:-1])
    too_long = np.argwhere(norms > MAX_POSE_ANGLE_RAD + ANGLE_SLACK)
    if len(too_long):
        index = tuple(int(i) for i in too_long[0])
        label = f" ({joints[index[-1]]!r})" if joints and norms.ndim else ""
        raise bad(where, f"rotation vector at {list(index)}{label} is {norms[index]:.4g} rad "
                         f"long, more than {MAX_POSE_ANGLE_RAD:.4g} (axis-angle in radians, "
                         f"not degrees?)")


def _expression_dict(value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, dict) or len(value) > len(ARKIT_NAMES):
        raise bad(where, f"must be a JSON object of at most {len(ARKIT_NAMES)} ARKit names")
    check_known([str(k) for k in value], where, known=ARKIT_NAMES, what="expression")
    out = {k: check_float(v, f"{where}.{k}") for k, v in value.items()}
    check_expression_values(list(out.values()), where, list(out))
    return out


def _pose_dict(value: Any, where: str) -> dict[str, list[float]]:
    if not isinstance(value, dict) or len(value) > len(POSE_JOINTS):
        raise bad(where, f"must be a JSON object of at most {len(POSE_JOINTS)} joints")
    check_known([str(k) for k in value], where, known=POSE_JOINTS, what="joint")
    out = {k: check_float_list(list(v) if isinstance(v, (list, tuple, np.ndarray)) else v,
                               f"{where}.{k}", length=3)
           for k, v in value.items()}
    check_pose_values(np.array(list(out.values())).reshape(-1, 3), where, list(out))
    return out


def _timings(value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, dict) or len(value) > MAX_TIMINGS:
        raise bad(where, f"must be a JSON object of at most {MAX_TIMINGS} entries")
    for key in value:
        check_str(key, f"{where} key", min_len=1, max_len=MAX_STAGE)
    return {k: check_float(v, f"{where}.{k}", lo=0.0) for k, v in value.items()}


def _dec_animate(msg_id: str, b: Fields, a: dict) -> Animate:
    return Animate(id=msg_id, head_id=b.id("head_id"),
                   expressions=_expression_dict(b.object("expressions", default={}),
                                                "animate.body.expressions"),
                   pose=_pose_dict(b.object("pose", default={}), "animate.body.pose"))


def _dec_frame(msg_id: str, b: Fields, a: dict) -> Frame:
    check_mesh_frames(a["verts_m"], "frame.buffers.verts_m")
    return Frame(id=msg_id, **a)


def check_bake_arrays(names: list[str], joints: list[str], expressions: np.ndarray,
                      poses: np.ndarray) -> None:
    """(T, E) weights and (T, J, 3) rotations that match the name lists, 1 <= T <= MAX_BAKE_FRAMES."""
    frames = expressions.shape[0]
    if not 1 <= frames <= MAX_BAKE_FRAMES:
        raise bad("bake.buffers.expressions", f"a bake covers 1..{MAX_BAKE_FRAMES} frames, got "
                                              f"{frames} (bake long takes in parts)")
    if expressions.shape[1] != len(names):
        raise bad("bake.buffers.expressions", f"has {expressions.shape[1]} columns for "
                                              f"{len(names)} expression_names")
    if poses.shape[:2] != (frames, len(joints)):
        raise bad("bake.buffers.poses", f"shape must be ({frames}, {len(joints)}, 3) for "
                                        f"{frames} frames of {len(joints)} pose_joints, got "
                                        f"{tuple(poses.shape)}")
    check_expression_values(expressions, "bake.buffers.expressions", names)
    check_pose_values(poses, "bake.buffers.poses", joints)


def _dec_bake(msg_id: str, b: Fields, a: dict) -> Bake:
    names = check_names(b.list("expression_names", max_len=len(ARKIT_NAMES)),
                        "bake.body.expression_names", known=ARKIT_NAMES, what="expression")
    joints = check_names(b.list("pose_joints", max_len=len(POSE_JOINTS)),
                         "bake.body.pose_joints", known=POSE_JOINTS, what="joint")
    check_bake_arrays(names, joints, a["expressions"], a["poses"])
    return Bake(id=msg_id, head_id=b.id("head_id"), expression_names=names, pose_joints=joints,
                frame_start=b.int("frame_start", lo=-MAX_FRAME, hi=MAX_FRAME, default=1), **a)


def _dec_bake_chunk(msg_id: str, b: Fields, a: dict) -> BakeChunk:
    verts = a["verts_m"]
    if verts.shape[0] < 1:
        raise bad("bake_chunk.buffers.verts_m", "holds no frames")
    check_mesh_frames(verts, "bake_chunk.buffers.verts_m")
    return BakeChunk(id=msg_id, verts_m=verts,
                     frame_start=b.int("frame_start", lo=-MAX_FRAME, hi=MAX_FRAME + MAX_BAKE_FRAMES))


def _dec_bake_done(msg_id: str, b: Fields, a: dict) -> BakeDone:
    return BakeDone(id=msg_id, frames=b.int("frames", lo=1, hi=MAX_BAKE_FRAMES),
                    timings_s=_timings(b.object("timings_s", default={}), "bake_done.body.timings_s"))


def check_rig_arrays(names: list[str], joints: list[str], parents: list[int],
                     a: dict[str, np.ndarray]) -> None:
    deltas, rest, weights = a["expression_deltas"], a["joint_rest_m"], a["skin_weights"]
    n_verts = weights.shape[0]
    if n_verts < 1:
        raise bad("rig_data.buffers.skin_weights", "holds no vertices")
    if deltas.shape[:2] != (len(names), n_verts):
        raise bad("rig_data.buffers.expression_deltas",
                  f"shape must be ({len(names)}, {n_verts}, 3), got {tuple(deltas.shape)}")
    if rest.shape[0] != len(joints) or weights.shape[1] != len(joints):
        raise bad("rig_data.buffers", f"joint_rest_m {tuple(rest.shape)} and skin_weights "
                                      f"{tuple(weights.shape)} must have {len(joints)} joints")
    for name in ("expression_deltas", "joint_rest_m", "skin_weights"):
        if not np.isfinite(a[name]).all():
            raise bad(f"rig_data.buffers.{name}", "contains NaN or infinity")
    if len(parents) != len(joints):
        raise bad("rig_data.body.joint_parents", f"needs one parent per joint ({len(joints)})")
    for i, p in enumerate(parents):
        check_int(p, f"rig_data.body.joint_parents[{i}]", lo=-1, hi=i - 1)  # parents first


def _dec_rig_data(msg_id: str, b: Fields, a: dict) -> RigData:
    names = check_names(b.list("expression_names", max_len=len(ARKIT_NAMES)),
                        "rig_data.body.expression_names", known=ARKIT_NAMES, what="expression")
    joints = check_names(b.list("joint_names", max_len=len(POSE_JOINTS)),
                         "rig_data.body.joint_names", known=POSE_JOINTS, what="joint")
    parents = b.list("joint_parents", max_len=len(POSE_JOINTS))
    check_rig_arrays(names, joints, parents, a)
    return RigData(id=msg_id, expression_names=names, joint_names=joints,
                   joint_parents=list(parents), **a)


def check_drive_arrays(names: list[str], joints: list[str], weights: np.ndarray, poses: np.ndarray,
                       missing: list) -> list[list[int]]:
    """(T, E) weights in [0, 1], (T, J, 3) rotations, missing ranges inside 0..T-1 in order."""
    frames = weights.shape[0]
    if not 1 <= frames <= MAX_DRIVE_FRAMES:
        raise bad("drive_result.buffers.weights", f"a take has 1..{MAX_DRIVE_FRAMES} frames, got {frames}")
    if weights.shape[1] != len(names):
        raise bad("drive_result.buffers.weights", f"has {weights.shape[1]} columns for "
                                                  f"{len(names)} expression_names")
    if poses.shape[:2] != (frames, len(joints)):
        raise bad("drive_result.buffers.poses", f"shape must be ({frames}, {len(joints)}, 3), got "
                                                f"{tuple(poses.shape)}")
    if not np.isfinite(weights).all() or weights.size and (weights.min() < 0 or weights.max() > 1):
        raise bad("drive_result.buffers.weights", "weights must be finite and in [0, 1]")
    check_pose_values(poses, "drive_result.buffers.poses", joints)
    out, after = [], -1
    for i, span in enumerate(missing):
        where = f"drive_result.body.missing[{i}]"
        if not isinstance(span, (list, tuple)) or len(span) != 2:
            raise bad(where, "must be a [first, last] frame pair")
        first = check_int(span[0], where, lo=after + 1, hi=frames - 1)
        last = check_int(span[1], where, lo=first, hi=frames - 1)
        out.append([first, last])
        after = last
    return out


def _dec_drive(msg_id: str, b: Fields, a: dict) -> Drive:
    video = a["video"]
    if video.size == 0:
        raise bad("drive.buffers.video", "is empty")
    return Drive(id=msg_id, video=video.tobytes(), name=b.str("name", min_len=1, max_len=MAX_NAME),
                 frames_fps=b.float("frames_fps", lo=0.0, hi=1000.0, default=0.0))


def _dec_drive_result(msg_id: str, b: Fields, a: dict) -> DriveResult:
    names = check_names(b.list("expression_names", max_len=len(ARKIT_NAMES)),
                        "drive_result.body.expression_names", known=ARKIT_NAMES, what="expression")
    joints = check_names(b.list("joint_names", max_len=len(POSE_JOINTS)),
                         "drive_result.body.joint_names", known=POSE_JOINTS, what="joint")
    missing = check_drive_arrays(names, joints, a["weights"], a["poses"],
                                 b.list("missing", max_len=MAX_DRIVE_FRAMES, default=[]))
    return DriveResult(id=msg_id, fps=b.float("fps", lo=1e-3, hi=1000.0), expression_names=names,
                       joint_names=joints, missing=missing,
                       warnings=_string_list(b.list("warnings", max_len=MAX_WARNINGS, default=[]),
                                             "drive_result.body.warnings", MAX_TEXT), **a)


def _dec_hello(msg_id: str, b: Fields, a: dict) -> Hello:
    versions = b.list("versions", min_len=1, max_len=16)
    return Hello(id=msg_id,
                 versions=[check_int(v, "hello.body.versions", lo=1, hi=65535) for v in versions],
                 agent=b.str("agent", max_len=MAX_AGENT, default=""),
                 device=b.str("device", max_len=MAX_AGENT, default=""),
                 capabilities=_string_list(b.list("capabilities", max_len=32, default=[]),
                                           "hello.body.capabilities", 64),
                 max_message_bytes=b.int("max_message_bytes", lo=0, hi=1 << 40, default=0))


def _dec_reconstruct(msg_id: str, b: Fields, a: dict) -> Reconstruct:
    image = a["image"]
    if image.size == 0:
        raise bad("reconstruct.buffers.image", "is empty")
    return Reconstruct(id=msg_id, image=image.tobytes(),
                       name=b.str("name", min_len=1, max_len=MAX_NAME),
                       options=_options(b.object("options", default={}), "reconstruct.body.options"))


def _dec_progress(msg_id: str, b: Fields, a: dict) -> Progress:
    return Progress(id=msg_id, stage=b.str("stage", min_len=1, max_len=MAX_STAGE),
                    fraction=b.float("fraction", lo=0.0, hi=1.0),
                    message=b.str("message", max_len=MAX_TEXT, default=""))


def _dec_result(msg_id: str, b: Fields, a: dict) -> Result:
    check_result_arrays(a)
    return Result(id=msg_id, name=b.str("name", min_len=1, max_len=MAX_NAME),
                  head_id=b.id("head_id"),
                  camera=_camera_from_json(b.object("camera"), "result.body.camera"),
                  timings_s=_timings(b.object("timings_s", default={}), "result.body.timings_s"),
                  warnings=_string_list(b.list("warnings", max_len=MAX_WARNINGS, default=[]),
                                        "result.body.warnings", MAX_TEXT),
                  expression_names=check_names(b.raw("expression_names", default=[]),
                                               "result.body.expression_names",
                                               known=ARKIT_NAMES, what="expression"),
                  joint_names=check_names(b.raw("joint_names", default=[]), "result.body.joint_names",
                                          known=POSE_JOINTS, what="joint"),
                  **a)


def _dec_error(msg_id: str, b: Fields, a: dict) -> Error:
    # An unknown code from a newer peer reads as INTERNAL rather than failing the whole reply.
    return Error(id=msg_id, code=ErrorCode.parse(b.str("code", min_len=1, max_len=64)),
                 message=b.str("message", max_len=MAX_ERROR_TEXT, single_line=False))


def _dec_cancel(msg_id: str, b: Fields, a: dict) -> Cancel:
    return Cancel(id=msg_id, target=b.id("target"))


def _dec_ack(msg_id: str, b: Fields, a: dict) -> Ack:
    return Ack(id=msg_id, ok=b.bool("ok", default=True),
               message=b.str("message", max_len=MAX_TEXT, default=""))


DECODERS: dict[str, Callable[[str, Fields, dict], Message]] = {
    Hello.TYPE: _dec_hello, Reconstruct.TYPE: _dec_reconstruct, Progress.TYPE: _dec_progress,
    Result.TYPE: _dec_result, Error.TYPE: _dec_error, Cancel.TYPE: _dec_cancel, Ack.TYPE: _dec_ack,
    Ping.TYPE: lambda i, b, a: Ping(id=i), Pong.TYPE: lambda i, b, a: Pong(id=i),
    Shutdown.TYPE: lambda i, b, a: Shutdown(id=i),
    Animate.TYPE: _dec_animate, Frame.TYPE: _dec_frame, Bake.TYPE: _dec_bake,
    BakeChunk.TYPE: _dec_bake_chunk, BakeDone.TYPE: _dec_bake_done,
    Rig.TYPE: lambda i, b, a: Rig(id=i, head_id=b.id("head_id")), RigData.TYPE: _dec_rig_data,
    Drive.TYPE: _dec_drive, DriveResult.TYPE: _dec_drive_result,
}

Arrays = list[tuple[str, np.ndarray]]


def _enc_result(m: Result) -> tuple[dict, Arrays]:
    body = {"name": m.name, "head_id": m.head_id, "camera": _camera_to_json(m.camera),
            "timings_s": {str(k): float(v) for k, v in m.timings_s.items()},
            "warnings": list(m.warnings), "expression_names": list(m.expression_names),
            "joint_names": list(m.joint_names)}
    return body, _buffers(m)


def _buffers(m: Message) -> Arrays:
    """The message's arrays named in BUFFER_SPECS, in wire dtypes (in the order listed there)."""
    return [(name, to_wire(getattr(m, name), dtype, f"{m.TYPE}.{name}"))
            for name, (dtype, _) in BUFFER_SPECS[m.TYPE].items()]


def _enc_animate(m: Animate) -> tuple[dict, Arrays]:
    # Checked here too, so a NaN slider value is named instead of failing as "not JSON".
    expressions = _expression_dict(dict(m.expressions), "animate.expressions")
    pose = _pose_dict(dict(m.pose), "animate.pose")
    return {"head_id": m.head_id, "expressions": expressions, "pose": pose}, []


def _enc_bake(m: Bake) -> tuple[dict, Arrays]:
    body = {"head_id": m.head_id, "expression_names": list(m.expression_names),
            "pose_joints": list(m.pose_joints), "frame_start": m.frame_start}
    expressions = np.asarray(m.expressions)
    if expressions.ndim == 1 and expressions.size == 0:
        expressions = expressions.reshape(0, 0)
    return body, [("expressions", to_wire(expressions, "<f4", "bake.expressions")),
                  ("poses", to_wire(m.poses, "<f4", "bake.poses"))]


def _enc_reconstruct(m: Reconstruct) -> tuple[dict, Arrays]:
    if not isinstance(m.image, (bytes, bytearray, memoryview)):
        raise bad("reconstruct.image", f"must be bytes, got {type(m.image).__name__}")
    return ({"name": m.name, "options": m.options},
            [("image", np.frombuffer(m.image, dtype=np.uint8))])


def _enc_drive(m: Drive) -> tuple[dict, Arrays]:
    if not isinstance(m.video, (bytes, bytearray, memoryview)):
        raise bad("drive.video", f"must be bytes, got {type(m.video).__name__}")
    return ({"name": m.name, "frames_fps": float(m.frames_fps)},
            [("video", np.frombuffer(m.video, dtype=np.uint8))])


def _enc_drive_result(m: DriveResult) -> tuple[dict, Arrays]:
    body = {"fps": float(m.fps), "expression_names": list(m.expression_names),
            "joint_names": list(m.joint_names),
            "missing": [[int(a), int(b)] for a, b in m.missing], "warnings": list(m.warnings)}
    return body, _buffers(m)


ENCODERS: dict[type, Callable[[Any], tuple[dict, Arrays]]] = {
    Hello: lambda m: ({"versions": m.versions, "agent": m.agent, "device": m.device,
                       "capabilities": m.capabilities,
                       "max_message_bytes": m.max_message_bytes}, []),
    Reconstruct: _enc_reconstruct,
    Progress: lambda m: ({"stage": m.stage, "fraction": m.fraction, "message": m.message}, []),
    Result: _enc_result,
    Error: lambda m: ({"code": ErrorCode(m.code).value, "message": m.message}, []),
    Cancel: lambda m: ({"target": m.target}, []),
    Ack: lambda m: ({"ok": m.ok, "message": m.message}, []),
    Ping: lambda m: ({}, []), Pong: lambda m: ({}, []), Shutdown: lambda m: ({}, []),
    Animate: _enc_animate,
    Frame: lambda m: ({}, _buffers(m)),
    Bake: _enc_bake,
    BakeChunk: lambda m: ({"frame_start": m.frame_start}, _buffers(m)),
    BakeDone: lambda m: ({"frames": m.frames,
                          "timings_s": {str(k): float(v) for k, v in m.timings_s.items()}}, []),
    Rig: lambda m: ({"head_id": m.head_id}, []),
    RigData: lambda m: ({"expression_names": list(m.expression_names),
                         "joint_names": list(m.joint_names),
                         "joint_parents": [int(p) for p in m.joint_parents]}, _buffers(m)),
    Drive: _enc_drive,
    DriveResult: _enc_drive_result,
}
