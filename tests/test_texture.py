"""Specification of the UV atlas, texture baking and the software renderer, on a sphere."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from backend.reconstruct.texture import bake_texture
from backend.reconstruct.uv_atlas import build_atlas
from backend.render.normals import vertex_normals
from backend.render.raster import rasterize
from backend.render.views import front_camera, orbit_camera, render_textured

RADIUS = 0.1  # metres
ATLAS_PX, PADDING_PX = 512, 4


@pytest.fixture(scope="module")
def sphere():
    """(verts (V, 3) float32, faces (F, 3) int32, loop_uvs (F, 3, 2) float32) of a unwrapped sphere."""
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=RADIUS)
    verts = np.asarray(mesh.vertices, dtype=np.float32)
    faces = np.asarray(mesh.faces, dtype=np.int32)
    return verts, faces, build_atlas(verts, faces, ATLAS_PX, PADDING_PX)


def chart_ids(faces: np.ndarray, loop_uvs: np.ndarray) -> np.ndarray:
    """(F,) chart index: faces joined through corners that share both a vertex and its UV."""
    key = np.concatenate([faces.reshape(-1, 1).astype(np.float64), loop_uvs.reshape(-1, 2)], 1)
    _, uv_vertex = np.unique(key, axis=0, return_inverse=True)
    n_faces, n_uv_vertices = len(faces), uv_vertex.max() + 1
    face_of_corner = np.repeat(np.arange(n_faces), 3)
    graph = coo_matrix((np.ones(3 * n_faces), (face_of_corner, n_faces + uv_vertex.ravel())),
                       shape=(n_faces + n_uv_vertices,) * 2)
    _, label = connected_components(graph, directed=False)
    return label[:n_faces]


def uv_chart_map(faces, loop_uvs, size, reverse=False) -> np.ndarray:
    """(size, size) chart index of the UV triangle over each texel centre, -1 where none."""
    order = np.arange(len(faces))[::-1] if reverse else np.arange(len(faces))
    uv = torch.as_tensor(loop_uvs[order].reshape(-1, 2))
    uv_px = torch.stack([uv[:, 0] * size, (1 - uv[:, 1]) * size, torch.zeros(len(uv))], 1)
    frags = rasterize(uv_px, torch.arange(len(uv)).reshape(-1, 3), size, size)
    charts = chart_ids(faces, loop_uvs)[order]
    tri = frags.tri_id.numpy()
    return np.where(tri >= 0, charts[np.maximum(tri, 0)], -1)


def surface_colour(points: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
    """A smooth test pattern over the sphere, RGB in [0, 1]."""
    p = points / RADIUS
    return torch.stack([0.5 + 0.4 * torch.sin(5 * p[:, 0] + 2 * p[:, 2]),
                        0.5 + 0.4 * torch.cos(4 * p[:, 1]),
                        0.5 + 0.4 * p[:, 2]], 1)


def test_the_atlas_gives_every_face_corner_a_uv_in_the_unit_square(sphere):
    verts, faces, loop_uvs = sphere
    assert loop_uvs.shape == (len(faces), 3, 2) and loop_uvs.dtype == np.float32
    assert loop_uvs.min() >= 0 and loop_uvs.max() <= 1
    assert loop_uvs.max() > 0.95  # the packed charts fill the square along one side at least


def test_the_atlas_keeps_the_face_order(sphere):
    # Every chart is scaled to the same texel density, so each UV triangle's area is nearly its
    # 3D triangle's area times one constant; a shuffled face order would scatter the ratio.
    verts, faces, loop_uvs = sphere
    corners = verts[faces]
    area_3d = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]),
                             axis=1)
    e1, e2 = loop_uvs[:, 1] - loop_uvs[:, 0], loop_uvs[:, 2] - loop_uvs[:, 0]
    area_uv = np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
    ratio = area_uv / area_3d
    assert np.mean(np.abs(np.log(ratio / np.median(ratio))) < np.log(1.5)) > 0.95


def test_charts_do_not_overlap_and_keep_apart(sphere):
    verts, faces, loop_uvs = sphere
    assert len(np.unique(chart_ids(faces, loop_uvs))) > 1
    charts = uv_chart_map(faces, loop_uvs, ATLAS_PX)
    # Overlapping charts would trade texels when the draw order (the tie-break) is reversed.
    assert np.array_equal(charts, uv_chart_map(faces, loop_uvs, ATLAS_PX, reverse=True))
    # Within any 3 x 3 block of texels (padding 4) there is at most one chart.
    big = charts.max() + 1
    highest = ndimage.maximum_filter(charts, size=PADDING_PX - 1, mode="constant", cval=-1)
    lowest = ndimage.minimum_filter(np.where(charts >= 0, charts, big), size=PADDING_PX - 1,
                                    mode="constant", cval=big)
    covered = charts >= 0
    assert np.array_equal(highest[covered], lowest[covered])


def test_a_zero_area_face_takes_a_uv_its_vertices_have_elsewhere_not_the_atlas_corner():
    # Split an edge a-b of face (a, b, c) at its midpoint m, closing the mesh with the flat face
    # (a, b, m): xatlas leaves such faces out of every chart.
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=RADIUS)
    verts = np.asarray(mesh.vertices, dtype=np.float32)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    a, b, c = faces[0]
    m = len(verts)
    verts = np.vstack([verts, (verts[a] + verts[b]) / 2])
    faces = np.vstack([faces[1:], [[a, m, c], [m, b, c], [a, b, m]]]).astype(np.int32)
    loop_uvs = build_atlas(verts, faces, 256, 2)
    flat = loop_uvs[-1]
    assert np.array_equal(flat[0], flat[1]) and np.array_equal(flat[0], flat[2])
    elsewhere = loop_uvs[:-1][np.isin(faces[:-1], [a, b, m])]  # UVs of a, b, m in other faces
    assert (np.abs(elsewhere - flat[0]).sum(1) == 0).any()


def test_vertex_normals_of_a_sphere_point_along_the_radius(sphere):
    verts, faces, _ = sphere
    normals = vertex_normals(verts, faces)
    radial = verts / np.linalg.norm(verts, axis=1, keepdims=True)
    assert normals.shape == verts.shape and isinstance(normals, np.ndarray)
    assert np.degrees(np.arccos(np.clip((normals * radial).sum(1), -1, 1))).max() < 1.0
    as_tensor = vertex_normals(torch.as_tensor(verts), torch.as_tensor(faces))
    assert torch.allclose(as_tensor, torch.as_tensor(normals))


def test_colour_fn_sees_surface_points_and_unit_normals_of_every_covered_texel(sphere):
    verts, faces, loop_uvs = sphere
    seen = []

    def record(points, normals):
        seen.append((points, normals))
        return torch.full_like(points, 0.25)

    size = 256
    texture = bake_texture(verts, faces, loop_uvs, size, record, extrapolate_px=0, chunk_texels=10_000)
    points = torch.cat([p for p, _ in seen])
    normals = torch.cat([n for _, n in seen])
    assert len(seen) > 1  # called in chunks
    assert texture.shape == (size, size, 3) and texture.dtype == np.uint8
    assert (texture == 64).all()  # round(0.25 * 255), covered texels and filled ones alike
    # A chord of the icosphere dips at most ~0.1 % below the radius.
    assert torch.allclose(points.norm(dim=1), torch.tensor(RADIUS), rtol=2e-3)
    assert torch.allclose(normals.norm(dim=1), torch.tensor(1.0), atol=1e-5)
    assert torch.allclose(normals, points / points.norm(dim=1, keepdim=True), atol=0.02)
    e1, e2 = loop_uvs[:, 1] - loop_uvs[:, 0], loop_uvs[:, 2] - loop_uvs[:, 0]
    uv_area_texels = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]).sum() * size * size
    assert abs(len(points) / uv_area_texels - 1) < 0.03


def test_texels_around_each_chart_see_the_surface_continued_past_the_seam(sphere):
    verts, faces, loop_uvs = sphere
    seen = []

    def record(points, normals):
        seen.append(points)
        return torch.zeros_like(points)

    bake_texture(verts, faces, loop_uvs, 256, record, extrapolate_px=0)
    inside = torch.cat(seen)
    seen.clear()
    bake_texture(verts, faces, loop_uvs, 256, record, extrapolate_px=2)
    with_band = torch.cat(seen)
    assert len(with_band) > 1.1 * len(inside)
    # The band's points lie on the faces' planes a few texels (~2 mm) beyond the edges: near the
    # sphere, not at some default position.
    assert torch.allclose(with_band.norm(dim=1), torch.tensor(RADIUS), rtol=5e-3)


def test_baked_normals_render_back_as_the_analytic_sphere_normal_from_the_front(sphere, tmp_path):
    verts, faces, loop_uvs = sphere
    texture = bake_texture(verts, faces, loop_uvs, 512, lambda p, n: n * 0.5 + 0.5)
    camera = front_camera(160, pixels_per_metre=700.0)
    render = render_textured(verts, faces, loop_uvs, texture, camera, ambient=1.0)
    Image.fromarray(render.rgb).save(tmp_path / "sphere_normals.png")

    rows, cols = np.mgrid[0:160, 0:160] + 0.5
    x, z = (cols - 80) / 700.0, -(rows - 80) / 700.0  # canonical X right, Z up
    inner = x * x + z * z < (0.95 * RADIUS) ** 2  # away from the silhouette's polygon edge
    y = -np.sqrt(np.maximum(RADIUS ** 2 - x * x - z * z, 0))  # the front half faces -Y
    expected = (np.stack([x, y, z], -1) / RADIUS * 0.5 + 0.5) * 255
    assert render.mask[inner].all()
    error = np.abs(render.rgb[inner].astype(float) - expected[inner])
    assert error.mean() < 2.0 and np.percentile(error, 99) < 6.0


def test_a_texture_mapped_render_matches_colour_fn_on_the_surface_across_seams(sphere):
    # About 2 pixels per texel, from an oblique view, so that many seams show.
    verts, faces, loop_uvs = sphere
    texture = bake_texture(verts, faces, loop_uvs, 256, surface_colour)
    camera = orbit_camera(front_camera(240, pixels_per_metre=1100.0), yaw_deg=35, pitch_deg=25)
    render = render_textured(verts, faces, loop_uvs, texture, camera, ambient=1.0)

    frags = rasterize(torch.as_tensor(camera.project(verts.astype(np.float64)), dtype=torch.float32),
                      torch.as_tensor(faces, dtype=torch.int64), 240, 240)
    mask = frags.tri_id >= 0
    assert np.array_equal(mask.numpy(), render.mask)
    corners = torch.as_tensor(verts)[torch.as_tensor(faces, dtype=torch.int64)[frags.tri_id[mask]]]
    points = torch.einsum("nk,nkd->nd", frags.bary[mask], corners)
    direct = surface_colour(points, points) * 255
    error = np.abs(render.rgb[render.mask].astype(float) - direct.numpy())
    assert np.percentile(error, 99.9) < 3.0 and error.mean() < 1.0


def test_a_textured_sphere_from_the_front_looks_right(sphere, tmp_path):
    """Upper half red, lower half blue, a green band of longitude facing the viewer."""
    verts, faces, loop_uvs = sphere

    def pattern(points, normals):
        red = torch.tensor([0.9, 0.15, 0.1]).expand_as(points)
        blue = torch.tensor([0.1, 0.2, 0.9]).expand_as(points)
        colour = torch.where(points[:, 2:] > 0, red, blue)
        facing = (points[:, 1] < 0) & (points[:, 0].abs() < 0.02)
        return torch.where(facing[:, None], torch.tensor([0.1, 0.8, 0.2]), colour)

    texture = bake_texture(verts, faces, loop_uvs, 512, pattern)
    Image.fromarray(texture).save(tmp_path / "sphere_texture.png")
    camera = front_camera((200, 180), pixels_per_metre=800.0)
    render = render_textured(verts, faces, loop_uvs, texture, camera)
    Image.fromarray(render.rgb).save(tmp_path / "sphere_front.png")

    assert render.rgb.shape == (180, 200, 3)
    disc_px = np.pi * (RADIUS * 800) ** 2
    assert abs(render.mask.sum() / disc_px - 1) < 0.02
    assert (render.rgb[~render.mask] == 255).all() and np.isinf(render.depth[~render.mask]).all()
    upper, lower, centre = render.rgb[50, 60], render.rgb[130, 60], render.rgb[90, 100]
    assert upper[0] > 2 * upper[2] and lower[2] > 2 * lower[0]
    assert centre[1] > 2 * max(centre[0], centre[2])
    # Lit from above-left of the viewer: the upper-left rim is brighter than the lower-right one.
    assert render.rgb[45, 55].sum() > render.rgb[135, 145].sum()


def test_front_camera_puts_x_right_z_up_and_minus_y_near():
    camera = front_camera((320, 240), pixels_per_metre=1000.0, centre_m=(0.01, 0.0, 0.02))
    (u0, v0, d0), (ux, vx, _), (uz, vz, _), (_, _, dy) = camera.project(
        np.array([[0.01, 0, 0.02], [0.02, 0, 0.02], [0.01, 0, 0.03], [0.01, -0.01, 0.02]]))
    assert (u0, v0) == pytest.approx((160, 120))
    assert (ux - u0, vx - v0) == pytest.approx((10, 0))
    assert (uz - u0, vz - v0) == pytest.approx((0, -10))
    assert dy < d0


def test_orbit_camera_turns_the_nose_to_the_viewers_right_for_positive_yaw():
    base = front_camera(200, pixels_per_metre=1000.0)
    same = orbit_camera(base, 0.0)
    assert np.allclose(same.R_cam_from_canonical, base.R_cam_from_canonical)
    assert np.allclose(same.principal_px, base.principal_px) and same.image_size == base.image_size

    nose, right_ear, top = np.array([[0, -0.1, 0], [-0.1, 0, 0], [0, 0, 0.1]])
    turned = orbit_camera(base, 90.0)
    u, v, _ = turned.project(nose[None])[0]
    assert (u, v) == pytest.approx((200, 100))  # 0.1 m right of the centre
    depths = turned.project(np.stack([nose, right_ear, -right_ear]))[:, 2]
    assert depths.argmin() == 1  # the subject's right ear (-X) faces the viewer
    assert np.allclose(turned.project(np.zeros((1, 3)))[0, :2], base.principal_px)

    from_above = orbit_camera(base, 0.0, pitch_deg=90.0)
    depths = from_above.project(np.stack([nose, top, -top]))[:, 2]
    assert depths.argmin() == 1  # the top of the head comes toward the viewer
    u, v, _ = from_above.project(nose[None])[0]
    assert v > 100  # ... and the nose points down the image


def test_a_marker_on_the_nose_moves_to_the_viewers_right_when_yawed(sphere):
    verts, faces, loop_uvs = sphere
    texture = bake_texture(verts, faces, loop_uvs, 256,
                           lambda p, n: torch.where((n[:, 1] < -0.98)[:, None], 0.0, 1.0).expand_as(p))
    camera = orbit_camera(front_camera(200, pixels_per_metre=800.0), yaw_deg=60)
    render = render_textured(verts, faces, loop_uvs, texture, camera, ambient=1.0)
    dark = render.mask & (render.rgb.sum(-1) < 100)
    cols = np.nonzero(dark)[1]
    assert len(cols) > 20
    assert cols.mean() + 0.5 - 100 == pytest.approx(RADIUS * 800 * np.sin(np.radians(60)), abs=3)
