"""One dataclass per message kind of protocol v1. ``protocol.encode`` / ``protocol.decode`` are the
only doors between these and the wire; see ``docs/architecture.md`` for the contract.

Who sends what (C = client, S = server; replies carry the ``id`` of the request they answer):

    hello      C->S  versions the client speaks       S->C  version, device, capabilities, limits
    ping       C->S  liveness probe                   S->C  pong
    reconstruct C->S  encoded image file + name + options
    progress   S->C  zero or more per reconstruct (same id)
    result     S->C  the head (same id as the reconstruct)
    error      S->C  instead of any reply; ``id`` is "" when the request's id was unreadable
    cancel     C->S  ``target`` = id of a reconstruct   S->C  ack; the target then ends in error "cancelled"
    shutdown   C->S                                    S->C  ack, then the server exits
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import ClassVar, Union

import numpy as np

from .errors import ErrorCode, ProtocolError

PROTOCOL_VERSION = 1

# Option values a reconstruct request may carry (flat; nested objects are refused).
OptionValue = Union[bool, int, float, str, None]


def new_id() -> str:
    """A fresh request id: uuid4 as 32 hex characters."""
    return uuid.uuid4().hex


@dataclass(kw_only=True)
class Message:
    """Base of every message. ``id`` identifies a request; replies repeat it."""

    TYPE: ClassVar[str] = ""
    id: str = field(default_factory=new_id)


@dataclass(kw_only=True)
class Hello(Message):
    """Handshake. The client lists the versions it speaks; the server answers with its own.

    ``max_message_bytes``: the largest message the server accepts (0 in a client's hello).
    """

    TYPE: ClassVar[str] = "hello"
    versions: list[int] = field(default_factory=lambda: [PROTOCOL_VERSION])
    agent: str = ""  # free text, e.g. "headlift-blender 0.1" or "headlift-backend 0.1"
    device: str = ""  # server only: "cpu", "cuda:0 (NVIDIA H100)", or "probing" while starting
    capabilities: list[str] = field(default_factory=list)  # server only: request types it serves
    max_message_bytes: int = 0


@dataclass(kw_only=True)
class Ping(Message):
    """Liveness probe; answered with a ``Pong`` of the same id, even while a job runs."""

    TYPE: ClassVar[str] = "ping"


@dataclass(kw_only=True)
class Pong(Message):
    TYPE: ClassVar[str] = "pong"


@dataclass(kw_only=True)
class Reconstruct(Message):
    """Make a head from one portrait.

    image:   the encoded image file (JPEG, PNG, WebP, ...) exactly as read from disk; the backend
             decodes it. Sent as one ``|u1`` 1-D buffer named "image".
    name:    1..128 characters, becomes the result's name (the Blender object name).
    options: flat {name: bool|int|float|str|null}, mapped onto the pipeline's config by the backend.
    """

    TYPE: ClassVar[str] = "reconstruct"
    image: bytes
    name: str = "head"
    options: dict[str, OptionValue] = field(default_factory=dict)


@dataclass(kw_only=True)
class Progress(Message):
    """How far a reconstruct has come. ``fraction`` in [0, 1] (overall, as the pipeline reports it)."""

    TYPE: ClassVar[str] = "progress"
    stage: str
    fraction: float
    message: str = ""


@dataclass(kw_only=True)
class CameraInfo:
    """The scaled-orthographic camera that saw the portrait (see ``backend.reconstruction.OrthoCamera``).

    Canonical point p (metres) lands on pixel (u, v) = pixels_per_metre * (R @ p)[:2] + principal_px.
    """

    R_cam_from_canonical: np.ndarray  # (3, 3) float64 rotation
    pixels_per_metre: float
    principal_px: np.ndarray  # (2,) float64, pixel of the canonical origin
    image_size: tuple[int, int]  # (width, height) pixels


@dataclass(kw_only=True)
class Result(Message):
    """A reconstructed head. Arrays decoded from the wire are views of the received frames
    (zero-copy, often read-only); ``np.array(x)`` them before editing in place.

    verts_m:     (V, 3) float32, metres, canonical frame (+Z up, face toward -Y)
    faces:       (F, 3) int32, indices into verts_m, counter-clockwise seen from outside
    loop_uvs:    (F, 3, 2) float32, per-corner UVs, origin bottom-left (Blender's convention)
    texture:     (H, W, 3) uint8 RGB, row 0 is the top of the image
    landmarks_m: (L, 3) float32, face landmarks in the canonical frame (L = 478 for the face mesh)
    head_id:     the backend's handle for this head, for later animation requests
    """

    TYPE: ClassVar[str] = "result"
    name: str
    head_id: str
    verts_m: np.ndarray
    faces: np.ndarray
    loop_uvs: np.ndarray
    texture: np.ndarray
    landmarks_m: np.ndarray
    camera: CameraInfo
    timings_s: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class Error(Message):
    """The request ``id`` failed. ``id`` is "" when the failing request's id could not be read."""

    TYPE: ClassVar[str] = "error"
    code: ErrorCode
    message: str

    def to_exception(self) -> ProtocolError:
        return ProtocolError(self.code, self.message, request_id=self.id or None)


@dataclass(kw_only=True)
class Cancel(Message):
    """Ask the server to stop the reconstruct whose request id is ``target`` (queued or running)."""

    TYPE: ClassVar[str] = "cancel"
    target: str


@dataclass(kw_only=True)
class Ack(Message):
    """Plain answer to ``cancel`` and ``shutdown``. ``ok`` false: nothing to do (e.g. job not found)."""

    TYPE: ClassVar[str] = "ack"
    ok: bool = True
    message: str = ""


@dataclass(kw_only=True)
class Shutdown(Message):
    """Ask the server to stop: it answers ``ack``, cancels queued and running jobs, and exits."""

    TYPE: ClassVar[str] = "shutdown"


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls
    for cls in (Hello, Ping, Pong, Reconstruct, Progress, Result, Error, Cancel, Ack, Shutdown)
}
