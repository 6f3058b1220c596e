"""HybrIK's analytical twist-and-swing inverse kinematics (Li et al. 2021) in jnp.

Given a posed skeleton, the shaped rest skeleton and one twist angle per bone, the
local rotation of every SMPL joint is solved in kinematic order:

* pelvis (joint 0): the rotation that best fits its three rest bones (to the hips
  and spine1) onto the posed ones, a Kabsch / SVD fit (`geometry.closest_rotation`,
  whose custom JVP stays finite at repeated or zero singular values);
* every other joint j with a child: R_j = swing @ twist. The twist turns about the
  rest bone from j to its child c by the angle phi_{j-1} (given as cos, sin); the
  swing is the shortest-arc rotation from that rest bone onto the target bone,
  expressed in the parent's frame. As in the released HybrIK code (and its
  HybrIK-Transformer copy), the child c of each joint is its first child in index
  order, so spine3 (9) swings towards the neck (12); `spine3_svd=True` instead fits
  spine3 to its three children (neck and collars) like the pelvis, as in
  HybrIK-Transformer's unused "optimized" variant;
* joints whose only child is a leaf (15, 22, 23, 10, 11; `constants.LEAF_PARENT_JOINTS`):
  with all 29 joints they are ordinary swing-twist joints (their child is the leaf
  joint); with 24 joints they take `leaf_rotmats` (HybrIK-Transformer's predicted
  leaf rotations), or the identity without them.

As HybrIK does at inference, the target bone of joint j is taken from where j
actually lands (posed with the rest bone lengths) to the target child, unless that
vector is more than `max_drift` (15 mm) away from the target bone direction scaled to
the rest length, in which case the latter is used (it guards against long chains of
bone-length mismatch). `max_drift=None` always uses the target bone direction
(HybrIK's training-time "naive" IK); `max_drift=float('inf')` never falls back
(the released code's `train=True` branch). On a consistent skeleton all agree.
Checked against the released torch code: with the defaults, rotations agree to
float32 precision (~1e-5) on noisy skeletons; with `spine3_svd=True`, and with 24
joints plus leaf rotations, they agree with HybrIK-Transformer's
`batch_inverse_kinematics_transform_optimized`.

Everything is static Python over the fixed tree; joints are solved in groups (by
depth in the tree by default, all joints of a group at once), which jit unrolls.
All functions are vmap- and grad-safe: degenerate inputs (zero bones, collinear
children, an all-zero skeleton, phi = (0, 0)) give finite values and gradients.
"""

from typing import Sequence

import jax.numpy as jnp

from hybrik_jax import constants
from hybrik_jax import geometry
from hybrik_jax import utils

_PARENTS = constants.SMPL29_PARENTS


def _first_children() -> tuple[int, ...]:
  """Child that defines each joint's swing/twist bone (29-tree, first by index)."""
  children = [-1] * constants.NUM_JOINTS_29
  for j in range(1, constants.NUM_JOINTS_29):
    if children[_PARENTS[j]] < 0:
      children[_PARENTS[j]] = j
  return tuple(children)


# SWING_CHILD[j]: the joint whose rest bone (from j) joint j swings and twists.
SWING_CHILD = _first_children()
PELVIS_CHILDREN = (1, 2, 3)
SPINE3 = 9
SPINE3_CHILDREN = (12, 13, 14)


def _depth(j: int) -> int:
  return 0 if _PARENTS[j] < 0 else 1 + _depth(_PARENTS[j])


# Joints 1..23 grouped by depth: each group depends only on earlier groups.
DEPTH_GROUPS = tuple(
    tuple(j for j in range(1, 24) if _depth(j) == d)
    for d in range(1, 1 + max(_depth(j) for j in range(24))))
# One joint at a time, in index order (parents precede children in SMPL).
JOINT_GROUPS = tuple((j,) for j in range(1, 24))


def _check_inputs(pose_skeleton, rest_joints, phis, leaf_rotmats):
  if pose_skeleton.ndim != 3 or pose_skeleton.shape[1:] not in ((24, 3), (29, 3)):
    raise ValueError('pose_skeleton must have shape (B, 24, 3) or (B, 29, 3), '
                     f'got {tuple(pose_skeleton.shape)}')
  batch = pose_skeleton.shape[0]
  utils.check_shape('rest_joints', rest_joints, (batch, 29, 3))
  utils.check_shape('phis', phis, (batch, 23, 2))
  if leaf_rotmats is not None:
    if pose_skeleton.shape[1] == 29:
      raise ValueError('leaf_rotmats is only used with a 24-joint pose_skeleton; with '
                       '29 joints the leaf-parent rotations come from the leaf joints')
    utils.check_shape('leaf_rotmats', leaf_rotmats, (batch, 5, 3, 3))


