"""The procedural synthetic SMPL-X body: SMPL-X's array shapes and kinematic tree.

`synthetic_smplx_arrays(seed)` builds (once per process and seed) the arrays of an
SMPL-X model file in SMPL-X's own key layout (10475 vertices, 20908 faces, 55
joints, 10 shape + 10 expression components, 486 pose features, hand PCA, face
landmarks) and a kid template, so SMPL-X code runs without the licensed files.
`write_synthetic_smplx(dir, seed)` writes them as SMPLX_NEUTRAL.npz / .pkl and
smplx_kid_template.npy, read back by `smplx_io.load_smplx` (the real loader path).

How it is made: the body, arms, legs and head are the synthetic SMPL body
(`synthetic_body.synthetic_smpl_model`, 6890 vertices) with its mitten hand folded
into a short palm; each finger is a closed capsule of 40 rings x 8 (its base pole
welded to a palm vertex); each eye a closed UV sphere (9 x 13); the mouth a cup
open towards the inside of the head (17 rings x 8) on the jaw. Vertex count and
Euler characteristic work out to SMPL-X's exactly (V = 6890 + 10 * 321 + 2 * 119 +
137, F = 2 V - 42). Vertices are ordered so that the ids SMPL-X names (fingertips,
big toes, eyes, nose, ears, heels, HybrIK-X's mouth vertices 8947 / 8990, with
faces[19731, 2] == 8947) sit where their names say.
"""

from __future__ import annotations

import functools
import os
import pickle

import numpy as np
import scipy.optimize
import scipy.sparse

from hybrik_jax.body import constants
from hybrik_jax.body import smplx_constants as xc
from hybrik_jax.body import smplx_io
from hybrik_jax.body import synthetic_body

_FINGER_RINGS, _FINGER_SIDES = 40, 8
_EYE_RINGS, _EYE_SIDES = 9, 13
_MOUTH_RINGS, _MOUTH_SIDES = 17, 8
_PALM_FOLD = 0.15  # the mitten beyond the knuckles keeps 15% of its length

# Left hand, metres, relative to the SMPL body's hand joint (22): finger base
# offsets (y, z) and segment lengths (3 phalanges and the tip), thumb separately.
_FINGERS = {  # name: (first joint offset (x, y, z), direction, lengths, radius)
    'index': ((0.0, 0.0, 0.022), (1.0, 0.0, 0.05), (0.036, 0.024, 0.018, 0.014), .0085),
    'middle': ((0.005, 0.0, 0.0), (1.0, 0.0, 0.0), (0.040, 0.027, 0.020, 0.014), .009),
    'pinky': ((-0.012, 0.0, -0.04), (1.0, 0.0, -0.1), (0.028, 0.018, 0.015, 0.012), .007),
    'ring': ((-0.002, 0.0, -0.021), (1.0, 0.0, -0.05), (0.037, 0.025, 0.019, 0.013), .008),
    'thumb': ((-0.055, -0.01, 0.035), (0.6, -0.15, 0.78), (0.035, 0.03, 0.022, 0.016), .0095),
}
_FINGER_ORDER = ('index', 'middle', 'pinky', 'ring', 'thumb')  # SMPL-X's order
_EYE_CENTRE = (0.032, 0.70, 0.103)   # left eye, relative to the pelvis
_EYE_RADIUS = 0.0125
_MOUTH_CENTRE = (0.0, 0.635, 0.1)
_MOUTH_RADII = (0.024, 0.011, 0.018)
_JAW_JOINT = (0.0, 0.645, 0.045)


def _uv_sphere(rings: int, sides: int):
  """Unit UV sphere along +z: (rings * sides + 2, 3) vertices, faces, ring angles.

  Vertex 0 is the -z pole, the last the +z pole; ring r (r = 0..rings-1) at polar
  angle pi (r + 1) / (rings + 1) from -z. Faces outward (counter-clockwise).
  """
  theta = np.pi * np.arange(1, rings + 1) / (rings + 1)
  phi = 2 * np.pi * np.arange(sides) / sides
  ring = np.stack([np.sin(theta)[:, None] * np.cos(phi)[None],
                   np.sin(theta)[:, None] * np.sin(phi)[None],
                   -np.cos(theta)[:, None] * np.ones(sides)[None]], -1)
  verts = np.concatenate([[[0, 0, -1.0]], ring.reshape(-1, 3), [[0, 0, 1.0]]])
  idx = lambda r, s: 1 + r * sides + s % sides
  top = rings * sides + 1
  faces = []
  for s in range(sides):
    faces.append((0, idx(0, s + 1), idx(0, s)))
    faces.append((top, idx(rings - 1, s), idx(rings - 1, s + 1)))
    for r in range(rings - 1):
      a, b = idx(r, s), idx(r, s + 1)
      c, d = idx(r + 1, s + 1), idx(r + 1, s)
      faces.append((a, b, c))
      faces.append((a, c, d))
  return verts, np.asarray(faces, np.int64)


