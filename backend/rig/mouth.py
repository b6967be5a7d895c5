"""The mouth: a lip slit cut into the closed head surface, a cavity behind it, teeth and a tongue.

Marching cubes fuses the lips into one surface. Here the surface is cut along the inner-lip line
(mediapipe's inner-lip landmarks, seen on the mesh from the front): the vertices along the cut are
doubled, the lower lip takes the copies, and the two lip edges stay exactly together at rest, so
the head looks as before. A closed bag is stitched into the slit behind the lips (the surface stays
watertight), and upper teeth, lower teeth and a tongue are added as separate closed parts inside
it. Every vertex gets a region label and a jaw weight (how much it follows jawOpen): 1 on the lower
lip, chin, lower teeth and tongue, 0 on the upper lip and above, smooth over the cheeks (a
harmonic solve on the cut surface, so the lips part even where they touch).
recolour_interior paints the interior parts into a baked texture.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import trimesh
from scipy.sparse.csgraph import connected_components

from backend.render.raster import rasterize
from backend.rig.landmarks import JawField, corner_taper, face_scale, slit_points
from backend.rig.surface import (
    ConstrainedSolver,
    FrontView,
    cotangent_laplacian,
    edge_adjacency,
    front_snap,
    shortest_path,
)

REGIONS = ("skin", "cavity", "teeth_upper", "teeth_lower", "tongue")
SKIN, CAVITY, TEETH_UPPER, TEETH_LOWER, TONGUE = range(5)
MM = 1e-3


@dataclass
class MouthConfig:
    # The bag behind the slit, ring by ring: depth behind the lips, half-opening up (and down),
    # sideways squeeze toward the middle. Millimetres for an average face, scaled to this one.
    # The first ring is a sliver: the lip-edge vertices' smooth normals (area-weighted) then hardly
    # feel the bag, and the shut lips shade as before.
    bag_depth_mm: tuple[float, ...] = (0.15, 1.5, 4.0, 8.0, 14.0, 21.0, 27.0)
    bag_open_mm: tuple[float, ...] = (0.15, 3.0, 7.0, 9.5, 10.5, 9.0, 5.0)
    bag_squeeze: tuple[float, ...] = (1.0, 1.0, 1.0, 0.97, 0.92, 0.82, 0.65)
    bag_cap_mm: float = 4.0
    hidden_mm: float = 1.2  # interior parts stay at least this far behind the face seen from the front
    teeth_behind_mm: float = 3.5  # upper incisors' front face behind the lip slit
    teeth_thickness_mm: float = 3.5
    teeth_span: float = 0.82  # of the slit's half width
    upper_teeth_mm: tuple[float, float] = (-1.0, 7.0)  # bottom, top relative to the slit
    lower_teeth_mm: tuple[float, float] = (-7.0, 0.3)
    lower_teeth_behind_mm: float = 1.6  # behind the upper ones (overbite)
    tongue_centre_mm: tuple[float, float] = (23.0, -5.5)  # behind, below the slit
    tongue_radii_mm: tuple[float, float, float] = (17.0, 14.0, 4.0)
    # Interior colours (sRGB): lip lining at the slit fading to the dark back of the mouth.
    lining_rgb: tuple[int, int, int] = (140, 55, 52)
    cavity_rgb: tuple[int, int, int] = (48, 16, 14)
    teeth_rgb: tuple[int, int, int] = (206, 198, 180)
    tongue_rgb: tuple[int, int, int] = (186, 88, 92)
    # The mouth's share of the head's triangle budget (meshing holds it back, see backend/reconstruct/meshing.py).
    # The bag costs 2 * rings + 1 = 15 triangles per vertex of the lip loop, each row of teeth 116,
    # the tongue 320: 1.1-1.7k measured over 16 heads (loops of 38-78); 2,000 allows a loop of 96.
    max_triangles: int = 2_000


@dataclass
class MouthGeometry:
    """The head with its mouth. The first n_skin_verts vertices are the input mesh's, unchanged;
    then the lower lip's copies of the slit vertices, the bag, the teeth and the tongue.

    verts_m (V, 3) float32, faces (F, 3) int32 (outward); region (V,) int8 index into REGIONS;
    jaw_weight (V,) float32 in [0, 1]; upper_lip / lower_lip: (N,) int64 the slit's vertices on
    each lip, corner to corner (the two corners are shared); interior_rgb (V, 3) uint8 the colour
    of the interior parts (0 on skin); hinge_m (3,) a point on the jaw's hinge axis (along X)."""


    verts_m: np.ndarray
    faces: np.ndarray
    region: np.ndarray
    jaw_weight: np.ndarray
    upper_lip: np.ndarray
    lower_lip: np.ndarray
    interior_rgb: np.ndarray
    hinge_m: np.ndarray
    n_skin_verts: int
    cavity_depth_m: np.ndarray | None = None  # (V,) float32 how far behind the lips a bag vertex is, 0 elsewhere
    cavity_lip: np.ndarray | None = None  # (V,) int64 the lip-edge vertex a bag vertex hangs from, -1 elsewhere
    # Smooth normals round the lips as they were before the cut: (K, 3) points, (K, 3) unit normals.
    lip_points_m: np.ndarray | None = None
    lip_normals: np.ndarray | None = None

    def uncut_normals(self, points_m, normals, reach_m: float = 0.004):
        """Surface points (N, 3) near the lips get the smooth normals of the uncut surface in place of
        normals (N, 3): the cut's two edges each see only their own lip, and colour lookups that
        depend on the normal would draw a seam along the shut lips. Same array kind in and out."""
        if self.lip_points_m is None:
            return normals
        from scipy.spatial import cKDTree

        as_torch = isinstance(points_m, torch.Tensor)
        p = points_m.detach().cpu().numpy() if as_torch else np.asarray(points_m)
        out = normals.detach().cpu().numpy().copy() if as_torch else np.array(normals, copy=True)
        lo, hi = self.lip_points_m.min(0) - reach_m, self.lip_points_m.max(0) + reach_m
        near = np.flatnonzero(((p > lo) & (p < hi)).all(axis=1))
        if len(near):
            dist, idx = cKDTree(self.lip_points_m).query(p[near])
            close = dist < reach_m
            out[near[close]] = self.lip_normals[idx[close]]
        return torch.as_tensor(out, dtype=normals.dtype, device=normals.device) if as_torch else out

    def part(self, name: str) -> np.ndarray:
        """(V,) bool mask of one region by name."""
        return self.region == REGIONS.index(name)


