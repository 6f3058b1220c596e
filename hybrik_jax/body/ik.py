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
(HybrIK's training-time "naive" IK); `max_drift=math.inf` never falls back
(the released code's `train=True` branch). On a consistent skeleton all agree.

Conventions: every choice above, and how a network's outputs are read into the IK,
is one hashable frozen dataclass, `IKConvention` (a static jit argument), given to
`inverse_kinematics(..., convention=...)`. Two are named:

* `IKConvention.corrected()` (the default): this project's own. With 29 joints it
  agrees with the released layer in eval mode; with 24 joints plus leaf rotations it
  follows HybrIK-Transformer's `batch_inverse_kinematics_transform_optimized`, which
  the released model never calls. One IK for training and evaluation.
* `IKConvention.released()`: the released HybrIK-Transformer (and HybrIK
  Simple3DPoseBaseSMPL24) layer, `batch_inverse_kinematics_transform` of its lbs.py,
  checked per joint against its stored outputs (tests/test_released_layer.py, 1e-4);
  `.for_training()` gives its training mode.
* `IKConvention.hybrik()`: HybrIK's camera models (Jeff-sjtu/HybrIK @ 9b8681d). On
  their 29-joint skeletons its eval layer is the same code as the one above, so
  the fields are `released()`'s but the depth factor (2.2 m);
  `.naive()` is its `naive=True` call (root from the spine-then-hips fit,
  swings along the target bones themselves, `max_drift=None`), which the
  camera-scale refinement calls and which is also its train mode
  (`.for_training()`), checked per joint against the released layer
  (tests/test_released_hybrik_layer.py).

They differ in these fields, on which a converted checkpoint depends:

* `leaf_joints`: with 24 joints, leaf slot k goes to joint `leaf_joints[k]`. Released:
  (10, 11, 15, 22) (slot 4 unused); corrected: `constants.LEAF_PARENT_JOINTS`, all five.
* `joint23_to_pelvis`: with 24 joints the released children map gives joint 23 the
  child 0, so it swings its "rest bone" r0 (the absolute shaped rest pelvis) onto the
  vector from where it lands to the root, twisted by phi_22; in eval mode the 15 mm
  fallback always fires there and the target becomes r0 itself.
* `root_fit`: 'svd' (the Kabsch fit above; released eval) or 'spine_hips' (released
  train): an exact swing of the rest spine1 bone onto the target one, then the
  rotation about the target spine direction that lines up the hips' midpoint, both
  midpoints taken perpendicular to that direction.
* `max_drift=inf` (released train): no fallback.
* `swing_eps`: the released swing divides cos, sin and the axis by |a||b| + eps and
  |a x b| + eps (eps = 1e-8 m^2). For bones of centimetres this is invisible (1e-6
  relative); for joint 23's sub-millimetre r0 (synthetic body) it shrinks the swing
  and leaves a matrix that is not a rotation, which the released model then skins with.
* `detach_reference`: the released code reads the root fit and the fallback's target
  bone from a detached copy of the skeleton (no gradient flows through them).
* `kabsch`: 'svd' or 'horn', how the Kabsch fits are solved (the same rotation
  to float precision; 'horn' has no SVD, for exported graphs: `hybrik_jax.export`).
* `leaf_flip_pairs`, `depth_factor`: not used by the IK but by the decoding in front
  of it (the flip test's leaf slot pairs; metres per unit of the network's depth d).

A model's convention is recorded in its config (`models.config.IK_FIELDS`) and read
from it, once, by `models.config.ik_convention(model_config)`.

Everything is static Python over the fixed tree; joints are solved in groups (by
depth in the tree by default, all joints of a group at once), which jit unrolls.
All functions are vmap- and grad-safe: degenerate inputs (zero bones, collinear
children, an all-zero skeleton, phi = (0, 0)) give finite values and gradients.
"""

import dataclasses
import math
from collections.abc import Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from hybrik_jax import errors
from hybrik_jax import utils
from hybrik_jax.body import constants
from hybrik_jax.body import geometry

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

ROOT_FITS = ('svd', 'spine_hips')
# How the Kabsch fits (root_fit 'svd', spine3_svd) find their rotation:
# 'svd' (`geometry.closest_rotation`) or 'horn' (`geometry.closest_rotation_horn`,
# the same rotation without SVD, for runtimes that have none, e.g. ONNX).
KABSCH_SOLVERS = ('svd', 'horn')
# The released layer's swing regularisation, m^2 (see the module docstring).
RELEASED_SWING_EPS = 1e-8
# HybrIK's inference-time fallback threshold, metres (see the module docstring).
MAX_DRIFT = 0.015
CONVENTIONS = ('released', 'corrected', 'hybrik')


def _is_int(value) -> bool:
  return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value) -> bool:
  return (isinstance(value, (int, float, np.integer, np.floating))
          and not isinstance(value, (bool, np.bool_)))


def _is_sequence(value) -> bool:
  return isinstance(value, Iterable) and not isinstance(value, (str, bytes, dict))


def _invalid(field: str, what: str, value) -> errors.InputError:
  return errors.InputError(f'{field} must be {what}, got {value!r}')


@dataclasses.dataclass(frozen=True)
class IKConvention:
  """How the IK solves a skeleton, and how a network's outputs are read into it.

  Frozen and hashable: pass it as a static argument of jitted functions. The
  defaults are the 'corrected' convention. Make one with `corrected()`,
  `released()`, `named(name)`, from a model config with
  `models.config.ik_convention(model_config)`, or change fields with `replace`.
  Fields are checked and normalised (sequences to tuples) on construction;
  invalid values raise `errors.InputError` naming the field.

  Attributes:
    name: 'released', 'corrected' or 'hybrik' (the model config's
      `ik_convention`); also selects the train-mode IK (`for_training`) and the
      theta loss's quaternion sign.
    leaf_joints: 24-joint skeletons only: the joint each leaf slot k rotates, in
      slot order (distinct, among `constants.LEAF_PARENT_JOINTS`).
    joint23_to_pelvis: 24-joint skeletons only: joint 23 swings and twists
      towards the root as the released layer does, instead of taking a leaf
      rotation (23 must then not be in `leaf_joints`).
    root_fit: 'svd' (Kabsch fit to spine1 and the hips) or 'spine_hips'.
    max_drift: metres; the fallback threshold. None: always the target bone;
      math.inf: never fall back.
    swing_eps: m^2; 0 gives exact shortest-arc swings, `RELEASED_SWING_EPS` the
      released layer's regularised ones.
    detach_reference: no gradient through the root fit and the fallback's
      target bone.
    spine3_svd: fit spine3 to its three children instead of swing-twist to the
      neck (HybrIK-Transformer's unused "optimized" variant).
    kabsch: 'svd' (default) or 'horn': the Kabsch fits' solver (`KABSCH_SOLVERS`).
    leaf_flip_pairs: leaf-slot pairs the flip test swaps (indices 0..4).
    depth_factor: metres per unit of the network's relative depth d (decoding).
  """
  name: str = 'corrected'
  leaf_joints: tuple[int, ...] = constants.LEAF_PARENT_JOINTS
  joint23_to_pelvis: bool = False
  root_fit: str = 'svd'
  max_drift: float | None = MAX_DRIFT
  swing_eps: float = 0.0
  detach_reference: bool = False
  spine3_svd: bool = False
  kabsch: str = 'svd'
  leaf_flip_pairs: tuple[tuple[int, int], ...] = constants.FLIP_PAIRS_LEAF
  depth_factor: float = constants.CORRECTED_DEPTH_FACTOR

  def __post_init__(self):
    set_ = lambda field, value: object.__setattr__(self, field, value)
    if not isinstance(self.name, str) or self.name not in CONVENTIONS:
      raise _invalid('name', f'one of {CONVENTIONS}', self.name)
    what = f'a list of distinct joints among {constants.LEAF_PARENT_JOINTS} (at most 5)'
    leaf_joints = tuple(self.leaf_joints) if _is_sequence(self.leaf_joints) else None
    if (leaf_joints is None or not all(_is_int(j) for j in leaf_joints)
        or len(set(leaf_joints)) != len(leaf_joints) or len(leaf_joints) > 5
        or not set(leaf_joints) <= set(constants.LEAF_PARENT_JOINTS)):
      raise _invalid('leaf_joints', what, self.leaf_joints)
    set_('leaf_joints', tuple(int(j) for j in leaf_joints))
    for field in ('joint23_to_pelvis', 'detach_reference', 'spine3_svd'):
      value = getattr(self, field)
      if not isinstance(value, (bool, np.bool_)):
        raise _invalid(field, 'true or false', value)
      set_(field, bool(value))
    if self.joint23_to_pelvis and 23 in self.leaf_joints:
      raise errors.InputError('joint23_to_pelvis: joint 23 cannot also take a leaf rotation '
                              f'(leaf_joints={self.leaf_joints})')
    if self.root_fit not in ROOT_FITS:
      raise _invalid('root_fit', f'one of {ROOT_FITS}', self.root_fit)
    if self.kabsch not in KABSCH_SOLVERS:
      raise _invalid('kabsch', f'one of {KABSCH_SOLVERS}', self.kabsch)
    if self.max_drift is not None:
      if not (_is_real(self.max_drift) and self.max_drift >= 0):
        raise _invalid('max_drift', 'None or a number >= 0 (metres; inf: no fallback)',
                       self.max_drift)
      set_('max_drift', float(self.max_drift))
    if not (_is_real(self.swing_eps) and self.swing_eps >= 0):
      raise _invalid('swing_eps', 'a number >= 0 (m^2)', self.swing_eps)
    set_('swing_eps', float(self.swing_eps))
    what = 'a list of [a, b] pairs of leaf slots 0..4'
    pairs = (tuple(tuple(p) if _is_sequence(p) else () for p in self.leaf_flip_pairs)
             if _is_sequence(self.leaf_flip_pairs) else None)
    if pairs is None or any(len(p) != 2 or not all(_is_int(i) and 0 <= i < 5 for i in p)
                            for p in pairs):
      raise _invalid('leaf_flip_pairs', what, self.leaf_flip_pairs)
    set_('leaf_flip_pairs', tuple((int(a), int(b)) for a, b in pairs))
    if not (_is_real(self.depth_factor) and 0 < self.depth_factor < math.inf):
      raise _invalid('depth_factor', 'a number > 0 (metres)', self.depth_factor)
    set_('depth_factor', float(self.depth_factor))

  @classmethod
  def corrected(cls) -> 'IKConvention':
    """This project's convention: all five leaf rotations used (slot k -> joint
    `constants.LEAF_PARENT_JOINTS[k]`, head, hands, toes order), joint 23 given its
    leaf, exact swings, flip pairs ((1, 2), (3, 4)), depth factor 2.2 m; one IK for
    training and evaluation."""
    return cls()

  @classmethod
  def released(cls) -> 'IKConvention':
    """The released HybrIK-Transformer / HybrIK SMPL24 layer in eval mode,
    reproduced to float32 precision (tests/test_released_layer.py): leaf slots ->
    joints 10, 11, 15, 22, joint 23 aimed at the pelvis, regularised swings, a
    detached reference, flip pairs ((0, 1), (3, 4)), depth factor 2.0 m.
    `for_training()` gives its train mode."""
    return cls(name='released', leaf_joints=constants.RELEASED_LEAF_SLOT_JOINTS,
               joint23_to_pelvis=True, root_fit='svd', max_drift=MAX_DRIFT,
               swing_eps=RELEASED_SWING_EPS, detach_reference=True,
               leaf_flip_pairs=constants.RELEASED_FLIP_PAIRS_LEAF,
               depth_factor=constants.RELEASED_DEPTH_FACTOR)

  @classmethod
  def hybrik(cls) -> 'IKConvention':
    """HybrIK's camera models (Jeff-sjtu/HybrIK @ 9b8681d: Simple3DPoseBaseSMPLCam,
    HRNetSMPLCam) at evaluation: 29 joints, the same eval-mode layer as
    `released()` (tests/test_released_hybrik_layer.py), with the 2.2 m depth
    factor of their configs (BBOX_3D_SHAPE 2200 mm). `naive()` gives the IK of
    the layer's `naive=True` call (the camera-scale refinement), which is also its
    train mode (`for_training()`)."""
    return cls.released().replace(name='hybrik',
                                  depth_factor=constants.CORRECTED_DEPTH_FACTOR)

  @classmethod
  def named(cls, name: str) -> 'IKConvention':
    """`released()`, `corrected()` or `hybrik()` by name; InputError for another
    name."""
    if name == 'released':
      return cls.released()
    if name == 'corrected':
      return cls.corrected()
    if name == 'hybrik':
      return cls.hybrik()
    raise errors.InputError(f'Unknown IK convention {name!r}; choose one of {CONVENTIONS}')

  def replace(self, **changes) -> 'IKConvention':
    """A copy with some fields changed (checked as on construction)."""
    return dataclasses.replace(self, **changes)

  def for_training(self) -> 'IKConvention':
    """The IK of the training step. 'released': its layer's train mode (root from
    the spine-then-hips fit, no fallback), other fields kept; 'corrected': itself
    (no train/eval difference)."""
    if self.name == 'released':
      return self.replace(root_fit='spine_hips', max_drift=math.inf)
    if self.name == 'hybrik':
      return self.naive()
    return self

  def naive(self) -> 'IKConvention':
    """The IK of HybrIK's `naive=True` layer call (Jeff-sjtu/HybrIK; also its
    train mode): the root from the spine-then-hips fit and every swing aimed
    along the target bone itself (no landing point, no fallback:
    `max_drift=None`); other fields kept. With `detach_reference` (released,
    hybrik) no gradient reaches the skeleton, as in that layer."""
    return self.replace(root_fit='spine_hips', max_drift=None)


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


def _fit_children(targets: jnp.ndarray, rests: jnp.ndarray,
                  kabsch: str = 'svd') -> jnp.ndarray:
  """Kabsch: (B, K, 3) target and rest vectors -> (B, 3, 3) best rotation."""
  fit = geometry.closest_rotation if kabsch == 'svd' else geometry.closest_rotation_horn
  return fit(jnp.einsum('bki,bkj->bij', targets, rests))


def _regularised_swing(a: jnp.ndarray, b: jnp.ndarray, eps: float) -> jnp.ndarray:
  """HybrIK's swing a -> b: Rodrigues with regularised cos, sin and axis.

  With n = |a||b| and c = a x b: cos = a.b / (n + eps), sin = |c| / (n + eps),
  axis = c / (|c| + eps), R = I + sin K + (1 - cos) K^2 with K = [axis]_x. For
  |a||b| >> eps this is the shortest-arc rotation; for tiny vectors it is shrunk
  towards the identity and is not orthogonal. Finite values and gradients
  everywhere (eps > 0). (..., 3) -> (..., 3, 3).
  """
  n = geometry.norm(a, keepdims=True) * geometry.norm(b, keepdims=True)
  c = jnp.cross(a, b)
  cn = geometry.norm(c, keepdims=True)
  cos = jnp.sum(a * b, axis=-1, keepdims=True) / (n + eps)
  sin = cn / (n + eps)
  k = geometry.skew(c / (cn + eps))
  eye = jnp.eye(3, dtype=k.dtype)
  return eye + sin[..., None] * k + (1.0 - cos)[..., None] * (k @ k)


def _swing(a: jnp.ndarray, b: jnp.ndarray, eps: float) -> jnp.ndarray:
  """Exact shortest arc (eps = 0) or HybrIK's regularised form (eps > 0)."""
  return geometry.rotation_between(a, b) if eps == 0 else _regularised_swing(a, b, eps)


