"""The job thread: decodes the image, runs the pipeline, and hands encoded replies back to the
socket thread over an inproc PAIR socket (ZeroMQ sockets must not be shared between threads, so
this thread never touches the ROUTER).

Messages on the PAIR, worker -> socket thread: ``[kind, client identity, request id, *frames]``
with kind ``b"progress"`` (forward only) or ``b"final"`` (forward and forget the job).
"""
from __future__ import annotations

import dataclasses
import importlib
import math
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import zmq

from shared.errors import ErrorCode, ProtocolError
from shared.messages import CameraInfo, Error, Progress, Reconstruct, Result, new_id
from shared.protocol import encode

from .config import ServerConfig
from .errors import BadRequestError, CancelledError, error_code_for
from .imagefile import decode_image
from .logline import log_event
from .reconstruction import Reconstruction
from .registry import HeadRegistry

PIPELINE_MODULE = "backend.pipeline"


@dataclass
class Job:
    """One reconstruct request on its way through the queue."""

    identity: bytes  # ROUTER identity of the client that asked; replies go only there
    request: Reconstruct
    size_bytes: int
    cancel: threading.Event = field(default_factory=threading.Event)
    queued_at: float = field(default_factory=time.monotonic)


class Worker(threading.Thread):
    """Runs reconstruct jobs one at a time, in arrival order.

    ``jobs`` is the bounded queue the socket thread fills (``put_nowait``; full means busy);
    ``None`` in it stops the thread. ``device`` is "probing" until torch has been imported.
    """

    def __init__(self, context: zmq.Context, reply_endpoint: str, config: ServerConfig,
                 registry: HeadRegistry) -> None:
        super().__init__(name="headlift-worker", daemon=True)
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=config.max_queued_jobs)
        self.device = "probing"
        self._context = context
        self._reply_endpoint = reply_endpoint
        self._config = config
        self._registry = registry
        self._pipeline: ModuleType | None = None
        self._socket: zmq.Socket | None = None
        self._send_lock = threading.Lock()  # in case the pipeline reports progress from a thread

    def run(self) -> None:
        self._socket = self._context.socket(zmq.PAIR)
        self._socket.linger = 0
        self._socket.connect(self._reply_endpoint)
        try:
            self._warm_up()
            while (job := self.jobs.get()) is not None:
                try:
                    self._run(job)
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

    def _run(self, job: Job) -> None:
        request = job.request
        started = time.monotonic()
        stages = {"queue_wait": started - job.queued_at}
        warnings: list[str] = []
        try:
            if job.cancel.is_set():
                raise CancelledError("the job was cancelled before it started")
            t0 = time.monotonic()
            image = decode_image(request.image, self._config.image_limits)
            stages["decode_image"] = time.monotonic() - t0
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
            result = to_result(request.id, new_id(), head, {**stages})
            frames = encode(result)  # validates: a NaN vertex is a pipeline bug, caught here
            self._registry.put(result.head_id, head)
            stages["encode"] = time.monotonic() - t0
            stages.update({f"pipeline.{k}": v for k, v in head.timings_s.items()})
            warnings = list(head.warnings)
            outcome = "ok"
        except Exception as exc:
            code = error_code_for(exc)
            outcome = code.value
            frames = encode(error_reply(request.id, exc, code))
        self._send(b"final", job, frames)
        log_event("request", client=job.identity.hex(), id=request.id, type=request.TYPE,
                  bytes=job.size_bytes, outcome=outcome,
                  seconds=round(time.monotonic() - job.queued_at, 3),
                  stages={k: round(v, 3) for k, v in stages.items()}, warnings=warnings)

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
    # Timings and warnings are informative: trim them to what the protocol allows rather than
    # fail a finished head over a long stage name.
    timings = {str(k)[:64]: float(v) for k, v in {**server_timings_s, **head.timings_s}.items()
               if math.isfinite(float(v)) and float(v) >= 0}
    return Result(id=request_id, name=_one_line(head.name, 128) or "head", head_id=head_id,
                  verts_m=head.verts_m, faces=head.faces, loop_uvs=head.loop_uvs,
                  texture=head.texture, landmarks_m=head.landmarks_m, camera=camera,
                  timings_s=dict(list(timings.items())[:64]),
                  warnings=[_one_line(w, 1000) for w in head.warnings][:64])


def _one_line(text: object, max_len: int) -> str:
    """Whitespace collapsed to single spaces, unprintable characters dropped, cut to ``max_len``."""
    words = " ".join(str(text).split())
    return "".join(c for c in words if c.isprintable())[:max_len]
