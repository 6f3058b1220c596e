"""Linear blend skinning on any kinematic tree: SMPL's and SMPL-X's one pass.

As smplx.lbs with pose2rot=False: the pose blend shapes (features R_j - I of the
non-root joints) are added to the shaped template, the joints regressed from the
shaped template are posed by forward kinematics (root at its rest position), and
each vertex moves with its weighted joints' rigid transforms. Plain jnp; the tree
is static, so the loop over joints unrolls at trace time.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def forward_kinematics(rot_mats: jnp.ndarray, joints: jnp.ndarray,
                       parents: tuple[int, ...]
                       ) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Poses a rest skeleton on any tree (parents before children).

  Args:
    rot_mats: (B, J, 3, 3) local rotations.
    joints: (B, J, 3) rest joints, metres.
    parents: static (J,) parents, -1 for the root.

  Returns:
    posed: (B, J, 3) posed joints (root at its rest position).
    rots: (B, J, 3, 3) global rotations.
  """
  rots = [rot_mats[:, 0]]
  posed = [joints[:, 0]]
  for j in range(1, len(parents)):
    p = parents[j]
    posed.append(posed[p] + jnp.einsum('bij,bj->bi', rots[p], joints[:, j] - joints[:, p]))
    rots.append(rots[p] @ rot_mats[:, j])
  return jnp.stack(posed, 1), jnp.stack(rots, 1)


def linear_blend_skinning(v_shaped: jnp.ndarray, rot_mats: jnp.ndarray,
                          j_regressor: jnp.ndarray, posedirs: jnp.ndarray,
                          lbs_weights: jnp.ndarray, parents: tuple[int, ...], *,
                          template_gradient: bool = True
                          ) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
  """Shaped template + local rotations -> posed mesh and joints.

  Args:
    v_shaped: (B, V, 3) shaped template (blend shapes applied), metres.
    rot_mats: (B, J, 3, 3) local rotations; joint 0 the global orientation.
    j_regressor: (J, V) joints from the shaped template.
    posedirs: (9 (J - 1), 3 V) pose blend shapes (row 9 (j - 1) + 3 a + b: the
      coefficient of (R_j - I)[a, b]).
    lbs_weights: (V, J) skinning weights.
    parents: static (J,) parents, -1 for the root.
    template_gradient: False: the posed template (not the joints) carries no
      gradient to v_shaped (HybrIK-X's `hybrik`, which detaches it).

  Returns:
    vertices (B, V, 3), posed joints (B, J, 3) (root at its rest position) and
    global rotations (B, J, 3, 3), in the dtype of v_shaped and rot_mats.
  """
  dtype = jnp.result_type(v_shaped, rot_mats)
  v_shaped = v_shaped.astype(dtype)
  rot_mats = rot_mats.astype(dtype)
  batch = v_shaped.shape[0]
  joints = jnp.einsum('jv,bvc->bjc', j_regressor.astype(dtype), v_shaped)
  pose_feature = (rot_mats[:, 1:] - jnp.eye(3, dtype=dtype)).reshape(batch, -1)
  template = v_shaped if template_gradient else jax.lax.stop_gradient(v_shaped)
  v_posed = template + (pose_feature @ posedirs.astype(dtype)).reshape(batch, -1, 3)
  posed, rots = forward_kinematics(rot_mats, joints, parents)
  trans = posed - jnp.einsum('bkij,bkj->bki', rots, joints)  # (B, J, 3)
  w = lbs_weights.astype(dtype)
  # Each vertex's blended rotation (row-major, (B, V, 9)) is applied as three
  # multiply-adds per coordinate: elementwise, fused with the product by XLA. On CPU
  # that is 1.5-4x faster than a batched 3x3 matrix-vector einsum, which XLA lowers
  # to B * V tiny dot products (issue 22, benchmarks/ik_smplx.py).
  per_rot = jnp.einsum('vk,bkm->bvm', w, rots.reshape(batch, rots.shape[1], 9))
  per_trans = jnp.einsum('vk,bki->bvi', w, trans)
  x, y, z = v_posed[..., 0], v_posed[..., 1], v_posed[..., 2]
  vertices = jnp.stack([per_rot[..., 3 * i] * x + per_rot[..., 3 * i + 1] * y
                        + per_rot[..., 3 * i + 2] * z for i in range(3)], -1) + per_trans
  return vertices, posed, rots
