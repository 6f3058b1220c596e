"""The 'released' IK convention against the released HybrIK-Transformer layer's own outputs.

tests/data/released_hybrik_layer.npz holds what `SMPL_layer.hybrik` of the released code
(boreshkinai/hybrik-transformer 8ab9744, torch 2.13.0+cpu, float32) returned on the
synthetic body for four cases; tests/data/released_hybrik_layer.md says how it was made.
The body is rebuilt from the stored arrays (posedirs zeros, as given to the released
layer), so these tests do not depend on `synthetic_smpl_model` reproducing it bit for
bit. A missing fixture or a key of another shape fails (never skips).
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
import released_fixtures  # pylint: disable=g-bad-import-order

FIXTURE = pathlib.Path(__file__).parent / 'data' / 'released_hybrik_layer.npz'
B = 16
CASES = {  # case: (skeleton key, with leaf quaternions, train mode)
    'ik29': ('skel29', False, False),
    'train29': ('skel29', False, True),
    'leaf24': ('skel24', True, False),
    'leaf24_train': ('skel24', True, True),
}
ROT_TOL = 1e-4   # per matrix entry
POS_TOL = 1e-4   # metres
# Beside the fixed tolerances, SPREAD_FACTOR times how far float32 rounding of the
# inputs moves each output (`released_fixtures.float32_spread`): train mode
# turns one ulp of a near-degenerate random skeleton into 1.3e-4 of a rotation
# (train29, sample 12, left_collar), so two CPUs may differ there by that much.
SPREAD_FACTOR = released_fixtures.SPREAD_FACTOR
EXPECTED = {
    'v_template': (6890, 3), 'shapedirs': (6890, 3, 10), 'J_regressor': (24, 6890),
    'J_regressor_h36m': (17, 6890), 'lbs_weights': (6890, 24), 'faces': (13776, 3),
    'parents': (24,), 'leaf_vertex_ids': (5,),
    'betas': (B, 10), 'phis': (B, 23, 2), 'skel29': (B, 29, 3), 'skel24': (B, 24, 3),
    'leaf_thetas': (B, 5, 4),
}
for _case in CASES:
  EXPECTED.update({f'{_case}/rot_mats': (B, 24, 3, 3), f'{_case}/vertices': (B, 6890, 3),
                   f'{_case}/joints': (B, 24, 3), f'{_case}/joints_h36m': (B, 17, 3)})
  if not CASES[_case][2]:
    EXPECTED[f'{_case}/fallback'] = (B, 23)


def load_fixture(path: pathlib.Path) -> dict[str, np.ndarray]:
  """The fixture's arrays; AssertionError naming what is missing or misshapen."""
  return released_fixtures.load_npz(path, EXPECTED, readme='tests/data/released_hybrik_layer.md')


@functools.cache
def _fixture() -> dict[str, np.ndarray]:
  return load_fixture(FIXTURE)


def _body(d) -> smpl.SMPLModel:
  assert tuple(d['parents']) == constants.SMPL_PARENTS, 'fixture: not the SMPL tree'
  assert tuple(d['leaf_vertex_ids']) == constants.LEAF_VERTEX_IDS, 'fixture: leaf ids'
  return smpl.SMPLModel(
      v_template=jnp.asarray(d['v_template']), shapedirs=jnp.asarray(d['shapedirs']),
      posedirs=jnp.zeros((207, 6890 * 3), jnp.float32),
      J_regressor=jnp.asarray(d['J_regressor']),
      J_regressor_h36m=jnp.asarray(d['J_regressor_h36m']),
      lbs_weights=jnp.asarray(d['lbs_weights']), faces=jnp.asarray(d['faces']))


@functools.cache
def _run(case: str, convention: str):
  d = _fixture()
  skel_key, with_leaf, train = CASES[case]
  ik_convention = ik.IKConvention.named(convention)
  if train:  # the train step's IK ('corrected' has no other)
    ik_convention = ik_convention.for_training()

  @jax.jit
  def layer(betas, skeleton, phis, leaf):
    return smpl.hybrik(_body(d), betas, skeleton, phis, leaf_thetas=leaf,
                       convention=ik_convention, return_fallback=True)

  inputs = (d['betas'], d[skel_key], d['phis'], d['leaf_thetas'] if with_leaf else None)
  out, fallback = layer(*inputs)
  spread = released_fixtures.float32_spread(lambda *a: layer(*a)[0], *inputs)
  return jax.tree.map(np.asarray, out), np.asarray(fallback), spread