def _frame(direction: np.ndarray) -> np.ndarray:
  """(3, 3) rotation whose third column is `direction` (normalised)."""
  z = direction / np.linalg.norm(direction)
  helper = np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0, 0])
  x = np.cross(helper, z)
  x /= np.linalg.norm(x)
  return np.stack([x, np.cross(z, x), z], 1)


def _convex_weights(points: np.ndarray, target: np.ndarray) -> np.ndarray:
  """Non-negative weights summing to 1 with weights @ points == target."""
  k = len(points)
  a = np.concatenate([points.T, np.ones((1, k))])
  b = np.concatenate([target, [1.0]])
  w0 = np.full(k, 1.0 / k)
  w = w0 + a.T @ np.linalg.solve(a @ a.T, b - a @ w0)
  if w.min() < 0:
    w, _ = scipy.optimize.nnls(a, b)
  if np.abs(a @ w - b).max() > 1e-9:
    raise RuntimeError(f'no convex weights reach {target}')
  return w


def _finger_geometry(hand: np.ndarray, side: float):
  """Joint positions and capsule stations of one hand's five fingers.

  Returns a list (SMPL-X finger order) of (joints (3, 3), tip (3,), stations
  (R, 3) ring centres, radii (R,), segment (R,) joint slot 0..2 per ring).
  """
  out = []
  for name in _FINGER_ORDER:
    offset, direction, lengths, radius = _FINGERS[name]
    mirror = np.array([side, 1.0, 1.0])
    base = hand + np.asarray(offset) * mirror
    d = np.asarray(direction) * mirror
    d /= np.linalg.norm(d)
    cum = np.concatenate([[0.0], np.cumsum(lengths)])
    points = base + cum[:, None] * d   # 3 joints then the tip
    # Rings: one exactly at each joint, the rest spread along the finger from a
    # little behind the first joint (inside the palm) to just before the tip.
    start, end = -0.012, cum[-1] - 0.35 * radius
    s = np.linspace(start, end, _FINGER_RINGS - 3)
    s = np.sort(np.concatenate([s, cum[:3]]))
    radii = radius * np.where(s > cum[2], 0.85, 1.0) * np.where(
        s > end - 0.006, np.sqrt(np.clip((end + 0.35 * radius - s) / 0.01, 0.2, 1.0)),
        1.0)
    segment = np.clip(np.searchsorted(cum[:3], s, side='right') - 1, 0, 2)
    out.append((points[:3], points[3], base + s[:, None] * d, radii, segment, d, s,
                cum))
  return out


@functools.lru_cache(maxsize=4)
def synthetic_smplx_arrays(seed: int = 0) -> dict[str, np.ndarray]:
  """The synthetic SMPL-X model's arrays in SMPL-X's file layout (cached per seed).

  Keys (float64 unless said): v_template (10475, 3), shapedirs (10475, 3, 20)
  (10 shape then 10 expression components), posedirs (10475, 3, 486), J_regressor
  (55, 10475), weights (10475, 55), kintree_table (2, 55) int64, f (20908, 3)
  int64, hands_componentsl / hands_componentsr (45, 45), hands_meanl / hands_meanr
  (45,), lmk_faces_idx (51,) int64, lmk_bary_coords (51, 3),
  dynamic_lmk_faces_idx (79, 17) int64, dynamic_lmk_bary_coords (79, 17, 3), and
  kid_template (10475, 3) (not an SMPL-X file key: written as its own .npy).
  Treat the arrays as read-only (they are shared by the cache).
  """
  return _build(int(seed))


