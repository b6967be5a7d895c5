"""Face-mesh landmark sets and the anatomy read off them (face scale, lip slit, jaw hinge, jaw weight).

Shared by the mouth (backend/rig/mouth.py) and the expression shapes (backend/rig/expressions.py),
so the mesh and the landmark-only basis agree on what the upper lip, the lids and the jaw are.
Indices are mediapipe's 478-point face mesh. "Left" is the subject's left, +X (shared/controls.py).
"""
from __future__ import annotations

import numpy as np

# Lips, corner to corner, from the subject's right (-X) to the left (+X).
UPPER_LIP_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LOWER_LIP_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
UPPER_LIP_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_LIP_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
MOUTH_CORNERS = (61, 291, 78, 308)

# Eyelids, outer corner to inner corner; rings step away from the lid margin.
EYES = {
    "left": dict(upper=(263, 466, 388, 387, 386, 385, 384, 398, 362),
                 lower=(263, 249, 390, 373, 374, 380, 381, 382, 362),
                 upper2=(467, 260, 259, 257, 258, 286, 414), upper3=(342, 445, 444, 443, 442, 441, 413),
                 lower2=(359, 255, 339, 254, 253, 252, 256, 341, 463),
                 lower3=(446, 261, 448, 449, 450, 451, 452, 453, 464)),
    "right": dict(upper=(33, 246, 161, 160, 159, 158, 157, 173, 133),
                  lower=(33, 7, 163, 144, 145, 153, 154, 155, 133),
                  upper2=(247, 30, 29, 27, 28, 56, 190), upper3=(113, 225, 224, 223, 222, 221, 189),
                  lower2=(130, 25, 110, 24, 23, 22, 26, 112, 243),
                  lower3=(226, 31, 228, 229, 230, 231, 232, 233, 244)),
}
IRISES = (tuple(range(468, 473)), tuple(range(473, 478)))
FACE_SURFACE = 468  # landmarks 0..467 lie on the skin; the 10 iris points do not
CHIN = 152
EAR_SIDES = (234, 454)
OUTER_EYE_CORNERS = (33, 263)

# Left (+X) / right (-X) landmark pairs, for building a shape's right variant from its left one.
_PAIRS = ((61, 291), (78, 308), (33, 263), (133, 362), (159, 386), (145, 374), (105, 334), (107, 336),
          (70, 300), (46, 276), (48, 278), (50, 280), (172, 397), (98, 327), (205, 425), (129, 358),
          (66, 296), (65, 295), (55, 285), (52, 282), (53, 283), (63, 293), (116, 345), (117, 346),
          (118, 347), (101, 330), (36, 266), (206, 426), (216, 436), (207, 427), (187, 411), (147, 376),
          (123, 352), (212, 432), (57, 287), (43, 273), (106, 335), (182, 406), (83, 313), (202, 422),
          (214, 434), (135, 364), (138, 367), (192, 416), (213, 433), (40, 270), (39, 269), (37, 267),
          (185, 409), (146, 375), (91, 321), (181, 405), (84, 314), (191, 415), (80, 310), (81, 311),
          (82, 312), (95, 324), (88, 318), (178, 402), (87, 317), (49, 279), (209, 429), (198, 420),
          (131, 360), (102, 331), (64, 294), (219, 439), (218, 438), (237, 457), (79, 309), (166, 392),
          (75, 305), (60, 290), (20, 250), (242, 462), (99, 328), (240, 460), (235, 455), (165, 391),
          (92, 322), (186, 410), (62, 292), (76, 306), (77, 307), (96, 325), (89, 319), (90, 320),
          (179, 403), (180, 404), (85, 315), (86, 316), (67, 297), (109, 338), (108, 337), (69, 299),
          (104, 333), (103, 332), (54, 284), (21, 251), (68, 298), (71, 301), (139, 368), (156, 383),
          (124, 353), (35, 265), (111, 340), (143, 372), (34, 264), (127, 356), (162, 389), (93, 323),
          (132, 361), (58, 288), (136, 365), (150, 379), (149, 378), (176, 400), (148, 377), (171, 396),
          (140, 369), (170, 395), (169, 394), (210, 430), (211, 431), (32, 262), (204, 424), (194, 418),
          (201, 421), (208, 428))
_EYE_PAIRS = tuple((r, l) for key in EYES["left"] for r, l in zip(EYES["right"][key], EYES["left"][key]))
MIRROR = {**{r: l for r, l in _PAIRS + _EYE_PAIRS}, **{l: r for r, l in _PAIRS + _EYE_PAIRS}}

REFERENCE_EYE_SPAN_M = 0.09  # outer eye corner to outer eye corner of an average adult


def smoothstep(t):
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def mirror(indices) -> tuple[int, ...]:
    """Landmark indices of one side -> their mirror partners (midline points map to themselves)."""
    return tuple(MIRROR.get(int(i), int(i)) for i in indices)


def face_scale(landmarks_m: np.ndarray) -> float:
    """How big this face is relative to an average adult's (outer eye corner span / 9 cm)."""
    lm = np.asarray(landmarks_m, dtype=np.float64)
    return float(np.linalg.norm(lm[OUTER_EYE_CORNERS[0]] - lm[OUTER_EYE_CORNERS[1]]) / REFERENCE_EYE_SPAN_M)