def _per_joint_failures(err: np.ndarray, names, tol, spread=None) -> list[str]:
  """err (B, J, ...) -> ['name (j): max err', ...] for the joints with an
  element above tol + SPREAD_FACTOR x spread (its float32 spread, err's shape)."""
  allowed = tol + (0.0 if spread is None else SPREAD_FACTOR * spread)
  over = (err - allowed).reshape(err.shape[0], err.shape[1], -1).max(axis=(0, 2))
  worst = err.reshape(err.shape[0], err.shape[1], -1).max(axis=(0, 2))
  return [f'{names[j]} ({j}): {worst[j]:.2e}' for j in np.flatnonzero(over > 0)]


def test_fixture_loads_and_is_complete():
  d = _fixture()
  assert float(d['meta/depth_factor_m']) == 2.0
  assert tuple(map(tuple, d['meta/leaf_flip_pairs'])) == constants.RELEASED_FLIP_PAIRS_LEAF
  assert tuple(map(tuple, d['meta/joint_flip_pairs_24'])) == constants.FLIP_PAIRS_24


def test_missing_or_misshapen_fixture_fails_with_a_message(tmp_path):
  with pytest.raises(AssertionError, match='is missing'):
    load_fixture(tmp_path / 'absent.npz')
  d = dict(_fixture())
  d['skel24'] = d['skel24'][:, :23]
  del d['leaf24/fallback']
  np.savez(tmp_path / 'bad.npz', **d)
  with pytest.raises(AssertionError, match=r"lacks the keys \['leaf24/fallback'\]"):
    load_fixture(tmp_path / 'bad.npz')
  d['leaf24/fallback'] = _fixture()['leaf24/fallback']
  np.savez(tmp_path / 'bad.npz', **d)
  with pytest.raises(AssertionError, match='skel24'):
    load_fixture(tmp_path / 'bad.npz')


@pytest.mark.parametrize('case', list(CASES))
def test_released_convention_reproduces_the_released_layer(case):
  d = _fixture()
  out, fallback, spread = _run(case, 'released')
  failures = []
  rot_err = np.abs(out.rot_mats - d[f'{case}/rot_mats'])
  failures += [f'rotation of {f}' for f in _per_joint_failures(
      rot_err, constants.SMPL_JOINT_NAMES, ROT_TOL, spread.rot_mats)]
  norm = lambda x: np.linalg.norm(x, axis=-1)
  joint_err = norm(out.joints - d[f'{case}/joints'])
  failures += [f'joint {f}' for f in _per_joint_failures(
      joint_err, constants.SMPL_JOINT_NAMES, POS_TOL, norm(spread.joints))]
  h36m_err = norm(out.joints_h36m - d[f'{case}/joints_h36m'])
  failures += [f'H36M joint {f}' for f in _per_joint_failures(
      h36m_err, constants.H36M_JOINT_NAMES, POS_TOL, norm(spread.joints_h36m))]
  # Vertices: reported by the joint that moves them most (largest skinning weight).
  vert_over = (norm(out.vertices - d[f'{case}/vertices']) -
               SPREAD_FACTOR * norm(spread.vertices)).max(0)
  vert_err = norm(out.vertices - d[f'{case}/vertices']).max(0)
  owner = np.argmax(d['lbs_weights'], axis=1)
  for j in range(24):
    part = vert_err[owner == j]
    if part.size and vert_over[owner == j].max() > POS_TOL:
      failures.append(f'vertices of {constants.SMPL_JOINT_NAMES[j]} ({j}): {part.max():.2e} m')
  if f'{case}/fallback' in d:
    ref = d[f'{case}/fallback']
    for j in np.flatnonzero((fallback != ref).any(0)) + 1:
      failures.append(f'fallback of {constants.SMPL_JOINT_NAMES[j]} ({j}): ours '
                      f'{int(fallback[:, j - 1].sum())}, released {int(ref[:, j - 1].sum())} of {B}')
  assert not failures, f'{case}: differs from the released layer in ' + '; '.join(failures)


@pytest.mark.parametrize('case', ['leaf24', 'leaf24_train'])
def test_corrected_convention_differs_where_documented(case):
  """'corrected' gives joint 23 its leaf and slot k to LEAF_PARENT_JOINTS[k]."""
  d = _fixture()
  out, _, _ = _run(case, 'corrected')
  worst = np.abs(out.rot_mats - d[f'{case}/rot_mats']).max(axis=(0, 2, 3))
  for j in constants.LEAF_PARENT_JOINTS:
    assert worst[j] > 1e-2, (case, j, worst[j])
  if case == 'leaf24':  # eval: the same solver everywhere else
    others = [j for j in range(24) if j not in constants.LEAF_PARENT_JOINTS]
    assert worst[others].max() < ROT_TOL
