"""Animation data files as per-frame arrays: Live Link Face CSV, SMPL / AMASS .npz, PC2 point caches.

Pure numpy + stdlib, no bpy and no torch, so the add-on (importing keyframes, writing its bake
cache) and the backend CLI (writing a CSV from a video later) read and write the same layouts.

Live Link Face CSV (Epic's iPhone app), one row per captured frame::

    Timecode,BlendShapeCount,EyeBlinkLeft,...,TongueOut,HeadYaw,HeadPitch,HeadRoll,LeftEyeYaw,...
    14:03:52:28.207,61,0.0123,...

``Timecode`` is ``HH:MM:SS:FF.fff`` (FF the frame at the capture rate, .fff a sub-frame fraction);
the 52 ARKit names are capitalised (matched here without regard to case); head and eye angles are
radians. ARKit's face frame (+x the subject's left, +y up, +z out of the face) maps onto the
canonical frame with the same proper rotation as SMPL's, so the head's yaw (about +y), pitch (about
+x) and roll (about +z) become one canonical rotation vector for the ``head`` joint.

PC2 (the point cache Blender's Mesh Cache modifier reads): a 32-byte header (12-byte
``b"POINTCACHE2\\0"``, int32 version 1, int32 points, float32 start frame, float32 sample rate,
int32 samples), then float32 xyz per point per sample, little-endian.
"""
from __future__ import annotations

import csv
import io
import math
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .controls import ARKIT_NAMES, POSE_JOINTS, SMPL_INDEX, SMPL_TO_CANONICAL, smpl_to_canonical

