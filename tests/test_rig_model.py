"""The rig's arithmetic: rotations, forward kinematics, skinning, batching, and the weights build_rig
makes on a bust (an analytic head, neck and shoulders meshed by marching cubes, with the face
landmarks mediapipe finds on a real portrait)."""
from __future__ import annotations

from pathlib import Path

import mcubes
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from backend.reconstruct.camera import estimate_camera
from backend.reconstruct.imagefile import decode_image
from backend.reconstruct.perception import shared_perceiver
from backend.rig import HeadRig, build_rig, pose_vertices
from backend.rig.model import axis_angle_to_matrix
from shared.controls import POSE_JOINTS, POSE_PARENTS

J = len(POSE_JOINTS)
HEAD = POSE_JOINTS.index("head")


def _two_joint_rig(n_verts: int, n_expr: int = 0, seed: int = 0) -> tuple[HeadRig, np.ndarray]:
    """A rig with the real joint layout; the lower half of a point cloud follows the root, the
    upper half the head, one vertex is split half-half; random expression shapes."""
    rng = np.random.default_rng(seed)
    verts = rng.uniform(-0.2, 0.2, size=(n_verts, 3)).astype(np.float32)
    parents = np.array([-1 if POSE_PARENTS[n] is None else POSE_JOINTS.index(POSE_PARENTS[n])
                        for n in POSE_JOINTS], dtype=np.int32)
    rest = rng.uniform(-0.1, 0.1, size=(J, 3)).astype(np.float32)
    weights = np.zeros((n_verts, J), dtype=np.float32)
    weights[:, 0] = verts[:, 2] < 0
    weights[:, HEAD] = verts[:, 2] >= 0
    weights[0] = 0.0
    weights[0, [0, HEAD]] = 0.5
    deltas = rng.normal(0, 0.01, size=(n_expr, n_verts, 3)).astype(np.float32)
    names = tuple(f"shape{k}" for k in range(n_expr))
    return HeadRig(names, deltas, POSE_JOINTS, parents, rest, weights), verts


def test_rodrigues_matches_scipy_including_tiny_angles():
    rng = np.random.default_rng(1)
    vecs = np.concatenate([rng.normal(0, 1.5, (50, 3)), rng.normal(0, 1e-6, (5, 3)), np.zeros((1, 3))])
    import torch
    ours = axis_angle_to_matrix(torch.tensor(vecs, dtype=torch.float64)).numpy()
    assert np.allclose(ours, Rotation.from_rotvec(vecs).as_matrix(), atol=1e-10)


def test_zero_pose_and_zero_expressions_give_the_rest_mesh():
    rig, verts = _two_joint_rig(500, n_expr=3)
    out = pose_vertices(rig, verts, np.zeros((2, 3)), np.zeros((2, J, 3)))
    assert out.shape == (2, 500, 3) and out.dtype == np.float32
    assert np.abs(out - verts).max() < 1e-6


def test_expressions_add_in_the_rest_pose():
    rig, verts = _two_joint_rig(300, n_expr=2)
    out = pose_vertices(rig, verts, np.array([[0.5, 1.0]]), np.zeros((1, J, 3)))
    expected = verts + 0.5 * rig.expression_deltas[0] + rig.expression_deltas[1]
    assert np.abs(out[0] - expected).max() < 1e-6


def test_head_yaw_turns_head_points_about_the_head_joint_and_leaves_the_root_part():
    rig, verts = _two_joint_rig(400)
    poses = np.zeros((1, J, 3))
    poses[0, HEAD] = [0.0, 0.0, np.radians(30)]
    out = pose_vertices(rig, verts, np.zeros((1, 0)), poses)[0]
    head = rig.skin_weights[:, HEAD] == 1.0
    pivot = rig.joint_rest_m[HEAD]
    turned = (verts[head] - pivot) @ Rotation.from_rotvec(poses[0, HEAD]).as_matrix().T + pivot
    assert np.abs(out[head] - turned).max() < 1e-6
    still = rig.skin_weights[:, 0] == 1.0
    assert np.abs(out[still] - verts[still]).max() < 1e-7
    # The half-half vertex lands halfway between its two rigid images (linear blend skinning).
    assert np.allclose(out[0], 0.5 * (verts[0] + ((verts[0] - pivot) @ Rotation.from_rotvec(
        poses[0, HEAD]).as_matrix().T + pivot)), atol=1e-6)


def test_a_parent_rotation_carries_its_children():
    """Neck pitch moves the head joint's points exactly as a rotation about the neck joint."""
    rig, verts = _two_joint_rig(200)
    neck = POSE_JOINTS.index("neck")
    poses = np.zeros((1, J, 3))
    poses[0, neck] = [0.4, 0.0, 0.0]
    poses[0, HEAD] = [0.0, 0.0, 0.3]
    out = pose_vertices(rig, verts, np.zeros((1, 0)), poses)[0]
    r_neck = Rotation.from_rotvec(poses[0, neck]).as_matrix()
    r_head = Rotation.from_rotvec(poses[0, HEAD]).as_matrix()
    pn, ph = rig.joint_rest_m[neck], rig.joint_rest_m[HEAD]
    head = rig.skin_weights[:, HEAD] == 1.0
    expected = (((verts[head] - ph) @ r_head.T + ph) - pn) @ r_neck.T + pn
    assert np.abs(out[head] - expected).max() < 1e-6


