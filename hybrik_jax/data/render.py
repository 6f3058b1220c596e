"""A z-buffered triangle rasterizer in vectorised numpy, with simple shading.

Used to render the synthetic dataset and to draw predicted meshes in the demo.
Camera convention: points in the camera frame (x right, y down, z forward,
metres), pinhole intrinsics K; pixel (x, y) is sampled at its centre, integer
coordinates as OpenCV (u = fx x / z + cx).

How it works: every face's screen bounding box is enumerated into candidate
pixels (fragments) with one np.repeat; barycentric coordinates come from
per-face edge equations, 1/z from its per-face screen-space plane (exact for
perspective); np.minimum.at keeps the nearest fragment per pixel. Shading is
Lambert + ambient with per-vertex normals interpolated at each pixel (or flat
per-face normals), lit from both sides.
"""

import colorsys

import numpy as np

DEFAULT_LIGHT_DIR = (0.3, -0.6, -1.0)  # towards the light: upper right, in front
NEAR = 1e-3  # metres; faces with a vertex nearer than this are culled
_MAX_FRAGMENTS = 1 << 22  # fragments per chunk (bounds memory)


def _normalize(v: np.ndarray, axis: int = -1) -> np.ndarray:
  n = np.linalg.norm(v, axis=axis, keepdims=True)
  return v / np.maximum(n, 1e-12)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
  """Area-weighted unit vertex normals (V, 3)."""
  v = np.asarray(vertices, np.float64)
  tri = v[faces]
  fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
  idx = np.asarray(faces).reshape(-1)
  vn = np.stack([np.bincount(idx, weights=np.repeat(fn[:, c], 3), minlength=len(v))
                 for c in range(3)], -1)
  return _normalize(vn)


