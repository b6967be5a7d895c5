"""Throughput of backend.render.raster.rasterize: ~300k triangles of a sphere into a 2048 x 2048 image.

    python scripts/bench_raster.py [--size 2048] [--triangles 300000] [--repeats 3] [--device cpu]
                                   [--threads N] [--cull]

Prints the best of --repeats timed calls (after one warm-up call). On a CPU shared with other
busy processes, torch's multi-threaded ops stall waiting for their threads; --threads 1 is then
both faster and steadier.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from backend.render.raster import rasterize  # noqa: E402


def sphere_in_pixels(triangles: int, size: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A latitude-longitude sphere of about `triangles` faces filling ~90% of a size x size image.

    Built with numpy alone so that the benchmark also runs where trimesh is not installed.
    """
    rings = max(2, int(round(np.sqrt(triangles / 2))))
    theta = np.linspace(0, np.pi, rings + 1)  # polar angle, per ring of vertices
    phi = np.linspace(0, 2 * np.pi, rings, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    verts = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    i = np.arange(rings)[:, None] * rings + np.arange(rings)[None, :]
    right = i - i % rings + (i + 1) % rings  # next vertex around the ring
    quads = np.stack([i, right, right + rings, i + rings], -1).reshape(-1, 4)
    faces = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    verts_px = np.concatenate([(verts[:, :2] * 0.45 + 0.5) * size, verts[:, 2:] + 2.0], axis=1)
    return (torch.from_numpy(verts_px.astype(np.float32)).to(device),
            torch.from_numpy(faces.astype(np.int64)).to(device))


def bench(size: int = 2048, triangles: int = 300_000, repeats: int = 3, device: str = "cpu",
          cull_backfaces: bool = False) -> float:
    """Best wall time in milliseconds of one rasterize call; prints a summary line."""
    verts_px, faces = sphere_in_pixels(triangles, size, device)
    best = float("inf")
    for _ in range(repeats + 1):  # the first call warms allocator and kernels
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        frags = rasterize(verts_px, faces, size, size, cull_backfaces=cull_backfaces)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    covered = int((frags.tri_id >= 0).sum())
    print(f"rasterize: {faces.shape[0]} tris -> {size}x{size} on {device} "
          f"({torch.get_num_threads()} threads, cull={cull_backfaces}): {best * 1e3:.0f} ms, "
          f"{covered} px covered")
    return best * 1e3


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--triangles", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cull", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    bench(args.size, args.triangles, args.repeats, args.device, args.cull)
