"""Speed figures: `python scripts/bench.py [PORTRAIT] [--runs N] [--skip-pipeline] [--skip-animation]`.

Pipeline: the median of each reconstruction stage over N runs (after one warm-up run that loads
the models), in this process.

Animation, through a real backend process on a free loopback port and the real client:
- slider round trip: ``animate`` (a head turn and, when the head has them, expression weights)
  answered by a posed mesh, median and p95 over --animate-calls calls, with the vertex count;
- bake of --bake-frames frames (default 250): from submit to the last frame decoded here, total
  and per frame, with the backend's own pose / send split.

Speed lives here, never in tests.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from backend.reconstruct.imagefile import decode_image  # noqa: E402
from backend.reconstruct.pipeline import ReconstructConfig, reconstruct  # noqa: E402


def default_portrait() -> np.ndarray:
    from skimage import data
    return data.astronaut()


def bench(image: np.ndarray, runs: int, config: ReconstructConfig) -> dict[str, float]:
    reconstruct(image, config)  # warm-up: mediapipe graphs, allocator
    per_stage: dict[str, list[float]] = {}
    totals = []
    for _ in range(runs):
        start = time.perf_counter()
        head = reconstruct(image, config)
        totals.append(time.perf_counter() - start)
        for stage, seconds in head.timings_s.items():
            per_stage.setdefault(stage, []).append(seconds)
    medians = {stage: statistics.median(v) for stage, v in per_stage.items()}
    medians["total"] = statistics.median(totals)
    medians["triangles"] = len(head.faces)
    return medians


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile ``q`` in [0, 100]."""
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, int(round(q / 100 * len(ranked) + 0.5)) - 1))]


