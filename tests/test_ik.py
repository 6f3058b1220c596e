"""Tests for hybrik_jax.body.ik: HybrIK's analytical IK and the twist decomposition."""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.spatial.transform import Rotation

from hybrik_jax import errors
from hybrik_jax.body import constants
from hybrik_jax.body import geometry
from hybrik_jax.body import ik
from hybrik_jax.body import kinematics
from hybrik_jax.body import smpl
from hybrik_jax.body import synthetic_body

LEAF_PARENTS = list(constants.LEAF_PARENT_JOINTS)
NON_LEAF_PARENTS = [j for j in range(24) if j not in constants.LEAF_PARENT_JOINTS]


@pytest.fixture(scope='module')
def model():
  return synthetic_body.synthetic_smpl_model()


def _random_rest(rng, batch):
  """Made-up rest skeletons (B, 29, 3): random bones of ~15 cm along the SMPL tree."""
  rest = np.zeros((batch, 29, 3))
  for j in range(1, 29):
    rest[:, j] = rest[:, constants.SMPL29_PARENTS[j]] + rng.normal(size=(batch, 3)) * 0.15
  return rest


def _swing_cos(rot, rest):
  """(B, 23) cosine of each joint's swing angle (rest bone vs rotated rest bone)."""
  kids = [ik.SWING_CHILD[j] for j in range(1, 24)]
  bone = rest[:, kids] - rest[:, 1:24]
  turned = np.einsum('bjik,bjk->bji', rot[:, 1:], bone)
  return np.sum(bone * turned, -1) / np.maximum(np.sum(bone * bone, -1), 1e-12)


def _random_rotations(rng, rest, extreme_fraction=0.5, min_one_plus_cos=0.02):
  """(B, 24, 3, 3) float64 random local rotations, many of them extreme.

  A `extreme_fraction` of the poses has every joint turned by an angle uniform in
  [0, pi) about a random axis; the others by |N(0, 0.7)| radians. A swing of exactly
  pi leaves the twist undefined, and near it every swing-twist parametrisation loses
  precision as 1 / cos(swing / 2); joints whose swing is within ~11.5 degrees of pi
  (1 + cos < 0.02) are redrawn, so the float32 tolerance below is meaningful.
  """
  batch = rest.shape[0]
  extreme = rng.uniform(size=(batch, 1)) < extreme_fraction

  def draw(shape):
    axis = rng.normal(size=shape + (3,))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    angle = np.where(extreme, rng.uniform(0, np.pi, shape), np.abs(rng.normal(size=shape)) * 0.7)
    return Rotation.from_rotvec((axis * angle[..., None]).reshape(-1, 3)).as_matrix().reshape(
        shape + (3, 3))

  rot = draw((batch, 24))
  for _ in range(100):
    bad = np.concatenate([np.zeros((batch, 1), bool),
                          1 + _swing_cos(rot, rest) < min_one_plus_cos], axis=1)
    if not bad.any():
      break
    rot = np.where(bad[..., None, None], draw((batch, 24)), rot)
  return rot


def _is_finite(tree):
  return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree))


def _assert_rotations(rot, atol):
  rot = np.asarray(rot, np.float64)
  np.testing.assert_allclose(rot @ np.swapaxes(rot, -1, -2),
                             np.broadcast_to(np.eye(3), rot.shape), atol=atol)
  np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=atol)


@functools.partial(jax.jit, static_argnames=())
def _hybrik_round_trip(model, betas, rot_mats):
  """Posed joints + true twists of `rot_mats` -> smpl.hybrik, with 29 and 24+leaf joints."""
  rest = smpl.rest_joints29(model, betas)
  joints29, _ = kinematics.forward_kinematics(rot_mats, rest)
  joints29 = joints29 - joints29[:, :1]
  phis = ik.twist_angles(rot_mats, rest)
  reference = smpl.forward(model, betas, rot_mats)
  ref_vertices = reference.vertices - reference.joints_h36m[:, :1]
  out29 = smpl.hybrik(model, betas, joints29, phis)
  leaf_thetas = geometry.matrix_to_quaternion(rot_mats[:, LEAF_PARENTS])
  out24 = smpl.hybrik(model, betas, joints29[:, :24], phis, leaf_thetas=leaf_thetas)
  return ref_vertices, out29, out24


