"""HybrIK-X's analytical inverse kinematics for SMPL-X (71 joints, 54 twists).

As `SMPLXLayer.hybrik` of HybrIK (Li et al. 2023): the 55 SMPL-X joints plus 16
leaf joints (toes, mouth, eyes, fingertips; `smplx_constants.LEAF_NAMES`) and a twist
(cos, sin) per non-root joint give the 55 local rotations, which pose the SMPL-X mesh.

Three modes, as the released layer:
  'eval'  (layer.eval(), naive=False): Kabsch (SVD) fits at the root and the joints
          with several children; the knees and elbows aim at their child's target
          from their own posed position (adaptive); the jaw opens from the mouth's
          top and bottom points, its angle reduced by 10 degrees.
  'naive' (layer.eval(), naive=True; what HybrIK-X's networks call): Kabsch fits,
          every single-child joint swings onto its child's target bone.
  'train' (layer.train()): as 'naive' with the fits replaced by HybrIK's "main child
          then the others' mean about it" construction.
The joints are solved one depth of the tree at a time (`_LEVELS`, 10 levels): the
single-child joints of a level (up to ten finger joints) in one vectorised swing-twist,
the root, the multi-child joints (Kabsch) and the 'eval' knees, elbows and jaw one by
one; the same arithmetic as joint by joint, in a program ~3x smaller (faster compiles).
As the released layer, the target skeleton's bone vectors carry no gradient
(`.detach()`); gradients reach the twists, the shape and (in 'eval') the knees' and
elbows' targets; the vertices' shaped template carries none either.
"""

from __future__ import annotations


import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from hybrik_jax import errors
from hybrik_jax import utils
from hybrik_jax.body import geometry
from hybrik_jax.body import lbs
from hybrik_jax.body import smplx as sx
from hybrik_jax.body import smplx_constants as xc

MODES = ('eval', 'naive', 'train')
NUM_JOINTS_71 = 71
NUM_TWISTS = 54
_EPS = 1e-8
_JAW_SLACK = 10 / 180 * 3.14  # the released layer's 10 degrees (with pi ~ 3.14)
# The child each multi-child joint is fitted on first (the released layer's choice).
_MAIN_CHILD = {9: 12, 15: 70, 20: 25, 21: 40}
_ADAPTIVE = (4, 5, 18, 19)  # knees and elbows ('eval')
_JAW, _MOUTH_BOTTOM, _MOUTH_TOP = 22, 57, 70


def _children() -> dict[int, tuple[int, ...]]:
  """Children used at each joint 1..54, the main child first (static)."""
  parents = xc.SMPLX71_PARENTS
  out = {}
  for i in range(1, xc.NUM_JOINTS):
    kids = [c for c in range(1, NUM_JOINTS_71) if parents[c] == i]
    if len(kids) > 1:
      main = _MAIN_CHILD[i]
      # The head's fit ignores the jaw.
      kids = [main] + [c for c in kids if c != main and not (i == 15 and c == _JAW)]
    out[i] = tuple(kids)
  return out


_CHILDREN = _children()


def _levels() -> tuple[tuple[int, ...], ...]:
  """Joints 1..54 grouped by depth in the tree (each group needs only the one above)."""
  depth = {0: 0}
  for i in range(1, xc.NUM_JOINTS):
    depth[i] = depth[xc.SMPLX71_PARENTS[i]] + 1
  return tuple(tuple(i for i in range(1, xc.NUM_JOINTS) if depth[i] == d)
               for d in range(1, max(depth.values()) + 1))


_LEVELS = _levels()


def _mv(m, v):
  return jnp.einsum('bij,bj->bi', m, v)


def _mtv(m, v):
  return jnp.einsum('bji,bj->bi', m, v)


def _rodrigues(axis, cos, sin):
  """(B, 3) unit-ish axis, (B,) cos, sin -> (B, 3, 3) I + sin K + (1 - cos) K^2."""
  k = geometry.skew(axis)
  eye = jnp.eye(3, dtype=axis.dtype)
  return eye + sin[:, None, None] * k + (1 - cos)[:, None, None] * (k @ k)


def _swing_parts(a, b):
  """HybrIK's regularised swing a -> b: (axis, cos, sin), eps 1e-8 as released."""
  n = jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1)
  c = jnp.cross(a, b)
  cn = geometry.norm(c)
  cos = jnp.sum(a * b, -1) / (n + _EPS)
  sin = cn / (n + _EPS)
  return c / (cn[:, None] + _EPS), cos, sin