class MouthError(ValueError):
    """The lip line could not be cut on this mesh (the head is then rigged without a mouth)."""


def build_mouth(verts_m: np.ndarray, faces: np.ndarray, landmarks_m: np.ndarray,
                config: MouthConfig | None = None) -> MouthGeometry:
    """verts_m (V, 3), faces (F, 3) closed head, landmarks_m (478, 3) -> MouthGeometry.
    Raises MouthError when the slit cannot be cut cleanly or the parts would take more than
    config.max_triangles triangles."""
    c = config or MouthConfig()
    verts = np.asarray(verts_m, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    n_faces_in = len(faces)
    lm = np.asarray(landmarks_m, dtype=np.float64)
    s = face_scale(lm)
    slit = slit_points(lm)

    path = _slit_path(verts, faces, slit)
    from backend.render.normals import vertex_normals

    uncut = vertex_normals(verts, faces)
    round_lips = np.linalg.norm(verts - slit.mean(axis=0), axis=1) < 0.5 * np.ptp(slit[:, 0]) + 0.01 * s
    faces, lower_copies = _cut(verts, faces, path, slit)
    verts = np.concatenate([verts, verts[path[1:-1]]])
    upper_lip = path
    lower_lip = np.concatenate([[path[0]], lower_copies, [path[-1]]])
    n_cut = len(verts)

    bag_v, bag_f, bag_jaw, bag_depth, bag_lip = _bag(verts, upper_lip, lower_lip, slit, s, c)
    # Where the lips fold back steeply the bag's first rings would show in front of them: keep every
    # interior point behind the surface as seen from the front.
    half = 0.5 * abs(slit[-1, 0] - slit[0, 0])
    box_lo = slit[:, [0, 2]].min(0) - [0.5 * half, 0.03 * s]
    box_hi = slit[:, [0, 2]].max(0) + [0.5 * half, 0.03 * s]
    front = FrontView(verts, faces, box_lo, box_hi, pixel_m=0.0003)
    hidden = c.hidden_mm * MM * s
    sliver = len(upper_lip) + len(lower_lip) - 2
    bag_v[sliver:] = _behind(bag_v[sliver:], front, hidden)
    bag_f = _orient_like(faces, bag_f, upper_lip)
    verts = np.concatenate([verts, bag_v])
    faces = np.concatenate([faces, bag_f])
    region = np.zeros(len(verts), np.int8)
    region[n_cut:] = CAVITY

    parts = [(_teeth(slit, s, c, upper=True), TEETH_UPPER), (_teeth(slit, s, c, upper=False), TEETH_LOWER),
             (_tongue(slit, s, c), TONGUE)]
    for (pv, pf), label in parts:
        pv = _behind(pv, front, hidden)
        faces = np.concatenate([faces, pf + len(verts)])
        verts = np.concatenate([verts, pv])
        region = np.concatenate([region, np.full(len(pv), label, np.int8)])

    added = len(faces) - n_faces_in
    if added > c.max_triangles:
        raise MouthError(f"the mouth's parts take {added} triangles, over its share of {c.max_triangles}")

    jaw = np.zeros(len(verts))
    main = np.arange(n_cut + len(bag_v))
    jaw[main] = _surface_jaw_weight(verts[main], faces[np.all(faces < len(main), axis=1)], lm,
                                    upper_lip, lower_lip, slit, region[main], bag_jaw, n_cut)
    jaw[region == TEETH_LOWER] = 1.0
    jaw[region == TONGUE] = 1.0

    depth = np.zeros(len(verts))
    depth[n_cut:n_cut + len(bag_v)] = bag_depth
    hangs = -np.ones(len(verts), np.int64)
    hangs[n_cut:n_cut + len(bag_v)] = bag_lip
    rgb = np.zeros((len(verts), 3))
    t = np.clip(bag_depth / (10.0 * MM * s), 0.0, 1.0)[:, None]
    rgb[n_cut:n_cut + len(bag_v)] = (1 - t) * np.array(c.lining_rgb) + t * np.array(c.cavity_rgb)
    rgb[(region == TEETH_UPPER) | (region == TEETH_LOWER)] = c.teeth_rgb
    rgb[region == TONGUE] = c.tongue_rgb
    return MouthGeometry(verts_m=verts.astype(np.float32), faces=faces.astype(np.int32), region=region,
                         jaw_weight=jaw.astype(np.float32), upper_lip=upper_lip, lower_lip=lower_lip,
                         interior_rgb=np.round(rgb).astype(np.uint8), hinge_m=JawField(lm).hinge,
                         n_skin_verts=len(verts_m), cavity_depth_m=depth.astype(np.float32),
                         cavity_lip=hangs, lip_points_m=verts[:len(verts_m)][round_lips],
                         lip_normals=uncut[round_lips])


def _behind(points: np.ndarray, front: FrontView, margin: float) -> np.ndarray:
    """Points (N, 3) moved back (+Y) where needed to lie `margin` behind the deepest front surface
    within a millimetre round them."""
    import scipy.ndimage as ndi

    depth = np.where(np.isfinite(front.depth), front.depth, -np.inf)
    deepest = ndi.maximum_filter(depth, size=max(3, int(round(0.001 / front.pixel)) | 1))
    row, col = front.pixel_of(points)
    out = np.array(points, dtype=np.float64, copy=True)
    out[:, 1] = np.maximum(out[:, 1], deepest[row, col] + margin)
    return out


def _slit_path(verts: np.ndarray, faces: np.ndarray, slit: np.ndarray) -> np.ndarray:
    """Vertex indices along the lip line, corner to corner, through the mid inner-lip points."""
    stops = front_snap(verts, faces, slit)
    stops = stops[np.r_[True, stops[1:] != stops[:-1]]]
    graph = edge_adjacency(faces, len(verts), lengths_of=verts)
    path = [int(stops[0])]
    for a, b in zip(stops[:-1], stops[1:]):
        path += [int(i) for i in shortest_path(graph, int(a), int(b))[1:]]
    # A path that comes back to a vertex would cut a loop off: drop the loop.
    out: list[int] = []
    for v in path:
        if v in out:
            out = out[: out.index(v) + 1]
        else:
            out.append(v)
    if len(out) < 4:
        raise MouthError("the lip line is too short to cut")
    return np.array(out, dtype=np.int64)


def _cut(verts: np.ndarray, faces: np.ndarray, path: np.ndarray, slit: np.ndarray):
    """Split the faces round the path's inner vertices into the lip above and the lip below; the
    lower lip's faces take new copies of those vertices (numbered after the existing ones).
    -> (faces with the lower lip re-pointed, (n,) the copies' indices in path order)."""
    inner = path[1:-1]
    on_path = np.zeros(len(verts), bool)
    on_path[inner] = True
    touching = np.flatnonzero(on_path[faces].any(axis=1))
    # Faces round the cut, joined across their shared edges except the path's own edges.
    path_edges = {tuple(sorted(e)) for e in zip(path[:-1].tolist(), path[1:].tolist())}
    local = {int(f): k for k, f in enumerate(touching)}
    owner: dict[tuple[int, int], list[int]] = {}
    for f in touching:
        tri = faces[f]
        for a, b in ((tri[0], tri[1]), (tri[1], tri[2]), (tri[2], tri[0])):
            owner.setdefault(tuple(sorted((int(a), int(b)))), []).append(local[int(f)])
    rows, cols = [], []
    for edge, fs in owner.items():
        if edge in path_edges or len(fs) != 2:
            continue
        rows.append(fs[0])
        cols.append(fs[1])
    graph = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(touching),) * 2)
    n_comp, label = connected_components(graph, directed=False)
    # Each piece goes to the side of the slit its triangles lie on.
    order = np.argsort(slit[:, 0])
    centroid = verts[faces[touching]].mean(axis=1)
    above = centroid[:, 2] > np.interp(centroid[:, 0], slit[order, 0], slit[order, 2])
    lower_piece = np.array([above[label == k].mean() < 0.5 for k in range(n_comp)])
    if n_comp < 2 or lower_piece.all() or not lower_piece.any():
        raise MouthError(f"the lip line does not split the lips ({n_comp} pieces)")
    copies = np.arange(len(verts), len(verts) + len(inner))
    remap = np.arange(len(verts))
    remap[inner] = copies
    faces = faces.copy()
    lower_faces = touching[lower_piece[label]]
    faces[lower_faces] = remap[faces[lower_faces]]
    return faces, copies


