"""Appearance branch: lift the photo's pixels onto the triplane's layers and complete what it hid.

For every texel of every plane layer (near/far) the layer's surface point is known from the
geometry channels. Projected through the estimated camera it picks up the photo's colour where the
camera saw it (z-buffer test against the mesh, facing the camera, inside the person mask); the
confidence is how squarely it was seen. What the photo did not show is completed, in this order:
1. symmetry: the canonical frame's X = 0 plane is the face's mirror plane;
2. nearest seen surface: every other texel takes the colour of the closest surface points (in 3-D)
   that the photo saw squarely, so the back and sides of the head continue the hair or skin at
   the silhouette instead of smearing the face round the head.
Appearance channels per plane (10): near RGB, far RGB, near confidence, far confidence, and the
near and far depths of the final mesh seen along the plane's axis (the layers the colours sit on).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F

from backend.reconstruct.ears import Ear, ear_weight
from backend.reconstruct.photo_colours import side_skin_points
from backend.reconstruct.triplane import PLANE_AXES, Triplane, sample_plane
from backend.render.camera import OrthoCamera
from backend.render.normals import vertex_normals
from backend.render.raster import rasterize
from backend.rig.landmarks import CHIN

XY, XZ, YZ = 0, 1, 2


@dataclass
class AppearanceConfig:
    resolution: int = 1024
    depth_tolerance_m: float = 0.006
    mirror_trust: float = 0.85  # a mirrored colour counts a little less than a seen one
    render_max_side: int = 1024  # z-buffer resolution for the visibility test
    trusted_conf: float = 0.3
    unseen_conf: float = 0.1
    crown_below_eyes_m: float = 0.03  # unseen head above this (about the ears' top) takes the crown
    crown_ramp_m: float = 0.02
    # Behind the ears (canonical y > 0 is behind the ear axis) the unseen head down to the nape
    # (about mouth height) is hair or scalp too: the crown's colour, not the cheek's skin smeared
    # back as a band round the head.
    behind_ears_m: float = 0.01
    nape_below_mouth_m: float = 0.0
    fill_cell_m: float = 0.004
    fill_neighbours: int = 8
    fill_downsample: int = 4
    grazing_cos: float = 0.35  # below this cosine between normal and view, a texel counts as unseen
    ear_back_shade: float = 0.6
    collar_below_chin_m: float = 0.05  # the unseen back takes the clothes' colour below this
    back_of_body_m: float = 0.0  # behind this (canonical y), ramping over crown_ramp_m
    chest_middle_half_m: float = 0.07  # the clothes' colour is sampled outside this band


def smooth_normals(verts_m: np.ndarray, faces: np.ndarray, iterations: int = 8) -> np.ndarray:
    """(V, 3) unit vertex normals (area-weighted, texture.vertex_normals), then averaged over
    neighbours `iterations` times.

    Which plane sees a surface squarely is a question about its overall orientation; marching-cubes
    ripples would otherwise flip texels between planes and leave blotches.
    """
    import scipy.sparse as sp

    n = len(verts_m)
    out = vertex_normals(verts_m, faces).astype(np.float64)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    adjacency = sp.csr_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    adjacency = adjacency + adjacency.T + sp.identity(n)
    for _ in range(iterations):
        out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        out = adjacency @ out
    return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def mesh_layer(tri: Triplane, verts_m: np.ndarray, faces: np.ndarray, normals: np.ndarray,
               plane: int, layer: int, res: int):
    """The mesh seen orthographically along a plane's axis: its first (layer 0) or last (layer 1)
    surface at every texel. Returns points (res, res, 3), normals (res, res, 3), covered (res, res).

    The layers come from the final mesh, not the prior, so colours land exactly where the mesh is.
    """
    u, v, w = PLANE_AXES[plane]
    origin = tri.origin_m.numpy()
    scale = res / tri.size_m
    depth = verts_m[:, w] if layer == 0 else -verts_m[:, w]
    px = np.stack([(verts_m[:, u] - origin[u]) * scale, (verts_m[:, v] - origin[v]) * scale, depth], 1)
    frags = rasterize(torch.from_numpy(px.astype(np.float32)), torch.from_numpy(faces.astype(np.int64)), res, res)
    tri_id = frags.tri_id.clamp_min(0)
    corners = torch.from_numpy(faces.astype(np.int64))[tri_id]  # (res, res, 3)
    bary = frags.bary[..., None]
    pts = (torch.from_numpy(verts_m)[corners] * bary).sum(2)
    nrm = (torch.from_numpy(normals)[corners] * bary).sum(2)
    nrm = nrm / nrm.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    return pts, nrm, frags.mask
def _zbuffer(verts_m: np.ndarray, faces: np.ndarray, camera: OrthoCamera, scale: float):
    w, h = camera.image_size
    proj = camera.project(verts_m.astype(np.float64))
    proj[:, :2] *= scale
    frags = rasterize(torch.tensor(proj, dtype=torch.float32), torch.from_numpy(faces.astype(np.int64)),
                      int(round(h * scale)), int(round(w * scale)))
    return frags.depth


def _bilinear(image: torch.Tensor, uv_px: torch.Tensor) -> torch.Tensor:
    """image (H, W, C), uv_px (N, 2) pixel coordinates (column, row) -> (N, C)."""
    h, w = image.shape[:2]
    grid = torch.stack([uv_px[:, 0] / w * 2 - 1, uv_px[:, 1] / h * 2 - 1], -1).view(1, 1, -1, 2)
    out = F.grid_sample(image.permute(2, 0, 1)[None], grid, mode="bilinear", padding_mode="border",
                        align_corners=False)
    return out[0, :, 0].T


def lift_layer(layer_geometry, image, mask, zbuf, zscale, camera, config):
    """((colour (res, res, 3), confidence (res, res)), surface points (res, res, 3)) of one layer."""
    res = config.resolution
    pts, normals, inside = layer_geometry
    flat = pts.view(-1, 3)
    R = torch.tensor(camera.R_cam_from_canonical, dtype=torch.float32)
    cam = flat @ R.T
    uv = cam[:, :2] * camera.pixels_per_metre + torch.tensor(camera.principal_px, dtype=torch.float32)
    seen_depth = _bilinear(zbuf[..., None], uv * zscale)[:, 0]
    visible = (cam[:, 2] - seen_depth).abs() < config.depth_tolerance_m
    to_camera = -R[2]  # camera looks along its +z; canonical direction toward the camera
    # Surfaces seen at a grazing angle smear a few pixels over centimetres: trust them little.
    facing = ((normals.view(-1, 3) @ to_camera - config.grazing_cos) / (1 - config.grazing_cos)).clamp(0, 1)
    in_person = _bilinear(mask[..., None], uv)[:, 0] > 0.5
    w, h = camera.image_size
    in_frame = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
    conf = facing * (visible & in_person & in_frame & inside.view(-1)).float()
    colour = _bilinear(image, uv)
    return (colour.view(res, res, 3).numpy(), conf.view(res, res).numpy()), pts.numpy()


def nearest_seen_fill(seen: dict, points: dict, config: "AppearanceConfig") -> dict:
    """For every layer, the colour of the nearest surface points the photo saw well (in 3-D).

    Hidden surfaces take the colour of what the camera saw closest to them: the back and sides of
    the head take the hair (or skin) at the silhouette, not a smear of the face. Computed at a
    quarter of the layer resolution (it is smooth by nature) and upsampled.
    """
    from scipy.spatial import cKDTree

    pts, cols = [], []
    for key, (colour, conf) in seen.items():
        good = conf > config.trusted_conf
        pts.append(points[key][good])
        cols.append(colour[good])
    pts, cols = np.concatenate(pts), np.concatenate(cols)
    if len(pts) == 0:
        return {key: np.full_like(colour, 0.5) for key, (colour, _) in seen.items()}
    # One averaged sample per 4 mm cell: a small tree answers far-away queries (the back of the
    # head) quickly, where the raw, surface-like cloud makes k-NN search crawl.
    cells, inverse = np.unique(np.floor(pts / config.fill_cell_m).astype(np.int64), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    counts = np.bincount(inverse).astype(np.float64)[:, None]
    pts = np.stack([np.bincount(inverse, pts[:, i]) for i in range(3)], 1) / counts
    cols = np.stack([np.bincount(inverse, cols[:, i]) for i in range(3)], 1) / counts
    tree = cKDTree(pts)
    res = config.resolution
    low = res // config.fill_downsample
    fills = {}
    for key, (colour, _) in seen.items():
        query = cv2.resize(points[key], (low, low), interpolation=cv2.INTER_AREA).reshape(-1, 3)
        dist, idx = tree.query(query, k=config.fill_neighbours, eps=0.5)
        w = 1.0 / (dist + 0.005)
        fill = (cols[idx] * w[..., None]).sum(1) / w.sum(1, keepdims=True)
        fill = cv2.GaussianBlur(fill.reshape(low, low, 3).astype(np.float32), (0, 0), 2.0)
        fills[key] = cv2.resize(fill, (res, res), interpolation=cv2.INTER_LINEAR)
    return fills


def face_region(landmarks_m: np.ndarray, tri: Triplane, res: int) -> np.ndarray:
    """(res, res) bool: the face's outline on the XZ plane (rows along z, columns along x)."""
    step = tri.size_m / res
    origin = tri.origin_m.numpy()
    cols = (landmarks_m[:468, 0] - origin[0]) / step - 0.5
    rows = (landmarks_m[:468, 2] - origin[2]) / step - 0.5
    hull = cv2.convexHull(np.stack([cols, rows], 1).astype(np.float32))
    region = np.zeros((res, res), np.uint8)
    cv2.fillConvexPoly(region, np.round(hull).astype(np.int32), 1)
    return region.astype(bool)


