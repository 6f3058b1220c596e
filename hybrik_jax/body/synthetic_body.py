"""The procedural synthetic body: SMPL's array shapes and kinematic tree.

`synthetic_smpl_model(seed)` builds (once per process and seed) a body model
with exactly SMPL's shapes (6890 vertices, 13776 faces, 24 joints, 10 shape
components, 207 pose features) from a designed skeleton, so the project runs
end to end without the SMPL files (tests, synthetic_humans). Write it as an
SMPL pickle with `smpl_io.save_smpl_pkl`.
"""

from __future__ import annotations

import functools
import time

import jax.numpy as jnp
import numpy as np
import scipy.optimize

from hybrik_jax.body import constants
from hybrik_jax.body.smpl import NUM_POSE_FEATURES
from hybrik_jax.body.smpl import SMPLModel


# --------------------------------------------------------------------------------------
# The synthetic body

# Designed rest joints (metres; y up, face +z, left at +x). Left side; right mirrors.
_JOINTS_LEFT = {
    0: (0.0, 0.0, 0.0),          # pelvis
    1: (0.075, -0.085, -0.005),  # left hip
    3: (0.0, 0.11, -0.015),      # spine1
    4: (0.095, -0.47, 0.005),    # left knee
    6: (0.0, 0.245, 0.0),        # spine2
    7: (0.085, -0.87, -0.035),   # left ankle
    9: (0.0, 0.30, 0.01),        # spine3
    10: (0.105, -0.925, 0.085),  # left foot (ball)
    12: (0.0, 0.515, -0.02),     # neck
    13: (0.075, 0.425, -0.01),   # left collar
    15: (0.0, 0.58, 0.02),       # head (jaw)
    16: (0.18, 0.445, -0.02),    # left shoulder
    18: (0.44, 0.435, -0.035),   # left elbow
    20: (0.69, 0.44, -0.03),     # left wrist
    22: (0.775, 0.435, -0.035),  # left hand
    24: (0.0, 0.79, 0.02),       # head top (leaf)
    25: (0.87, 0.43, -0.035),    # left middle finger tip (leaf)
    27: (0.11, -0.955, 0.175),   # left big toe (leaf)
}
_MIRROR = {1: 2, 4: 5, 7: 8, 10: 11, 13: 14, 16: 17, 18: 19, 20: 21, 22: 23,
           25: 26, 27: 28}

# Cross-section profiles of each bone (by child joint of the 29-tree): knots
# (t along the bone, in-plane half width W, half depth D), metres. Left side.
_PROFILES = {
    3: ((0, .155, .10), (1, .14, .095)),                      # pelvis -> spine1
    6: ((0, .14, .095), (1, .145, .10)),                      # spine1 -> spine2
    9: ((0, .145, .10), (1, .15, .10)),                       # spine2 -> spine3
    12: ((0, .15, .10), (.55, .15, .09), (.8, .07, .06), (1, .055, .05)),  # -> neck
    15: ((0, .055, .05), (1, .06, .06)),                      # neck -> head
    24: ((0, .06, .07), (.2, .08, .095), (.6, .085, .095), (.8, .075, .085),
         (.92, .055, .06), (1, .035, .04)),                   # head
    1: ((0, .10, .09), (1, .09, .085)),                       # pelvis -> hip
    4: ((0, .085, .085), (.5, .07, .07), (1, .055, .055)),    # thigh
    7: ((0, .055, .055), (.3, .055, .06), (1, .037, .04)),    # calf
    10: ((0, .04, .04), (1, .045, .03)),                      # ankle -> ball
    27: ((0, .045, .03), (1, .018, .015)),                    # ball -> toe
    13: ((0, .06, .06), (1, .065, .06)),                      # spine3 -> collar
    16: ((0, .065, .06), (1, .055, .055)),                    # collar -> shoulder
    18: ((0, .05, .05), (1, .04, .04)),                       # upper arm
    20: ((0, .04, .04), (1, .028, .025)),                     # forearm
    22: ((0, .025, .03), (1, .018, .045)),                    # wrist -> hand
    25: ((0, .015, .045), (1, .008, .02)),                    # fingers
}

