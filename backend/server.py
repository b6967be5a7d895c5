"""The ZeroMQ server: a ROUTER socket on loopback, owned by one thread that only does I/O.

    client DEALER ──▶ ROUTER (this thread) ──queue──▶ Worker thread (decode, pipeline, encode)
                         ▲                                │
                         └──────── inproc PAIR ◀──────────┘  progress / final replies

Hello, ping, cancel and shutdown are answered here at once, also while a job runs; reconstructs
go to the worker's bounded queue (full: ``busy``). Every reply is addressed to the identity of the
client that asked. A bad message gets an error reply and the server keeps serving.

Reconstructs are idempotent by (client, request id): a retry of a queued or running job attaches
to it (its progress and result answer both), a retry of a finished one gets the kept final reply
again (the last ``replay_finished`` of them). With CURVE keys (``backend.auth``) every connection
is encrypted and only allowed client keys complete the handshake.
"""
from __future__ import annotations

import queue
import signal
from collections import OrderedDict
import time
import traceback
import uuid

import zmq

from shared.errors import ErrorCode, ProtocolError
from shared.messages import (
    PROTOCOL_VERSION, Ack, Cancel, Error, Hello, Message, Ping, Pong, Reconstruct, Shutdown,
)
from shared.protocol import ProtocolLimits, decode, encode

from .auth import CurveServer
from .config import ServerConfig
from .logline import log_event
from .registry import HeadRegistry
from .worker import Job, Worker

VERSION = "0.1"
POLL_MS = 200  # wake this often to notice a stop requested by a signal handler
# ZMTP heartbeats, answered by libzmq's I/O thread (no GIL): a peer silent this long is dropped.
HEARTBEAT_IVL_MS = 1000
HEARTBEAT_TIMEOUT_MS = 3000
CAPABILITIES = [Hello.TYPE, Ping.TYPE, Reconstruct.TYPE, Cancel.TYPE, Shutdown.TYPE]


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
        self._replies: zmq.Socket | None = None
        self._worker: Worker | None = None
        self._jobs: dict[tuple[bytes, str], Job] = {}  # (identity, request id) -> queued/running
        # (identity, request id) -> the final reply's frames, oldest first
        self._finished: OrderedDict[tuple[bytes, str], list[bytes]] = OrderedDict()
        self._curve: CurveServer | None = None
        self._stop = False

    def bind(self) -> str:
        """Bind the ROUTER, start the worker; returns the real endpoint (port 0 resolved)."""
        router = self._context.socket(zmq.ROUTER)
        # ZeroMQ drops the connection of a peer that sends one frame above this, before we
        # ever see it; decode() checks the total of all frames against the same limit.
        router.setsockopt(zmq.MAXMSGSIZE, self.config.max_message_bytes)
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

        reply_endpoint = f"inproc://headlift-replies-{uuid.uuid4().hex}"
        self._replies = self._context.socket(zmq.PAIR)
        self._replies.linger = 0
        self._replies.bind(reply_endpoint)
        self._worker = Worker(self._context, reply_endpoint, self.config, self.registry)
        self._worker.start()
        return self.endpoint

    def request_stop(self) -> None:
        self._stop = True

    def serve_forever(self) -> None:
        """Serve until a shutdown message or ``request_stop()``; then stop cleanly."""
        assert self._router is not None, "call bind() first"
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._replies, zmq.POLLIN)
        try:
            while not self._stop:
                ready = dict(poller.poll(POLL_MS))
                if self._replies in ready:
                    self._forward_replies()
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
        handler = {Hello: self._on_hello, Ping: self._on_ping, Reconstruct: self._on_reconstruct,
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

    def _on_reconstruct(self, identity: bytes, msg: Reconstruct, size: int) -> Message | None:
        key = (identity, msg.id)
        if key in self._jobs:  # a retry: the running job answers it
            self._log(identity, msg.id, msg.TYPE, size, "attached", time.monotonic())
            return None
        if key in self._finished:  # a retry whose first answer was lost: answer again, no rerun
            self._router.send_multipart([identity, *self._finished[key]], copy=False)
            self._log(identity, msg.id, msg.TYPE, size, "replayed", time.monotonic())
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

    def _on_cancel(self, identity: bytes, msg: Cancel, size: int) -> Message:
        # Only the client that submitted a job can cancel it: the key includes its identity.
        job = self._jobs.get((identity, msg.target))
        if job is None:
            return Ack(id=msg.id, ok=False,
                       message=f"no queued or running job {msg.target} (already finished?)")
        job.cancel.set()
        return Ack(id=msg.id, ok=True, message="cancelling; the job will answer 'cancelled'")

    def _on_shutdown(self, identity: bytes, msg: Shutdown, size: int) -> Message:
        self._stop = True
        return Ack(id=msg.id, ok=True, message="shutting down")

    # --- replies ----------------------------------------------------------------------------

    def _reply(self, identity: bytes, msg: Message) -> None:
        # ROUTER drops messages to identities that are gone; a vanished client costs nothing.
        self._router.send_multipart([identity, *encode(msg)], copy=False)

    def _forward_replies(self) -> None:
        while self._replies.poll(0, zmq.POLLIN):
            kind, identity, request_id, *frames = self._replies.recv_multipart(copy=False)
            if kind.bytes == b"final":
                key = (identity.bytes, request_id.bytes.decode())
                self._jobs.pop(key, None)
                self._keep_finished(key, frames)
            self._router.send_multipart([identity, *frames], copy=False)

    def _keep_finished(self, key: tuple[bytes, str], frames: list[zmq.Frame]) -> None:
        if self.config.replay_finished == 0:
            return
        self._finished[key] = [f.bytes for f in frames]
        while len(self._finished) > self.config.replay_finished:
            self._finished.popitem(last=False)

    def _log(self, identity: bytes, request_id: str, kind: str, size: int, outcome: str,
             started: float) -> None:
        log_event("request", client=identity.hex(), id=request_id, type=kind, bytes=size,
                  outcome=outcome, seconds=round(time.monotonic() - started, 4))

    # --- shutdown ---------------------------------------------------------------------------

    def _close(self) -> None:
        """Cancel every job, let the worker answer them, then close the sockets."""
        for job in self._jobs.values():
            job.cancel.set()
        deadline = time.monotonic() + self.config.shutdown_grace_s
        worker = self._worker
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
        self._router.close()  # linger delivers the last replies (shutdown ack, cancellations)
        if self._curve is not None:
            self._curve.stop()
        log_event("stopped", address=self.endpoint)


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
