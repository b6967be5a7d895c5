"""Bake and rig requests as polled jobs (the same driving as ReconstructJob, see job.py).

A bake streams: every chunk goes straight into a point-cache file ``<name>.pc2.part`` (the PC2
header is written first, the frame count is known), so memory stays flat for long takes. The file
only loses its ``.part`` suffix when ``bake_done`` confirms that exactly the frames asked for
arrived, in order (``shared.client.BakeCollector`` checks that); any failure deletes it, so a
partial bake can never be attached.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .job import BackendJob
from .shared import animdata, messages
from .shared.client import BakeCollector, make_bake
from .shared.errors import ErrorCode, ProtocolError
from .shared.liveness import CurveKeys

BAKE_BASE_TIMEOUT_S = 600.0  # a deadline for a lost job, not a speed expectation
BAKE_PER_FRAME_S = 1.0
RIG_TIMEOUT_S = 120.0
PART_SUFFIX = ".part"


class Pc2Stream:
    """A PC2 file written chunk by chunk: header at open, frames appended in order."""

    def __init__(self, path: Path, frames: int, points: int, start_frame: float) -> None:
        self.path, self.frames, self.points = Path(path), int(frames), int(points)
        self.written = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "wb")
        self._file.write(animdata.PC2_HEADER.pack(animdata.PC2_MAGIC, 1, self.points,
                                                  float(start_frame), 1.0, self.frames))

    def append(self, offset: int, verts_m: np.ndarray) -> None:
        """verts_m (t, V, 3): frames offset..offset+t-1 (must follow what was written)."""
        if offset != self.written or verts_m.shape[1:] != (self.points, 3):
            raise ProtocolError(ErrorCode.INTERNAL,
                                f"bake frames {offset}..+{len(verts_m)} with {verts_m.shape[1]} "
                                f"vertices do not fit the cache ({self.written} written, "
                                f"{self.points} vertices)")
        self._file.write(np.ascontiguousarray(verts_m, dtype="<f4").tobytes())
        self.written += len(verts_m)

    def finish(self) -> Path:
        """Close and drop the ``.part`` suffix; returns the final path."""
        self._file.close()
        final = self.path.with_name(self.path.name.removesuffix(PART_SUFFIX))
        os.replace(self.path, final)
        self.path = final
        return final

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class BakeJob(BackendJob):
    """Per-frame geometry for T frames of the head ``head_id`` (V vertices), streamed to
    ``cache_path`` + ".part".

    expressions: name -> (T,) weights; pose: joint -> (T, 3) canonical axis-angle radians.
    When done without error, ``cache_path`` holds a complete PC2 (T frames from frame_start).
    """

    KIND = messages.Bake.TYPE

    def __init__(self, address: str, head_id: str, expressions: dict[str, np.ndarray],
                 pose: dict[str, np.ndarray], frame_start: int, vertex_count: int,
                 cache_path: Path, *, connect_timeout_s: float = 3.0,
                 curve: CurveKeys | None = None) -> None:
        self._message = make_bake(head_id, expressions, pose, frame_start=int(frame_start))
        self.frames = self._message.frames
        self.frame_start = int(frame_start)
        self.cache_path: Path | None = None
        self.timings_s: dict[str, float] = {}
        self._stream = Pc2Stream(Path(str(cache_path) + PART_SUFFIX), self.frames, vertex_count,
                                 self.frame_start)
        self._collector = BakeCollector(self._message, on_chunk=self._stream.append, keep=False)
        try:
            super().__init__(address, connect_timeout_s=connect_timeout_s, curve=curve)
        except BaseException:
            self._stream.discard()
            raise

    def _request(self) -> messages.Message:
        return self._message

    def _request_timeout_s(self) -> float:
        return BAKE_BASE_TIMEOUT_S + BAKE_PER_FRAME_S * self.frames

    def _on_reply(self, event: messages.Message) -> None:
        if isinstance(event, messages.Progress):
            return  # chunks say how far it is
        if self._collector.add(event):  # raises ProtocolError on a bad chunk: poll() fails the job
            self.cache_path = self._stream.finish()
            self.timings_s = dict(self._collector.timings_s)
            self.stage, self.fraction, self.done = "Done", 1.0, True
        else:
            self.stage = f"Frame {self._collector.received}/{self.frames}"
            self.fraction = self._collector.fraction

    def _fail(self, code: str, message: str) -> None:
        if self.cache_path is None:
            self._stream.discard()  # a partial bake is never kept
        super()._fail(code, message)


class RigJob(BackendJob):
    """The head's rig plus its rest-pose vertices (an ``animate`` with no controls, so a head the
    live sliders left posed still exports from rest). When done: ``rig`` (RigData), ``rest_m``."""

    KIND = messages.Rig.TYPE

    def __init__(self, address: str, head_id: str, *, connect_timeout_s: float = 3.0,
                 curve: CurveKeys | None = None) -> None:
        self.head_id = head_id
        self.rig: messages.RigData | None = None
        self.rest_m: np.ndarray | None = None
        super().__init__(address, connect_timeout_s=connect_timeout_s, curve=curve)

    def _request(self) -> messages.Message:
        return messages.Rig(head_id=self.head_id)

    def _request_timeout_s(self) -> float:
        return RIG_TIMEOUT_S

    def _on_reply(self, event: messages.Message) -> None:
        if isinstance(event, messages.RigData):
            self.rig = event
            self.stage, self.fraction = "Rest pose", 0.5
            # The same request slot: the base class routes this answer back here.
            self._request_id = self._client.submit(messages.Animate(head_id=self.head_id),
                                                   timeout_s=RIG_TIMEOUT_S)
        elif isinstance(event, messages.Frame):
            self.rest_m = np.array(event.verts_m, dtype=np.float32)
            self.stage, self.fraction, self.done = "Done", 1.0, True
