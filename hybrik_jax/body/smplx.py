"""The SMPL-X body model in JAX: its pytree and the forward pass (LBS).

SMPL-X (Pavlakos et al. 2019) is obtained, under its licence, from
https://smpl-x.is.tue.mpg.de; no SMPL-X file ships with this project. Files are
read by `hybrik_jax.body.smplx_io.load_smplx`; `hybrik_jax.body.synthetic_smplx`
builds a procedural body with exactly SMPL-X's arrays, for tests and synthetic data.

Conventions as `smpl`: metres, y up, the body faces +z, its left side at +x;
rotations are matrices acting on column vectors; axis-angle in radians. Joint
order `smplx_constants.SMPLX_JOINT_NAMES`: pelvis, 21 body joints, jaw, left and
right eye, 15 left-hand then 15 right-hand finger joints.
"""

from __future__ import annotations

import flax.struct
import jax.numpy as jnp
import numpy as np

from hybrik_jax import errors
from hybrik_jax import utils
from hybrik_jax.body import geometry
from hybrik_jax.body import lbs
from hybrik_jax.body import smplx_constants as xc


@flax.struct.dataclass
class SMPLXModel:
  """SMPL-X's arrays, an immutable pytree (the kinematic tree is static).

  Attributes:
    v_template: (10475, 3) rest template, metres.
    shapedirs: (10475, 3, NB) shape blend shapes (NB = 10 usually).
    expr_dirs: (10475, 3, NE) expression blend shapes (NE = 10 usually).
    kid_dir: (10475, 3) or None: the kid template (centred) minus v_template;
      its coefficient is an extra last beta (`betas` (B, NB + 1)), as smplx's and
      HybrIK-X's `age='kid'`.
    posedirs: (486, 10475 * 3) pose blend shapes; row 9 (j - 1) + 3 a + b is the
      coefficient of (R_j - I)[a, b], column 3 v + c the vertex coordinate.
    J_regressor: (55, 10475) joints from the shaped template.
    lbs_weights: (10475, 55) skinning weights.
    faces: (20908, 3) int32 triangles.
    hands_components_l, hands_components_r: (45, 45) hand pose PCA components
      (rows), axis-angle of the 15 finger joints.
    hands_mean_l, hands_mean_r: (45,) mean hand poses, axis-angle.
    lmk_faces_idx: (L,) int32 faces of the static face landmarks (L = 51).
    lmk_bary_coords: (L, 3) their barycentric coordinates.
    parents: static (55,) parent of each joint, -1 for the root.
  """
  v_template: jnp.ndarray
  shapedirs: jnp.ndarray
  expr_dirs: jnp.ndarray
  kid_dir: jnp.ndarray | None
  posedirs: jnp.ndarray
  J_regressor: jnp.ndarray  # pylint: disable=invalid-name
  lbs_weights: jnp.ndarray
  faces: jnp.ndarray
  hands_components_l: jnp.ndarray
  hands_components_r: jnp.ndarray
  hands_mean_l: jnp.ndarray
  hands_mean_r: jnp.ndarray
  lmk_faces_idx: jnp.ndarray
  lmk_bary_coords: jnp.ndarray
  parents: tuple[int, ...] = flax.struct.field(
      pytree_node=False, default=xc.SMPLX_PARENTS)

  @property
  def num_betas(self) -> int:
    """Shape coefficients `betas` takes: NB, plus 1 with a kid template."""
    return self.shapedirs.shape[-1] + (0 if self.kid_dir is None else 1)

  @property
  def num_expression(self) -> int:
    return self.expr_dirs.shape[-1]


@flax.struct.dataclass
class SMPLXOutput:
  """A posed SMPL-X body.

  Attributes:
    vertices: (B, 10475, 3) metres.
    joints: (B, 55, 3) metres, forward kinematics of the joints regressed from the
      shaped template (smplx's first 55 joints).
    rot_mats: (B, 55, 3, 3) local rotations (the full pose).
  """
  vertices: jnp.ndarray
  joints: jnp.ndarray
  rot_mats: jnp.ndarray