@pytest.mark.parametrize('dtype, rot_tol, vert_tol', [
    (jnp.float32, 1e-4, 1e-5), (jnp.float64, 1e-8, 1e-10)])
@pytest.mark.slow
def test_hybrik_round_trip(model, dtype, rot_tol, vert_tol):
  """Joints from the body model + their true twists -> hybrik gives back the pose."""
  rng = np.random.default_rng(0)
  batch = 256
  betas = rng.normal(size=(batch, 10)) * 1.5
  with jax.enable_x64(dtype == jnp.float64):
    model_d = jax.tree.map(lambda x: jnp.asarray(x, dtype), model)
    rest = np.asarray(smpl.rest_joints29(model_d, jnp.asarray(betas, dtype)), np.float64)
    rot = _random_rotations(rng, rest)
    ref_vertices, out29, out24 = _hybrik_round_trip(
        model_d, jnp.asarray(betas, dtype), jnp.asarray(rot, dtype))
    rot_d = np.asarray(jnp.asarray(rot, dtype), np.float64)
  assert out29.rot_mats.dtype == dtype
  # With all 29 joints every rotation is recoverable, the leaf parents included.
  assert np.abs(np.asarray(out29.rot_mats, np.float64) - rot_d).max() < rot_tol
  assert np.abs(np.asarray(out29.vertices) - np.asarray(ref_vertices)).max() < vert_tol
  # With 24 joints the five leaf parents' rotations come from the leaf thetas.
  assert np.abs(np.asarray(out24.rot_mats, np.float64) - rot_d).max() < rot_tol
  assert np.abs(np.asarray(out24.vertices) - np.asarray(ref_vertices)).max() < vert_tol


def test_24_joints_without_leaf_rotations():
  """Without leaf rotations, all but the five leaf parents are recovered; those are I."""
  rng = np.random.default_rng(1)
  rest = _random_rest(rng, 16)
  rot = _random_rotations(rng, rest)
  joints, _ = kinematics.forward_kinematics(jnp.asarray(rot, jnp.float32),
                                            jnp.asarray(rest, jnp.float32))
  phis = ik.twist_angles(jnp.asarray(rot, jnp.float32), jnp.asarray(rest, jnp.float32))
  out = np.asarray(jax.jit(ik.inverse_kinematics)(joints[:, :24], jnp.asarray(rest, jnp.float32),
                                                  phis))
  assert np.abs(out[:, NON_LEAF_PARENTS] - rot[:, NON_LEAF_PARENTS]).max() < 1e-4
  np.testing.assert_allclose(out[:, LEAF_PARENTS], np.broadcast_to(np.eye(3), (16, 5, 3, 3)))


@pytest.mark.slow
def test_options_and_schedules_agree_on_consistent_skeletons():
  rng = np.random.default_rng(2)
  rest = _random_rest(rng, 32)
  with jax.enable_x64(True):
    rot = jnp.asarray(_random_rotations(rng, rest))
    rest = jnp.asarray(rest)
    joints, _ = kinematics.forward_kinematics(rot, rest)
    joints = joints + jnp.asarray(rng.normal(size=(32, 1, 3)))  # any origin
    phis = ik.twist_angles(rot, rest) * 3.0  # unnormalised twists
    # HybrIK-Transformer's schedule: another valid order of the same tree.
    transformer_groups = ((3,), (6,), (9,), (1, 2, 12, 13, 14), (4, 5, 15, 16, 17),
                          (7, 8, 18, 19), (10, 11, 20, 21), (22, 23))
    spine3_svd = ik.IKConvention(spine3_svd=True)
    for kwargs in ({}, {'groups': transformer_groups}, {'convention': spine3_svd}):
      out = jax.jit(functools.partial(ik.inverse_kinematics, **kwargs))(joints, rest, phis)
      np.testing.assert_allclose(out, rot, atol=1e-8, err_msg=str(kwargs))


