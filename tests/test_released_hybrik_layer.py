"""The 'hybrik' IK convention against Jeff-sjtu/HybrIK's released SMPL layer.

tests/data/released_hybrik/hybrik_layer.npz holds what `SMPL_layer.hybrik` of the released
code (Jeff-sjtu/HybrIK @ 9b8681d, torch 2.13.0+cpu, float32) returned on the synthetic
body for 29-joint skeletons: `eval29` (eval mode, what the camera models' final call
runs) and `naive29` (`naive=True`, what `HRNetSMPLCam.update_scale` runs; the layer's
train mode is the same call). tests/data/released_hybrik/README.md says how it was made.
The naive case runs under jit(vmap(...)). Gradients through its spine-then-hips root and
detached reference are checked in tests/test_ik.py (`released().for_training()`); its other
difference, `max_drift=None`, only takes the target bone as is (no new operation).
Also here: the camera-model fixtures' weights regenerate from `camera_weight_recipe`.
A missing fixture or a key of another shape fails (never skips).
"""

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrik_jax.body import constants
from hybrik_jax.body import ik
from hybrik_jax.body import smpl
from hybrik_jax.body import synthetic_body
from hybrik_jax.models import config as config_lib

import test_released_parity
import released_fixtures  # pylint: disable=g-bad-import-order

DATA = pathlib.Path(__file__).parent / 'data' / 'released_hybrik'
B = 16
STRIDE = 50  # vertices stored: every 50th
CONVENTIONS = {'eval29': ik.IKConvention.hybrik(), 'naive29': ik.IKConvention.hybrik().naive()}
ROT_TOL = 1e-4   # per matrix entry
POS_TOL = 2e-5   # metres
EXPECTED = {'betas': (B, 10), 'phis': (B, 23, 2), 'skel29': (B, 29, 3)}
for _case in CONVENTIONS:
  EXPECTED.update({f'{_case}/rot_mats': (B, 24, 3, 3),
                   f'{_case}/vertices_every50': (B, -(-6890 // STRIDE), 3),
                   f'{_case}/joints': (B, 24, 3), f'{_case}/joints_h36m': (B, 17, 3)})


@functools.cache
def _fixture() -> dict[str, np.ndarray]:
  return released_fixtures.load_npz(DATA / 'hybrik_layer.npz', EXPECTED,
                                    readme='tests/data/released_hybrik/README.md')


@functools.cache
def _body() -> smpl.SMPLModel:
  """The synthetic body the fixture was made with (checked by its abs sums)."""
  d = _fixture()
  body = synthetic_body.synthetic_smpl_model(seed=0)
  for field, total in zip(d['meta/body_fields'], d['meta/body_abs_sums']):
    got = np.abs(np.asarray(getattr(body, str(field)), np.float64)).sum()
    np.testing.assert_allclose(got, total, rtol=1e-6,
                               err_msg=f'synthetic body {field} is not the fixture\'s')
  return body


@functools.partial(jax.jit, static_argnames='convention')
def _jit_hybrik(body, betas, skel, phis, convention):
  return smpl.hybrik(body, betas, skel, phis, convention=convention)


def _hybrik(betas, skel, phis, convention):
  return _jit_hybrik(_body(), betas, skel, phis, convention)


@functools.cache
def _naive_vmapped():
  """The naive case under jit(vmap(...)) over single examples (B = 1 each)."""
  d = _fixture()
  body, conv = _body(), CONVENTIONS['naive29']

  def one(betas, skel, phis):
    out = smpl.hybrik(body, betas[None], skel[None], phis[None], convention=conv)
    return jax.tree.map(lambda x: x[0], out)

  out = jax.jit(jax.vmap(one))(*(jnp.asarray(d[k]) for k in ('betas', 'skel29', 'phis')))
  return jax.tree.map(np.asarray, out)


@functools.cache
def _run(case: str):
  if case == 'naive29':
    return _naive_vmapped()
  d = _fixture()
  out = _hybrik(jnp.asarray(d['betas']), jnp.asarray(d['skel29']), jnp.asarray(d['phis']),
                CONVENTIONS[case])
  return jax.tree.map(np.asarray, out)


def _per_joint(ours, ref, tol, what, names):
  """Fails naming every joint (axis 1) whose max abs error exceeds tol."""
  err = np.abs(ours - ref).reshape(ref.shape[0], ref.shape[1], -1).max(axis=(0, 2))
  bad = [f'{names[j]} ({j}): {err[j]:.3g}' for j in np.flatnonzero(err > tol)]
  assert not bad, f'{what}: max abs error above {tol} at ' + ', '.join(bad)


@pytest.mark.parametrize('case', list(CONVENTIONS))
def test_rotations_per_joint(case):
  _per_joint(_run(case).rot_mats, _fixture()[f'{case}/rot_mats'], ROT_TOL,
             f'{case} rotations', constants.SMPL_JOINT_NAMES)


@pytest.mark.parametrize('case', list(CONVENTIONS))
def test_joints_and_mesh(case):
  d, out = _fixture(), _run(case)
  _per_joint(out.joints, d[f'{case}/joints'], POS_TOL, f'{case} joints (24)',
             constants.SMPL_JOINT_NAMES)
  _per_joint(out.joints_h36m, d[f'{case}/joints_h36m'], POS_TOL, f'{case} H36M joints',
             [f'h36m {i}' for i in range(17)])
  np.testing.assert_allclose(out.vertices[:, ::STRIDE], d[f'{case}/vertices_every50'],
                             rtol=0, atol=POS_TOL, err_msg=f'{case} vertices')


def test_the_variants_differ():
  """The fixture tells the two calls apart (naive is not eval)."""
  d = _fixture()
  assert np.abs(d['eval29/rot_mats'] - d['naive29/rot_mats']).max() > 0.1


def test_named_conventions():
  hybrik = ik.IKConvention.hybrik()
  assert ik.IKConvention.named('hybrik') == hybrik
  assert hybrik.for_training() == hybrik.naive()
  assert hybrik.naive().root_fit == 'spine_hips' and hybrik.naive().max_drift is None
  assert hybrik.depth_factor == 2.2
  # released() differs only by name and depth factor: the same eval-mode layer.
  assert hybrik.replace(name='released', depth_factor=2.0) == ik.IKConvention.released()
  assert config_lib.ik_convention(
      config_lib.get_model_config(**config_lib.ik_fields(hybrik))) == hybrik


@pytest.mark.parametrize('name', ['Simple3DPoseBaseSMPLCam', 'HRNetSMPLCam'])
def test_camera_fixture_weights_regenerate(name):
  """`camera_weight_recipe` gives the weights the camera-model fixtures were made with."""
  fx = released_fixtures.load_npz(DATA / f'{name}.npz',
                                  ('keys', 'shapes', 'weight_abs_sums', 'weight_seed'))
  state_dict = released_fixtures.regenerate_weights(
      fx, test_released_parity.camera_weight_recipe, rtol=1e-9)
  assert len(state_dict) == len(fx['keys'])
