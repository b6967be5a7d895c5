"""The quality measures on small synthetic arrays: what each number means, without a reconstruction."""
from __future__ import annotations

import numpy as np
import pytest
import trimesh

from backend.evaluation.metrics import (
    LEFT_EYE_OUTER,
    R_FACING,
    RIGHT_EYE_OUTER,
    TARGETS,
    aggregate,
    bust_region,
    camera_yaw_deg,
    check_targets,
    eye_level_size,
    head_relative_camera,
    landmark_nme,
    mesh_sanity,
    silhouette_iou,
)
from backend.render.views import R_FRONT, front_camera, orbit_camera, through_lens


def _landmarks(iod_px: float = 100.0, seed: int = 0) -> np.ndarray:
    """(478, 3) points with the outer eye corners iod_px apart."""
    points = np.random.default_rng(seed).uniform(0, 300, size=(478, 3))
    points[RIGHT_EYE_OUTER, :2] = (100.0, 150.0)
    points[LEFT_EYE_OUTER, :2] = (100.0 + iod_px, 150.0)
    return points


def test_identical_masks_give_iou_one_and_disjoint_masks_zero():
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    everywhere = np.ones_like(mask)
    assert silhouette_iou(mask, mask.astype(np.float32), everywhere) == 1.0
    assert silhouette_iou(mask, (~mask).astype(np.float32), everywhere) == 0.0


def test_iou_only_counts_pixels_inside_the_region():
    render = np.zeros((10, 10), bool)
    render[:, :5] = True
    person = np.ones((10, 10), np.float32)  # the photo's person also fills the right half
    left_half = np.zeros((10, 10), bool)
    left_half[:, :5] = True
    assert silhouette_iou(render, person, left_half) == 1.0
    assert silhouette_iou(render, person, np.ones((10, 10), bool)) == pytest.approx(0.5)


def test_the_bust_region_of_a_front_camera_is_above_the_cut_and_inside_the_walls():
    camera = front_camera(200, pixels_per_metre=200.0)  # 1 m across, origin at the centre
    region = bust_region(camera, bust_bottom_z_m=-0.2, half_width_m=0.25)
    rows, cols = np.nonzero(region)
    assert rows.max() == 139  # z = -0.2 m lies 40 px below the centre row
    assert (cols.min(), cols.max()) == (50, 149)  # |x| < 0.25 m


def test_landmarks_shifted_by_a_tenth_of_the_eye_distance_give_nme_ten_percent():
    expected = _landmarks(iod_px=80.0)
    found = expected.copy()
    found[:, :2] += (6.0, 8.0)  # 10 px
    assert landmark_nme(expected, expected) == 0.0
    assert landmark_nme(found, expected) == pytest.approx(10.0 / 80.0)
    assert landmark_nme(found, expected, iod_px=100.0) == pytest.approx(0.1)


def test_nme_ignores_depth():
    expected = _landmarks()
    found = expected.copy()
    found[:, 2] += 50.0
    assert landmark_nme(found, expected) == 0.0


def test_a_box_is_one_closed_outward_component_and_two_boxes_are_two():
    box = trimesh.creation.box((0.2, 0.2, 0.2))
    sanity = mesh_sanity(box.vertices, box.faces)
    assert sanity.watertight and sanity.winding_consistent and sanity.outward
    assert (sanity.components, sanity.triangles, sanity.vertices) == (1, 12, 8)

    two = trimesh.util.concatenate([box, box.copy().apply_translation((1, 0, 0))])
    assert mesh_sanity(two.vertices, two.faces).components == 2


def test_an_open_or_inside_out_box_is_caught():
    box = trimesh.creation.box((0.2, 0.2, 0.2))
    open_box = mesh_sanity(box.vertices, box.faces[:-1])
    assert not open_box.watertight and not open_box.outward
    inside_out = mesh_sanity(box.vertices, box.faces[:, ::-1])
    assert inside_out.watertight and inside_out.winding_consistent and not inside_out.outward
    one_flipped = box.faces.copy()
    one_flipped[0] = one_flipped[0, ::-1]
    assert not mesh_sanity(box.vertices, one_flipped).winding_consistent


def test_eye_level_size_measures_the_band_round_the_eyes():
    # An ellipsoid head 0.16 m broad and 0.20 m long, eyes at z = 0.
    head = trimesh.creation.icosphere(subdivisions=5)
    head.apply_scale((0.08, 0.10, 0.12))
    landmarks = np.zeros((478, 3))
    size = eye_level_size(np.asarray(head.vertices), landmarks)
    assert size.breadth_m == pytest.approx(0.16, abs=0.003)
    assert size.length_m == pytest.approx(0.20, abs=0.003)
    assert size.length_over_breadth == pytest.approx(1.25, abs=0.03)


def test_the_facing_camera_is_the_renderers_front_view():
    assert np.array_equal(R_FACING, R_FRONT)