def test_noisy_skeleton_follows_bone_directions():
  """On an inconsistent skeleton the swing of each joint points its bone along the target.

  With `max_drift=None` (bone directions) the posed bone j -> child of every
  swing-twist joint is parallel to the target's; the bones fitted by Kabsch (pelvis
  children) and the default adaptive targets stay close, never NaN.
  """
  rng = np.random.default_rng(3)
  rest = jnp.asarray(_random_rest(rng, 16), jnp.float32)
  target = jnp.asarray(_random_rest(rng, 16), jnp.float32)  # unrelated skeleton
  phis = jnp.asarray(rng.normal(size=(16, 23, 2)), jnp.float32)
  rot = jax.jit(functools.partial(ik.inverse_kinematics,
                                  convention=ik.IKConvention(max_drift=None)))(target, rest, phis)
  _assert_rotations(rot, 1e-5)
  posed, _ = kinematics.forward_kinematics(rot, rest)
  joints = [j for j in range(1, 24)]
  kids = [ik.SWING_CHILD[j] for j in joints]
  got = geometry.normalize(posed[:, kids] - posed[:, joints])
  want = geometry.normalize(target[:, kids] - target[:, joints])
  np.testing.assert_allclose(jnp.sum(got * want, -1), 1.0, atol=1e-5)
  # The twist about each bone is the requested one.
  np.testing.assert_allclose(ik.twist_angles(rot, rest), geometry.normalize(phis), atol=1e-4)


def test_twist_angles_recovers_constructed_twists():
  """R_j = swing @ twist(phi) about the rest bone j -> child gives back phi."""
  rng = np.random.default_rng(4)
  batch = 8
  rest = _random_rest(rng, batch)
  kids = [ik.SWING_CHILD[j] for j in range(1, 24)]
  bone = rest[:, kids] - rest[:, 1:24]
  bone /= np.linalg.norm(bone, axis=-1, keepdims=True)
  phi = rng.uniform(-np.pi, np.pi, (batch, 23))
  perp = np.cross(bone, rng.normal(size=bone.shape))
  perp /= np.linalg.norm(perp, axis=-1, keepdims=True)
  swing = Rotation.from_rotvec((perp * rng.uniform(0, 2.8, (batch, 23, 1))).reshape(-1, 3))
  twist = Rotation.from_rotvec((bone * phi[..., None]).reshape(-1, 3))
  rot = np.tile(np.eye(3), (batch, 24, 1, 1))
  rot[:, 1:] = (swing * twist).as_matrix().reshape(batch, 23, 3, 3)
  with jax.enable_x64(True):
    phis = ik.twist_angles(jnp.asarray(rot), jnp.asarray(rest))
  np.testing.assert_allclose(phis, np.stack([np.cos(phi), np.sin(phi)], -1), atol=1e-10)


def test_vmap_matches_batch():
  rng = np.random.default_rng(5)
  rest = _random_rest(rng, 6)
  rot = _random_rotations(rng, rest, extreme_fraction=0.0)
  rest, rot = jnp.asarray(rest, jnp.float32), jnp.asarray(rot, jnp.float32)
  joints, _ = kinematics.forward_kinematics(rot, rest)
  phis = ik.twist_angles(rot, rest)
  leaf = rot[:, LEAF_PARENTS]
  batched = jax.jit(ik.inverse_kinematics)(joints[:, :24], rest, phis, leaf)
  split = lambda x: x.reshape((3, 2) + x.shape[1:])
  mapped = jax.jit(jax.vmap(ik.inverse_kinematics))(
      split(joints[:, :24]), split(rest), split(phis), split(leaf))
  np.testing.assert_allclose(mapped.reshape(batched.shape), batched, atol=1e-5)
  mapped_twists = jax.vmap(ik.twist_angles)(split(rot), split(rest))
  np.testing.assert_allclose(mapped_twists.reshape(phis.shape), phis, atol=1e-6)


