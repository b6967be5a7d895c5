"""Issue 3's quality targets, held per portrait on three real portraits (a photo of a frontal face,
a frontal photo with a busy suit and flag behind it, and a painting turned about 17 degrees), judged
exactly as scripts/evaluate.py judges a folder: the backend's own renders of each head, looked at
again by mediapipe (backend/evaluation/judge.py, backend/evaluation/metrics.py).

The issue's targets are aggregates over many portraits; every portrait here must meet them alone.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from backend.evaluation.judge import Judge, judge_head, render_views
from backend.evaluation.metrics import TARGETS, aggregate, check_targets
from backend.reconstruct.imagefile import decode_image
from backend.reconstruct.perception import shared_perceiver
from backend.reconstruct.pipeline import ReconstructConfig, reconstruct

PORTRAITS = ["astronaut.png", "fr_obama.jpg", "lp_s9.jpg"]
CONFIG = ReconstructConfig()  # the shipped defaults: 2048 texels, the adaptive triangle budget
TARGET = {t.metric: t.value for t in TARGETS}
MAX_TRIANGLES = 100_000  # the documented budget (backend/reconstruct/meshing.py)
# The head is one closed piece; the mouth stage adds upper teeth, lower teeth and a tongue as
# separate closed parts inside it (backend/rig/mouth.py).
MAX_COMPONENTS = 1 + 3


@pytest.fixture(scope="module")
def records(portraits_dir: Path) -> dict[str, dict]:
    judge = Judge(shared_perceiver())
    out = {}
    for name in PORTRAITS:
        image = decode_image((portraits_dir / name).read_bytes())
        head = reconstruct(image, CONFIG, name=Path(name).stem)
        photo = judge.perceiver(image)
        out[name] = {"status": "ok", "name": name,
                     **judge_head(photo, head, render_views(head), judge, CONFIG)}
    return out


@pytest.mark.parametrize("name", PORTRAITS)
def test_the_input_view_fits_the_photo(records, name):
    fit = records[name]["input_view"]
    assert fit["silhouette_iou"] >= TARGET["mean_silhouette_iou"]
    assert fit["landmarks_found"], "the face mesh must be found again on the input-view render"
    assert fit["nme"] <= TARGET["mean_nme_input_view"]


@pytest.mark.parametrize("name", PORTRAITS)
def test_a_face_is_seen_at_30_and_60_degrees_either_way(records, name):
    views = records[name]["views"]
    for view in ("yaw-30", "yaw+30", "yaw-60", "yaw+60"):
        assert views[view]["face_found"], f"no face at {view}"


@pytest.mark.parametrize("name", PORTRAITS)
def test_landmarks_at_30_degrees_sit_where_the_mesh_puts_them(records, name):
    views = records[name]["views"]
    nme = [views[v]["nme"] for v in ("yaw-30", "yaw+30")]
    assert None not in nme, "landmarks must be found at both ±30° views"
    assert sum(nme) / 2 <= TARGET["mean_nme_yaw30"]


@pytest.mark.parametrize("name", PORTRAITS)
def test_the_back_of_the_head_shows_no_face(records, name):
    assert not records[name]["views"]["back"]["face_found"]  # at neither framing


@pytest.mark.parametrize("name", PORTRAITS)
def test_the_mesh_is_closed_within_budget_with_a_2048_texture(records, name):
    mesh = records[name]["mesh"]
    assert mesh["watertight"] and mesh["winding_consistent"] and mesh["outward"]
    assert 1 <= mesh["components"] <= MAX_COMPONENTS
    assert mesh["triangles"] <= MAX_TRIANGLES
    assert mesh["texture_px"] >= 2048


def test_the_three_together_pass_every_target(records):
    rows = check_targets(aggregate(list(records.values())))
    failed = [f"{r['metric']} {r['op']} {r['value']}: {r['measured']}" for r in rows if not r["passed"]]
    assert not failed, failed
