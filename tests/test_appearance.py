"""Appearance branch: what the photo shows lands on the head, and what it hides continues it."""
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from texture_probe import texture_colour

from backend.reconstruct.appearance import crown_colour
from backend.reconstruct.perception import shared_perceiver
from backend.reconstruct.pipeline import ReconstructConfig, reconstruct

PORTRAITS = Path(__file__).resolve().parents[1] / ".." / "shared" / "portraits"
BROW_TOPS = [105, 66, 334, 296]  # face-mesh points on the upper edge of the brows


def _hair_beside_face(image, seen) -> tuple[np.ndarray, np.ndarray, float]:
    """The hair the photo shows: person pixels beside the face outline and above the eyes.
    Returns (hair mask (H, W) bool, face outline (H, W) bool, the eyes' row)."""
    hull = cv2.convexHull(seen.landmarks_px[:468, :2].astype(np.float32))
    face = np.zeros(image.shape[:2], np.uint8)
    cv2.fillConvexPoly(face, np.round(hull).astype(np.int32), 1)
    eye_row = float(seen.landmarks_px[[33, 263], 1].mean())
    rows = np.arange(image.shape[0])[:, None]
    return (seen.person_mask > 0.5) & (face == 0) & (rows < eye_row), face.astype(bool), eye_row


@pytest.fixture(scope="module")
def cropped_above_brows():
    """fr_rose_leslie (long red hair) cropped in memory a few pixels above her brows, so the top
    of her head is nowhere in the photo; returns (image, reconstruction)."""
    image = np.asarray(Image.open(PORTRAITS / "fr_rose_leslie.jpg").convert("RGB"))
    brow_row = shared_perceiver()(image).landmarks_px[BROW_TOPS, 1].min()
    top = int(brow_row) - 8
    cropped = np.ascontiguousarray(image[top:])
    return cropped, reconstruct(cropped, name="cropped")


def test_a_head_cut_off_above_the_brows_gets_the_hair_it_shows_on_top_and_behind_not_grey(cropped_above_brows):
    image, rec = cropped_above_brows
    hair_px, _, _ = _hair_beside_face(image, shared_perceiver()(image))
    assert hair_px.sum() > 500, "the crop should still show hair beside the face"
    hair = np.median(image[hair_px], axis=0) / 255.0

    centroids = rec.verts_m[rec.faces].mean(1)
    eye_z = rec.landmarks_m[[33, 263], 2].mean()
    top = np.flatnonzero(centroids[:, 2] > centroids[:, 2].max() - 0.015)
    back = np.flatnonzero((centroids[:, 1] > 0.06) & (centroids[:, 2] > eye_z + 0.02))
    grey = np.full(3, 0.5)
    for region in (top, back):
        colour = texture_colour(rec, region)
        assert np.linalg.norm(colour - hair) < 0.5 * np.linalg.norm(grey - hair), (colour, hair)
        assert np.linalg.norm(colour - hair) < 0.15, (colour, hair)


def test_when_no_column_sees_the_band_below_the_head_top_the_crown_is_the_highest_hair_shown_not_grey(cropped_above_brows):
    # The cropped photo as the front (XZ) layer: rows run up (+z), the head goes on 4 cm above
    # the frame's top edge (over every column the person spans) where the camera saw nothing,
    # so the crown band is seen in no column.
    image, _ = cropped_above_brows
    seen = shared_perceiver()(image)
    hair_px, face, eye_row = _hair_beside_face(image, seen)
    # metres per pixel from the outer eye corners, about 9 cm apart on an adult
    step_m = 0.09 / np.linalg.norm(seen.landmarks_px[33, :2] - seen.landmarks_px[263, :2])
    pad = int(0.04 / step_m)
    person = seen.person_mask > 0.5
    above = lambda a, fill: np.concatenate([np.broadcast_to(fill, (pad, *a.shape[1:])), a])[::-1]  # noqa: E731
    colour = above(image / 255.0, 0.0).astype(np.float32)
    conf = above(person.astype(np.float32), 0.0)
    covered = above(person, person.any(0))
    face = above(face, False)
    crown = crown_colour(colour, conf, covered, step_m, face, eye_row=len(colour) - 1 - (eye_row + pad))

    hair = np.median(image[hair_px], axis=0) / 255.0
    grey = np.full(3, 0.5)
    assert np.abs(crown - crown[0]).max() < 1e-6, "one colour for the whole unseen crown"
    assert np.linalg.norm(crown[0] - hair) < 0.1, (crown[0], hair)
    assert np.linalg.norm(crown[0] - grey) > 0.3, crown[0]


