"""The head prior of a real portrait, built the way the pipeline builds it (shared by the tests of
the prior's parts)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from backend.reconstruct.camera import estimate_camera
from backend.reconstruct.head_prior import CHIN, HeadPrior
from backend.reconstruct.imagefile import decode_image
from backend.reconstruct.perception import shared_perceiver
from backend.reconstruct.pipeline import ReconstructConfig
from backend.reconstruct.silhouette import build_canvas


def prior_of(portraits_dir: Path, name: str, use_photo: bool = True) -> tuple[HeadPrior, np.ndarray]:
    """(the prior, its (478, 3) canonical landmarks); use_photo False: both ears, whatever the
    photo shows there."""
    image = decode_image((portraits_dir / name).read_bytes())
    seen = shared_perceiver()(image)
    config = ReconstructConfig()
    camera, landmarks_m = estimate_camera(seen.landmarks_px, (image.shape[1], image.shape[0]), config.camera)
    canvas = build_canvas(seen.person_mask, camera, landmarks_m[CHIN], config.canvas)
    return HeadPrior(landmarks_m, camera, canvas, config.prior, image if use_photo else None), landmarks_m