def _degenerate_inputs(dtype):
  """A batch of 6 problem cases for the IK."""
  rng = np.random.default_rng(6)
  rest = _random_rest(rng, 6)
  rot = _random_rotations(rng, rest)
  joints, _ = kinematics.forward_kinematics(jnp.asarray(rot), jnp.asarray(rest))
  joints = np.array(joints)
  phis = np.array(ik.twist_angles(jnp.asarray(rot), jnp.asarray(rest)))
  joints[0] = 0.0                                  # all-zero pose skeleton
  phis[1] = 0.0                                    # phi = (0, 0) everywhere
  rest[2, [4, 7, 10, 27]] = rest[2, 1]             # zero-length bones (a whole leg)
  joints[3, [1, 2]] = joints[3, [3]] * [[-1.0], [2.0]]  # collinear pelvis children
  joints[3, [13, 14]] = 2 * joints[3, 9] - joints[3, [12]]  # collinear spine3 children
  joints[4, 5] = joints[4, 2]                      # zero target bone
  joints[4, 8] = 2 * joints[4, 5] - joints[4, 2] - (joints[4, 8] - joints[4, 5])
  rest[5] = 0.0                                    # all-zero rest skeleton
  return tuple(jnp.asarray(x, dtype) for x in (joints, rest, phis, rot[:, LEAF_PARENTS]))


@pytest.mark.parametrize('dtype, num_joints, convention', [
    (jnp.float32, 29, ik.IKConvention()),  # the default path
    # Leaf rotations and the Kabsch fit of spine3.
    (jnp.float64, 24, ik.IKConvention(spine3_svd=True)),
    # The released layer, train mode (spine-then-hips root, no fallback, joint 23
    # aimed at the pelvis, regularised swings).
    (jnp.float32, 24, ik.IKConvention.released().for_training()),
])
def test_degenerate_inputs_give_finite_values_and_grads(dtype, num_joints, convention):
  with jax.enable_x64(dtype == jnp.float64):
    joints, rest, phis, leaf = _degenerate_inputs(dtype)
    joints = joints[:, :num_joints]
    leaf = leaf if num_joints == 24 else None
    weights = jnp.asarray(np.random.default_rng(7).normal(size=(6, 24, 3, 3)), dtype)

    def loss(joints, rest, phis, leaf):
      rot = ik.inverse_kinematics(joints, rest, phis, leaf, convention=convention)
      return jnp.sum(rot * weights), rot

    grad_fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3), has_aux=True))
    (value, rot), grads = grad_fn(joints, rest, phis, leaf)
    assert rot.dtype == dtype
    assert _is_finite((value, rot, grads))
    if convention.swing_eps == 0:  # the released swing is not orthogonal for tiny vectors
      _assert_rotations(rot, 1e-5)
    twist_grads = jax.jit(jax.grad(lambda r, s: jnp.sum(ik.twist_angles(r, s)), (0, 1)))(
        rot, rest)
    assert _is_finite(twist_grads)


@pytest.mark.slow
def test_check_grads_float64():
  rng = np.random.default_rng(8)
  with jax.enable_x64(True):
    rest = _random_rest(rng, 2)
    rot = jnp.asarray(_random_rotations(rng, rest, extreme_fraction=0.0))
    rest = jnp.asarray(rest)
    joints, _ = kinematics.forward_kinematics(rot, rest)
    # A slightly inconsistent skeleton and unnormalised twists: a generic point.
    joints = joints + jnp.asarray(rng.normal(size=joints.shape) * 0.003)
    phis = ik.twist_angles(rot, rest) * jnp.asarray(rng.uniform(0.5, 2.0, (2, 23, 1)))
    # Bone-length-scale inputs (~0.1 m) with large second derivatives: a small
    # finite-difference step keeps the truncation error below the tolerance.
    check_grads(jax.jit(ik.inverse_kinematics), (joints, rest, phis), order=1,
                modes=['rev'], eps=1e-6, atol=1e-6, rtol=1e-6)


