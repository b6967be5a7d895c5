"""Specification of backend.render.raster.rasterize, checked against a brute-force float64 reference."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.render.raster import TILE_PX, rasterize


def reference_edges(corners_xy: np.ndarray, height: int, width: int) -> np.ndarray:
    """(3, 2) corners -> (H, W, 3) float64 edge functions (doubled areas) at every pixel centre."""
    cy, cx = np.mgrid[0:height, 0:width] + 0.5
    d = corners_xy[None, None, :, :] - np.stack([cx, cy], -1)[:, :, None, :]  # (H, W, 3, 2)
    cross = lambda j, k: d[..., j, 0] * d[..., k, 1] - d[..., j, 1] * d[..., k, 0]  # noqa: E731
    return np.stack([cross(1, 2), cross(2, 0), cross(0, 1)], -1)


def reference_cover(corners_xy: np.ndarray, height: int, width: int):
    """Brute force: (inside, ambiguous) (H, W) bool masks; ambiguous: a centre within 1e-4 px of an edge."""
    e = reference_edges(corners_xy, height, width)
    area2 = e.sum(-1, keepdims=True)
    e = e * np.sign(area2)
    edge_len = np.linalg.norm(corners_xy[[2, 0, 1]] - corners_xy[[1, 2, 0]], axis=1)
    distance = e / edge_len  # signed distance of the centre to each edge, px
    return (distance >= 0).all(-1), (np.abs(distance) < 1e-4).any(-1)


def as_tensors(verts: np.ndarray, faces) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.as_tensor(np.asarray(verts, np.float32)),
            torch.as_tensor(np.asarray(faces, np.int64).reshape(-1, 3)))


def test_a_triangle_covers_exactly_the_pixels_whose_centres_lie_inside_it():
    rng = np.random.default_rng(0)
    height, width = 23, 31
    for _ in range(200):
        # Corners partly outside the image too, and both windings.
        corners = rng.uniform([-8, -8], [width + 8, height + 8], size=(3, 2))
        if rng.random() < 0.5:  # many small triangles as well
            corners = corners[:1] + rng.uniform(-4, 4, size=(3, 2))
        verts = np.concatenate([corners, rng.uniform(-1, 1, (3, 1))], 1)
        frags = rasterize(*as_tensors(verts, [0, 1, 2]), height, width)
        inside, ambiguous = reference_cover(corners, height, width)
        got = frags.tri_id.numpy() == 0
        assert np.array_equal(got[~ambiguous], inside[~ambiguous])


def test_triangles_larger_than_a_tile_are_drawn_whole():
    height, width = 5 * TILE_PX + 7, 3 * TILE_PX + 3
    corners = np.array([[-1000.0, -3.0], [width + 2000.0, 10.0], [40.0, height + 1500.0]])
    verts = np.concatenate([corners, np.zeros((3, 1))], 1)
    frags = rasterize(*as_tensors(verts, [0, 2, 1]), height, width)
    inside, ambiguous = reference_cover(corners, height, width)
    assert inside.sum() > 0.5 * height * width
    assert np.array_equal((frags.tri_id.numpy() == 0)[~ambiguous], inside[~ambiguous])


def test_the_nearer_of_two_overlapping_triangles_wins_whatever_their_order():
    square = [[2.0, 2.0], [30.0, 2.0], [2.0, 30.0]]
    verts = np.array([p + [1.0] for p in square] + [p + [0.5] for p in square])  # second is nearer
    for faces, near in (([0, 1, 2, 3, 4, 5], 1), ([3, 4, 5, 0, 1, 2], 0)):
        frags = rasterize(*as_tensors(verts, faces), 32, 32)
        covered = frags.tri_id >= 0
        assert covered.sum() > 300
        assert (frags.tri_id[covered] == near).all()
        assert torch.allclose(frags.depth[covered], torch.tensor(0.5))


def test_random_scenes_match_a_brute_force_z_buffer():
    rng = np.random.default_rng(1)
    height, width = 40, 48
    for _ in range(10):
        n = 30
        corners = rng.uniform(-5, 50, size=(n, 3, 2))
        depth = rng.permutation(n).astype(np.float64)  # distinct flat depths per triangle
        verts = np.concatenate([corners, np.repeat(depth[:, None, None], 3, 1)], 2).reshape(-1, 3)
        frags = rasterize(*as_tensors(verts, np.arange(3 * n)), height, width)

        best = np.full((height, width), np.inf)
        want = np.full((height, width), -1)
        unsure = np.zeros((height, width), bool)
        for t in range(n):
            inside, ambiguous = reference_cover(corners[t], height, width)
            unsure |= ambiguous
            nearer = inside & (depth[t] < best)
            best[nearer], want[nearer] = depth[t], t
        assert np.array_equal(frags.tri_id.numpy()[~unsure], want[~unsure])
        assert np.array_equal(frags.depth.numpy()[~unsure], best[~unsure].astype(np.float32))


def test_barycentrics_interpolate_the_pixel_centre_and_depth():
    verts = np.array([[1.3, 0.7, 0.2], [27.9, 5.1, 1.4], [9.2, 30.6, -0.8]])
    frags = rasterize(*as_tensors(verts, [0, 1, 2]), 32, 32)
    covered = frags.tri_id >= 0
    bary = frags.bary[covered].double()
    assert (bary >= 0).all()
    assert torch.allclose(bary.sum(1), torch.ones(len(bary), dtype=torch.float64))
    rows, cols = covered.nonzero(as_tuple=True)
    at = bary @ torch.as_tensor(verts)
    assert torch.allclose(at[:, 0], cols.double() + 0.5, atol=1e-4)
    assert torch.allclose(at[:, 1], rows.double() + 0.5, atol=1e-4)
    assert torch.allclose(frags.depth[covered].double(), at[:, 2], atol=1e-5)


def test_empty_pixels_are_marked():
    verts = [[1.0, 1.0, 0.0], [5.0, 1.0, 0.0], [1.0, 5.0, 0.0]]
    frags = rasterize(*as_tensors(verts, [0, 1, 2]), 16, 16)
    empty = frags.tri_id < 0
    assert empty.sum() > 200
    assert torch.isinf(frags.depth[empty]).all() and (frags.bary[empty] == 0).all()


def grid_mesh(n: int, cell_px: float, jitter: float, seed: int = 0):
    """An n x n grid of quads (2 triangles each, counter-clockwise seen by the viewer) in pixels."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:n + 1, 0:n + 1] * cell_px + 0.5
    xy = np.stack([xs, ys], -1).astype(np.float64)
    xy[1:-1, 1:-1] += rng.uniform(-jitter, jitter, size=(n - 1, n - 1, 2))
    verts = np.concatenate([xy.reshape(-1, 2), rng.uniform(0, 1, ((n + 1) ** 2, 1))], 1)
    i = np.arange(n)[:, None] * (n + 1) + np.arange(n)[None, :]
    a, b, c, d = i, i + 1, i + n + 1, i + n + 2
    faces = np.concatenate([np.stack([a, c, b], -1), np.stack([b, c, d], -1)]).reshape(-1, 3)
    return verts, faces