def _swing(a, b):
  return _rodrigues(*_swing_parts(a, b))


def _swing_twist_traced(child_rest, child_target, phi):
  """(N, 3) rest and target child bones, (N, 2) twist -> (N, 3, 3) swing @ twist."""
  spin_axis = child_rest / jnp.linalg.norm(child_rest, axis=-1, keepdims=True)
  return _swing(child_rest, child_target) @ _rodrigues(spin_axis, phi[:, 0], phi[:, 1])


_swing_twist_jit = jax.jit(_swing_twist_traced)  # one program per group size, op by op


def _swing_twist(child_rest, child_target, phi):
  """`_swing_twist_traced`, compiled once per group size when run op by op; under
  a trace (jit, export) inline, no nested jit (jax2onnx cannot convert the
  operations it rebinds, e.g. jnp.stack, inside a nested jit body)."""
  if isinstance(child_rest, jax.core.Tracer):
    return _swing_twist_traced(child_rest, child_target, phi)
  return _swing_twist_jit(child_rest, child_target, phi)


def _kabsch(targets, rests, solver: str = 'svd'):
  """(B, K, 3) targets and rests -> (B, 3, 3) least-squares rotation rests -> targets
  (solver 'svd' or 'horn': `geometry.closest_rotation[_horn]`, equal to float
  precision; Horn's has no SVD, for exported graphs)."""
  m = jnp.einsum('bki,bkj->bij', targets, rests)
  if solver == 'horn':
    return geometry.closest_rotation_horn(m)
  return geometry.closest_rotation(m)


def _main_then_mean(targets, rests):
  """Train-mode fit: swing the first child exactly, then the others' mean about it."""
  main_t, main_r = targets[:, 0], rests[:, 0]
  r_main = _swing(main_r, main_t)
  up = main_t / jnp.linalg.norm(main_t, axis=-1, keepdims=True)
  mean_t = jnp.mean(targets[:, 1:], axis=1)
  mean_r = _mv(r_main, jnp.mean(rests[:, 1:], axis=1))
  across = lambda v: v - jnp.sum(v * up, -1, keepdims=True) * up
  return _swing(across(mean_r), across(mean_t)) @ r_main


def _pelvis_train(targets, rests):
  """Train-mode root: spine1 (the last pelvis child) first, then the hips' mean."""
  order = jnp.asarray([2, 0, 1])
  t, r = targets[:, order], rests[:, order]
  # The released root normalises the spine with eps (children: without).
  up = t[:, 0] / (jnp.linalg.norm(t[:, 0], axis=-1, keepdims=True) + _EPS)
  r_main = _swing(r[:, 0], t[:, 0])
  mean_t = jnp.mean(t[:, 1:], axis=1)
  mean_r = _mv(r_main, jnp.mean(r[:, 1:], axis=1))
  across = lambda v: v - jnp.sum(v * up, -1, keepdims=True) * up
  return _swing(across(mean_r), across(mean_t)) @ r_main


def _jaw(rel_pose, rel_rest, head_chain):
  """The 'eval' jaw: the mouth's opening angle about the rest opening axis, less 10 deg."""
  bottom = _mtv(head_chain, rel_pose[:, _MOUTH_BOTTOM])
  top = _mtv(head_chain, rel_pose[:, _MOUTH_TOP])
  _, cos1, sin1 = _swing_parts(top, bottom)
  rest_bottom = rel_rest[:, _MOUTH_BOTTOM]
  rest_top = rel_rest[:, _MOUTH_TOP].at[:, 0].set(rest_bottom[:, 0])
  axis2, cos2, sin2 = _swing_parts(rest_top, rest_bottom)
  rot = _rodrigues(axis2, cos1, sin1) @ jnp.swapaxes(_rodrigues(axis2, cos2, sin2), 1, 2)
  aa = geometry.matrix_to_axis_angle(rot)
  angle = geometry.norm(aa)
  safe = jnp.where(angle > 0, angle, 1.0)
  scale = jnp.where(angle > 0, jnp.maximum(angle - _JAW_SLACK, 0.0) / safe, 0.0)
  return geometry.axis_angle_to_matrix(aa * scale[:, None])