def _bag(verts, upper_lip, lower_lip, slit, s, c: MouthConfig):
    """The cavity: rings stepping back from the slit, each a lens opening up and down, closed by a
    cap. -> (new verts (B, 3), faces (G, 3) on the full vertex numbering, jaw weight (B,),
    depth behind the lips (B,), the lip-edge vertex each hangs from (B,), -1 for the cap)."""
    loop = np.concatenate([upper_lip, lower_lip[1:-1][::-1]])  # corner, upper..., corner, lower...
    side = np.concatenate([[0.0], np.ones(len(upper_lip) - 2), [0.0], -np.ones(len(lower_lip) - 2)])
    q = verts[loop]
    mid_x = 0.5 * (slit[0, 0] + slit[-1, 0])
    half = 0.5 * abs(slit[-1, 0] - slit[0, 0])
    profile = np.sqrt(np.clip(1.0 - ((q[:, 0] - mid_x) / half) ** 2, 0.0, 1.0))
    n = len(loop)
    rings = [loop]
    new = []
    depth = []
    for d, o, sq in zip(c.bag_depth_mm, c.bag_open_mm, c.bag_squeeze):
        p = q.copy()
        p[:, 0] = mid_x + (q[:, 0] - mid_x) * sq
        p[:, 1] += d * MM * s
        p[:, 2] += side * profile * o * MM * s
        start = len(verts) + sum(len(x) for x in new)
        rings.append(np.arange(start, start + n))
        new.append(p)
        depth.append(np.full(n, d * MM * s))
    cap = new[-1].mean(axis=0) + [0.0, c.bag_cap_mm * MM * s, 0.0]
    cap_index = len(verts) + n * len(new)
    tris = []
    for r0, r1 in zip(rings[:-1], rings[1:]):
        for i in range(n):
            j = (i + 1) % n
            tris += [(r0[i], r0[j], r1[j]), (r0[i], r1[j], r1[i])]
    last = rings[-1]
    tris += [(last[i], last[(i + 1) % n], cap_index) for i in range(n)]
    bag_v = np.concatenate(new + [cap[None]])
    taper = corner_taper(q[:, 0], slit)
    ring_jaw = 0.5 - 0.5 * side * taper
    bag_jaw = np.concatenate([np.tile(ring_jaw, len(new)), [0.5]])
    bag_depth = np.concatenate(depth + [[depth[-1][0] + c.bag_cap_mm * MM * s]])
    bag_lip = np.concatenate([np.tile(loop, len(new)), [-1]])
    return bag_v, np.array(tris, dtype=np.int64), bag_jaw, bag_depth, bag_lip