def visible_hair_colour(colour: np.ndarray, conf: np.ndarray, face: np.ndarray, eye_row: float,
                        step_m: float, trusted: float = 0.3, seen: float = 0.02,
                        min_texels: int = 50) -> np.ndarray | None:
    """(3,): the colour of the hair or scalp the front layer saw, or None when it saw nothing
    well. colour (res, res, 3), conf (res, res) and face (res, res) are the XZ near layer (rows
    along +z, columns along x); eye_row is the eyes' row on it.

    Candidates lie above the brows and outside the face's landmark outline (hair at the temples
    and above the forehead), seen at all (conf > seen): hair is mostly seen at a slant, and the
    squarely seen part alone (the strands over the forehead) is its shadowed side; their mean
    colour counts, since shadowed grooves and highlights together make up how hair looks. A bald
    head or a face that fills the frame has none: then the median of the topmost 1.5 cm of
    well-seen (conf > trusted) surface of every column counts.
    """
    rows = np.arange(colour.shape[0])[:, None]
    hair = (conf > seen) & ~face & (rows > eye_row + 0.015 / step_m)
    if hair.sum() >= min_texels:  # fewer are a stray strand or the mask's fringe, not hair
        return colour[hair].mean(0).astype(np.float32)
    pick = conf > trusted
    if not pick.any():
        return None
    has = pick.any(0)
    top = np.where(has, pick.shape[0] - 1 - np.argmax(pick[::-1], axis=0), -1)
    band = pick & (rows >= top - 0.015 / step_m) & has
    return np.median(colour[band], axis=0).astype(np.float32)


