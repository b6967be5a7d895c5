"""A small client for the Headlift backend: one DEALER socket, blocking calls that always time out,
and a non-blocking ``submit`` / ``poll_events`` pair for callers that must never block (Blender).

Blocking use (scripts, tests)::

    with HeadliftClient("tcp://127.0.0.1:5555") as client:
        print(client.hello(timeout_s=5).device)
        result = client.reconstruct(Path("me.jpg").read_bytes(), name="me",
                                    on_progress=lambda p: print(p.stage, p.fraction))

Non-blocking use (a Blender timer calls ``poll_events`` every 0.1 s)::

    request_id = client.submit(Reconstruct(image=data, name="me"))
    for event in client.poll_events():          # returns at once
        if event.id == request_id: ...          # Progress*, then Result or Error

Every request has a deadline. When it passes with no final answer, ``poll_events`` yields a
synthetic ``Error(code=backend_unreachable)`` for that id (and a started reconstruct is cancelled),
so a dead or missing backend always surfaces as an event instead of a hang. Not thread-safe: use
one client per thread.

Liveness (see ``liveness.py``): hello and ping are idempotent, so they are sent again every
``retry_interval_s`` until answered (the lazy-pirate pattern; a backend that restarts in the
meantime answers the retry). A reconstruct is not resent: when the connection it went out on
breaks (the backend died or restarted; ZMTP heartbeats notice a silent peer within about 4 s)
it ends at once with ``backend_unreachable`` instead of waiting for its deadline.

Remote backends: pass ``curve=CurveKeys.from_files(server_key, client_key_secret)``.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

import zmq

from .errors import ErrorCode, ProtocolError
from .liveness import HEARTBEAT_IVL_MS, HEARTBEAT_TIMEOUT_MS, ConnectionWatch, CurveKeys
from .messages import (
    Ack, Cancel, Error, Hello, Message, Ping, Pong, Progress, Reconstruct, Result, Shutdown,
)
from .protocol import DEFAULT_LIMITS, ProtocolLimits, decode, encode

DEFAULT_ADDRESS = "tcp://127.0.0.1:5555"
RECONSTRUCT_TIMEOUT_S = 600.0  # a CPU-only laptop may take minutes for a first reconstruct
REQUEST_TIMEOUT_S = 10.0  # everything else is answered by the socket thread right away
RETRY_INTERVAL_S = 1.0  # hello/ping are sent again this often until answered
RETRIED_KINDS = frozenset({Hello.TYPE, Ping.TYPE})  # idempotent: a duplicate answer is dropped


@dataclass
class _Pending:
    request_id: str
    kind: str
    timeout_s: float
    deadline: float  # time.monotonic() seconds
    frames: list | None  # still to be sent (None once handed to ZeroMQ)
    encoded: list  # the request's frames, kept for lazy-pirate resends of hello/ping
    retry_at: float | None = None  # when to send again (hello/ping only), time.monotonic() s
    last_progress_at: float | None = None  # when the latest progress arrived, time.monotonic() s


class HeadliftClient:
    """Client of one backend at ``address`` (``tcp://127.0.0.1:5555`` by default)."""

    def __init__(self, address: str = DEFAULT_ADDRESS, *, limits: ProtocolLimits = DEFAULT_LIMITS,
                 context: zmq.Context | None = None, curve: CurveKeys | None = None,
                 retry_interval_s: float = RETRY_INTERVAL_S) -> None:
        self.address = address
        self.limits = limits
        self.retry_interval_s = retry_interval_s
        self._socket = (context or zmq.Context.instance()).socket(zmq.DEALER)
        self._socket.linger = 0  # closing Blender must not wait for unsent requests
        self._socket.heartbeat_ivl = HEARTBEAT_IVL_MS
        self._socket.heartbeat_timeout = HEARTBEAT_TIMEOUT_MS
        if curve is not None:
            curve.apply(self._socket)
        # Queue nothing while disconnected: a request to a backend that is not running yet should
        # time out, not be delivered minutes later when one starts.
        self._socket.setsockopt(zmq.IMMEDIATE, 1)
        if address.startswith("tcp://["):
            self._socket.ipv6 = True  # ZeroMQ only resolves IPv6 endpoints when told to
        self._watch = ConnectionWatch(self._socket)  # before connect: sees the first handshake
        self._socket.connect(address)
        self._pending: dict[str, _Pending] = {}
        self._outbox: deque[str] = deque()  # request ids whose frames wait for a connection
        self._events: deque[Message] = deque()  # received but not yet handed to the caller

    # --- blocking calls ---------------------------------------------------------------------

    def hello(self, timeout_s: float = REQUEST_TIMEOUT_S, agent: str = "headlift-client") -> Hello:
        """Handshake; returns the server's Hello (version, device, capabilities, limits)."""
        return self.request(Hello(agent=agent), timeout_s)

    def ping(self, timeout_s: float = REQUEST_TIMEOUT_S) -> Pong:
        return self.request(Ping(), timeout_s)

    def reconstruct(self, image_bytes: bytes, name: str = "head", options: dict | None = None,
                    on_progress: Callable[[Progress], None] | None = None,
                    timeout_s: float = RECONSTRUCT_TIMEOUT_S) -> Result:
        """Send an encoded image file, wait for the head. ``timeout_s`` bounds the whole job;
        on timeout the job is cancelled and ``ProtocolError(backend_unreachable)`` raised."""
        msg = Reconstruct(image=image_bytes, name=name, options=dict(options or {}))
        return self.request(msg, timeout_s, on_progress)

    def cancel(self, request_id: str, timeout_s: float = REQUEST_TIMEOUT_S) -> Ack:
        """Ask the server to stop reconstruct ``request_id``; ``ack.ok`` is False if it holds no
        such job. The job itself then ends with an ``Error(code=cancelled)`` event."""
        return self.request(Cancel(target=request_id), timeout_s)

    def shutdown(self, timeout_s: float = REQUEST_TIMEOUT_S) -> Ack:
        return self.request(Shutdown(), timeout_s)

    def request(self, msg: Message, timeout_s: float,
                on_progress: Callable[[Progress], None] | None = None) -> Message:
        """Send ``msg`` and block until its final answer. Progress goes to ``on_progress``;
        answers to other requests are kept for ``poll_events``. Raises ``ProtocolError`` for an
        error reply, and ``ProtocolError(backend_unreachable)`` when ``timeout_s`` passes."""
        request_id = self.submit(msg, timeout_s)
        while True:
            for event in self._receive(timeout_s):
                if event.id != request_id:
                    self._events.append(event)
                elif isinstance(event, Progress):
                    if on_progress is not None:
                        on_progress(event)
                elif isinstance(event, Error):
                    raise event.to_exception()
                else:
                    return event

    # --- non-blocking calls -----------------------------------------------------------------

    def submit(self, msg: Message, timeout_s: float | None = None) -> str:
        """Queue ``msg`` for sending and return its request id at once (never blocks).

        ``timeout_s``: how long until a final answer is due (default 600 s for reconstruct,
        10 s otherwise). Raises ``ProtocolError`` if ``msg`` itself is invalid.
        """
        if msg.id in self._pending:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"request id {msg.id} is already in flight")
        frames = encode(msg)
        if timeout_s is None:
            timeout_s = RECONSTRUCT_TIMEOUT_S if isinstance(msg, Reconstruct) else REQUEST_TIMEOUT_S
        now = time.monotonic()
        self._pending[msg.id] = _Pending(msg.id, msg.TYPE, timeout_s, now + timeout_s, frames,
                                         frames)
        self._outbox.append(msg.id)
        self._flush()
        return msg.id

    def poll_events(self, timeout_s: float = 0.0) -> list[Message]:
        """Everything that arrived since the last call: Progress, Result, Error, Hello, Ack, Pong.

        Waits at most ``timeout_s`` for the first event (0: return at once). Replies to requests
        this client no longer waits for (timed out) are dropped.
        """
        events = list(self._events)
        self._events.clear()
        events += self._receive(0.0 if events else timeout_s)
        return events

    @property
    def pending(self) -> list[str]:
        """Ids of requests still waiting for their final answer."""
        return list(self._pending)

    def close(self) -> None:
        self._watch.close()
        self._socket.close(linger=0)

    def __enter__(self) -> "HeadliftClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals --------------------------------------------------------------------------

    def _flush(self) -> None:
        while self._outbox:
            pending = self._pending.get(self._outbox[0])
            if pending is None or pending.frames is None:
                self._outbox.popleft()
                continue
            try:
                self._socket.send_multipart(pending.frames, flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:  # not connected (yet); IMMEDIATE keeps ZeroMQ from queueing it
                return
            pending.frames = None
            if pending.kind in RETRIED_KINDS:
                pending.retry_at = time.monotonic() + self.retry_interval_s
            self._outbox.popleft()

    def _resend_due(self, now: float) -> None:
        """Lazy pirate: hello/ping unanswered for ``retry_interval_s`` go out again (same id)."""
        for p in self._pending.values():
            if p.retry_at is not None and p.retry_at <= now and p.frames is None:
                p.frames, p.retry_at = p.encoded, None
                self._outbox.append(p.request_id)

    def _receive(self, timeout_s: float) -> list[Message]:
        """Send what can be sent, wait up to ``timeout_s`` (never past the earliest deadline) for
        input, and return what arrived plus synthetic errors for requests past their deadline."""
        now = time.monotonic()
        wait_until = now + max(timeout_s, 0.0)
        if self._pending:
            wait_until = min(wait_until, min(p.deadline for p in self._pending.values()))
        events: list[Message] = []
        while True:
            self._resend_due(time.monotonic())
            self._flush()
            flags = zmq.POLLIN | (zmq.POLLOUT if self._outbox else 0)
            wake = min([wait_until] + [p.retry_at for p in self._pending.values() if p.retry_at])
            wait_ms = max(0, int((wake - time.monotonic()) * 1000))
            poller = zmq.Poller()
            poller.register(self._socket, flags)
            poller.register(self._watch.socket, zmq.POLLIN)
            ready = dict(poller.poll(wait_ms))
            if ready.get(self._socket, 0) & zmq.POLLIN or self._watch.socket in ready:
                # Replies first: what arrived before a disconnect still counts.
                while self._socket.poll(0, zmq.POLLIN):
                    event = self._read_one()
                    if event is not None:
                        events.append(event)
                if self._watch.take_lost():
                    events += self._lose_sent_jobs()
            if events or time.monotonic() >= wait_until:
                break
        return events + self._expire(time.monotonic())

    def _lose_sent_jobs(self) -> list[Message]:
        """The connection broke: reconstructs that went out on it will never be answered."""
        lost = [p for p in self._pending.values() if p.kind == Reconstruct.TYPE and p.frames is None]
        events: list[Message] = []
        for p in lost:
            del self._pending[p.request_id]
            self._cancel_quietly(p.request_id)  # if the backend merely lost us, stop the job
            events.append(Error(id=p.request_id, code=ErrorCode.BACKEND_UNREACHABLE,
                                message=f"lost the connection to the backend at {self.address} "
                                        f"while it worked on this reconstruct (the backend "
                                        f"stopped, restarted or stopped answering heartbeats)"))
        return events

    def _read_one(self) -> Message | None:
        frames = self._socket.recv_multipart(copy=False)
        try:
            msg = decode(frames, self.limits)
        except ProtocolError as exc:
            if exc.request_id not in self._pending:
                return None
            msg = Error(id=exc.request_id, code=exc.code,
                        message=f"unreadable reply from the backend: {exc.message}")
        if msg.id == "" and isinstance(msg, Error):
            return msg  # the server could not tell which request it answers; surface it anyway
        if msg.id not in self._pending:
            return None  # an answer to a request we gave up on
        pending = self._pending[msg.id]
        if isinstance(msg, Progress):
            pending.last_progress_at = time.monotonic()
            return msg
        del self._pending[msg.id]
        if isinstance(msg, Result) and pending.last_progress_at is not None:
            # From the pipeline's last progress ("done") to a decoded result here: the server's
            # encode, the wire and our decode, i.e. what moving the head costs.
            msg.timings_s["transfer"] = time.monotonic() - pending.last_progress_at
        return msg

    def _expire(self, now: float) -> list[Message]:
        expired = [p for p in self._pending.values() if p.deadline <= now]
        events: list[Message] = []
        for p in expired:
            del self._pending[p.request_id]
            if p.frames is None and p.kind == Reconstruct.TYPE:
                self._cancel_quietly(p.request_id)
            what = ("no answer from" if p.frames is None else "could not connect to")
            events.append(Error(id=p.request_id, code=ErrorCode.BACKEND_UNREACHABLE,
                                message=f"{what} the backend at {self.address} within "
                                        f"{p.timeout_s:g} s ({p.kind} request)"
                                        f"{self._watch.handshake_hint()}"))
        return events

    def _cancel_quietly(self, target: str) -> None:
        # Best effort, untracked: a backend that is gone cannot answer anyway.
        try:
            self._socket.send_multipart(encode(Cancel(target=target)), flags=zmq.NOBLOCK,
                                        copy=False)
        except zmq.Again:
            pass