@pytest.mark.slow
def test_hybrik_grads_finite_on_degenerate_inputs(model):
  rng = np.random.default_rng(9)
  betas = jnp.asarray(rng.normal(size=(3, 10)), jnp.float32)
  skeleton = jnp.asarray(rng.normal(size=(3, 24, 3)) * 0.3, jnp.float32).at[0].set(0.0)
  phis = jnp.asarray(rng.normal(size=(3, 23, 2)), jnp.float32).at[1].set(0.0)
  leaf = jnp.asarray(rng.normal(size=(3, 5, 4)), jnp.float32).at[2].set(0.0)

  def loss(betas, skeleton, phis, leaf):
    out = smpl.hybrik(model, betas, skeleton, phis, leaf_thetas=leaf)
    return jnp.mean(out.vertices**2) + jnp.mean(out.joints**2)

  value, grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3)))(
      betas, skeleton, phis, leaf)
  assert _is_finite((value, grads))
  assert float(jnp.abs(grads[1]).max()) > 0.0  # the skeleton does steer the mesh


@pytest.mark.parametrize('skeleton, rest, phis, leaf, message', [
    ((2, 25, 3), (2, 29, 3), (2, 23, 2), None, r'pose_skeleton must have shape \(B, 24, 3\)'),
    ((2, 24, 2), (2, 29, 3), (2, 23, 2), None, 'pose_skeleton'),
    ((2, 24, 3), (2, 24, 3), (2, 23, 2), None, r'rest_joints must have shape \(2, 29, 3\)'),
    ((2, 24, 3), (3, 29, 3), (2, 23, 2), None, 'rest_joints'),
    ((2, 29, 3), (2, 29, 3), (2, 24, 2), None, r'phis must have shape \(2, 23, 2\)'),
    ((2, 24, 3), (2, 29, 3), (2, 23, 2), (2, 5, 4), r'leaf_rotmats must have shape \(2, 5, 3, 3\)'),
    ((2, 29, 3), (2, 29, 3), (2, 23, 2), (2, 5, 3, 3), 'leaf_rotmats is only used with a 24'),
])
def test_wrong_shapes_raise(skeleton, rest, phis, leaf, message):
  args = [jnp.zeros(skeleton), jnp.zeros(rest), jnp.zeros(phis)]
  if leaf is not None:
    args.append(jnp.zeros(leaf))
  with pytest.raises(ValueError, match=message):
    jax.jit(ik.inverse_kinematics)(*args)  # raised at trace time


def test_invalid_schedule_raises():
  args = (jnp.zeros((1, 24, 3)), jnp.zeros((1, 29, 3)), jnp.zeros((1, 23, 2)))
  with pytest.raises(ValueError, match='groups'):
    ik.inverse_kinematics(*args, groups=((4,), (1, 2, 3)) + ik.DEPTH_GROUPS[2:])
  with pytest.raises(ValueError, match='groups'):
    ik.inverse_kinematics(*args, groups=ik.DEPTH_GROUPS[:-1])


def test_twist_angles_wrong_shapes_raise():
  with pytest.raises(ValueError, match='rot_mats'):
    ik.twist_angles(jnp.zeros((2, 23, 3, 3)), jnp.zeros((2, 29, 3)))
  with pytest.raises(ValueError, match='rest_joints'):
    ik.twist_angles(jnp.zeros((2, 24, 3, 3)), jnp.zeros((2, 24, 3)))