LIVE_LINK_HEAD = ("HeadYaw", "HeadPitch", "HeadRoll")
LIVE_LINK_EYES = ("LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                  "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
LIVE_LINK_COLUMNS: tuple[str, ...] = (
    "Timecode", "BlendShapeCount", *(n[0].upper() + n[1:] for n in ARKIT_NAMES),
    *LIVE_LINK_HEAD, *LIVE_LINK_EYES)
COMMON_RATES = (24.0, 25.0, 30.0, 48.0, 50.0, 60.0, 100.0, 120.0)
_TIMECODE = re.compile(r"^\s*(\d+):(\d+):(\d+)(?:[:;](\d+))?(\.\d+)?\s*$")
# ARKit's axes (x left, y up, z toward the viewer) and SMPL's agree; both map to canonical alike.
ARKIT_TO_CANONICAL = SMPL_TO_CANONICAL

PC2_MAGIC = b"POINTCACHE2\0"
PC2_HEADER = struct.Struct("<12siiffi")


# --- rotations --------------------------------------------------------------------------------

def rotvec_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Rodrigues: (..., 3) axis-angle, radians -> (..., 3, 3) rotation matrices (float64)."""
    r = np.asarray(rotvec, dtype=np.float64)
    theta = np.linalg.norm(r, axis=-1)[..., None, None]
    small = theta < 1e-8
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 1.0 - theta ** 2 / 6.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - theta ** 2 / 24.0, (1.0 - np.cos(safe)) / safe ** 2)
    x, y, z = r[..., 0], r[..., 1], r[..., 2]
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(*r.shape[:-1], 3, 3)
    return np.eye(3) + a * k + b * (k @ k)


def matrix_to_rotvec(matrix: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle in [0, pi] radians (float64)."""
    m = np.asarray(matrix, dtype=np.float64)
    cos = np.clip((np.trace(m, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    theta = np.arccos(cos)
    skew = np.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                     m[..., 1, 0] - m[..., 0, 1]], axis=-1)  # 2 sin(theta) * axis
    sin = np.sin(theta)[..., None]
    out = np.where(sin > 1e-6, skew * (theta[..., None] / np.where(sin > 1e-6, 2 * sin, 1.0)),
                   skew * 0.5)  # near 0: the skew part is the rotation vector itself
    # Near pi the skew part vanishes; the axis comes from the symmetric part instead.
    near_pi = theta > math.pi - 1e-3
    if np.any(near_pi):
        # The symmetric part is cos(t) I + (1 - cos(t)) a a^T: solve it for a a^T.
        c = cos[near_pi][..., None, None]
        sym = ((m[near_pi] + np.swapaxes(m[near_pi], -1, -2)) / 2.0 - c * np.eye(3)) / (1.0 - c)
        col = np.argmax(np.diagonal(sym, axis1=-2, axis2=-1), axis=-1)
        axis = sym[np.arange(len(col)), :, col]
        axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
        sign = np.where((skew[near_pi] * axis).sum(-1, keepdims=True) < 0, -1.0, 1.0)
        out[near_pi] = sign * axis * theta[near_pi][..., None]
    return out


def head_angles_to_rotvec(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Live Link head angles (T,) radians -> (T, 3) canonical rotation vectors.

    R = R_y(yaw) R_x(pitch) R_z(roll) in ARKit's frame (yaw applied last, as a head turns on the
    neck), then carried into the canonical frame."""
    y, p, r = (np.asarray(v, dtype=np.float64) for v in (yaw, pitch, roll))
    zero = np.zeros_like(y)
    arkit = (rotvec_to_matrix(np.stack([zero, y, zero], -1))
             @ rotvec_to_matrix(np.stack([p, zero, zero], -1))
             @ rotvec_to_matrix(np.stack([zero, zero, r], -1)))
    return matrix_to_rotvec(ARKIT_TO_CANONICAL @ arkit @ ARKIT_TO_CANONICAL.T)


def rotvec_to_head_angles(rotvec: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of ``head_angles_to_rotvec``: (T, 3) canonical -> yaw, pitch, roll (T,) radians."""
    m = ARKIT_TO_CANONICAL.T @ rotvec_to_matrix(rotvec) @ ARKIT_TO_CANONICAL
    # m = Ry Rx Rz: m[1,2] = -sin(pitch); m[0,2] = sin(yaw)cos(pitch); m[1,0] = cos(pitch)sin(roll)
    pitch = np.arcsin(np.clip(-m[..., 1, 2], -1.0, 1.0))
    yaw = np.arctan2(m[..., 0, 2], m[..., 2, 2])
    roll = np.arctan2(m[..., 1, 0], m[..., 1, 1])
    return yaw, pitch, roll


# --- takes -------------------------------------------------------------------------------------

@dataclass
class Take:
    """Per-sample control values from a file, before resampling to a scene's frame rate.

    times_s:     (T,) float64 seconds from the first sample, increasing
    expressions: ARKit name -> (T,) float32 weights
    pose:        pose joint name -> (T, 3) float32 canonical axis-angle, radians
    ignored:     columns / fields the file had that no control takes (reported to the user)
    """

    times_s: np.ndarray
    expressions: dict[str, np.ndarray] = field(default_factory=dict)
    pose: dict[str, np.ndarray] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    source_fps: float = 0.0

    def resample(self, fps: float, frame_start: int) -> tuple[np.ndarray, "Take"]:
        """Values at every scene frame the take covers: (N,) int frames and a Take of N samples.

        Linear in time for weights and for rotation vectors (neighbouring samples are close, so
        interpolating the vectors stays within a fraction of a degree of the true slerp)."""
        if fps <= 0 or not math.isfinite(fps):
            raise ValueError(f"scene frame rate must be positive, got {fps}")
        n = int(math.floor(self.times_s[-1] * fps + 1e-6)) + 1
        t = np.arange(n) / fps
        frames = frame_start + np.arange(n)
        interp = lambda v: np.interp(t, self.times_s, v).astype(np.float32)  # noqa: E731
        return frames, Take(
            times_s=t, source_fps=fps, ignored=list(self.ignored),
            expressions={k: interp(v) for k, v in self.expressions.items()},
            pose={k: np.stack([interp(v[:, i]) for i in range(3)], -1) for k, v in self.pose.items()})


def _check_finite(name: str, values: np.ndarray) -> None:
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise ValueError(f"{name}: {len(bad)} value(s) are not finite numbers (first at sample {bad[0]})")


# --- Live Link Face CSV --------------------------------------------------------------------------

def parse_timecode(text: str, fps: float) -> float:
    """``HH:MM:SS:FF.fff`` (or ``HH:MM:SS.fff``) -> seconds."""
    match = _TIMECODE.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a timecode (HH:MM:SS:FF.fff)")
    h, m, s, ff, frac = match.groups()
    frames = (int(ff) if ff is not None else 0) + (float(frac) if frac and ff is not None else 0.0)
    seconds = float(frac) if frac and ff is None else 0.0
    return int(h) * 3600 + int(m) * 60 + int(s) + seconds + frames / fps


def format_timecode(seconds: float, fps: float) -> str:
    frames_total = seconds * fps
    whole = int(math.floor(frames_total + 1e-9))
    frac = max(frames_total - whole, 0.0)
    per_s = int(round(fps))
    s, ff = divmod(whole, per_s)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h % 24:02d}:{m:02d}:{s:02d}:{ff:02d}.{int(round(frac * 1000)) % 1000:03d}"


def _guess_rate(frame_fields: list[int]) -> float:
    """The capture rate from the largest FF field seen (Live Link Face records at 60 or 30)."""
    top = max(frame_fields, default=0)
    return next((r for r in COMMON_RATES if r > top), float(top + 1))


def read_live_link_csv(source: str | Path | io.TextIOBase, fps: float | None = None) -> Take:
    """Parse a Live Link Face CSV. ``fps``: the capture rate, guessed from the timecodes if None.

    Raises ValueError naming the row and column of anything unreadable (missing columns, text or
    NaN where a number belongs, timecodes that go backwards)."""
    text = source.read() if hasattr(source, "read") else Path(source).read_text(encoding="utf-8-sig")
    rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    if not rows:
        raise ValueError("the CSV file is empty")
    header = [c.strip() for c in rows[0]]
    lower = {c.lower(): i for i, c in enumerate(header)}
    if "timecode" not in lower:
        raise ValueError(f"no 'Timecode' column: this is not a Live Link Face CSV (header: {header[:4]})")
    body = rows[1:]
    if not body:
        raise ValueError("the CSV has a header but no frames")
    for k, row in enumerate(body):
        if len(row) != len(header):
            raise ValueError(f"row {k + 2} has {len(row)} fields, the header has {len(header)}")
    codes = [row[lower["timecode"]] for row in body]
    if fps is None:
        fields = [_TIMECODE.match(c) for c in codes]
        fps = _guess_rate([int(m.group(4)) for m in fields if m and m.group(4) is not None])
    times = np.array([parse_timecode(c, fps) for c in codes])
    times = np.where(np.diff(times, prepend=times[0]) < -43200, times + 86400, times)  # midnight
    if np.any(np.diff(times) <= 0):
        k = int(np.flatnonzero(np.diff(times) <= 0)[0])
        raise ValueError(f"timecodes must increase: row {k + 3} ({codes[k + 1]}) is not after "
                         f"row {k + 2} ({codes[k]})")

    def column(index: int) -> np.ndarray:
        try:
            values = np.array([float(row[index]) for row in body])
        except ValueError as exc:
            raise ValueError(f"column '{header[index]}': {exc}") from None
        _check_finite(f"column '{header[index]}'", values)
        return values

    take = Take(times_s=times - times[0], source_fps=float(fps))
    arkit = {n.lower(): n for n in ARKIT_NAMES}
    for i, name in enumerate(header):
        key = name.lower()
        if key in ("timecode", "blendshapecount"):
            continue
        if key in arkit:
            take.expressions[arkit[key]] = column(i).astype(np.float32)
        elif key not in {h.lower() for h in LIVE_LINK_HEAD}:
            take.ignored.append(name)
    head = [lower.get(n.lower()) for n in LIVE_LINK_HEAD]
    if all(i is not None for i in head):
        yaw, pitch, roll = (column(i) for i in head)
        take.pose["head"] = head_angles_to_rotvec(yaw, pitch, roll).astype(np.float32)
    else:
        take.ignored += [LIVE_LINK_HEAD[k] for k, i in enumerate(head) if i is not None]
    return take


def write_live_link_csv(times_s: np.ndarray, expressions: dict[str, np.ndarray],
                        head_rotvec: np.ndarray | None = None, fps: float = 60.0,
                        start_s: float = 0.0) -> str:
    """The Live Link Face layout (all 61 value columns; absent ones are 0) as CSV text.

    times_s (T,) seconds; expressions: ARKit name -> (T,); head_rotvec (T, 3) canonical or None."""
    times_s = np.asarray(times_s, dtype=np.float64)
    n = len(times_s)
    unknown = sorted(set(expressions) - set(ARKIT_NAMES))
    if unknown:
        raise ValueError(f"not ARKit names: {unknown}")
    angles = rotvec_to_head_angles(head_rotvec) if head_rotvec is not None else (np.zeros(n),) * 3
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LIVE_LINK_COLUMNS)
    for t in range(n):
        values = [float(expressions[k][t]) if k in expressions else 0.0 for k in ARKIT_NAMES]
        values += [float(a[t]) for a in angles] + [0.0] * len(LIVE_LINK_EYES)
        writer.writerow([format_timecode(start_s + times_s[t], fps), len(LIVE_LINK_COLUMNS) - 2,
                         *(f"{v:.6g}" for v in values)])
    return out.getvalue()