def shape_blend(model: SMPLXModel, betas: jnp.ndarray,
                expression: jnp.ndarray | None = None) -> jnp.ndarray:
  """(B, V, 3) shaped template: v_template + shape, kid and expression blends.

  Args:
    model: the body model.
    betas: (B, NB) shape coefficients, or (B, NB + 1) with the kid blend last
      (only for a model with a kid template).
    expression: (B, NE) expression coefficients, or None (zeros).
  """
  nb = model.shapedirs.shape[-1]
  if betas.ndim != 2 or betas.shape[1] not in (nb, model.num_betas):
    raise errors.InputError(
        f'betas must have shape (B, {nb})' + (
            f' or (B, {nb + 1}) (the kid blend last)' if model.kid_dir is not None
            else '') + f', got {betas.shape}')
  v = model.v_template + jnp.einsum('bl,vcl->bvc', betas[:, :nb], model.shapedirs)
  if betas.shape[1] == nb + 1:
    v = v + betas[:, nb:, None] * model.kid_dir
  if expression is not None:
    utils.check_shape('expression', expression, (betas.shape[0], model.num_expression))
    v = v + jnp.einsum('bl,vcl->bvc', expression, model.expr_dirs)
  return v


def rest_joints(model: SMPLXModel, betas: jnp.ndarray,
                expression: jnp.ndarray | None = None) -> jnp.ndarray:
  """(B, 55, 3) rest joints regressed from the shaped template, metres."""
  return jnp.einsum('jv,bvc->bjc', model.J_regressor,
                    shape_blend(model, betas, expression))


forward_kinematics = lbs.forward_kinematics  # Poses any tree (see body.lbs).


def skin(model: SMPLXModel, betas: jnp.ndarray, rot_mats: jnp.ndarray,
         expression: jnp.ndarray | None = None,
         transl: jnp.ndarray | None = None) -> SMPLXOutput:
  """SMPL-X linear blend skinning from local rotations (smplx.lbs, pose2rot=False).

  Equal to HybrIK-X's `SMPLXLayer.forward` with rotation matrices and to the
  smplx package's SMPLX given the same full pose.

  Args:
    model: the body model.
    betas: (B, NB) or (B, NB + 1) (kid blend last) shape coefficients.
    rot_mats: (B, 55, 3, 3) local rotations, joint order SMPLX_JOINT_NAMES.
    expression: optional (B, NE) expression coefficients.
    transl: optional (B, 3) translation, metres, added to vertices and joints.

  Returns:
    SMPLXOutput in the model frame (+ transl).
  """
  utils.check_shape('rot_mats', rot_mats, (None, xc.NUM_JOINTS, 3, 3))
  v_shaped = shape_blend(model, betas, expression)
  batch = v_shaped.shape[0]
  if rot_mats.shape[0] != batch:
    raise errors.InputError(f'betas and rot_mats must have the same batch size, got '
                            f'{betas.shape} and {rot_mats.shape}')
  vertices, posed, _ = lbs.linear_blend_skinning(
      v_shaped, rot_mats, model.J_regressor, model.posedirs, model.lbs_weights,
      model.parents)
  dtype = vertices.dtype
  rot_mats = rot_mats.astype(dtype)
  if transl is not None:
    utils.check_shape('transl', transl, (batch, 3))
    shift = transl.astype(dtype)[:, None]
    vertices = vertices + shift
    posed = posed + shift
  return SMPLXOutput(vertices=vertices, joints=posed, rot_mats=rot_mats)


def _axis_angles(name: str, x, batch: int, joints: int) -> jnp.ndarray:
  """(B, joints, 3) from (B, joints, 3) / (B, 3 joints) axis-angle, or zeros."""
  if x is None:
    return jnp.zeros((batch, joints, 3))
  x = jnp.asarray(x)
  if x.ndim == 2 and x.shape[1] == 3 * joints:
    x = x.reshape(x.shape[0], joints, 3)
  utils.check_shape(name, x, (batch, joints, 3))
  return x