def bench_animation(image_bytes: bytes, calls: int, bake_frames: int) -> dict[str, float]:
    """Slider round trips and one bake against a fresh backend process (loopback)."""
    from backend_process import BackendProcess

    from shared.client import BakeCollector, HeadliftClient, make_bake
    from shared.messages import Reconstruct

    with BackendProcess(ready_timeout_s=120.0) as backend, HeadliftClient(backend.endpoint) as client:
        head = client.reconstruct(image_bytes, name="bench", timeout_s=1200)
        names = list(head.expression_names)
        client.animate(head.head_id, {}, {}, timeout_s=60)  # warm-up: torch's first call
        round_trips = []
        for k in range(calls):
            angle = 0.6 * np.sin(k / 5)
            expressions = {n: float(0.5 + 0.5 * np.sin(k / 3 + i)) for i, n in enumerate(names)}
            start = time.perf_counter()
            client.animate(head.head_id, expressions, {"head": [0.0, 0.0, angle],
                                                       "neck": [0.1 * angle, 0.0, 0.0]},
                           timeout_s=60)
            round_trips.append(time.perf_counter() - start)
        t = np.linspace(0, 1, bake_frames, dtype=np.float32)
        curves = {n: 0.5 - 0.5 * np.cos(2 * np.pi * (t + i / 7)) for i, n in enumerate(names)}
        pose = {"head": np.stack([0.2 * np.sin(2 * np.pi * t), 0 * t, 0.8 * np.sin(np.pi * t)], 1)}
        bake = make_bake(head.head_id, curves, pose)
        collector = BakeCollector(bake)
        start = time.perf_counter()
        client.submit(bake, timeout_s=1200)
        while not any(e.id == bake.id and collector.add(e) for e in client.poll_events(1.0)):
            pass
        frames = collector.result()
        bake_s = time.perf_counter() - start
        # Sliders while another reconstruct runs: the fast lane does not queue behind it, but
        # the pipeline's native stages hold the GIL and then the fast lane waits too.
        busy_trips = []
        job = client.submit(Reconstruct(image=image_bytes, name="bench-busy"), timeout_s=1200)
        while job in client.pending:
            start_trip = time.perf_counter()
            client.animate(head.head_id, {}, {"head": [0.0, 0.0, 0.3]}, timeout_s=600)
            busy_trips.append(time.perf_counter() - start_trip)
            time.sleep(0.05)
    return {"vertices": len(head.verts_m), "expressions": len(names),
            "animate_median_ms": 1000 * statistics.median(round_trips),
            "animate_p95_ms": 1000 * percentile(round_trips, 95),
            "animate_calls": calls, "bake_frames": len(frames), "bake_total_s": bake_s,
            "bake_per_frame_ms": 1000 * bake_s / len(frames),
            "bake_backend_pose_s": collector.timings_s.get("pose", float("nan")),
            "bake_backend_send_s": collector.timings_s.get("send", float("nan")),
            "busy_animate_calls": len(busy_trips),
            "busy_animate_median_ms": 1000 * statistics.median(busy_trips),
            "busy_animate_p95_ms": 1000 * percentile(busy_trips, 95),
            "busy_animate_max_ms": 1000 * max(busy_trips)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("portrait", nargs="?", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--texture-size", type=int, default=2048)
    parser.add_argument("--skip-pipeline", action="store_true", help="no in-process stage timings")
    parser.add_argument("--skip-animation", action="store_true", help="no animate / bake figures")
    parser.add_argument("--animate-calls", type=int, default=50)
    parser.add_argument("--bake-frames", type=int, default=250)
    parser.add_argument("--drive", type=Path, help="also time track+solve on this driving video")
    parser.add_argument("--pose-every", type=int, default=None,
                        help="with --drive: shoulders' pose model on every n-th frame (0: face only)")
    args = parser.parse_args()
    image = decode_image(args.portrait.read_bytes()) if args.portrait else default_portrait()
    import torch
    print(f"portrait {args.portrait or 'astronaut (skimage)'} {image.shape[1]}x{image.shape[0]}, "
          f"torch threads {torch.get_num_threads()}")
    if not args.skip_pipeline:
        result = bench(image, args.runs, ReconstructConfig(texture_size=args.texture_size))
        stages = "  ".join(f"{k} {v:.2f}s" for k, v in result.items() if k not in ("triangles",))
        # the pipeline runs its torch stages on the CPU today
        print(f"[cpu] median of {args.runs}: {stages}  ({result['triangles']} triangles)")
    if not args.skip_animation:
        image_bytes = args.portrait.read_bytes() if args.portrait else png_bytes(image)
        a = bench_animation(image_bytes, args.animate_calls, args.bake_frames)
        print(f"slider round trip (animate, loopback, {a['vertices']} vertices, "
              f"{a['expressions']} expression shapes): median {a['animate_median_ms']:.1f} ms, "
              f"p95 {a['animate_p95_ms']:.1f} ms over {a['animate_calls']} calls")
        print(f"bake of {a['bake_frames']} frames: {a['bake_total_s']:.2f} s total, "
              f"{a['bake_per_frame_ms']:.1f} ms per frame (submit to last frame decoded; the "
              f"backend posed for {a['bake_backend_pose_s']:.2f} s and sent for "
              f"{a['bake_backend_send_s']:.2f} s)")
        print(f"slider round trip while a reconstruct runs: median "
              f"{a['busy_animate_median_ms']:.1f} ms, p95 {a['busy_animate_p95_ms']:.1f} ms, max "
              f"{a['busy_animate_max_ms']:.0f} ms over {a['busy_animate_calls']} calls")
    if args.drive:  # video driving (scripts/evaluate_driving.py)
        from evaluate_driving import bench_drive
        d = bench_drive(args.drive, args.pose_every)
        print(f"track+solve {args.drive.name}: {d['fps_wall']:.0f} frames/s wall, {d['fps_cpu']:.0f} "
              f"frames/s CPU ({d['frames']} frames; track {d['track_s']:.1f} s, solve {d['solve_s']:.1f} s)")
    return 0


def png_bytes(image: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


if __name__ == "__main__":
    sys.exit(main())
