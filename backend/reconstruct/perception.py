"""Perception: face box, 478 face-mesh landmarks and a person mask from mediapipe's bundled models.

mediapipe 0.10.21 ships the models inside its wheel (legacy `mp.solutions` API), so nothing is
downloaded. Its graphs are not thread-safe, so one `Perceiver` owns them behind a lock.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from backend.errors import NoFaceError
from backend.reconstruct.person_mask import subject_mask


@dataclass
class PerceptionConfig:
    min_detection_confidence: float = 0.5
    # Faces are re-cropped around the detected box before the mesh model runs, so small faces in
    # large frames (paintings, full-body shots) still get a mesh. The margin is in box widths.
    crop_margin: float = 0.9


@dataclass
class Perception:
    """What the models saw in one portrait.

    landmarks_px: (478, 3) float64: column, row, depth (pixels; mediapipe's relative depth scaled
                  like the columns, smaller = nearer the camera).
    face_box_px:  (4,) float64: x0, y0, x1, y1 of the chosen (largest) face.
    person_mask:  (H, W) float32 in [0, 1], the selfie-segmentation probability of "person", kept
                  on the subject only (the part of the mask connected to the chosen face).
    """

    landmarks_px: np.ndarray
    face_box_px: np.ndarray
    person_mask: np.ndarray
    faces_found: int
    warnings: list[str] = field(default_factory=list)


class Perceiver:
    """Holds mediapipe's graphs; create once per process, call from any thread."""

    def __init__(self, config: PerceptionConfig | None = None):
        import mediapipe as mp  # heavy import: only when perception is really needed

        self.config = config or PerceptionConfig()
        solutions = mp.solutions
        self._lock = threading.Lock()
        self._detector = solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=self.config.min_detection_confidence)
        self._mesh = solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=True,
            min_detection_confidence=self.config.min_detection_confidence)
        self._segmenter = solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)

    def __call__(self, image_rgb: np.ndarray) -> Perception:
        """image_rgb: (H, W, 3) uint8 -> Perception. Raises NoFaceError."""
        image_rgb = np.ascontiguousarray(image_rgb)
        with self._lock:
            boxes = self._detect_faces(image_rgb)
            warnings = []
            if not boxes:
                # The detector misses some stylised faces the mesh model still finds on the whole frame.
                landmarks = self._mesh_landmarks(image_rgb, offset=(0, 0))
                if landmarks is None:
                    raise NoFaceError("no face was found in the image")
                box = np.array([*landmarks[:, :2].min(0), *landmarks[:, :2].max(0)])
                boxes = [box]
            else:
                box = max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
                if len(boxes) > 1:
                    warnings.append(f"{len(boxes)} faces found; the largest one was used")
                landmarks = self._landmarks_in_box(image_rgb, box)
                if landmarks is None:
                    raise NoFaceError("a face was detected but its landmarks could not be found")
            mask = self._segmenter.process(image_rgb).segmentation_mask
        return Perception(landmarks_px=landmarks, face_box_px=np.asarray(box, float),
                          person_mask=subject_mask(np.asarray(mask, np.float32), landmarks),
                          faces_found=len(boxes),
                          warnings=warnings)

    def _detect_faces(self, image_rgb: np.ndarray) -> list[np.ndarray]:
        h, w = image_rgb.shape[:2]
        found = self._detector.process(image_rgb).detections or []
        boxes = []
        for det in found:
            rel = det.location_data.relative_bounding_box
            x0, y0 = rel.xmin * w, rel.ymin * h
            boxes.append(np.array([x0, y0, x0 + rel.width * w, y0 + rel.height * h]))
        return boxes

    def _landmarks_in_box(self, image_rgb: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        h, w = image_rgb.shape[:2]
        size = max(box[2] - box[0], box[3] - box[1]) * (1 + 2 * self.config.crop_margin)
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        x0, y0 = int(max(0, cx - size / 2)), int(max(0, cy - size / 2))
        x1, y1 = int(min(w, cx + size / 2)), int(min(h, cy + size / 2))
        crop = np.ascontiguousarray(image_rgb[y0:y1, x0:x1])
        landmarks = self._mesh_landmarks(crop, offset=(x0, y0))
        if landmarks is None:
            landmarks = self._mesh_landmarks(image_rgb, offset=(0, 0))
        return landmarks

    def _mesh_landmarks(self, image_rgb: np.ndarray, offset: tuple[int, int]) -> np.ndarray | None:
        h, w = image_rgb.shape[:2]
        result = self._mesh.process(image_rgb)
        if not result.multi_face_landmarks:
            return None
        pts = np.array([[p.x, p.y, p.z] for p in result.multi_face_landmarks[0].landmark])
        # mediapipe normalises x by width, y by height and scales z like x.
        return np.stack([pts[:, 0] * w + offset[0], pts[:, 1] * h + offset[1], pts[:, 2] * w], axis=1)


_shared: Perceiver | None = None
_shared_lock = threading.Lock()


def shared_perceiver() -> Perceiver:
    """One Perceiver per process: building mediapipe's graphs costs ~0.5 s."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Perceiver()
        return _shared
