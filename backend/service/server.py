"""The ZeroMQ server: a ROUTER socket on loopback, owned by one thread that only does I/O.

    client DEALER ──▶ ROUTER (this thread) ──queue──▶ Worker thread: reconstruct, bake
                         ▲  │                             │
                         │  └──────queue──▶ FastLane thread: animate, rig
                         │                                │
                         └──── one inproc PAIR each ◀─────┘  progress, chunks, final replies

Hello, ping, cancel and shutdown are answered here at once, also while a job runs; reconstructs
and bakes go to the worker's bounded queue (full: ``busy``), animate and rig to the fast lane's.
Every reply is addressed to the identity of the client that asked. A bad message gets an error
reply and the server keeps serving.

Jobs are idempotent by (client, request id): a retry of a queued or running job attaches to it
(its progress and result answer both), a retry of a finished reconstruct gets the kept final
reply again (the last ``replay_finished`` of them); a retry of a finished bake gets its error
again, or, if it succeeded, is told that its chunks were streamed once (the last
``replay_finished_bakes``), instead of baking twice. With CURVE keys (``backend.service.auth``) every
connection is encrypted and only allowed client keys complete the handshake.

Slow consumers: the ROUTER runs with ROUTER_MANDATORY and a small send high-water mark, so a
reply a client cannot take yet is not dropped but held here, and the job's thread blocks on its
short inproc pipe until the client reads again (a bake waits; memory stays bounded). A client
that reads nothing for ``slow_client_s`` loses its job (cancelled); so does a client whose
connection is gone. Once a job is cancelled, its progress and chunks still waiting here are
dropped (only its final ``cancelled`` goes out), so a cancel works even while the client's
queue is full. Fast-lane answers to a client that does not read are dropped rather than held,
so one client never stalls another's sliders.
"""
from __future__ import annotations

import errno
import json
import queue
import signal
import time
import traceback
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import zmq

from backend.service.auth import CurveServer
from backend.service.config import ServerConfig
from backend.service.logline import log_event
from backend.service.registry import HeadRegistry
from backend.service.worker import PIPE_HWM, FastLane, Job, Worker
from shared.errors import ErrorCode, ProtocolError
from shared.messages import (
    PROTOCOL_VERSION,
    Ack,
    Animate,
    Bake,
    Cancel,
    Drive,
    Error,
    Hello,
    Message,
    Ping,
    Pong,
    Reconstruct,
    Rig,
    Shutdown,
)
from shared.protocol import ProtocolLimits, decode, encode

VERSION = "0.1"
POLL_MS = 200  # wake this often to notice a stop requested by a signal handler
HELD_RETRY_MS = 10  # while a reply waits for a slow client, try it again this often
# Replies queued per client before a send says "not now": with bake chunks of at most
# ServerConfig.bake_chunk_bytes (4 MiB) that bounds what one slow client holds here to 64 MiB.
ROUTER_SNDHWM = 16
# ZMTP heartbeats, answered by libzmq's I/O thread (no GIL): a peer silent this long is dropped.
HEARTBEAT_IVL_MS = 1000
HEARTBEAT_TIMEOUT_MS = 3000
CAPABILITIES = [Hello.TYPE, Ping.TYPE, Reconstruct.TYPE, Cancel.TYPE, Shutdown.TYPE,
                Animate.TYPE, Bake.TYPE, Rig.TYPE, Drive.TYPE]


@dataclass
class _Held:
    """A reply from a thread's pipe that its client could not take yet."""

    since: float  # time.monotonic() of the first try
    key: tuple[bytes, str]  # (identity, request id)
    kind: bytes
    frames: list