def _orient_like(faces: np.ndarray, new_faces: np.ndarray, upper_lip: np.ndarray) -> np.ndarray:
    """Flip new_faces if they run the same way as the existing faces along the slit's first edge
    (neighbours must cross a shared edge in opposite directions)."""
    a, b = int(upper_lip[0]), int(upper_lip[1])
    for tri in faces[np.any(faces == a, axis=1) & np.any(faces == b, axis=1)]:
        i = int(np.flatnonzero(tri == a)[0])
        if tri[(i + 1) % 3] == b:  # the skin runs a -> b; the bag's first quad also runs a -> b
            return new_faces[:, ::-1].copy()
        return new_faces
    return new_faces


def _arch(slit: np.ndarray, s: float, c: MouthConfig, behind_mm: float, n: int = 15):
    """(n, 3) points along the dental arch and (n, 3) unit directions pointing back, in XY."""
    order = np.argsort(slit[:, 0])
    mid_x = 0.5 * (slit[0, 0] + slit[-1, 0])
    half = 0.5 * abs(slit[-1, 0] - slit[0, 0])
    x = mid_x + np.linspace(-1.0, 1.0, n) * half * c.teeth_span
    y = np.interp(x, slit[order, 0], slit[order, 1])
    z = np.interp(x, slit[order, 0], slit[order, 2])
    tangent = np.gradient(np.stack([x, y], 1), axis=0)
    back = np.stack([-tangent[:, 1], tangent[:, 0]], 1)
    back *= np.sign(back[:, 1:2] + 1e-12)
    back /= np.linalg.norm(back, axis=1, keepdims=True)
    back3 = np.concatenate([back, np.zeros((n, 1))], 1)
    centre = np.stack([x, y, z], 1) + back3 * behind_mm * MM * s
    return centre, back3