def _build(seed: int) -> dict[str, np.ndarray]:
  rng = np.random.default_rng(1000 + seed)
  smpl = synthetic_body.synthetic_smpl_model(seed)
  j29 = synthetic_body.synthetic_joints29(seed)
  body_v = np.asarray(smpl.v_template, np.float64)
  body_dirs = np.asarray(smpl.shapedirs, np.float64)               # (6890, 3, 10)
  body_w = np.asarray(smpl.lbs_weights, np.float64)                # (6890, 24)
  body_jreg = np.asarray(smpl.J_regressor, np.float64)             # (24, 6890)
  body_posedirs = np.asarray(smpl.posedirs, np.float64)            # (207, 6890 * 3)
  body_faces = np.asarray(smpl.faces, np.int64)
  nb = len(body_v)

  # Fold the mitten beyond the knuckles (joint 22 / 23) into a short palm:
  # x -> k + f (x - k), linear in the vertices (k is regressed), so applied
  # alike to the template and to each shape direction.
  hand_vertices = {}
  for hand_joint in (22, 23):
    side = np.sign(j29[hand_joint, 0])
    hv = np.flatnonzero((np.argmax(body_w, 1) == hand_joint)
                        & (side * (body_v[:, 0] - j29[hand_joint, 0]) > 0))
    hand_vertices[hand_joint] = hv

  def fold(v):  # v: (6890, 3, ...) linear quantity
    v = v.copy()
    for hand_joint, hv in hand_vertices.items():
      k = np.tensordot(body_jreg[hand_joint], v, axes=(0, 0))[0]
      v[hv, 0] = k + _PALM_FOLD * (v[hv, 0] - k)
    return v

  body_v = fold(body_v)
  body_dirs = fold(body_dirs)

  parts_v, parts_f, parts_w, parts_dirs, parts_anchor = [], [], [], [], []
  joints = np.zeros((xc.NUM_JOINTS, 3))
  joints[:22] = j29[:22]
  jreg_rows = {}   # joint -> (new-vertex indices (natural order), weights)
  next_index = nb
  named = {}       # name -> natural vertex index

  def add_part(verts, faces, weights, anchor):
    nonlocal next_index
    parts_v.append(verts)
    parts_f.append(faces)
    parts_w.append(weights)
    parts_anchor.append(anchor)
    start = next_index
    next_index += len(verts)
    return start

  # Fingers: closed capsules, base pole welded to the nearest palm vertex.
  sphere_v, sphere_f = _uv_sphere(_FINGER_RINGS, _FINGER_SIDES)
  for hand_joint, wrist, first in ((22, 20, 25), (23, 21, 40)):
    side = np.sign(j29[hand_joint, 0])
    for f_idx, (fj, tip, stations, radii, segment, d, s, cum) in enumerate(
        _finger_geometry(j29[hand_joint], side)):
      jid = first + 3 * f_idx
      joints[jid:jid + 3] = fj
      rot = _frame(d)
      ring = sphere_v[1:-1].reshape(_FINGER_RINGS, _FINGER_SIDES, 3)
      circle = ring[..., :2] / np.linalg.norm(ring[..., :2], axis=-1, keepdims=True)
      local = np.concatenate([circle * radii[:, None, None] * np.array([1.0, 0.8]),
                              np.zeros(circle.shape[:2] + (1,))], -1)
      verts = stations[:, None] + local @ rot.T                   # (R, S, 3)
      hv = hand_vertices[hand_joint]
      base_pole = int(hv[np.argmin(np.linalg.norm(body_v[hv] - stations[0], axis=1))])
      verts = np.concatenate([verts.reshape(-1, 3), [tip]])       # without pole 0
      faces = sphere_f.copy() - 1                                  # pole 0 -> -1
      start = next_index
      faces = np.where(faces < 0, base_pole, faces + start)
      # Skinning: the ring's joint, blended over 4 mm around joints 2 and 3.
      w = np.zeros((_FINGER_RINGS, 55))
      for r in range(_FINGER_RINGS):
        t = s[r]
        w[r, jid + segment[r]] = 1.0
        for k in (1, 2):
          blend = np.clip((t - cum[k]) / 0.004 + 0.5, 0, 1)
          if abs(t - cum[k]) < 0.002:
            w[r] = 0.0
            w[r, jid + k - 1] = 1 - blend
            w[r, jid + k] = blend
      inside = s < -0.004  # the part inside the palm follows the wrist
      w[inside] = 0.0
      w[inside, wrist] = 1.0
      weights = np.concatenate([np.repeat(w, _FINGER_SIDES, 0), [np.eye(55)[jid + 2]]])
      add_part(verts, faces, weights, np.full(len(verts), base_pole))
      for k in range(3):
        r = int(np.flatnonzero(np.isclose(s, cum[k]))[0])
        jreg_rows[jid + k] = (start + r * _FINGER_SIDES + np.arange(_FINGER_SIDES),
                              np.full(_FINGER_SIDES, 1.0 / _FINGER_SIDES))
      tip_name = ('l' if side > 0 else 'r') + _FINGER_ORDER[f_idx]
      named[tip_name] = start + len(verts) - 1

  # Eyes: closed UV spheres looking forward (+z); joint = their centre.
  eye_v, eye_f = _uv_sphere(_EYE_RINGS, _EYE_SIDES)
  head_shift = j29[15] - synthetic_body.synthetic_joints29(0)[15]
  for jid, side, name in ((23, 1.0, 'leye'), (24, -1.0, 'reye')):
    centre = np.array(_EYE_CENTRE) * np.array([side, 1, 1]) + head_shift
    joints[jid] = centre
    start = next_index
    w = np.tile(np.eye(55)[jid], (len(eye_v), 1))
    near = int(np.argmin(np.linalg.norm(body_v - centre, axis=1)))
    add_part(centre + _EYE_RADIUS * eye_v, eye_f + start, w, np.full(len(eye_v), near))
    jreg_rows[jid] = (start + np.arange(len(eye_v)), np.full(len(eye_v), 1 / len(eye_v)))
    named[name] = start + len(eye_v) - 1  # the front pole (+z)

  # Mouth: a cup on the jaw, its -z pole (inside the head) removed.
  m_v, m_f = _uv_sphere(_MOUTH_RINGS, _MOUTH_SIDES)
  centre = np.array(_MOUTH_CENTRE) + head_shift
  verts = centre + m_v[1:] * np.array(_MOUTH_RADII)
  keep = np.all(m_f != 0, axis=1)
  start = next_index
  faces = m_f[keep] - 1 + start
  w = np.tile(np.eye(55)[22], (len(verts), 1))
  near = int(np.argmin(np.linalg.norm(body_v - centre, axis=1)))
  add_part(verts, faces, w, np.full(len(verts), near))
  # Mouth bottom: the lowest front vertex of the cup.
  front = verts[:, 2] > centre[2] + 0.5 * _MOUTH_RADII[2]
  named['mouth_bottom'] = start + int(np.flatnonzero(front)[np.argmin(verts[front, 1])])
  joints[22] = np.array(_JAW_JOINT) + head_shift

  # Named body vertices (SMPL's leaf ids and extremes of the body mesh).
  head = np.flatnonzero(np.argmax(body_w, 1) == 15)
  def pick(cands, score):
    return int(cands[np.argmax(score(body_v[cands]))])
  named['LBigToe'] = constants.LEAF_VERTEX_IDS[3]
  named['RBigToe'] = constants.LEAF_VERTEX_IDS[4]
  for side, pre, foot, ankle in ((1, 'L', 10, 7), (-1, 'R', 11, 8)):
    fv = np.flatnonzero(np.isin(np.argmax(body_w, 1), (foot, ankle)))
    named[pre + 'Heel'] = pick(fv, lambda p: -p[:, 2] - 2 * p[:, 1])
    named[pre + 'SmallToe'] = pick(fv, lambda p, s=side: p[:, 2] + s * 0.8 * p[:, 0])
  named['nose'] = pick(head, lambda p: p[:, 2] - 4 * np.abs(p[:, 1] - 0.67))
  named['lear'] = pick(head, lambda p: p[:, 0] - 4 * np.abs(p[:, 1] - 0.68))
  named['rear'] = pick(head, lambda p: -p[:, 0] - 4 * np.abs(p[:, 1] - 0.68))
  named['mouth_top'] = pick(
      head, lambda p: p[:, 2] - 8 * np.abs(p[:, 1] - 0.655) - 8 * np.abs(p[:, 0]))

  # Assemble in natural order.
  v_nat = np.concatenate([body_v] + parts_v)
  nv = len(v_nat)
  assert nv == xc.NUM_VERTICES, nv
  f_nat = np.concatenate([body_faces] + parts_f)
  assert len(f_nat) == xc.NUM_FACES, len(f_nat)
  w_body = np.zeros((nb, 55))
  w_body[:, :22] = body_w[:, :22]
  w_body[:, 20] += body_w[:, 22]
  w_body[:, 21] += body_w[:, 23]
  w_nat = np.concatenate([w_body] + parts_w)
  w_nat /= w_nat.sum(1, keepdims=True)
  anchor = np.concatenate([np.arange(nb)] + parts_anchor)

  # Shape: body vertices as the SMPL body; attached parts follow their anchor.
  dirs_nat = np.concatenate([body_dirs, body_dirs[anchor[nb:]]])
  # Expression: smooth displacements of the face (head front, eyes region, mouth).
  is_face = np.zeros(nv, bool)
  is_face[head[body_v[head, 2] > j29[15, 2] + 0.03]] = True
  is_face[nb + 10 * 321 + 2 * len(eye_v):] = True
  freq = rng.normal(size=(xc.NUM_EXPRESSION, 3, 3)) * 40
  phase = rng.uniform(0, 2 * np.pi, (xc.NUM_EXPRESSION, 3))
  expr = np.zeros((nv, 3, xc.NUM_EXPRESSION))
  for k in range(xc.NUM_EXPRESSION):
    expr[is_face, :, k] = 0.004 * np.sin(v_nat[is_face] @ freq[k] + phase[k])
  shapedirs = np.concatenate([dirs_nat, expr], -1)

  # Pose blend shapes: the body's (joints 1..21); small bulges on the fingers / mouth.
  posedirs = np.zeros((xc.NUM_POSE_FEATURES, nv * 3))
  body_pd = body_posedirs.reshape(23, 9, nb * 3)
  posedirs.reshape(54, 9, nv * 3)[:21, :, :nb * 3] = body_pd[:21]
  normal = v_nat - v_nat[anchor]
  normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
  coeff = rng.normal(size=(54, 9)) * 0.003
  pd = posedirs.reshape(54, 9, nv, 3)
  for j in range(22, 55):
    on = np.flatnonzero(w_nat[nb:, j] > 0) + nb
    pd[j - 1][:, on] = coeff[j - 1][:, None, None] * (
        w_nat[on, j, None] * normal[on])[None]

  # Joint regressor.
  jreg = np.zeros((xc.NUM_JOINTS, nv))
  jreg[:22, :nb] = body_jreg[:22]
  for j, (idx, wt) in jreg_rows.items():
    jreg[j, idx] = wt
  jaw_cands = head
  jreg[22, jaw_cands] = _convex_weights(v_nat[jaw_cands], joints[22])

  # Vertex order: the named vertices at SMPL-X's ids.
  targets = {xc.VERTEX_IDS[k]: named[k] for k in xc.VERTEX_IDS}
  targets[xc.MOUTH_BOTTOM_VERTEX] = named['mouth_bottom']
  targets[xc.MOUTH_TOP_VERTEX] = named['mouth_top']
  order = np.arange(nv)  # order[new] = old
  for target, natural in targets.items():
    where = int(np.flatnonzero(order == natural)[0])
    order[target], order[where] = order[where], order[target]
  inverse = np.empty_like(order)
  inverse[order] = np.arange(nv)
  faces = inverse[f_nat]
  # Face 19731 holds the mouth bottom vertex in column 2.
  fi = int(np.flatnonzero(np.any(faces == xc.MOUTH_BOTTOM_VERTEX, axis=1))[0])
  face = faces[fi]
  face = np.roll(face, 2 - int(np.flatnonzero(face == xc.MOUTH_BOTTOM_VERTEX)[0]))
  faces[fi] = faces[xc.MOUTH_BOTTOM_FACE]
  faces[xc.MOUTH_BOTTOM_FACE] = face

  v_template = v_nat[order]
  regressed = jreg[:, order] @ v_template
  err = np.abs(regressed - joints).max()
  assert err < 1e-7, err

  # Hand PCA: orthogonal components with decreasing norms, small mean curl.
  def components():
    q, _ = np.linalg.qr(rng.normal(size=(45, 45)))
    return q.T * (1.0 / (1.0 + 0.15 * np.arange(45)))[:, None]

  head_faces = np.flatnonzero(np.all(np.isin(faces, inverse[head]), axis=1))
  lmk_faces = rng.choice(head_faces, xc.NUM_LANDMARKS, replace=False)
  bary = rng.uniform(0.1, 1.0, (xc.NUM_LANDMARKS, 3))
  dyn_faces = rng.choice(head_faces, (xc.NUM_DYNAMIC_LANDMARK_ANGLES,
                                      xc.NUM_DYNAMIC_LANDMARKS))
  dyn_bary = rng.uniform(0.1, 1.0, dyn_faces.shape + (3,))
  # Kid template: a smaller body (0.62 x) with a relatively bigger head.
  kid = v_template * 0.62
  head_new = inverse[np.flatnonzero(np.isin(np.argmax(w_nat, 1), (12, 15, 22, 23, 24)))]
  kid[head_new] += (v_template[head_new] - joints[15]) * 0.25
  kid += np.array([0.01, 0.3, 0.02])
  kintree = np.stack([np.asarray(xc.SMPLX_PARENTS, np.int64),
                      np.arange(xc.NUM_JOINTS, dtype=np.int64)])
  kintree[0, 0] = 4294967295
  return dict(
      v_template=v_template,
      shapedirs=shapedirs[order],
      posedirs=posedirs.reshape(xc.NUM_POSE_FEATURES, nv, 3)[:, order].reshape(
          xc.NUM_POSE_FEATURES, -1).T.reshape(nv, 3, xc.NUM_POSE_FEATURES),
      J_regressor=jreg[:, order],
      weights=w_nat[order],
      kintree_table=kintree,
      f=faces,
      hands_componentsl=components(), hands_componentsr=components(),
      hands_meanl=0.15 * rng.normal(size=45), hands_meanr=0.15 * rng.normal(size=45),
      lmk_faces_idx=lmk_faces.astype(np.int64),
      lmk_bary_coords=bary / bary.sum(-1, keepdims=True),
      dynamic_lmk_faces_idx=dyn_faces.astype(np.int64),
      dynamic_lmk_bary_coords=dyn_bary / dyn_bary.sum(-1, keepdims=True),
      kid_template=kid,
  )