def crown_colour(colour: np.ndarray, conf: np.ndarray, covered: np.ndarray, step_m: float,
                 face: np.ndarray, eye_row: float, ears: np.ndarray | None = None) -> np.ndarray:
    """(res, 3): per XZ column, the seen colour 0.5-2 cm below the top of the head (hair, or skin
    when bald). Columns without a well-seen sample take the mean of those with one. When the photo
    cuts the head off above the brows no column sees that band: then every column takes the
    hair the photo does show (visible_hair_colour), so the unseen top, back and sides
    continue the person's own hair rather than a made-up colour. ears (res, res) bool: texels on
    the ears, which are no evidence of the hair's colour (beside the skull they are the top of
    their columns)."""
    res = colour.shape[0]
    rows = np.arange(res)[:, None]
    top = np.where(covered.any(0), res - 1 - np.argmax(covered[::-1], axis=0), 0)  # rows run along +z
    band = (rows <= top - 0.005 / step_m) & (rows >= top - 0.02 / step_m) & covered & (conf > 0.3)
    if ears is not None:
        band &= ~ears
        face = face | ears
    crown = (colour * band[..., None]).sum(0) / np.maximum(band.sum(0), 1)[:, None]
    has = band.sum(0) > 0
    if has.any():
        crown[~has] = crown[has].mean(0)
    else:
        hair = visible_hair_colour(colour, conf, face, eye_row, step_m)
        crown[:] = hair if hair is not None else 0.5  # 0.5 only when the photo saw nothing at all
    # a parting or a highlight would otherwise run down the back as a stripe
    return ndi.gaussian_filter1d(crown, 0.015 / step_m, axis=0, mode="nearest").astype(np.float32)