# Designed Human3.6M joints (left side; right mirrors), metres.
_H36M_LEFT = {
    0: (0.0, -0.05, 0.0),        # pelvis
    4: (0.09, -0.075, 0.0),      # left hip
    5: None,                     # left knee = SMPL knee
    6: None,                     # left ankle = SMPL ankle
    7: (0.0, 0.22, -0.01),       # torso
    8: (0.0, 0.45, -0.02),       # neck (thorax)
    9: (0.0, 0.63, 0.07),        # nose
    10: (0.0, 0.72, 0.0),        # head
    11: None, 12: None, 13: None,  # left shoulder, elbow, wrist = SMPL
}
_H36M_FROM_SMPL = {5: 4, 6: 7, 11: 16, 12: 18, 13: 20}
_H36M_MIRROR = {4: 1, 5: 2, 6: 3, 11: 14, 12: 15, 13: 16}

# Mesh topology sizes: a tree of _TREE_EDGES segments along the 29-joint skeleton,
# _RINGS rings between its front and back seams: V = 2 * E * (R + 1) + 2 = 6890.
_TREE_EDGES = 287
_RINGS = 11
_LEAF_CAP = {24: 0.035, 25: 0.008, 26: 0.008, 27: 0.018, 28: 0.018}


def _mirror_x(p):
  return (-p[0], p[1], p[2])


def _designed_joints29(seed: int) -> np.ndarray:
  j = np.zeros((29, 3))
  for k, p in _JOINTS_LEFT.items():
    j[k] = p
    if k in _MIRROR:
      j[_MIRROR[k]] = _mirror_x(p)
  if seed:
    # Small symmetric proportion changes: scale each bone by 1 +- 3%.
    rng = np.random.default_rng(seed)
    scale = 1.0 + 0.03 * rng.uniform(-1, 1, 29)
    for k, m in _MIRROR.items():
      scale[m] = scale[k]
    out = j.copy()
    for c in range(1, 29):
      p = constants.SMPL29_PARENTS[c]
      out[c] = out[p] + scale[c] * (j[c] - j[p])
    j = out - out[0]
  return j


def _profile(child: int):
  side_child = {v: k for k, v in _MIRROR.items()}.get(child, child)
  return np.asarray(_PROFILES[side_child], np.float64)


