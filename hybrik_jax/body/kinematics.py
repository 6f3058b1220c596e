"""Forward kinematics on SMPL's kinematic tree (24 joints, or 29 with HybrIK's leaves).

Plain jnp; the tree is static (`constants.SMPL_PARENTS`, `constants.SMPL29_PARENTS`),
so the loop over joints unrolls at trace time.
"""

import jax.numpy as jnp

from hybrik_jax import utils
from hybrik_jax.body import constants


def forward_kinematics(
    rot_mats: jnp.ndarray, rest_joints: jnp.ndarray
) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Poses a rest skeleton with local rotations.

  The root stays at its rest position (as `smplx.lbs.batch_rigid_transform`); the five
  leaf joints of the 29-joint tree have no rotation of their own and follow their
  parent's global rotation.

  Args:
    rot_mats: (B, 24, 3, 3) local (parent-relative) rotations.
    rest_joints: (B, J, 3) rest joint positions, metres, J in {24, 29}.

  Returns:
    posed_joints: (B, J, 3) metres, in the frame of the rest skeleton.
    transforms: (B, 24, 4, 4) skinning transforms: each joint's global rigid
      transform with its rest position removed, so that a rest vertex v moves to
      `transforms[:, k] @ [v, 1]` under joint k alone (smplx's `rel_transforms`).
  """
  utils.check_shape('rot_mats', rot_mats, (None, 24, 3, 3))
  num_joints = rest_joints.shape[1] if rest_joints.ndim == 3 else -1
  if num_joints not in (24, 29):
    raise ValueError(
        f'rest_joints must have shape (B, 24, 3) or (B, 29, 3), got {rest_joints.shape}')
  utils.check_shape('rest_joints', rest_joints, (rot_mats.shape[0], num_joints, 3))
  parents = constants.SMPL29_PARENTS[:num_joints]
  dtype = jnp.result_type(rot_mats, rest_joints)
  rot_mats = rot_mats.astype(dtype)
  rest_joints = rest_joints.astype(dtype)

  global_rots = [rot_mats[:, 0]]
  posed = [rest_joints[:, 0]]
  for j in range(1, num_joints):
    p = parents[j]
    bone = rest_joints[:, j] - rest_joints[:, p]
    posed.append(posed[p] + jnp.einsum('bij,bj->bi', global_rots[p], bone))
    if j < 24:
      global_rots.append(global_rots[p] @ rot_mats[:, j])
  posed_joints = jnp.stack(posed, axis=1)
  rots = jnp.stack(global_rots, axis=1)  # (B, 24, 3, 3)
  # Skinning transform: x -> R_k (x - rest_k) + posed_k.
  trans = posed_joints[:, :24] - jnp.einsum('bkij,bkj->bki', rots, rest_joints[:, :24])
  top = jnp.concatenate([rots, trans[..., None]], axis=-1)  # (B, 24, 3, 4)
  bottom = jnp.broadcast_to(
      jnp.asarray([0, 0, 0, 1], dtype), top.shape[:2] + (1, 4))
  transforms = jnp.concatenate([top, bottom], axis=-2)
  return posed_joints, transforms