def _teeth(slit, s, c: MouthConfig, upper: bool):
    """A row of teeth as one closed block bent along the arch. -> (verts (N, 3), faces (M, 3))."""
    behind = c.teeth_behind_mm + (0.0 if upper else c.lower_teeth_behind_mm)
    bottom, top = c.upper_teeth_mm if upper else c.lower_teeth_mm
    centre, back = _arch(slit, s, c, behind)
    t = c.teeth_thickness_mm * MM * s
    up = np.array([0.0, 0.0, 1.0])
    corners = [centre + up * bottom * MM * s, centre + up * top * MM * s,
               centre + up * top * MM * s + back * t, centre + up * bottom * MM * s + back * t]
    v = np.stack(corners, axis=1).reshape(-1, 3)  # (n * 4, 3), section by section
    n = len(centre)
    f = []
    for i in range(n - 1):
        for k in range(4):
            a, b = 4 * i + k, 4 * i + (k + 1) % 4
            f += [(a, b, b + 4), (a, b + 4, a + 4)]
    f += [(0, 2, 1), (0, 3, 2), (4 * (n - 1), 4 * (n - 1) + 1, 4 * (n - 1) + 2),
          (4 * (n - 1), 4 * (n - 1) + 2, 4 * (n - 1) + 3)]
    mesh = trimesh.Trimesh(v, np.array(f), process=False)
    if mesh.volume < 0:
        mesh.invert()
    return np.asarray(mesh.vertices), np.asarray(mesh.faces, dtype=np.int64)


