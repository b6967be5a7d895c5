"""Per-type bodies of protocol v1: which buffers each message carries, how each body is checked
on the way in (``DECODERS``) and built on the way out (``ENCODERS``). ``protocol`` owns the frames
and the header; this module owns what is inside ``body`` and the buffers' meaning.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .errors import ErrorCode
from .fields import Fields, bad, check_float, check_float_list, check_int, check_str
from .messages import (
    Ack, CameraInfo, Cancel, Error, Hello, Message, Ping, Pong, Progress, Reconstruct, Result,
    Shutdown,
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
}


# Strings: (max characters). Names become Blender object names, which are short anyway.
MAX_NAME, MAX_AGENT, MAX_STAGE, MAX_TEXT, MAX_ERROR_TEXT = 128, 128, 64, 1000, 4000
MAX_OPTIONS, MAX_OPTION_KEY, MAX_OPTION_STR = 32, 64, 256
MAX_TIMINGS, MAX_WARNINGS = 64, 64
JSON_SAFE_INT = 2**53  # integers beyond this do not survive a JSON float round trip


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
    timings = b.object("timings_s", default={})
    if len(timings) > MAX_TIMINGS:
        raise bad("result.body.timings_s", f"at most {MAX_TIMINGS} entries")
    for key in timings:
        check_str(key, "result.body.timings_s key", min_len=1, max_len=MAX_STAGE)
    return Result(id=msg_id, name=b.str("name", min_len=1, max_len=MAX_NAME),
                  head_id=b.id("head_id"),
                  camera=_camera_from_json(b.object("camera"), "result.body.camera"),
                  timings_s={k: check_float(v, f"result.body.timings_s.{k}", lo=0.0)
                             for k, v in timings.items()},
                  warnings=_string_list(b.list("warnings", max_len=MAX_WARNINGS, default=[]),
                                        "result.body.warnings", MAX_TEXT),
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
}

Arrays = list[tuple[str, np.ndarray]]


def _enc_result(m: Result) -> tuple[dict, Arrays]:
    body = {"name": m.name, "head_id": m.head_id, "camera": _camera_to_json(m.camera),
            "timings_s": {str(k): float(v) for k, v in m.timings_s.items()},
            "warnings": list(m.warnings)}
    arrays = [(name, to_wire(getattr(m, name), dtype, f"result.{name}"))
              for name, (dtype, _) in BUFFER_SPECS[Result.TYPE].items()]
    return body, arrays


def _enc_reconstruct(m: Reconstruct) -> tuple[dict, Arrays]:
    if not isinstance(m.image, (bytes, bytearray, memoryview)):
        raise bad("reconstruct.image", f"must be bytes, got {type(m.image).__name__}")
    return ({"name": m.name, "options": m.options},
            [("image", np.frombuffer(m.image, dtype=np.uint8))])


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
}