@pytest.mark.parametrize("jitter", [0.0, 1.2])
def test_a_watertight_mesh_leaves_no_cracks_even_with_edges_through_pixel_centres(jitter):
    # With jitter 0 every vertex sits on a pixel centre and every edge runs through centres.
    verts, faces = grid_mesh(12, 3.0, jitter)
    frags = rasterize(*as_tensors(verts, faces), 40, 40)
    assert (frags.tri_id[:37, :37] >= 0).all()
    assert (frags.tri_id[37:, :] < 0).all() and (frags.tri_id[:, 37:] < 0).all()


def test_ties_go_to_the_lower_triangle_index():
    verts = np.array([[0.0, 0.0, 0.3], [20.0, 0.0, 0.3], [0.0, 20.0, 0.3]])
    for faces in ([0, 1, 2, 0, 2, 1, 1, 2, 0], [0, 2, 1, 0, 1, 2]):
        frags = rasterize(*as_tensors(verts, faces), 20, 20)
        covered = frags.tri_id >= 0
        assert covered.sum() > 150 and (frags.tri_id[covered] == 0).all()


def test_backface_culling_keeps_only_triangles_the_viewer_sees_counter_clockwise():
    # In y-down pixel coordinates, (0,0) -> (0,20) -> (20,0) runs counter-clockwise on screen.
    verts = np.array([[0.0, 0.0, 0.0], [0.0, 20.0, 0.0], [20.0, 0.0, 0.0]])
    front = rasterize(*as_tensors(verts, [0, 1, 2]), 20, 20, cull_backfaces=True)
    back = rasterize(*as_tensors(verts, [0, 2, 1]), 20, 20, cull_backfaces=True)
    assert (front.tri_id >= 0).sum() > 150
    assert (back.tri_id < 0).all()


def test_degenerate_and_non_finite_triangles_are_skipped():
    verts = np.array([[0, 0, 0], [10, 10, 0], [20, 20, 0], [0, 0, 0], [np.nan, 5, 0], [9, 0, 0]])
    frags = rasterize(*as_tensors(verts, [0, 1, 2, 3, 4, 5]), 20, 20)
    assert (frags.tri_id < 0).all()
    none = rasterize(*as_tensors(verts, np.zeros((0, 3))), 20, 20)
    assert (none.tri_id < 0).all()


def test_depth_on_a_sliver_stays_between_its_corners_depths():
    verts = np.array([[0.2, 3.45, -2.0], [60.0, 3.46, 5.0], [30.0, 3.56, 1.0]])
    frags = rasterize(*as_tensors(verts, [0, 1, 2]), 8, 64)
    covered = frags.tri_id >= 0
    assert covered.sum() > 0
    assert (frags.depth[covered] >= -2.0).all() and (frags.depth[covered] <= 5.0).all()


def test_results_do_not_depend_on_the_chunk_size():
    verts, faces = grid_mesh(20, 6.5, 2.5, seed=3)
    verts[:, 2] = np.random.default_rng(3).uniform(0, 1, len(verts))
    faces = np.concatenate([faces, faces[::-1, [0, 2, 1]]])  # every triangle twice, overlapping
    a = rasterize(*as_tensors(verts, faces), 130, 131, chunk_candidates=1 << 22)
    b = rasterize(*as_tensors(verts, faces), 130, 131, chunk_candidates=400)
    assert torch.equal(a.tri_id, b.tri_id) and torch.equal(a.bary, b.bary)
    assert torch.equal(a.depth, b.depth)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_gives_the_same_fragments_as_cpu():
    verts, faces = grid_mesh(30, 4.1, 1.5, seed=4)
    v, f = as_tensors(verts, faces)
    cpu = rasterize(v, f, 128, 128)
    gpu = rasterize(v.cuda(), f.cuda(), 128, 128)
    assert torch.equal(cpu.tri_id, gpu.tri_id.cpu())
    assert torch.allclose(cpu.bary, gpu.bary.cpu(), atol=1e-6)
