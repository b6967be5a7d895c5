"""The head-and-shoulders prior: a signed-distance-like field in the canonical frame.

Three parts, each from a different piece of evidence, united with a smooth minimum:
- face layer: the 468 face-mesh landmarks lifted into the canonical frame, as a depth map over the
  front (XZ) plane, continued past the face outline so it curves back into the skull;
- skull and hair: an egg-shaped skull sized from the face, scaled outward per image-plane direction
  until its silhouette reaches the person mask (hair volume, "inflated" around the skull);
- neck and shoulders: the part of the person mask below the chin, inflated (Poisson) around a plane
  through the neck, and cut flat at the bottom of the bust.
Negative inside, positive outside, metres; a level set for marching cubes, not an exact distance.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F
from scipy.interpolate import LinearNDInterpolator

from backend.reconstruct.ears import EarConfig, ear_surface_points, ears_sdf, fit_ears, settle_on_hair
from backend.reconstruct.photo_colours import PhotoColours
from backend.reconstruct.silhouette import Canvas
from backend.reconstruct.skull import FACE_SURFACE, Skull, SkullConfig, silhouette_radius
from backend.render.camera import OrthoCamera

CHIN = 152


@dataclass
class PriorConfig:
    skull: SkullConfig = field(default_factory=SkullConfig)
    max_hair_scale: float = 2.2
    face_thickness_m: float = 0.12
    face_map_res_m: float = 0.00125
    # Past the face outline the face surface keeps going, bending back with this radius.
    face_bend_radius_m: float = 0.012
    under_chin_bend_radius_m: float = 0.012
    neck_plane_y_m: float = 0.015
    neck_front_y_m: float = -0.07  # collars and scarves may stand forward of the neck, not the chin
    chest_front_y_m: float = -0.16
    neck_overlap_m: float = 0.03  # the neck reaches this far above the chin, into the head
    bust_bottom_z_m: float = -0.32
    shoulder_half_breadth_m: float = 0.23
    blend_m: float = 0.012
    face_blend_m: float = 0.005  # a wider fillet bulges into a welt round the face
    face_lip_m: float = 0.012
    # The egg fitted to the forehead outline bulges ahead of the eyes and cheeks (its widest point
    # is at eye height); it is cut this far behind the face surface inside the outline, the cut
    # fading out over face_cut_fade_m past it, so the face layer alone shapes eye sockets and nose.
    face_cut_behind_m: float = 0.003
    face_cut_fade_m: float = 0.015
    angle_bins: int = 360
    ears: EarConfig = field(default_factory=EarConfig)


def smooth_min(a: torch.Tensor, b: torch.Tensor, k: float) -> torch.Tensor:
    """Polynomial smooth minimum: a fillet of radius ~k where two surfaces meet."""
    h = torch.clamp(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def _sample_map(image: torch.Tensor, x: torch.Tensor, y: torch.Tensor, half_x: float, half_y: float,
                cx: float = 0.0, cy: float = 0.0) -> torch.Tensor:
    """Bilinear lookup of a (H, W) map covering [cx-half_x, cx+half_x] x [cy-half_y, cy+half_y]
    (columns along x, rows along y) at (N,) points; border values beyond the edge."""
    grid = torch.stack([(x - cx) / half_x, (y - cy) / half_y], dim=-1).view(1, 1, -1, 2)
    out = F.grid_sample(image[None, None], grid.to(image.dtype), mode="bilinear",
                        padding_mode="border", align_corners=False)
    return out.view(-1)


class HeadPrior:
    """Callable field: points_m (N, 3) float32 tensor -> (N,) float32, negative inside."""

    def __init__(self, landmarks_m: np.ndarray, camera: OrthoCamera, canvas: Canvas,
                 config: PriorConfig | None = None, image_rgb: np.ndarray | None = None):
        """image_rgb (H, W, 3) uint8, the photo: where it shows hair where an ear would be, that
        ear is left out (the hair covers it). Without it both ears are kept."""
        self.config = c = config or PriorConfig()
        self.R = torch.tensor(camera.R_cam_from_canonical, dtype=torch.float32)
        self.canvas = canvas
        self.canvas_sdf = torch.from_numpy(canvas.sdf_m)
        self.canvas_half_depth = torch.from_numpy(canvas.half_depth_m)
        # The skull, then the ears on it (ears.py owns every ear decision), then the hair grown
        # round both, then the ears settled onto that hair.
        self.skull = Skull.fit(landmarks_m, c.skull)
        self.centre = torch.tensor(c.skull.centre_m, dtype=torch.float32)
        self.chin_z = float(landmarks_m[CHIN, 2])
        self._build_face_layer(landmarks_m[FACE_SURFACE])
        R64 = self.R.numpy().astype(np.float64)
        self.r_skull = self.skull.silhouette_radius(R64, c.angle_bins)
        photo = PhotoColours(image_rgb, camera, canvas) if image_rgb is not None else None
        self.ears, self.skin_like = fit_ears(landmarks_m, self.skull, self.r_skull, canvas, photo, c.ears)
        self._build_hair_profile(landmarks_m)
        self.ears = settle_on_hair(self.ears, self.skull, self.skull_hair_sdf)

    # --- face -----------------------------------------------------------------------------
    def _build_face_layer(self, face_m: np.ndarray) -> None:
        c = self.config
        half = 0.16
        n = int(round(2 * half / c.face_map_res_m))
        ax = (np.arange(n) + 0.5) * c.face_map_res_m - half
        gx, gz = np.meshgrid(ax, ax)  # rows along z (ascending), columns along x
        depth = LinearNDInterpolator(face_m[:, [0, 2]], face_m[:, 1])(gx, gz)
        inside = np.isfinite(depth)
        dist, (ri, ci) = ndi.distance_transform_edt(~inside, return_indices=True)
        dist_m = dist * c.face_map_res_m
        # Nearest-edge depths fan out in streaks; blurring them gives a smooth continuation.
        edge_depth = ndi.gaussian_filter(depth[ri, ci], sigma=0.012 / c.face_map_res_m)
        edge_depth = np.where(dist_m < 0.004, depth[ri, ci], edge_depth)
        below_chin = gz < self.chin_z + 0.02
        radius = np.where(below_chin, c.under_chin_bend_radius_m, c.face_bend_radius_m)
        reach = np.where(below_chin, 0.012, 0.015)
        extended = np.where(inside, depth, edge_depth + dist_m ** 2 / (2 * radius))
        self.face_half = half
        self.face_depth = torch.from_numpy(extended.astype(np.float32))
        self.face_outside = torch.from_numpy((dist_m - reach).astype(np.float32))
        self.face_cut_weight = torch.from_numpy(np.clip(1.0 - dist_m / c.face_cut_fade_m, 0, 1).astype(np.float32))
        # Past the outline the face continues as a thin lip that dives into the skull; a full-depth
        # slab there would stand out as a wall beside the cheeks.
        self.face_depth_extent = torch.from_numpy(
            np.where(dist_m > 0, c.face_lip_m, c.face_thickness_m).astype(np.float32))

    def face_sdf(self, p: torch.Tensor) -> torch.Tensor:
        x, y, z = p.unbind(-1)
        front = _sample_map(self.face_depth, x, z, self.face_half, self.face_half)
        outside = _sample_map(self.face_outside, x, z, self.face_half, self.face_half)
        # The face never reaches behind the ear plane: the skull closes it there.
        extent = _sample_map(self.face_depth_extent, x, z, self.face_half, self.face_half)
        back = torch.clamp(front + extent, max=0.02)
        slab = torch.maximum(front - y, y - back)
        return torch.maximum(slab, outside)

    def behind_face(self, p: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
        """inside (N,) field values -> the same, cut away ahead of the face surface (inside the face
        outline, fading out past it): the skull and hair may not cover the eyes or cheeks."""
        c = self.config
        x, y, z = p.unbind(-1)
        front = _sample_map(self.face_depth, x, z, self.face_half, self.face_half)
        weight = _sample_map(self.face_cut_weight, x, z, self.face_half, self.face_half)
        # Fading, the cut moves ahead of the face; it ends where the weight does (far from the
        # outline the extended face depth bends far back and would cut the whole skull).
        cut = front + c.face_cut_behind_m - y - (1.0 - weight) * 0.05
        return torch.where(weight > 0, torch.maximum(inside, cut), inside)

    # --- skull and hair ---------------------------------------------------------------------
    def _build_hair_profile(self, landmarks_m: np.ndarray) -> None:
        """Per image-plane angle around the skull centre: how far the person mask reaches beyond the
        skull's own silhouette (above the chin line only; below it the body takes over)."""
        c = self.config
        bins = c.angle_bins
        R = self.R.numpy().astype(np.float64)
        centre2 = (R @ np.asarray(c.skull.centre_m))[:2]
        up2 = R[:2, 2] / np.linalg.norm(R[:2, 2])
        chin2 = (R @ landmarks_m[CHIN].astype(np.float64))[:2]

        r_skull = self.r_skull
        # Ears stand out of a frontal silhouette: where the mask reaches no further than they do,
        # it shows ears, not hair to grow the skull into.
        ears = ear_surface_points(self.ears) - np.asarray(c.skull.centre_m)
        r_ears = np.maximum(r_skull, silhouette_radius(ears @ R.T, bins))

        # mask reach per angle: march outward until the mask ends or the ray crosses the chin line
        theta = (np.arange(bins) + 0.5) / bins * 2 * np.pi - np.pi
        dirs = np.stack([np.cos(theta), np.sin(theta)], axis=1)
        steps = np.arange(0.0, 0.35, self.canvas.config.resolution_m)
        pts = centre2[None, None] + steps[None, :, None] * dirs[:, None]
        pix = self.canvas.to_pixel(pts.reshape(-1, 2))
        inside = ndi.map_coordinates(self.canvas.mask.astype(np.float32), [pix[:, 1], pix[:, 0]],
                                     order=1, mode="constant").reshape(bins, -1) > 0.5
        above_chin = ((pts - chin2) @ up2) > 0.0
        ok = inside & above_chin
        first_out = np.where((~ok).any(axis=1), np.argmax(~ok, axis=1), steps.size)
        r_mask = steps[np.maximum(first_out - 1, 0)]
        scale = np.clip(r_mask / np.maximum(r_skull, 1e-6), 1.0, c.max_hair_scale)
        if self.skin_like is not None:
            # The bump beside the skull is an ear where it looks like skin, not hair.
            skin = ndi.map_coordinates(self.skin_like.astype(np.float32), [pix[:, 1], pix[:, 0]],
                                       order=0, mode="constant").reshape(bins, -1) > 0.5
            bump = ok & (steps[None, :] > r_skull[:, None]) & (np.arange(steps.size)[None, :] < first_out[:, None])
            explained = (skin & bump).sum(1) > 0.5 * bump.sum(1)
        else:
            explained = r_mask <= r_ears + c.ears.explained_m
        scale[(r_ears > r_skull) & explained] = 1.0
        scale = ndi.median_filter(scale, size=15, mode="wrap")
        scale = ndi.gaussian_filter1d(scale, 8, mode="wrap")
        self.hair_scale = torch.tensor(scale, dtype=torch.float32)
        self.hair_scale_mean = float(scale.mean())

    def skull_hair_sdf(self, p: torch.Tensor) -> torch.Tensor:
        c = self.config
        d = p - self.centre
        cam = d @ self.R.T
        ang = torch.atan2(cam[:, 1], cam[:, 0])
        pos = (ang + np.pi) / (2 * np.pi) * c.angle_bins - 0.5
        i0 = torch.floor(pos).long()
        t = pos - i0
        s_img = (self.hair_scale[i0 % c.angle_bins] * (1 - t) + self.hair_scale[(i0 + 1) % c.angle_bins] * t)
        in_plane = cam[:, :2].norm(dim=1) / d.norm(dim=1).clamp_min(1e-6)
        # Hair may wrap round the back freely but must not grow over the face.
        # Toward the view axis the image angle is undefined: fade to the mean scale there
        # (squared, so the back of the head stays round instead of coming to a point).
        s = self.hair_scale_mean + (s_img - self.hair_scale_mean) * in_plane ** 2
        # Hair lies on the skull from the temples back; ahead of them the face takes over.
        forward = -d[:, 1] / d.norm(dim=1).clamp_min(1e-6)
        keep = torch.clamp((0.5 - forward) / 0.5, 0.0, 1.0)
        s = 1.0 + (s - 1.0) * keep
        q = d / s[:, None]
        radii = self.skull.radii(q)
        k = (q / radii).norm(dim=1)
        return (k - 1.0) * radii.min(dim=1).values * s

    # --- neck and shoulders -------------------------------------------------------------------
    def body_sdf(self, p: torch.Tensor) -> torch.Tensor:
        c = self.config
        cam = p @ self.R.T
        half = self.canvas.config.half_extent_m
        outline = _sample_map(self.canvas_sdf, cam[:, 0], cam[:, 1], half, half)
        half_depth = _sample_map(self.canvas_half_depth, cam[:, 0], cam[:, 1], half, half)
        neck_depth = float((self.R[2, 1] * c.neck_plane_y_m))
        thickness = (cam[:, 2] - neck_depth).abs() - half_depth
        below_chin = p[:, 2] - (self.chin_z + c.neck_overlap_m)
        # Photos often cut the shoulders at the frame; stop them at an adult's shoulder breadth.
        sides = p[:, 0].abs() - c.shoulder_half_breadth_m
        # Under the chin only the neck may come forward; the chest starts lower. Without this, long
        # hair beside the neck widens the inflated slab until its front covers the chin.
        drop = torch.clamp((self.chin_z - 0.02 - p[:, 2]) / 0.08, 0.0, 1.0)
        front_limit = c.neck_front_y_m + (c.chest_front_y_m - c.neck_front_y_m) * drop
        thickness = torch.maximum(thickness, front_limit - p[:, 1])
        return torch.maximum(torch.maximum(outline, thickness), torch.maximum(below_chin, sides))

    # --- all together -------------------------------------------------------------------------
    def __call__(self, points_m: torch.Tensor) -> torch.Tensor:
        c = self.config
        skull = self.behind_face(points_m, self.skull_hair_sdf(points_m))
        head = smooth_min(self.face_sdf(points_m), skull, c.face_blend_m)
        ears = ears_sdf(points_m, self.ears)
        if ears is not None:  # after the face: the fillet also fills a crevice by the face's rim
            head = smooth_min(head, ears, c.ears.blend_m)
        body = smooth_min(head, self.body_sdf(points_m), c.blend_m)
        return torch.maximum(body, c.bust_bottom_z_m - points_m[:, 2])
