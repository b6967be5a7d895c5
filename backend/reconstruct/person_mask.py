"""Which pixels of the segmenter's person mask belong to the subject: the person whose face was
chosen, not a second person beside them nor a blob of backdrop the segmenter took for a body.

Everything after perception trusts this mask: the silhouette shapes hair and shoulders from it,
the appearance stage paints the head only from pixels inside it, and the judge measures the
input view's silhouette against it.
"""
from __future__ import annotations

import cv2
import numpy as np
import scipy.ndimage as ndi


def subject_mask(seg_prob: np.ndarray, face_px: np.ndarray, threshold: float = 0.5,
                 bridge_face_widths: float = 0.1) -> np.ndarray:
    """seg_prob: (H, W) float32 person probability; face_px: (N, 2+) face landmark pixels
    (column, row, ...) -> (H, W) float32: seg_prob on the part connected to the face, 0 elsewhere.

    Gaps narrower than bridge_face_widths face widths still connect (a neck the segmenter thinned
    to nothing must not cut the head off its shoulders); people standing apart do not.
    """
    person = seg_prob > threshold
    face_width = float(np.ptp(face_px[:, 0]))
    subject = keep_component_at(person, face_px[:, :2].mean(0), bridge_px=bridge_face_widths * face_width)
    if np.array_equal(subject, person):
        return seg_prob.astype(np.float32)
    # The soft fringe round the subject stays: later stages interpolate the probability and
    # threshold it, so zeroing the fringe would pull the subject's outline in.
    r = int(np.ceil(max(seg_prob.shape) / 128))  # two of the segmenter's 256-px cells
    near = cv2.dilate(subject.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0
    return np.where(near & (subject | ~person), seg_prob, 0.0).astype(np.float32)


def keep_component_at(mask: np.ndarray, point_px: np.ndarray, bridge_px: float = 0.0) -> np.ndarray:
    """mask: (H, W) bool; point_px: (2,) column, row -> the connected part of mask at the point, or
    the part nearest to it when the point lies outside the mask (all False for an empty mask).
    Parts up to bridge_px apart count as connected."""
    r = int(np.ceil(bridge_px / 2))
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0 if r else mask
    labels, n = ndi.label(grown)
    labels = labels * mask
    if n <= 1:
        return mask
    col = int(np.clip(round(float(point_px[0])), 0, mask.shape[1] - 1))
    row = int(np.clip(round(float(point_px[1])), 0, mask.shape[0] - 1))
    label = labels[row, col]
    if label == 0:
        _, (rows, cols) = ndi.distance_transform_edt(labels == 0, return_indices=True)
        label = labels[rows[row, col], cols[row, col]]
    return labels == label