@functools.lru_cache(maxsize=None)
def _topology():
  """The fixed mesh topology: tree nodes, Euler tour, vertex layout, faces.

  Returns a dict of numpy arrays (see the keys below). Built on the designed
  joints of seed 0; only positions change with shape.
  """
  joints = _designed_joints29(0)
  parents29 = constants.SMPL29_PARENTS
  children = list(range(1, 29))
  lengths = np.array([np.linalg.norm(joints[c] - joints[parents29[c]]) for c in children])
  segs = np.maximum(1, np.round(lengths / lengths.sum() * _TREE_EDGES)).astype(int)
  while segs.sum() != _TREE_EDGES:  # fix rounding on the longest bones
    k = np.argmax(lengths / segs) if segs.sum() < _TREE_EDGES else np.argmax(
        np.where(segs > 1, segs / lengths, -1))
    segs[k] += 1 if segs.sum() < _TREE_EDGES else -1
  # Tree nodes: 29 joint nodes first, then the interior samples of each bone.
  node_bone = list(range(-1, 28))   # bone index (child - 1) a joint node ends
  node_t = [1.0] * 29
  node_bone[0] = -1
  adjacency = {n: [] for n in range(29)}
  for b, c in enumerate(children):
    p = parents29[c]
    prev = p
    for s in range(1, segs[b]):
      n = len(node_t)
      node_bone.append(b)
      node_t.append(s / segs[b])
      adjacency[n] = []
      adjacency[prev].append(n)
      adjacency[n].append(prev)
      prev = n
    adjacency[prev].append(c)
    adjacency[c].append(prev)
  num_nodes = len(node_t)
  assert num_nodes == _TREE_EDGES + 1, num_nodes
  node_bone = np.asarray(node_bone)
  node_t = np.asarray(node_t)
  pos = _node_positions(joints, node_bone, node_t)
  # Euler tour: at each node, leave by the first edge counter-clockwise (seen from
  # the front, +z) after the one we came by: the outline of the body, traced
  # counter-clockwise with the body on the left.
  ang = lambda a, b: np.arctan2(pos[b, 1] - pos[a, 1], pos[b, 0] - pos[a, 0])
  tour = []  # directed edges (a, b)

  def visit(v, parent):
    ref = ang(v, parent) if parent is not None else -np.pi / 2
    kids = [n for n in adjacency[v] if n != parent]
    kids.sort(key=lambda n: (ang(v, n) - ref) % (2 * np.pi))
    for n in kids:
      tour.append((v, n))
      visit(n, v)
      tour.append((n, v))

  import sys  # pylint: disable=g-import-not-at-top
  limit = sys.getrecursionlimit()
  sys.setrecursionlimit(max(limit, 4 * num_nodes))
  try:
    visit(0, None)
  finally:
    sys.setrecursionlimit(limit)
  tour = np.asarray(tour)                       # (M, 2), M = 2 * edges
  m = len(tour)
  visit_node = tour[:, 1]                       # corner at the head of edge i
  visit_prev = tour[:, 0]                       # incoming edge from
  visit_next = tour[(np.arange(m) + 1) % m, 1]  # outgoing edge to
  # Vertex layout (before the leaf reordering): front seam nodes, back seam nodes,
  # then ring r (1.._RINGS) of visit i at 2 * N + (r - 1) * M + i.
  n_nodes = num_nodes
  ring_index = lambda r, i: 2 * n_nodes + (r - 1) * m + i
  rings = [visit_node]  # ring 0: front seam (node ids)
  for r in range(1, _RINGS + 1):
    rings.append(ring_index(r, np.arange(m)))
  rings.append(n_nodes + visit_node)  # ring R+1: back seam
  faces = []
  i0 = np.arange(m)
  i1 = (i0 + 1) % m
  for r in range(_RINGS + 1):
    a, b = rings[r][i0], rings[r][i1]
    c, d = rings[r + 1][i1], rings[r + 1][i0]
    faces.append(np.stack([a, c, b], 1))
    faces.append(np.stack([a, d, c], 1))
  faces = np.concatenate(faces)
  vertex_node = np.concatenate(
      [np.arange(n_nodes), np.arange(n_nodes)] + [visit_node] * _RINGS)
  # The leaf vertices: middle ring (theta = pi / 2) at each leaf's single visit.
  mid = (_RINGS + 1) // 2
  natural_leaf = [ring_index(mid, int(np.flatnonzero(visit_node == leaf)[0]))
                  for leaf in range(24, 29)]
  order = np.arange(len(vertex_node))  # order[new] = old
  for target, natural in zip(constants.LEAF_VERTEX_IDS, natural_leaf):
    where = int(np.flatnonzero(order == natural)[0])
    order[target], order[where] = order[where], order[target]
  inverse = np.empty_like(order)
  inverse[order] = np.arange(len(order))
  return dict(node_bone=node_bone, node_t=node_t, adjacency=adjacency,
              visit_node=visit_node, visit_prev=visit_prev, visit_next=visit_next,
              faces=inverse[faces], order=order, vertex_node_old=vertex_node,
              vertex_node=vertex_node[order], num_nodes=n_nodes)


def _node_positions(joints29, node_bone, node_t, radius_scale=None):
  """Tree node positions: joints, leaf nodes inset by their cap, bone samples."""
  parents29 = constants.SMPL29_PARENTS
  ends = joints29.copy()
  for leaf, cap in _LEAF_CAP.items():
    d = joints29[leaf] - joints29[parents29[leaf]]
    s = 1.0 if radius_scale is None else radius_scale[leaf - 1, 0]
    ends[leaf] = joints29[leaf] - cap * s * d / np.linalg.norm(d)
  pos = ends[:29].copy()
  interior = np.arange(29, len(node_t))
  child = node_bone[interior] + 1
  par = np.asarray(parents29)[child]
  t = node_t[interior][:, None]
  pos = np.concatenate([pos, (1 - t) * ends[par] + t * ends[child]])
  return pos


def _bone_radii(bone: int, t: np.ndarray) -> np.ndarray:
  prof = _profile(bone + 1)
  return np.stack([np.interp(t, prof[:, 0], prof[:, 1]),
                   np.interp(t, prof[:, 0], prof[:, 2])], -1)


