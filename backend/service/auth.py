"""CurveZMQ for remote use: key files and the server side of authentication.

    python -m backend keys --out DIR      # DIR/server.key(_secret), DIR/clients/client.key(_secret)
    python -m backend --bind tcp://0.0.0.0:5555 --curve-secret DIR/server.key_secret --allow DIR/clients/

The server encrypts every connection with its key pair and lets in only clients whose public key
is in the ``--allow`` folder (a ZAP handler, pyzmq's ThreadAuthenticator, checks each handshake).
A client with another key never completes the handshake: it gets no reply at all, so it times
out as ``backend_unreachable``. Key files are ZeroMQ's own certificate format (Z85 text).
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from backend.service.logline import log_event


@dataclass(frozen=True)
class CurveConfig:
    """secret_key_path: the server's ``*.key_secret`` file (holds its public and secret key).
    allow_dir:          a folder of client ``*.key`` files (public keys); only those may connect."""

    secret_key_path: str
    allow_dir: str

    def check(self) -> None:
        """Raise ValueError with what to fix if a file is missing or unreadable."""
        if not zmq.has("curve"):
            raise ValueError("this libzmq was built without CURVE support")
        load_key_pair(self.secret_key_path)
        allow = Path(self.allow_dir)
        if not allow.is_dir():
            raise ValueError(f"--allow {self.allow_dir!r} is not a folder of client public keys")
        if not any(allow.glob("*.key")):
            raise ValueError(f"--allow {self.allow_dir!r} holds no client public key (*.key): "
                             "no client could connect")


def load_key_pair(path: str) -> tuple[bytes, bytes]:
    """(public, secret) Z85 keys from a ``*.key_secret`` file; ValueError if it holds no secret."""
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read key file {path!r}: {exc}") from None
    if not secret:
        raise ValueError(f"{path!r} holds no secret key (use the .key_secret file)")
    return public, secret


def generate_keys(out_dir: Path) -> dict[str, Path]:
    """Write a server key pair to ``out_dir`` and one client key pair, whose public half is also
    copied into ``out_dir/clients/`` (the allow-list to pass as ``--allow``). Returns the paths."""
    out_dir = Path(out_dir)
    keys_dir, clients_dir = out_dir, out_dir / "clients"
    keys_dir.mkdir(parents=True, exist_ok=True)
    clients_dir.mkdir(exist_ok=True)
    server_public, server_secret = zmq.auth.create_certificates(str(keys_dir), "server")
    client_public, client_secret = zmq.auth.create_certificates(str(keys_dir), "client")
    allowed = Path(shutil.copy(client_public, clients_dir / "client.key"))
    for secret in (server_secret, client_secret):
        os.chmod(secret, 0o600)  # secret keys are for their owner's eyes only
    return {"server_public": Path(server_public), "server_secret": Path(server_secret),
            "client_public": Path(client_public), "client_secret": Path(client_secret),
            "allowed_client": allowed}


class CurveServer:
    """Starts the ZAP authenticator for ``context`` and makes sockets CURVE servers."""

    def __init__(self, config: CurveConfig, context: zmq.Context) -> None:
        config.check()
        self.config = config
        self._public, self._secret = load_key_pair(config.secret_key_path)
        self._auth = ThreadAuthenticator(context)
        self._auth.start()
        # domain "*": every socket of this context; only keys in allow_dir pass.
        self._auth.configure_curve(domain="*", location=config.allow_dir)
        allowed = sorted(p.name for p in Path(config.allow_dir).glob("*.key"))
        log_event("curve", server_public_key=self._public.decode(), allowed_client_keys=allowed)

    def secure(self, socket: zmq.Socket) -> None:
        """Make ``socket`` a CURVE server (call before bind)."""
        socket.curve_secretkey = self._secret
        socket.curve_publickey = self._public
        socket.curve_server = True

    def stop(self) -> None:
        self._auth.stop()
