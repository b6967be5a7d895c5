"""ARKit expression shapes: landmark handle displacements, spread over the face by a biharmonic solve.

Each shape is defined on the 478 face-mesh landmarks (landmark_basis): lids close onto lid lines,
lip corners and brows move by millimetres scaled to the face's size, with a smooth falloff round
each moved group. On the mesh (build_expressions) the landmarks become handle vertices (found by
looking at the face from the front, since the lifted landmarks may sit behind the surface round the
eyes), the eye openings follow their lids, and the rest of the face follows by minimising the
Laplacian energy of the displacement (one factorisation, solved for all shapes at once). The lip
slit (backend/rig/mouth.py) is cut, so the solve keeps the lips apart. jawOpen turns the
jaw-weighted vertices (lower lip, chin, lower teeth, tongue) about a hinge under the ears.
The video solver (backend/animation/video/solve.py) uses landmark_basis on an actor's own neutral face, so
"jawOpen 0.6" means the same on the actor and on the head.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.rig import landmarks as L
from backend.rig.landmarks import (
    EYES,
    IRISES,
    LOWER_LIP_INNER,
    LOWER_LIP_OUTER,
    UPPER_LIP_INNER,
    UPPER_LIP_OUTER,
    JawField,
    corner_taper,
    face_scale,
    landmark_jaw_weight,
    mirror,
    smoothstep,
)
from backend.rig.surface import ConstrainedSolver, FrontView, cotangent_laplacian, front_snap
from shared.controls import ARKIT_NAMES

MM = 1e-3
BLINK_MEET = 0.0  # a blink's lids meet this fraction of the opening above the lower lid
# How far the upper lid's skin above the lash line (its 2nd and 3rd landmark rings) comes down with it,
# as a share of the lash line's travel: the shadowed lid and crease band then slides down whole
# instead of stretching over the eye as a dark band that reads as an opening.
BLINK_LID_FOLLOW = (1.2, 0.9)
JAW_OPEN_RAD = 0.36  # jawOpen = 1 turns the jaw ~21 degrees: a wide-open mouth (~3.8 cm between the lips)
# mouthClose = 1 shuts the lips that jawOpen = 1 parts (ARKit: the lips closed whatever the jaw
# does), the lower lip covering this share of the way and the upper lip the rest; skin within
# CLOSE_RADIUS_MM of a lip follows it.
CLOSE_LOWER_SHARE = 2.0 / 3.0
CLOSE_RADIUS_MM = 7.0


@dataclass(frozen=True)
class Move:
    """Landmarks `core` (written for the subject's left side) move by `mm` (x, y, z in the canonical
    frame, millimetres for an average-sized face); landmarks near them follow with a Gaussian falloff
    of `radius_mm`. gate: "upper" / "lower" lets only that side of the lip slit move; "brow"
    leaves the eyelid margins where they are."""

    core: tuple[int, ...]
    mm: tuple[float, float, float]
    radius_mm: float
    gate: str | None = None


# Left-side definitions; "Right" variants are mirrored (landmarks.MIRROR, x negated).
_CORNER = (291, 308, 409, 375, 306, 292)
_CHEEK = (280, 425, 411, 352, 346, 347, 330, 266)
_LOWER_LIP_L = (314, 405, 321, 375, 317, 402, 318, 324)
_UPPER_LIP_L = (267, 269, 270, 409, 312, 311, 310, 415)
_BROW_L = (300, 293, 334, 296, 336, 276, 283, 282, 295, 285)
_BROW_INNER_L = (336, 296, 285, 295)
_BROW_OUTER_L = (300, 293, 276, 283)
_ALA_L = (278, 279, 360, 294, 331, 327, 358, 429)
_LIPS = UPPER_LIP_OUTER + LOWER_LIP_OUTER + UPPER_LIP_INNER + LOWER_LIP_INNER
_UPPER_LIPS = UPPER_LIP_OUTER + UPPER_LIP_INNER
_LOWER_LIPS = LOWER_LIP_OUTER + LOWER_LIP_INNER

SIDED: dict[str, tuple[Move, ...]] = {
    "mouthSmile": (Move(_CORNER, (4.0, 3.0, 8.0), 14.0), Move(_CHEEK, (1.0, -1.0, 3.0), 14.0),
                   Move(EYES["left"]["lower"][2:7], (0.0, 0.0, 0.8), 5.0)),
    "mouthFrown": (Move(_CORNER, (1.5, 0.0, -5.5), 12.0),),
    "mouthDimple": (Move(_CORNER, (2.0, 4.0, 0.5), 11.0),),
    "mouthStretch": (Move(_CORNER, (6.0, 1.0, -2.0), 12.0), Move(_LOWER_LIP_L, (1.0, 0.0, -1.5), 8.0, "lower")),
    "mouthPress": (Move(_UPPER_LIP_L, (0.0, 1.0, -1.0), 7.0, "upper"),
                   Move(_LOWER_LIP_L, (0.0, 1.0, 1.2), 7.0, "lower")),
    "mouthLowerDown": (Move(_LOWER_LIP_L, (0.0, 0.5, -4.0), 9.0, "lower"),),
    "mouthUpperUp": (Move(_UPPER_LIP_L, (0.0, 0.0, 4.0), 9.0, "upper"),),
    "browDown": (Move(_BROW_L, (-1.5, 0.0, -4.0), 12.0, "brow"), Move(_BROW_INNER_L, (-1.5, 0.5, -1.0), 8.0, "brow")),
    "browOuterUp": (Move(_BROW_OUTER_L, (0.0, 0.0, 5.0), 14.0, "brow"),),
    "cheekSquint": (Move(_CHEEK, (0.0, 0.0, 3.0), 12.0), Move(EYES["left"]["lower"][1:8], (0.0, 0.0, 1.2), 4.0)),
    "noseSneer": (Move(_ALA_L, (0.5, 0.0, 3.0), 8.0), Move((279, 429, 358), (0.0, 0.0, 1.5), 12.0)),
}
SYMMETRIC: dict[str, tuple[Move, ...]] = {
    "mouthFunnel": (Move(_LIPS, (0.0, -5.0, 0.0), 9.0), Move(_UPPER_LIPS, (0.0, 0.0, 2.0), 6.0, "upper"),
                    Move(_LOWER_LIPS, (0.0, 0.0, -2.0), 6.0, "lower"), Move(_CORNER, (-4.0, 0.0, 0.0), 9.0)),
    "mouthPucker": (Move(_LIPS, (0.0, -6.0, 0.0), 9.0), Move(_CORNER, (-7.0, -1.0, 0.0), 11.0)),
    "mouthLeft": (Move(_LIPS, (6.0, 0.0, 0.0), 10.0),),
    "mouthRollLower": (Move(LOWER_LIP_OUTER[2:9], (0.0, 4.0, 2.0), 6.0, "lower"),),
    "mouthRollUpper": (Move(UPPER_LIP_OUTER[2:9], (0.0, 4.0, -2.0), 6.0, "upper"),),
    "mouthShrugLower": (Move(LOWER_LIP_OUTER[3:8] + (18, 200, 199, 175), (0.0, -1.0, 3.0), 12.0, "lower"),),
    "mouthShrugUpper": (Move(UPPER_LIP_OUTER[3:8], (0.0, -0.5, 2.5), 9.0, "upper"),),
    "browInnerUp": (Move(_BROW_INNER_L + mirror(_BROW_INNER_L), (0.0, 0.0, 6.0), 14.0, "brow"),
                    Move((9, 151, 108, 337), (0.0, 0.0, 3.0), 15.0, "brow")),
    "cheekPuff": (Move(_CHEEK[:3] + (427, 436, 416, 434), (6.0, -2.0, 0.0), 16.0),),
}
# Symmetric moves with an x component are mirrored too (the left half moves +x, the right -x).
_MIRRORED_X = {"mouthFunnel", "mouthPucker", "browInnerUp", "cheekPuff"}
EYE_SHAPES = ("eyeBlink", "eyeSquint", "eyeWide")
JAW_SHAPES = ("jawForward", "jawLeft", "jawRight", "jawOpen")
# No eyeball geometry to turn, so the eyeLook* shapes are not offered.
SUPPORTED = tuple(n for n in ARKIT_NAMES if not n.startswith("eyeLook"))


def _sided(name: str) -> tuple[str, str] | None:
    for suffix in ("Left", "Right"):
        if name.endswith(suffix) and name[: -len(suffix)] in SIDED | {k: () for k in EYE_SHAPES}:
            return name[: -len(suffix)], suffix.lower()
    return None


class _Face:
    """Anatomy of one neutral face, read off its landmarks (metres, canonical frame)."""

    def __init__(self, landmarks_m: np.ndarray):
        self.lm = np.asarray(landmarks_m, dtype=np.float64)
        self.s = face_scale(self.lm)
        self.jaw = JawField(self.lm)
        self.jaw_weight = landmark_jaw_weight(self.lm)
        self.upper = self._upper_gate()
        # Brows pull the skin above the eyes, not the lid margins (a blink stays shut under raised brows).
        self.lid_hold = np.ones(478)
        for e in EYES.values():
            self.lid_hold[list(e["upper"] + e["lower"])] = 0.0
            self.lid_hold[list(e["upper2"])] = 0.4

    def _upper_gate(self) -> np.ndarray:
        """(478,) 1 above the lip slit, 0 below, 1/2 at the corners and far to the sides."""
        slit = self.jaw.slit
        order = np.argsort(slit[:, 0])
        z_slit = np.interp(self.lm[:, 0], slit[order, 0], slit[order, 2])
        gate = smoothstep((self.lm[:, 2] - z_slit) / (4 * MM * self.s) * 0.5 + 0.5)
        gate[list(_UPPER_LIPS)] = 1.0
        gate[list(_LOWER_LIPS)] = 0.0
        gate[list(L.MOUTH_CORNERS)] = 0.5
        return gate

    def _reach(self, core: list[int], radius_mm: float) -> tuple[np.ndarray, np.ndarray]:
        """-> (478,) how much each landmark follows the ``core`` landmarks (1 on them, a Gaussian of
        the distance to the nearest one elsewhere) and (478,) that nearest one (index into core)."""
        d = np.linalg.norm(self.lm[:, None, :] - self.lm[None, core, :], axis=2)  # (478, n)
        w = np.exp(-(d.min(axis=1) / (radius_mm * MM * self.s)) ** 2)
        w[core] = 1.0
        return w, d.argmin(axis=1)

    def move(self, m: Move, side: str) -> np.ndarray:
        """(478, 3) displacement of one Move on `side` ("left" as written, "right" mirrored)."""
        core = list(m.core if side == "left" else mirror(m.core))
        vec = np.array(m.mm) * MM * self.s * ([1.0, 1.0, 1.0] if side == "left" else [-1.0, 1.0, 1.0])
        w, _ = self._reach(core, m.radius_mm)
        if m.gate == "upper":
            w = w * self.upper
        elif m.gate == "lower":
            w = w * (1.0 - self.upper)
        elif m.gate == "brow":
            w = w * self.lid_hold
        w[list(IRISES[0] + IRISES[1])] = 0.0
        return w[:, None] * vec

    def symmetric(self, name: str) -> np.ndarray:
        out = np.zeros((478, 3))
        for m in SYMMETRIC[name]:
            if name in _MIRRORED_X:
                # Each half moves with its own side's copy; x flips on the right.
                left, right = self.move(m, "left"), self.move(m, "right")
                plus = self.lm[:, 0] >= 0
                out += np.where(plus[:, None], left, right) if m.mm[0] else 0.5 * (left + right)
            else:
                out += self.move(m, "left")
        return out

    def eye(self, kind: str, side: str) -> np.ndarray:
        """(478, 3) displacement of eyeBlink / eyeSquint / eyeWide on one side, lid ring by ring."""
        e = EYES[side]
        out = np.zeros((478, 3))
        up, low = list(e["upper"][1:-1]), list(e["lower"])
        unit = MM * self.s
        if kind == "eyeBlink":
            # The lids meet BLINK_MEET of the way up from the lower lid: the upper lid's lash line
            # comes down over the whole eye width onto the lower lid's curve, and the lower lid
            # comes forward to the upper lid's depth, so the shut seam is one curved line with no
            # step or groove in it. The painted iris and eye white between them (eye_interior)
            # are squeezed into that line; the skin above follows the lash line down
            # (BLINK_LID_FOLLOW) so that lid skin, not a stretched shadow, covers the eye.
            o_up, o_low = np.argsort(self.lm[up, 0]), np.argsort(self.lm[low, 0])

            def line(idx, order, at):
                return np.stack([np.interp(at, self.lm[idx, 0][order], self.lm[idx, k][order]) for k in range(3)], 1)

            meet_up = line(low, o_low, self.lm[up, 0])
            meet_up += BLINK_MEET * (self.lm[up] - meet_up)
            out[up] = meet_up - self.lm[up]
            inner = low[1:-1]
            meet_low = line(up, o_up, self.lm[inner, 0])
            meet_low = self.lm[inner] + BLINK_MEET * (meet_low - self.lm[inner])
            out[inner] = meet_low - self.lm[inner]
            out[up, 1] = 0.0
            out[inner, 1] = np.interp(self.lm[inner, 0], self.lm[up, 0][o_up], self.lm[up, 1][o_up]) - self.lm[inner, 1]
            for ring, share in zip(("upper2", "upper3"), BLINK_LID_FOLLOW):
                idx = list(e[ring])
                out[idx, 2] = share * np.interp(self.lm[idx, 0], self.lm[up, 0][o_up], out[up, 2][o_up])
            o_in = np.argsort(self.lm[inner, 0])
            for ring, share in (("lower2", 0.75), ("lower3", 0.35)):
                idx = list(e[ring][1:-1])
                out[idx, 2] = share * np.interp(self.lm[idx, 0], self.lm[inner, 0][o_in], out[inner, 2][o_in])
        elif kind == "eyeSquint":
            out[low[1:-1], 2] = 2.0 * unit
            out[list(e["lower2"][1:-1]), 2] = 1.6 * unit
            out[list(e["lower3"][1:-1]), 2] = 1.0 * unit
            out[up, 2] = -1.0 * unit
        else:  # eyeWide
            out[up, 2] = 2.5 * unit
            out[list(e["upper2"]), 2] = 1.8 * unit
            out[list(e["upper3"]), 2] = 0.8 * unit
            out[low[1:-1], 2] = -0.6 * unit
        iris = IRISES[0] if self.lm[list(IRISES[0]), 0].mean() * (1 if side == "left" else -1) > 0 else IRISES[1]
        out[list(iris)] = eye_interior(self.lm[list(iris)], self.lm, out, side)
        return out

    def jaw_shape(self, name: str) -> np.ndarray:
        return jaw_delta(name, self.lm, self.jaw_weight, self.jaw.hinge, self.s)

    def close_shape(self) -> np.ndarray:
        """(478, 3) mouthClose at weight 1: each lip moves its share of the opening that jawOpen = 1
        makes between the inner-lip pairs above and below it, so jawOpen = mouthClose keeps the
        lips together (lp_d9's sealed lips over a dropped jaw, solved as jaw = close = 0.1, stayed
        3 mm apart on the head when mouthClose closed a fixed 9 mm per unit)."""
        up, low = list(UPPER_LIP_INNER), list(LOWER_LIP_INNER)
        # The jaw's opening where the lips part (the slit; the head's mesh cuts there), (11, 3):
        # each lip's jaw weight at the same point, zero at the shared corners.
        slit = self.jaw.slit
        opening = (jaw_delta("jawOpen", slit, self.jaw_weight[low], self.jaw.hinge, self.s)
                   - jaw_delta("jawOpen", slit, self.jaw_weight[up], self.jaw.hinge, self.s))
        x = slit[:, 0]
        order = np.argsort(x)
        out = np.zeros((478, 3))
        for lips, share, gate in ((list(_LOWER_LIPS), -CLOSE_LOWER_SHARE, 1.0 - self.upper),
                                  (list(_UPPER_LIPS), 1.0 - CLOSE_LOWER_SHARE, self.upper)):
            delta = share * np.stack([np.interp(self.lm[lips, 0], x[order], opening[order, k])
                                      for k in range(3)], axis=1)  # (n, 3)
            w, nearest = self._reach(lips, CLOSE_RADIUS_MM)
            out += (w * gate)[:, None] * delta[nearest]
        out[list(IRISES[0] + IRISES[1])] = 0.0
        return out

    def shape(self, name: str) -> np.ndarray:
        """(478, 3) displacement at weight 1 of one supported ARKit shape."""
        if name in JAW_SHAPES:
            return self.jaw_shape(name)
        if name == "mouthClose":
            return self.close_shape()
        if name == "mouthRight":
            d = self.symmetric("mouthLeft")
            return d * [-1.0, 1.0, 1.0]
        if name == "tongueOut":
            # The tongue pushes the lower lip down and forward a little.
            return self.move(Move(_LOWER_LIPS, (0.0, -1.0, -1.5), 6.0, "lower"), "left")
        if name in SYMMETRIC:
            return self.symmetric(name)
        base, side = _sided(name)
        if base in EYE_SHAPES:
            return self.eye(base, side)
        return sum(self.move(m, side) for m in SIDED[base])


def eye_interior(points: np.ndarray, lm: np.ndarray, handle_delta: np.ndarray, side: str) -> np.ndarray:
    """Points in the eye opening (N, 3) follow the lids: each interpolates between the lower lid's
    and the upper lid's displacement (handle_delta (478, 3)) by its height between them, seen
    from the front. -> (N, 3)."""
    e = EYES[side]
    up, low = list(e["upper"]), list(e["lower"])
    x = points[:, 0]

    def along(idx):
        order = np.argsort(lm[idx, 0])
        xs = lm[idx, 0][order]
        z = np.interp(x, xs, lm[idx, 2][order])
        d = np.stack([np.interp(x, xs, handle_delta[idx, k][order]) for k in range(3)], 1)
        return z, d

    z_up, d_up = along(up)
    z_low, d_low = along(low)
    t = np.clip((points[:, 2] - z_low) / np.maximum(z_up - z_low, 1e-6), 0.0, 1.0)[:, None]
    return (1 - t) * d_low + t * d_up


def jaw_delta(name: str, points: np.ndarray, weight: np.ndarray, hinge: np.ndarray, scale: float) -> np.ndarray:
    """(N, 3) points with jaw weights (N,) -> (N, 3) displacement of a jaw shape at weight 1.
    jawOpen turns about the hinge's X axis by JAW_OPEN_RAD * weight (chin down and back)."""
    points = np.asarray(points, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)[:, None]
    if name == "jawOpen":
        theta = JAW_OPEN_RAD * w[:, 0]
        rel = points - hinge
        c, s = np.cos(theta), np.sin(theta)
        y = rel[:, 1] * c - rel[:, 2] * s
        z = rel[:, 1] * s + rel[:, 2] * c
        return np.stack([np.zeros_like(y), y - rel[:, 1], z - rel[:, 2]], axis=1)
    shift = {"jawForward": (0.0, -4.0, 0.0), "jawLeft": (5.0, 0.0, 0.0), "jawRight": (-5.0, 0.0, 0.0)}[name]
    return w * np.array(shift) * MM * scale


