"""Ears: where anatomy puts them, standing out of a short-haired head in skin, and under long hair
where the photo's hair hangs over them."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from priors import prior_of
from texture_probe import texture_colour

from backend.reconstruct.ears import EarConfig, ear_surface_points, ear_weight, place_ears
from backend.reconstruct.head_prior import HeadPrior
from backend.reconstruct.imagefile import decode_image
from backend.reconstruct.pipeline import ReconstructConfig, reconstruct
from backend.rig import pose_vertices
from backend.rig.landmarks import face_scale


def _outer_points(prior: HeadPrior) -> torch.Tensor:
    """(2, 3) a point just outside the middle of each ear's outer face."""
    return torch.tensor(np.stack([e.centre + (e.thickness + 0.002) * e.n
                                  for e in prior.ears]), dtype=torch.float32)


def test_the_ears_sit_behind_the_jaw_at_eye_height(portraits_dir):
    _, lm = prior_of(portraits_dir, "fr_obama.jpg")
    ears = place_ears(lm, lambda y, z: 0.075)
    s = face_scale(lm)
    right, left = ears
    assert left.centre[0] > 0.07 and right.centre[0] < -0.07
    np.testing.assert_allclose(left.centre * [-1, 1, 1], right.centre, atol=1e-3)  # mirror images
    eye_z = lm[[33, 263], 2].mean()
    for ear in ears:
        front_edge = ear.centre - ear.half_width * ear.u
        assert lm[454, 1] < front_edge[1] < lm[454, 1] + 0.02  # just behind the face's side
        top, bottom = ear.centre + ear.half_height * ear.v, ear.centre - ear.half_height * ear.v
        assert lm[2, 2] < ear.centre[2] < eye_z + 0.02 * s  # between the nose's base and the brows
        assert top[2] > eye_z + 0.02 * s and bottom[2] < eye_z - 0.02 * s
        assert ear.n[0] * ear.centre[0] > 0 and ear.u[1] > 0  # outer face out, rim behind the front edge
        assert top[1] > bottom[1]  # leaning back
    assert not place_ears(lm, lambda y, z: 0.075, EarConfig(enabled=False))


def test_each_ear_is_fitted_to_the_ear_the_photo_shows(portraits_dir):
    # fr_obama's ears stand out of his silhouette: each fitted ear reaches into that bump and
    # barely out of the person mask, and lies within the fit's reach of the anatomical place.
    prior, lm = prior_of(portraits_dir, "fr_obama.jpg")
    plain, _ = prior_of(portraits_dir, "fr_obama.jpg", use_photo=False)
    canvas, R = prior.canvas, prior.R.numpy().astype(np.float64)
    for fitted, default in zip(prior.ears, plain.ears):
        assert abs(fitted.centre[2] - default.centre[2]) <= 0.021
        px = np.round(canvas.to_pixel((ear_surface_points([fitted], 3000) @ R.T)[:, :2])).astype(int)
        inside = canvas.mask[px[:, 1], px[:, 0]]
        assert inside.mean() > 0.9, inside.mean()


@pytest.mark.parametrize("name, shows_ears", [("fr_obama.jpg", True), ("lp_s42.jpg", False)])
def test_short_hair_shows_the_ears_and_long_hair_covers_them(portraits_dir, name, shows_ears):
    # Just outside where each ear's outer face would be: air beside a short-haired head's ears,
    # inside the hair that hangs over a long-haired head's.
    outside_ears = _outer_points(prior_of(portraits_dir, name, use_photo=False)[0])
    prior, _ = prior_of(portraits_dir, name)
    assert len(prior.ears) == (2 if shows_ears else 0)
    field = prior(outside_ears)
    assert (field > 0).all() if shows_ears else (field < 0).all(), (name, field)


def test_a_short_haired_head_has_skin_coloured_ears_standing_out_that_stay_put_as_the_jaw_opens(portraits_dir):
    image = decode_image((portraits_dir / "fr_obama.jpg").read_bytes())
    rec = reconstruct(image, ReconstructConfig(texture_size=512), name="fr_obama")
    prior, _ = prior_of(portraits_dir, "fr_obama.jpg")
    cheek_px = np.round(rec.camera.project(rec.landmarks_m[[50, 280]])[:, :2]).astype(int)
    cheeks = np.median([image[r - 2:r + 3, c - 2:c + 3].reshape(-1, 3) for c, r in cheek_px], axis=(0, 1)) / 255.0
    centroids = rec.verts_m[rec.faces].mean(1).astype(np.float64)
    hair = texture_colour(rec, np.flatnonzero(centroids[:, 2] > centroids[:, 2].max() - 0.015))
    assert len(prior.ears) == 2
    for ear in prior.ears:
        outer = np.flatnonzero((ear_weight(centroids, [ear]) > 0.99) & ((centroids - ear.centre) @ ear.n > 0))
        assert len(outer) > 200
        front_edge_x = abs(ear.centre[0] - ear.half_width * ear.u[0])
        assert np.abs(centroids[outer, 0]).max() > front_edge_x + 0.01  # the rim stands out 1 cm and more
        colour = texture_colour(rec, outer)
        assert np.linalg.norm(colour - cheeks) < 0.5 * np.linalg.norm(colour - hair), (colour, cheeks, hair)
    # The jaw turns about a hinge just in front of the ears: they must not swing with it.
    rig = rec.rig
    weights = np.zeros((1, len(rig.expression_names)), np.float32)
    weights[0, rig.expression_names.index("jawOpen")] = 1.0
    opened = pose_vertices(rig, rec.verts_m, weights, np.zeros((1, len(rig.joint_names), 3), np.float32))[0]
    on_ears = np.flatnonzero(ear_weight(rec.verts_m.astype(np.float64), prior.ears) > 0.99)
    assert np.linalg.norm(opened[on_ears] - rec.verts_m[on_ears], axis=1).max() < 0.0005