def file_arrays(seed: int = 0, layout: str = '20') -> dict[str, np.ndarray]:
  """The arrays as an SMPL-X file holds them (no kid template).

  Args:
    seed: the body's seed.
    layout: '20' (shapedirs (V, 3, 20): 10 shape then 10 expression, as the
      SMPL-X v1.0 files) or '400' (shapedirs (V, 3, 400): 300 shape then 100
      expression components, as v1.1; components beyond the first 10 are zero).
  """
  data = {k: v for k, v in synthetic_smplx_arrays(seed).items() if k != 'kid_template'}
  if layout == '400':
    sd = data['shapedirs']
    full = np.zeros(sd.shape[:2] + (xc.SHAPE_SPACE_DIM + xc.EXPRESSION_SPACE_DIM,))
    full[..., :xc.NUM_BETAS] = sd[..., :xc.NUM_BETAS]
    full[..., xc.SHAPE_SPACE_DIM:xc.SHAPE_SPACE_DIM + xc.NUM_EXPRESSION] = sd[
        ..., xc.NUM_BETAS:]
    data['shapedirs'] = full
  elif layout != '20':
    raise ValueError(f"layout must be '20' or '400', got {layout!r}")
  return data


def synthetic_smplx_model(seed: int = 0, kid: bool = True, layout: str = '20'):
  """The synthetic body as an `smplx.SMPLXModel` (float32), with its kid template.

  Built through `smplx_io.model_from_arrays`, the loader's own path.
  """
  kid_template = synthetic_smplx_arrays(seed)['kid_template'] if kid else None
  return smplx_io.model_from_arrays(file_arrays(seed, layout), kid_template,
                                    source=f'synthetic SMPL-X body (seed {seed})')