def _build_vertices(joints29: np.ndarray, radius_scale: np.ndarray) -> np.ndarray:
  """Vertices (natural order) of the body around the skeleton `joints29`.

  Args:
    joints29: (29, 3) designed joints (leaf joints at the body's extremities).
    radius_scale: (28, 2) scale of each bone's (W, D) profile.
  """
  topo = _topology()
  parents29 = np.asarray(constants.SMPL29_PARENTS)
  node_bone, node_t = topo['node_bone'], topo['node_t']
  pos = _node_positions(joints29, node_bone, node_t, radius_scale)
  n = len(pos)
  ez = np.array([0.0, 0.0, 1.0])
  bone_dir = pos[np.arange(1, 29)] - pos[parents29[1:]]
  bone_dir /= np.linalg.norm(bone_dir, axis=1, keepdims=True)
  bone_front = ez - bone_dir[:, 2:3] * bone_dir
  bone_front /= np.linalg.norm(bone_front, axis=1, keepdims=True)
  # Per node: front direction f and the radii of each incident bone end.
  front = np.zeros((n, 3))
  depth = np.zeros(n)
  width_end = {}  # (node, bone) -> W at that node
  for v in range(n):
    if v >= 29:
      b = node_bone[v]
      front[v] = bone_front[b]
      w, d = _bone_radii(b, node_t[v]) * radius_scale[b]
      width_end[(v, b)] = w
      depth[v] = d
      continue
    incident = []
    if v > 0:
      incident.append((v - 1, 1.0))  # the bone ending at joint v
    incident += [(c - 1, 0.0) for c in range(1, 29) if parents29[c] == v]
    f = np.zeros(3)
    for b, t in incident:
      f += bone_front[b]
      w, d = _bone_radii(b, t) * radius_scale[b]
      width_end[(v, b)] = w
      depth[v] = max(depth[v], d)
    front[v] = f / np.linalg.norm(f)

  def edge_bone(a, b):
    nb = [node_bone[x] for x in (a, b) if x >= 29]
    if nb:
      return nb[0]
    return (b if parents29[b] == a else a) - 1

  vn, vp, vx = topo['visit_node'], topo['visit_prev'], topo['visit_next']
  m = len(vn)
  t_in = pos[vn] - pos[vp]
  t_out = pos[vx] - pos[vn]
  t_in /= np.linalg.norm(t_in, axis=1, keepdims=True)
  t_out /= np.linalg.norm(t_out, axis=1, keepdims=True)
  f = front[vn]
  w_in = np.array([width_end[(vn[i], edge_bone(vp[i], vn[i]))] for i in range(m)])
  w_out = np.array([width_end[(vn[i], edge_bone(vn[i], vx[i]))] for i in range(m)])
  width = np.maximum(w_in, w_out)
  # The corner's outward direction: the bisector, or where a thin branch leaves a
  # thick trunk (a limb from the torso), the trunk's side, so that the trunk's
  # surface stays closed over the branch's root.
  travel = np.where((w_in > 1.2 * w_out)[:, None], 2 * t_in,
                    np.where((w_out > 1.2 * w_in)[:, None], 2 * t_out, t_in + t_out))
  side = np.cross(travel, f)
  norm = np.linalg.norm(side, axis=1, keepdims=True)
  leaf = norm[:, 0] < 1e-6
  tip = t_in - np.sum(t_in * f, 1, keepdims=True) * f
  side = np.where(leaf[:, None], tip / np.linalg.norm(tip, axis=1, keepdims=True),
                  side / np.maximum(norm, 1e-12))
  theta = np.arange(1, _RINGS + 1) * np.pi / (_RINGS + 1)
  q, d = pos[vn], depth[vn][:, None]
  rings = (q[None] + np.sin(theta)[:, None, None] * (width[:, None] * side)[None]
           + np.cos(theta)[:, None, None] * (d * f)[None])
  return np.concatenate([pos + depth[:, None] * front, pos - depth[:, None] * front,
                         rings.reshape(-1, 3)])


