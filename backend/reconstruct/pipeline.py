"""Portrait -> textured head, top to bottom: perceive, lift, triplane, mesh, texture.

Each stage is a function of plain arrays that can be called alone; this module only strings them
together, times them and reports progress. Everything is deterministic for a given image.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch

from backend.errors import CancelledError
from backend.reconstruct.appearance import AppearanceConfig, build_appearance, decode_colour
from backend.reconstruct.camera import CameraConfig, estimate_camera
from backend.reconstruct.head_prior import CHIN, HeadPrior, PriorConfig
from backend.reconstruct.meshing import MeshingConfig, extract_mesh
from backend.reconstruct.perception import shared_perceiver
from backend.reconstruct.result import Reconstruction
from backend.reconstruct.silhouette import CanvasConfig, build_canvas
from backend.reconstruct.texture import bake_texture
from backend.reconstruct.triplane import Triplane, TriplaneConfig, build_geometry
from backend.reconstruct.uv_atlas import build_atlas
from backend.rig import build_rig
from backend.rig.mouth import MouthConfig, MouthError, build_mouth, recolour_interior

Progress = Callable[[str, float], None]

# Stage names and their share of a typical run, so the progress bar moves evenly.
STAGES = (("perception", 0.05), ("lift", 0.05), ("triplane", 0.25), ("meshing", 0.18), ("mouth", 0.02),
          ("appearance", 0.15), ("texture", 0.25), ("rig", 0.05))


@dataclass
class ReconstructConfig:
    camera: CameraConfig = field(default_factory=CameraConfig)
    canvas: CanvasConfig = field(default_factory=CanvasConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    triplane: TriplaneConfig = field(default_factory=TriplaneConfig)
    meshing: MeshingConfig = field(default_factory=MeshingConfig)  # its max_triangles bounds the final head
    mouth: MouthConfig = field(default_factory=MouthConfig)
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)
    texture_size: int = 2048
    atlas_padding_px: int = 4


class _Stages:
    """Times each stage, reports progress at its start and checks for cancellation between stages."""

    def __init__(self, progress: Progress | None, should_cancel: Callable[[], bool] | None):
        self.progress = progress or (lambda stage, fraction: None)
        self.should_cancel = should_cancel or (lambda: False)
        self.timings: dict[str, float] = {}
        self._done = 0.0

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.should_cancel():
            raise CancelledError(f"cancelled before {name}")
        self.progress(name, self._done)
        start = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - start
        self._done += dict(STAGES)[name]


@torch.no_grad()
def reconstruct(image_rgb: np.ndarray, config: ReconstructConfig | None = None, name: str = "head",
                progress: Progress | None = None,
                should_cancel: Callable[[], bool] | None = None) -> Reconstruction:
    """image_rgb (H, W, 3) uint8 -> Reconstruction in the canonical head frame.

    Raises NoFaceError when no face is found, CancelledError when should_cancel() turns true.
    """
    config = config or ReconstructConfig()
    stages = _Stages(progress, should_cancel)
    image_rgb = np.ascontiguousarray(image_rgb[..., :3], dtype=np.uint8)

    with stages.stage("perception"):
        seen = shared_perceiver()(image_rgb)
    with stages.stage("lift"):
        camera, landmarks_m = estimate_camera(seen.landmarks_px, (image_rgb.shape[1], image_rgb.shape[0]),
                                              config.camera)
        canvas = build_canvas(seen.person_mask, camera, landmarks_m[CHIN], config.canvas)
        prior = HeadPrior(landmarks_m, camera, canvas, config.prior, image_rgb)
    with stages.stage("triplane"):
        tri: Triplane = build_geometry(prior, config.triplane)
    with stages.stage("meshing"):
        # The mouth's parts are added after meshing: their share of the budget is held back here.
        verts_m, faces = extract_mesh(tri, config.meshing, reserve_triangles=config.mouth.max_triangles)
    warnings = list(seen.warnings)
    with stages.stage("mouth"):
        # The lips are cut apart and a mouth interior added; every later stage sees that mesh.
        try:
            mouth = build_mouth(verts_m, faces, landmarks_m, config.mouth)
            verts_m, faces = mouth.verts_m, mouth.faces
        except MouthError as exc:
            mouth = None
            warnings.append(f"no mouth interior: {exc}")
    with stages.stage("appearance"):
        build_appearance(tri, verts_m, faces, image_rgb, seen.person_mask, camera, landmarks_m,
                         config.appearance, prior.ears)
    with stages.stage("texture"):
        loop_uvs = build_atlas(verts_m, faces, config.texture_size, config.atlas_padding_px)
        if mouth is None:
            colour = lambda p, n: decode_colour(tri, p, n)  # noqa: E731
        else:  # the shut lips colour as if uncut
            colour = lambda p, n: decode_colour(tri, p, mouth.uncut_normals(p, n))  # noqa: E731
        texture = bake_texture(verts_m, faces, loop_uvs, config.texture_size, colour)
        if mouth is not None:
            texture = recolour_interior(texture, faces, loop_uvs, mouth)
    with stages.stage("rig"):
        rig = build_rig(verts_m, faces, landmarks_m, prior, mouth)
    stages.progress("done", 1.0)
    return Reconstruction(name=name, verts_m=verts_m, faces=faces, loop_uvs=loop_uvs, texture=texture,
                          landmarks_m=landmarks_m, camera=camera, timings_s=stages.timings,
                          warnings=warnings, rig=rig)