def full_pose(model: SMPLXModel, batch: int, *, global_orient=None, body_pose=None,
              jaw_pose=None, leye_pose=None, reye_pose=None, left_hand_pose=None,
              right_hand_pose=None, hand_pca: bool = False,
              flat_hand_mean: bool = False) -> jnp.ndarray:
  """(B, 55, 3) axis-angle full pose from SMPL-X's parameters, as smplx.SMPLX.

  Args:
    model: the body model (hand PCA components and means).
    batch: B.
    global_orient: (B, 3); body_pose: (B, 21, 3) or (B, 63); jaw_pose, leye_pose,
      reye_pose: (B, 3); left_hand_pose / right_hand_pose: (B, 15, 3) or (B, 45)
      axis-angle, or with `hand_pca` (B, n) PCA coefficients (n <= 45: the first
      n components). None: zeros.
    hand_pca: hand poses are PCA coefficients.
    flat_hand_mean: as smplx's flag: False adds the model's mean hand pose to the
      hand poses (smplx's default), True does not.
  """
  def hand(name, x, components, mean):
    if x is not None and hand_pca:
      x = jnp.asarray(x)
      if x.ndim != 2 or x.shape[0] != batch or x.shape[1] > components.shape[0]:
        raise errors.InputError(f'{name} must have shape (B, n), n <= '
                                f'{components.shape[0]} PCA coefficients, got {x.shape}')
      x = (x @ components[:x.shape[1]]).reshape(batch, 15, 3)
    x = _axis_angles(name, x, batch, 15)
    return x if flat_hand_mean else x + mean.reshape(15, 3)

  parts = [
      _axis_angles('global_orient', global_orient, batch, 1),
      _axis_angles('body_pose', body_pose, batch, xc.NUM_BODY_JOINTS),
      _axis_angles('jaw_pose', jaw_pose, batch, 1),
      _axis_angles('leye_pose', leye_pose, batch, 1),
      _axis_angles('reye_pose', reye_pose, batch, 1),
      hand('left_hand_pose', left_hand_pose, model.hands_components_l,
           model.hands_mean_l),
      hand('right_hand_pose', right_hand_pose, model.hands_components_r,
           model.hands_mean_r),
  ]
  return jnp.concatenate([p.astype(model.v_template.dtype) for p in parts], axis=1)


def forward(model: SMPLXModel, betas: jnp.ndarray,
            expression: jnp.ndarray | None = None, *, global_orient=None,
            body_pose=None, jaw_pose=None, leye_pose=None, reye_pose=None,
            left_hand_pose=None, right_hand_pose=None,
            transl: jnp.ndarray | None = None, hand_pca: bool = False,
            flat_hand_mean: bool = False) -> SMPLXOutput:
  """Standard SMPL-X: shape, expression and axis-angle poses -> mesh and joints.

  As `smplx.SMPLX(use_pca=hand_pca, flat_hand_mean=flat_hand_mean)` (and with a
  kid template `age='kid'`): its vertices and first 55 joints. Arguments as
  `full_pose` and `skin`.
  """
  pose = full_pose(model, betas.shape[0], global_orient=global_orient,
                   body_pose=body_pose, jaw_pose=jaw_pose, leye_pose=leye_pose,
                   reye_pose=reye_pose, left_hand_pose=left_hand_pose,
                   right_hand_pose=right_hand_pose, hand_pca=hand_pca,
                   flat_hand_mean=flat_hand_mean)
  return skin(model, betas, geometry.axis_angle_to_matrix(pose), expression, transl)


def extra_joints(model: SMPLXModel, vertices: jnp.ndarray) -> jnp.ndarray:
  """(B, 21 + L, 3): smplx's joints after the 55: 21 vertices then L landmarks.

  The 21 vertices are `smplx_constants.EXTRA_JOINT_VERTEX_NAMES` (face, feet,
  fingertips); the landmarks are barycentric points of `lmk_faces_idx` (smplx
  without face contour). `jnp.concatenate([out.joints, extra_joints(model,
  out.vertices)], 1)` is smplx.SMPLX's (B, 127, 3) `joints`.
  """
  ids = np.asarray([xc.VERTEX_IDS[n] for n in xc.EXTRA_JOINT_VERTEX_NAMES])
  tri = vertices[:, model.faces[model.lmk_faces_idx]]  # (B, L, 3, 3)
  landmarks = jnp.einsum('blkc,lk->blc', tri, model.lmk_bary_coords.astype(
      vertices.dtype))
  return jnp.concatenate([vertices[:, ids], landmarks], axis=1)


def leaf_joints(model: SMPLXModel, vertices: jnp.ndarray) -> jnp.ndarray:
  """(B, 16, 3) HybrIK-X's leaf joints (55..70): `LEAF_VERTEX_IDS` of `vertices`."""
  del model
  return vertices[:, np.asarray(xc.LEAF_VERTEX_IDS)]
