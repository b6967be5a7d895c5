"""A small client for the Headlift backend: one DEALER socket, blocking calls that always time out,
and a non-blocking ``submit`` / ``poll_events`` pair for callers that must never block (Blender).

Blocking use (scripts, tests)::

    with HeadliftClient("tcp://127.0.0.1:5555") as client:
        print(client.hello(timeout_s=5).device)
        result = client.reconstruct(Path("me.jpg").read_bytes(), name="me",
                                    on_progress=lambda p: print(p.stage, p.fraction))

Animation (a head_id comes from a reconstruct's ``Result``)::

    verts = client.animate(result.head_id, {"jawOpen": 1.0}, {"head": [0, 0, 0.5]})  # (V, 3)
    frames = client.bake(result.head_id, {"jawOpen": curve_T}, {"head": rot_T3})      # (T, V, 3)
    rig = client.rig(result.head_id)                                                   # RigData

Non-blocking use (a Blender timer calls ``poll_events`` every 0.1 s)::

    request_id = client.submit(Reconstruct(image=data, name="me"))
    for event in client.poll_events():          # returns at once
        if event.id == request_id: ...          # Progress*, then Result or Error

    bake = make_bake(head_id, curves, pose_curves, frame_start=1)
    collector = BakeCollector(bake)             # checks order and count, keeps the frames
    request_id = client.submit(bake)
    for event in client.poll_events():          # each timer tick
        if event.id == request_id and collector.add(event):   # raises ProtocolError on error
            verts = collector.result()          # (T, V, 3): only now is the bake complete

Every request has a deadline. When it passes with no final answer, ``poll_events`` yields a
synthetic ``Error(code=backend_unreachable)`` for that id (and a started reconstruct is cancelled),
so a dead or missing backend always surfaces as an event instead of a hang. Not thread-safe: use
one client per thread.

Liveness (see ``liveness.py``): hello and ping are idempotent, so they are sent again every
``retry_interval_s`` until answered (the lazy-pirate pattern; a backend that restarts in the
meantime answers the retry). A reconstruct is not resent: when the connection it went out on
breaks (the backend died or restarted; ZMTP heartbeats notice a silent peer within about 4 s)
it ends at once with ``backend_unreachable`` instead of waiting for its deadline. The same holds
for animate, rig and bake; a bake's chunks received so far must then be thrown away
(``BakeCollector`` never hands out frames before a ``bake_done`` that counts exactly the frames
it received). Replies queue in this process without limit (see RECEIVE_HWM), so a caller that
polls rarely never loses its connection to its own heartbeat.

Remote backends: pass ``curve=CurveKeys.from_files(server_key, client_key_secret)``.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import zmq

from .errors import ErrorCode, ProtocolError
from .liveness import HEARTBEAT_IVL_MS, HEARTBEAT_TIMEOUT_MS, ConnectionWatch, CurveKeys
from .messages import (
    Ack, Animate, Bake, BakeChunk, BakeDone, Cancel, Drive, DriveResult, Error, Frame, Hello,
    Message, Ping, Pong, Progress, Reconstruct, Result, Rig, RigData, Shutdown,
)
from .protocol import DEFAULT_LIMITS, ProtocolLimits, decode, encode

DEFAULT_ADDRESS = "tcp://127.0.0.1:5555"
RECONSTRUCT_TIMEOUT_S = 600.0  # a CPU-only laptop may take minutes for a first reconstruct
BAKE_TIMEOUT_S = 600.0  # a bake may wait behind reconstructs in the backend's queue
DRIVE_TIMEOUT_S = 1800.0  # a 10-minute take tracked on a slow CPU, behind queued jobs
REQUEST_TIMEOUT_S = 10.0  # everything else is answered by the socket thread right away
RETRY_INTERVAL_S = 1.0  # hello/ping are sent again this often until answered
RETRIED_KINDS = frozenset({Hello.TYPE, Ping.TYPE})  # idempotent: a duplicate answer is dropped
# Queued jobs: cancelled when given up on.
JOB_KINDS = frozenset({Reconstruct.TYPE, Bake.TYPE, Drive.TYPE})
# Requests that end at once with backend_unreachable when their connection breaks (not resent:
# the backend that held them is gone). hello/ping are resent instead; cancel/shutdown just expire.
LOST_WITH_CONNECTION = JOB_KINDS | {Animate.TYPE, Rig.TYPE}
# No limit on replies queued in this process. With a limit, libzmq stops reading the connection
# once it is reached, and then its own heartbeat times out (3 s) and drops the connection: a
# caller busy for a few seconds during a bake would lose it. The backend's side is bounded; what
# queues here is at most the bake (or result) this client asked for.
RECEIVE_HWM = 0
INTERIM = (Progress, BakeChunk)  # answers that come before a request's final one


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
        self._socket.rcvhwm = RECEIVE_HWM
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

    def animate(self, head_id: str, expressions: Mapping[str, float],
                pose: Mapping[str, Sequence[float]], timeout_s: float = REQUEST_TIMEOUT_S
                ) -> np.ndarray:
        """The head posed once: (V, 3) float32 vertices in the head's topology (read-only view).

        expressions: {ARKit name: weight}; pose: {joint: (3,) axis-angle radians}. Names the
        head lacks, NaN/inf, |weight| > 2 or rotations longer than 2 pi raise
        ``ProtocolError(bad_message)`` naming them (invalid values before anything is sent);
        an unknown head_id raises ``unknown_head``, a head without a rig ``no_rig``.
        Served on the backend's fast path; keep at most one animate in flight per head (send
        the newest slider values when the previous answer arrives).
        """
        msg = Animate(head_id=head_id, expressions={k: float(v) for k, v in expressions.items()},
                      pose={k: [float(x) for x in v] for k, v in pose.items()})
        return self.request(msg, timeout_s).verts_m

    def bake(self, head_id: str, expressions: Mapping[str, np.ndarray],
             pose: Mapping[str, np.ndarray], frame_start: int = 1,
             progress: Callable[[Progress], None] | None = None,
             timeout_s: float = BAKE_TIMEOUT_S, frames: int | None = None) -> np.ndarray:
        """Per-frame geometry for T frames: (T, V, 3) float32, row k = scene frame frame_start+k.

        expressions[name]: (T,) weights; pose[joint]: (T, 3) axis-angle radians; all the same T
        (``frames`` gives T when both are empty: T frames of the rest pose). Blocks until the
        backend's ``bake_done``; ``progress`` gets its Progress messages. Raises ProtocolError
        on an error reply, on a bake that ends with a frame count that does not match what
        arrived, and ``backend_unreachable`` on timeout or a lost connection (the job is then
        cancelled). Nothing partial is ever returned.
        """
        msg = make_bake(head_id, expressions, pose, frame_start=frame_start, frames=frames)
        collector = BakeCollector(msg)
        request_id = self.submit(msg, timeout_s)
        batch: deque[Message] = deque()
        try:
            while True:
                batch.extend(self._receive(timeout_s))
                while batch:
                    event = batch.popleft()
                    if event.id != request_id:
                        self._events.append(event)
                    elif isinstance(event, Progress):
                        if progress is not None:
                            progress(event)
                    elif collector.add(event):
                        return collector.result()
        finally:
            self._events.extend(batch)  # what arrived after the answer belongs to poll_events
            if request_id in self._pending:  # left early (e.g. a bad chunk): stop the job
                del self._pending[request_id]
                self._cancel_quietly(request_id)

    def drive(self, video: bytes, name: str = "take.mp4", frames_fps: float = 0.0,
              on_progress: Callable[[Progress], None] | None = None,
              timeout_s: float = DRIVE_TIMEOUT_S) -> DriveResult:
        """Send a video file's bytes (or a .zip of frames, ``frames_fps`` their rate) and wait for
        the take's expression weights and joint rotations. The request must fit the server's
        ``max_message_bytes`` (hello). Raises ProtocolError: bad_video, no_face, cancelled, ..."""
        return self.request(Drive(video=video, name=name, frames_fps=frames_fps), timeout_s,
                            on_progress)

    def rig(self, head_id: str, timeout_s: float = REQUEST_TIMEOUT_S) -> RigData:
        """The head's whole rig (expression shapes, joints, skin weights) for "Export rig"."""
        return self.request(Rig(head_id=head_id), timeout_s)

    def cancel(self, request_id: str, timeout_s: float = REQUEST_TIMEOUT_S) -> Ack:
        """Ask the server to stop reconstruct or bake ``request_id``; ``ack.ok`` is False if it
        holds no such job. The job itself then ends with an ``Error(code=cancelled)`` event."""
        return self.request(Cancel(target=request_id), timeout_s)

    def shutdown(self, timeout_s: float = REQUEST_TIMEOUT_S) -> Ack:
        return self.request(Shutdown(), timeout_s)

    def request(self, msg: Message, timeout_s: float,
                on_progress: Callable[[Progress], None] | None = None) -> Message:
        """Send ``msg`` and block until its final answer. Progress goes to ``on_progress``;
        answers to other requests are kept for ``poll_events``. Raises ``ProtocolError`` for an
        error reply, and ``ProtocolError(backend_unreachable)`` when ``timeout_s`` passes."""
        request_id = self.submit(msg, timeout_s)
        batch: deque[Message] = deque()
        try:
            while True:
                batch.extend(self._receive(timeout_s))
                while batch:
                    event = batch.popleft()
                    if event.id != request_id:
                        self._events.append(event)
                    elif isinstance(event, Progress):
                        if on_progress is not None:
                            on_progress(event)
                    elif isinstance(event, BakeChunk):
                        continue  # bake() collects chunks; request() has no use for them
                    elif isinstance(event, Error):
                        raise event.to_exception()
                    else:
                        return event
        finally:
            # Replies to other requests that came in the same read as this answer: their
            # requests are no longer pending, so dropping them here would lose them for good.
            self._events.extend(batch)

    # --- non-blocking calls -----------------------------------------------------------------

    def submit(self, msg: Message, timeout_s: float | None = None) -> str:
        """Queue ``msg`` for sending and return its request id at once (never blocks).

        ``timeout_s``: how long until a final answer is due (default 600 s for reconstruct and
        bake, 10 s otherwise). Raises ``ProtocolError`` if ``msg`` itself is invalid.
        """
        if msg.id in self._pending:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"request id {msg.id} is already in flight")
        frames = encode(msg)
        if timeout_s is None:
            timeout_s = {Reconstruct.TYPE: RECONSTRUCT_TIMEOUT_S, Bake.TYPE: BAKE_TIMEOUT_S,
                         Drive.TYPE: DRIVE_TIMEOUT_S}.get(msg.TYPE, REQUEST_TIMEOUT_S)
        now = time.monotonic()
        self._pending[msg.id] = _Pending(msg.id, msg.TYPE, timeout_s, now + timeout_s, frames,
                                         frames)
        self._outbox.append(msg.id)
        self._flush()
        return msg.id

    def poll_events(self, timeout_s: float = 0.0) -> list[Message]:
        """Everything that arrived since the last call: Progress, Result, Error, Hello, Ack, Pong,
        Frame, RigData, and for a bake BakeChunk* then BakeDone (feed them to a BakeCollector).

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
        """The connection broke: jobs, animates and rig requests that went out on it will never
        be answered (a bake's chunks so far must be thrown away: no bake_done will come)."""
        lost = [p for p in self._pending.values()
                if p.kind in LOST_WITH_CONNECTION and p.frames is None]
        events: list[Message] = []
        for p in lost:
            del self._pending[p.request_id]
            if p.kind in JOB_KINDS:
                self._cancel_quietly(p.request_id)  # if the backend merely lost us, stop the job
            events.append(Error(id=p.request_id, code=ErrorCode.BACKEND_UNREACHABLE,
                                message=f"lost the connection to the backend at {self.address} "
                                        f"while it worked on this {p.kind} (the backend "
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
        if isinstance(msg, INTERIM):
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
            if p.frames is None and p.kind in JOB_KINDS:
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


def make_bake(head_id: str, expressions: Mapping[str, np.ndarray],
              pose: Mapping[str, np.ndarray], frame_start: int = 1,
              frames: int | None = None) -> Bake:
    """A Bake request from per-name curves: expressions[name] (T,), pose[joint] (T, 3).

    Raises ProtocolError(bad_message) when the curves disagree on T (or all are empty and
    ``frames`` is not given). Values are checked when the message is encoded (``submit``).
    """
    names, joints = list(expressions), list(pose)
    columns = [np.asarray(expressions[n], dtype=np.float32).reshape(-1) for n in names]
    rotations = [np.asarray(pose[j], dtype=np.float32) for j in joints]
    lengths = {len(c) for c in columns} | {len(r) for r in rotations}
    if frames is not None:
        lengths.add(int(frames))
    if len(lengths) != 1:
        raise ProtocolError(ErrorCode.BAD_MESSAGE,
                            "bake: every curve must cover the same frames, got lengths "
                            f"{sorted(lengths) or 'none (pass frames=T for a rest-pose bake)'}")
    (n_frames,) = lengths
    for j, r in zip(joints, rotations):
        if r.shape != (n_frames, 3):
            raise ProtocolError(ErrorCode.BAD_MESSAGE,
                                f"bake: pose[{j!r}] must be ({n_frames}, 3), got {r.shape}")
    expr = np.stack(columns, axis=1) if columns else np.zeros((n_frames, 0), np.float32)
    poses = np.stack(rotations, axis=1) if rotations else np.zeros((n_frames, 0, 3), np.float32)
    return Bake(head_id=head_id, expression_names=names, pose_joints=joints, expressions=expr,
                poses=poses, frame_start=int(frame_start))


class BakeCollector:
    """Collects one bake's answers and says when (and only when) the bake is complete.

    ``add(event)`` takes every event with the bake's id: BakeChunk (checked: the next frames in
    order, one vertex count), Progress (ignored), BakeDone (must count exactly the frames
    received and asked for) or Error (raised). It returns True once the bake is complete; then
    ``result()`` gives (T, V, 3). ``on_chunk(offset, verts (t, V, 3))`` is called per chunk,
    e.g. to write frames to a file as they come; ``keep=False`` then keeps none in memory.
    A collector that raised, or never saw its BakeDone, must be thrown away with its frames.
    """

    def __init__(self, request: Bake, on_chunk: Callable[[int, np.ndarray], None] | None = None,
                 keep: bool = True) -> None:
        self.request_id = request.id
        self.frame_start = request.frame_start
        self.frames = request.frames
        self.received = 0  # frames so far
        self.vertex_count: int | None = None
        self.done = False
        self.timings_s: dict[str, float] = {}
        self._on_chunk = on_chunk
        self._keep = keep
        self._chunks: list[np.ndarray] = []

    @property
    def fraction(self) -> float:
        return self.received / self.frames if self.frames else 0.0

    def add(self, event: Message) -> bool:
        if self.done:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "the bake is already complete")
        if isinstance(event, Error):
            raise event.to_exception()
        if isinstance(event, BakeChunk):
            self._add_chunk(event)
        elif isinstance(event, BakeDone):
            if event.frames != self.received or self.received != self.frames:
                raise ProtocolError(ErrorCode.INTERNAL,
                                    f"incomplete bake: asked for {self.frames} frames, received "
                                    f"{self.received}, the backend reported {event.frames}",
                                    request_id=self.request_id)
            self.timings_s = dict(event.timings_s)
            self.done = True
        elif not isinstance(event, Progress):
            raise ProtocolError(ErrorCode.BAD_MESSAGE,
                                f"unexpected {event.TYPE!r} answer to a bake",
                                request_id=self.request_id)
        return self.done

    def _add_chunk(self, chunk: BakeChunk) -> None:
        expected = self.frame_start + self.received
        t, n_verts = chunk.verts_m.shape[:2]
        if chunk.frame_start != expected or self.received + t > self.frames:
            raise ProtocolError(ErrorCode.INTERNAL,
                                f"bake chunk for frames {chunk.frame_start}..+{t} does not follow "
                                f"frame {expected - 1} (of {self.frames} asked for)",
                                request_id=self.request_id)
        if self.vertex_count not in (None, n_verts):
            raise ProtocolError(ErrorCode.INTERNAL, f"bake chunk has {n_verts} vertices, earlier "
                                                    f"ones {self.vertex_count}",
                                request_id=self.request_id)
        self.vertex_count = n_verts
        if self._on_chunk is not None:
            self._on_chunk(self.received, chunk.verts_m)
        if self._keep:
            self._chunks.append(chunk.verts_m)
        self.received += t

    def result(self) -> np.ndarray:
        """(T, V, 3) float32 of a complete bake (``keep=True``)."""
        if not self.done:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "the bake is not complete")
        if not self._keep:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "this collector kept no frames (keep=False)")
        return np.concatenate(self._chunks, axis=0)