def write_synthetic_smplx(directory, seed: int = 0, layout: str = '20',
                          kinds=('npz', 'pkl')) -> dict[str, str]:
  """Writes SMPLX_NEUTRAL.npz / .pkl and smplx_kid_template.npy into `directory`.

  Float arrays are written as float32 (as the official files). The .npz holds
  plain arrays (readable with allow_pickle=False); the .pkl a dict of numpy
  values with J_regressor as scipy.sparse csc, as the official pickles.
  Returns {'npz': path, 'pkl': path, 'kid': path} for what was written.
  """
  os.makedirs(directory, exist_ok=True)
  data = {k: v.astype(np.float32) if v.dtype == np.float64 else v
          for k, v in file_arrays(seed, layout).items()}
  paths = {}
  if 'npz' in kinds:
    paths['npz'] = os.path.join(directory, 'SMPLX_NEUTRAL.npz')
    np.savez(paths['npz'], **data)
  if 'pkl' in kinds:
    paths['pkl'] = os.path.join(directory, 'SMPLX_NEUTRAL.pkl')
    pkl = dict(data)
    pkl['J_regressor'] = scipy.sparse.csc_matrix(data['J_regressor'])
    pkl['f'] = data['f'].astype(np.uint32)
    with open(paths['pkl'], 'wb') as f:
      pickle.dump(pkl, f, protocol=2)
  paths['kid'] = os.path.join(directory, 'smplx_kid_template.npy')
  np.save(paths['kid'], synthetic_smplx_arrays(seed)['kid_template'].astype(np.float32))
  return paths