@pytest.mark.parametrize('fields, message', [
    (dict(leaf_joints=(10, 10)), 'leaf_joints must be a list of distinct joints'),
    (dict(leaf_joints=(9,)), r'leaf_joints must be .* among \(15, 22, 23, 10, 11\)'),
    (dict(leaf_joints='abc'), "leaf_joints must be .*, got 'abc'"),
    (dict(joint23_to_pelvis=True), 'joint 23 cannot also take a leaf'),
    (dict(joint23_to_pelvis='yes'), 'joint23_to_pelvis must be true or false'),
    (dict(root_fit='kabsch'), r"root_fit must be one of \('svd', 'spine_hips'\)"),
    (dict(swing_eps=-1.0), 'swing_eps must be a number >= 0'),
    (dict(max_drift=-0.01), 'max_drift must be None or a number >= 0'),
    (dict(leaf_flip_pairs=((0, 5),)), 'leaf_flip_pairs must be .* slots 0..4'),
    (dict(leaf_flip_pairs=(1, 2)), 'leaf_flip_pairs must be'),
    (dict(depth_factor=0.0), 'depth_factor must be a number > 0'),
    (dict(depth_factor='2.2'), 'depth_factor must be a number > 0'),
    (dict(name='paper'), r"name must be one of \('released', 'corrected', 'hybrik'\)"),
])
def test_invalid_convention_fields_raise(fields, message):
  with pytest.raises(errors.InputError, match=message):
    ik.IKConvention(**fields)
  with pytest.raises(errors.InputError, match=message):
    ik.IKConvention.corrected().replace(**fields)


def test_unknown_convention_name_raises():
  with pytest.raises(errors.InputError,
                     match=r"Unknown IK convention 'paper'; choose one of \('released'"):
    ik.IKConvention.named('paper')


def test_convention_is_a_hashable_normalised_static_argument():
  corrected, released = ik.IKConvention.corrected(), ik.IKConvention.released()
  assert corrected == ik.IKConvention() == ik.IKConvention.named('corrected')
  assert released == ik.IKConvention.named('released') != corrected
  assert hash(released) == hash(ik.IKConvention.named('released'))
  assert corrected.for_training() is corrected  # one IK for training and evaluation
  train = released.for_training()
  assert (train.root_fit, train.max_drift) == ('spine_hips', math.inf)
  assert train.replace(root_fit='svd', max_drift=ik.MAX_DRIFT) == released
  # Sequences become tuples of ints (a JSON list, numpy integers), so it hashes.
  listed = ik.IKConvention(leaf_joints=[np.int64(10), 11], leaf_flip_pairs=[[0, 1]],
                           depth_factor=2)
  assert listed.leaf_joints == (10, 11) and listed.leaf_flip_pairs == ((0, 1),)
  assert listed.depth_factor == 2.0 and isinstance(listed.depth_factor, float)
  with pytest.raises(dataclasses.FrozenInstanceError):
    listed.depth_factor = 3.0  # pytype: disable=not-writable
  # A static jit argument: one trace per convention, the IK follows it.
  traces = []

  @functools.partial(jax.jit, static_argnames='convention')
  def solve(joints, rest, phis, leaf, convention):
    traces.append(convention)
    return ik.inverse_kinematics(joints, rest, phis, leaf, convention=convention)

  rng = np.random.default_rng(11)
  rest = jnp.asarray(_random_rest(rng, 2), jnp.float32)
  joints = rest[:, :24] + jnp.asarray(rng.normal(size=(2, 24, 3)) * 0.01, jnp.float32)
  phis = jnp.asarray(rng.normal(size=(2, 23, 2)), jnp.float32)
  leaf = jnp.asarray(_random_rotations(rng, np.asarray(rest))[:, LEAF_PARENTS], jnp.float32)
  out = {}
  for convention in (corrected, released, ik.IKConvention.named('released'), train):
    out[convention] = solve(joints, rest, phis, leaf, convention=convention)
  assert traces == [corrected, released, train]
  # 'corrected' gives joint 23 its leaf, 'released' aims it at the pelvis.
  assert float(jnp.abs(out[corrected][:, 23] - out[released][:, 23]).max()) > 1e-3
  np.testing.assert_allclose(out[corrected][:, 23], leaf[:, 2], atol=1e-6)
  with pytest.raises(TypeError, match='IKConvention'):
    ik.inverse_kinematics(joints, rest, phis, convention='released')
