"""One dataclass per message kind of protocol v1. ``protocol.encode`` / ``protocol.decode`` are the
only doors between these and the wire; see ``docs/architecture.md`` for the contract.

Who sends what (C = client, S = server; replies carry the ``id`` of the request they answer):

    hello      C->S  versions the client speaks       S->C  version, device, capabilities, limits
    ping       C->S  liveness probe                   S->C  pong
    reconstruct C->S  encoded image file + name + options
    progress   S->C  zero or more per reconstruct (same id)
    result     S->C  the head (same id as the reconstruct)
    error      S->C  instead of any reply; ``id`` is "" when the request's id was unreadable
    cancel     C->S  ``target`` = id of a reconstruct or bake   S->C  ack; the target then ends in
                     error "cancelled"
    shutdown   C->S                                    S->C  ack, then the server exits
    animate    C->S  head_id + control values          S->C  frame (one posed mesh), fast path
    bake       C->S  head_id + control curves (T frames)
    bake_chunk S->C  consecutive frames of a bake, in frame order (same id as the bake)
    bake_done  S->C  the bake's final answer: how many frames were sent (same id)
    rig        C->S  head_id                           S->C  rig_data (shapes, joints, weights)
    drive      C->S  a video file's bytes (or a zip of frames), queued like a reconstruct
    drive_result S->C  per-frame expression weights + joint rotations of the take (same id as
                     the drive, after zero or more progress); cancel ends it in error "cancelled"

A bake is trusted only when ``bake_done`` arrives and its ``frames`` equals the number of frames
received in chunks; an error (or silence) instead means nothing of it may be kept.
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
    """The scaled-orthographic camera that saw the portrait (see ``backend.render.camera.OrthoCamera``).

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
    expression_names: list[str] = field(default_factory=list)  # ARKit names this head supports
    joint_names: list[str] = field(default_factory=list)  # pose joints (shared.controls.POSE_JOINTS)


@dataclass(kw_only=True)
class Animate(Message):
    """Pose a head once (a slider moved); answered by a ``Frame`` on the server's fast path.

    expressions: {ARKit name: weight}, weights in [-2, 2] (1 = the full shape); names this head
                 does not support are refused. Missing names weigh 0.
    pose:        {joint: [x, y, z]} axis-angle radians (shared.controls conventions), each vector
                 at most MAX_POSE_ANGLE_RAD long. Missing joints stay at rest.
    """

    TYPE: ClassVar[str] = "animate"
    head_id: str
    expressions: dict[str, float] = field(default_factory=dict)
    pose: dict[str, list[float]] = field(default_factory=dict)


@dataclass(kw_only=True)
class Frame(Message):
    """The answer to ``animate``: verts_m (V, 3) float32, the posed mesh in the head's topology."""

    TYPE: ClassVar[str] = "frame"
    verts_m: np.ndarray


@dataclass(kw_only=True)
class Bake(Message):
    """Per-frame geometry for T frames, queued like a reconstruct (cancellable, idempotent by id).

    expression_names: the E names whose curves ``expressions`` holds (unique; a subset of the
                      head's ``expression_names``); pose_joints: the J joints ``poses`` holds.
    expressions:      (T, E) float32 weights; poses: (T, J, 3) float32 axis-angle (J may be 0).
    frame_start:      the scene frame of row 0; chunks name their first frame in the same count.
    1 <= T <= shared.controls.MAX_BAKE_FRAMES.
    """

    TYPE: ClassVar[str] = "bake"
    head_id: str
    expression_names: list[str]
    pose_joints: list[str]
    expressions: np.ndarray
    poses: np.ndarray
    frame_start: int = 1

    @property
    def frames(self) -> int:
        return int(np.shape(self.expressions)[0])


@dataclass(kw_only=True)
class BakeChunk(Message):
    """Consecutive frames of a bake: verts_m (t, V, 3) float32 for frames frame_start..+t-1."""

    TYPE: ClassVar[str] = "bake_chunk"
    frame_start: int
    verts_m: np.ndarray


@dataclass(kw_only=True)
class BakeDone(Message):
    """A bake finished: ``frames`` frames were sent in chunks before this message."""

    TYPE: ClassVar[str] = "bake_done"
    frames: int
    timings_s: dict[str, float] = field(default_factory=dict)


@dataclass(kw_only=True)
class Rig(Message):
    """Ask for a head's whole rig (for "Export rig"); answered by ``RigData``."""

    TYPE: ClassVar[str] = "rig"
    head_id: str


@dataclass(kw_only=True)
class RigData(Message):
    """A head's rig, enough to animate without the backend (shape keys + an armature).

    expression_names:  E ARKit names; expression_deltas (E, V, 3) float32 metres at weight 1
    joint_names:       J joints, parents first; joint_parents: J ints, -1 for the root
    joint_rest_m:      (J, 3) float32 joint positions; skin_weights (V, J) float32, rows sum to 1
    Posed vertex = LBS(rest + sum_e w_e * delta_e) with the joint rotations (see backend.rig.model).
    """

    TYPE: ClassVar[str] = "rig_data"
    expression_names: list[str]
    joint_names: list[str]
    joint_parents: list[int]
    expression_deltas: np.ndarray
    joint_rest_m: np.ndarray
    skin_weights: np.ndarray


@dataclass(kw_only=True)
class Drive(Message):
    """Solve a video of a face for expression weights and head rotation, queued like a reconstruct.

    video:      the file's bytes as read from disk: any video ffmpeg reads (.mp4, .mov, ...), or a
                .zip of image frames (a folder of frames, zipped). One ``|u1`` buffer "video"; the
                whole request must fit the server's ``max_message_bytes`` (hello; 64 MiB by
                default, about 10 minutes of 720p H.264), and the take its length cap (10 min).
    name:       the file's name; its suffix tells a .zip of frames from a video.
    frames_fps: the rate of a zip of frames (0: 30 fps); videos carry their own.
    """

    TYPE: ClassVar[str] = "drive"
    video: bytes
    name: str = "take.mp4"
    frames_fps: float = 0.0


@dataclass(kw_only=True)
class DriveResult(Message):
    """The answer to ``drive``, at the video's own frame rate ``fps``.

    weights: (T, E) float32 in [0, 1] for the ARKit ``expression_names``; poses: (T, J, 3) float32
    axis-angle (canonical frame, relative to the parent joint) for ``joint_names``; missing:
    inclusive [first, last] frame ranges where no face was found (bridged from the neighbours);
    warnings: what the take could not drive and why (e.g. shoulders out of frame: no collar/root).
    1 <= T <= shared.controls.MAX_DRIVE_FRAMES.
    """

    TYPE: ClassVar[str] = "drive_result"
    fps: float
    expression_names: list[str]
    joint_names: list[str]
    weights: np.ndarray
    poses: np.ndarray
    missing: list[list[int]] = field(default_factory=list)
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
    """Ask the server to stop the reconstruct, bake or drive whose request id is ``target`` (queued or
    running; a bake stops at its next chunk)."""

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
    for cls in (Hello, Ping, Pong, Reconstruct, Progress, Result, Error, Cancel, Ack, Shutdown,
                Animate, Frame, Bake, BakeChunk, BakeDone, Rig, RigData, Drive, DriveResult)
}