def _shape_deltas(joints29: np.ndarray):
  """The 10 shape components: (10, 29, 3) joint offsets, (10, 28, 2) radius scales."""
  parents29 = constants.SMPL29_PARENTS
  sign = np.sign(joints29[:, 0])
  desc = {k: {k} for k in range(29)}
  for c in range(28, 0, -1):  # descendants
    desc[parents29[c]] |= desc[c]
  offsets = np.zeros((10, 29, 3))
  scales = np.ones((10, 28, 2))
  torso = [2, 5, 8, 11]    # bones (child - 1): spine1, spine2, spine3, neck
  limbs = [b for b in range(28) if b not in torso + [14, 23]]  # not torso, head

  def move(k, idx, delta):
    for j in desc[idx]:
      offsets[k, j] += delta

  # 0: stature, everything 6% larger about the pelvis.
  offsets[0] = 0.06 * joints29
  scales[0] *= 1.03
  # 1: weight, girth of everything.
  scales[1, :, :] = 1.15
  offsets[1, [1, 2], 0] = 0.012 * sign[[1, 2]]
  # 2: leg length.
  for k, dy in ((4, -0.025), (7, -0.03)):
    move(2, k, (0, dy, 0))
    move(2, _MIRROR[k], (0, dy, 0))
  # 3: arm length.
  for k, dx in ((18, 0.02), (20, 0.022), (22, 0.006)):
    move(3, k, (dx, 0, 0))
    move(3, _MIRROR[k], (-dx, 0, 0))
  # 4: shoulder width.
  for k, dx in ((13, 0.01), (16, 0.02)):
    move(4, k, (dx, 0, 0))
    move(4, _MIRROR[k], (-dx, 0, 0))
  scales[4, [8, 11], 0] = 1.08
  # 5: torso length.
  for k, dy in ((6, 0.012), (9, 0.012), (12, 0.012), (13, 0.012), (14, 0.012)):
    move(5, k, (0, dy, 0))
  # 6: head size.
  move(6, 24, (0, 0.02, 0))
  scales[6, [14, 23], :] = 1.12
  # 7: hip width.
  move(7, 1, (0.012, 0, 0))
  move(7, 2, (-0.012, 0, 0))
  scales[7, [0, 1, 2], 0] = 1.1
  # 8: belly, deeper torso.
  scales[8, [2, 5, 8], 1] = 1.2
  # 9: limb girth.
  scales[9, limbs, :] = 1.15
  return offsets, scales


def _convex_weights(points: np.ndarray, target: np.ndarray) -> np.ndarray:
  """Convex weights w (sum 1, >= 0) over `points` (K, 3) with w @ points = target.

  The least-norm change of the uniform weights, or NNLS if that goes negative.
  """
  k = len(points)
  a = np.concatenate([points.T, np.ones((1, k))])  # (4, K)
  b = np.concatenate([target, [1.0]])
  w0 = np.full(k, 1.0 / k)
  w = w0 + a.T @ np.linalg.solve(a @ a.T, b - a @ w0)
  if w.min() < 0:
    w, _ = scipy.optimize.nnls(a, b)
  if np.abs(a @ w - b).max() > 1e-9 or w.min() < 0:
    raise RuntimeError(f'no convex weights reach {target}')
  return w


def _segment_distance(p, a, b):
  ab = b - a
  t = np.clip(((p - a) @ ab) / max(ab @ ab, 1e-12), 0, 1)
  return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


def synthetic_smpl_model(seed: int = 0) -> SMPLModel:
  """A procedural human body with SMPL's array shapes and kinematic tree.

  Rest pose T-pose-like, pelvis at the origin, y up, facing +z, metres, about
  1.75 m tall. The mesh is one closed, consistently oriented genus-0 surface of
  6890 vertices and 13776 faces: a tree of 287 segments along the 29-joint
  skeleton carries a front and a back seam; 11 rings, each following the body
  outline (the Euler tour of the tree), sweep from front to back seam with
  elliptic cross-sections around each bone (V = 2 * 287 * 12 + 2, F = 2V - 4).
  Inside the body, where limbs join the torso, the surface overlaps and touches
  itself (it is closed and oriented, not free of self-intersections); the
  outside is a smooth union of the limbs. `synthetic_joints29(seed)` gives the
  designed (29, 3) rest joints. The leaf vertices
  `constants.LEAF_VERTEX_IDS` sit at the head top, the left/right middle finger
  tips and the left/right big toes. Skinning weights decay with the distance of
  each vertex's skeleton anchor to each joint's bones; J_regressor and
  J_regressor_h36m rows are convex vertex weights that reproduce the designed
  joints exactly; the 10 shape components change stature, girth, leg and arm
  length, shoulder width, torso length, head size, hip width, belly depth and
  limb girth; pose blend shapes are small smooth bulges near joints.

  Deterministic for a seed (seed 0: the designed proportions; other seeds vary
  bone lengths by up to 3% and the pose blend shapes). Cached: the same object
  for the same seed; built in about 0.5 s (`build_synthetic_smpl_model`).
  """
  return _cached_synthetic_smpl_model(int(seed))


@functools.lru_cache(maxsize=8)
def _cached_synthetic_smpl_model(seed: int) -> SMPLModel:
  return build_synthetic_smpl_model(seed)