def rasterize(vertices: np.ndarray, faces: np.ndarray, K: np.ndarray,
              image_size: tuple[int, int]):
  """Visibility only: which face covers each pixel, at what depth.

  Args:
    vertices: (V, 3) camera frame, metres.
    faces: (F, 3) int vertex indices.
    K: (3, 3) intrinsics, px.
    image_size: (H, W).

  Returns:
    depth: (H, W) float32 camera z of the nearest surface, inf where empty.
    face_id: (H, W) int32 index of the nearest face, -1 where empty.
    bary: (H, W, 3) float32 perspective-correct barycentric coordinates of the
      pixel centre in that face (zeros where empty).
  """
  h, w = int(image_size[0]), int(image_size[1])
  v = np.asarray(vertices, np.float64)
  faces = np.asarray(faces, np.int64)
  K = np.asarray(K, np.float64)
  if v.ndim != 2 or v.shape[1] != 3:
    raise ValueError(f'vertices must have shape (V, 3), got {v.shape}')
  if faces.ndim != 2 or faces.shape[1] != 3:
    raise ValueError(f'faces must have shape (F, 3), got {faces.shape}')
  if K.shape != (3, 3):
    raise ValueError(f'K must have shape (3, 3), got {K.shape}')

  z = v[:, 2]
  zs = np.where(z > NEAR, z, 1.0)
  uv = (v @ K.T)[:, :2] / zs[:, None]
  inv_z = 1.0 / zs

  fz = z[faces]
  p0, p1, p2 = uv[faces[:, 0]], uv[faces[:, 1]], uv[faces[:, 2]]
  area = ((p1[:, 0] - p0[:, 0]) * (p2[:, 1] - p0[:, 1])
          - (p1[:, 1] - p0[:, 1]) * (p2[:, 0] - p0[:, 0]))
  tri_uv = uv[faces]
  x_lo = np.ceil(tri_uv[..., 0].min(1))
  x_hi = np.floor(tri_uv[..., 0].max(1))
  y_lo = np.ceil(tri_uv[..., 1].min(1))
  y_hi = np.floor(tri_uv[..., 1].max(1))
  keep = ((fz > NEAR).all(1) & (np.abs(area) > 1e-12)
          & (x_hi >= 0) & (y_hi >= 0) & (x_lo <= w - 1) & (y_lo <= h - 1))
  x_lo = np.clip(x_lo, 0, w - 1)
  y_lo = np.clip(y_lo, 0, h - 1)
  x_hi = np.clip(x_hi, 0, w - 1)
  y_hi = np.clip(y_hi, 0, h - 1)
  keep &= (x_hi >= x_lo) & (y_hi >= y_lo)
  fids = np.nonzero(keep)[0]

  # Edge equations: barycentric b_i = a_i x + b_i y + c_i (screen space).
  inv_area = 1.0 / area[fids]
  q0, q1, q2 = p0[fids], p1[fids], p2[fids]

  def edge(pa, pb):  # weight of the vertex opposite the edge (pa, pb)
    ea = (pa[:, 1] - pb[:, 1]) * inv_area
    eb = (pb[:, 0] - pa[:, 0]) * inv_area
    ec = (pa[:, 0] * pb[:, 1] - pa[:, 1] * pb[:, 0]) * inv_area
    return ea, eb, ec

  e0 = edge(q1, q2)
  e1 = edge(q2, q0)
  iz = inv_z[faces[fids]]  # (n, 3)
  # 1/z is linear in screen space: plane coefficients from the barycentrics.
  iz_a = e0[0] * iz[:, 0] + e1[0] * iz[:, 1] + (-e0[0] - e1[0]) * iz[:, 2]
  iz_b = e0[1] * iz[:, 0] + e1[1] * iz[:, 1] + (-e0[1] - e1[1]) * iz[:, 2]
  iz_c = e0[2] * iz[:, 0] + e1[2] * iz[:, 1] + (1.0 - e0[2] - e1[2]) * iz[:, 2]

  bw = (x_hi[fids] - x_lo[fids] + 1).astype(np.int64)
  bh = (y_hi[fids] - y_lo[fids] + 1).astype(np.int64)
  counts = bw * bh

  zbuf = np.full(h * w, np.inf)
  best_f = np.full(h * w, -1, np.int64)
  best_b = np.zeros((h * w, 2))
  # Chunks of faces so that no chunk enumerates more than _MAX_FRAGMENTS pixels.
  csum = np.cumsum(counts)
  start = 0
  n = len(fids)
  while start < n:
    base = csum[start - 1] if start > 0 else 0
    stop = int(np.searchsorted(csum, base + _MAX_FRAGMENTS, side='right'))
    stop = max(stop, start + 1)
    sl = slice(start, stop)
    cnt = counts[sl]
    local_face = np.repeat(np.arange(start, stop), cnt)
    offs = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    bwf = bw[local_face]
    px = x_lo[fids][local_face] + offs % bwf
    py = y_lo[fids][local_face] + offs // bwf
    b0 = e0[0][local_face] * px + e0[1][local_face] * py + e0[2][local_face]
    b1 = e1[0][local_face] * px + e1[1][local_face] * py + e1[2][local_face]
    eps = -1e-9
    inside = (b0 >= eps) & (b1 >= eps) & (b0 + b1 <= 1.0 - eps)
    lf = local_face[inside]
    px, py, b0, b1 = px[inside], py[inside], b0[inside], b1[inside]
    izf = iz_a[lf] * px + iz_b[lf] * py + iz_c[lf]
    depth = 1.0 / np.maximum(izf, 1e-12)
    pix = py.astype(np.int64) * w + px.astype(np.int64)
    np.minimum.at(zbuf, pix, depth)
    win = depth <= zbuf[pix]
    best_f[pix[win]] = fids[lf[win]]
    best_b[pix[win], 0] = b0[win]
    best_b[pix[win], 1] = b1[win]
    start = stop

  covered = best_f >= 0
  face_id = best_f.reshape(h, w).astype(np.int32)
  depth = np.where(covered, zbuf, np.inf).reshape(h, w).astype(np.float32)
  # Screen-space barycentrics -> perspective-correct ones.
  bary = np.zeros((h * w, 3))
  if covered.any():
    idx = np.nonzero(covered)[0]
    fv = faces[best_f[idx]]
    sb = np.stack([best_b[idx, 0], best_b[idx, 1],
                   1.0 - best_b[idx, 0] - best_b[idx, 1]], -1)
    pb = sb * inv_z[fv]
    bary[idx] = pb / np.maximum(pb.sum(-1, keepdims=True), 1e-12)
  return depth, face_id, bary.reshape(h, w, 3).astype(np.float32)