def side_skin_colour(image: torch.Tensor, camera: OrthoCamera, landmarks_m: np.ndarray) -> np.ndarray:
    """(3,) the photo's skin at the sides of the face (photo_colours.side_skin_points), the median.
    image (H, W, 3) in [0, 1]."""
    px = camera.project(side_skin_points(landmarks_m))[:, :2]
    return _bilinear(image, torch.tensor(px, dtype=torch.float32)).median(0).values.numpy()


def clothes_colour(colour: np.ndarray, conf: np.ndarray, points: np.ndarray, collar_z: float,
                   config: AppearanceConfig) -> np.ndarray | None:
    """(3,) the median colour of the clothes the photo saw squarely: the XZ near layer's texels
    (colour (R, R, 3), conf (R, R), points (R, R, 3)) below the collar and off the middle of the
    chest (a tie, a shirt front, a necklace), or None when the photo shows too few."""
    pick = ((conf > config.trusted_conf) & (points[..., 2] < collar_z)
            & (np.abs(points[..., 0]) > config.chest_middle_half_m))
    if pick.sum() < 200:
        return None
    return np.median(colour[pick], axis=0).astype(np.float32)


def build_appearance(tri: Triplane, verts_m: np.ndarray, faces: np.ndarray, image_rgb: np.ndarray,
                     person_mask: np.ndarray, camera: OrthoCamera, landmarks_m: np.ndarray,
                     config: AppearanceConfig | None = None, ears: list[Ear] = ()) -> torch.Tensor:
    """Fill tri.appearance: (3, 10, Ra, Ra) float32. Returns it too. ears: the prior's, whose
    unseen parts take the skin of the face's sides rather than the hair round them."""
    config = config or AppearanceConfig()
    res = config.resolution
    image = torch.from_numpy(image_rgb.astype(np.float32) / 255.0)
    mask = torch.from_numpy(person_mask.astype(np.float32))
    zscale = min(1.0, config.render_max_side / max(camera.image_size))
    zbuf = _zbuffer(verts_m, faces, camera, zscale)

    normals = smooth_normals(verts_m, faces)
    seen, points, seen_cover = {}, {}, {}
    for p in range(3):
        for l in range(2):
            layer_geometry = mesh_layer(tri, verts_m, faces, normals, p, l, res)
            seen[(p, l)], points[(p, l)] = lift_layer(layer_geometry, image, mask, zbuf, zscale, camera, config)
            seen_cover[(p, l)] = layer_geometry[2].numpy()
    out = np.zeros((3, 10, res, res), np.float32)
    for p in range(3):
        for l in range(2):
            colour, conf = seen[(p, l)]
            # mirror partner: XY and XZ mirror their columns (x); YZ swaps its near and far layers
            if p == YZ:
                m_colour, m_conf = seen[(p, 1 - l)]
            else:
                m_colour, m_conf = seen[(p, l)][0][:, ::-1], seen[(p, l)][1][:, ::-1]
            # only where this side went unseen: a seen side keeps its own lighting and asymmetry
            use_mirror = (conf < config.unseen_conf) & (m_conf * config.mirror_trust > conf)
            colour = np.where(use_mirror[..., None], m_colour, colour)
            conf = np.where(use_mirror, m_conf * config.mirror_trust, conf)
            seen[(p, l)] = (colour, conf)

    fills = nearest_seen_fill(seen, points, config)
    # Behind the face the nearest seen surfaces are the ears and jaw: a skin band there reads as a
    # face from behind, and ear colours smear along the temples. Above the ears the unseen head
    # continues what covers the crown instead (per column on the back, its mean on sides and top).
    back = (XZ, 1)
    face = face_region(landmarks_m, tri, res)
    step_m = tri.size_m / res
    eye_row = (float(landmarks_m[[33, 263], 2].mean()) - float(tri.origin_m[2])) / step_m - 0.5
    # How much each texel lies on an ear (0 without ears).
    on_ear = {key: (ear_weight(points[key], ears) if ears else np.zeros(points[key].shape[:2])).astype(np.float32)
              for key in fills}
    crown = crown_colour(*seen[(XZ, 0)], seen_cover[(XZ, 0)], step_m, face, eye_row,
                         on_ear[(XZ, 0)] > 0 if ears else None)
    fills[back] = np.where(face[..., None], crown[None], fills[back])
    ear_z = float(landmarks_m[[33, 263], 2].mean()) - config.crown_below_eyes_m
    nape_z = float(landmarks_m[13, 2]) - config.nape_below_mouth_m
    for key in ((XZ, 1), (YZ, 0), (YZ, 1), (XY, 1)):
        y, z = points[key][..., 1], points[key][..., 2]
        above = np.clip((z - ear_z) / config.crown_ramp_m, 0.0, 1.0)
        behind = (np.clip((y - config.behind_ears_m) / config.crown_ramp_m, 0.0, 1.0)
                  * np.clip((z - nape_z) / config.crown_ramp_m, 0.0, 1.0))
        above = np.maximum(above, behind)[..., None]
        hair = crown[None] if key == back else crown.mean(0)
        fills[key] = fills[key] * (1 - above) + hair * above
    # The unseen back below the collar is the clothes, not the neck's skin or the shirt front
    # carried round from the nearest seen surface (a skin-coloured V down a jacket's back).
    collar_z = float(landmarks_m[CHIN, 2]) - config.collar_below_chin_m
    clothes = clothes_colour(*seen[(XZ, 0)], points[(XZ, 0)], collar_z, config)
    if clothes is not None:
        for key in ((XZ, 1), (YZ, 0), (YZ, 1)):
            y, z = points[key][..., 1], points[key][..., 2]
            w = (np.clip((y - config.back_of_body_m) / config.crown_ramp_m, 0.0, 1.0)
                 * np.clip((collar_z - z) / config.crown_ramp_m, 0.0, 1.0))[..., None]
            fills[key] = fills[key] * (1 - w) + clothes * w
    if ears:
        skin = side_skin_colour(image, camera, landmarks_m)
        for key in fills:
            # Seen from behind, an ear's back and the groove behind it lie in the shade of the
            # photo's light, which comes from the front.
            ear_skin = skin * (config.ear_back_shade if key == (XZ, 1) else 1.0)
            fills[key] = fills[key] * (1 - on_ear[key][..., None]) + ear_skin * on_ear[key][..., None]
    for p in range(3):
        for l in range(2):
            colour, conf = seen[(p, l)]
            # The ears are an average ear's shape, not the photo's, and a frontal photo sees them
            # edge-on at best (through the mask's soft fringe, often the backdrop): the pixels at
            # their place are not their colour, so they take the skin.
            a = (np.minimum(conf * 3.0, 1.0) * (1 - on_ear[(p, l)]))[..., None]
            out[p, 3 * l:3 * l + 3] = (colour * a + fills[(p, l)] * (1 - a)).transpose(2, 0, 1)
            out[p, 6 + l] = conf
            depth = points[(p, l)][..., PLANE_AXES[p][2]]
            covered = seen_cover[(p, l)]
            # carry the nearest covered depth outward so bilinear lookups at the rim stay on the mesh
            _, (ri, ci) = ndi.distance_transform_edt(~covered, return_indices=True)
            out[p, 8 + l] = depth[ri, ci]
    tri.appearance = torch.from_numpy(out)
    return tri.appearance


