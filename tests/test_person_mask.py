"""The person mask on real portraits: the subject, all of them (hair, shoulders), and nothing else
(the backdrop, a second person), because the head's silhouette, its hair volume and every pixel
painted on it come from this mask."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from backend.reconstruct.camera import estimate_camera
from backend.reconstruct.head_prior import CHIN
from backend.reconstruct.imagefile import decode_image
from backend.reconstruct.perception import shared_perceiver
from backend.reconstruct.person_mask import keep_component_at, subject_mask
from backend.reconstruct.pipeline import ReconstructConfig
from backend.reconstruct.silhouette import build_canvas, resample_to_canvas

FOREHEAD_TOP = 10


def _seen(portraits_dir: Path, name: str):
    image = decode_image((portraits_dir / name).read_bytes())
    return image, shared_perceiver()(image)


def _corner_patches(mask: np.ndarray, frac: float = 0.1) -> list[np.ndarray]:
    h, w = mask.shape
    a, b = int(h * frac), int(w * frac)
    return [mask[:a, :b], mask[:a, -b:], mask[-a:, :b], mask[-a:, -b:]]


def test_a_cartoon_on_a_plain_backdrop_keeps_the_backdrop_out(portraits_dir):
    _, seen = _seen(portraits_dir, "lp_s7.jpg")
    for patch in _corner_patches(seen.person_mask):
        assert (patch > 0.5).mean() < 0.01


def test_hair_and_shoulders_belong_to_the_person(portraits_dir):
    image, seen = _seen(portraits_dir, "astronaut.png")
    lm = seen.landmarks_px
    face_w = np.ptp(lm[:, 0])
    face_h = np.ptp(lm[:, 1])
    centre_x = lm[:, 0].mean()
    hair = lm[FOREHEAD_TOP, :2] - [0, 0.15 * face_h]  # the hair above the forehead
    h = image.shape[0]
    shoulders = [(centre_x - 1.2 * face_w, h - 10), (centre_x + 1.2 * face_w, h - 10)]
    for col, row in [hair, *shoulders]:
        assert seen.person_mask[int(row), int(col)] > 0.5


def test_a_second_person_is_not_part_of_the_subject(portraits_dir):
    _, seen = _seen(portraits_dir, "two_faces.jpg")
    assert seen.faces_found == 2
    chosen_x = seen.landmarks_px[:, 0].mean()
    person = seen.person_mask > 0.5
    cols = np.flatnonzero(person.any(axis=0))
    # Both men stand side by side: the subject's mask lies on the chosen face's side only.
    width = seen.person_mask.shape[1]
    subject_side = (cols > width / 2) if chosen_x > width / 2 else (cols < width / 2)
    assert subject_side.mean() > 0.95
    assert person[int(seen.landmarks_px[CHIN, 1]) + 5, int(chosen_x)]


def test_the_canvas_is_built_round_the_subject_even_beside_a_bigger_person(portraits_dir):
    image, seen = _seen(portraits_dir, "lp_s7.jpg")
    config = ReconstructConfig()
    camera, landmarks_m = estimate_camera(seen.landmarks_px, (image.shape[1], image.shape[0]),
                                          config.camera)
    # A larger figure pasted beside the subject, not touching it.
    crowd = seen.person_mask.copy()
    h, w = crowd.shape
    subject_right = np.flatnonzero((crowd > 0.5).any(axis=0)).max()
    crowd[:, min(w - 1, subject_right + 60):] = 1.0
    stranger_and_subject = (resample_to_canvas(crowd, camera, config.canvas) > 0.5).sum()
    canvas = build_canvas(crowd, camera, landmarks_m[CHIN], config.canvas)
    alone = build_canvas(seen.person_mask, camera, landmarks_m[CHIN], config.canvas)
    assert canvas.mask.sum() < stranger_and_subject / 2  # the stranger is the bigger one
    assert np.array_equal(canvas.mask, alone.mask)


def test_a_neck_thinned_to_a_gap_still_joins_head_and_shoulders():
    prob = np.zeros((200, 200), np.float32)
    prob[20:80, 70:130] = 1.0  # head
    prob[84:200, 20:180] = 1.0  # shoulders, 4 px below the head
    face = np.array([[80.0, 30.0], [120.0, 30.0], [100.0, 70.0]])  # 40 px wide
    assert (subject_mask(prob, face) > 0.5).sum() == (prob > 0.5).sum()


def test_a_part_far_from_the_point_is_dropped():
    mask = np.zeros((100, 100), bool)
    mask[10:40, 10:40] = True
    mask[10:90, 60:95] = True  # larger, but not where the point is
    kept = keep_component_at(mask, np.array([25.0, 25.0]), bridge_px=5)
    assert kept[25, 25] and not kept[50, 80]
    # A point outside the mask takes the nearest part.
    kept = keep_component_at(mask, np.array([50.0, 50.0]))
    assert kept[50, 70] and not kept[25, 25]


def test_an_empty_mask_stays_empty():
    assert not keep_component_at(np.zeros((5, 5), bool), np.array([2.0, 2.0])).any()
