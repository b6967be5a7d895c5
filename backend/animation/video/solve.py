"""Per-frame head rotation and expression weights from tracked face-mesh landmarks.

1. Rigid alignment: a similarity transform (scale, rotation, shift) from the actor's neutral
   landmarks to each frame, fitted on landmarks that expressions barely move (forehead, nose
   bridge, eye corners, temples). Its rotation is the head pose; undoing it leaves the frame's
   landmarks in the canonical head frame, where only expression remains.
2. Neutral (rest_face): the per-landmark median over the take, with mouth and jaw taken from the
   frames with shut lips (at least the quarter with the lips closest together), since the shapes
   start from shut lips (or the landmarks of a neutral photo). A per-shape low percentile of a free
   solve was tried as the baseline: 44 independent percentiles are no face, and the bounded solve
   paid for the made-up offset with constant smile, funnel and lowered-lip weights (lp_d9's lips
   shut at rest came out 0.05 eye-spans apart).
3. Weights: bounded least squares of the frame's landmark offsets against the expression basis
   evaluated on the actor's own neutral landmarks (the same handle displacements that shape the
   reconstructed head), so "jaw 0.6" means the same thing on the actor and on the head. The
   openings a viewer reads (the inner lips apart, in height and sideways, and each lid pair) are
   differences of landmarks a few millimetres apart that the plain fit would trade for bigger
   corner and cheek motions (a mouth pulled sideways came out with the lips sheared apart by
   jawLeft); they get rows of their own (SolveConfig.opening_weight).
4. Frames without a face are bridged linearly from their neighbours; the curves are then smoothed
   with a Savitzky-Golay filter over the whole take (backend/animation/video/smooth.py says why).
5. Where the take sees the shoulders (backend/animation/video/shoulders.py), the bust's roll drives the root
   and each shrug its collar, smoothed the same way. The head's rotation stays what the face says in
   camera terms: neck and head share what is left of it after the root's roll, so a rolled bust does
   not roll the head twice. A take that sees them in too few frames drives neither and says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.optimize import lsq_linear
from scipy.spatial.transform import Rotation

from backend.animation.video.shoulders import ShoulderConfig, collar_rotations, shoulder_motion
from backend.animation.video.smooth import SmoothConfig, smooth_take
from backend.animation.video.track import Track
from backend.errors import NoFaceError
from backend.reconstruct.camera import estimate_camera
from backend.render.camera import R_FRONT
from backend.rig.landmarks import EYES, LOWER_LIP_INNER, OUTER_EYE_CORNERS, UPPER_LIP_INNER, smoothstep

# Face-mesh landmarks that expressions move least: forehead, nose bridge and tip, eye corners,
# temples and cheekbones.
RIGID = np.array([10, 151, 9, 8, 109, 338, 67, 297, 6, 168, 197, 195, 5, 4, 1,
                  33, 133, 362, 263, 234, 454, 127, 356, 162, 389, 21, 251])

SKIN = 468  # landmarks 0..467 lie on the skin; 468..477 are the irises

# Landmark pairs across an opening, (upper, lower): the inner lips without the corners, and each
# eye's lid margins without the corners.
LIP_PAIRS = tuple(zip(UPPER_LIP_INNER[1:-1], LOWER_LIP_INNER[1:-1]))
LID_PAIRS = tuple(p for e in EYES.values() for p in zip(e["upper"][1:-1], e["lower"][1:-1]))

Basis = Callable[[np.ndarray], tuple[tuple[str, ...], np.ndarray]]


@dataclass
class SolveConfig:
    depth_weight: float = 0.5  # mediapipe's depth is noisier than its image positions
    neck_share: float = 0.4  # of the head's rotation carried by the neck joint, the rest by the head
    # Ridge on the weights, relative to the basis' mean squared column norm: many ARKit shapes move
    # the same lip points, and without it the bounded solve saturates shapes that cancel each other.
    ridge: float = 0.02
    # Each opening row (lip pair across x and height, lid pair in height) counts as this many
    # landmark coordinates: 50 took lp_d9's lip-gap r on the landmarks 0.81 -> 0.95 (20: 0.92).
    opening_weight: float = 50.0
    # L1 pull on the weights (they are >= 0, so it is a constant cost per unit of weight), relative to
    # the basis' mean squared column norm: a shape whose lone fit is under sparsity/2 stays at 0 and
    # the others give up that much. Without it every frame spreads small weights over ~14 shapes
    # whose mesh effects on the head add up to lip motion the actor did not make. Judge's mouth r
    # (astronaut) at 0 / 0.05 / 0.1 / 0.2: lp_d9 whole 0.36 / 0.58 / 0.65 / 0.69, lp_d3 first 4 s
    # 0.94 / 0.92 / 0.88 / 0.87.
    sparsity: float = 0.1
    # The take's rest face: the median over this share of frames, those with the lips closest (rest_face).
    rest_share: float = 0.25
    # ... or all frames whose lips are this close, where those are more: a take with the lips shut
    # throughout (lp_d9) has its rest in the typical shut mouth, not the most pressed quarter.
    # Judge's mouth r (astronaut; shaded orthographic renders) on lp_d9 whole 0.76 -> 0.79
    # (fr_rose_leslie 0.81 -> 0.81), lp_d3 0.98 -> 0.98.
    shut_gap_m: float = 0.001
    # mouthClose <= jawOpen (ARKit's meaning of mouthClose; see close_within_jaw). Without it lp_d9's
    # shut lips came out with mouthClose over jawOpen in 162 of 587 frames, which shuts the head's
    # (often parted) lips further. Judge's mouth r (astronaut), with the take's plain median face as
    # rest: lp_d9 whole 0.65 -> 0.70, lp_d3 first 4 s 0.88 -> 0.90. With rest_face as well: 0.68, 0.91.
    close_within_jaw: bool = True
    smoothing: SmoothConfig = field(default_factory=SmoothConfig)
    shoulders: ShoulderConfig = field(default_factory=ShoulderConfig)


@dataclass
class Drive:
    """Controls for every frame of a take.

    weights: (T, E) in [0, 1] for ``expression_names``; poses: (T, J, 3) axis-angle radians in the
    canonical frame for ``joint_names``; head_rotation: (T, 3) the whole head's rotation in camera
    terms (root, neck and head joints together); missing: inclusive frame ranges without a face
    (bridged). joint_names is ("neck", "head"), or where the shoulders are seen ("root", "neck",
    "left_collar", "right_collar", "head"); warnings: what the take could not drive and why.
    """

    fps: float
    expression_names: tuple[str, ...]
    weights: np.ndarray
    joint_names: tuple[str, ...]
    poses: np.ndarray
    head_rotation: np.ndarray
    missing: list[tuple[int, int]]
    warnings: list[str] = field(default_factory=list)


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(N,3) src, (N,3) dst -> scale s, rotation R (3,3), shift t with dst ~ s R src + t (Umeyama)."""
    src_c, dst_c = src - src.mean(0), dst - dst.mean(0)
    rot, _ = Rotation.align_vectors(dst_c, src_c)
    R = rot.as_matrix()
    s = float(np.sum(dst_c * (src_c @ R.T)) / np.sum(src_c ** 2))
    return s, R, dst.mean(0) - s * src.mean(0) @ R.T


