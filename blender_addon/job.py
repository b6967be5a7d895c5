"""Long requests (reconstruct here; bake and rig in anim_jobs.py), driven by polling: the same object
serves the modal operator (a timer calls ``poll``) and background mode (a loop calls ``poll``). It
never blocks and always ends.

Sequence: hello (short deadline: a missing backend is reported in seconds) -> request ->
progress* -> final reply | error. A backend that dies or restarts mid-job breaks the connection, which
the client turns into an error within seconds (heartbeats, see ``shared/liveness.py``); a ping
every few seconds also catches a backend that is connected but no longer answers.
"""
from __future__ import annotations

import time

from .imp_head import HeadData
from .shared import client, messages
from .shared.errors import ErrorCode, ProtocolError
from .shared.liveness import CurveKeys

AGENT = "headlift-blender"
PING_EVERY_S = 5.0
# Dead, restarted or frozen backends are caught in ~3 s by the ZMTP heartbeats, which libzmq's
# I/O thread answers. The ping only guards against a wedged server loop, and native stages that
# hold the GIL (xatlas, marching cubes) can keep Python from answering it for tens of seconds on
# a loaded 2-core CPU: a short ping timeout would fail healthy jobs.
PING_TIMEOUT_S = 120.0
CANCEL_GRACE_S = 5.0


class BackendJob:
    """One long request to the backend at ``address``, driven by ``poll()``.

    Subclasses say what to send (``_request``) and what its replies mean (``_on_reply``). After
    each ``poll()``: ``stage``/``fraction`` say how far it is; once ``done``, either the
    subclass's result is set or ``error`` (``(code, message)``, code as a protocol string).
    """

    KIND = "request"  # for messages: "reconstruct", "bake", ...

    def __init__(self, address: str, *, connect_timeout_s: float = 3.0,
                 curve: CurveKeys | None = None) -> None:
        self.address = address
        self.stage, self.fraction = "Connecting", 0.0
        self.device = ""
        self.done = False
        self.error: tuple[str, str] | None = None
        self.warnings: list[str] = []
        self._connect_timeout_s = connect_timeout_s
        try:
            self._client = client.HeadliftClient(address, curve=curve)
        except Exception as exc:  # zmq.ZMQError for a malformed endpoint; zmq stays out of the add-on
            raise ValueError(f"Invalid backend address '{address}': {exc}") from exc
        self._hello_id = self._client.submit(messages.Hello(agent=AGENT), timeout_s=connect_timeout_s)
        self._request_id: str | None = None
        self._ping_id: str | None = None
        self._next_ping = 0.0
        self._cancel_deadline: float | None = None

    # --- what subclasses provide ------------------------------------------------------------

    def _request(self) -> messages.Message:
        raise NotImplementedError

    def _request_timeout_s(self) -> float | None:
        return None  # the client's default for the kind

    def _on_reply(self, event: messages.Message) -> None:
        raise NotImplementedError

    # --- driving ----------------------------------------------------------------------------

    def poll(self) -> None:
        """Handle whatever arrived; returns at once. Never raises: failures end the job."""
        if self.done:
            return
        try:
            self._poll()
        except ProtocolError as exc:  # e.g. our own request refused by encode (image over the limit)
            self._fail(exc.code.value, exc.message)
        except Exception as exc:  # a bug must still end the job, or the panel spins forever
            self._fail(ErrorCode.INTERNAL.value, f"{type(exc).__name__}: {exc}")

    def _poll(self) -> None:
        for event in self._client.poll_events():
            self._handle(event)
            if self.done:
                self.close()
                return
        now = time.monotonic()
        if self._cancel_deadline is not None and now >= self._cancel_deadline:
            self._fail(ErrorCode.CANCELLED.value, "cancelled (the backend did not confirm in time)")
        elif self._request_id and self._ping_id is None and now >= self._next_ping:
            self._ping_id = self._client.submit(messages.Ping(), timeout_s=PING_TIMEOUT_S)

    def run_blocking(self, sleep_s: float = 0.05) -> None:
        """Background mode has no event loop: poll until done."""
        try:
            self.poll()
            while not self.done:
                time.sleep(sleep_s)
                self.poll()
        finally:
            self.close()

    def cancel(self) -> None:
        """Ask the backend to stop; the job ends as ``cancelled`` soon after."""
        if self.done or self._cancel_deadline is not None:
            return
        if self._request_id is None:
            self._fail(ErrorCode.CANCELLED.value, "cancelled")
            return
        self._client.submit(messages.Cancel(target=self._request_id))
        self._cancel_deadline = time.monotonic() + CANCEL_GRACE_S
        self.stage = "Cancelling"

    def abandon(self) -> None:
        """End the job now without waiting for the backend (Blender is closing the operator)."""
        if not self.done:
            if self._request_id is not None:
                self._client.submit(messages.Cancel(target=self._request_id))
            self._fail(ErrorCode.CANCELLED.value, "abandoned")

    def close(self) -> None:
        self._client.close()

    # --- events -------------------------------------------------------------------------------

    def _handle(self, event: messages.Message) -> None:
        if event.id == self._hello_id:
            self._on_hello(event)
        elif event.id == self._request_id:
            if isinstance(event, messages.Error):
                self._fail(_code(event), event.message)
            else:
                self._on_reply(event)
        elif event.id == self._ping_id:
            self._ping_id = None
            self._next_ping = time.monotonic() + PING_EVERY_S
            if isinstance(event, messages.Error):
                self._fail(ErrorCode.BACKEND_UNREACHABLE.value,
                           f"the backend at {self.address} stopped answering")
        elif isinstance(event, messages.Error) and event.id == "":
            self._fail(_code(event), event.message)

    def _on_hello(self, event: messages.Message) -> None:
        if isinstance(event, messages.Error):
            if event.code == ErrorCode.BACKEND_UNREACHABLE:
                self._fail(event.code.value,
                           f"no Headlift backend answered at {self.address} within "
                           f"{self._connect_timeout_s:g} s: start one (Start Local Backend) "
                           "or check the address")
            else:
                self._fail(_code(event), event.message)
            return
        self.device = getattr(event, "device", "")
        capabilities = getattr(event, "capabilities", [])
        if capabilities and self.KIND not in capabilities:
            self._fail(ErrorCode.UNKNOWN_TYPE.value,
                       f"the backend does not offer {self.KIND} (update the backend)")
            return
        self._request_id = self._client.submit(self._request(), timeout_s=self._request_timeout_s())
        self._next_ping = time.monotonic() + PING_EVERY_S
        self.stage = "Queued"

    def _fail(self, code: str, message: str) -> None:
        self.error = (code, message)
        self.done = True
        self.close()