def test_a_batch_of_frames_equals_frames_one_at_a_time(monkeypatch):
    import backend.rig.model as model
    rig, verts = _two_joint_rig(1000, n_expr=4, seed=3)
    rng = np.random.default_rng(4)
    expressions = rng.uniform(0, 1, (7, 4))
    poses = rng.normal(0, 0.4, (7, J, 3))
    # A small chunk size makes the batch cross chunk boundaries as a long bake does.
    monkeypatch.setattr(model, "_PAIRS_PER_CHUNK", 3000)
    batched = pose_vertices(rig, verts, expressions, poses)
    single = np.concatenate([pose_vertices(rig, verts, expressions[t:t + 1], poses[t:t + 1]) for t in range(7)])
    assert np.abs(batched - single).max() < 1e-6


def test_wrong_shapes_are_refused():
    rig, verts = _two_joint_rig(100, n_expr=2)
    with pytest.raises(ValueError):
        pose_vertices(rig, verts, np.zeros((1, 3)), np.zeros((1, J, 3)))
    with pytest.raises(ValueError):
        pose_vertices(rig, verts, np.zeros((2, 2)), np.zeros((1, J, 3)))
    with pytest.raises(ValueError):
        pose_vertices(rig, verts[:50], np.zeros((1, 2)), np.zeros((1, J, 3)))


# --- build_rig on a bust -------------------------------------------------------------------------

def _bust_mesh(landmarks_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes of a smooth union: an egg skull round the face, a neck, a shoulder slab."""
    step = 0.004
    ax_x = np.arange(-0.26, 0.26, step)
    ax_y = np.arange(-0.16, 0.16, step)
    ax_z = np.arange(-0.34, 0.18, step)
    x, y, z = np.meshgrid(ax_x, ax_y, ax_z, indexing="ij")
    face_front = float(landmarks_m[:468, 1].min())
    head = np.sqrt((x / 0.08) ** 2 + ((y - 0.0) / (abs(face_front) + 0.005)) ** 2
                   + ((z - 0.0) / 0.125) ** 2) - 1.0
    head *= 0.08
    neck = np.maximum(np.hypot(x, y - 0.01) - 0.055, np.maximum(z - 0.0, -0.25 - z))
    shoulders = np.maximum(np.maximum(np.abs(x) - 0.22, np.abs(y - 0.01) - 0.09),
                           np.maximum(z + 0.15 + 0.2 * x ** 2 / 0.05, -0.32 - z))
    k = 0.02

    def smin(a, b):
        h = np.clip(0.5 + 0.5 * (b - a) / k, 0, 1)
        return b + (a - b) * h - k * h * (1 - h)

    field = smin(smin(head, neck), shoulders)
    field = np.maximum(field, -0.32 - z)
    verts, faces = mcubes.marching_cubes(-field, 0.0)
    verts = verts * step + np.array([ax_x[0], ax_y[0], ax_z[0]])
    return verts.astype(np.float32), faces[:, ::-1].astype(np.int32)


@pytest.fixture(scope="module")
def bust_rig(portraits_dir: Path):
    image = decode_image((portraits_dir / "fr_obama.jpg").read_bytes())
    seen = shared_perceiver()(image)
    _, landmarks_m = estimate_camera(seen.landmarks_px, (image.shape[1], image.shape[0]))
    verts, faces = _bust_mesh(landmarks_m)
    return verts, faces, landmarks_m, build_rig(verts, faces, landmarks_m, None)


def test_build_rig_gives_one_weight_per_joint_summing_to_one(bust_rig):
    verts, faces, landmarks_m, rig = bust_rig
    assert rig.joint_names == POSE_JOINTS
    assert rig.skin_weights.shape == (len(verts), J) and rig.skin_weights.dtype == np.float32
    assert rig.skin_weights.min() >= 0.0
    assert np.abs(rig.skin_weights.sum(axis=1) - 1.0).max() < 1e-5
    # Every joint moves some of the bust.
    assert (rig.skin_weights.max(axis=0) > 0.5).all()
    assert rig.expression_deltas.shape[1:] == (len(verts), 3)
    assert len(rig.expression_names) == rig.expression_deltas.shape[0]


def test_the_face_follows_the_head_and_the_bust_bottom_stays(bust_rig):
    verts, _, landmarks_m, rig = bust_rig
    w = rig.skin_weights
    from scipy.spatial import cKDTree
    near_face, _ = cKDTree(landmarks_m[:468]).query(verts)
    face = (near_face < 0.015) & (verts[:, 2] > landmarks_m[17, 2])  # down to the lower lip
    assert face.sum() > 100
    assert (w[face, HEAD] > 0.999).all()
    bottom = verts[:, 2] < verts[:, 2].min() + 0.01
    assert (w[bottom, HEAD] < 1e-6).all() and (w[bottom, POSE_JOINTS.index("neck")] < 1e-6).all()


def test_joints_sit_where_a_bust_has_them(bust_rig):
    _, _, landmarks_m, rig = bust_rig
    p = dict(zip(rig.joint_names, rig.joint_rest_m))
    chin_z = landmarks_m[152, 2]
    assert chin_z < p["head"][2] < 0.0, "skull base between the ears and the chin"
    assert p["root"][2] < p["neck"][2] < chin_z
    assert p["left_shoulder"][0] > 0.1 and p["right_shoulder"][0] < -0.1, "left is +X"
    assert p["left_collar"][0] > 0 > p["right_collar"][0]
    assert p["left_shoulder"][2] < p["neck"][2]