@pytest.mark.parametrize("yaw", [-75.0, -30.0, 0.0, 17.0, 60.0])
def test_a_camera_orbited_by_a_yaw_sees_the_head_turned_by_that_yaw(yaw):
    front = front_camera(256, 1000.0)
    assert camera_yaw_deg(orbit_camera(front, yaw).R_cam_from_canonical) == pytest.approx(yaw)
    # Looking down on the head does not change which way the face points round the vertical.
    looking_down = orbit_camera(front, yaw, pitch_deg=20)
    assert np.sign(camera_yaw_deg(looking_down.R_cam_from_canonical)) == np.sign(yaw)


def test_a_pinhole_camera_keeps_the_scale_at_its_centre_and_magnifies_what_is_nearer():
    centre = np.array([0.0, -0.05, 0.0])
    ortho = orbit_camera(front_camera(512, 1900.0, centre), 30.0)
    lens = through_lens(ortho, 0.6, centre)
    R = ortho.R_cam_from_canonical  # rows: the camera's right, down and forward in canonical terms
    level = centre + np.array([[0.0, 0.0], [0.03, 0.02]]) @ R[:2]  # on the centre's depth plane
    assert np.allclose(lens.project(level)[:, :2], ortho.project(level)[:, :2])
    assert lens.project(level)[0, 2] == pytest.approx(0.6)
    # 10 cm nearer the lens lands 0.6 / 0.5 times as far from the centre's pixel.
    centre_px = ortho.project(centre[None])[0, :2]
    near = level[1:] - 0.1 * R[2]
    offset = lambda cam: cam.project(near)[0, :2] - centre_px  # noqa: E731
    assert offset(lens) == pytest.approx(offset(ortho) * 0.6 / 0.5)


def test_head_relative_views_ignore_how_far_the_photo_was_turned():
    three_quarter = orbit_camera(front_camera((300, 200), 900.0), 45.0, pitch_deg=10.0)
    for yaw in (-60.0, 30.0):
        camera = head_relative_camera(three_quarter, yaw)
        assert camera_yaw_deg(camera.R_cam_from_canonical) == pytest.approx(yaw)
        level = orbit_camera(front_camera(8, 1.0), yaw)
        assert np.allclose(camera.R_cam_from_canonical, level.R_cam_from_canonical)
        # Same scale, frame and origin pixel as the photo's camera.
        assert camera.pixels_per_metre == three_quarter.pixels_per_metre
        assert camera.image_size == (300, 200)
        assert np.allclose(camera.project(np.zeros((1, 3)))[0, :2], three_quarter.principal_px)
    # The camera-relative "+60" of a photo taken 45 deg off the face is 105 deg off the face.
    turned = orbit_camera(three_quarter, 60.0)
    assert camera_yaw_deg(turned.R_cam_from_canonical) == pytest.approx(105.0, abs=2.0)


def test_turned_views_are_framed_alike_whatever_the_photos_crop():
    """The framed views put the head at one size and place (backend.evaluation.judge.Framing): a close
    crop and a wide shot of the same head give the same cameras, the eye corners 0.17 of the
    canvas apart head-on and the head's origin centred across it."""
    from types import SimpleNamespace

    from backend.evaluation.judge import FRAMED_VIEWS, FRAMING, VIEWS, view_camera

    landmarks = np.zeros((478, 3), np.float32)
    landmarks[LEFT_EYE_OUTER], landmarks[RIGHT_EYE_OUTER] = (0.045, -0.08, 0.03), (-0.045, -0.08, 0.03)
    close = SimpleNamespace(camera=front_camera((512, 480), 5200.0), landmarks_m=landmarks)
    wide = SimpleNamespace(camera=orbit_camera(front_camera((2048, 1200), 700.0), 0.0), landmarks_m=landmarks)
    for view in FRAMED_VIEWS:
        a, b = view_camera(close, view), view_camera(wide, view)
        assert np.allclose(a.R_cam_from_canonical, b.R_cam_from_canonical)
        assert a.pixels_per_metre == b.pixels_per_metre and a.image_size == b.image_size == (512, 512)
        assert a.project(np.zeros((1, 3)))[0, 0] == pytest.approx(256.0)
    eyes_px = view_camera(close, FRAMED_VIEWS[0]).pixels_per_metre * 0.09  # the eye corners 9 cm apart
    assert eyes_px == pytest.approx(FRAMING.iod_share * 512)
    # The same turns as the views at the photo's own framing.
    assert [v.yaw_deg for v in FRAMED_VIEWS] == [v.yaw_deg for v in VIEWS]


def _record(name, iou, nme, seen30=(True, True), seen60=(True, False), back=False, nme30=0.04,
            head60=(True, True), input_yaw=10.0):
    view = lambda seen, nme_view: {"face_detected": seen, "nme": nme_view}  # noqa: E731
    return {"name": name, "status": "ok", "input_yaw_deg": input_yaw,
            "head_views": {"head-30": view(True, 0.03), "head+30": view(True, 0.05),
                           "head-60": view(head60[0], None), "head+60": view(head60[1], None)},
            "input_view": {"silhouette_iou": iou, "nme": nme, "landmarks_found": nme is not None},
            "views": {"yaw-30": view(seen30[0], nme30), "yaw+30": view(seen30[1], nme30),
                      "yaw-60": view(seen60[0], None), "yaw+60": view(seen60[1], None),
                      "profile": view(False, None), "back": {"face_detected": back}},
            "mesh": {"watertight": True, "components": 1}, "timings_s": {"total": 30.0}}