class ReconstructJob(BackendJob):
    """Reconstruct ``image_bytes``; once done without error, ``head`` is a HeadData."""

    KIND = messages.Reconstruct.TYPE

    def __init__(self, address: str, image_bytes: bytes, name: str, *, source_path: str = "",
                 connect_timeout_s: float = 3.0, options: dict | None = None,
                 curve: CurveKeys | None = None) -> None:
        self.name = name
        self.source_path = source_path
        self.options = dict(options or {})
        self.head: HeadData | None = None
        self._message = messages.Reconstruct(image=image_bytes, name=name, options=self.options)
        super().__init__(address, connect_timeout_s=connect_timeout_s, curve=curve)

    def _request(self) -> messages.Message:
        return self._message

    def _on_reply(self, event: messages.Message) -> None:
        if isinstance(event, messages.Progress):
            self.stage, self.fraction = event.stage, float(event.fraction)
        elif isinstance(event, messages.Result):
            self.head = _head_data(event, self.source_path, self.options)
            self.warnings = list(event.warnings)
            self.stage, self.fraction, self.done = "Done", 1.0, True


def _code(event: messages.Error) -> str:
    return event.code.value if isinstance(event.code, ErrorCode) else str(event.code)


def _head_data(result: messages.Result, source_path: str, options: dict) -> HeadData:
    cam = result.camera
    return HeadData(
        name=result.name,
        verts_m=result.verts_m,
        faces=result.faces,
        loop_uvs=result.loop_uvs,
        texture=result.texture,
        head_id=result.head_id,
        camera={
            "R_cam_from_canonical": [list(map(float, row)) for row in cam.R_cam_from_canonical],
            "pixels_per_metre": float(cam.pixels_per_metre),
            "principal_px": [float(v) for v in cam.principal_px],
            "image_size": [int(v) for v in cam.image_size],
        },
        source_path=source_path,
        expression_names=list(getattr(result, "expression_names", []) or []),
        joint_names=list(getattr(result, "joint_names", []) or []),
        options=dict(options),
    )
