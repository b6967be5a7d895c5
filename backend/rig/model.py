"""The animatable head: expression shapes plus a joint skeleton with smooth skinning weights.

pose_vertices turns per-frame control values into per-frame geometry: expressions are added to the
rest mesh, then linear blend skinning moves it with the joints. torch inside, batched over frames.
Conventions (shared/controls.py): axis-angle rotation vectors in the canonical frame, each relative
to the joint's parent, joint frames aligned with the canonical axes at rest.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# Per chunk of frames, at most this many (frame, vertex) pairs get a blended 3x4 transform at once:
# about 200 MB of float32, so T=250 frames of a 100k-vertex head never need gigabytes.
_PAIRS_PER_CHUNK = 4_000_000


@dataclass
class HeadRig:
    expression_names: tuple[str, ...]   # ARKit names this head supports, a subset of shared.controls.ARKIT_NAMES, in that order
    expression_deltas: np.ndarray       # (E, V, 3) float32 metres: displacement of every vertex at weight 1
    joint_names: tuple[str, ...]        # == shared.controls.POSE_JOINTS
    joint_parents: np.ndarray           # (J,) int32, -1 for the root
    joint_rest_m: np.ndarray            # (J, 3) float32, joint positions in the canonical frame
    skin_weights: np.ndarray            # (V, J) float32, rows sum to 1, smooth


def axis_angle_to_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """Rodrigues: (..., 3) axis-angle (radians) -> (..., 3, 3) rotation matrices."""
    theta2 = (rotvec * rotvec).sum(-1, keepdim=True)[..., None]  # (..., 1, 1)
    theta = theta2.sqrt()
    small = theta2 < 1e-8
    safe = torch.where(small, torch.ones_like(theta), theta)
    # Taylor series near zero keep the coefficients finite and exact to float precision.
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(safe) / safe)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(safe)) / (safe * safe))
    x, y, z = rotvec.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).view(*rotvec.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device).expand_as(k)
    return eye + a * k + b * (k @ k)


def forward_kinematics(local_rot: torch.Tensor, joint_rest: torch.Tensor,
                       parents: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """local_rot (T, J, 3, 3) relative to the parent, joint_rest (J, 3), parents (J,) with parents
    listed before children -> world rotations (T, J, 3, 3) and posed joint positions (T, J, 3)."""
    rots: list[torch.Tensor] = []
    heads: list[torch.Tensor] = []
    for j, p in enumerate(int(q) for q in parents):
        if p < 0:
            rots.append(local_rot[:, j])
            heads.append(joint_rest[j].expand(local_rot.shape[0], 3))
        else:
            rots.append(rots[p] @ local_rot[:, j])
            heads.append(heads[p] + (rots[p] @ (joint_rest[j] - joint_rest[p])[:, None])[..., 0])
    return torch.stack(rots, dim=1), torch.stack(heads, dim=1)


def skinning_transforms(rig: HeadRig, poses: np.ndarray | torch.Tensor,
                        device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """poses (T, J, 3) axis-angle -> per-joint world rotation (T, J, 3, 3) and offset (T, J, 3) with
    posed = R @ rest + offset for a point bound rigidly to that joint."""
    poses_t = torch.as_tensor(np.asarray(poses), dtype=torch.float32, device=device)
    rest = torch.as_tensor(rig.joint_rest_m, dtype=torch.float32, device=device)
    rot, heads = forward_kinematics(axis_angle_to_matrix(poses_t), rest, rig.joint_parents)
    offset = heads - (rot @ rest[None, :, :, None])[..., 0]
    return rot, offset


def _check(rig: HeadRig, rest_verts_m: np.ndarray, expressions: np.ndarray, poses: np.ndarray) -> None:
    n_verts, n_joints = rig.skin_weights.shape
    n_expr = rig.expression_deltas.shape[0]
    if rest_verts_m.shape != (n_verts, 3):
        raise ValueError(f"rest_verts_m is {rest_verts_m.shape}, the rig has {n_verts} vertices")
    if expressions.ndim != 2 or expressions.shape[1] != n_expr:
        raise ValueError(f"expressions is {expressions.shape}, expected (T, {n_expr})")
    if poses.shape != (expressions.shape[0], n_joints, 3):
        raise ValueError(f"poses is {poses.shape}, expected ({expressions.shape[0]}, {n_joints}, 3)")


@torch.no_grad()
def pose_vertices(rig: HeadRig, rest_verts_m: np.ndarray, expressions: np.ndarray, poses: np.ndarray,
                  device: str = "cpu") -> np.ndarray:
    """rest (V,3), expressions (T,E) weights, poses (T,J,3) axis-angle (canonical frame, relative to parent)
    -> (T,V,3) float32. Expressions are added in the rest pose, then linear blend skinning. torch inside, batched."""
    rest_verts_m, expressions, poses = (np.asarray(a) for a in (rest_verts_m, expressions, poses))
    _check(rig, rest_verts_m, expressions, poses)
    n_frames, n_verts = expressions.shape[0], rest_verts_m.shape[0]
    rot, offset = skinning_transforms(rig, poses, device)
    # One 3x4 matrix per joint and frame; blended per vertex below.
    joint_affine = torch.cat([rot.reshape(n_frames, -1, 9), offset], dim=2)  # (T, J, 12)
    weights = torch.as_tensor(rig.skin_weights, dtype=torch.float32, device=device)  # (V, J)
    rest = torch.as_tensor(rest_verts_m, dtype=torch.float32, device=device)
    n_expr = rig.expression_deltas.shape[0]
    deltas = torch.as_tensor(rig.expression_deltas, dtype=torch.float32,
                             device=device).reshape(n_expr, n_verts * 3)
    expr = torch.as_tensor(expressions, dtype=torch.float32, device=device)

    out = np.empty((n_frames, n_verts, 3), dtype=np.float32)
    step = max(1, _PAIRS_PER_CHUNK // max(n_verts, 1))
    for t0 in range(0, n_frames, step):
        t1 = min(n_frames, t0 + step)
        shaped = rest.expand(t1 - t0, n_verts, 3)
        if n_expr:
            # (T, E) @ (E, V*3): never materialises (T, E, V, 3).
            shaped = shaped + (expr[t0:t1] @ deltas).view(t1 - t0, n_verts, 3)
        blended = torch.matmul(weights, joint_affine[t0:t1])  # (t, V, 12)
        posed = (blended[..., :9].view(t1 - t0, n_verts, 3, 3) @ shaped[..., None])[..., 0] + blended[..., 9:]
        out[t0:t1] = posed.cpu().numpy()
    return out
