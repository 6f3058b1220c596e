"""HybrIK's training loss of its camera models (`LaplaceLossDimSMPLCam`).

The criterion of the three camera configs of Jeff-sjtu/HybrIK (ResNet-34
Simple3DPoseBaseSMPLCam, HRNet-W48 HRNetSMPLCam), written anew from its
definition. Components (names as in the returned dict):

  uvd        Laplace negative log-likelihood of the 29 joints' uvd with the
             predicted per-joint sigma s (one per joint, all three axes):
             log(s / a) + |pred - target| / (sqrt(2) s + 1e-5), a = 1/sqrt(2 pi),
             weighted by target_uvd_weight_29, summed and divided by the sum of
             the weights (the sum itself when the weights are all 0). uvd in the
             network's normalised units (not x 64 as the non-camera loss).
  beta       MSE on the shape, both sides masked by target_smpl_weight.
  theta      MSE on the 24 local rotation MATRICES (B, 24, 3, 3), both sides
             masked by target_smpl_weight * target_rotmats_weight.
  twist      MSE on the twist (cos, sin), masked by target_twist_weight.
  cam_scale  MSE on the camera scale, masked per example by "more than 3
             labelled 3D coordinates" (sum of target_xyz_weight_24 > 3).
  cam_trans  MSE on the camera translation (tx, ty) m, same mask; only for a
             model whose camera has a translation (pred_camera (B, 3): the
             ResNet class; HRNetSMPLCam predicts a scale only, (B, 1), and the
             released criterion then has no translation term).

MSE is a mean over every element (masked ones included), as torch.nn.MSELoss.
The total is sum_k weights[k] * component_k. The zoo yamls' LOSS.ELEMENTS give
uvd (UVD24_WEIGHT) 1, beta 1, theta 0.01, twist 1; the released criterion adds
the two camera terms with weight 1 (written in its code, not in the yaml), and
reads PHI_REG_WEIGHT but adds no phi term (CAMERA_LOSS_WEIGHTS).
"""

import math
from typing import Any, Mapping

import jax
import jax.numpy as jnp

from hybrik_jax.training import losses
from hybrik_jax.utils import check_shape

CAMERA_LOSS_NAMES = ('uvd', 'beta', 'theta', 'twist', 'cam_scale', 'cam_trans')
# The released weights of the three camera configs (their LOSS.ELEMENTS, and
# the code's fixed 1 for the camera terms).
CAMERA_LOSS_WEIGHTS = dict(uvd=1.0, beta=1.0, theta=0.01, twist=1.0, cam_scale=1.0,
                           cam_trans=1.0)
# Density normaliser of the Laplace term: 1 / sqrt(2 pi), as released.
LAPLACE_AMP = 1.0 / math.sqrt(2.0 * math.pi)
# More than this many labelled 3D coordinates (of 72) turn the camera terms on.
MIN_XYZ_LABELS = 3.0


def laplace_uvd_loss(pred: jnp.ndarray, sigma: jnp.ndarray, target: jnp.ndarray,
                     weight: jnp.ndarray) -> jnp.ndarray:
  """Weighted Laplace NLL: sum((log(s/a) + |p - t| / (sqrt2 s + 1e-5)) w) / sum(w).

  Args:
    pred, target, weight: (B, J, 3).
    sigma: (B, J) or (B, J, 1), > 0 (the network's sigmoid output).

  Returns:
    A scalar; the plain sum when sum(weight) == 0 (as released).
  """
  if sigma.ndim == pred.ndim - 1:
    sigma = sigma[..., None]
  nll = jnp.log(sigma / LAPLACE_AMP) + jnp.abs(pred - target) / (math.sqrt(2.0) * sigma + 1e-5)
  total = jnp.sum(nll * weight)
  denom = jnp.sum(weight)
  return jnp.where(denom > 0, total / jnp.where(denom > 0, denom, 1.0), total)


