"""Load test: N clients at once, each reconstructing the same portrait under its own head name.

    .venv/bin/python scripts/load.py [--clients 3] [--image PORTRAIT] [--address tcp://...]

Without --address it starts its own backend on a free loopback port, with a queue deep enough for
every client. Prints one JSON object: throughput (heads per minute), latency p50/p95 (seconds
from submit to result, queue wait included), errors by code, and whether every client got the
head it asked for. The backend runs one reconstruct at a time, so latency grows with N: on a
2-core CPU a reconstruct takes 30-60 s, and --clients 8 takes several minutes.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from shared.client import HeadliftClient  # noqa: E402
from shared.errors import ErrorCode, ProtocolError  # noqa: E402

DEFAULT_IMAGE = ROOT.parent / "shared" / "portraits" / "fr_obama.jpg"
BUSY_RETRY_S = 2.0  # a client told "busy" tries again after this long
MAX_BUSY_RETRIES = 600


def one_client(address: str, image: bytes, name: str, out: dict) -> None:
    """Hello, then reconstruct ``image`` as ``name`` (retrying while busy); fills ``out``."""
    started = time.monotonic()
    out.update(name=name, busy_retries=0)
    try:
        with HeadliftClient(address) as client:
            client.hello(timeout_s=60)
            while True:
                try:
                    result = client.reconstruct(image, name=name)
                    break
                except ProtocolError as exc:
                    if exc.code is not ErrorCode.BUSY or out["busy_retries"] >= MAX_BUSY_RETRIES:
                        raise
                    out["busy_retries"] += 1
                    time.sleep(BUSY_RETRY_S)
        out.update(ok=True, got_name=result.name, head_id=result.head_id,
                   vertices=int(result.verts_m.shape[0]))
    except ProtocolError as exc:
        out.update(ok=False, code=exc.code.value, message=exc.message)
    out["latency_s"] = time.monotonic() - started


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile ``q`` in [0, 100]; None for no values."""
    if not values:
        return None
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, int(round(q / 100 * len(ranked) + 0.5)) - 1))]


def run_load(address: str, image: bytes, clients: int) -> dict:
    """Run ``clients`` concurrent reconstructs against ``address``; returns the report."""
    outcomes = [{} for _ in range(clients)]
    threads = [threading.Thread(target=one_client, args=(address, image, f"load-{i}", outcomes[i]))
               for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall_s = time.monotonic() - t0
    ok = [o for o in outcomes if o.get("ok")]
    latencies = [o["latency_s"] for o in ok]
    errors: dict[str, int] = {}
    for o in outcomes:
        if not o.get("ok"):
            errors[o.get("code", "?")] = errors.get(o.get("code", "?"), 0) + 1
    return {
        "clients": clients, "ok": len(ok), "errors": errors, "wall_s": round(wall_s, 1),
        "throughput_heads_per_min": round(len(ok) / wall_s * 60, 2) if wall_s > 0 else None,
        "latency_p50_s": percentile(latencies, 50), "latency_p95_s": percentile(latencies, 95),
        "busy_retries": sum(o.get("busy_retries", 0) for o in outcomes),
        "each_got_its_own_head": all(o.get("got_name") == o["name"] for o in ok)
                                 and len({o["head_id"] for o in ok}) == len(ok),
        "outcomes": outcomes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--address", help="an existing backend (default: start one)")
    args = parser.parse_args(argv)
    image = args.image.read_bytes()
    if args.address:
        report = run_load(args.address, image, args.clients)
    else:
        from backend_process import BackendProcess

        with BackendProcess(args=("--max-queued-jobs", str(max(1, args.clients)))) as backend:
            report = run_load(backend.endpoint, image, args.clients)
    for o in report["outcomes"]:
        o["latency_s"] = round(o["latency_s"], 1)
    print(json.dumps(report, indent=1))
    return 0 if report["ok"] == args.clients and report["each_got_its_own_head"] else 1


if __name__ == "__main__":
    sys.exit(main())
