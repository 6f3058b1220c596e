"""HybrIK-X's training losses (the SMPL-X camera models), reconstructed.

The two zoo yamls of Jeff-sjtu/HybrIK (configs/smplx/) name their criteria
`L1LossDimSMPLXCamKid` (HRNetSMPLXCamKid, 2.5D heatmaps; USE_LAPLACE True) and
`RLELossDimSMPLXCamKid` (HRNetSMPLXCamKidReg, regression; HAND_REL True), but
neither class is in the released code (its loss registry raises KeyError for
both; upstream issues #244 and #249). So these are this project's criteria,
written as the released SMPL camera criterion (`LaplaceLossDimSMPLCam`,
`camera_losses.camera_loss`) carried over to HybrIK-X's outputs and the targets
of its released SMPL-X preset (`SimpleTransform3DSMPLX`), each term checked
against the released code run as it is on SMPL-X-sized inputs
(tests/test_smplx_training.py, docs/FIDELITY.md). Components (names as in the
returned dict):

  uvd         Laplace negative log-likelihood of the 71 joints' uvd with the
              predicted per-joint sigma (camera_losses.laplace_uvd_loss: the
              released weighted_laplace_loss), weighted by target_uvd_weight_71.
              With hand_relative (the RLE criterion, its yaml's HAND_REL): the
              30 finger joints (25..39 left, 40..54 right) and their targets
              taken relative to their wrist (20, 21), a finger coordinate's
              weight times its wrist's; every other joint as is.
  beta        MSE on the 11 shape values (10 betas, the kid blend) against
              target_beta ++ target_beta_kid, both sides x target_smpl_weight.
  expression  MSE on the 10 expression values, masked the same way.
  theta       MSE on the 55 local rotation matrices (B, 55, 3, 3), both sides x
              target_smpl_weight x target_rotmats_weight.
  twist       MSE on the 54 twists (cos, sin) x target_twist_weight.
  cam_scale   MSE on the camera scale (both classes predict a scale only),
              masked per example by "more than 3 of the first 72 coordinates of
              target_xyz_weight_71 labelled" (what the released SMPL class does
              with SMPL-X-sized weights: it reads the first 24 joints).

MSE is a mean over every element (masked ones included), as torch.nn.MSELoss.
The total is sum_k weights[k] * component_k; the yamls' LOSS.ELEMENTS give uvd
(UVD24_WEIGHT) 1, beta 1, theta 0.01, twist 1; expression has no yaml field and
takes BETA_WEIGHT (the released network predicts betas, kid blend and expression
in one `decshape` vector); cam_scale 1 as the released camera criterion's code.
PHI_REG_WEIGHT, LEAF_REG_WEIGHT, RUBOST_TRAIN are read by nothing released and
add nothing here. The RLE criterion's flow term (RLE's -log G) is left out: no
flow is released with HRNetSMPLXCamKidReg (its network has none), so 'RLE' here
is the Laplace likelihood of the regressed joints with their sigma.
"""

from typing import Any, Mapping

import jax.numpy as jnp

from hybrik_jax.body import smplx_constants
from hybrik_jax.training import camera_losses
from hybrik_jax.training import losses
from hybrik_jax.utils import check_shape

NUM_JOINTS = smplx_constants.NUM_JOINTS_71      # 71
NUM_ROTATIONS = smplx_constants.NUM_JOINTS      # 55
NUM_TWISTS = smplx_constants.NUM_TWISTS_X        # 54
NUM_BETAS = smplx_constants.NUM_BETAS            # 10
NUM_EXPRESSION = smplx_constants.NUM_EXPRESSION  # 10

SMPLX_LOSS_NAMES = ('uvd', 'beta', 'expression', 'theta', 'twist', 'cam_scale')
# The yamls' LOSS.ELEMENTS (identical in both zoo configs) and the camera term.
SMPLX_LOSS_WEIGHTS = dict(uvd=1.0, beta=1.0, expression=1.0, theta=0.01, twist=1.0,
                          cam_scale=1.0)