def _as_float_colors(colors) -> np.ndarray:
  c = np.asarray(colors)
  if c.dtype == np.uint8:
    return c.astype(np.float32) / 255.0
  return c.astype(np.float32)


def render_mesh(vertices: np.ndarray, faces: np.ndarray, K: np.ndarray,
                image_size: tuple[int, int], colors=None, background=None,
                light_dir=DEFAULT_LIGHT_DIR, ambient: float = 0.35,
                diffuse: float = 0.65, smooth: bool = True):
  """Renders a triangle mesh with Lambert + ambient shading.

  Args:
    vertices: (V, 3) camera frame, metres (z > 0 in front of the camera).
    faces: (F, 3) int vertex indices.
    K: (3, 3) intrinsics, px.
    image_size: (H, W).
    colors: (V, 3) per-vertex or (F, 3) per-face colours, float in [0, 1] or
      uint8; a single (3,) colour; None for light grey. When V == F the colours
      are taken as per-vertex.
    background: None (black), an (H, W, 3) uint8 image, or a (3,) uint8 colour.
    light_dir: (3,) direction towards the light, camera frame.
    ambient, diffuse: shading weights; a pixel is colour * (ambient + diffuse *
      max(0, n . l)), with n the surface normal facing the camera.
    smooth: interpolate vertex normals (True) or use flat face normals.

  Returns:
    rgb: (H, W, 3) uint8.
    depth: (H, W) float32 camera z of the visible surface, inf on background.
    face_id: (H, W) int32 visible face, -1 on background.
  """
  h, w = int(image_size[0]), int(image_size[1])
  v = np.asarray(vertices, np.float64)
  faces = np.asarray(faces, np.int64)
  depth, face_id, bary = rasterize(v, faces, K, (h, w))

  if background is None:
    rgb = np.zeros((h, w, 3), np.float32)
  else:
    bg = np.asarray(background)
    if bg.dtype != np.uint8:
      raise ValueError(f'background must be uint8 (an image or a colour), got {bg.dtype}')
    if bg.shape == (3,):
      rgb = np.broadcast_to(_as_float_colors(bg.astype(np.uint8)), (h, w, 3)).copy()
    elif bg.shape == (h, w, 3):
      rgb = _as_float_colors(bg.astype(np.uint8)).copy()
    else:
      raise ValueError(f'background must be None, (3,) or ({h}, {w}, 3), got {bg.shape}')

  mask = face_id >= 0
  if mask.any():
    fid = face_id[mask]
    b = bary[mask].astype(np.float64)  # (n, 3)
    fv = faces[fid]  # (n, 3)
    nv, nf = v.shape[0], faces.shape[0]
    if colors is None:
      col = np.full((fid.shape[0], 3), 0.8)
    else:
      c = _as_float_colors(colors)
      if c.shape == (3,):
        col = np.broadcast_to(c, (fid.shape[0], 3))
      elif c.shape == (nv, 3):
        col = np.einsum('nk,nkc->nc', b, c[fv])
      elif c.shape == (nf, 3):
        col = c[fid]
      else:
        raise ValueError(f'colors must be (3,), ({nv}, 3) or ({nf}, 3), got {c.shape}')
    tri = v[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    if smooth:
      vn = vertex_normals(v, faces)
      n = np.einsum('nk,nkc->nc', b, vn[fv])
    else:
      n = fn[fid]
    n = _normalize(n)
    # Point on the surface, to face the normal towards the camera (two-sided).
    p = np.einsum('nk,nkc->nc', b, v[fv])
    flip = np.sum(n * p, -1) > 0
    n[flip] *= -1
    l = _normalize(np.asarray(light_dir, np.float64))
    shade = ambient + diffuse * np.clip(n @ l, 0.0, None)
    rgb[mask] = col * shade[:, None]
  rgb = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
  return rgb, depth, face_id


def part_ids(lbs_weights: np.ndarray) -> np.ndarray:
  """(V,) int: the body part (joint 0..23) with the largest skinning weight."""
  return np.argmax(np.asarray(lbs_weights), axis=-1).astype(np.int32)


def part_palette(num_parts: int = 24) -> np.ndarray:
  """(num_parts, 3) float colours in [0, 1], hues spread so neighbours differ."""
  cols = []
  for i in range(num_parts):
    hue = (i * 0.618033988749895) % 1.0  # golden-ratio hue steps
    sat = 0.55 + 0.35 * ((i * 7) % 3) / 2.0
    val = 0.95 - 0.25 * ((i * 5) % 2)
    cols.append(colorsys.hsv_to_rgb(hue, sat, val))
  return np.asarray(cols, np.float32)


def part_colors(lbs_weights: np.ndarray) -> np.ndarray:
  """(V, 3) float per-vertex colours in [0, 1], one distinct colour per SMPL part.

  Args:
    lbs_weights: (V, 24) skinning weights; each vertex takes the colour of the
      joint with the largest weight.
  """
  w = np.asarray(lbs_weights)
  return part_palette(w.shape[-1])[part_ids(w)]


def mirror_consistent_colors(lbs_weights: np.ndarray, rest_vertices: np.ndarray,
                             faces: np.ndarray, flip_perm) -> np.ndarray:
  """(V, 3) per-vertex colours whose mirror image is a valid image of the mirrored body.

  Left and right parts share a colour (part j and part flip_perm[j]), and each
  part's front (rest-pose vertex normal towards +z, the way the body faces) has
  another colour than its back. A horizontally flipped rendering is then what the
  mirrored pose looks like, as for a person, so flip augmentation and the flip
  test stay consistent with the colours; which side is the left is read from the
  facing and the geometry, not from a colour. (`part_colors`, one colour per
  part, breaks that: after a flip the left arm's colour is on the right arm.)

  Args:
    lbs_weights: (V, J) skinning weights (a vertex's part: its largest weight).
    rest_vertices: (V, 3) rest-pose vertices, metres, the body facing +z.
    faces: (F, 3) vertex indices.
    flip_perm: (J,) ints, the part of the other side (constants.FLIP_PERM_24).
  """
  parts = part_ids(lbs_weights)
  perm = np.asarray(flip_perm)
  if perm.shape != (np.asarray(lbs_weights).shape[-1],):
    raise ValueError(f'flip_perm must have one entry per part, got {perm.shape}')
  group = np.minimum(np.arange(len(perm)), perm)
  rank = np.unique(group, return_inverse=True)[1]  # part -> 0..num_groups-1
  palette = part_palette(2 * (int(rank.max()) + 1))  # front 2k, back 2k + 1
  front = vertex_normals(rest_vertices, faces)[:, 2] >= 0.0
  return palette[2 * rank[parts] + np.where(front, 0, 1)]


def side_view(vertices: np.ndarray, image_size: tuple[int, int],
              angle_deg: float = 90.0, fill: float = 0.8,
              focal_ratio: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
  """Turns a mesh about the camera's vertical axis and frames it (e.g. for a demo).

  The mesh (camera frame) is rotated by `angle_deg` about the vertical (y) axis
  through its bounding-box centre, then moved so that a camera with focal
  length focal_ratio * max(H, W) sees it centred, its larger projected side
  about `fill` of the image.

  Args:
    vertices: (V, 3) camera frame, metres.
    image_size: (H, W).
    angle_deg: rotation about the vertical axis; 90 looks from the mesh's side.
    fill: projected size / image size.
    focal_ratio: focal length / max(H, W).

  Returns:
    vertices: (V, 3) the turned mesh in the new camera frame (z > 0).
    K: (3, 3) intrinsics for render_mesh.
  """
  h, w = int(image_size[0]), int(image_size[1])
  v = np.asarray(vertices, np.float64)
  centre = 0.5 * (v.min(0) + v.max(0))
  a = np.deg2rad(angle_deg)
  rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
  turned = (v - centre) @ rot.T
  f = focal_ratio * max(h, w)
  half = np.abs(turned[:, :2]).max(0)  # half extents in x, y, metres
  depth_x = f * half[0] / (0.5 * fill * w)
  depth_y = f * half[1] / (0.5 * fill * h)
  z = max(depth_x, depth_y) + np.abs(turned[:, 2]).max()
  K = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1.0]])
  return turned + [0.0, 0.0, z], K
