"""Load test: N clients at once, each reconstructing the same portrait under its own head name and
then baking an animation of its own head.

    .venv/bin/python scripts/load.py [--clients 8] [--frames 120] [--image PORTRAIT] [--address tcp://...]

Without --address it starts its own backend on a free loopback port, with a queue deep enough for
every client. Prints one JSON object: throughput (clients served per minute), latency p50/p95
(seconds from submit to result, and from submit to the last baked frame, queue waits included),
errors by code, and whether every client got its own results: the head it named, a head id of
its own, and baked frames equal to what ``animate`` gives for its own pose curve (each client
turns its head by its own angle, so another client's frames would not match). The backend runs
one job at a time, so latency grows with N: on a 2-core CPU a reconstruct takes 30-60 s (more
under load), and --clients 8 takes several minutes.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from shared.client import HeadliftClient  # noqa: E402
from shared.errors import ErrorCode, ProtocolError  # noqa: E402

DEFAULT_IMAGE = ROOT.parent / "shared" / "portraits" / "fr_obama.jpg"
BUSY_RETRY_S = 2.0  # a client told "busy" tries again after this long
MAX_BUSY_RETRIES = 600


def retry_busy(call, out: dict):
    """``call()``, again after BUSY_RETRY_S while the backend answers busy."""
    while True:
        try:
            return call()
        except ProtocolError as exc:
            if exc.code is not ErrorCode.BUSY or out["busy_retries"] >= MAX_BUSY_RETRIES:
                raise
            out["busy_retries"] += 1
            time.sleep(BUSY_RETRY_S)


def pose_curve(index: int, frames: int) -> np.ndarray:
    """(frames, 3) head rotation of client ``index``: a yaw sweep to its own angle."""
    yaw = 0.05 * (index + 1) * np.linspace(0.0, 1.0, frames, dtype=np.float32)
    return np.stack([0 * yaw, 0 * yaw, yaw], axis=1)


def one_client(address: str, image: bytes, index: int, frames: int, out: dict) -> None:
    """Hello, reconstruct ``image`` as load-<index>, bake ``frames`` frames of it (each retried
    while busy); fills ``out``."""
    name = f"load-{index}"
    started = time.monotonic()
    out.update(name=name, busy_retries=0)
    try:
        with HeadliftClient(address) as client:
            client.hello(timeout_s=60)
            result = retry_busy(lambda: client.reconstruct(image, name=name, timeout_s=3600), out)
            out.update(got_name=result.name, head_id=result.head_id,
                       vertices=int(result.verts_m.shape[0]),
                       reconstruct_s=time.monotonic() - started)
            curve = pose_curve(index, frames)
            bake_started = time.monotonic()
            baked = retry_busy(lambda: client.bake(result.head_id, {}, {"head": curve},
                                                   timeout_s=3600), out)
            out["bake_s"] = time.monotonic() - bake_started
            checks = []
            for k in sorted({0, frames // 2, frames - 1}):
                expected = client.animate(result.head_id, {}, {"head": curve[k].tolist()},
                                          timeout_s=120)
                checks.append(baked.shape == (frames, len(result.verts_m), 3)
                              and float(np.abs(baked[k] - expected).max()) < 1e-5)
        out.update(ok=True, bake_matches_own_animation=all(checks))
    except ProtocolError as exc:
        out.update(ok=False, code=exc.code.value, message=exc.message)
    out["latency_s"] = time.monotonic() - started


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile ``q`` in [0, 100]; None for no values."""
    if not values:
        return None
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, int(round(q / 100 * len(ranked) + 0.5)) - 1))]


def run_load(address: str, image: bytes, clients: int, frames: int = 120) -> dict:
    """Run ``clients`` concurrent reconstruct + bake clients against ``address``; the report."""
    outcomes = [{} for _ in range(clients)]
    threads = [threading.Thread(target=one_client, args=(address, image, i, frames, outcomes[i]))
               for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall_s = time.monotonic() - t0
    ok = [o for o in outcomes if o.get("ok")]
    errors: dict[str, int] = {}
    for o in outcomes:
        if not o.get("ok"):
            errors[o.get("code", "?")] = errors.get(o.get("code", "?"), 0) + 1

    def p(key: str, q: float) -> float | None:
        value = percentile([o[key] for o in ok], q)
        return None if value is None else round(value, 2)

    return {
        "clients": clients, "frames_per_bake": frames, "ok": len(ok), "errors": errors,
        "wall_s": round(wall_s, 1),
        "throughput_clients_per_min": round(len(ok) / wall_s * 60, 2) if wall_s > 0 else None,
        "latency_p50_s": p("latency_s", 50), "latency_p95_s": p("latency_s", 95),
        "reconstruct_p50_s": p("reconstruct_s", 50), "reconstruct_p95_s": p("reconstruct_s", 95),
        "bake_p50_s": p("bake_s", 50), "bake_p95_s": p("bake_s", 95),
        "busy_retries": sum(o.get("busy_retries", 0) for o in outcomes),
        "each_got_its_own_results": all(o.get("got_name") == o["name"]
                                        and o.get("bake_matches_own_animation") for o in ok)
                                    and len({o["head_id"] for o in ok}) == len(ok),
        "outcomes": outcomes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--frames", type=int, default=120, help="frames per bake (default 120)")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--address", help="an existing backend (default: start one)")
    args = parser.parse_args(argv)
    image = args.image.read_bytes()
    if args.address:
        report = run_load(args.address, image, args.clients, args.frames)
    else:
        from backend_process import BackendProcess

        # Room for every client's job in the queue, and for every client's head.
        room = str(max(1, args.clients))
        with BackendProcess(args=("--max-queued-jobs", room, "--max-heads", room)) as backend:
            report = run_load(backend.endpoint, image, args.clients, args.frames)
    for o in report["outcomes"]:
        for key in ("latency_s", "reconstruct_s", "bake_s"):
            if key in o:
                o[key] = round(o[key], 2)
    print(json.dumps(report, indent=1))
    return 0 if report["ok"] == args.clients and report["each_got_its_own_results"] else 1


if __name__ == "__main__":
    sys.exit(main())