def camera_mask(target_xyz_weight_24: jnp.ndarray) -> jnp.ndarray:
  """(B, 24, 3) or (B, 72) -> (B, 1) float: 1 where more than 3 coordinates are labelled."""
  w = target_xyz_weight_24.reshape(target_xyz_weight_24.shape[0], -1)
  return (jnp.sum(w, axis=1, keepdims=True) > MIN_XYZ_LABELS).astype(jnp.float32)


def camera_loss(outputs: Any, batch: Mapping[str, jnp.ndarray],
                weights: Mapping[str, float] = CAMERA_LOSS_WEIGHTS
                ) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
  """HybrIK's LaplaceLossDimSMPLCam and its components.

  Args:
    outputs: a mapping (or object) with the camera model's training outputs:
      pred_uvd (B, 29, 3) normalised uvd, pred_sigma (B, 29) (or (B, 29, 1)),
      pred_shape (B, 10), pred_phi (B, 23, 2), pred_camera (B, 3) (s, tx, ty)
      or (B, 1) (s), and, when weights['theta'] is non-zero, pred_rotmats
      (B, 24, 3, 3) local rotations (the IK's, as the released pred_theta_mats).
    batch: the camera preset's training batch (data/targets.py,
      `camera_targets`): target_uvd_29, target_uvd_weight_29 (B, 29, 3),
      target_beta (B, 10), target_smpl_weight (B, 1), target_rotmats,
      target_rotmats_weight (B, 24, 3, 3), target_twist, target_twist_weight
      (B, 23, 2), target_xyz_weight_24 (B, 24, 3), target_camera_scale (B, 1),
      target_camera_trans (B, 2) m.
    weights: {name: weight} for CAMERA_LOSS_NAMES (missing ones are 0); Python
      floats (static under jit): a zero weight skips its component.

  Returns:
    (total, components): a float32 scalar and {'loss': total, name: value};
    cam_trans is 0 for a scale-only camera.
  """
  w = losses.loss_weights(weights, CAMERA_LOSS_NAMES, 'camera_loss')
  f32 = lambda x: jnp.asarray(x, jnp.float32)
  pred_uvd = f32(losses.output_field(outputs, 'pred_uvd'))
  check_shape('pred_uvd', pred_uvd, (None, 29, 3))
  b = pred_uvd.shape[0]
  sigma = f32(losses.output_field(outputs, 'pred_sigma')).reshape(b, 29, 1)
  pred_shape = f32(losses.output_field(outputs, 'pred_shape'))
  pred_phi = f32(losses.output_field(outputs, 'pred_phi'))
  pred_camera = f32(losses.output_field(outputs, 'pred_camera'))
  check_shape('pred_shape', pred_shape, (b, 10))
  check_shape('pred_phi', pred_phi, (b, 23, 2))
  if pred_camera.ndim != 2 or pred_camera.shape[0] != b or pred_camera.shape[1] not in (1, 3):
    raise ValueError(f'pred_camera must be (B, 3) (s, tx, ty) or (B, 1) (s), '
                     f'got {pred_camera.shape}')
  smpl_weight = f32(batch['target_smpl_weight']).reshape(b, 1)
  zero = jnp.zeros((), jnp.float32)

  comps = {}
  comps['uvd'] = laplace_uvd_loss(pred_uvd, sigma, f32(batch['target_uvd_29']).reshape(b, 29, 3),
                                  f32(batch['target_uvd_weight_29']).reshape(b, 29, 3))
  comps['beta'] = jnp.mean(jnp.square((pred_shape - f32(batch['target_beta'])) * smpl_weight))
  tw = f32(batch['target_twist_weight'])
  comps['twist'] = jnp.mean(jnp.square((pred_phi - f32(batch['target_twist'])) * tw))
  if w['theta']:
    rotmats = f32(losses.output_field(outputs, 'pred_rotmats'))
    check_shape('pred_rotmats', rotmats, (b, 24, 3, 3))
    mask = f32(batch['target_rotmats_weight']).reshape(b, 24, 3, 3) * smpl_weight[:, :, None, None]
    target = f32(batch['target_rotmats']).reshape(b, 24, 3, 3)
    comps['theta'] = jnp.mean(jnp.square((rotmats - target) * mask))
  else:
    comps['theta'] = zero

  cam_mask = camera_mask(f32(batch['target_xyz_weight_24']))
  scale_target = f32(batch['target_camera_scale']).reshape(b, 1)
  comps['cam_scale'] = jnp.mean(jnp.square((pred_camera[:, :1] - scale_target) * cam_mask))
  if pred_camera.shape[1] == 3:
    trans_target = f32(batch['target_camera_trans']).reshape(b, 2)
    comps['cam_trans'] = jnp.mean(jnp.square((pred_camera[:, 1:] - trans_target) * cam_mask))
  else:
    comps['cam_trans'] = zero

  total = sum(w[k] * comps[k] for k in CAMERA_LOSS_NAMES if w[k])
  total = jnp.asarray(total, jnp.float32)
  return total, {'loss': total, **comps}


