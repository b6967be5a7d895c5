"""What the client knows about its connection: CURVE keys, and a socket monitor that says when
the connection to the backend broke.

ZeroMQ reconnects by itself and hides connection changes from the application; a reconstruct that
went out on a connection that then broke will never be answered (the backend that held it is dead
or restarted). ``ConnectionWatch`` reads the socket's monitor events so the client can end such a
job at once. ZMTP heartbeats (``HEARTBEAT_*``) run in libzmq's I/O thread, so they work while the
backend's Python is busy, and they turn a silent peer (a host that vanished, a cut network) into
a disconnect within HEARTBEAT_IVL_MS + HEARTBEAT_TIMEOUT_MS.
"""
from __future__ import annotations

from dataclasses import dataclass

import zmq

HEARTBEAT_IVL_MS = 1000  # send a ZMTP PING this often
HEARTBEAT_TIMEOUT_MS = 3000  # drop the connection when nothing arrived for this long after a PING

_HANDSHAKE_OK = getattr(zmq, "EVENT_HANDSHAKE_SUCCEEDED", zmq.EVENT_CONNECTED)
_HANDSHAKE_FAILED = {
    getattr(zmq, "EVENT_HANDSHAKE_FAILED_AUTH", -1):
        "the backend refused this client's CURVE key (is it in the server's --allow folder?)",
    getattr(zmq, "EVENT_HANDSHAKE_FAILED_PROTOCOL", -2):
        "the security handshake failed (CURVE keys missing on one side, or the wrong server key)",
    getattr(zmq, "EVENT_HANDSHAKE_FAILED_NO_DETAIL", -3):
        "the security handshake failed (check the server public key and the client key pair)",
}


@dataclass(frozen=True)
class CurveKeys:
    """Z85 keys (40 ASCII bytes each) for a CURVE client: the server's public key and this
    client's own key pair."""

    server_public: bytes
    client_public: bytes
    client_secret: bytes

    @classmethod
    def from_files(cls, server_key_path: str, client_key_path: str) -> "CurveKeys":
        """Read ZeroMQ certificate files: ``server.key`` (public) and ``client.key_secret``
        (the pair). Raises ValueError naming the file that is missing or wrong."""
        import zmq.auth

        def load(path: str, what: str) -> tuple[bytes, bytes | None]:
            try:
                return zmq.auth.load_certificate(path)
            except (OSError, ValueError) as exc:
                raise ValueError(f"cannot read the {what} from {path!r}: {exc}") from None

        server_public, _ = load(server_key_path, "server public key")
        client_public, client_secret = load(client_key_path, "client key pair")
        if not client_secret:
            raise ValueError(f"{client_key_path!r} holds no secret key: use the client's "
                             ".key_secret file")
        return cls(server_public, client_public, client_secret)

    def apply(self, socket: zmq.Socket) -> None:
        """Make ``socket`` a CURVE client of the server (call before connect)."""
        socket.curve_serverkey = self.server_public
        socket.curve_publickey = self.client_public
        socket.curve_secretkey = self.client_secret


class ConnectionWatch:
    """Monitor events of one socket (``socket`` is the monitor's own PAIR, for polling).
    ``take_lost()`` is True once a connection that had completed its handshake has since closed
    (the peer died, restarted or went silent)."""

    def __init__(self, watched: zmq.Socket) -> None:
        self._watched = watched
        self.socket = watched.get_monitor_socket()
        self._connected = False
        self._lost = False
        self._handshake_problem = ""

    def read_events(self) -> None:
        """Drain pending monitor events; never blocks."""
        from zmq.utils.monitor import recv_monitor_message

        while self.socket.poll(0, zmq.POLLIN):
            event = recv_monitor_message(self.socket)["event"]
            if event == _HANDSHAKE_OK:
                self._connected, self._handshake_problem = True, ""
            elif event == zmq.EVENT_DISCONNECTED:
                self._lost, self._connected = self._lost or self._connected, False
            elif event in _HANDSHAKE_FAILED:
                self._handshake_problem = _HANDSHAKE_FAILED[event]

    def take_lost(self) -> bool:
        """True (once) if a live connection broke since the last call."""
        self.read_events()
        lost, self._lost = self._lost, False
        return lost

    def handshake_hint(self) -> str:
        """'' or ': <why the last handshake failed>', for an unreachable-backend message."""
        self.read_events()
        return f": {self._handshake_problem}" if self._handshake_problem else ""

    def close(self) -> None:
        try:
            self._watched.disable_monitor()
        except zmq.ZMQError:
            pass  # the watched socket is already closed
        self.socket.close(linger=0)
