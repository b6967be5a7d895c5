"""Reading a reconstruction's baked texture back (the appearance and ear tests)."""
from __future__ import annotations

import numpy as np


def texture_colour(rec, face_ids: np.ndarray) -> np.ndarray:
    """(3,) median texture colour in [0, 1] at the UV centroids of the given triangles."""
    size = rec.texture.shape[0]
    uv = rec.loop_uvs[face_ids].mean(1)
    cols = np.clip((uv[:, 0] * size).astype(int), 0, size - 1)
    rows = np.clip(((1.0 - uv[:, 1]) * size).astype(int), 0, size - 1)
    return np.median(rec.texture[rows, cols], axis=0) / 255.0
