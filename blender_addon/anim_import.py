"""Keyframes on the head's controls from a take (Live Link Face CSV, AMASS .npz).

The file is read, checked and resampled to the scene's frame rate before Blender is touched, so a
bad file changes nothing. The take then replaces the F-curves of the controls it carries (other
controls keep their animation); expressions the head does not support are listed, not keyed.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np

from . import head_state
from .anim_sample import ensure_fcurve
from .shared import animdata


@dataclass
class ImportReport:
    frames: tuple[int, int]  # first and last scene frame keyed
    keyed: list[str] = field(default_factory=list)  # control data paths (joints once each)
    unsupported: list[str] = field(default_factory=list)  # ARKit names this head lacks
    ignored: list[str] = field(default_factory=list)  # file columns / fields no control takes

    def summary(self) -> str:
        text = (f"keyed {len(self.keyed)} controls on frames {self.frames[0]}-{self.frames[1]}")
        if self.unsupported:
            text += f"; this head has no {', '.join(self.unsupported)}"
        if self.ignored:
            text += f"; ignored {', '.join(self.ignored)}"
        return text


def read_take(path: str | Path) -> animdata.Take:
    """Pick the reader by extension; ValueError for anything unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"file not found: {path}")
    if path.suffix.lower() == ".csv":
        return animdata.read_live_link_csv(path)
    if path.suffix.lower() == ".npz":
        try:
            return animdata.read_amass_npz(path)
        except (OSError, EOFError, zipfile.BadZipFile) as exc:  # not a zip / truncated
            raise ValueError(f"{path.name} is not a readable .npz: {exc}") from None
    raise ValueError(f"{path.name}: expected a Live Link Face .csv or an AMASS/SMPL .npz")


def apply_take(scene, obj, take: animdata.Take, frame_start: int | None = None,
               extend_range: bool = True) -> ImportReport:
    """Key ``take`` on ``obj``'s controls from ``frame_start`` (default: the scene's start)."""
    fps = scene.render.fps / scene.render.fps_base
    start = scene.frame_start if frame_start is None else int(frame_start)
    frames, sampled = take.resample(fps, start)
    supported = set(head_state.supported_expressions(obj))
    joints = set(head_state.supported_joints(obj))
    report = ImportReport(frames=(int(frames[0]), int(frames[-1])), ignored=list(take.ignored))
    report.unsupported = [n for n in sampled.expressions if n not in supported]
    report.ignored += [j for j in sampled.pose if j not in joints]
    curves: list[tuple[str, int, np.ndarray]] = []
    for name, values in sampled.expressions.items():
        if name in supported:
            curves.append((head_state.control_path(name), 0, values))
    for joint, values in sampled.pose.items():
        if joint in joints:
            curves += [(head_state.control_path(joint), i, values[:, i]) for i in range(3)]
    if not curves:
        raise ValueError("the file has no control this head supports"
                         + (f" (it has {', '.join(report.unsupported)})" if report.unsupported else ""))
    action = _action(obj)
    for path, index, values in curves:
        key_curve(action, obj, path, index, frames, values)
    report.keyed = sorted({p for p, _, _ in curves})
    if extend_range:
        scene.frame_start = min(scene.frame_start, report.frames[0])
        scene.frame_end = max(scene.frame_end, report.frames[1])
    return report


def _action(obj):
    ad = obj.animation_data_create()
    if ad.action is None:
        ad.action = bpy.data.actions.new(f"{obj.name} controls")
    return ad.action


def key_curve(action, obj, data_path: str, index: int, frames: np.ndarray, values: np.ndarray) -> None:
    """Replace the F-curve's keys with (frames[k], values[k]), linear between samples."""
    fcurve = ensure_fcurve(action, obj, data_path, index)
    fcurve.keyframe_points.clear()
    fcurve.keyframe_points.add(len(frames))
    co = np.empty((len(frames), 2), np.float32)
    co[:, 0], co[:, 1] = frames, values
    fcurve.keyframe_points.foreach_set("co", co.ravel())
    linear = bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items["LINEAR"].value
    fcurve.keyframe_points.foreach_set("interpolation", np.full(len(frames), linear, np.int32))
    fcurve.update()
