"""The job threads. ``Worker`` runs queued jobs (reconstruct: decode the image, run the pipeline;
bake: pose the head frame by frame and stream chunks); ``FastLane`` answers animate and rig
requests on a thread of its own, so a slider never waits behind a running job. Both hand encoded
replies back to the socket thread over their own inproc PAIR socket (ZeroMQ sockets must not be
shared between threads, so these threads never touch the ROUTER).

Messages on a PAIR, thread -> socket thread: ``[kind, client identity, request id, *frames]``
with kind ``b"progress"`` (forward only: progress, bake chunks), ``b"final"`` (forward and forget
the job) or ``b"reply"`` (forward; fast-lane answers, no job to forget).
"""
from __future__ import annotations

import dataclasses
import importlib
import itertools
import math
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable

import numpy as np
import zmq

from backend.animation import pose as animation
from backend.errors import BadRequestError, CancelledError, error_code_for
from backend.reconstruct.imagefile import decode_image
from backend.reconstruct.result import Reconstruction
from backend.service.config import ServerConfig
from backend.service.logline import log_event
from backend.service.registry import HeadRegistry
from shared.errors import ErrorCode, ProtocolError
from shared.messages import (
    Animate,
    Bake,
    BakeChunk,
    BakeDone,
    CameraInfo,
    Drive,
    Error,
    Frame,
    Message,
    Progress,
    Reconstruct,
    Result,
    Rig,
    RigData,
    new_id,
)
from shared.protocol import encode

PIPELINE_MODULE = "backend.reconstruct.pipeline"
# Replies a thread may have in its inproc pipe before its send blocks. Small, so a client that
# reads slowly holds the bake back (memory stays bounded) instead of piling chunks up here.
PIPE_HWM = 4


def reply_pipe(context: zmq.Context, endpoint: str) -> zmq.Socket:
    """The sending end of a thread's inproc PAIR to the socket thread."""
    socket = context.socket(zmq.PAIR)
    socket.linger = 0
    socket.sndhwm = PIPE_HWM
    socket.connect(endpoint)
    return socket


@dataclass
class JobLog:
    """What a job adds to its ``request`` log line: seconds per stage and fields of its own."""

    stages_s: dict[str, float]
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class Job:
    """One queued request (reconstruct, bake or drive) on its way through the queue."""

    identity: bytes  # ROUTER identity of the client that asked; replies go only there
    request: Reconstruct | Bake | Drive
    size_bytes: int
    cancel: threading.Event = field(default_factory=threading.Event)
    queued_at: float = field(default_factory=time.monotonic)


class JobQueue:
    """The worker's bounded queue: bakes before reconstructs, each kind in arrival order.

    A bake takes about a second and a reconstruct a minute; first come, first served would make
    every client's bake wait for every reconstruct submitted before it (8 clients: the first one
    gets its bake only after all 8 heads). ``put_nowait`` raises ``queue.Full`` past ``maxsize``;
    ``None`` (stop) goes behind everything, so queued jobs still answer (cancelled) first.
    """

    def __init__(self, maxsize: int) -> None:
        self._queue: queue.PriorityQueue[tuple[int, int, Job | None]] = queue.PriorityQueue(
            maxsize)
        self._seq = itertools.count()

    @staticmethod
    def _rank(job: Job | None) -> int:
        if job is None:
            return 2
        return 0 if isinstance(job.request, Bake) else 1

    def put_nowait(self, job: Job | None) -> None:
        self._queue.put_nowait((self._rank(job), next(self._seq), job))

    def put(self, job: Job | None, timeout: float | None = None) -> None:
        self._queue.put((self._rank(job), next(self._seq), job), timeout=timeout)

    def get(self) -> Job | None:
        return self._queue.get()[2]


