"""Lifting the photo: a pixel is painted only on the surface the photo's ray meets, never on a
surface behind the step where a face layer ends in front of the skull (a displaced ghost copy)."""
from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from backend.appearance import (AppearanceConfig, _bilinear, _zbuffer, beside_step, lift_layer, mesh_layer,
                                smooth_normals)
from backend.camera import estimate_camera
from backend.head_prior import CHIN, HeadPrior
from backend.meshing import extract_mesh
from backend.perception import shared_perceiver
from backend.silhouette import build_canvas
from backend.triplane import build_geometry
from backend.video.frames import iter_frames


@pytest.fixture(scope="module")
def webcam_head(driving_dir):
    """A webcam frame with the face large in the frame (lp_d9 frame 190, the held-out case that
    showed glasses and cheek edges repeated round the sides of the head)."""
    path = driving_dir / "lp_d9.mp4"
    if not path.exists():
        pytest.skip(f"driving video not found at {path}")
    image = next(itertools.islice(iter_frames(path), 190, None))
    seen = shared_perceiver()(image)
    camera, landmarks_m = estimate_camera(seen.landmarks_px, (image.shape[1], image.shape[0]))
    canvas = build_canvas(seen.person_mask, camera, landmarks_m[CHIN])
    tri = build_geometry(HeadPrior(landmarks_m, camera, canvas))
    verts_m, faces = extract_mesh(tri)
    return image, seen.person_mask, camera, landmarks_m, tri, verts_m, faces


def test_no_photo_pixel_lands_behind_a_step_beside_the_face(webcam_head):
    image, person_mask, camera, landmarks_m, tri, verts_m, faces = webcam_head
    config = AppearanceConfig(resolution=512)
    zbuf = _zbuffer(verts_m, faces, camera, 1.0)
    ppm = camera.pixels_per_metre
    face_px = camera.project(landmarks_m[:468].astype(np.float64))[:, :2]
    step = beside_step(zbuf, face_px, ppm, config)
    # An independent reading of "a surface 2 cm nearer lies within 1 cm": a square window's minimum.
    z = np.where(np.isfinite(zbuf.numpy()), zbuf.numpy(), 1e6)
    window = 2 * int(round(config.step_reach_m / np.sqrt(2) * ppm)) + 1  # the square inside the disc
    behind_step = torch.from_numpy(((z - ndi.minimum_filter(z, window)) > 0.025).astype(np.float32))
    outside_face = np.ones(z.shape, np.uint8)
    cv2.fillConvexPoly(outside_face, np.round(cv2.convexHull(face_px.astype(np.float32))).astype(np.int32), 0)
    outside_face = torch.from_numpy(outside_face.astype(np.float32))
    assert (behind_step.numpy() > 0).mean() > 0.002  # the frame does show such a step

    normals = smooth_normals(verts_m, faces)
    image_t = torch.from_numpy(image.astype(np.float32) / 255.0)
    mask_t = torch.from_numpy(person_mask.astype(np.float32))
    R = torch.tensor(camera.R_cam_from_canonical, dtype=torch.float32)
    painted, ghost, hidden = 0, 0, 0
    for plane in range(3):
        for layer in range(2):
            geometry = mesh_layer(tri, verts_m, faces, normals, plane, layer, config.resolution)
            (_, conf), pts = lift_layer(geometry, image_t, mask_t, zbuf, step, 1.0, camera, config)
            cam = torch.from_numpy(pts).view(-1, 3) @ R.T
            uv = cam[:, :2] * ppm + torch.tensor(camera.principal_px, dtype=torch.float32)
            on = torch.from_numpy(conf).view(-1) > 0
            painted += int(on.sum())
            ghost += int((on & (_bilinear(behind_step[..., None], uv)[:, 0] > 0.5)
                          & (_bilinear(outside_face[..., None], uv)[:, 0] > 0.5)).sum())
            hidden += int((on & (cam[:, 2] - _bilinear(zbuf[..., None], uv)[:, 0] > 0.003)).sum())
    assert painted > 20_000
    assert ghost / painted < 0.002  # before the step rule: the skull beside the face took its edge
    assert hidden / painted < 0.02  # nearer geometry on the photo's ray never lends its pixel