class Server:
    """``Server(config).bind()`` then ``serve_forever()``; ``request_stop()`` is signal-safe."""

    def __init__(self, config: ServerConfig = ServerConfig(),
                 context: zmq.Context | None = None) -> None:
        self.config = config
        self.limits = ProtocolLimits(max_message_bytes=config.max_message_bytes)
        self.registry = HeadRegistry(config.max_heads)
        self.endpoint: str | None = None
        self._context = context or zmq.Context.instance()
        self._router: zmq.Socket | None = None
        self._replies: zmq.Socket | None = None  # from the worker
        self._fast_replies: zmq.Socket | None = None  # from the fast lane
        self._worker: Worker | None = None
        self._fast_lane: FastLane | None = None
        self._held: dict[zmq.Socket, _Held] = {}  # pipe -> the reply that waits for its client
        self._abandoned: set[tuple[bytes, str]] = set()  # jobs whose slow client was given up
        self._muted: set[tuple[bytes, str]] = set()  # cancelled jobs: only their final goes out
        self._jobs: dict[tuple[bytes, str], Job] = {}  # (identity, request id) -> queued/running
        # (identity, request id) -> the final reply's frames, oldest first
        self._finished: OrderedDict[tuple[bytes, str], list[bytes]] = OrderedDict()
        # the same for bakes: what a retry is told (small, so many more are kept)
        self._finished_bakes: OrderedDict[tuple[bytes, str], list[bytes]] = OrderedDict()
        self._curve: CurveServer | None = None
        self._stop = False

    def bind(self) -> str:
        """Bind the ROUTER, start the worker; returns the real endpoint (port 0 resolved)."""
        router = self._context.socket(zmq.ROUTER)
        # ZeroMQ drops the connection of a peer that sends one frame above this, before we
        # ever see it; decode() checks the total of all frames against the same limit.
        router.setsockopt(zmq.MAXMSGSIZE, self.config.max_message_bytes)
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)  # "not now" instead of a silent drop
        router.sndhwm = ROUTER_SNDHWM
        router.linger = self.config.linger_ms
        router.heartbeat_ivl = HEARTBEAT_IVL_MS
        router.heartbeat_timeout = HEARTBEAT_TIMEOUT_MS
        if self.config.curve is not None:
            self._curve = CurveServer(self.config.curve, self._context)
            self._curve.secure(router)
        if self.config.bind.startswith("tcp://["):
            router.ipv6 = True
        router.bind(self.config.bind)
        self._router = router
        self.endpoint = router.getsockopt(zmq.LAST_ENDPOINT).decode()

        self._replies, endpoint = self._pipe("replies")
        self._worker = Worker(self._context, endpoint, self.config, self.registry)
        self._worker.start()
        self._fast_replies, endpoint = self._pipe("fast")
        self._fast_lane = FastLane(self._context, endpoint, self.config, self.registry)
        self._fast_lane.start()
        return self.endpoint

    def _pipe(self, name: str) -> tuple[zmq.Socket, str]:
        """The receiving end of a thread's inproc PAIR (bound here, before the thread connects)."""
        endpoint = f"inproc://headlift-{name}-{uuid.uuid4().hex}"
        pipe = self._context.socket(zmq.PAIR)
        pipe.linger = 0
        pipe.rcvhwm = PIPE_HWM
        pipe.bind(endpoint)
        return pipe, endpoint

    def request_stop(self) -> None:
        self._stop = True

    def serve_forever(self) -> None:
        """Serve until a shutdown message or ``request_stop()``; then stop cleanly."""
        assert self._router is not None, "call bind() first"
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        pipes = (self._replies, self._fast_replies)
        for pipe in pipes:
            poller.register(pipe, zmq.POLLIN)
        try:
            while not self._stop:
                for pipe in pipes:  # a pipe whose reply waits for its client is not read on
                    poller.modify(pipe, 0 if pipe in self._held else zmq.POLLIN)
                ready = dict(poller.poll(HELD_RETRY_MS if self._held else POLL_MS))
                for pipe in pipes:
                    if pipe in ready or pipe in self._held:
                        self._forward(pipe)
                if self._router in ready:
                    self._handle_requests()
        finally:
            self._close()

    # --- requests ---------------------------------------------------------------------------

    def _handle_requests(self) -> None:
        # Drain what is there, but let worker replies through between bursts.
        for _ in range(100):
            if self._stop or not self._router.poll(0, zmq.POLLIN):
                return
            frames = self._router.recv_multipart(copy=False)
            try:
                self._handle_one(frames)
            except Exception:  # a bug in one handler must not stop the server
                log_event("server_error", traceback=traceback.format_exc())
                self._reply(frames[0].bytes, Error(id="", code=ErrorCode.INTERNAL,
                                                   message="internal error in the backend "
                                                           "(see its log)"))

    def _handle_one(self, frames: list[zmq.Frame]) -> None:
        started = time.monotonic()
        identity, payload = frames[0].bytes, frames[1:]
        size = sum(len(f) for f in payload)
        try:
            msg = decode(payload, self.limits)
        except ProtocolError as exc:
            self._reply(identity, Error(id=exc.request_id or "", code=exc.code,
                                        message=exc.message[:4000]))
            self._log(identity, exc.request_id or "", "?", size, exc.code.value, started)
            return
        handler = {Hello: self._on_hello, Ping: self._on_ping, Reconstruct: self._on_job,
                   Bake: self._on_job, Drive: self._on_job, Animate: self._on_fast,
                   Rig: self._on_fast,
                   Cancel: self._on_cancel, Shutdown: self._on_shutdown}.get(type(msg))
        if handler is None:
            reply: Message | None = Error(id=msg.id, code=ErrorCode.BAD_MESSAGE,
                                          message=f"{msg.TYPE!r} is not a request the backend serves")
        else:
            reply = handler(identity, msg, size)
        if reply is not None:  # None: the worker answers (and logs) later
            self._reply(identity, reply)
            outcome = reply.code.value if isinstance(reply, Error) else "ok"
            self._log(identity, msg.id, msg.TYPE, size, outcome, started)

    def _on_hello(self, identity: bytes, msg: Hello, size: int) -> Message:
        if PROTOCOL_VERSION not in msg.versions:
            return Error(id=msg.id, code=ErrorCode.UNSUPPORTED_VERSION,
                         message=f"client speaks protocol {msg.versions}, this backend speaks "
                                 f"{PROTOCOL_VERSION}")
        return Hello(id=msg.id, versions=[PROTOCOL_VERSION], agent=f"headlift-backend {VERSION}",
                     device=self._worker.device, capabilities=list(CAPABILITIES),
                     max_message_bytes=self.config.max_message_bytes)

    def _on_ping(self, identity: bytes, msg: Ping, size: int) -> Message:
        return Pong(id=msg.id)

    def _on_job(self, identity: bytes, msg: Reconstruct | Bake, size: int) -> Message | None:
        key = (identity, msg.id)
        if key in self._jobs:  # a retry: the running job answers it
            self._log(identity, msg.id, msg.TYPE, size, "attached", time.monotonic())
            return None
        finished = self._finished.get(key) or self._finished_bakes.get(key)
        if finished is not None:  # a retry whose first answer was lost: answer again, no rerun
            # Logged first, so a log read as soon as the answer arrives already shows it.
            self._log(identity, msg.id, msg.TYPE, size, "replayed", time.monotonic())
            self._send(identity, finished)
            return None
        job = Job(identity=identity, request=msg, size_bytes=size)
        self._jobs[key] = job
        try:
            self._worker.jobs.put_nowait(job)
        except queue.Full:
            del self._jobs[key]
            return Error(id=msg.id, code=ErrorCode.BUSY,
                         message=f"the backend is busy ({self.config.max_queued_jobs} job(s) "
                                 f"already waiting); try again when one finishes")
        return None

    def _on_fast(self, identity: bytes, msg: Animate | Rig, size: int) -> Message | None:
        try:
            self._fast_lane.requests.put_nowait((identity, msg, size, time.monotonic()))
        except queue.Full:
            return Error(id=msg.id, code=ErrorCode.BUSY,
                         message=f"the backend is busy ({self.config.max_fast_requests} animate/"
                                 f"rig requests already waiting); send the next one when an "
                                 f"answer arrives")
        return None

    def _on_cancel(self, identity: bytes, msg: Cancel, size: int) -> Message:
        # Only the client that submitted a job can cancel it: the key includes its identity.
        job = self._jobs.get((identity, msg.target))
        if job is None:
            return Ack(id=msg.id, ok=False,
                       message=f"no queued or running job {msg.target} (already finished?)")
        job.cancel.set()
        self._muted.add((identity, msg.target))
        return Ack(id=msg.id, ok=True, message="cancelling; the job will answer 'cancelled'")

    def _on_shutdown(self, identity: bytes, msg: Shutdown, size: int) -> Message:
        self._stop = True
        return Ack(id=msg.id, ok=True, message="shutting down")

    # --- replies ----------------------------------------------------------------------------

    def _reply(self, identity: bytes, msg: Message) -> None:
        if self._send(identity, encode(msg)) is _FULL:
            log_event("reply_dropped", client=identity.hex(), id=msg.id, type=msg.TYPE,
                      reason="the client has too many unread replies")

    def _send(self, identity: bytes, frames: list) -> str:
        """Hand a reply to ZeroMQ: _SENT, _FULL (the client's queue is full; try later) or
        _GONE (no connection with that identity: the client left or reconnected)."""
        try:
            self._router.send_multipart([identity, *frames], flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return _FULL
        except zmq.ZMQError as exc:
            if exc.errno != errno.EHOSTUNREACH:
                raise
            return _GONE
        return _SENT

    def _forward(self, pipe: zmq.Socket) -> None:
        """Pass a thread's replies to their clients, in order; stop at one a client cannot take."""
        held = self._held.pop(pipe, None)
        if held is not None and not self._deliver(pipe, held):
            return
        while pipe.poll(0, zmq.POLLIN):
            kind, identity, request_id, *frames = pipe.recv_multipart(copy=False)
            key = (identity.bytes, request_id.bytes.decode())
            if kind.bytes == b"final":
                self._finish(key, frames)
            if not self._deliver(pipe, _Held(time.monotonic(), key, kind.bytes, frames)):
                return

    def _deliver(self, pipe: zmq.Socket, reply: _Held) -> bool:
        """Send ``reply`` or hold it (True: the pipe may be read on)."""
        final = reply.kind == b"final"
        if reply.key in self._abandoned:
            if final:
                self._abandoned.discard(reply.key)
            return True
        if reply.key in self._muted:
            if not final:
                return True  # progress or a chunk of a cancelled job: nobody wants it
            self._muted.discard(reply.key)
        outcome = self._send(reply.key[0], reply.frames)
        if outcome is _SENT:
            return True
        if outcome is _GONE:
            if not final:
                self._abandon(reply, "the client's connection is gone")
            return True
        if reply.kind == b"reply":  # fast lane: never make other clients wait for this one
            log_event("reply_dropped", client=reply.key[0].hex(), id=reply.key[1],
                      reason="the client has too many unread replies")
            return True
        if time.monotonic() - reply.since > self.config.slow_client_s:
            self._abandon(reply, f"the client read nothing for {self.config.slow_client_s:g} s")
            return True
        self._held[pipe] = reply
        return False

    def _abandon(self, reply: _Held, why: str) -> None:
        """Nobody will read this job's replies: cancel it, drop what it still sends."""
        job = self._jobs.get(reply.key)
        if job is not None:
            job.cancel.set()
        if reply.kind != b"final":
            self._abandoned.add(reply.key)
            self._muted.discard(reply.key)
        log_event("client_gone", client=reply.key[0].hex(), id=reply.key[1], reason=why,
                  note="job cancelled, its replies dropped")

    def _finish(self, key: tuple[bytes, str], frames: list[zmq.Frame]) -> None:
        job = self._jobs.pop(key, None)
        if isinstance(getattr(job, "request", None), Bake):
            if not _is_error(frames):
                # Its chunks went out once and are not kept: a retry is told, not re-baked.
                frames = encode(Error(id=key[1], code=ErrorCode.BAD_MESSAGE,
                                      message=f"bake {key[1]} already finished and its frames "
                                              f"were sent once; send a new request id to bake "
                                              f"again"))
            _keep(self._finished_bakes, key, frames, self.config.replay_finished_bakes)
        else:
            _keep(self._finished, key, frames, self.config.replay_finished)

    def _log(self, identity: bytes, request_id: str, kind: str, size: int, outcome: str,
             started: float) -> None:
        log_event("request", client=identity.hex(), id=request_id, type=kind, bytes=size,
                  outcome=outcome, seconds=round(time.monotonic() - started, 4))

    # --- shutdown ---------------------------------------------------------------------------

    def _forward_replies(self) -> None:
        for pipe in (self._replies, self._fast_replies):
            self._forward(pipe)

    def _close(self) -> None:
        """Cancel every job, let the worker answer them, then close the sockets."""
        for job in self._jobs.values():
            job.cancel.set()
        deadline = time.monotonic() + self.config.shutdown_grace_s
        worker = self._worker
        if self._fast_lane is not None:
            try:
                self._fast_lane.requests.put_nowait(None)
            except queue.Full:
                pass  # a daemon thread: it ends with the process
        if worker is not None:
            while worker.is_alive() and time.monotonic() < deadline:
                try:
                    worker.jobs.put(None, timeout=0.05)
                    break
                except queue.Full:
                    self._forward_replies()  # queued jobs finish fast once cancelled
            while worker.is_alive() and time.monotonic() < deadline:
                worker.join(timeout=0.05)
                self._forward_replies()
            self._forward_replies()
            if worker.is_alive():
                log_event("shutdown", note="a job did not stop in time; exiting without it")
        self._replies.close()
        self._fast_replies.close()
        self._router.close()  # linger delivers the last replies (shutdown ack, cancellations)
        if self._curve is not None:
            self._curve.stop()
        log_event("stopped", address=self.endpoint)


_SENT, _FULL, _GONE = "sent", "full", "gone"


def _is_error(frames: list) -> bool:
    """Whether encoded reply frames are an ``error`` (the header is our own, well-formed JSON)."""
    return json.loads(bytes(getattr(frames[0], "buffer", frames[0]))).get("type") == Error.TYPE


def _keep(kept: OrderedDict, key: tuple[bytes, str], frames: list, capacity: int) -> None:
    """Remember a final reply for retries, dropping the oldest beyond ``capacity``."""
    if capacity == 0:
        return
    kept[key] = [bytes(getattr(f, "buffer", f)) for f in frames]
    while len(kept) > capacity:
        kept.popitem(last=False)


def run(config: ServerConfig) -> None:
    """Bind, print the ready line, serve until shutdown. Used by ``python -m backend``."""
    server = Server(config)
    endpoint = server.bind()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: server.request_stop())
    log_event("ready", address=endpoint, max_message_bytes=config.max_message_bytes)
    # Tests and the add-on wait for this exact line on stdout.
    print(f"headlift backend ready at {endpoint}", flush=True)
    server.serve_forever()
