"""HybrIK's training loss (L1LossDimSMPL as used by HybrIK-Transformer).

Components (names as in the returned dict), each as in the released
`HybrIK/hybrik/models/criterion.py`:

  uvd       weighted L1 on the 24 joints' uvd, both scaled by 64 (the heatmap
            size), summed and divided by the sum of the weights.
  beta      MSE on the shape, masked by target_smpl_weight.
  theta     MSE on the local rotations as (w, x, y, z) quaternions, masked by
            target_smpl_weight * target_theta_weight.
  twist     MSE on the twist angles (cos, sin), masked by target_twist_weight.
  phi_norm  MSE between |phi| and 1 (keeps the twist vectors near the circle).
  leaf_norm MSE between |leaf quaternion| and 1 (only with pred_leaf).

MSE is a mean over every element (masked ones included), as torch.nn.MSELoss.
The total is sum_k weights[k] * component_k. Paper weights (configs/paper.py):
uvd 1, beta 1, theta 0.01, twist 0.01. The released criterion reads
PHI_REG_WEIGHT / LEAF_REG_WEIGHT from its yaml but never adds those terms, so
phi_norm and leaf_norm are 0 there (they stay available here).

Quaternion sign (theta): a rotation is q or -q. The released code turns the
predicted rotations into quaternions with `rotmat_to_quat`, whose sign is not
w >= 0: it makes a "pivot" component positive, chosen from the matrix diagonal
(`released_quaternion_sign`), while its targets have w >= 0. With
`quaternion_sign='released'` the predicted quaternions get that sign, so the
theta term equals the released one (tests/test_released_parity.py); the
default 'w_positive' compares q and target on the same hemisphere.
"""

from typing import Any, Mapping, Sequence

import jax.numpy as jnp

from hybrik_jax.body import geometry
from hybrik_jax.utils import check_shape

UVD_SCALE = 64.0
LOSS_NAMES = ('uvd', 'beta', 'theta', 'twist', 'phi_norm', 'leaf_norm')
QUATERNION_SIGNS = ('w_positive', 'released')


def output_field(outputs: Any, name: str, default: Any = None) -> Any:
  """`outputs[name]` of a dict or `outputs.name` of a ModelOutput (default if absent)."""
  if isinstance(outputs, Mapping):
    return outputs.get(name, default)
  return getattr(outputs, name, default)


def weighted_l1(pred: jnp.ndarray, target: jnp.ndarray,
                weight: jnp.ndarray, scale: float = UVD_SCALE) -> jnp.ndarray:
  """sum(|pred - target| * scale * weight) / sum(weight) (sum when no weight)."""
  total = jnp.sum(jnp.abs(pred - target) * scale * weight)
  denom = jnp.sum(weight)
  return jnp.where(denom > 0, total / jnp.where(denom > 0, denom, 1.0), total)


def _safe_norm(x: jnp.ndarray) -> jnp.ndarray:
  """L2 norm over the last axis with a finite gradient at 0."""
  sq = jnp.sum(x * x, axis=-1)
  safe = jnp.where(sq > 0, sq, 1.0)
  return jnp.where(sq > 0, jnp.sqrt(safe), 0.0)


def unit_norm_penalty(x: jnp.ndarray) -> jnp.ndarray:
  """mean((|x| - 1)^2) over all but the last axis."""
  return jnp.mean(jnp.square(_safe_norm(x) - 1.0))


def released_quaternion_sign(rotmats: jnp.ndarray, quats: jnp.ndarray) -> jnp.ndarray:
  """Gives quaternions (..., 4) of rotmats (..., 3, 3) the released code's sign.

  The released `rotmat_to_quat` makes one component positive, picked from the
  diagonal of R: if R22 < 1e-6, x when R00 > R11 else y; otherwise z when
  R00 < -R11 else w. Measured equal (up to float32) to the released function.
  """
  r00, r11, r22 = rotmats[..., 0, 0], rotmats[..., 1, 1], rotmats[..., 2, 2]
  pivot = jnp.where(r22 < 1e-6, jnp.where(r00 > r11, 1, 2), jnp.where(r00 < -r11, 3, 0))
  comp = jnp.take_along_axis(quats, pivot[..., None], axis=-1)
  return jnp.where(comp < 0, -quats, quats)


