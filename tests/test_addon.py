"""The Blender add-on, as an artist gets it: the built zip installed into a fresh headless Blender,
talking to a real backend over real ZeroMQ. Each scenario runs in its own Blender process."""
from __future__ import annotations

import socket
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PORTRAITS = Path(__file__).resolve().parents[1].parent / "shared" / "portraits"
needs_pipeline = pytest.mark.skipif(
    not (REPO_ROOT / "backend" / "pipeline.py").exists(),
    reason="backend/reconstruct/pipeline.py (the reconstruction pipeline) has not landed yet")


def free_loopback_address() -> str:
    """An address where nothing listens (the port was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def scene_unchanged(outcome: dict) -> bool:
    return outcome["counts_before"] == outcome["counts_after"]


# --- packaging ---------------------------------------------------------------------------------

def test_the_zip_holds_the_addon_the_protocol_and_a_pyzmq_wheel_per_listed_platform(addon_zip):
    with zipfile.ZipFile(addon_zip) as zf:
        names = set(zf.namelist())
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
    assert {"__init__.py", "operators.py", "panel.py", "imp_mesh.py", "imp_material.py",
            "turntable.py", "anim_panel.py", "anim_ops.py", "bake_cache.py", "rig_build.py", "shared/__init__.py", "shared/client.py", "shared/protocol.py"} <= names
    assert manifest["id"] == "headlift" and manifest["blender_version_min"] == "4.2.0"
    assert set(manifest["permissions"]) == {"network", "files"}
    assert not any("__pycache__" in n for n in names)
    for wheel in manifest.get("wheels", []):
        assert wheel.removeprefix("./") in names
        assert "pyzmq" in wheel and "cp311" in wheel
    assert "linux-x64" in manifest.get("platforms", ["linux-x64"])


def test_installing_the_zip_registers_the_headlift_tab_and_its_operators(run_blender):
    found = run_blender("install")
    assert found["module"] == "bl_ext.user_default.headlift"
    assert {"reconstruct", "cancel", "start_backend", "stop_backend", "turntable"} <= set(found["operators"])
    assert {"bake_animation", "clear_bake", "import_take", "export_rig", "reattach",
            "reset_controls"} <= set(found["operators"])
    assert found["animation_panel_parent"] == "HEADLIFT_PT_main" and found["object_controls"]
    assert (found["panel_space"], found["panel_category"]) == ("VIEW_3D", "Headlift")
    assert found["default_address"] == "tcp://127.0.0.1:5555"
    assert found["shared_client"] == "bl_ext.user_default.headlift.shared.client"


# --- failures leave the scene as it was ----------------------------------------------------------

def test_reconstruct_without_a_backend_reports_it_unreachable_and_changes_nothing(run_blender):
    address = free_loopback_address()
    outcome = run_blender("reconstruct", address=address, image=str(PORTRAITS / "fr_obama.jpg"))
    assert outcome["result"] is None
    assert "backend_unreachable" in outcome["error"] and address in outcome["error"]
    assert scene_unchanged(outcome)


def test_an_import_that_fails_halfway_removes_every_datablock_it_made(run_blender):
    outcome = run_blender("rollback")
    assert "uint8" in outcome["error"]
    assert scene_unchanged(outcome)
    assert outcome["leftover_names"] == []


def test_a_file_that_is_not_an_image_reports_bad_image_and_changes_nothing(run_blender, backend_server, tmp_path):
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_bytes(b"these are not the pixels you are looking for\n" * 20)
    outcome = run_blender("reconstruct", address=backend_server, image=str(not_an_image))
    assert outcome["result"] is None
    assert "bad_image" in outcome["error"]
    assert scene_unchanged(outcome)


def test_start_local_backend_runs_a_backend_that_answers_and_stop_ends_it(run_blender, tmp_path):
    not_an_image = tmp_path / "empty.png"
    not_an_image.write_bytes(b"\x89PNG\r\n\x1a\n")  # a PNG signature and nothing else
    found = run_blender("local_backend", address=free_loopback_address(), image=str(not_an_image))
    assert found["alive_after_start"], found["output"]
    # The answer comes from the started backend: only a live one can say the image is bad.
    assert "bad_image" in found["reconstruct_error"], found["output"]
    assert not found["alive_after_stop"]


# --- a real reconstruction -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def obama(run_blender, backend_server, tmp_path_factory):
    """fr_obama.jpg reconstructed through the add-on, undone, redone, then viewed at yaw 30°."""
    outcome = run_blender("reconstruct", address=backend_server, image=str(PORTRAITS / "fr_obama.jpg"),
                          render_yaw=30, views=24, render_dir=str(tmp_path_factory.mktemp("turntable")))
    assert outcome["error"] is None, outcome["error"]
    return outcome


@needs_pipeline
def test_reconstructing_a_portrait_imports_one_textured_head_named_after_the_file(obama):
    head = obama["object"]
    assert head["name"] == "fr_obama" and head["type"] == "MESH"
    added = {k: obama["counts_after"][k] - obama["counts_before"][k] for k in obama["counts_before"]}
    assert added == {"objects": 1, "meshes": 1, "materials": 1, "images": 1,
                     "cameras": 0, "lights": 0, "actions": 0}
    assert head["vertices"] > 0 and head["faces"] > 0 and head["smooth"]
    assert head["uv_layers"] == ["UVMap"]
    assert head["material_uses_image"] and head["image_packed"]
    assert head["head_id"]
    assert head["camera_keys"] == ["R_cam_from_canonical", "image_size", "pixels_per_metre", "principal_px"]


@needs_pipeline
def test_the_head_sits_at_the_origin_in_the_canonical_frame(obama):
    head = obama["object"]
    assert head["location"] == [0.0, 0.0, 0.0]
    assert head["rotation"] == [0.0, 0.0, 0.0] and head["scale"] == [1.0, 1.0, 1.0]
    z_min, z_max = head["bbox_z"]
    assert z_min < 0.0 < z_max  # the origin (between the ears) lies inside the head's height


@needs_pipeline
def test_one_undo_removes_the_imported_head(obama):
    assert not obama["after_undo"]["object_exists"]
    assert obama["after_undo"]["counts"] == obama["counts_before"]


@needs_pipeline
def test_the_turntable_view_at_yaw_30_shows_a_face_the_detector_finds(obama):
    import mediapipe as mp
    from PIL import Image

    assert obama["render"]["yaw"] == 30.0
    rgb = np.asarray(Image.open(obama["render"]["path"]).convert("RGB"))
    found = []
    for model in (0, 1):  # short range (face fills the frame), then full range
        with mp.solutions.face_detection.FaceDetection(model_selection=model,
                                                       min_detection_confidence=0.5) as detector:
            found += detector.process(rgb).detections or []
    assert found, f"no face found in {obama['render']['path']}"
