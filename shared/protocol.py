"""Wire format of protocol v1: ``encode`` is the only door out, ``decode`` the only door in.

A message is a list of ZeroMQ frames ``[header, *buffers]`` (a ROUTER adds the client identity in
front; that is the socket's business, not this module's):

    header  = UTF-8 JSON object {"protocol": 1, "type": str, "id": str, "body": {...},
                                 "buffers": [{"name": str, "dtype": "<f4", "shape": [V, 3]}, ...]}
    buffers = one raw frame per descriptor, little-endian, C-contiguous, prod(shape)*itemsize bytes.

Arrays never go through JSON or pickle: ``encode`` hands out memoryviews of the arrays (send them
with ``copy=False``) and ``decode`` returns ``np.frombuffer`` views (often read-only) of the frames.
Every field is checked on the way in; a bad message raises ``ProtocolError`` with the code that
says why (see ``ErrorCode``). ``encode`` runs its own output through ``decode``, so nothing leaves
that the peer would refuse.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from .bodies import BUFFER_SPECS, DECODERS, ENCODERS
from .errors import ErrorCode, ProtocolError
from .fields import Fields, bad, check_id, check_int
from .messages import MESSAGE_TYPES, PROTOCOL_VERSION, Error, Message

MiB = 1 << 20

# Every dtype a buffer may declare. Little-endian or byte-order-free only; no objects, no strings.
ALLOWED_DTYPES = frozenset(
    {"|b1", "|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f2", "<f4", "<f8"})


@dataclass(frozen=True)
class ProtocolLimits:
    """What ``decode`` accepts. The server passes a tighter ``max_message_bytes`` (its config)."""

    max_message_bytes: int = 1024 * MiB  # header + all buffers; results with big textures are large
    max_header_bytes: int = 64 * 1024
    max_buffers: int = 8
    max_ndim: int = 4


DEFAULT_LIMITS = ProtocolLimits()


# --- the two doors ---------------------------------------------------------------------------

def encode(msg: Message, limits: ProtocolLimits = DEFAULT_LIMITS) -> list[bytes | memoryview]:
    """Message -> frames ``[header, *buffers]``; send with ``socket.send_multipart(frames, copy=False)``.

    Raises ``ProtocolError`` if the message would be refused by ``decode`` (e.g. NaN vertices,
    a 300-character name, faces pointing past the last vertex).
    """
    encoder = ENCODERS.get(type(msg))
    if encoder is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"cannot encode {type(msg).__name__}")
    try:
        body, arrays = encoder(msg)
    except (TypeError, ValueError, AttributeError) as exc:  # e.g. a code that is no ErrorCode
        raise bad(msg.TYPE, f"cannot encode: {exc}") from None
    descriptors, frames = [], []
    for name, arr in arrays:
        descriptors.append({"name": name, "dtype": arr.dtype.str, "shape": list(arr.shape)})
        # A flat uint8 view: memoryview cannot cast arrays with a zero-length axis.
        frames.append(memoryview(arr.reshape(-1).view(np.uint8)))
    header = {"protocol": PROTOCOL_VERSION, "type": msg.TYPE, "id": msg.id, "body": body,
              "buffers": descriptors}
    try:
        header_bytes = json.dumps(header, ensure_ascii=False, allow_nan=False,
                                  separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise bad(f"{msg.TYPE}.body", f"not JSON-serialisable: {exc}") from None
    out: list[bytes | memoryview] = [header_bytes, *frames]
    decode(out, limits)
    return out


def decode(frames: Iterable[Any], limits: ProtocolLimits = DEFAULT_LIMITS) -> Message:
    """Frames ``[header, *buffers]`` (bytes, memoryviews or ``zmq.Frame``) -> a Message.

    Raises ``ProtocolError``; its ``request_id`` is set whenever the header's id was readable, so
    the error reply can name the request it answers.
    """
    views = [_byte_view(f, i) for i, f in enumerate(frames)]
    if not views:
        raise bad("message", "no frames")
    if views[0].nbytes > limits.max_header_bytes:
        raise ProtocolError(ErrorCode.MESSAGE_TOO_LARGE,
                            f"header is {views[0].nbytes} bytes, limit {limits.max_header_bytes}")
    total = sum(v.nbytes for v in views)
    if total > limits.max_message_bytes:
        # Size wins over any other fault, but name the request if its header is readable.
        try:
            request_id = _request_id(_parse_json_object(views[0]))
        except ProtocolError:
            request_id = None
        raise ProtocolError(ErrorCode.MESSAGE_TOO_LARGE,
                            f"message is {total} bytes, limit {limits.max_message_bytes}",
                            request_id)
    header = _parse_json_object(views[0])
    request_id = _request_id(header)
    try:
        return _decode_header(header, views[1:], limits)
    except ProtocolError as exc:
        exc.request_id = exc.request_id or request_id
        raise


# --- header and buffers ----------------------------------------------------------------------

def _byte_view(frame: Any, index: int) -> memoryview:
    try:
        view = memoryview(getattr(frame, "buffer", frame))  # zmq.Frame exposes .buffer
    except TypeError:
        raise bad(f"frame[{index}]", f"not a bytes-like object ({type(frame).__name__})") from None
    if not view.c_contiguous:
        raise bad(f"frame[{index}]", "not contiguous")
    return view.cast("B") if (view.format != "B" or view.ndim != 1) and view.nbytes else view


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def _parse_json_object(view: memoryview) -> dict:
    try:
        text = bytes(view).decode("utf-8")
        obj = json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise bad("header", f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise bad("header", f"not valid JSON ({str(exc)[:200]})") from None
    if not isinstance(obj, dict):
        raise bad("header", f"must be a JSON object, got {type(obj).__name__}")
    return obj


def _request_id(header: dict) -> str | None:
    """The header's id if it is a valid one, for addressing an error reply; else None."""
    try:
        return check_id(header.get("id"), "id")
    except ProtocolError:
        return None


