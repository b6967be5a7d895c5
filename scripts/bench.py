"""Stage timings of the reconstruction: `python scripts/bench.py [PORTRAIT] [--runs N]`.

Prints the median of each stage over N runs (after one warm-up run that loads the models).
Speed lives here, never in tests.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.imagefile import decode_image  # noqa: E402
from backend.pipeline import ReconstructConfig, reconstruct  # noqa: E402


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("portrait", nargs="?", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--texture-size", type=int, default=2048)
    args = parser.parse_args()
    image = decode_image(args.portrait.read_bytes()) if args.portrait else default_portrait()
    import torch
    devices = ["cpu"]  # the pipeline runs its torch stages on the CPU today
    print(f"portrait {args.portrait or 'astronaut (skimage)'} {image.shape[1]}x{image.shape[0]}, "
          f"{args.runs} runs, torch threads {torch.get_num_threads()}")
    for device in devices:
        result = bench(image, args.runs, ReconstructConfig(texture_size=args.texture_size))
        stages = "  ".join(f"{k} {v:.2f}s" for k, v in result.items() if k not in ("triangles",))
        print(f"[{device}] median: {stages}  ({result['triangles']} triangles)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