def build_synthetic_smpl_model(seed: int = 0) -> SMPLModel:
  """`synthetic_smpl_model` without the cache (builds it anew)."""
  topo = _topology()
  rng = np.random.default_rng(seed)
  joints29 = _designed_joints29(seed)
  ones = np.ones((28, 2))
  verts = _build_vertices(joints29, ones)
  offsets, scales = _shape_deltas(joints29)
  shapedirs = np.stack([_build_vertices(joints29 + offsets[k], scales[k]) - verts
                        for k in range(constants.NUM_BETAS)], -1)
  order = topo['order']
  verts, shapedirs = verts[order], shapedirs[order]
  anchor_node = topo['vertex_node']
  node_pos = _node_positions(joints29, topo['node_bone'], topo['node_t'])
  anchor = node_pos[anchor_node]
  nv = len(verts)

  # Skinning weights from the distance of each anchor to each joint's bones.
  parents29 = constants.SMPL29_PARENTS
  dist = np.full((len(node_pos), 24), np.inf)
  for c in range(1, 29):
    p = parents29[c]
    dist[:, p] = np.minimum(dist[:, p],
                            _segment_distance(node_pos, joints29[p], joints29[c]))
  sigma = 0.035
  logits = -(dist**2 - dist.min(1, keepdims=True)**2) / sigma**2
  w = np.exp(logits)
  w[w < 1e-3] = 0.0
  w /= w.sum(1, keepdims=True)
  weights = w[anchor_node]

  # Regressors: convex weights over the vertices anchored near each target.
  adjacency = topo['adjacency']
  by_node = [[] for _ in range(len(node_pos))]
  for v, n in enumerate(anchor_node):
    by_node[n].append(v)

  def regress_row(node, target):
    nodes = {node} | set(adjacency[node])
    for n in list(nodes):
      nodes |= set(adjacency[n])
    idx = np.asarray(sorted(v for n in nodes for v in by_node[n]))
    row = np.zeros(nv)
    row[idx] = _convex_weights(verts[idx], target)
    return row

  j_reg = np.stack([regress_row(j, joints29[j]) for j in range(24)])
  h36m_targets = np.zeros((17, 3))
  for k, p in _H36M_LEFT.items():
    h36m_targets[k] = joints29[_H36M_FROM_SMPL[k]] if p is None else p
  for k, m in _H36M_MIRROR.items():
    h36m_targets[m] = _mirror_x(h36m_targets[k])
  if seed:  # follow the varied proportions: offset from the nearest designed joint
    base = _designed_joints29(0)
    for k in range(17):
      near = np.argmin(np.linalg.norm(base - h36m_targets[k], axis=1))
      h36m_targets[k] += joints29[near] - base[near]
  h36m_rows = []
  for k in range(17):
    near = int(np.argmin(np.linalg.norm(node_pos - h36m_targets[k], axis=1)))
    h36m_rows.append(regress_row(near, h36m_targets[k]))
  h36m_reg = np.stack(h36m_rows)

  # Pose blend shapes: small bulges along the anchor->vertex direction where the
  # skinning weights of a joint blend (4 w (1 - w)), 1 cm per unit feature.
  normal = verts - anchor
  normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
  coeff = rng.normal(size=(23, 9)) * 0.01
  bump = 4 * weights[:, 1:] * (1 - weights[:, 1:])  # (V, 23)
  posedirs = np.einsum('vj,jm,vc->vcjm', bump, coeff, normal).reshape(
      nv, 3, NUM_POSE_FEATURES)

  dtype = jnp.float32
  return SMPLModel(
      v_template=jnp.asarray(verts, dtype),
      shapedirs=jnp.asarray(shapedirs, dtype),
      posedirs=jnp.asarray(posedirs.reshape(-1, NUM_POSE_FEATURES).T, dtype),
      J_regressor=jnp.asarray(j_reg, dtype),
      J_regressor_h36m=jnp.asarray(h36m_reg, dtype),
      lbs_weights=jnp.asarray(weights, dtype),
      faces=jnp.asarray(topo['faces'], jnp.int32),
  )


def synthetic_joints29(seed: int = 0) -> np.ndarray:
  """(29, 3) the designed rest joints of `synthetic_smpl_model(seed)`, metres."""
  return _designed_joints29(seed)


if __name__ == '__main__':
  start = time.perf_counter()
  build_synthetic_smpl_model(0)
  print(f'synthetic_smpl_model built in {time.perf_counter() - start:.2f} s')