def inverse_kinematics(pose_skeleton: jnp.ndarray, phis: jnp.ndarray,
                       rest_joints: jnp.ndarray, mode: str = 'eval',
                       kabsch: str = 'svd') -> jnp.ndarray:
  """HybrIK-X's IK: 71 target joints + 54 twists -> 55 local rotations.

  Args:
    pose_skeleton: (B, 71, 3) target joints, metres (only bone vectors matter).
    phis: (B, 54, 2) twist (cos, sin) of joints 1..54 (normalised here).
    rest_joints: (B, 71, 3) the shaped rest skeleton (`rest_joints71`).
    mode: 'eval', 'naive' or 'train' (module docstring).
    kabsch: the least-squares fits' solver, 'svd' or 'horn' (no SVD: what
      exported graphs use; the same rotations to float precision).

  Returns:
    (B, 55, 3, 3) local rotations.
  """
  if mode not in MODES:
    raise errors.InputError(f'mode must be one of {MODES}, got {mode!r}')
  utils.check_shape('pose_skeleton', pose_skeleton, (None, NUM_JOINTS_71, 3))
  batch = pose_skeleton.shape[0]
  utils.check_shape('phis', phis, (batch, NUM_TWISTS, 2))
  utils.check_shape('rest_joints', rest_joints, (batch, NUM_JOINTS_71, 3))
  naive = mode != 'eval'
  parents = np.asarray(xc.SMPLX71_PARENTS)
  rel_rest = rest_joints.at[:, 1:].add(-rest_joints[:, parents[1:]])
  target = jax.lax.stop_gradient(pose_skeleton)
  rel_pose = target.at[:, 1:].add(-target[:, parents[1:]])
  final = pose_skeleton - pose_skeleton[:, :1] + rel_rest[:, :1]
  phis = phis / (jnp.linalg.norm(phis, axis=-1, keepdims=True) + _EPS)

  root_kids = [1, 2, 3]
  if mode == 'train':
    root = _pelvis_train(rel_pose[:, root_kids], rel_rest[:, root_kids])
  else:
    root = _kabsch(rel_pose[:, root_kids], rel_rest[:, root_kids], kabsch)
  chain, blocks = {0: root}, [((0,), root[:, None])]
  posed_rest = {0: rel_rest[:, 0]}

  def posed(i):  # the rest joint i posed by its ancestors (for the adaptive joints)
    if i not in posed_rest:
      p = parents[i]
      posed_rest[i] = posed(p) + _mv(chain[p], rel_rest[:, i])
    return posed_rest[i]

  for level in _LEVELS:
    plain = []  # single-child joints of this depth, solved together below
    for i in level:
      p = parents[i]
      kids = _CHILDREN[i]
      if len(kids) > 1:
        targets = jnp.einsum('bji,bkj->bki', chain[p], rel_pose[:, list(kids)])
        rests = rel_rest[:, list(kids)]
        rot = _main_then_mean(targets, rests) if mode == 'train' else _kabsch(
            targets, rests, kabsch)
      elif i == _JAW and not naive:
        rot = _jaw(rel_pose, rel_rest, chain[p])
      elif i in _ADAPTIVE and not naive:
        child = kids[0]
        child_target = _mtv(chain[p], final[:, child] - posed(i))
        rot = _swing_twist(rel_rest[:, child], child_target, phis[:, i - 1])
      else:
        plain.append(i)
        continue
      chain[i] = chain[p] @ rot
      blocks.append(((i,), rot[:, None]))
    if plain:
      # One vectorised swing-twist for the whole group: (B, G) flattened to B * G.
      kids = [_CHILDREN[i][0] for i in plain]
      parent_chain = jnp.stack([chain[parents[i]] for i in plain], 1)  # (B, G, 3, 3)
      target = jnp.einsum('bgji,bgj->bgi', parent_chain, rel_pose[:, kids])
      flat = lambda x: x.reshape((-1,) + x.shape[2:])
      rot = _swing_twist(flat(rel_rest[:, kids]), flat(target),
                         flat(phis[:, [i - 1 for i in plain]]))
      rot = rot.reshape(batch, len(plain), 3, 3)
      group_chain = parent_chain @ rot
      for k, i in enumerate(plain):
        chain[i] = group_chain[:, k]
      blocks.append((tuple(plain), rot))
  order = [i for ids, _ in blocks for i in ids]
  rots = jnp.concatenate([r for _, r in blocks], axis=1)
  return rots[:, np.argsort(order)]


# The child whose rest bone each joint 1..54 twists about (its main child).
TWIST_CHILD = tuple(_CHILDREN[i][0] for i in range(1, xc.NUM_JOINTS))


