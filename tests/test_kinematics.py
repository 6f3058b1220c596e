"""Tests for hybrik_jax.body.kinematics.forward_kinematics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from smplx.lbs import batch_rigid_transform

from hybrik_jax.body import constants
from hybrik_jax.body import geometry
from hybrik_jax.body import kinematics


def _random_skeleton(rng, batch, num_joints=29):
  rest = np.zeros((batch, num_joints, 3))
  for j in range(1, num_joints):
    rest[:, j] = rest[:, constants.SMPL29_PARENTS[j]] + rng.normal(size=(batch, 3)) * 0.15
  return rest + rng.normal(size=(batch, 1, 3))  # root away from the origin


def test_matches_smplx_rigid_transform():
  rng = np.random.default_rng(0)
  rest = _random_skeleton(rng, 4, 24)
  rot = np.asarray(
      geometry.axis_angle_to_matrix(jnp.asarray(rng.normal(size=(4, 24, 3)))))
  ref_joints, ref_transforms = batch_rigid_transform(
      torch.tensor(rot, dtype=torch.float64), torch.tensor(rest),
      torch.tensor(constants.SMPL_PARENTS), dtype=torch.float64)
  with jax.enable_x64(True):
    joints, transforms = jax.jit(kinematics.forward_kinematics)(
        jnp.asarray(rot, jnp.float64), jnp.asarray(rest))
  assert joints.dtype == jnp.float64
  np.testing.assert_allclose(joints, ref_joints.numpy(), atol=1e-6)
  np.testing.assert_allclose(transforms, ref_transforms.numpy(), atol=1e-6)


def test_leaf_joints_follow_their_parent():
  rng = np.random.default_rng(1)
  rest = jnp.asarray(_random_skeleton(rng, 3), jnp.float32)
  rot = geometry.axis_angle_to_matrix(jnp.asarray(rng.normal(size=(3, 24, 3)), jnp.float32))
  joints29, transforms = kinematics.forward_kinematics(rot, rest)
  joints24, transforms24 = kinematics.forward_kinematics(rot, rest[:, :24])
  assert joints29.shape == (3, 29, 3) and transforms.shape == (3, 24, 4, 4)
  np.testing.assert_allclose(joints29[:, :24], joints24, atol=1e-6)
  np.testing.assert_allclose(transforms, transforms24, atol=1e-6)
  # Root stays put; every joint (leaves included) is its rest position moved by its
  # own (leaves: its parent's) skinning transform.
  np.testing.assert_allclose(joints29[:, 0], rest[:, 0], atol=1e-6)
  owner = list(range(24)) + list(constants.LEAF_PARENT_JOINTS)
  homo = jnp.concatenate([rest, jnp.ones((3, 29, 1))], axis=-1)
  moved = jnp.einsum('bjmn,bjn->bjm', transforms[:, owner], homo)[..., :3]
  np.testing.assert_allclose(moved, joints29, atol=1e-5)
  # Bone lengths are preserved.
  parents = np.asarray(constants.SMPL29_PARENTS[1:])
  np.testing.assert_allclose(
      np.linalg.norm(joints29[:, 1:] - joints29[:, parents], axis=-1),
      np.linalg.norm(rest[:, 1:] - rest[:, parents], axis=-1), atol=1e-6)


def test_identity_rotations_keep_rest_pose():
  rest = jnp.asarray(_random_skeleton(np.random.default_rng(2), 2), jnp.float32)
  joints, transforms = kinematics.forward_kinematics(jnp.broadcast_to(jnp.eye(3), (2, 24, 3, 3)),
                                                     rest)
  np.testing.assert_allclose(joints, rest, atol=1e-6)
  np.testing.assert_allclose(transforms, np.broadcast_to(np.eye(4), (2, 24, 4, 4)), atol=1e-6)


@pytest.mark.parametrize('rot_shape, rest_shape, name', [
    ((2, 23, 3, 3), (2, 24, 3), 'rot_mats'),
    ((2, 24, 3), (2, 24, 3), 'rot_mats'),
    ((2, 24, 3, 3), (2, 25, 3), 'rest_joints'),
    ((2, 24, 3, 3), (3, 24, 3), 'rest_joints'),
])
def test_wrong_shapes_raise(rot_shape, rest_shape, name):
  with pytest.raises(ValueError, match=name):
    jax.jit(kinematics.forward_kinematics)(jnp.zeros(rot_shape), jnp.zeros(rest_shape))
