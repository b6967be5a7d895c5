"""Quality measures that need no ground-truth 3-D: silhouettes and landmarks on our own renders,
mesh sanity, head proportions, and the aggregate over a folder of portraits with its targets.

The judge is independent of the reconstruction where it can be: mediapipe's face detector and face
mesh run again on renders of the head (see ../shared/DESIGN.md, "How quality is measured"). Every
function here is pure (arrays in, numbers out); backend/evaluation/judge.py renders and detects.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from backend.render.camera import R_FRONT as R_FACING  # the level view straight at the face
from backend.render.camera import OrthoCamera

LEFT_EYE_OUTER, RIGHT_EYE_OUTER = 263, 33


def bust_region(camera: OrthoCamera, bust_bottom_z_m: float, half_width_m: float) -> np.ndarray:
    """(H, W) bool: pixels whose line of sight crosses the head's mid-plane inside the bust volume
    (above the bust's bottom cut and within its side walls), where the mesh can exist at all."""
    w, h = camera.image_size
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    x = (u - camera.principal_px[0]) / camera.pixels_per_metre
    y = (v - camera.principal_px[1]) / camera.pixels_per_metre
    R = camera.R_cam_from_canonical
    canon = np.stack([x, y, np.zeros_like(x)], -1) @ R  # R^T [x, y, 0]
    return (canon[..., 2] > bust_bottom_z_m) & (np.abs(canon[..., 0]) < half_width_m)


def silhouette_iou(render_mask: np.ndarray, person_mask: np.ndarray, region: np.ndarray) -> float:
    """IoU of the rendered head's silhouette and the person mask, both limited to `region`."""
    a = render_mask & region
    b = (person_mask > 0.5) & region
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def inter_ocular(points: np.ndarray) -> float:
    """Distance between the outer eye corners of (478, 2+) face-mesh points, in their own units
    (pixels for image landmarks, metres for landmarks_m; only the first two columns count)."""
    return float(np.linalg.norm(points[LEFT_EYE_OUTER, :2] - points[RIGHT_EYE_OUTER, :2]))


def landmark_nme(found_px: np.ndarray, expected_px: np.ndarray, iod_px: float | None = None) -> float:
    """Mean landmark distance over the inter-ocular distance, both (N, 2+) pixels.

    iod_px: the normaliser; by default the outer-eye-corner distance of `expected_px`. A turned
    head foreshortens that distance by about cos(yaw), so novel views may pass the frontal one.
    """
    iod = inter_ocular(expected_px) if iod_px is None else iod_px
    return float(np.linalg.norm(found_px[:, :2] - expected_px[:, :2], axis=1).mean() / iod)


def camera_yaw_deg(R_cam_from_canonical: np.ndarray) -> float:
    """How far a camera sees the head turned from its own frontal direction (canonical -Y), in
    degrees about the head's vertical axis, signed like backend.render.views.orbit_camera's yaw
    (positive: the nose points toward the image's right, the subject's right cheek shows).
    Pitch and roll do not count: it is the angle of the face direction in the camera's x-z plane."""
    face = np.asarray(R_cam_from_canonical, np.float64) @ np.array([0.0, -1.0, 0.0])
    return float(np.degrees(np.arctan2(face[0], -face[2])))


def head_relative_camera(base: OrthoCamera, yaw_deg: float) -> OrthoCamera:
    """A level camera at yaw_deg from the head's frontal direction, whatever way the photo was
    taken: `base`'s scale, image size and origin pixel, R = R_FACING turned about canonical +Z
    (the same turn backend.render.views.orbit_camera applies), so camera_yaw_deg(result.R) == yaw_deg."""
    c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    turn_head = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return OrthoCamera(R_FACING @ turn_head, base.pixels_per_metre,
                       np.array(base.principal_px, dtype=np.float64), tuple(base.image_size))


@dataclass
class MeshSanity:
    """watertight: every edge has exactly two faces; winding_consistent: each shared edge is walked
    once each way (so the normals agree); outward: positive signed volume (normals point out)."""

    watertight: bool
    winding_consistent: bool
    outward: bool
    components: int
    triangles: int
    vertices: int


def mesh_sanity(verts_m: np.ndarray, faces: np.ndarray) -> MeshSanity:
    """verts_m: (V, 3) float metres; faces: (F, 3) int. Vertices are taken as they are (no merging)."""
    import trimesh

    mesh = trimesh.Trimesh(np.asarray(verts_m, np.float64), np.asarray(faces), process=False)
    labels = trimesh.graph.connected_components(mesh.face_adjacency, nodes=np.arange(len(faces)))
    watertight = bool(mesh.is_watertight)
    return MeshSanity(watertight=watertight, winding_consistent=bool(mesh.is_winding_consistent),
                      outward=watertight and float(mesh.volume) > 0, components=len(labels),
                      triangles=len(faces), vertices=len(verts_m))


@dataclass
class EyeLevelSize:
    """The head cut by a horizontal band at eye height (hair and ears included, as a tape measure
    would see them). breadth_m: extent along X (ear to ear); length_m: along Y (face to back)."""

    breadth_m: float
    length_m: float

    @property
    def length_over_breadth(self) -> float:
        return self.length_m / self.breadth_m if self.breadth_m > 0 else float("nan")


def eye_level_size(verts_m: np.ndarray, landmarks_m: np.ndarray, band_m: float = 0.01) -> EyeLevelSize:
    """verts_m: (V, 3) canonical metres; landmarks_m: (478, 3); band_m: half-height of the band
    around the mean height of the outer eye corners."""
    eye_z = landmarks_m[[LEFT_EYE_OUTER, RIGHT_EYE_OUTER], 2].mean()
    band = verts_m[np.abs(verts_m[:, 2] - eye_z) < band_m]
    if len(band) == 0:
        return EyeLevelSize(0.0, 0.0)
    return EyeLevelSize(float(np.ptp(band[:, 0])), float(np.ptp(band[:, 1])))


# Aggregates over a folder of portraits. Per-image records are the dicts backend/evaluation/judge.py
# writes: {"status": "ok", "input_view": {...}, "views": {name: {...}}, ...} or {"status": "failed"}.

@dataclass(frozen=True)
class Target:
    metric: str  # key in the aggregate
    op: str  # ">=" or "<="
    value: float
    source: str


# The targets (issue 3), and the behind view from DESIGN.md ("a head, not a mask").
TARGETS = (
    Target("mean_silhouette_iou", ">=", 0.93, "issue 3"),
    Target("mean_nme_input_view", "<=", 0.025, "issue 3"),
    Target("detection_rate_yaw30", ">=", 1.0, "issue 3"),
    Target("detection_rate_yaw60", ">=", 0.9, "issue 3"),
    Target("mean_nme_yaw30", "<=", 0.05, "issue 3"),
    Target("detection_rate_back", "<=", 0.0, "DESIGN.md"),
)


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _rate(flags: list) -> float | None:
    return float(np.mean(flags)) if flags else None


def view_found(view: dict) -> bool:
    """A camera-relative view's verdict (face_found: at either framing), or the photo framing's
    alone in records written before there were two."""
    return view.get("face_found", view["face_detected"])


def aggregate(records: list[dict]) -> dict:
    """Means over the heads that were made; rates over the views rendered (two per |yaw|), the
    camera-relative ones ("views", the issue's targets), the head-relative ones ("head_views",
    head_* keys) and the yaw sweep ("sweep", sweep_* keys) apart.

    NME means skip views whose landmarks were not found (their count is the detection rate's job).
    """
    ok = [r for r in records if r.get("status") == "ok"]
    # The records of the named views of one family ("views", "head_views", "framed_views").
    pick = lambda family, names: [r[family][n] for r in ok for n in names  # noqa: E731
                                  if n in r.get(family, {})]
    at30, at60 = pick("views", ("yaw-30", "yaw+30")), pick("views", ("yaw-60", "yaw+60"))
    back = pick("views", ("back",))
    head30, head60 = pick("head_views", ("head-30", "head+30")), pick("head_views", ("head-60", "head+60"))
    framed30 = pick("framed_views", ("framed-30", "framed+30"))
    framed60 = pick("framed_views", ("framed-60", "framed+60"))
    framed_back = pick("framed_views", ("framed-back",))
    sweep = [v["face_score"] for r in ok for v in r.get("sweep", {}).values()]
    photo_sweep = [v.get("photo_face_score", v["face_score"])
                   for r in ok for v in r.get("sweep", {}).values()]
    return {
        "images": len(records),
        "succeeded": len(ok),
        "failed": {r["name"]: r["error"]["code"] for r in records if r.get("status") != "ok"},
        "mean_silhouette_iou": _mean([r["input_view"]["silhouette_iou"] for r in ok]),
        "mean_nme_input_view": _mean([r["input_view"]["nme"] for r in ok]),
        "landmarks_found_input_view": _rate([r["input_view"]["landmarks_found"] for r in ok]),
        # The targets' verdict: a face at the photo's framing or the judge's one framing
        # (backend.evaluation.judge.found_either); records from before it count the photo's alone.
        "detection_rate_yaw30": _rate([view_found(v) for v in at30]),
        "detection_rate_yaw60": _rate([view_found(v) for v in at60]),
        "detection_rate_profile": _rate([view_found(v) for v in pick("views", ("profile",))]),
        "detection_rate_back": _rate([view_found(v) for v in back]),
        # The same views judged at the photo's framing alone.
        "photo_detection_rate_yaw30": _rate([v["face_detected"] for v in at30]),
        "photo_detection_rate_yaw60": _rate([v["face_detected"] for v in at60]),
        "photo_detection_rate_back": _rate([v["face_detected"] for v in back]),
        "mean_nme_yaw30": _mean([v["nme"] for v in at30]),
        "mean_nme_yaw60": _mean([v["nme"] for v in at60]),
        # Head-relative views (backend/evaluation/judge.py HEAD_VIEWS): no targets of their own.
        "head_detection_rate_yaw30": _rate([v["face_detected"] for v in head30]),
        "head_detection_rate_yaw60": _rate([v["face_detected"] for v in head60]),
        "head_mean_nme_yaw30": _mean([v["nme"] for v in head30]),
        "head_mean_nme_yaw60": _mean([v["nme"] for v in head60]),
        # The views at the judge's one framing (backend/evaluation/judge.py FRAMED_VIEWS): no targets.
        "framed_detection_rate_yaw30": _rate([v["face_detected"] for v in framed30]),
        "framed_detection_rate_yaw60": _rate([v["face_detected"] for v in framed60]),
        "framed_detection_rate_back": _rate([v["face_detected"] for v in framed_back]),
        "framed_mean_nme_yaw30": _mean([v["nme"] for v in framed30]),
        # The yaw sweep (backend/evaluation/judge.py SWEEP): views found, and the mean detector score
        # with a missed view counted as 0 (moves before a view flips). No targets.
        "sweep_detection_rate": _rate([s is not None for s in sweep]),
        "sweep_mean_face_score": _mean([s or 0.0 for s in sweep]),
        "photo_sweep_detection_rate": _rate([s is not None for s in photo_sweep]),
        "photo_sweep_mean_face_score": _mean([s or 0.0 for s in photo_sweep]),
        "mean_abs_input_yaw_deg": _mean([abs(r["input_yaw_deg"]) for r in ok if "input_yaw_deg" in r]),
        "all_watertight": all(r["mesh"]["watertight"] for r in ok) if ok else None,
        "all_one_component": all(r["mesh"]["components"] == 1 for r in ok) if ok else None,
        "mean_total_s": _mean([r["timings_s"]["total"] for r in ok]),
    }


def check_targets(summary: dict, targets=TARGETS) -> list[dict]:
    """One row per target: the measured value and whether it passes (None measured: fail)."""
    rows = []
    for t in targets:
        got = summary.get(t.metric)
        passed = got is not None and (got >= t.value if t.op == ">=" else got <= t.value)
        rows.append({**asdict(t), "measured": got, "passed": bool(passed)})
    return rows