# ----------------------------------------------------------------------------
# The Transformer head's camera token (this project's; models.transformer).
# ----------------------------------------------------------------------------

# Its terms, added to losses.hybrik_loss (which trains its joints, twists, shape):
# cam_scale, cam_trans as camera_loss's, and sigma: the Laplace NLL of the 24
# joints' uvd with the predicted sigma, the uvd held fixed (stop_gradient), so it
# trains the sigma alone (the weights of the scale refinement) and the joints
# stay trained by the Transformer's own uvd loss.
CAMERA_TOKEN_LOSS_NAMES = ('cam_scale', 'cam_trans', 'sigma')
CAMERA_TOKEN_LOSS_WEIGHTS = dict(cam_scale=1.0, cam_trans=1.0, sigma=1.0)


def camera_token_loss(outputs: Any, batch: Mapping[str, jnp.ndarray],
                      weights: Mapping[str, float] = CAMERA_TOKEN_LOSS_WEIGHTS
                      ) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
  """The camera terms of a Transformer head with a camera token.

  Args:
    outputs: pred_uvd (B, 24, 3) normalised, pred_sigma (B, 24) in (0, 1),
      pred_camera (B, 3) (s, tx, ty).
    batch: target_uvd_29, target_uvd_weight_29 (B, 29, 3) (the first 24 used;
      depths in the model's unit), target_xyz_weight_24 (B, 24, 3),
      target_camera_scale (B, 1), target_camera_trans (B, 2) m (the camera
      preset's targets, data.camera_targets).
    weights: {name: weight} for CAMERA_TOKEN_LOSS_NAMES (missing ones are 0).

  Returns:
    (total, {name: value}) float32; MSEs as camera_loss's (same mask).
  """
  w = losses.loss_weights(weights, CAMERA_TOKEN_LOSS_NAMES, 'camera_token_loss')
  f32 = lambda x: jnp.asarray(x, jnp.float32)
  pred_uvd = jax.lax.stop_gradient(f32(losses.output_field(outputs, 'pred_uvd')))
  check_shape('pred_uvd', pred_uvd, (None, 24, 3))
  b = pred_uvd.shape[0]
  sigma = f32(losses.output_field(outputs, 'pred_sigma'))
  check_shape('pred_sigma', sigma, (b, 24))
  pred_camera = f32(losses.output_field(outputs, 'pred_camera'))
  check_shape('pred_camera', pred_camera, (b, 3))
  target = f32(batch['target_uvd_29']).reshape(b, 29, 3)[:, :24]
  weight = f32(batch['target_uvd_weight_29']).reshape(b, 29, 3)[:, :24]
  mask = camera_mask(f32(batch['target_xyz_weight_24']))
  comps = {
      'sigma': laplace_uvd_loss(pred_uvd, sigma, target, weight),
      'cam_scale': jnp.mean(jnp.square(
          (pred_camera[:, :1] - f32(batch['target_camera_scale']).reshape(b, 1)) * mask)),
      'cam_trans': jnp.mean(jnp.square(
          (pred_camera[:, 1:] - f32(batch['target_camera_trans']).reshape(b, 2)) * mask)),
  }
  total = jnp.asarray(sum(w[k] * comps[k] for k in CAMERA_TOKEN_LOSS_NAMES if w[k]),
                      jnp.float32)
  return total, comps