def decode_colour(tri: Triplane, points_m: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
    """points_m (N, 3), outward normals (N, 3) -> (N, 3) colour in [0, 1].

    Each plane offers the layer its side of the head faces; its vote is weighted by how squarely
    the plane sees the surface (normal component squared), by the layer's confidence and by how
    well the point lies on that layer's surface (hollows hidden from a plane get no say there).
    """
    total = torch.zeros(points_m.shape[0], 3)
    weight_sum = torch.zeros(points_m.shape[0])
    fallback = torch.zeros(points_m.shape[0], 3)
    fallback_w = torch.zeros(points_m.shape[0])
    for p in range(3):
        uv, w = tri.plane_coords(points_m, p)
        app = sample_plane(tri.appearance[p], uv)
        axis = PLANE_AXES[p][2]
        n_axis = normals[:, axis]
        far = n_axis > 0
        depth = torch.where(far, app[:, 9], app[:, 8])
        colour = torch.where(far[:, None], app[:, 3:6], app[:, 0:3])
        conf = torch.where(far, app[:, 7], app[:, 6])
        on_layer = torch.exp(-((w - depth) / 0.008) ** 2)
        square = n_axis ** 2
        wgt = square * (conf + 0.02) ** 2 * on_layer  # a seen colour outvotes a filled one
        total += colour * wgt[:, None]
        weight_sum += wgt
        fallback += colour * square[:, None]
        fallback_w += square
    blended = total / weight_sum.clamp_min(1e-8)[:, None]
    plain = fallback / fallback_w.clamp_min(1e-8)[:, None]
    return torch.where((weight_sum > 1e-4)[:, None], blended, plain).clamp(0, 1)
