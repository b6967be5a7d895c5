"""The add-on when the backend dies under it: kill -9 during Reconstruct, and then during Bake
Animation (real headless Blender, real backend process), leaves the scene as it was, reports the
failure, and a restarted backend serves the next Reconstruct / (after Re-attach) the next bake."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

PORTRAITS = Path(__file__).resolve().parents[1].parent / "shared" / "portraits"
DATABLOCKS = ("objects", "meshes", "materials", "images", "actions")
BAKE_FRAMES = 400  # long enough that the kill lands while frames stream in

pytestmark = pytest.mark.skipif(importlib.util.find_spec("backend.reconstruct.pipeline") is None,
                                reason="no reconstruction pipeline yet")


@pytest.fixture(scope="module")
def killed(run_blender, tmp_path_factory):
    return run_blender("backend_killed", image=str(PORTRAITS / "fr_obama.jpg"),
                       bake_frames=BAKE_FRAMES, work_dir=str(tmp_path_factory.mktemp("bake-kill")))


def test_killing_the_backend_mid_reconstruct_reports_a_lost_connection(killed):
    assert killed["killed_status"] == -9  # it really died of SIGKILL, mid-job
    assert "backend_unreachable" in killed["error"]
    assert "lost the connection" in killed["error"]  # noticed at once, not at the 600 s deadline


def test_killing_the_backend_mid_reconstruct_leaves_the_scene_unchanged(killed):
    assert {k: killed["counts_after_kill"][k] for k in DATABLOCKS} == \
           {k: killed["counts_before"][k] for k in DATABLOCKS}


def test_after_a_restart_on_the_same_address_the_next_reconstruct_imports_a_head(killed):
    assert killed["restarted_at_same_address"]
    assert killed["after_restart"] == {"result": ["FINISHED"], "error": None}
    added = {k: killed["counts_after_restart"][k] - killed["counts_before"][k] for k in DATABLOCKS}
    assert added == {"objects": 1, "meshes": 1, "materials": 1, "images": 1, "actions": 0}


# --- a bake (issue 5) ----------------------------------------------------------------------------------

BAKE_COUNTS = ("objects", "meshes", "actions", "modifiers", "shape_keys", "cache_files")


@pytest.fixture(scope="module")
def bake(killed):
    assert "bake" in killed, "the restarted reconstruct failed, so the bake phase did not run"
    return killed["bake"]


def test_killing_the_backend_mid_bake_reports_a_lost_connection(bake):
    assert bake["killed_status"] == -9
    assert bake["part_bytes_at_kill"] > 0  # frames were streaming in when it died
    assert bake["error"] is not None and "backend_unreachable" in bake["error"], bake["error"]
    assert "lost the connection" in bake["error"]


def test_killing_the_backend_mid_bake_leaves_no_partial_bake_and_the_scene_unchanged(bake):
    assert not bake["baked_after_kill"]
    assert {k: bake["counts_after_kill"][k] for k in BAKE_COUNTS} == \
           {k: bake["counts_before"][k] for k in BAKE_COUNTS}  # incl. no cache file left behind


def test_after_a_restart_the_bake_says_the_backend_lost_the_head_and_changes_nothing(bake):
    assert bake["unknown_error"] is not None and "unknown_head" in bake["unknown_error"]
    assert "Re-attach" in bake["unknown_error"]
    assert bake["counts_after_unknown"] == bake["counts_after_kill"]


def test_after_re_attach_the_bake_succeeds_and_matches_the_backend(bake):
    assert bake["reattach_error"] is None, bake["reattach_error"]
    assert bake["counts_after_reattach"] == bake["counts_after_kill"]  # the same object, re-linked
    assert bake["after_restart_error"] is None, bake["after_restart_error"]
    assert bake["record"]["method"] == "PC2" and bake["record"]["frames"] == BAKE_FRAMES
    added = {k: bake["counts_after_bake"][k] - bake["counts_before"][k] for k in BAKE_COUNTS}
    assert added == {"objects": 0, "meshes": 0, "actions": 0, "modifiers": 1, "shape_keys": 0,
                     "cache_files": 1}
    assert bake["max_error_m"] <= 1e-5