class FastLane(threading.Thread):
    """Answers animate (a Frame) and rig (RigData) requests in arrival order, beside the worker.

    ``requests`` holds ``(identity, message, size_bytes, received_at)``; the socket thread fills
    it with ``put_nowait`` (full: busy) and ``None`` stops the thread. Posing a head is numpy and
    torch work that mostly releases the GIL, but a running reconstruct's native stages (marching
    cubes, UV atlas) hold the GIL for seconds, and then this thread waits too.
    """

    def __init__(self, context: zmq.Context, reply_endpoint: str, config: ServerConfig,
                 registry: HeadRegistry) -> None:
        super().__init__(name="headlift-fast-lane", daemon=True)
        self.requests: queue.Queue[tuple[bytes, Message, int, float] | None] = queue.Queue(
            maxsize=config.max_fast_requests)
        self._context = context
        self._reply_endpoint = reply_endpoint
        self._registry = registry

    def run(self) -> None:
        socket = reply_pipe(self._context, self._reply_endpoint)
        try:
            while (item := self.requests.get()) is not None:
                identity, msg, size, received_at = item
                started = time.monotonic()
                try:
                    frames = encode(self.answer(msg))
                    outcome = "ok"
                except Exception as exc:  # every failure is an error reply, never a dead thread
                    code = error_code_for(exc)
                    outcome = code.value
                    frames = encode(error_reply(msg.id, exc, code))
                socket.send_multipart([b"reply", identity, msg.id.encode(), *frames], copy=False)
                log_event("request", client=identity.hex(), id=msg.id, type=msg.TYPE, bytes=size,
                          outcome=outcome, seconds=round(time.monotonic() - received_at, 4),
                          stages={"queue_wait": round(started - received_at, 4),
                                  "compute": round(time.monotonic() - started, 4)})
        finally:
            socket.close()

    def answer(self, msg: Message) -> Message:
        head = self._registry.get(msg.head_id)
        if isinstance(msg, Animate):
            return Frame(id=msg.id, verts_m=animation.animate(head, msg.expressions, msg.pose))
        if isinstance(msg, Rig):
            return to_rig_data(msg.id, animation.rig_of(head))
        raise BadRequestError(f"{msg.TYPE!r} is not served on the fast lane")


def to_rig_data(request_id: str, rig) -> RigData:
    """The wire message for a HeadRig (arrays passed through; ``encode`` casts them)."""
    return RigData(id=request_id, expression_names=list(rig.expression_names),
                   joint_names=list(rig.joint_names),
                   joint_parents=[int(p) for p in rig.joint_parents],
                   expression_deltas=rig.expression_deltas, joint_rest_m=rig.joint_rest_m,
                   skin_weights=rig.skin_weights)