def test_a_cartoon_blond_whose_crown_the_photo_saw_only_at_a_slant_keeps_his_blond_round_the_back():
    # lp_s7: a 3-D cartoon boy with blond hair on a grey-blue backdrop. The mesh's crown is seen
    # only at a grazing angle, so the crown takes the hair the photo shows; the strands seen
    # squarely over the forehead are the hair's shadowed side (a dark brown), not its colour.
    image = np.asarray(Image.open(PORTRAITS / "lp_s7.jpg").convert("RGB"))
    seen = shared_perceiver()(image)
    hair_px, _, _ = _hair_beside_face(image, seen)
    hair = np.median(image[hair_px], axis=0) / 255.0
    backdrop = np.median(image[seen.person_mask < 0.05], axis=0) / 255.0
    rec = reconstruct(image, name="lp_s7")

    centroids = rec.verts_m[rec.faces].mean(1)
    eye_z = rec.landmarks_m[[33, 263], 2].mean()
    top = np.flatnonzero(centroids[:, 2] > centroids[:, 2].max() - 0.015)
    back = np.flatnonzero((centroids[:, 1] > 0.06) & (centroids[:, 2] > eye_z + 0.02))
    for region in (top, back):
        colour = texture_colour(rec, region)
        assert np.linalg.norm(colour - hair) < 0.1, (colour, hair)
        assert np.linalg.norm(colour - backdrop) > 2 * np.linalg.norm(colour - hair), (colour, backdrop)


def test_a_suited_man_s_back_below_the_collar_is_his_jacket_not_his_neck():
    # fr_biden2: dark suit, white shirt, pale skin. The back below the collar went unseen; the
    # nearest seen surfaces are the neck and the shirt front, which ran down the back as a
    # skin-coloured V.
    image = np.asarray(Image.open(PORTRAITS / "fr_biden2.jpg").convert("RGB"))
    rec = reconstruct(image, ReconstructConfig(texture_size=512), name="fr_biden2")
    chin_z = rec.landmarks_m[152, 2]
    centroids = rec.verts_m[rec.faces].mean(1)
    back = np.flatnonzero((centroids[:, 1] > 0.03) & (np.abs(centroids[:, 0]) < 0.04)
                          & (centroids[:, 2] < chin_z - 0.07) & (centroids[:, 2] > chin_z - 0.13))
    px = np.round(rec.camera.project(rec.landmarks_m[[50, 280]].astype(np.float64))[:, :2]).astype(int)
    skin = np.median([image[r - 2:r + 3, c - 2:c + 3].reshape(-1, 3) for c, r in px], axis=(0, 1)) / 255.0
    shoulders = np.round(rec.camera.project(np.array([[0.15, -0.05, chin_z - 0.12], [-0.15, -0.05, chin_z - 0.12]]))[:, :2]).astype(int)
    jacket = np.median([image[r - 3:r + 4, c - 3:c + 4].reshape(-1, 3) for c, r in shoulders], axis=(0, 1)) / 255.0
    colour = texture_colour(rec, back)
    assert np.linalg.norm(colour - jacket) < 0.15, (colour, jacket)
    assert np.linalg.norm(colour - skin) > 3 * np.linalg.norm(colour - jacket), (colour, skin, jacket)
