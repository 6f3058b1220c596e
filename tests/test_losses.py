"""Tests for hybrik_jax.training.losses (checked against HybrIK's formulas in torch)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from hybrik_jax.body import geometry
from hybrik_jax.training import losses

B = 3
# The paper's weights plus a phi_norm term (the released criterion never adds it:
# configs/paper.py has phi_norm 0; here it is on so that its formula is tested).
PAPER_WEIGHTS = dict(uvd=1.0, beta=1.0, theta=0.01, twist=0.01, phi_norm=1e-4)


def _random_case(seed=0):
  rng = np.random.default_rng(seed)
  rand = lambda *s: rng.normal(size=s).astype(np.float32)
  aa = rand(B, 24, 3) * 0.5
  outputs = dict(
      pred_uvd=rand(B, 24, 3) * 0.3,
      pred_phi=rand(B, 23, 2),
      pred_shape=rand(B, 10),
      pred_rotmats=np.asarray(geometry.axis_angle_to_matrix(jnp.asarray(aa))),
  )
  batch = dict(
      target_uvd_29=rand(B, 29, 3) * 0.3,
      target_uvd_weight_29=(rng.uniform(size=(B, 29, 3)) > 0.3).astype(
          np.float32),
      target_beta=rand(B, 10),
      target_smpl_weight=np.array([[1.], [0.], [1.]], np.float32),
      target_theta=np.asarray(geometry.axis_angle_to_quaternion(
          jnp.asarray(rand(B, 24, 3) * 0.5))),
      target_theta_weight=(rng.uniform(size=(B, 24, 4)) > 0.2).astype(
          np.float32),
      target_twist=rand(B, 23, 2),
      target_twist_weight=(rng.uniform(size=(B, 23, 2)) > 0.2).astype(
          np.float32),
  )
  return outputs, batch


def _torch_reference(outputs, batch, weights):
  """HybrIK's L1LossDimSMPL.forward + this project's phi_norm, on torch tensors.

  The released code itself is checked in test_released_parity.py.
  """
  t = {k: torch.from_numpy(np.array(v)) for k, v in {**outputs, **batch}.items()}
  mse = torch.nn.MSELoss()
  sw = t['target_smpl_weight']
  pred_theta = torch.from_numpy(np.array(geometry.matrix_to_quaternion(
      jnp.asarray(outputs['pred_rotmats'])))).reshape(B, 96)
  loss_beta = mse(t['pred_shape'] * sw, t['target_beta'] * sw)
  tw = t['target_theta_weight'].reshape(B, 96)
  loss_theta = mse(pred_theta * sw * tw, t['target_theta'].reshape(B, 96) * sw * tw)
  loss_twist = mse(t['pred_phi'] * t['target_twist_weight'],
                   t['target_twist'] * t['target_twist_weight'])
  w = t['target_uvd_weight_29'][:, :24]
  out = torch.abs(t['pred_uvd'] * 64 - t['target_uvd_29'][:, :24] * 64) * w
  loss_uvd = out.sum() / w.sum()
  norm = torch.norm(t['pred_phi'], dim=2)
  loss_phi = mse(norm, torch.ones_like(norm))
  total = (weights['beta'] * loss_beta + weights['theta'] * loss_theta +
           weights['twist'] * loss_twist + weights['uvd'] * loss_uvd +
           weights['phi_norm'] * loss_phi)
  return {'loss': total, 'beta': loss_beta, 'theta': loss_theta,
          'twist': loss_twist, 'uvd': loss_uvd, 'phi_norm': loss_phi}


def test_matches_hybrik_criterion():
  outputs, batch = _random_case()
  total, comps = jax.jit(
      lambda o, b: losses.hybrik_loss(o, b, PAPER_WEIGHTS))(outputs, batch)
  ref = _torch_reference(outputs, batch, PAPER_WEIGHTS)
  for k, v in ref.items():
    np.testing.assert_allclose(comps[k], v.item(), rtol=1e-5, err_msg=k)
  np.testing.assert_allclose(total, ref['loss'].item(), rtol=1e-5)
  assert float(comps['leaf_norm']) == 0.0


def test_zero_at_the_target():
  outputs, batch = _random_case(1)
  outputs['pred_uvd'] = batch['target_uvd_29'][:, :24]
  outputs['pred_shape'] = batch['target_beta']
  outputs['pred_rotmats'] = np.asarray(
      geometry.quaternion_to_matrix(jnp.asarray(batch['target_theta'])))
  phi = batch['target_twist']
  phi = phi / np.linalg.norm(phi, axis=-1, keepdims=True)
  batch['target_twist'] = phi
  outputs['pred_phi'] = phi
  total, comps = losses.hybrik_loss(outputs, batch, PAPER_WEIGHTS)
  chex.assert_trees_all_close(
      {k: comps[k] for k in losses.LOSS_NAMES},
      {k: 0.0 for k in losses.LOSS_NAMES}, atol=1e-5)
  np.testing.assert_allclose(total, 0.0, atol=1e-6)


def test_no_uvd_weight_and_zero_phi_are_finite():
  outputs, batch = _random_case(2)
  batch['target_uvd_weight_29'] = np.zeros_like(batch['target_uvd_weight_29'])
  outputs['pred_phi'] = np.zeros_like(outputs['pred_phi'])
  grads = jax.grad(lambda o: losses.hybrik_loss(o, batch, PAPER_WEIGHTS)[0])(
      jax.tree.map(jnp.asarray, outputs))
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))


def test_unknown_weight_and_wrong_shape():
  outputs, batch = _random_case()
  with pytest.raises(ValueError, match='uvd24'):
    losses.hybrik_loss(outputs, batch, {'uvd24': 1.0})
  outputs['pred_uvd'] = outputs['pred_uvd'][:, :17]
  with pytest.raises(ValueError, match='pred_uvd'):
    losses.hybrik_loss(outputs, batch, PAPER_WEIGHTS)


def test_quaternion_sign_released_flips_only_signs():
  outputs, batch = _random_case()
  outputs['pred_rotmats'] = np.asarray(geometry.axis_angle_to_matrix(
      jnp.asarray(np.random.default_rng(4).normal(0, 1.5, (B, 24, 3)), jnp.float32)))
  rot = jnp.asarray(outputs['pred_rotmats'])
  q = geometry.matrix_to_quaternion(rot)
  q_released = losses.released_quaternion_sign(rot, q)
  same = np.all(np.isclose(q_released, q), -1)
  flipped = np.all(np.isclose(q_released, -q), -1)
  assert np.all(same | flipped) and flipped.any()
  _, w_pos = losses.hybrik_loss(outputs, batch, {'theta': 1.0})
  _, rel = losses.hybrik_loss(outputs, batch, {'theta': 1.0}, quaternion_sign='released')
  assert float(rel['theta']) > float(w_pos['theta'])  # targets have w >= 0
  with pytest.raises(ValueError, match='quaternion_sign'):
    losses.hybrik_loss(outputs, batch, {'theta': 1.0}, quaternion_sign='positive')


def test_leaf_norm_penalty():
  outputs, batch = _random_case()
  outputs['pred_leaf'] = np.full((B, 5, 4), 1.0, np.float32)  # norm 2
  _, comps = losses.hybrik_loss(outputs, batch, {**PAPER_WEIGHTS,
                                                 'leaf_norm': 1.0})
  np.testing.assert_allclose(comps['leaf_norm'], 1.0, rtol=1e-6)