class Worker(threading.Thread):
    """Runs jobs (reconstruct, bake, drive) one at a time: bakes first, the rest in arrival order.

    ``jobs`` is the bounded queue the socket thread fills (``put_nowait``; full means busy;
    bakes go first, see ``JobQueue``); ``None`` in it stops the thread. ``device`` is "probing"
    until torch has been imported. Each job is a ``compute`` step run by ``_serve``.
    """

    def __init__(self, context: zmq.Context, reply_endpoint: str, config: ServerConfig,
                 registry: HeadRegistry) -> None:
        super().__init__(name="headlift-worker", daemon=True)
        self.jobs = JobQueue(maxsize=config.max_queued_jobs)
        self.device = "probing"
        self._context = context
        self._reply_endpoint = reply_endpoint
        self._config = config
        self._registry = registry
        self._pipeline: ModuleType | None = None
        self._socket: zmq.Socket | None = None
        self._send_lock = threading.Lock()  # in case the pipeline reports progress from a thread

    def run(self) -> None:
        self._socket = reply_pipe(self._context, self._reply_endpoint)
        try:
            self._warm_up()
            while (job := self.jobs.get()) is not None:
                compute = {Bake: self._bake, Drive: self._drive}.get(type(job.request),
                                                                     self._reconstruct)
                try:
                    self._serve(job, compute)
                except Exception:  # a bug here must not take the job thread down with it
                    log_event("worker_error", id=job.request.id, traceback=traceback.format_exc())
                    self._send(b"final", job, encode(Error(
                        id=job.request.id, code=ErrorCode.INTERNAL,
                        message="internal error in the backend's job thread (see its log)")))
        finally:
            self._socket.close()

    # Heavy imports happen here, after the server is ready, so hello is answered at once.
    def _warm_up(self) -> None:
        try:
            self.device = probe_device()
        except Exception as exc:  # a broken CUDA install must not stop CPU work
            self.device = f"cpu (GPU probe failed: {type(exc).__name__})"
        log_event("device", device=self.device)
        try:
            self._load_pipeline()
        except Exception as exc:  # reported again, per job, when a reconstruct needs it
            log_event("pipeline_unavailable", error=f"{type(exc).__name__}: {exc}")

    def _load_pipeline(self) -> ModuleType:
        if self._pipeline is None:
            t0 = time.monotonic()
            self._pipeline = importlib.import_module(PIPELINE_MODULE)
            log_event("pipeline_loaded", seconds=round(time.monotonic() - t0, 3))
        return self._pipeline

    def _serve(self, job: Job, compute: Callable[[Job, JobLog], list]) -> None:
        """What every job shares: refuse a job cancelled while queued, run ``compute``, answer once
        (its frames, or the error its exception maps to), then log one ``request`` line.

        ``compute(job, log)`` returns the encoded final reply; it may stream progress meanwhile,
        and fills ``log`` as it goes so that a failed job still logs how far it came.
        """
        request = job.request
        log = JobLog(stages_s={"queue_wait": time.monotonic() - job.queued_at})
        try:
            if job.cancel.is_set():
                raise CancelledError("the job was cancelled before it started")
            frames, outcome = compute(job, log), "ok"
        except Exception as exc:
            code = error_code_for(exc)
            frames, outcome = encode(error_reply(request.id, exc, code)), code.value
        self._send(b"final", job, frames)
        log_event("request", client=job.identity.hex(), id=request.id, type=request.TYPE,
                  bytes=job.size_bytes, outcome=outcome, **log.fields,
                  seconds=round(time.monotonic() - job.queued_at, 3),
                  stages={k: round(v, 3) for k, v in log.stages_s.items()})

    def _reconstruct(self, job: Job, log: JobLog) -> list:
        """Decode the portrait, run the pipeline, keep the head: one result."""
        request: Reconstruct = job.request
        log.fields["warnings"] = []
        t0 = time.monotonic()
        image = decode_image(request.image, self._config.image_limits)
        log.stages_s["decode_image"] = time.monotonic() - t0
        try:
            pipeline = self._load_pipeline()
        except Exception as exc:
            raise RuntimeError(f"the reconstruction pipeline could not be loaded "
                               f"({type(exc).__name__}: {exc})") from exc
        config = build_config(pipeline.ReconstructConfig(), request.options)
        head = pipeline.reconstruct(image, config=config, name=request.name,
                                    progress=self._progress_reporter(job),
                                    should_cancel=job.cancel.is_set)
        t0 = time.monotonic()
        result = to_result(request.id, new_id(), head, {**log.stages_s})
        frames = encode(result)  # validates: a NaN vertex is a pipeline bug, caught here
        self._registry.put(result.head_id, head)
        log.stages_s["encode"] = time.monotonic() - t0
        log.stages_s.update({f"pipeline.{k}": v for k, v in head.timings_s.items()})
        log.fields["warnings"] = list(head.warnings)
        return frames

    def _bake(self, job: Job, log: JobLog) -> list:
        """Pose the head chunk by chunk and stream each chunk; bake_done last, or one error.

        A cancel is honoured between chunks. Whatever ends a bake early ends it with an error
        (or, if the process dies, with nothing): never with a bake_done, which the client needs
        (with the right frame count) before it keeps any frame.
        """
        request: Bake = job.request
        stages = log.stages_s
        log.fields.update(frames=request.frames, frames_sent=0)
        t0 = time.monotonic()
        head = self._registry.get(request.head_id)
        rig = animation.rig_of(head)
        expressions, poses = animation.curve_arrays(
            rig, request.expression_names, request.pose_joints, request.expressions,
            request.poses)
        per_chunk = animation.frames_per_chunk(len(head.verts_m), self._config.bake_chunk_bytes)
        progress = self._progress_reporter(job)
        stages.update(pose=0.0, send=0.0)
        chunks = animation.bake_chunks(head, expressions, poses, per_chunk, job.cancel.is_set)
        sent = 0
        t_pose = time.monotonic()
        for offset, verts in chunks:
            t_send = time.monotonic()
            stages["pose"] += t_send - t_pose
            self._send(b"progress", job, encode(BakeChunk(
                id=request.id, frame_start=request.frame_start + offset, verts_m=verts)))
            sent += len(verts)
            log.fields["frames_sent"] = sent
            progress("bake", sent / request.frames)
            t_pose = time.monotonic()
            stages["send"] += t_pose - t_send
        stages["total"] = time.monotonic() - t0
        return encode(BakeDone(id=request.id, frames=sent, timings_s=dict(stages)))

    def _drive(self, job: Job, log: JobLog) -> list:
        """Track and solve a driving video (backend/animation/drive.py): progress while tracking, then one
        drive_result. A cancel is honoured every 30 frames of tracking."""
        from backend.animation import drive

        request: Drive = job.request
        take = drive.drive_request(request.video, request.name, request.frames_fps,
                                   progress=self._progress_reporter(job),
                                   should_cancel=job.cancel.is_set)
        return encode(drive.to_drive_result(request.id, take))

    def _progress_reporter(self, job: Job):
        """``progress(stage, fraction)`` for the pipeline: throttled, never raises into it."""
        last = {"stage": None, "at": -math.inf}
        interval = self._config.progress_interval_s

        def progress(stage: str, fraction: float) -> None:
            now = time.monotonic()
            stage = (str(stage).strip() or "working")[:64]
            if stage == last["stage"] and now - last["at"] < interval:
                return
            try:
                fraction = min(max(float(fraction), 0.0), 1.0)
                msg = Progress(id=job.request.id, stage=stage, fraction=fraction)
                self._send(b"progress", job, encode(msg))
            except (ProtocolError, TypeError, ValueError):
                return  # a malformed progress report must not break the job
            last["stage"], last["at"] = stage, now

        return progress

    def _send(self, kind: bytes, job: Job, frames: list) -> None:
        with self._send_lock:
            self._socket.send_multipart(
                [kind, job.identity, job.request.id.encode(), *frames], copy=False)


