"""Several clients at once against one backend, each reconstructing and then baking: every client
gets its own head (the name it asked for, a head id of its own) and its own baked frames (equal
to what animate gives for its own pose curve), nobody gets another's, nothing fails. Speed is
scripts/load.py's business."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from load import run_load  # noqa: E402

pytestmark = pytest.mark.skipif(importlib.util.find_spec("backend.reconstruct.pipeline") is None,
                                reason="no reconstruction pipeline yet")


def test_two_clients_at_once_each_get_their_own_head_and_bake(start_backend, portraits_dir):
    backend = start_backend("--max-queued-jobs", "2")
    report = run_load(backend.address, (portraits_dir / "fr_obama.jpg").read_bytes(), clients=2,
                      frames=30)
    assert report["errors"] == {} and report["ok"] == 2
    assert sorted(o["got_name"] for o in report["outcomes"]) == ["load-0", "load-1"]
    assert all(o["bake_matches_own_animation"] for o in report["outcomes"])
    assert report["each_got_its_own_results"]