def _check_groups(groups) -> None:
  order = [j for group in groups for j in group]
  if sorted(order) != list(range(1, 24)):
    raise ValueError(f'groups must list each of the joints 1..23 exactly once, got {groups}')
  done = {0}
  for group in groups:
    for j in group:
      if _PARENTS[j] not in done:
        raise ValueError(f'groups: joint {j} comes before (or with) its parent '
                         f'{_PARENTS[j]}, got {groups}')
    done.update(group)


def _normalize_phis(phis: jnp.ndarray) -> jnp.ndarray:
  """(..., 2) (cos, sin) scaled to unit length; (0, 0) -> (1, 0)."""
  return geometry.normalize(phis, default=jnp.asarray([1.0, 0.0], phis.dtype))


def _mv(m: jnp.ndarray, v: jnp.ndarray) -> jnp.ndarray:
  return jnp.einsum('...ij,...j->...i', m, v)


def _mtv(m: jnp.ndarray, v: jnp.ndarray) -> jnp.ndarray:
  return jnp.einsum('...ji,...j->...i', m, v)


def _fit_children(targets: jnp.ndarray, rests: jnp.ndarray) -> jnp.ndarray:
  """Kabsch: (B, K, 3) target and rest vectors -> (B, 3, 3) best rotation."""
  return geometry.closest_rotation(jnp.einsum('bki,bkj->bij', targets, rests))


