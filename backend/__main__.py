"""``python -m backend [--bind tcp://127.0.0.1:5555]``: run the Headlift backend server.

Prints ``headlift backend ready at <endpoint>`` on stdout once it accepts requests (with port 0
the endpoint shows the port picked), then one JSON log line per request on stderr.
"""
from __future__ import annotations

import argparse
import sys

import zmq

from .config import DEFAULT_BIND, MiB, ServerConfig
from .imagefile import ImageLimits
from .server import run


def parse_config(argv: list[str] | None = None) -> ServerConfig:
    defaults = ServerConfig()
    parser = argparse.ArgumentParser(prog="python -m backend", description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default=DEFAULT_BIND,
                        help="ZeroMQ endpoint on loopback; port 0 picks a free one "
                             f"(default {DEFAULT_BIND})")
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
    try:
        return ServerConfig(bind=args.bind, max_message_bytes=args.max_message_mib * MiB,
                            max_queued_jobs=args.max_queued_jobs, max_heads=args.max_heads,
                            image_limits=ImageLimits(max_pixels=int(args.max_megapixels * 1e6)))
    except ValueError as exc:
        parser.error(str(exc))  # exits with status 2 and the usage line


def main(argv: list[str] | None = None) -> int:
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
