"""The add-on when the backend dies under it: kill -9 during Reconstruct (real headless Blender,
real backend process) leaves the scene as it was, reports the failure, and a restarted backend
serves the next Reconstruct."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

PORTRAITS = Path(__file__).resolve().parents[1].parent / "shared" / "portraits"
DATABLOCKS = ("objects", "meshes", "materials", "images", "actions")

pytestmark = pytest.mark.skipif(importlib.util.find_spec("backend.pipeline") is None,
                                reason="no reconstruction pipeline yet")


@pytest.fixture(scope="module")
def killed(run_blender):
    return run_blender("backend_killed", image=str(PORTRAITS / "fr_obama.jpg"))


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
