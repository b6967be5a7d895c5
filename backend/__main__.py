"""``python -m backend [--bind tcp://127.0.0.1:5555]``: run the Headlift backend server.

    python -m backend keys --out DIR       # CurveZMQ key pairs for remote use (see backend.service.auth)
    python -m backend --bind tcp://0.0.0.0:5555 --curve-secret DIR/server.key_secret --allow DIR/clients/

Prints ``headlift backend ready at <endpoint>`` on stdout once it accepts requests (with port 0
the endpoint shows the port picked), then one JSON log line per request on stderr.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import zmq

from backend.reconstruct.imagefile import ImageLimits
from backend.service.auth import CurveConfig, generate_keys
from backend.service.config import DEFAULT_BIND, MiB, ServerConfig
from backend.service.server import run


def parse_config(argv: list[str] | None = None) -> ServerConfig:
    defaults = ServerConfig()
    parser = argparse.ArgumentParser(prog="python -m backend", description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default=DEFAULT_BIND,
                        help="ZeroMQ endpoint; loopback unless CURVE keys are given; port 0 picks "
                             f"a free one (default {DEFAULT_BIND})")
    parser.add_argument("--curve-secret", metavar="FILE",
                        help="the server's .key_secret file: encrypt and authenticate with CURVE")
    parser.add_argument("--allow", metavar="DIR",
                        help="folder of client public keys (*.key) allowed to connect (with CURVE)")
    parser.add_argument("--max-message-mib", type=int, default=defaults.max_message_bytes // MiB,
                        help="largest request accepted, MiB (default %(default)s)")
    parser.add_argument("--max-queued-jobs", type=int, default=defaults.max_queued_jobs,
                        help="reconstructs that may wait behind the running one (default %(default)s)")
    parser.add_argument("--max-heads", type=int, default=defaults.max_heads,
                        help="finished heads kept in memory (default %(default)s)")
    parser.add_argument("--max-megapixels", type=float,
                        default=defaults.image_limits.max_pixels / 1e6,
                        help="largest image accepted, megapixels (default %(default)s)")
    args = parser.parse_args(argv)
    if bool(args.curve_secret) != bool(args.allow):
        parser.error("--curve-secret and --allow go together: CURVE needs the server's key pair "
                     "and the allow-list of client keys")
    try:
        curve = CurveConfig(args.curve_secret, args.allow) if args.curve_secret else None
        if curve is not None:
            curve.check()
        return ServerConfig(bind=args.bind, curve=curve, max_message_bytes=args.max_message_mib * MiB,
                            max_queued_jobs=args.max_queued_jobs, max_heads=args.max_heads,
                            image_limits=ImageLimits(max_pixels=int(args.max_megapixels * 1e6)))
    except ValueError as exc:
        parser.error(str(exc))  # exits with status 2 and the usage line


def keys_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend keys",
                                     description="Write a CURVE key pair for the server and one for a client.")
    parser.add_argument("--out", required=True, type=Path, help="folder for the key files")
    paths = generate_keys(parser.parse_args(argv).out)
    print(f"server: {paths['server_secret']} (keep on the server, pass as --curve-secret)\n"
          f"        {paths['server_public']} (give to clients: Server Public Key)\n"
          f"client: {paths['client_secret']} (give to the client: Client Key Pair)\n"
          f"allow:  {paths['allowed_client'].parent}/ (pass as --allow; add more clients' .key files)")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["keys"]:
        return keys_main(argv[1:])
    config = parse_config(argv)
    try:
        run(config)
    except zmq.ZMQError as exc:
        print(f"headlift backend: cannot bind {config.bind}: {exc} "
              f"(is another backend already running there?)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