# --- SMPL / AMASS .npz ---------------------------------------------------------------------------

def read_amass_npz(source: str | Path | BinaryIO) -> Take:
    """An AMASS / SMPL(-H/-X) motion: ``poses`` (T, 72 or 156 or more) axis-angle in SMPL's joint
    order, ``mocap_framerate`` (AMASS) or ``mocap_frame_rate`` (AMASS SMPL-X) frames per second.

    Joints come from ``shared.controls.SMPL_INDEX``. The root is taken relative to the first
    frame, in the body's own frame: AMASS roots also carry the capture world's Z-up turn and the
    walking heading, which would lay a bust on its back; relative to frame 0 the bust starts
    upright and keeps every later turn of the torso."""
    with np.load(source, allow_pickle=False) as data:
        if "poses" not in data:
            raise ValueError(f"no 'poses' array in the .npz (it has {sorted(data.files)})")
        poses = np.asarray(data["poses"], dtype=np.float64)
        rate_key = next((k for k in ("mocap_framerate", "mocap_frame_rate") if k in data), None)
        if rate_key is None:
            raise ValueError("no 'mocap_framerate' or 'mocap_frame_rate' in the .npz")
        fps = float(np.asarray(data[rate_key]).reshape(-1)[0])
        others = [k for k in data.files if k not in ("poses", rate_key)]
    if poses.ndim != 2 or poses.shape[1] < 72 or poses.shape[1] % 3:
        raise ValueError(f"'poses' is {poses.shape}, expected (T, 72) or (T, 156)")
    if len(poses) == 0:
        raise ValueError("'poses' has no frames")
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"frame rate {fps} is not a positive number")
    _check_finite("'poses'", poses)
    joints = poses.reshape(len(poses), -1, 3)
    take = Take(times_s=np.arange(len(poses)) / fps, source_fps=fps, ignored=others)
    for name in POSE_JOINTS:
        rot = joints[:, SMPL_INDEX[name]]
        if name == "root":
            first = rotvec_to_matrix(rot[0])
            rot = matrix_to_rotvec(first.T @ rotvec_to_matrix(rot))
        take.pose[name] = smpl_to_canonical(rot).astype(np.float32)
    return take