def canonicalise(track: Track, reference_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """-> rotations (T,3,3) camera-from-canonical (NaN where missing) and landmarks (T,478,3) in
    the canonical frame at the reference's scale (metres), NaN where missing."""
    T = len(track.found)
    rotations = np.full((T, 3, 3), np.nan)
    canonical = np.full((T, 478, 3), np.nan)
    for t in np.flatnonzero(track.found):
        px = track.landmarks_px[t].astype(np.float64)
        s, R, shift = fit_similarity(reference_m[RIGID], px[RIGID])
        rotations[t] = R
        canonical[t] = (px - shift) @ R / s
    return rotations, canonical


def solve_drive(track: Track, fps: float, basis: Basis, config: SolveConfig | None = None,
                image_size: tuple[int, int] = (512, 512), neutral_px: np.ndarray | None = None) -> Drive:
    """Track -> Drive. ``basis(neutral_m (478,3)) -> (names, (E,478,3) landmark offsets at weight 1)``.
    neutral_px: (478, 3) landmarks of the actor at rest (e.g. found on a neutral photo), or None to
    use the take's own median face. Raises NoFaceError when no frame has a face."""
    config = config or SolveConfig()
    if not track.found.any():
        raise NoFaceError("no face was found in any frame of the video")
    rotations, canonical, neutral = take_neutral(track, image_size, neutral_px, config.rest_share,
                                                 config.shut_gap_m)
    names, offsets = basis(neutral)
    weights = _solve_weights(canonical - neutral, offsets, track.found, config, names)
    head = _head_rotations(rotations, track.found)

    missing = track.missing_ranges()
    weights = np.clip(smooth_take(_bridge(weights, track.found), fps, config.smoothing), 0.0, 1.0)
    head = smooth_take(_bridge(head, track.found), fps, config.smoothing)
    bust, warnings = _bust(track, fps, config)
    if bust is None:
        joint_names = ("neck", "head")
        poses = np.stack([head * config.neck_share, head * (1 - config.neck_share)], axis=1)
    else:
        root, collars = bust
        # The root carries the neck and head: they take the face's rotation less the bust's roll.
        rest = (Rotation.from_rotvec(root).inv() * Rotation.from_rotvec(head)).as_rotvec()
        joint_names = ("root", "neck", "left_collar", "right_collar", "head")
        poses = np.stack([root, rest * config.neck_share, collars[:, 0], collars[:, 1],
                          rest * (1 - config.neck_share)], axis=1)
    return Drive(fps=fps, expression_names=tuple(names), weights=weights.astype(np.float32),
                 joint_names=joint_names, poses=poses.astype(np.float32),
                 head_rotation=head.astype(np.float32), missing=missing, warnings=warnings)


def _bust(track: Track, fps: float, config: SolveConfig
          ) -> tuple[tuple[np.ndarray, np.ndarray] | None, list[str]]:
    """-> ((T,3) root axis-angle, (T,2,3) left/right collar axis-angle) or None when the take does
    not see the shoulders in enough frames, and the warnings to report."""
    shoulders, c = track.shoulders, config.shoulders
    if shoulders is None:
        return None, []
    motion = shoulder_motion(shoulders.points_px, shoulders.seen, track.landmarks_px, c.roll_share)
    good = np.isfinite(motion.roll)
    seen = float(good.sum() / max(int(shoulders.sampled.sum()), 1))
    if seen < c.min_seen_fraction:
        return None, [f"shoulders seen in {seen:.0%} of the pose-tracked frames (under "
                      f"{c.min_seen_fraction:.0%}): no shoulder joint driven"]
    curves = smooth_take(_bridge(np.column_stack([motion.roll, motion.rise]), good), fps,
                         config.smoothing)
    root = np.zeros((len(curves), 3))
    root[:, 1] = curves[:, 0]
    return (root, collar_rotations(curves[:, 1:], c)), []


def opening_rows(offsets: np.ndarray) -> np.ndarray:
    """offsets (..., 478, 3) -> (..., K) the openings' changes: per lip pair its x and height
    differences, per lid pair its height difference (upper minus lower)."""
    up, low = np.array(LIP_PAIRS).T
    lip = offsets[..., up, :][..., [0, 2]] - offsets[..., low, :][..., [0, 2]]
    up, low = np.array(LID_PAIRS).T
    lid = offsets[..., up, 2] - offsets[..., low, 2]
    return np.concatenate([lip.reshape(*lip.shape[:-2], -1), lid], axis=-1)


def take_neutral(track: Track, image_size: tuple[int, int] = (512, 512),
                 neutral_px: np.ndarray | None = None, rest_share: float = SolveConfig.rest_share,
                 shut_gap_m: float = SolveConfig.shut_gap_m
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """-> rotations (T,3,3) camera-from-canonical, landmarks (T,478,3) in the canonical frame (NaN
    rows where missing) and the neutral (478,3) they are solved against: the neutral photo's
    landmarks (neutral_px) or the take's rest face (rest_face). Needs at least one found frame."""
    if neutral_px is not None:
        _, neutral = estimate_camera(np.asarray(neutral_px, np.float64), image_size)
        rotations, canonical = canonicalise(track, neutral.astype(np.float64))
        return rotations, canonical, neutral.astype(np.float64)
    first = int(np.flatnonzero(track.found)[0])
    _, reference = estimate_camera(track.landmarks_px[first].astype(np.float64), image_size)
    # Two passes: the take's rest face is a steadier reference than any single frame.
    _, canonical = canonicalise(track, reference.astype(np.float64))
    rotations, canonical = canonicalise(track, rest_face(canonical, rest_share, shut_gap_m))
    return rotations, canonical, rest_face(canonical, rest_share, shut_gap_m)


def rest_face(canonical: np.ndarray, rest_share: float = SolveConfig.rest_share,
              shut_gap_m: float = SolveConfig.shut_gap_m) -> np.ndarray:
    """canonical (T, 478, 3), NaN rows where missing -> (478, 3) the actor at rest. The shapes are
    defined from a face with shut lips, but a talking take's median face has them apart (lp_d3:
    2.7 mm), and the solve then shuts them with mouthClose on a shut jaw, which ARKit's mouthClose
    is not. So the mouth and jaw come from the median over the frames whose inner lips are shut
    (apart by at most shut_gap_m), or over the rest_share of frames with the lips closest together
    where fewer are shut. Not the closest quarter alone: in a take with the lips shut throughout
    (lp_d9) those are the frames that press them, and the solve read the actor's usual mouth as a
    steady pucker (0.37 on average, which moved the head's lips all take long). The eyes and brows
    come from the median over the whole take, since the frames with shut lips need not hold the
    eyes at rest (lp_d3 with all of that face: eye r 0.91 / 0.94 -> 0.70 / 0.83). The two blend
    between the eyes and the mouth."""
    faces = canonical[np.isfinite(canonical[:, 0, 0])]
    up, low = np.array(LIP_PAIRS).T
    gap = np.mean(faces[:, up, 2] - faces[:, low, 2], axis=1)
    shut = np.median(faces[gap <= max(np.quantile(gap, rest_share), shut_gap_m)], axis=0)
    median = np.median(faces, axis=0)
    eye_z, mouth_z = median[list(OUTER_EYE_CORNERS), 2].mean(), median[[13, 14], 2].mean()
    below = smoothstep(((eye_z - median[:, 2]) / (eye_z - mouth_z) - 0.3) / 0.4)[:, None]
    return below * shut + (1.0 - below) * median


def close_within_jaw(names: tuple[str, ...]) -> np.ndarray:
    """(E, E) T with weights = T @ z: ARKit's mouthClose is the lips staying shut while the jaw
    opens, so it never exceeds jawOpen. With z >= 0 and jawOpen = z_jaw + z_close that holds by
    construction, and the bounded solve stays a box-bounded one. Identity without both shapes."""
    T = np.eye(len(names))
    if "jawOpen" in names and "mouthClose" in names:
        T[names.index("jawOpen"), names.index("mouthClose")] = 1.0
    return T


def _solve_weights(offsets_t: np.ndarray, basis: np.ndarray, found: np.ndarray,
                   config: SolveConfig, names: tuple[str, ...] = ()) -> np.ndarray:
    """offsets_t (T,478,3), basis (E,478,3) for shapes ``names`` -> (T,E) weights in [0,1] (NaN
    rows where missing). The iris points (468..477) are left out: gaze is not an expression of the
    basis."""
    scale = np.array([1.0, 1.0, config.depth_weight])
    n_shapes = len(basis)
    rows = np.flatnonzero(found)
    root = np.sqrt(config.opening_weight)
    T = close_within_jaw(tuple(names)) if config.close_within_jaw and names else np.eye(n_shapes)
    # (1404 + K, E) and (n, 1404 + K): the landmark coordinates, then the openings; solved for z.
    A = np.concatenate([(basis[:, :SKIN] * scale).reshape(n_shapes, -1),
                        root * opening_rows(basis)], axis=1).T.astype(np.float64) @ T
    b = np.concatenate([(offsets_t[rows, :SKIN] * scale).reshape(len(rows), -1),
                        root * opening_rows(offsets_t[rows])], axis=1)
    norm = float(np.mean(np.sum(A * A, axis=0))) if n_shapes else 0.0
    lam, mu = config.ridge * norm, config.sparsity * norm
    weights = np.full((len(found), n_shapes), np.nan)
    if n_shapes:
        # |A w - b|^2 + lam |w|^2 + mu sum(w) = |U w - U^-T (A^T b - mu/2)|^2 + const with
        # U^T U = A^T A + lam I (w >= 0, so sum(w) is the L1 norm), so each frame's bounded solve
        # runs on an (E, E) system instead of (1404 + K + E, E).
        U = np.linalg.cholesky(A.T @ A + lam * np.eye(n_shapes)).T
        targets = np.linalg.solve(U.T, A.T @ b.T - mu / 2).T  # (n, E)
        for i, row in zip(rows, targets):
            weights[i] = T @ lsq_linear(U, row, bounds=(0.0, 1.0), method="bvls").x
    return np.minimum(weights, 1.0)


def _head_rotations(rotations: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Camera-from-canonical rotations (T,3,3) -> (T,3) head rotation vectors in the canonical
    frame, relative to facing the camera squarely (NaN rows where missing)."""
    out = np.full((len(found), 3), np.nan)
    rows = np.flatnonzero(found)
    out[rows] = Rotation.from_matrix(R_FRONT.T @ rotations[rows]).as_rotvec()
    return out


def _bridge(values: np.ndarray, found: np.ndarray) -> np.ndarray:
    """(T, D) with NaN rows where not found -> linear interpolation across gaps, held at the ends."""
    t = np.arange(len(found))
    good = np.flatnonzero(found)
    return np.stack([np.interp(t, good, values[good, d]) for d in range(values.shape[1])], axis=1)