def loss_weights(weights: Mapping[str, float], names: Sequence[str],
                 loss: str) -> dict[str, float]:
  """Every name in `names` -> its float weight (0 if absent); unknown names raise."""
  weights = dict(weights)
  unknown = set(weights) - set(names)
  if unknown:
    raise ValueError(f'{loss}: unknown loss weight(s) {sorted(unknown)}; '
                     f'known: {list(names)}')
  return {k: float(weights.get(k, 0.0)) for k in names}


def hybrik_loss(outputs: Any, batch: Mapping[str, jnp.ndarray],
                weights: Mapping[str, float], *, quaternion_sign: str = 'w_positive'
                ) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
  """The weighted HybrIK loss and its components.

  Args:
    outputs: a `ModelOutput` (or a mapping) with pred_uvd (B,24,3) normalised
      uvd, pred_phi (B,23,2), pred_shape (B,10) and, when weights['theta'] is
      non-zero, pred_rotmats (B,24,3,3) local rotations (or pred_theta (B,24,4)
      quaternions); pred_leaf (B,5,4) for leaf_norm.
    batch: the training batch (ARCHITECTURE.md "Batches"): target_uvd_29,
      target_uvd_weight_29, target_beta, target_smpl_weight, target_theta,
      target_theta_weight, target_twist, target_twist_weight.
    weights: {name: weight} for the names in LOSS_NAMES (missing ones are 0).
      Python floats (static under jit): a zero weight skips its component.
    quaternion_sign: sign of the quaternions made from pred_rotmats:
      'w_positive' or 'released' (see the module docstring).

  Returns:
    (total, components): a float32 scalar and {'loss': total, name: value}.
  """
  w = loss_weights(weights, LOSS_NAMES, 'hybrik_loss')
  if quaternion_sign not in QUATERNION_SIGNS:
    raise ValueError(f'hybrik_loss: quaternion_sign must be one of {QUATERNION_SIGNS}, '
                     f'got {quaternion_sign!r}')
  f32 = lambda x: jnp.asarray(x, jnp.float32)
  pred_uvd = f32(output_field(outputs, 'pred_uvd'))
  pred_phi = f32(output_field(outputs, 'pred_phi'))
  pred_shape = f32(output_field(outputs, 'pred_shape'))
  check_shape('pred_uvd', pred_uvd, (None, 24, 3))
  check_shape('pred_phi', pred_phi, (None, 23, 2))
  check_shape('pred_shape', pred_shape, (None, 10))
  b = pred_uvd.shape[0]
  smpl_weight = f32(batch['target_smpl_weight']).reshape(b, 1)

  comps = {}
  target_uvd = f32(batch['target_uvd_29'])[:, :24]
  target_uvd_weight = f32(batch['target_uvd_weight_29'])[:, :24]
  comps['uvd'] = weighted_l1(pred_uvd, target_uvd, target_uvd_weight)

  target_beta = f32(batch['target_beta'])
  comps['beta'] = jnp.mean(jnp.square((pred_shape - target_beta) * smpl_weight))

  target_twist_weight = f32(batch['target_twist_weight'])
  comps['twist'] = jnp.mean(jnp.square(
      (pred_phi - f32(batch['target_twist'])) * target_twist_weight))

  comps['phi_norm'] = unit_norm_penalty(pred_phi)

  if w['theta']:
    pred_theta = output_field(outputs, 'pred_theta')
    if pred_theta is None:
      rotmats = f32(output_field(outputs, 'pred_rotmats'))
      check_shape('pred_rotmats', rotmats, (None, 24, 3, 3))
      pred_theta = geometry.matrix_to_quaternion(rotmats)
      if quaternion_sign == 'released':
        pred_theta = released_quaternion_sign(rotmats, pred_theta)
    pred_theta = f32(pred_theta)
    check_shape('pred_theta', pred_theta, (None, 24, 4))
    mask = f32(batch['target_theta_weight']) * smpl_weight[:, :, None]
    comps['theta'] = jnp.mean(jnp.square(
        (pred_theta - f32(batch['target_theta'])) * mask))
  else:
    comps['theta'] = jnp.zeros((), jnp.float32)

  pred_leaf = output_field(outputs, 'pred_leaf')
  if pred_leaf is not None and w['leaf_norm']:
    comps['leaf_norm'] = unit_norm_penalty(f32(pred_leaf))
  else:
    comps['leaf_norm'] = jnp.zeros((), jnp.float32)

  total = sum(w[k] * comps[k] for k in LOSS_NAMES if w[k])
  total = jnp.asarray(total, jnp.float32)
  return total, {'loss': total, **comps}
