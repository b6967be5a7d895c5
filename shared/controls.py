"""The animation controls both sides agree on: ARKit expression names, SMPL pose joints, limits.

Conventions (docs/architecture.md, "Animation"):
- Expression weights are floats in [0, 1], keyed by ARKit blendshape name ("jawOpen", ...).
  "Left" is the subject's own left, which is +X in the canonical frame (image right in a frontal photo).
- Pose values are axis-angle rotation vectors in radians, one (3,) per joint, expressed in the
  canonical (Blender) frame: +X the subject's left, +Y back of the head, +Z up. A rotation about +Z
  turns the face toward the subject's left (yaw), about +X nods, about +Y tilts. Joint frames at rest
  are aligned with the canonical axes, as in SMPL, so a joint's rotation is relative to its parent.
- SMPL / AMASS data lives in SMPL's frame (+Y up, the body faces +Z); ``smpl_to_canonical`` converts.
"""
from __future__ import annotations

import numpy as np

# Apple ARKit's 52 blendshape locations, in ARKit's documented order.
ARKIT_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight",
    "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight", "eyeWideRight",
    "jawForward", "jawLeft", "jawRight", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)

# What a slider's tooltip says beyond "0 = rest, 1 = full", for shapes whose ARKit meaning
# surprises when the slider is moved alone.
ARKIT_HINTS: dict[str, str] = {
    "mouthClose": "closes the lips over an open jaw: key it with jawOpen (at most as high); "
                  "alone it presses the lips into each other",
}

# Panel groups, in the order an animator scans a face.
ARKIT_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Jaw", tuple(n for n in ARKIT_NAMES if n.startswith("jaw"))),
    ("Mouth", tuple(n for n in ARKIT_NAMES if n.startswith(("mouth", "tongue")))),
    ("Eyes", tuple(n for n in ARKIT_NAMES if n.startswith("eye"))),
    ("Brows", tuple(n for n in ARKIT_NAMES if n.startswith("brow"))),
    ("Cheeks", tuple(n for n in ARKIT_NAMES if n.startswith("cheek"))),
    ("Nose", tuple(n for n in ARKIT_NAMES if n.startswith("nose"))),
)

# SMPL's 24 body joints in SMPL order (index = position in an AMASS ``poses`` row / 3).
SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)

# The joints a Headlift bust has, parents first. "root" takes SMPL's root (pelvis) rotation and
# turns the whole bust about a point low in the chest.
POSE_JOINTS: tuple[str, ...] = ("root", "neck", "left_collar", "right_collar", "head",
                                "left_shoulder", "right_shoulder")
POSE_PARENTS: dict[str, str | None] = {
    "root": None, "neck": "root", "left_collar": "root", "right_collar": "root", "head": "neck",
    "left_shoulder": "left_collar", "right_shoulder": "right_collar",
}
# Where each pose joint sits in SMPL's joint order.
SMPL_INDEX: dict[str, int] = {"root": 0, **{n: SMPL_JOINT_NAMES.index(n) for n in POSE_JOINTS[1:]}}

# Limits every request is checked against (both sides check; the backend's check is the one that counts).
MAX_BAKE_FRAMES = 10_000  # about 7 minutes at 24 fps; longer takes are baked in parts
MAX_DRIVE_FRAMES = 72_000  # a driving take's 10 minutes at up to 120 fps
MAX_POSE_ANGLE_RAD = 2 * np.pi  # a larger rotation vector is a unit mix-up, not a pose

# Proper rotation taking SMPL's axes (x left, y up, z forward) to the canonical ones (x left, z up,
# -y forward). Axis-angle vectors are vectors, so they convert by the same matrix.
SMPL_TO_CANONICAL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def smpl_to_canonical(axis_angle: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle in SMPL's frame -> (..., 3) axis-angle in the canonical frame."""
    return np.asarray(axis_angle, dtype=np.float64) @ SMPL_TO_CANONICAL.T
