"""Drive from Video: key the head's sliders from a video of a face (or a folder of frames).

The file's bytes go to the backend as a ``drive`` request (a folder is zipped first, frames only),
a polled job like Bake's; the backend tracks the face, solves every frame for the ARKit weights
and neck/head rotation and answers once with the whole take. Only then are keyframes written:
resampled from the video's rate to the scene's (anim_import.apply_take, the same path as Import
Take), from the scene's start frame, replacing the curves of the controls it carries.

Cancelled or failed jobs write NOTHING: no keyframe is added before the complete answer is in
hand, so the scene stays exactly as it was (all-or-nothing, "all removed" in the issue's terms).
Frames where no face was found are bridged by the backend and listed in the report, as is a take
that could not drive the shoulders (root and collars are keyed only when the backend sends them).
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import bpy
import numpy as np
from bpy.props import BoolProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from . import anim_import, anim_live
from .anim_ops import HeadJobOperator
from .job import BackendJob
from .job_operator import connection
from .shared import animdata, messages

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm")
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
# The backend's default max_message_bytes is 64 MiB; the request must fit it whole.
MAX_UPLOAD_BYTES = 63 * 1024 * 1024
DRIVE_TIMEOUT_S = 1800.0  # a deadline for a lost job, not a speed expectation


def read_source(path: str | Path) -> tuple[bytes, str]:
    """A video file, or a folder of frames zipped in name order -> (bytes, name for the backend).
    ValueError for anything that cannot be sent."""
    path = Path(path)
    if path.is_dir():
        frames = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
        if not frames:
            raise ValueError(f"{path} holds no image frames ({', '.join(FRAME_SUFFIXES)})")
        if sum(p.stat().st_size for p in frames) > MAX_UPLOAD_BYTES:
            raise ValueError(f"the frames in {path.name} exceed {MAX_UPLOAD_BYTES >> 20} MiB; "
                             "send a shorter take or use `python -m backend.cli drive`")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for frame in frames:
                archive.write(frame, frame.name)
        return buffer.getvalue(), f"{path.name}.zip"
    if not path.is_file():
        raise ValueError(f"not found: {path}")
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"{path.name}: expected a video ({', '.join(VIDEO_SUFFIXES)}) or a folder "
                         "of frames")
    if path.stat().st_size > MAX_UPLOAD_BYTES:
        raise ValueError(f"{path.name} is over {MAX_UPLOAD_BYTES >> 20} MiB, more than the backend "
                         "accepts in one request; trim it or use `python -m backend.cli drive`")
    return path.read_bytes(), path.name


def take_of(result: messages.DriveResult) -> animdata.Take:
    """The backend's answer as a Take at the video's rate (resampled on import)."""
    times = np.arange(len(result.weights)) / float(result.fps)
    return animdata.Take(
        times_s=times, source_fps=float(result.fps),
        expressions={n: np.array(result.weights[:, e], np.float32)
                     for e, n in enumerate(result.expression_names)},
        pose={j: np.array(result.poses[:, k], np.float32) for k, j in enumerate(result.joint_names)})


def missing_text(missing: list[list[int]], fps: float, scene_fps: float, start: int) -> str:
    """Video frame ranges without a face, as scene frames."""
    spans = []
    for a, b in missing:
        fa, fb = (start + round(x / fps * scene_fps) for x in (a, b))
        spans.append(f"{fa}" if fa == fb else f"{fa}-{fb}")
    lost = sum(b - a + 1 for a, b in missing)
    return f"no face in {lost} video frame(s) (scene frames {', '.join(spans)}), bridged"


class DriveJob(BackendJob):
    """A drive request; when done without error, ``result`` is the DriveResult."""

    KIND = messages.Drive.TYPE

    def __init__(self, address: str, video: bytes, name: str, frames_fps: float = 0.0, *,
                 connect_timeout_s: float = 3.0, curve=None) -> None:
        self._message = messages.Drive(video=video, name=name, frames_fps=float(frames_fps))
        self.result: messages.DriveResult | None = None
        super().__init__(address, connect_timeout_s=connect_timeout_s, curve=curve)

    def _request(self) -> messages.Message:
        return self._message

    def _request_timeout_s(self) -> float:
        return DRIVE_TIMEOUT_S

    def _on_reply(self, event: messages.Message) -> None:
        if isinstance(event, messages.Progress):
            self.stage = {"track": "Tracking", "solve": "Solving"}.get(event.stage, event.stage)
            self.fraction = event.fraction
        elif isinstance(event, messages.DriveResult):
            self.result = event
            self.stage, self.fraction, self.done = "Done", 1.0, True


class HEADLIFT_OT_drive_from_video(HeadJobOperator, bpy.types.Operator, ImportHelper):
    """Key the head's expression and neck/head sliders from a video of a face (.mp4/.mov) or a
    folder of frames, resampled to the scene frame rate. Nothing is keyed unless the whole take
    arrives (cancel or failure leaves the scene as it was)"""

    bl_idname = "headlift.drive_from_video"
    bl_label = "Drive from Video"
    bl_options = {'REGISTER', 'UNDO'}

    filter_glob: StringProperty(default=";".join(f"*{s}" for s in VIDEO_SUFFIXES), options={'HIDDEN'})
    use_folder: BoolProperty(name="Folder of Frames", default=False,
                             description="Use the folder shown in the browser as a sequence of "
                                         "frames at the scene frame rate")

    def _start(self, context, obj, prefs) -> DriveJob:
        source = Path(self.filepath)
        if self.use_folder or source.is_dir() or not source.name:
            source = source if source.is_dir() else source.parent
        self._source_name = source.name
        scene_fps = context.scene.render.fps / context.scene.render.fps_base
        video, name = read_source(source)
        return DriveJob(prefs.backend_address, video, name,
                        frames_fps=scene_fps if name.endswith(".zip") else 0.0,
                        **connection(prefs))

    def _finish(self, context, obj, job: DriveJob) -> str:
        scene, result = context.scene, job.result
        report = anim_import.apply_take(scene, obj, take_of(result))
        anim_live.control_changed(obj)
        text = f"{self._source_name}: {report.summary()}"
        if result.missing:
            scene_fps = scene.render.fps / scene.render.fps_base
            text += "; " + missing_text(result.missing, result.fps, scene_fps, report.frames[0])
        text += "".join(f"; {w}" for w in result.warnings)
        if result.missing or result.warnings:
            self.report({'WARNING'}, text)
        return text


classes = (HEADLIFT_OT_drive_from_video,)
