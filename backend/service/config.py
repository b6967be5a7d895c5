"""Server settings: one dataclass with working defaults; ``python -m backend`` fills it from flags."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from backend.reconstruct.imagefile import ImageLimits
from backend.service.auth import CurveConfig

MiB = 1 << 20
DEFAULT_BIND = "tcp://127.0.0.1:5555"


@dataclass(frozen=True)
class ServerConfig:
    """bind:               ZeroMQ endpoint; loopback only (see ``check_loopback``). Port 0 or * picks
                           a free port (the ready line prints the real one).
    max_message_bytes:  largest request accepted. ZeroMQ drops the connection on any single frame
                           above it (ZMQ_MAXMSGSIZE); ``decode`` answers message_too_large when the
                           frames together exceed it.
    max_queued_jobs:    jobs (reconstruct, bake) waiting behind the running one; more answer ``busy``.
    max_fast_requests:  animate / rig requests waiting for the fast lane; more answer ``busy``.
    bake_chunk_bytes:   a bake streams its frames in chunks of at most this many bytes (at least
                           one frame each), so no reply nears a message limit and a 10,000-frame
                           bake never sits in memory whole.
    slow_client_s:      a client that has read none of the replies queued for it for this long
                           while a job's replies wait is dropped from the job (it is cancelled).
    max_heads:          finished heads kept in memory for later requests (least recently used go).
    linger_ms:          how long closing the socket may wait to deliver the last replies.
    progress_interval_s: at most one progress message per this interval within a stage.
    shutdown_grace_s:   how long shutdown waits for a running job to notice it was cancelled.
    replay_finished:    final replies of this many finished reconstructs are kept, so a client that
                           retries one (same request id) gets the answer again instead of a rerun.
    replay_finished_bakes: the same for bakes; what is kept is small (an error, or "already
                           finished": the chunks are streamed once and not kept), so many more.
    """

    bind: str = DEFAULT_BIND
    max_message_bytes: int = 64 * MiB
    max_queued_jobs: int = 2
    max_fast_requests: int = 32
    bake_chunk_bytes: int = 4 * MiB
    slow_client_s: float = 30.0
    max_heads: int = 8
    linger_ms: int = 1000
    progress_interval_s: float = 0.1
    shutdown_grace_s: float = 10.0
    replay_finished: int = 2
    replay_finished_bakes: int = 256
    image_limits: ImageLimits = field(default_factory=ImageLimits)
    curve: CurveConfig | None = None

    def __post_init__(self) -> None:
        if self.curve is None:
            check_loopback(self.bind)
        if self.replay_finished < 0 or self.replay_finished_bakes < 0:
            raise ValueError("replay_finished and replay_finished_bakes must be at least 0")
        if self.max_message_bytes < 1024:
            raise ValueError("max_message_bytes must be at least 1024")
        if self.max_queued_jobs < 1 or self.max_heads < 1 or self.max_fast_requests < 1:
            raise ValueError("max_queued_jobs, max_fast_requests and max_heads must be at least 1")
        if self.bake_chunk_bytes < 1024:
            raise ValueError("bake_chunk_bytes must be at least 1024")


def check_loopback(endpoint: str) -> None:
    """Raise ValueError unless ``endpoint`` is ``tcp://HOST:PORT`` with HOST in 127.0.0.0/8, ::1
    (written ``[::1]``) or ``localhost``. Without CURVE keys anyone who can reach the port could
    use the backend, so it must not be reachable from other machines."""
    hint = ("without CURVE keys the backend only listens on loopback (tcp://127.0.0.1:PORT, "
            "tcp://[::1]:PORT or tcp://localhost:PORT); to listen beyond it, make keys with "
            "'python -m backend keys --out DIR' and pass --curve-secret DIR/server.key_secret "
            "--allow DIR/clients/")
    if not endpoint.startswith("tcp://"):
        raise ValueError(f"cannot bind {endpoint!r}: {hint}")
    host, sep, port = endpoint[len("tcp://"):].rpartition(":")
    if not sep or not (port == "*" or (port.isdigit() and int(port) <= 65535)):
        raise ValueError(f"cannot bind {endpoint!r}: expected tcp://HOST:PORT with PORT 0..65535 or *")
    if host == "localhost":
        return
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"cannot bind {endpoint!r}: {hint}")
