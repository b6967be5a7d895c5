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

import dataclasses
from dataclasses import dataclass, field

import cv2
import numpy as np
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F
from scipy.interpolate import LinearNDInterpolator

from backend.ears import (Ear, EarConfig, ear_points, ear_surface_points, ears_sdf, place_ear,
                          place_ears, shows_skin, side_skin_points)
from backend.reconstruction import OrthoCamera
from backend.silhouette import Canvas

CHIN = 152
FOREHEAD_TOP = 10
# Forehead and temple part of the face-mesh outline (above the eyes), which should sit on the skull.
UPPER_FACE_OUTLINE = [10, 338, 297, 332, 284, 251, 389, 109, 67, 103, 54, 21, 162]
FACE_SURFACE = slice(0, 468)  # the 10 iris landmarks are left out of the surface


@dataclass
class PriorConfig:
    skull_half_breadth_m: float = 0.078
    skull_front_m: float = 0.080  # forward reach of the egg when the face outline cannot fit it
    face_inset_m: float = 0.004  # the skull stays this far behind the face outline
    skull_back_m: float = 0.100
    skull_half_height_m: float = 0.118
    skull_centre_m: tuple[float, float, float] = (0.0, 0.0, 0.025)
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
        self.centre = torch.tensor(c.skull_centre_m, dtype=torch.float32)
        # The skull is at least as broad as the face outline, so the face never sticks out sideways.
        face_half_width = float(np.abs(landmarks_m[FACE_SURFACE, 0]).max())
        self.half_breadth = max(c.skull_half_breadth_m, face_half_width + 0.006)
        self.skull_front = self._fit_skull_front(landmarks_m)
        self.chin_z = float(landmarks_m[CHIN, 2])
        self._build_face_layer(landmarks_m[FACE_SURFACE])
        self.r_skull = self._skull_silhouette_radius()
        self.ears = place_ears(landmarks_m, self._skull_side_x, c.ears)
        self.skin_like: np.ndarray | None = None
        if image_rgb is not None:
            skin, hair = self._skin_and_hair(image_rgb, camera, landmarks_m)
            self.ears = [e for e in self.ears if self._photo_shows_ear(e, image_rgb, camera, landmarks_m, skin, hair)]
            self.skin_like = self._skin_likeness(image_rgb, camera, skin, hair)
            self.ears = [f for f in (self._fit_ear(landmarks_m, np.sign(e.centre[0]), self.skin_like)
                                     for e in self.ears) if f]
        self._build_hair_profile(landmarks_m)
        # Ears stand on the hair where it lies on the skull round them (short hair), and an ear
        # the hair volume still swallows would only paint a skin patch on the hair.
        self.ears = [e for e in (self._onto_hair(e) for e in self.ears) if not self._under_hair(e)]

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
    def _fit_skull_front(self, landmarks_m: np.ndarray) -> float:
        """How far the egg reaches forward so the forehead and temples of the face outline lie on
        it: the face then continues into the skull instead of standing in front of it."""
        c = self.config
        ring = landmarks_m[UPPER_FACE_OUTLINE].astype(np.float64) - np.asarray(c.skull_centre_m)
        rest = 1.0 - (ring[:, 0] / self.half_breadth) ** 2 - (ring[:, 2] / c.skull_half_height_m) ** 2
        ok = (rest > 0.05) & (ring[:, 1] < 0)
        if not ok.any():
            return c.skull_front_m
        reach = np.median(-ring[ok, 1] / np.sqrt(rest[ok])) - c.face_inset_m
        return float(np.clip(reach, 0.06, 0.11))

    def _skull_radii(self, d: torch.Tensor) -> torch.Tensor:
        c = self.config
        ry = torch.where(d[..., 1] < 0, torch.tensor(self.skull_front), torch.tensor(c.skull_back_m))
        return torch.stack([torch.full_like(ry, self.half_breadth), ry,
                            torch.full_like(ry, c.skull_half_height_m)], dim=-1)

    def _skull_side_x(self, y: float, z: float) -> float:
        """The egg's half-breadth at canonical (y, z) (0 outside its side outline)."""
        c = self.config
        ry = self.skull_front if y - c.skull_centre_m[1] < 0 else c.skull_back_m
        rest = 1.0 - ((y - c.skull_centre_m[1]) / ry) ** 2 - ((z - c.skull_centre_m[2]) / c.skull_half_height_m) ** 2
        return float(self.half_breadth * np.sqrt(max(rest, 0.0)))

    def _angle_bin(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) image-plane offsets from the skull centre -> (N,) int angle bins."""
        bins = self.config.angle_bins
        return ((np.arctan2(xy[:, 1], xy[:, 0]) + np.pi) / (2 * np.pi) * bins).astype(int) % bins

    def _silhouette_radius(self, proj: np.ndarray) -> np.ndarray:
        """(bins,) how far points (N, 3) in camera axes, relative to the skull centre, reach from it
        in the image plane, per angle bin (0 where none)."""
        r = np.zeros(self.config.angle_bins)
        np.maximum.at(r, self._angle_bin(proj[:, :2]), np.hypot(proj[:, 0], proj[:, 1]))
        return r

    def _onto_hair(self, ear: Ear, max_m: float = 0.02) -> Ear:
        """The ear moved out sideways by the hair's thickness over the bare skull at its front
        edge (up to max_m)."""
        front = ear.centre - ear.half_width * ear.u
        side = np.sign(front[0])
        probe = np.repeat(front[None], 41, 0)
        probe[:, 0] += side * np.linspace(0.0, max_m + 0.01, 41)
        pts = torch.tensor(probe, dtype=torch.float32)
        d = pts - self.centre
        bare = ((d / self._skull_radii(d)).norm(dim=1) > 1.0).numpy()
        haired = (self.skull_hair_sdf(pts) > 0).numpy()
        if not bare.any() or not haired.any():
            return ear
        shift = float(np.clip(abs(probe[np.argmax(haired), 0]) - abs(probe[np.argmax(bare), 0]), 0.0, max_m))
        return dataclasses.replace(ear, centre=ear.centre + np.array([side * shift, 0.0, 0.0]))

    def _under_hair(self, ear: Ear) -> bool:
        """Whether most of the ear's outer face lies inside the skull-and-hair volume."""
        inside = self.skull_hair_sdf(torch.tensor(ear_points(ear), dtype=torch.float32)) < 0
        return bool(inside.float().mean() > 0.8)

    def _skull_silhouette_radius(self) -> np.ndarray:
        """(angle_bins,) the egg's silhouette radius round the skull centre in the photo's image plane."""
        g = torch.randn(40000, 3, generator=torch.Generator().manual_seed(0))
        g = g / g.norm(dim=1, keepdim=True)
        surface = (g * self._skull_radii(g)).numpy().astype(np.float64)
        return self._silhouette_radius(surface @ self.R.numpy().astype(np.float64).T)

    def _skin_likeness(self, image_rgb: np.ndarray, camera: OrthoCamera, skin: np.ndarray | None,
                       hair: np.ndarray | None) -> np.ndarray:
        """(S, S) bool over the canvas: in the person mask and nearer the face's side skin (3,) in
        colour than the hair (3,) (_skin_and_hair; all of the mask when the two look alike, as on a
        bald head, or when the photo shows neither)."""
        cfg = self.canvas.config
        size = self.canvas.mask.shape[0]
        axis = (np.arange(size) + 0.5) * cfg.resolution_m - cfg.half_extent_m
        px = np.stack(np.meshgrid(axis, axis), -1) * camera.pixels_per_metre + camera.principal_px
        h, w = image_rgb.shape[:2]
        col = np.clip(np.round(px[..., 0]).astype(int), 0, w - 1)
        row = np.clip(np.round(px[..., 1]).astype(int), 0, h - 1)
        colour = image_rgb[row, col].astype(np.float32) / 255.0
        if skin is None or np.linalg.norm(skin - hair) < 0.1:
            return self.canvas.mask
        nearer_skin = np.linalg.norm(colour - skin, axis=-1) < np.linalg.norm(colour - hair, axis=-1)
        return self.canvas.mask & nearer_skin

    def _fit_ear(self, landmarks_m: np.ndarray, side: float, skin_like: np.ndarray) -> Ear | None:
        """The ear on `side` whose flare and height best fill the skin-coloured bump of the person
        mask beside the skull's silhouette (EarConfig.fit_*; skin_like (S, S) from _skin_likeness),
        or None when every candidate reaches out of the mask more than into that bump."""
        c = self.config
        R = self.R.numpy().astype(np.float64)
        centre2 = R @ np.asarray(c.skull_centre_m)
        r_skull = self.r_skull
        size = self.canvas.mask.shape[0]
        best, best_score = None, 0.0
        for flare in c.ears.fit_flares_deg:
            for raise_m in c.ears.fit_raises_m:
                ear = place_ear(landmarks_m, self._skull_side_x, side, flare, c.ears, raise_m)
                cam = ear_surface_points([ear], 3000) @ R.T
                px = np.unique(np.round(self.canvas.to_pixel(cam[:, :2])).astype(int), axis=0)
                px = px[((px >= 0) & (px < size)).all(1)]
                xy = (px + 0.5) * self.canvas.config.resolution_m - self.canvas.config.half_extent_m - centre2[:2]
                beyond = np.hypot(xy[:, 0], xy[:, 1]) > r_skull[self._angle_bin(xy)]
                inside = self.canvas.mask[px[:, 1], px[:, 0]]
                skin = skin_like[px[:, 1], px[:, 0]]
                score = (beyond & skin).sum() - c.ears.outside_cost * (beyond & ~inside).sum()
                if best is None or score > best_score:
                    best, best_score = ear, score
        return best if best_score > 0 else None

    def _in_mask(self, points_m: np.ndarray, camera: OrthoCamera) -> np.ndarray:
        """(N, 3) canonical points -> (N,) bool: inside the person mask (False off the canvas)."""
        canvas_px = np.round(self.canvas.to_pixel((points_m @ camera.R_cam_from_canonical.T)[:, :2])).astype(int)
        ok = ((canvas_px >= 0) & (canvas_px < self.canvas.mask.shape[0])).all(1)
        ok[ok] = self.canvas.mask[canvas_px[ok, 1], canvas_px[ok, 0]]
        return ok

    def _photo_colours(self, points_m: np.ndarray, image_rgb: np.ndarray, camera: OrthoCamera) -> np.ndarray:
        """(N, 3) canonical points -> (M, 3) the photo's colours in [0, 1] at those inside the photo
        and the person mask."""
        h, w = image_rgb.shape[:2]
        px = np.round(camera.project(points_m)[:, :2]).astype(int)
        ok = ((px >= 0) & (px < [w, h])).all(1) & self._in_mask(points_m, camera)
        return image_rgb[px[ok, 1], px[ok, 0]].astype(np.float64) / 255.0

    def _skin_and_hair(self, image_rgb: np.ndarray, camera: OrthoCamera,
                       landmarks_m: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(3,) the photo's skin at the face's sides and (3,) its hair under the top of the
        silhouette above the forehead (a bald scalp is skin there); None where it shows none."""
        column = landmarks_m[FOREHEAD_TOP].astype(np.float64) + np.outer(np.arange(0, 0.2, 0.0025), [0, 0, 1])
        inside = self._in_mask(column, camera)
        top_z = column[np.flatnonzero(inside)[-1], 2] if inside.any() else column[0, 2]
        dx, dz = np.meshgrid(np.linspace(-0.02, 0.02, 5), np.linspace(-0.02, -0.005, 4))
        crown = np.stack([landmarks_m[FOREHEAD_TOP, 0] + dx.ravel(),
                          np.full(dx.size, landmarks_m[FOREHEAD_TOP, 1]), top_z + dz.ravel()], 1)
        skin = self._photo_colours(side_skin_points(landmarks_m), image_rgb, camera)
        hair = self._photo_colours(crown, image_rgb, camera)
        if len(skin) == 0 or len(hair) == 0:
            return None, None
        return np.median(skin, 0), np.median(hair, 0)

    def _photo_shows_ear(self, ear: Ear, image_rgb: np.ndarray, camera: OrthoCamera, landmarks_m: np.ndarray,
                         skin: np.ndarray | None, hair: np.ndarray | None) -> bool:
        """Whether the photo shows skin (3,), not hair (3,) (_skin_and_hair), in the person mask
        where the ear would be."""
        face = camera.project(landmarks_m[FACE_SURFACE].astype(np.float64))[:, :2]
        hull = cv2.convexHull(face.astype(np.float32))
        spots = ear_points(ear)
        px = camera.project(spots)[:, :2]
        beside = np.array([cv2.pointPolygonTest(hull, (float(u), float(v)), False) < 0 for u, v in px])
        if skin is None:
            return True
        return shows_skin(self._photo_colours(spots[beside], image_rgb, camera), skin, hair)

    def _build_hair_profile(self, landmarks_m: np.ndarray) -> None:
        """Per image-plane angle around the skull centre: how far the person mask reaches beyond the
        skull's own silhouette (above the chin line only; below it the body takes over)."""
        c = self.config
        bins = c.angle_bins
        R = self.R.numpy().astype(np.float64)
        centre2 = (R @ np.asarray(c.skull_centre_m))[:2]
        up2 = R[:2, 2] / np.linalg.norm(R[:2, 2])
        chin2 = (R @ landmarks_m[CHIN].astype(np.float64))[:2]

        r_skull = self.r_skull
        # Ears stand out of a frontal silhouette: where the mask reaches no further than they do,
        # it shows ears, not hair to grow the skull into.
        ears = ear_surface_points(self.ears) - np.asarray(c.skull_centre_m)
        r_ears = np.maximum(r_skull, self._silhouette_radius(ears @ R.T))

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
        radii = self._skull_radii(q)
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
