"""The SMPL body model in JAX: the pytrees, LBS and HybrIK's pass.

SMPL (Loper et al. 2015) is obtained, under its licence, from its registration site
https://smpl.is.tue.mpg.de; no SMPL file ships with this project. Files are read
by `hybrik_jax.body.smpl_io` (`load_smpl`); `hybrik_jax.body.synthetic_body` builds a
procedural body with exactly SMPL's array shapes and kinematic tree, for tests
and synthetic data.

Conventions: metres, y up, the body faces +z, its left side at +x (as SMPL).
Rotations are matrices acting on column vectors; axis-angle in radians.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from hybrik_jax import utils
from hybrik_jax.body import constants
from hybrik_jax.body import geometry
from hybrik_jax.body import ik
from hybrik_jax.body import lbs

NUM_POSE_FEATURES = 9 * (constants.NUM_JOINTS - 1)  # 207


# --------------------------------------------------------------------------------------
# Pytrees


@flax.struct.dataclass
class SMPLModel:
  """SMPL's arrays, an immutable pytree (parents and leaf ids are static).

  Attributes:
    v_template: (6890, 3) rest-pose template vertices, metres.
    shapedirs: (6890, 3, 10) shape blend shapes, metres per unit beta.
    posedirs: (207, 6890 * 3) pose blend shapes; row 9 * (j - 1) + 3 * a + b is the
      coefficient of (R_j - I)[a, b], column 3 * v + c the vertex coordinate.
    J_regressor: (24, 6890) joints from the shaped template.
    J_regressor_h36m: (17, 6890) Human3.6M joints from the posed mesh.
    lbs_weights: (6890, 24) skinning weights, rows sum to 1.
    faces: (13776, 3) int32 triangles, counter-clockwise seen from outside.
    parents: static (24,) parent of each joint, -1 for the root.
    leaf_vertex_ids: static (5,) vertices of HybrIK's leaf joints (head, left/right
      middle finger tip, left/right big toe).
  """
  v_template: jnp.ndarray
  shapedirs: jnp.ndarray
  posedirs: jnp.ndarray
  J_regressor: jnp.ndarray  # pylint: disable=invalid-name
  J_regressor_h36m: jnp.ndarray  # pylint: disable=invalid-name
  lbs_weights: jnp.ndarray
  faces: jnp.ndarray
  parents: tuple[int, ...] = flax.struct.field(
      pytree_node=False, default=constants.SMPL_PARENTS)
  leaf_vertex_ids: tuple[int, ...] = flax.struct.field(
      pytree_node=False, default=constants.LEAF_VERTEX_IDS)

  def astype(self, dtype) -> 'SMPLModel':
    """The same model with its float arrays cast to `dtype` (faces stay int32)."""
    cast = lambda x: jnp.asarray(x, dtype)
    return self.replace(
        v_template=cast(self.v_template), shapedirs=cast(self.shapedirs),
        posedirs=cast(self.posedirs), J_regressor=cast(self.J_regressor),
        J_regressor_h36m=cast(self.J_regressor_h36m),
        lbs_weights=cast(self.lbs_weights))


@flax.struct.dataclass
class SMPLOutput:
  """A posed body.

  Attributes:
    vertices: (B, 6890, 3) metres.
    joints: (B, 24, 3) metres, the posed skeleton (forward kinematics of the joints
      regressed from the shaped template, as smplx).
    joints_h36m: (B, 17, 3) metres, `J_regressor_h36m @ vertices`.
    rot_mats: (B, 24, 3, 3) local (parent-relative) rotations.
  """
  vertices: jnp.ndarray
  joints: jnp.ndarray
  joints_h36m: jnp.ndarray
  rot_mats: jnp.ndarray


# --------------------------------------------------------------------------------------
# Body model functions


def _check_model(model: SMPLModel) -> None:
  nv = constants.NUM_VERTICES
  utils.check_shape('model.v_template', model.v_template, (nv, 3))
  utils.check_shape('model.shapedirs', model.shapedirs, (nv, 3, constants.NUM_BETAS))
  utils.check_shape('model.posedirs', model.posedirs, (NUM_POSE_FEATURES, nv * 3))
  utils.check_shape('model.J_regressor', model.J_regressor, (constants.NUM_JOINTS, nv))
  utils.check_shape('model.lbs_weights', model.lbs_weights, (nv, constants.NUM_JOINTS))


def _shaped_template(model: SMPLModel, betas: jnp.ndarray) -> jnp.ndarray:
  """(B, 10) betas -> (B, 6890, 3) template plus shape blend shapes."""
  _check_model(model)
  utils.check_shape('betas', betas, (None, constants.NUM_BETAS))
  return model.v_template + jnp.einsum('bl,vcl->bvc', betas, model.shapedirs)


def rest_joints29(model: SMPLModel, betas: jnp.ndarray) -> jnp.ndarray:
  """Shaped rest skeleton of HybrIK's 29 joints.

  Args:
    model: the body model.
    betas: (B, 10) shape coefficients.

  Returns:
    (B, 29, 3) metres: the 24 joints regressed from the shaped template, then the
    shaped template's 5 leaf vertices (head, left/right middle finger tip,
    left/right big toe), as HybrIK's `hybrik` (lbs.py).
  """
  v_shaped = _shaped_template(model, betas)
  joints = jnp.einsum('jv,bvc->bjc', model.J_regressor, v_shaped)
  leaves = v_shaped[:, np.asarray(model.leaf_vertex_ids)]
  return jnp.concatenate([joints, leaves], axis=1)


def skin(model: SMPLModel, betas: jnp.ndarray, rot_mats: jnp.ndarray,
         transl: jnp.ndarray | None = None) -> SMPLOutput:
  """SMPL linear blend skinning given local rotations (smplx.lbs with pose2rot=False).

  Shape blend shapes, joints regressed from the shaped template, pose blend shapes
  (features R_j - I of joints 1..23), forward kinematics with the root at its rest
  position, skinning; then `transl` (if given) is added to everything.

  Args:
    model: the body model.
    betas: (B, 10) shape coefficients.
    rot_mats: (B, 24, 3, 3) local rotations; joint 0 is the global orientation.
    transl: optional (B, 3) translation, metres.

  Returns:
    SMPLOutput; vertices, joints and joints_h36m in the model frame (+ transl).
  """
  utils.check_shape('rot_mats', rot_mats, (None, constants.NUM_JOINTS, 3, 3))
  v_shaped = _shaped_template(model, betas)
  batch = v_shaped.shape[0]
  if rot_mats.shape[0] != batch:
    raise ValueError(f'betas and rot_mats must have the same batch size, got '
                     f'{betas.shape} and {rot_mats.shape}')
  vertices, posed_joints, _ = lbs.linear_blend_skinning(
      v_shaped, rot_mats, model.J_regressor, model.posedirs, model.lbs_weights,
      constants.SMPL_PARENTS)
  dtype = vertices.dtype
  rot_mats = rot_mats.astype(dtype)
  if transl is not None:
    utils.check_shape('transl', transl, (batch, 3))
    shift = transl.astype(dtype)[:, None]
    vertices = vertices + shift
    posed_joints = posed_joints + shift
  joints_h36m = jnp.einsum('jv,bvc->bjc', model.J_regressor_h36m.astype(dtype),
                           vertices)
  return SMPLOutput(vertices=vertices, joints=posed_joints,
                    joints_h36m=joints_h36m, rot_mats=rot_mats)


def forward(model: SMPLModel, betas: jnp.ndarray, pose: jnp.ndarray,
            transl: jnp.ndarray | None = None) -> SMPLOutput:
  """Standard SMPL: shape and pose -> posed mesh and joints (as smplx.SMPL).

  Args:
    model: the body model.
    betas: (B, 10) shape coefficients.
    pose: (B, 24, 3) axis-angle (radians) or (B, 24, 3, 3) rotation matrices;
      joint 0 is the global orientation.
    transl: optional (B, 3) translation, metres.

  Returns:
    SMPLOutput in the model frame (not root-centred), plus transl if given; equal
    to smplx.SMPL's vertices and first 24 joints.
  """
  if pose.ndim == 3:
    utils.check_shape('pose', pose, (None, constants.NUM_JOINTS, 3))
    rot_mats = geometry.axis_angle_to_matrix(pose)
  elif pose.ndim == 4:
    utils.check_shape('pose', pose, (None, constants.NUM_JOINTS, 3, 3))
    rot_mats = pose
  else:
    raise ValueError(f'pose must have shape (B, 24, 3) (axis-angle) or (B, 24, 3, 3) '
                     f'(rotation matrices), got {pose.shape}')
  return skin(model, betas, rot_mats, transl)


def hybrik(model: SMPLModel, betas: jnp.ndarray, pose_skeleton: jnp.ndarray,
           phis: jnp.ndarray, leaf_thetas: jnp.ndarray | None = None,
           transl: jnp.ndarray | None = None, *,
           convention: ik.IKConvention = ik.IKConvention(),
           return_fallback: bool = False
           ) -> SMPLOutput | tuple[SMPLOutput, jnp.ndarray]:
  """HybrIK's inverse pass: joints + twists + shape -> rotations and mesh.

  Mirrors `SMPL_layer.hybrik` / `lbs.hybrik` of HybrIK: the rest skeleton is
  `rest_joints29` (24 regressed joints + 5 leaf vertices of the shaped template);
  `ik.inverse_kinematics` turns the skeleton and twists into local rotations;
  skinning as `skin`; `joints` is the forward kinematics of the 24 rest joints with
  those rotations (HybrIK's `J_transformed`), not the input skeleton.

  Without `transl` the output is root-relative as HybrIK's: `joints` minus its
  pelvis (joint 0), `vertices` and `joints_h36m` minus the H36M pelvis
  (`joints_h36m[:, 0]`). As HybrIK (`.detach()`), the subtracted roots carry no
  gradient. With `transl`, nothing is centred and transl is added to all three.

  Args:
    model: the body model.
    betas: (B, 10) shape coefficients.
    pose_skeleton: (B, 24, 3) or (B, 29, 3) joints, metres, root-relative.
    phis: (B, 23, 2) twist (cos, sin) of joints 1..23 (normalised in the IK).
    leaf_thetas: optional (B, 5, 4) quaternions (w, x, y, z), normalised here, of
      local leaf rotations (with a 24-joint skeleton, as HybrIK-Transformer): slot k
      belongs to joint `convention.leaf_joints[k]`.
    transl: optional (B, 3) translation, metres.
    convention: the `ik.IKConvention` of the IK (default 'corrected', this
      project's; `ik.IKConvention.released()` is the released HybrIK-Transformer
      layer, reproduced to float32 precision, `.for_training()` its train mode;
      `ik.IKConvention.hybrik()` HybrIK's camera models, `.naive()` its layer's
      `naive=True` call).
    return_fallback: also return the IK's (B, 23) bool fallback mask.

  Returns:
    SMPLOutput (rot_mats are the IK's local rotations), and with
    `return_fallback` the fallback mask (column j - 1: joint j).
  """
  if pose_skeleton.ndim != 3 or pose_skeleton.shape[1] not in (24, 29):
    raise ValueError('pose_skeleton must have shape (B, 24, 3) or (B, 29, 3), got '
                     f'{pose_skeleton.shape}')
  utils.check_shape('pose_skeleton', pose_skeleton, (None, pose_skeleton.shape[1], 3))
  utils.check_shape('phis', phis, (pose_skeleton.shape[0], constants.NUM_TWISTS, 2))
  leaf_rotmats = None
  if leaf_thetas is not None:
    utils.check_shape('leaf_thetas', leaf_thetas, (pose_skeleton.shape[0], 5, 4))
    leaf_rotmats = geometry.quaternion_to_matrix(leaf_thetas)
  rest = rest_joints29(model, betas)
  rot_mats, fallback = ik.inverse_kinematics(
      pose_skeleton, rest, phis, leaf_rotmats, convention=convention,
      return_fallback=True)
  out = skin(model, betas, rot_mats, transl)
  if transl is None:
    root = jax.lax.stop_gradient(out.joints[:, :1])
    root_h36m = jax.lax.stop_gradient(out.joints_h36m[:, :1])
    out = out.replace(joints=out.joints - root,
                      vertices=out.vertices - root_h36m,
                      joints_h36m=out.joints_h36m - root_h36m)
  return (out, fallback) if return_fallback else out