def twist_angles(rot_mats: jnp.ndarray, rest_joints: jnp.ndarray) -> jnp.ndarray:
  """The twist (cos, sin) of each joint 1..54: the inverse of the IK's twist input.

  Each local rotation R_j = swing @ twist about the rest bone from joint j to
  `TWIST_CHILD[j - 1]` (swing-twist decomposition, `geometry.twist_about`); (1, 0)
  where undefined. With these, the IK ('naive' / 'train') on the posed joints gives
  back every rotation it solves by swing-twist (the single-child joints).

  Args:
    rot_mats: (B, 55, 3, 3) local rotations.
    rest_joints: (B, 71, 3) the shaped rest skeleton (`rest_joints71`), metres.

  Returns:
    (B, 54, 2); row i belongs to joint i + 1.
  """
  utils.check_shape('rot_mats', rot_mats, (None, xc.NUM_JOINTS, 3, 3))
  utils.check_shape('rest_joints', rest_joints, (rot_mats.shape[0], NUM_JOINTS_71, 3))
  joints = list(range(1, xc.NUM_JOINTS))
  axes = rest_joints[:, list(TWIST_CHILD)] - rest_joints[:, joints]
  return geometry.twist_about(rot_mats[:, 1:], axes)


def rest_joints71(model: sx.SMPLXModel, betas: jnp.ndarray,
                  expression: jnp.ndarray | None = None) -> jnp.ndarray:
  """(B, 71, 3): the 55 regressed rest joints, then the 16 leaf vertices, metres."""
  v_shaped = sx.shape_blend(model, betas, expression)
  joints = jnp.einsum('jv,bvc->bjc', model.J_regressor, v_shaped)
  return jnp.concatenate([joints, v_shaped[:, np.asarray(xc.LEAF_VERTEX_IDS)]], 1)


@flax.struct.dataclass
class HybrIKXOutput:
  """HybrIK-X's posed body, root-aligned (unless transl is given).

  Attributes:
    vertices: (B, 10475, 3) metres.
    joints: (B, 127, 3) the 55 joints, smplx's 21 vertex joints and 51 landmarks.
    joints_55: (B, 55, 3) forward kinematics of the rest joints.
    rot_mats: (B, 55, 3, 3) the IK's local rotations.
  """
  vertices: jnp.ndarray
  joints: jnp.ndarray
  joints_55: jnp.ndarray
  rot_mats: jnp.ndarray


def hybrik(model: sx.SMPLXModel, betas: jnp.ndarray, pose_skeleton: jnp.ndarray,
           phis: jnp.ndarray, expression: jnp.ndarray | None = None,
           transl: jnp.ndarray | None = None, mode: str = 'eval',
           kabsch: str = 'svd') -> HybrIKXOutput:
  """`SMPLXLayer.hybrik` (HybrIK-X): skeleton + twists + shape -> rotations and mesh.

  Args:
    model: the SMPL-X model.
    betas: (B, NB) or (B, NB + 1) (kid blend last) shape coefficients.
    pose_skeleton: (B, 71, 3) target joints, metres, root-relative.
    phis: (B, 54, 2) twists (cos, sin).
    expression: optional (B, NE) expression (None: zeros).
    transl: optional (B, 3): added to everything; without it everything is
      root-aligned (minus the posed pelvis), as the released layer.
    mode: 'eval', 'naive' or 'train'.
    kabsch: 'svd' or 'horn' (`inverse_kinematics`).
  """
  if expression is None:
    expression = jnp.zeros((betas.shape[0], model.num_expression), betas.dtype)
  v_shaped = sx.shape_blend(model, betas, expression)
  joints = jnp.einsum('jv,bvc->bjc', model.J_regressor, v_shaped)
  rest = jnp.concatenate([joints, v_shaped[:, np.asarray(xc.LEAF_VERTEX_IDS)]], 1)
  rot_mats = inverse_kinematics(pose_skeleton, phis, rest, mode, kabsch)
  batch = rot_mats.shape[0]
  vertices, posed, _ = lbs.linear_blend_skinning(
      v_shaped, rot_mats, model.J_regressor, model.posedirs, model.lbs_weights,
      model.parents, template_gradient=False)
  all_joints = jnp.concatenate([posed, sx.extra_joints(model, vertices)], 1)
  if transl is not None:
    utils.check_shape('transl', transl, (batch, 3))
    shift = transl[:, None]
  else:
    shift = -all_joints[:, :1]
  return HybrIKXOutput(vertices=vertices + shift, joints=all_joints + shift,
                       joints_55=posed + shift, rot_mats=rot_mats)