def _spine_hips_root(target: jnp.ndarray, rest_bone: jnp.ndarray,
                     swing_eps: float) -> jnp.ndarray:
  """Root orientation: spine1 exactly, then the hips' midpoint about the spine.

  R_spine turns the rest bone pelvis -> spine1 onto the target one; the rest hips'
  midpoint, turned by R_spine, and the target hips' midpoint are both projected
  perpendicular to the target spine direction, and R_hips turns the first onto the
  second (a rotation about that direction). Returns R_hips @ R_spine, (B, 3, 3).
  """
  spine = target[:, 3]
  r_spine = _swing(rest_bone[:, 3], spine, swing_eps)
  up = geometry.normalize(spine)
  hips_target = 0.5 * (target[:, 1] + target[:, 2])
  hips_rest = _mv(r_spine, 0.5 * (rest_bone[:, 1] + rest_bone[:, 2]))

  def across(v):
    return v - jnp.sum(v * up, axis=-1, keepdims=True) * up

  return _swing(across(hips_rest), across(hips_target), swing_eps) @ r_spine


def inverse_kinematics(
    pose_skeleton: jnp.ndarray,
    rest_joints: jnp.ndarray,
    phis: jnp.ndarray,
    leaf_rotmats: jnp.ndarray | None = None,
    *,
    convention: IKConvention = IKConvention(),
    groups: Sequence[Sequence[int]] = DEPTH_GROUPS,
    return_fallback: bool = False,
) -> jnp.ndarray | tuple[jnp.ndarray, jnp.ndarray]:
  """HybrIK's analytical IK: joint positions + twists -> local joint rotations.

  Args:
    pose_skeleton: (B, J, 3) target joints, metres, J in {24, 29} (SMPL order, then
      the leaves head, left/right middle finger, left/right big toe). Any origin: it
      is made root-relative here.
    rest_joints: (B, 29, 3) the shaped rest skeleton (`smpl.rest_joints29`), metres.
    phis: (B, 23, 2) twist (cos phi, sin phi) of joints 1..23 (twist i belongs to
      joint i + 1 and turns about the rest bone from that joint to its child
      `SWING_CHILD[i + 1]`). Normalised here; (0, 0) means no twist.
    leaf_rotmats: optional (B, 5, 3, 3) local rotations, slot k for joint
      `convention.leaf_joints[k]` (slots beyond len(leaf_joints) are not read). Only
      with J = 24; without them the leaf joints get the identity (with J = 24).
    convention: the IKConvention (default: 'corrected'); see the module docstring.
    groups: static schedule of joints 1..23; each group is solved at once and may
      only depend on earlier groups. `DEPTH_GROUPS` (default) or `JOINT_GROUPS`
      (the same rotations).
    return_fallback: also return which joints took the fallback.

  Returns:
    (B, 24, 3, 3) local (parent-relative) rotation matrices; joint 0 is the global
    orientation. With `return_fallback`, also (B, 23) bool: column j - 1 is True
    where joint j's target bone was replaced by the fallback.

  Raises:
    ValueError: at trace time, for inputs of the wrong shape or an invalid `groups`.
  """
  if not isinstance(convention, IKConvention):
    raise TypeError(f'convention must be an ik.IKConvention, got {convention!r}')
  _check_inputs(pose_skeleton, rest_joints, phis, leaf_rotmats)
  _check_groups(groups)
  c = convention
  num_joints = pose_skeleton.shape[1]
  dtype = jnp.result_type(pose_skeleton, rest_joints, phis, jnp.float32)
  target = pose_skeleton.astype(dtype)
  target = target - target[:, :1]
  rest_joints = rest_joints.astype(dtype)
  parents = jnp.asarray(_PARENTS[1:])
  rest_bone = jnp.concatenate(
      [rest_joints[:, :1], rest_joints[:, 1:] - rest_joints[:, parents]], axis=1)
  # Target bones; the root's "bone" is its rest position, as the released layer's.
  reference = jax.lax.stop_gradient(target) if c.detach_reference else target
  target_bone = jnp.concatenate(
      [rest_bone[:, :1],
       reference[:, 1:] - reference[:, jnp.asarray(_PARENTS[1:num_joints])]], axis=1)
  cos_sin = _normalize_phis(phis.astype(dtype))
  if leaf_rotmats is not None:
    leaf_rotmats = leaf_rotmats.astype(dtype)
  batch = target.shape[0]
  eye = jnp.broadcast_to(jnp.eye(3, dtype=dtype), (batch, 3, 3))

  local = [None] * 24
  chain = [None] * 24   # global rotations
  posed = [None] * 24   # posed joint positions (root at the origin), rest lengths
  fallback = [jnp.zeros((batch,), bool)] * 24

  if c.root_fit == 'svd':
    pelvis_children = list(PELVIS_CHILDREN)
    local[0] = _fit_children(reference[:, pelvis_children], rest_bone[:, pelvis_children],
                             c.kabsch)
  else:
    local[0] = _spine_hips_root(reference, rest_bone, c.swing_eps)
  chain[0] = local[0]
  posed[0] = jnp.zeros((batch, 3), dtype)

  if num_joints == 24:
    leaf_slot = {j: k for k, j in enumerate(c.leaf_joints)}
    leaf_parents = set(constants.LEAF_PARENT_JOINTS)
    if c.joint23_to_pelvis:
      leaf_parents.discard(23)
  else:
    leaf_slot, leaf_parents = {}, set()
  swing_child = dict(enumerate(SWING_CHILD))
  if num_joints == 24 and c.joint23_to_pelvis:
    swing_child[23] = 0
  for group in groups:
    for j in group:  # positions of the group's joints, from their parents
      p = _PARENTS[j]
      posed[j] = posed[p] + _mv(chain[p], rest_bone[:, j])
    swing_twist = []
    for j in group:
      if j in leaf_parents:
        local[j] = (leaf_rotmats[:, leaf_slot[j]]
                    if leaf_rotmats is not None and j in leaf_slot else eye)
      elif c.spine3_svd and j == SPINE3:
        kids = list(SPINE3_CHILDREN)
        vecs = target[:, kids] - posed[j][:, None]
        vecs = _mtv(chain[_PARENTS[j]][:, None], vecs)
        local[j] = _fit_children(vecs, rest_bone[:, kids], c.kabsch)
      else:
        swing_twist.append(j)
    if swing_twist:
      idx = jnp.asarray(swing_twist)
      kids = jnp.asarray([swing_child[j] for j in swing_twist])
      parent_chain = jnp.stack([chain[_PARENTS[j]] for j in swing_twist], axis=1)
      joint_pos = jnp.stack([posed[j] for j in swing_twist], axis=1)  # (B, K, 3)
      rest_vec = rest_bone[:, kids]                                   # (B, K, 3)
      bone_vec = target_bone[:, kids]
      if c.max_drift is None:
        vec = bone_vec
      else:
        vec = target[:, kids] - joint_pos  # from where joint j actually lands
        if math.isfinite(c.max_drift):
          rest_len = geometry.norm(rest_vec, keepdims=True)
          bone_vec = geometry.normalize(bone_vec) * rest_len
          drift2 = jnp.sum((vec - bone_vec)**2, axis=-1, keepdims=True)
          fell_back = drift2 > c.max_drift**2
          vec = jnp.where(fell_back, bone_vec, vec)
          for k, j in enumerate(swing_twist):
            fallback[j] = fell_back[:, k, 0]
      vec = _mtv(parent_chain, vec)  # into the parent's frame
      swing = _swing(rest_vec, vec, c.swing_eps)
      axis = geometry.normalize(rest_vec, default=jnp.asarray([0.0, 1.0, 0.0], dtype))
      cs = cos_sin[:, idx - 1]
      twist = geometry.axis_cos_sin_to_matrix(axis, cs[..., 0], cs[..., 1])
      rots = swing @ twist
      for k, j in enumerate(swing_twist):
        local[j] = rots[:, k]
    for j in group:
      chain[j] = chain[_PARENTS[j]] @ local[j]
  rot_mats = jnp.stack(local, axis=1)
  if return_fallback:
    return rot_mats, jnp.stack(fallback[1:], axis=1)
  return rot_mats


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