def test_aggregates_average_the_heads_made_and_pool_both_sides_of_a_yaw():
    records = [_record("a", 0.90, 0.02), _record("b", 0.96, None, seen30=(True, False), back=True),
               {"name": "cat", "status": "failed", "error": {"code": "no_face", "message": "no face"}}]
    summary = aggregate(records)
    assert (summary["images"], summary["succeeded"]) == (3, 2)
    assert summary["failed"] == {"cat": "no_face"}
    assert summary["mean_silhouette_iou"] == pytest.approx(0.93)
    assert summary["mean_nme_input_view"] == pytest.approx(0.02)  # b's landmarks were not found
    assert summary["landmarks_found_input_view"] == 0.5
    assert summary["detection_rate_yaw30"] == 0.75
    assert summary["detection_rate_yaw60"] == 0.5
    assert summary["detection_rate_back"] == 0.5
    assert summary["mean_nme_yaw60"] is None


def test_head_relative_rates_are_reported_apart_from_the_camera_relative_targets():
    records = [_record("a", 0.95, 0.02, seen60=(False, False), head60=(True, True), input_yaw=-40.0),
               _record("b", 0.95, 0.02, seen60=(True, False), head60=(True, False), input_yaw=20.0)]
    summary = aggregate(records)
    assert summary["detection_rate_yaw60"] == 0.25
    assert summary["head_detection_rate_yaw60"] == 0.75
    assert summary["head_detection_rate_yaw30"] == 1.0
    assert summary["head_mean_nme_yaw30"] == pytest.approx(0.04)
    assert summary["mean_abs_input_yaw_deg"] == pytest.approx(30.0)
    assert not any(row["metric"].startswith("head_") for row in check_targets(summary))


def test_targets_pass_at_their_bounds_and_fail_when_unmeasured():
    summary = {"mean_silhouette_iou": 0.93, "mean_nme_input_view": 0.03, "detection_rate_yaw30": 1.0,
               "detection_rate_yaw60": None, "mean_nme_yaw30": 0.05, "detection_rate_back": 0.0}
    verdict = {row["metric"]: row["passed"] for row in check_targets(summary)}
    assert verdict == {"mean_silhouette_iou": True, "mean_nme_input_view": False,
                       "detection_rate_yaw30": True, "detection_rate_yaw60": False,
                       "mean_nme_yaw30": True, "detection_rate_back": True}
    assert len(TARGETS) == len(verdict)


def test_the_yaw_sweep_counts_found_views_and_scores_a_missed_one_as_zero():
    records = [_record("a", 0.95, 0.02), _record("b", 0.95, 0.02)]
    records[0]["sweep"] = {"sweep-60": {"yaw_deg": -60, "face_score": 0.7},
                           "sweep+60": {"yaw_deg": 60, "face_score": None}}
    records[1]["sweep"] = {"sweep-60": {"yaw_deg": -60, "face_score": 0.6},
                           "sweep+60": {"yaw_deg": 60, "face_score": 0.9}}
    summary = aggregate(records)
    assert summary["sweep_detection_rate"] == 0.75
    assert summary["sweep_mean_face_score"] == pytest.approx(0.55)
    assert aggregate([_record("c", 0.95, 0.02)])["sweep_detection_rate"] is None  # older records
    assert not any(row["metric"].startswith("sweep_") for row in check_targets(summary))


def test_a_turned_view_counts_a_face_found_at_either_framing_and_so_does_the_back():
    """The targets read face_found (the photo's framing or the judge's one framing); a face at
    either framing behind the head counts against it just the same."""
    found_at_framing_only = {"face_detected": False, "face_found": True, "nme": None}
    records = [_record("a", 0.95, 0.02, seen60=(False, False)), _record("b", 0.95, 0.02, back=False)]
    records[0]["views"]["yaw+60"] = found_at_framing_only
    records[1]["views"]["back"] = {"face_detected": False, "face_found": True}
    summary = aggregate(records)
    assert summary["detection_rate_yaw60"] == 0.5  # a: +60 at the framing; b: -60 at the photo's
    assert summary["photo_detection_rate_yaw60"] == 0.25
    assert summary["detection_rate_back"] == 0.5
    assert summary["photo_detection_rate_back"] == 0.0
    assert not any(row["metric"].startswith("photo_") for row in check_targets(summary))


def test_the_verdict_is_the_better_score_of_the_two_framings():
    from backend.evaluation.judge import found_either

    assert found_either(None, None) is None
    assert found_either(0.62, None) == 0.62
    assert found_either(None, 0.81) == 0.81
    assert found_either(0.55, 0.81) == 0.81
