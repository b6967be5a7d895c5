"""Several clients at once against one backend: every client gets its own head (the name it asked
for), nobody gets another's result, nothing fails. Speed is scripts/load.py's business."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from load import run_load  # noqa: E402

pytestmark = pytest.mark.skipif(importlib.util.find_spec("backend.pipeline") is None,
                                reason="no reconstruction pipeline yet")


def test_two_clients_at_once_each_get_the_head_they_asked_for(start_backend, portraits_dir):
    backend = start_backend("--max-queued-jobs", "2")
    report = run_load(backend.address, (portraits_dir / "fr_obama.jpg").read_bytes(), clients=2)
    assert report["errors"] == {} and report["ok"] == 2
    assert sorted(o["got_name"] for o in report["outcomes"]) == ["load-0", "load-1"]
    assert report["each_got_its_own_head"]