def write_amass_npz(target: str | Path | BinaryIO, poses_smpl: np.ndarray, fps: float,
                    rate_key: str = "mocap_framerate") -> None:
    """poses_smpl (T, 72 or 156) in SMPL's frame, as AMASS stores them (with zero betas/trans)."""
    poses_smpl = np.asarray(poses_smpl, dtype=np.float64)
    np.savez(target, poses=poses_smpl, **{rate_key: np.float64(fps)},
             trans=np.zeros((len(poses_smpl), 3)), betas=np.zeros(16), gender=np.str_("neutral"))


# --- PC2 point cache ------------------------------------------------------------------------------

def write_pc2(target: str | Path | BinaryIO, verts_m: np.ndarray, start_frame: float = 0.0,
              sample_rate: float = 1.0) -> None:
    """verts_m (T, V, 3) -> a PC2 file (one sample per frame at ``sample_rate`` 1)."""
    verts = np.ascontiguousarray(verts_m, dtype="<f4")
    if verts.ndim != 3 or verts.shape[2] != 3 or verts.shape[0] == 0:
        raise ValueError(f"verts_m is {verts.shape}, expected (T>0, V, 3)")
    header = PC2_HEADER.pack(PC2_MAGIC, 1, verts.shape[1], start_frame, sample_rate, verts.shape[0])
    if hasattr(target, "write"):
        target.write(header)
        target.write(verts.tobytes())
        return
    with open(target, "wb") as f:
        f.write(header)
        verts.tofile(f)


def read_pc2(source: str | Path) -> tuple[np.ndarray, float, float]:
    """A PC2 file -> (verts (T, V, 3) float32, start_frame, sample_rate)."""
    with open(source, "rb") as f:
        raw = f.read(PC2_HEADER.size)
        if len(raw) < PC2_HEADER.size:
            raise ValueError(f"{source}: too short for a PC2 header")
        magic, version, points, start, rate, samples = PC2_HEADER.unpack(raw)
        if magic != PC2_MAGIC or version != 1:
            raise ValueError(f"{source}: not a PC2 version 1 file")
        verts = np.fromfile(f, dtype="<f4", count=samples * points * 3)
    if verts.size != samples * points * 3:
        raise ValueError(f"{source}: holds {verts.size // 3} points, header says {samples} x {points}")
    return verts.reshape(samples, points, 3), float(start), float(rate)