def _tongue(slit, s, c: MouthConfig):
    """A flattened ellipsoid on the floor of the mouth. -> (verts, faces)."""
    sphere = trimesh.creation.icosphere(subdivisions=2)
    mid = slit[len(slit) // 2]
    half = 0.5 * abs(slit[-1, 0] - slit[0, 0])
    radii = np.array([min(c.tongue_radii_mm[0] * MM * s, 0.8 * half), c.tongue_radii_mm[1] * MM * s,
                      c.tongue_radii_mm[2] * MM * s])
    centre = np.array([0.5 * (slit[0, 0] + slit[-1, 0]), mid[1] + c.tongue_centre_mm[0] * MM * s,
                       mid[2] + c.tongue_centre_mm[1] * MM * s])
    return np.asarray(sphere.vertices) * radii + centre, np.asarray(sphere.faces, dtype=np.int64)


def _surface_jaw_weight(verts, faces, lm, upper_lip, lower_lip, slit, region, bag_jaw, n_cut):
    """(V,) jaw weight of the skin and bag: JawField's switch away from the lips, fixed values on
    the slit (upper 0, lower 1, tapering to 1/2 at the corners) and the bag, harmonic in between."""
    field = JawField(lm)
    d, half = field.below(verts)
    gate = field.gate(verts)
    value = (d > 0).astype(np.float64)
    taper = corner_taper(verts[:, 0], slit)
    value[upper_lip] = 0.5 - 0.5 * taper[upper_lip]
    value[lower_lip] = 0.5 + 0.5 * taper[lower_lip]
    value[n_cut:] = bag_jaw
    fixed = np.abs(d) >= half
    fixed[upper_lip] = fixed[lower_lip] = True
    fixed[n_cut:] = True
    # Solve only where it matters: the gated face (the rest is multiplied by ~0 anyway).
    region_mask = gate > 1e-4
    region_mask[n_cut:] = True
    idx = np.flatnonzero(region_mask)
    local = -np.ones(len(verts), np.int64)
    local[idx] = np.arange(len(idx))
    sub_faces = local[faces[region_mask[faces].all(axis=1)]]
    out = value.copy()
    free = np.flatnonzero(~fixed[idx])
    if len(free):
        lap, mass = cotangent_laplacian(verts[idx], sub_faces)
        con = np.flatnonzero(fixed[idx])
        solver = ConstrainedSolver(lap, mass, con, free, order=1)
        out[idx[free]] = solver.solve(value[idx[con]][:, None])[:, 0]
    out = np.clip(out, 0.0, 1.0)
    out[:n_cut] *= gate[:n_cut]
    return out


def recolour_interior(texture: np.ndarray, faces: np.ndarray, loop_uvs: np.ndarray,
                      mouth: MouthGeometry, dilate_px: int = 2, sliver_m: float = 0.002) -> np.ndarray:
    """Paint the mouth's interior parts into a baked texture: texture (T, T, 3) uint8 (row 0 = top),
    faces (F, 3), loop_uvs (F, 3, 2) (origin bottom-left) -> a new (T, T, 3) uint8.

    Colours come from mouth.interior_rgb per vertex, interpolated over each triangle. The painted
    charts grow by dilate_px into texels no triangle covers, so bilinear lookups at their edges do
    not pick up the bake's skin colours."""
    import scipy.ndimage as ndi

    size_h, size_w = texture.shape[:2]
    faces = np.asarray(faces, dtype=np.int64)
    # The bag's first rings (within sliver_m of the lips) keep the bake's lip colour: the sliver
    # ring is thinner than a texel, and bilinear lookups on the lips' edge would otherwise pick up
    # the dark lining and draw a seam along the shut lips.
    painted_vertex = mouth.region > SKIN
    if mouth.cavity_depth_m is not None:
        painted_vertex &= ~((mouth.region == CAVITY) & (mouth.cavity_depth_m < sliver_m))
    interior = np.flatnonzero(painted_vertex[faces].any(axis=1))
    uv = np.asarray(loop_uvs, dtype=np.float64)
    px = np.stack([uv[..., 0] * size_w, (1.0 - uv[..., 1]) * size_h, np.zeros(uv.shape[:2])], axis=2)  # (F, 3, 3)

    def draw(which: np.ndarray):
        corners = torch.as_tensor(px[which].reshape(-1, 3), dtype=torch.float32)
        return rasterize(corners, torch.arange(3 * len(which)).view(-1, 3), size_h, size_w)

    frags = draw(interior)
    tri = frags.tri_id.numpy()
    painted = tri >= 0
    colour = mouth.interior_rgb[faces[interior]].astype(np.float64)  # (I, 3 corners, 3)
    # Skin corners of a bag triangle (the lip edge) take the lining colour of its other corners.
    skin_corner = ~painted_vertex[faces[interior]]
    own = np.where(skin_corner[..., None], 0.0, colour).sum(axis=1)
    fill = own / np.maximum((~skin_corner).sum(axis=1), 1)[:, None]
    colour = np.where(skin_corner[..., None], fill[:, None, :], colour)
    rows, cols = np.nonzero(painted)
    bary = frags.bary.numpy()[rows, cols]
    out = np.array(texture, copy=True)
    out[rows, cols] = np.clip(np.einsum("nk,nkc->nc", bary, colour[tri[rows, cols]]), 0, 255).astype(np.uint8)
    if dilate_px:
        grow = ndi.binary_dilation(painted, iterations=dilate_px) & ~painted
        # Only texels no skin triangle covers may take the interior colours; the skin triangles
        # that could cover them are the ones whose boxes touch the grown ring.
        table = np.pad(grow.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        lo = np.clip(np.floor(px[..., :2].min(axis=1)).astype(int), 0, [size_w, size_h])
        hi = np.clip(np.ceil(px[..., :2].max(axis=1)).astype(int) + 1, 0, [size_w, size_h])
        hits = table[hi[:, 1], hi[:, 0]] - table[lo[:, 1], hi[:, 0]] - table[hi[:, 1], lo[:, 0]] + table[lo[:, 1], lo[:, 0]]
        near = np.setdiff1d(np.flatnonzero(hits > 0), interior)
        if len(near):
            grow &= draw(near).tri_id.numpy() < 0
        _, (ri, ci) = ndi.distance_transform_edt(~painted, return_indices=True)
        out[grow] = out[ri[grow], ci[grow]]
    return out