SLIT_ABOVE_LOWER_LIP = 0.2  # of the way from the lower inner-lip contour up to the upper one


def slit_points(landmarks_m: np.ndarray) -> np.ndarray:
    """(11, 3) the line where the lips part, right corner first: just above the lower inner-lip
    contour. Shut lips meet there anyway; lips apart over teeth in a smile show the upper teeth, which
    stay with the skull while the lower lip drops, so the opening starts at the lower lip."""
    lm = np.asarray(landmarks_m, dtype=np.float64)
    upper, lower = lm[list(UPPER_LIP_INNER)], lm[list(LOWER_LIP_INNER)]
    return lower + SLIT_ABOVE_LOWER_LIP * (upper - lower)


def jaw_hinge(landmarks_m: np.ndarray) -> np.ndarray:
    """(3,) a point on the jaw's hinge axis (along X): under the ears, just in front of them."""
    lm = np.asarray(landmarks_m, dtype=np.float64)
    s = face_scale(lm)
    side = lm[list(EAR_SIDES)].mean(axis=0)
    return np.array([0.0, side[1] + 0.008 * s, side[2] - 0.015 * s])


def corner_taper(x: np.ndarray, slit: np.ndarray) -> np.ndarray:
    """0 at the mouth corners, 1 over the middle of the mouth: how far apart the lips may part there.

    An oval, 1 - (1 - u)^2.5 with u the distance in from the corner over the half-width: the lip gap
    measured across the inner-lip pairs on the open frames of a speaking actor (lp_d3) is
    [0.34 0.59 0.80 0.95 1 ...] of the centre's, which this matches to 0.02. The earlier flat-topped
    profile (smoothstep(u / 0.35)) opened the sides as far as the centre, so the solver could only
    fit a video's opening with a smaller jawOpen (the driven mouth reached 0.6 of the actor's)."""
    half = 0.5 * (slit[-1, 0] - slit[0, 0])
    mid = 0.5 * (slit[-1, 0] + slit[0, 0])
    u = 1.0 - np.abs(np.asarray(x) - mid) / max(half, 1e-6)
    return 1.0 - (1.0 - np.clip(u, 0.0, 1.0)) ** 2.5


class JawField:
    """How much a point follows the jaw, from its angle about the hinge below the lip slit.

    Seen from the side, the jaw is everything below the line from the hinge through the lip slit
    (at the point's own x; beyond the mouth corners, through the corner). The switch is sharp at
    the lips and widens over the cheeks; it fades out behind the hinge and down the neck.
    """

    def __init__(self, landmarks_m: np.ndarray):
        lm = np.asarray(landmarks_m, dtype=np.float64)
        self.scale = face_scale(lm)
        self.hinge = jaw_hinge(lm)
        self.slit = slit_points(lm)
        self.chin_z = float(lm[CHIN, 2])
        order = np.argsort(self.slit[:, 0])
        self._slit_x = self.slit[order, 0]
        self._slit_angle = self.angle(self.slit[order])

    def angle(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) -> (N,) radians below the forward (-Y) direction, seen from the side about the hinge."""
        rel = np.asarray(points, dtype=np.float64) - self.hinge
        return np.arctan2(-rel[:, 2], -rel[:, 1])

    def below(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) -> (N,) signed angle below the slit line (radians) and (N,) half-width of the switch."""
        points = np.asarray(points, dtype=np.float64)
        ref = np.interp(points[:, 0], self._slit_x, self._slit_angle)
        outside = np.maximum(np.abs(points[:, 0] - 0.5 * (self._slit_x[0] + self._slit_x[-1]))
                             - 0.5 * (self._slit_x[-1] - self._slit_x[0]), 0.0)
        half = np.radians(3.0) + np.radians(9.0) * smoothstep(outside / (0.02 * self.scale))
        return self.angle(points) - ref, half

    def gate(self, points: np.ndarray) -> np.ndarray:
        """(N,) 1 on the face in front of the hinge and above the neck, 0 behind / below."""
        points = np.asarray(points, dtype=np.float64)
        s = self.scale
        front = smoothstep((self.hinge[1] - points[:, 1]) / (0.03 * s))
        above_neck = smoothstep((points[:, 2] - (self.chin_z - 0.035 * s)) / (0.025 * s))
        return front * above_neck

    def weight(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) -> (N,) jaw weight in [0, 1] from geometry alone (no lip sides)."""
        d, half = self.below(points)
        return smoothstep((d + half) / (2 * half)) * self.gate(points)


def landmark_jaw_weight(landmarks_m: np.ndarray) -> np.ndarray:
    """(478,) how much each landmark follows the jaw: the lower lip 1 and the upper 0 (both tapering
    to 1/2 at the corners, where the lips stay together), the rest from JawField."""
    lm = np.asarray(landmarks_m, dtype=np.float64)
    field = JawField(lm)
    w = field.weight(lm)
    taper = corner_taper(lm[:, 0], field.slit)
    for idx in (UPPER_LIP_OUTER, UPPER_LIP_INNER):
        w[list(idx)] = 0.5 - 0.5 * taper[list(idx)]
    for idx in (LOWER_LIP_OUTER, LOWER_LIP_INNER):
        w[list(idx)] = 0.5 + 0.5 * taper[list(idx)]
    for iris in IRISES:
        w[list(iris)] = 0.0
    return w
