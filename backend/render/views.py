"""A small software renderer for textured heads, for evaluation and tests (Blender renders for real).

Cameras are backend.render.camera.OrthoCamera: camera axes x right, y down, z away from the
viewer; a canonical point p lands on pixel pixels_per_metre * (R @ p)[:2] + principal_px. Or a
PinholeCamera, for a view through a lens from nearby (a webcam's), with the same axes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from backend.render.camera import R_FRONT, OrthoCamera
from backend.render.normals import vertex_normals
from backend.render.raster import rasterize


@dataclass
class RenderResult:
    """rgb: (H, W, 3) uint8; mask: (H, W) bool, True on the head; depth: (H, W) float32 camera z in
    metres (larger = farther), +inf off the head."""

    rgb: np.ndarray
    mask: np.ndarray
    depth: np.ndarray


def front_camera(image_size: int | tuple[int, int], pixels_per_metre: float,
                 centre_m=(0.0, 0.0, 0.0)) -> OrthoCamera:
    """Canonical frontal view: camera on -Y looking toward +Y, +Z up in the image, +X to the right.

    image_size: side in pixels, or (width, height); centre_m: (3,) canonical point drawn at the
    image centre.
    """
    width, height = (image_size, image_size) if np.isscalar(image_size) else image_size
    centre_cam = R_FRONT @ np.asarray(centre_m, dtype=np.float64)
    principal = np.array([width / 2.0, height / 2.0]) - pixels_per_metre * centre_cam[:2]
    return OrthoCamera(R_FRONT.copy(), float(pixels_per_metre), principal, (int(width), int(height)))


@dataclass
class PinholeCamera:
    """A perspective camera: a canonical point p is at c = R @ p + shift_m in camera axes and lands
    on pixel focal_px * c[:2] / c[2] + principal_px; depth is c[2] (metres from the lens).
    The rasteriser interpolates UVs linearly on the screen, not perspective-correctly: the error is
    a fraction of a texel on triangles a few pixels wide."""

    R_cam_from_canonical: np.ndarray  # (3, 3)
    shift_m: np.ndarray  # (3,)
    focal_px: float
    principal_px: np.ndarray  # (2,)
    image_size: tuple[int, int]  # (width, height)

    def project(self, points_m: np.ndarray) -> np.ndarray:
        """points_m: (N, 3) canonical metres -> (N, 3): pixel u, pixel v, depth in metres."""
        cam = points_m @ self.R_cam_from_canonical.T + self.shift_m
        uv = cam[:, :2] / cam[:, 2:3] * self.focal_px + self.principal_px
        return np.concatenate([uv, cam[:, 2:3]], axis=1)


def through_lens(camera: OrthoCamera, distance_m: float, centre_m=(0.0, 0.0, 0.0)) -> PinholeCamera:
    """``camera``'s view from a lens distance_m from centre_m, which keeps its pixel and the scale
    of its depth plane: the face is as big as in the orthographic view, but its near parts (nose,
    lips) are larger than its far ones (cheeks, ears), as a nearby camera sees them."""
    R = np.asarray(camera.R_cam_from_canonical, dtype=np.float64)
    centre_cam = R @ np.asarray(centre_m, dtype=np.float64)
    centre_px = camera.pixels_per_metre * centre_cam[:2] + np.asarray(camera.principal_px)
    return PinholeCamera(R.copy(), np.array([0.0, 0.0, distance_m]) - centre_cam,
                         float(camera.pixels_per_metre * distance_m), centre_px, tuple(camera.image_size))


def orbit_camera(base: OrthoCamera, yaw_deg: float, pitch_deg: float = 0.0) -> OrthoCamera:
    """Orbit a camera about the canonical origin; yaw 0 and pitch 0 give `base` back.

    yaw_deg: the head is seen as if turned by yaw_deg about canonical +Z (counter-clockwise seen
        from above). From the front camera, positive yaw swings the nose toward the viewer's right
        (the subject's left) and brings the subject's right cheek and ear into view.
    pitch_deg: then the camera rises by pitch_deg about its own horizontal axis through the origin:
        positive pitch looks down on the head (its top comes toward the viewer).
    The canonical origin stays on the same pixel.
    """
    yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
    c, s = np.cos(yaw), np.sin(yaw)
    turn_head = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    c, s = np.cos(pitch), np.sin(pitch)
    # About camera x: the image-top direction (0, -1, 0) goes to (0, -cos, -sin), toward the viewer.
    raise_camera = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    rotation = raise_camera @ base.R_cam_from_canonical @ turn_head
    return OrthoCamera(rotation, base.pixels_per_metre, np.array(base.principal_px, dtype=np.float64),
                       tuple(base.image_size))


def sample_bilinear(texture: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear lookup with clamp-to-edge.

    texture: (T_h, T_w, C) float32, row 0 = top (v = 1); uv: (N, 2) in [0, 1], origin bottom-left.
    Returns (N, C) float32.
    """
    height, width = texture.shape[:2]
    x = uv[:, 0] * width - 0.5  # texel centres sit at integer + 0.5
    y = (1.0 - uv[:, 1]) * height - 0.5
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x0, y0 = x0.long(), y0.long()
    cols = (x0.clamp(0, width - 1), (x0 + 1).clamp(0, width - 1))
    rows = (y0.clamp(0, height - 1), (y0 + 1).clamp(0, height - 1))
    top = texture[rows[0], cols[0]] * (1 - fx) + texture[rows[0], cols[1]] * fx
    bottom = texture[rows[1], cols[0]] * (1 - fx) + texture[rows[1], cols[1]] * fx
    return top * (1 - fy) + bottom * fy


def render_textured(verts_m, faces, loop_uvs, texture, camera: "OrthoCamera | PinholeCamera",
                    background=(255, 255, 255), light_dir=(-0.35, -0.45, -1.0),
                    ambient: float = 0.55) -> RenderResult:
    """Render a textured mesh with soft headlight shading.

    verts_m: (V, 3) float32 metres, canonical; faces: (F, 3) int; loop_uvs: (F, 3, 2) float32 in
    [0, 1], origin bottom-left; texture: (T, T, 3) uint8, row 0 = top.
    camera: image size is camera.image_size (width, height).
    light_dir: (3,) direction from the surface toward the light in camera axes (x right, y down,
        z away from the viewer); the default sits above-left of the viewer.
    ambient: shade = ambient + (1 - ambient) * max(0, n . l); 1 turns shading off, which returns
        the texture colours as they are. Both sides of a triangle are lit alike.
    """
    width, height = camera.image_size
    verts = np.asarray(verts_m, dtype=np.float64)
    verts_px = torch.as_tensor(camera.project(verts), dtype=torch.float32)
    f = torch.as_tensor(np.asarray(faces), dtype=torch.int64)
    frags = rasterize(verts_px, f, height, width)

    mask = frags.tri_id >= 0
    tri = frags.tri_id[mask]
    bary = frags.bary[mask]  # (N, 3)
    corner_uvs = torch.as_tensor(np.asarray(loop_uvs), dtype=torch.float32)[tri]  # (N, 3, 2)
    uv = torch.einsum("nk,nkd->nd", bary, corner_uvs)
    albedo = sample_bilinear(torch.as_tensor(np.asarray(texture), dtype=torch.float32) / 255.0, uv)

    rotation = torch.as_tensor(camera.R_cam_from_canonical, dtype=torch.float32)
    normals_cam = vertex_normals(torch.as_tensor(verts, dtype=torch.float32), f) @ rotation.T
    normal = torch.einsum("nk,nkd->nd", bary, normals_cam[f[tri]])
    normal = torch.nn.functional.normalize(normal, dim=1)
    light = torch.nn.functional.normalize(torch.tensor(light_dir, dtype=torch.float32), dim=0)
    # Two-sided: a back face seen through a hole is lit as if it faced the viewer (-z).
    normal = torch.where(normal[:, 2:] > 0, -normal, normal)
    lambert = (normal @ light).clamp(min=0.0)
    shade = ambient + (1.0 - ambient) * lambert

    rgb = torch.tensor(background, dtype=torch.uint8).expand(height, width, 3).clone()
    rgb[mask] = (albedo * shade[:, None] * 255.0).clamp(0, 255).round().to(torch.uint8)
    return RenderResult(rgb.numpy(), mask.numpy(), frags.depth.numpy())