def inverse_kinematics(
    pose_skeleton: jnp.ndarray,
    rest_joints: jnp.ndarray,
    phis: jnp.ndarray,
    leaf_rotmats: jnp.ndarray | None = None,
    *,
    max_drift: float | None = 0.015,
    spine3_svd: bool = False,
    groups: Sequence[Sequence[int]] = DEPTH_GROUPS,
) -> jnp.ndarray:
  """HybrIK's analytical IK: joint positions + twists -> local joint rotations.

  Args:
    pose_skeleton: (B, J, 3) target joints, metres, J in {24, 29} (SMPL order, then
      the leaves head, left/right middle finger, left/right big toe). Any origin: it
      is made root-relative here.
    rest_joints: (B, 29, 3) the shaped rest skeleton (`smpl.rest_joints29`), metres.
    phis: (B, 23, 2) twist (cos phi, sin phi) of joints 1..23 (twist i belongs to
      joint i + 1 and turns about the rest bone from that joint to its child
      `SWING_CHILD[i + 1]`). Normalised here; (0, 0) means no twist.
    leaf_rotmats: optional (B, 5, 3, 3) local rotations of joints
      `constants.LEAF_PARENT_JOINTS` = (15, 22, 23, 10, 11), in leaf order (head,
      left middle, right middle, left big toe, right big toe). Only with J = 24;
      without them those five joints get the identity (with J = 24).
    max_drift: metres; see the module docstring. None: always the target bone.
    spine3_svd: fit spine3 to its three children instead of swing-twist to the neck.
    groups: static schedule of joints 1..23; each group is solved at once and may
      only depend on earlier groups. `DEPTH_GROUPS` (default) or `JOINT_GROUPS`.

  Returns:
    (B, 24, 3, 3) local (parent-relative) rotation matrices; joint 0 is the global
    orientation.

  Raises:
    ValueError: at trace time, for inputs of the wrong shape or an invalid `groups`.
  """
  _check_inputs(pose_skeleton, rest_joints, phis, leaf_rotmats)
  _check_groups(groups)
  num_joints = pose_skeleton.shape[1]
  dtype = jnp.result_type(pose_skeleton, rest_joints, phis, jnp.float32)
  target = pose_skeleton.astype(dtype)
  target = target - target[:, :1]
  rest_joints = rest_joints.astype(dtype)
  parents = jnp.asarray(_PARENTS[1:])
  rest_bone = jnp.concatenate(
      [rest_joints[:, :1], rest_joints[:, 1:] - rest_joints[:, parents]], axis=1)
  cos_sin = _normalize_phis(phis.astype(dtype))
  if leaf_rotmats is not None:
    leaf_rotmats = leaf_rotmats.astype(dtype)
  batch = target.shape[0]
  eye = jnp.broadcast_to(jnp.eye(3, dtype=dtype), (batch, 3, 3))

  local = [None] * 24
  chain = [None] * 24   # global rotations
  posed = [None] * 24   # posed joint positions (root at the origin), rest lengths

  pelvis_children = list(PELVIS_CHILDREN)
  local[0] = chain[0] = _fit_children(
      target[:, pelvis_children], rest_bone[:, pelvis_children])
  posed[0] = jnp.zeros((batch, 3), dtype)

  leaf_joint = {j: k for k, j in enumerate(constants.LEAF_PARENT_JOINTS)}
  for group in groups:
    for j in group:  # positions of the group's joints, from their parents
      p = _PARENTS[j]
      posed[j] = posed[p] + _mv(chain[p], rest_bone[:, j])
    swing_twist = []
    for j in group:
      if num_joints == 24 and j in leaf_joint:
        local[j] = (eye if leaf_rotmats is None else leaf_rotmats[:, leaf_joint[j]])
      elif spine3_svd and j == SPINE3:
        kids = list(SPINE3_CHILDREN)
        vecs = target[:, kids] - posed[j][:, None]
        vecs = _mtv(chain[_PARENTS[j]][:, None], vecs)
        local[j] = _fit_children(vecs, rest_bone[:, kids])
      else:
        swing_twist.append(j)
    if swing_twist:
      idx = jnp.asarray(swing_twist)
      kids = jnp.asarray([SWING_CHILD[j] for j in swing_twist])
      parent_chain = jnp.stack([chain[_PARENTS[j]] for j in swing_twist], axis=1)
      joint_pos = jnp.stack([posed[j] for j in swing_twist], axis=1)  # (B, K, 3)
      rest_vec = rest_bone[:, kids]                                   # (B, K, 3)
      bone_vec = target[:, kids] - target[:, idx]
      if max_drift is None:
        vec = bone_vec
      else:
        vec = target[:, kids] - joint_pos  # from where joint j actually lands
        rest_len = geometry.norm(rest_vec, keepdims=True)
        bone_vec = geometry.normalize(bone_vec) * rest_len
        drift2 = jnp.sum((vec - bone_vec)**2, axis=-1, keepdims=True)
        vec = jnp.where(drift2 > max_drift**2, bone_vec, vec)
      vec = _mtv(parent_chain, vec)  # into the parent's frame
      swing = geometry.rotation_between(rest_vec, vec)
      axis = geometry.normalize(rest_vec, default=jnp.asarray([0.0, 1.0, 0.0], dtype))
      cs = cos_sin[:, idx - 1]
      twist = geometry.axis_cos_sin_to_matrix(axis, cs[..., 0], cs[..., 1])
      rots = swing @ twist
      for k, j in enumerate(swing_twist):
        local[j] = rots[:, k]
    for j in group:
      chain[j] = chain[_PARENTS[j]] @ local[j]
  return jnp.stack(local, axis=1)


def twist_angles(rot_mats: jnp.ndarray, rest_joints: jnp.ndarray) -> jnp.ndarray:
  """True twist of each joint 1..23: the inverse of the twist used by the IK.

  Decomposes each local rotation R_j = swing @ twist about the rest bone from joint j
  to `SWING_CHILD[j]` (swing-twist decomposition) and returns the twist's
  (cos, sin); (1, 0) where it is undefined (R_j turns that bone to its opposite).
  With these, `inverse_kinematics` on the posed joints recovers every rotation it
  solves by swing-twist.

  Args:
    rot_mats: (B, 24, 3, 3) local rotations.
    rest_joints: (B, 29, 3) the shaped rest skeleton, metres.

  Returns:
    (B, 23, 2) (cos phi, sin phi); row i belongs to joint i + 1.
  """
  utils.check_shape('rot_mats', rot_mats, (None, 24, 3, 3))
  utils.check_shape('rest_joints', rest_joints, (rot_mats.shape[0], 29, 3))
  dtype = jnp.result_type(rot_mats, rest_joints, jnp.float32)
  joints = list(range(1, 24))
  kids = [SWING_CHILD[j] for j in joints]
  axes = (rest_joints[:, kids] - rest_joints[:, joints]).astype(dtype)
  return geometry.twist_about(rot_mats[:, 1:].astype(dtype), axes)