def landmark_basis(neutral_landmarks_m: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    """neutral_landmarks_m (478, 3) canonical metres -> (names, (E, 478, 3) float32 displacement of
    every landmark at weight 1), names in shared.controls.ARKIT_NAMES order. Landmarks only, no
    mesh: the same handle definitions that shape a reconstructed head."""
    face = _Face(neutral_landmarks_m)
    deltas = np.stack([face.shape(n) for n in SUPPORTED]).astype(np.float32)
    return SUPPORTED, deltas


@dataclass
class ExpressionConfig:
    falloff_mm: float = 22.0  # the solve reaches this far past the nearest landmark handle
    eye_front_mm: float = 2.0  # an eye-opening vertex is on the front surface within this depth
    pixel_mm: float = 0.5  # of the front view that finds handle vertices
    lid_margin_mm: float = 1.5  # the eye opening's vertices reach this far past the lid lines
    lining_mm: float = 12.0  # the mouth bag follows the lips' shapes, fading out this deep


def _handles(verts: np.ndarray, faces: np.ndarray, lm: np.ndarray, mouth, view: FrontView) -> np.ndarray:
    """(468,) the mesh vertex of each skin landmark: the surface straight in front of it, and on
    the lip slit the right lip's copy."""
    idx = front_snap(verts, faces, lm[:L.FACE_SURFACE], view=view)
    if mouth is not None:
        for lip_landmarks, lip in ((UPPER_LIP_INNER, mouth.upper_lip), (LOWER_LIP_INNER, mouth.lower_lip)):
            xz = verts[lip][:, [0, 2]]
            for i in lip_landmarks:
                idx[i] = lip[int(np.argmin(np.linalg.norm(xz - lm[i, [0, 2]], axis=1)))]
    return idx


def _eye_openings(verts: np.ndarray, faces: np.ndarray, lm: np.ndarray, taken: np.ndarray,
                  config: ExpressionConfig, view: FrontView) -> dict[str, np.ndarray]:
    """Per side, the front-surface vertices between the lids (seen from the front), not handles."""
    out = {}
    for side, e in EYES.items():
        up, low = list(e["upper"]), list(e["lower"])
        lo_x, hi_x = lm[up, 0].min(), lm[up, 0].max()
        cand = np.flatnonzero((verts[:, 0] > lo_x) & (verts[:, 0] < hi_x)
                              & (verts[:, 1] < lm[up + low, 1].max() + 0.03))
        o_up, o_low = np.argsort(lm[up, 0]), np.argsort(lm[low, 0])
        x = verts[cand, 0]
        z_up = np.interp(x, lm[up, 0][o_up], lm[up, 2][o_up])
        z_low = np.interp(x, lm[low, 0][o_low], lm[low, 2][o_low])
        # A little past each lid line too: the lid margins between handles then close exactly.
        margin = config.lid_margin_mm * MM * face_scale(lm)
        cand = cand[(verts[cand, 2] < z_up + margin) & (verts[cand, 2] > z_low - margin)]
        if len(cand) == 0:
            out[side] = cand
            continue
        seen = front_snap(verts, faces, verts[cand], view=view)
        front = verts[seen, 1] > verts[cand, 1] - config.eye_front_mm * MM
        cand = cand[front & (np.abs(verts[seen, 1] - verts[cand, 1]) < config.eye_front_mm * MM)]
        out[side] = cand[~np.isin(cand, taken)]
    return out


def build_expressions(verts_m: np.ndarray, faces: np.ndarray, landmarks_m: np.ndarray, mouth=None,
                      config: ExpressionConfig | None = None) -> tuple[tuple[str, ...], np.ndarray]:
    """verts_m (V, 3), faces (F, 3) the rest mesh (mouth.verts_m / mouth.faces when there is a
    mouth), landmarks_m (478, 3), mouth: backend.rig.mouth.MouthGeometry or None
    -> (names in ARKIT_NAMES order, (E, V, 3) float32 displacement at weight 1)."""
    config = config or ExpressionConfig()
    verts = np.asarray(verts_m, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    lm = np.asarray(landmarks_m, dtype=np.float64)
    if mouth is not None and len(mouth.verts_m) != len(verts):
        raise ValueError("the mouth was built on another mesh")
    face = _Face(lm)
    names = SUPPORTED
    n = len(verts)
    deltas = np.zeros((len(names), n, 3))

    # The surface the shapes spread over: the skin. The mouth bag hangs from the lips' edge and
    # follows it (below); teeth and tongue move only with the jaw.
    surface = np.ones(n, bool) if mouth is None else mouth.region == 0
    surf_faces = faces[surface[faces].all(axis=1)]
    face_lm = lm[:L.FACE_SURFACE]
    view = FrontView(verts, surf_faces, face_lm[:, [0, 2]].min(0) - 0.01, face_lm[:, [0, 2]].max(0) + 0.01,
                     config.pixel_mm * MM, max_y=float(face_lm[:, 1].max()) + 0.02)
    handles = _handles(verts, surf_faces, lm, mouth, view)
    eyes = _eye_openings(verts, surf_faces, lm, handles, config, view)

    spread = [k for k, name in enumerate(names) if name not in JAW_SHAPES]
    at_landmarks = np.stack([face.shape(names[k]) for k in spread])  # (S, 478, 3)
    # Handle values: landmarks that share a vertex average; eye openings follow their lids.
    con_idx, inverse = np.unique(handles, return_inverse=True)
    values = np.zeros((len(con_idx), len(spread), 3))
    np.add.at(values, inverse, at_landmarks[:, :L.FACE_SURFACE].transpose(1, 0, 2))
    values /= np.bincount(inverse, minlength=len(con_idx))[:, None, None]
    eye_idx = np.concatenate([eyes["left"], eyes["right"]])
    eye_vals = np.concatenate([np.stack([eye_interior(verts[eyes[side]], lm, d, side) for d in at_landmarks], 1)
                               for side in ("left", "right")])

    # The solve region: within falloff of a handle, plus the bag; its rim is held still.
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(verts[con_idx]).query(verts)
    region = surface & (dist < config.falloff_mm * MM * face.s)
    # The region's rim holds still; the lips' cut edge is not a rim (it moves with the lips).
    rim = region & ~_interior(region, surf_faces)
    fixed_idx = np.concatenate([con_idx, eye_idx, np.flatnonzero(rim & ~np.isin(np.arange(n), np.r_[con_idx, eye_idx]))])
    fixed_val = np.concatenate([values, eye_vals, np.zeros((len(fixed_idx) - len(con_idx) - len(eye_idx), len(spread), 3))])
    idx = np.flatnonzero(region)
    local = -np.ones(n, np.int64)
    local[idx] = np.arange(len(idx))
    sub_faces = local[surf_faces[region[surf_faces].all(axis=1)]]
    lap, mass = cotangent_laplacian(verts[idx], sub_faces)
    fixed_local = local[fixed_idx]
    free_local = np.setdiff1d(np.arange(len(idx)), fixed_local)
    solver = ConstrainedSolver(lap, mass, fixed_local, free_local, order=2)
    solved = solver.solve(fixed_val.reshape(len(fixed_idx), -1)).reshape(len(free_local), len(spread), 3)
    for j, k in enumerate(spread):
        deltas[k, fixed_idx] = fixed_val[:, j]
        deltas[k, idx[free_local]] = solved[:, j]

    if mouth is not None:
        # The lining hangs from the lips: near them it moves with them, deeper it holds still.
        bag = np.flatnonzero(mouth.cavity_lip >= 0)
        follow = 1.0 - smoothstep(mouth.cavity_depth_m[bag] / (config.lining_mm * MM * face.s))
        for k in spread:
            deltas[k, bag] = deltas[k, mouth.cavity_lip[bag]] * follow[:, None]

    jaw_weight = mouth.jaw_weight if mouth is not None else face.jaw.weight(verts)
    hinge = mouth.hinge_m if mouth is not None else face.jaw.hinge
    for k, name in enumerate(names):
        if name in JAW_SHAPES:
            deltas[k] = jaw_delta(name, verts, jaw_weight, hinge, face.s)
    if mouth is not None:
        tongue = mouth.region == 4
        deltas[names.index("tongueOut"), tongue] = np.array([0.0, -18.0, -2.0]) * MM * face.s
    return names, deltas.astype(np.float32)


def _interior(mask: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V,) True for vertices of `mask` whose every neighbour is in `mask` too."""
    bad = np.zeros(len(mask), bool)
    edge_out = ~mask[faces]
    touches = edge_out.any(axis=1)
    bad[faces[touches].ravel()] = True
    return mask & ~bad