def probe_device() -> str:
    """"cuda:0 (<GPU name>)" when torch sees a CUDA GPU, else "cpu". For reporting only."""
    try:
        import torch
    except ImportError:
        return "cpu (torch not installed)"
    if torch.cuda.is_available():
        return f"cuda:0 ({torch.cuda.get_device_name(0)})"[:128]
    return "cpu"


def error_reply(request_id: str, exc: BaseException, code: ErrorCode) -> Error:
    """The error message for ``exc``; unexpected exceptions are logged with their traceback."""
    if code is ErrorCode.INTERNAL:
        log_event("internal_error", id=request_id, traceback=traceback.format_exc())
        message = f"internal error in the backend: {type(exc).__name__}: {exc}"
    else:
        message = str(exc) or (type(exc).__doc__ or code.value).strip()
    # Exception texts may carry \r or escape codes, which the protocol refuses.
    message = "".join(c if c.isprintable() or c == "\n" else " " for c in message)
    return Error(id=request_id, code=code, message=message[:4000])


def build_config(default: Any, options: dict[str, Any]) -> Any:
    """``default`` (a dataclass instance) with the client's options applied by field name.

    Only scalar fields can be set, with a value of the field's own type (an int is fine for a
    float). Anything else raises BadRequestError naming the option.
    """
    settable = {f.name for f in dataclasses.fields(default) if not f.name.startswith("_")}
    changes: dict[str, Any] = {}
    for key, value in options.items():
        if key not in settable:
            raise BadRequestError(f"unknown option {key!r}; known options: {sorted(settable)}")
        current = getattr(default, key)
        if isinstance(current, bool):
            ok = isinstance(value, bool)
        elif isinstance(current, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(current, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        elif isinstance(current, str):
            ok = isinstance(value, str)
        else:
            raise BadRequestError(f"option {key!r} cannot be set by a client")
        if not ok:
            raise BadRequestError(f"option {key!r} must be of type {type(current).__name__}, "
                                  f"got {type(value).__name__}")
        changes[key] = value
    try:
        return dataclasses.replace(default, **changes)
    except (TypeError, ValueError) as exc:
        raise BadRequestError(f"invalid options: {exc}") from None


def to_result(request_id: str, head_id: str, head: Reconstruction,
              server_timings_s: dict[str, float]) -> Result:
    """The wire message for a finished head (arrays are passed through; ``encode`` casts them)."""
    cam = head.camera
    camera = CameraInfo(R_cam_from_canonical=np.asarray(cam.R_cam_from_canonical, np.float64),
                        pixels_per_metre=float(cam.pixels_per_metre),
                        principal_px=np.asarray(cam.principal_px, np.float64),
                        image_size=(int(cam.image_size[0]), int(cam.image_size[1])))
    rig = getattr(head, "rig", None)
    # Timings and warnings are informative: trim them to what the protocol allows rather than
    # fail a finished head over a long stage name.
    timings = {str(k)[:64]: float(v) for k, v in {**server_timings_s, **head.timings_s}.items()
               if math.isfinite(float(v)) and float(v) >= 0}
    return Result(id=request_id, name=_one_line(head.name, 128) or "head", head_id=head_id,
                  verts_m=head.verts_m, faces=head.faces, loop_uvs=head.loop_uvs,
                  texture=head.texture, landmarks_m=head.landmarks_m, camera=camera,
                  timings_s=dict(list(timings.items())[:64]),
                  warnings=[_one_line(w, 1000) for w in head.warnings][:64],
                  expression_names=list(rig.expression_names) if rig is not None else [],
                  joint_names=list(rig.joint_names) if rig is not None else [])


def _one_line(text: object, max_len: int) -> str:
    """Whitespace collapsed to single spaces, unprintable characters dropped, cut to ``max_len``."""
    words = " ".join(str(text).split())
    return "".join(c for c in words if c.isprintable())[:max_len]