def _decode_header(header: dict, buffer_views: list[memoryview], limits: ProtocolLimits) -> Message:
    # Version before type: a newer peer's message should say "upgrade", not "unknown type".
    version = header.get("protocol")
    if isinstance(version, bool) or not isinstance(version, int):
        raise bad("header.protocol", "missing or not an integer")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(ErrorCode.UNSUPPORTED_VERSION,
                            f"protocol version {version} is not supported; this side speaks "
                            f"version {PROTOCOL_VERSION}")
    kind = header.get("type")
    if not isinstance(kind, str):
        raise bad("header.type", "missing or not a string")
    if kind not in MESSAGE_TYPES:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {kind[:64]!r}")
    fields = Fields(header, "header")
    fields.int("protocol", lo=PROTOCOL_VERSION, hi=PROTOCOL_VERSION)
    fields.str("type", max_len=64)
    msg_id = fields.id("id", allow_empty=(kind == Error.TYPE))
    body = Fields(fields.object("body", default={}), f"{kind}.body")
    descriptors = fields.list("buffers", max_len=limits.max_buffers, default=[])
    fields.done()
    if len(descriptors) != len(buffer_views):
        raise bad("header.buffers", f"describes {len(descriptors)} buffers but "
                                    f"{len(buffer_views)} frames follow the header")
    arrays = _read_buffers(descriptors, buffer_views, limits)
    _check_buffer_set(kind, arrays)
    msg = DECODERS[kind](msg_id, body, arrays)
    body.done()
    return msg


def _read_buffers(descriptors: list, views: list[memoryview],
                  limits: ProtocolLimits) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for i, (desc, view) in enumerate(zip(descriptors, views)):
        where = f"header.buffers[{i}]"
        d = Fields(desc, where)
        name = d.str("name", min_len=1, max_len=64)
        dtype = d.str("dtype", min_len=1, max_len=8)
        shape = d.list("shape", min_len=1, max_len=limits.max_ndim)
        d.done()
        if dtype not in ALLOWED_DTYPES:
            raise bad(f"{where}.dtype", f"{dtype!r} is not one of {sorted(ALLOWED_DTYPES)}")
        shape = [check_int(n, f"{where}.shape", lo=0, hi=2**40) for n in shape]
        if name in arrays:
            raise bad(f"{where}.name", f"duplicate buffer name {name!r}")
        expected = math.prod(shape) * np.dtype(dtype).itemsize
        if expected != view.nbytes:
            raise bad(where, f"{name!r} {dtype}{shape} needs {expected} bytes, frame has {view.nbytes}")
        arrays[name] = np.frombuffer(view, dtype=dtype).reshape(shape)
    return arrays


def _check_buffer_set(kind: str, arrays: dict[str, np.ndarray]) -> None:
    specs = BUFFER_SPECS.get(kind, {})
    if set(arrays) != set(specs):
        raise bad(f"{kind}.buffers", f"expected buffers {sorted(specs)}, got {sorted(arrays)}")
    for name, (dtype, pattern) in specs.items():
        arr = arrays[name]
        if arr.dtype.str != dtype:
            raise bad(f"{kind}.buffers.{name}", f"dtype must be {dtype}, got {arr.dtype.str}")
        if arr.ndim != len(pattern) or any(p is not None and p != n
                                           for p, n in zip(pattern, arr.shape)):
            want = "(" + ", ".join("N" if p is None else str(p) for p in pattern) + ")"
            raise bad(f"{kind}.buffers.{name}", f"shape must be {want}, got {arr.shape}")