# The released names -> (weights, hand_relative).
CRITERIA = {
    'L1LossDimSMPLXCamKid': (SMPLX_LOSS_WEIGHTS, False),
    'RLELossDimSMPLXCamKid': (SMPLX_LOSS_WEIGHTS, True),
}
# Finger joints of each hand and their wrist (HybrIK-X's 71-joint order).
LEFT_FINGERS, RIGHT_FINGERS = tuple(range(25, 40)), tuple(range(40, 55))
LEFT_WRIST, RIGHT_WRIST = 20, 21


def wrist_of_joint() -> jnp.ndarray:
  """(71,) int: each finger joint's wrist, every other joint itself."""
  idx = list(range(NUM_JOINTS))
  for fingers, wrist in ((LEFT_FINGERS, LEFT_WRIST), (RIGHT_FINGERS, RIGHT_WRIST)):
    for j in fingers:
      idx[j] = wrist
  return jnp.asarray(idx)


def hand_relative(uvd: jnp.ndarray, weight: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
  """(B, 71, 3) uvd and weights -> the fingers relative to their wrist.

  Finger j: uvd[j] - uvd[wrist(j)], weight[j] * weight[wrist(j)]; other joints
  unchanged.
  """
  parent = wrist_of_joint()
  is_finger = (parent != jnp.arange(NUM_JOINTS))[None, :, None]
  rel_uvd = jnp.where(is_finger, uvd - uvd[:, parent], uvd)
  rel_w = jnp.where(is_finger, weight * weight[:, parent], weight)
  return rel_uvd, rel_w


def smplx_loss(outputs: Any, batch: Mapping[str, jnp.ndarray],
               weights: Mapping[str, float] = SMPLX_LOSS_WEIGHTS, *,
               hand_relative_uvd: bool = False
               ) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
  """HybrIK-X's criterion (module docstring) and its components.

  Args:
    outputs: a mapping (or object) with pred_uvd (B, 71, 3) normalised uvd,
      pred_sigma (B, 71) (or (B, 71, 1)) in (0, 1), pred_shape (B, 11) (10
      betas, kid blend), pred_expression (B, 10), pred_phi (B, 54, 2),
      pred_camera (B, 1) (or (B, k): column 0 the scale) and, when
      weights['theta'] is non-zero, pred_rotmats (B, 55, 3, 3) local rotations
      (the IK's).
    batch: target_uvd_71, target_uvd_weight_71 (B, 71, 3) (uvd in the model's
      units), target_beta (B, 10), target_beta_kid (B, 1), target_expression
      (B, 10), target_smpl_weight (B, 1), target_rotmats, target_rotmats_weight
      (B, 55, 3, 3), target_twist, target_twist_weight (B, 54, 2),
      target_xyz_weight_71 (B, 71, 3), target_camera_scale (B, 1).
    weights: {name: weight} for SMPLX_LOSS_NAMES (missing ones are 0); Python
      floats (static under jit): a zero weight skips its component.
    hand_relative_uvd: the uvd term on wrist-relative fingers (RLE criterion).

  Returns:
    (total, {'loss': total, name: value}) float32 scalars.
  """
  w = losses.loss_weights(weights, SMPLX_LOSS_NAMES, 'smplx_loss')
  f32 = lambda x: jnp.asarray(x, jnp.float32)
  pred_uvd = f32(losses.output_field(outputs, 'pred_uvd'))
  check_shape('pred_uvd', pred_uvd, (None, NUM_JOINTS, 3))
  b = pred_uvd.shape[0]
  sigma = f32(losses.output_field(outputs, 'pred_sigma')).reshape(b, NUM_JOINTS, 1)
  pred_shape = f32(losses.output_field(outputs, 'pred_shape'))
  pred_expr = f32(losses.output_field(outputs, 'pred_expression'))
  pred_phi = f32(losses.output_field(outputs, 'pred_phi'))
  pred_camera = f32(losses.output_field(outputs, 'pred_camera'))
  check_shape('pred_shape', pred_shape, (b, NUM_BETAS + 1))
  check_shape('pred_expression', pred_expr, (b, NUM_EXPRESSION))
  check_shape('pred_phi', pred_phi, (b, NUM_TWISTS, 2))
  if pred_camera.ndim != 2 or pred_camera.shape[0] != b:
    raise ValueError(f'pred_camera must be (B, k) with the scale in column 0, '
                     f'got {pred_camera.shape}')
  smpl_weight = f32(batch['target_smpl_weight']).reshape(b, 1)
  zero = jnp.zeros((), jnp.float32)
  mse = lambda p, t, m: jnp.mean(jnp.square((p - t) * m))

  target_uvd = f32(batch['target_uvd_71']).reshape(b, NUM_JOINTS, 3)
  uvd_weight = f32(batch['target_uvd_weight_71']).reshape(b, NUM_JOINTS, 3)
  if hand_relative_uvd:
    pred_uvd, _ = hand_relative(pred_uvd, uvd_weight)
    target_uvd, uvd_weight = hand_relative(target_uvd, uvd_weight)
  comps = {'uvd': camera_losses.laplace_uvd_loss(pred_uvd, sigma, target_uvd, uvd_weight)}
  target_shape = jnp.concatenate([f32(batch['target_beta']).reshape(b, NUM_BETAS),
                                  f32(batch['target_beta_kid']).reshape(b, 1)], axis=1)
  comps['beta'] = mse(pred_shape, target_shape, smpl_weight)
  comps['expression'] = mse(pred_expr, f32(batch['target_expression']).reshape(
      b, NUM_EXPRESSION), smpl_weight)
  if w['theta']:
    rotmats = f32(losses.output_field(outputs, 'pred_rotmats'))
    check_shape('pred_rotmats', rotmats, (b, NUM_ROTATIONS, 3, 3))
    mask = (f32(batch['target_rotmats_weight']).reshape(b, NUM_ROTATIONS, 3, 3)
            * smpl_weight[:, :, None, None])
    comps['theta'] = mse(rotmats, f32(batch['target_rotmats']).reshape(
        b, NUM_ROTATIONS, 3, 3), mask)
  else:
    comps['theta'] = zero
  comps['twist'] = mse(pred_phi, f32(batch['target_twist']).reshape(b, NUM_TWISTS, 2),
                       f32(batch['target_twist_weight']).reshape(b, NUM_TWISTS, 2))
  xyz_w = f32(batch['target_xyz_weight_71']).reshape(b, -1)[:, :72]
  cam_mask = camera_losses.camera_mask(xyz_w)
  comps['cam_scale'] = mse(pred_camera[:, :1],
                           f32(batch['target_camera_scale']).reshape(b, 1), cam_mask)
  total = jnp.asarray(sum(w[k] * comps[k] for k in SMPLX_LOSS_NAMES if w[k]), jnp.float32)
  return total, {'loss': total, **comps}


def criterion(name: str):
  """The released criterion name -> fn(outputs, batch) -> (total, components)."""
  if name not in CRITERIA:
    raise ValueError(f'unknown SMPL-X criterion {name!r}; known: {sorted(CRITERIA)}')
  weights, rel = CRITERIA[name]
  return lambda outputs, batch: smplx_loss(outputs, batch, weights, hand_relative_uvd=rel)


# The zoo pairs each head with its yaml's criterion.
HEAD_CRITERIA = {'heatmap': 'L1LossDimSMPLXCamKid', 'regression': 'RLELossDimSMPLXCamKid'}


def criterion_for_head(head: str, weights: Mapping[str, float] = SMPLX_LOSS_WEIGHTS):
  """model.head ('heatmap' | 'regression') -> fn(outputs, batch) with `weights`,
  hand-relative uvd for the regression head (its yaml's HAND_REL)."""
  if head not in HEAD_CRITERIA:
    raise ValueError(f'SMPL-X models have head {sorted(HEAD_CRITERIA)}, got {head!r}')
  rel = CRITERIA[HEAD_CRITERIA[head]][1]
  weights = dict(weights)
  return lambda outputs, batch: smplx_loss(outputs, batch, weights, hand_relative_uvd=rel)
