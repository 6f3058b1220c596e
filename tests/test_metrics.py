"""Tests for hybrik_jax.evaluation.metrics: known answers, masks, degenerate inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hybrik_jax.evaluation import metrics


def _random_points(seed, b=3, j=17):
  return np.random.default_rng(seed).normal(size=(b, j, 3)).astype(np.float32) * 0.3


def _similar_copy(points, seed):
  """A rotated, scaled and shifted copy of each sample."""
  rng = np.random.default_rng(seed)
  out = np.empty_like(points)
  for i, p in enumerate(points):
    r = Rotation.random(random_state=rng.integers(1 << 30)).as_matrix()
    s = rng.uniform(0.5, 2.0)
    t = rng.normal(size=3)
    out[i] = s * p @ r.T + t
  return out.astype(np.float32)


def test_pa_mpjpe_is_zero_for_a_similar_copy():
  target = _random_points(0)
  pred = _similar_copy(target, 1)
  assert float(jnp.min(metrics.mpjpe(pred, target))) > 100.0  # really moved
  np.testing.assert_allclose(metrics.pa_mpjpe(pred, target), np.zeros(3), atol=1e-2)
  np.testing.assert_allclose(metrics.procrustes_align(pred, target), target, atol=1e-5)


def test_procrustes_rejects_reflections():
  target = _random_points(2, b=1)
  mirrored = target * np.array([-1.0, 1.0, 1.0], np.float32)
  # The mirror image cannot be reached with a proper rotation (a reflection
  # would align it exactly).
  assert float(metrics.pa_mpjpe(mirrored, target)[0]) > 1.0


def test_procrustes_matches_numpy_reference():
  """Against an independent Umeyama solution on noisy data (float64)."""
  target = _random_points(3, b=2).astype(np.float64)
  pred = _similar_copy(target, 4) + np.random.default_rng(5).normal(
      scale=0.02, size=target.shape)
  with jax.enable_x64(True):
    aligned = np.asarray(metrics.procrustes_align(jnp.asarray(pred), jnp.asarray(target)))
  for i in range(2):
    x = pred[i] - pred[i].mean(0)
    y = target[i] - target[i].mean(0)
    u, s, vt = np.linalg.svd(y.T @ x)
    d = np.sign(np.linalg.det(u @ vt))
    r = u @ np.diag([1, 1, d]) @ vt
    scale = (s * [1, 1, d]).sum() / (x ** 2).sum()
    expected = scale * x @ r.T + target[i].mean(0)
    np.testing.assert_allclose(aligned[i], expected, atol=1e-9)


def test_known_offset_gives_known_mpjpe():
  target = _random_points(6)
  offset = np.array([0.03, -0.04, 0.0], np.float32)  # 50 mm
  np.testing.assert_allclose(metrics.mpjpe(target + offset, target),
                              np.full(3, 50.0), atol=1e-3)
  # A pure translation is removed by Procrustes.
  np.testing.assert_allclose(metrics.pa_mpjpe(target + offset, target),
                              np.zeros(3), atol=1e-2)
  # Root alignment also removes it.
  np.testing.assert_allclose(
      metrics.mpjpe(metrics.root_align(target + offset), metrics.root_align(target)),
      np.zeros(3), atol=1e-3)


def test_joint_masks():
  target = np.zeros((2, 4, 3), np.float32)
  pred = np.zeros((2, 4, 3), np.float32)
  pred[:, 3, 0] = 1.0  # 1000 mm error on joint 3 only
  mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], np.float32)
  np.testing.assert_allclose(metrics.mpjpe(pred, target, mask), [0.0, 250.0])
  # A sample without valid joints gives 0, not NaN.
  np.testing.assert_allclose(metrics.mpjpe(pred, target, np.zeros((2, 4))), [0.0, 0.0])
  # Masked joints do not drive the alignment.
  t = _random_points(7, b=1, j=6)
  p = _similar_copy(t, 8)
  p[0, 5] += 10.0  # a wild outlier
  m = np.ones((1, 6), np.float32)
  m[0, 5] = 0
  np.testing.assert_allclose(metrics.pa_mpjpe(p, t, m), [0.0], atol=1e-2)


def test_pve():
  v = np.random.default_rng(9).normal(size=(2, 50, 3)).astype(np.float32)
  np.testing.assert_allclose(metrics.pve(v + np.array([0, 0, 0.01], np.float32), v),
                              [10.0, 10.0], atol=1e-3)
  np.testing.assert_allclose(
      metrics.pve(v + 0.01 * np.array([0, 0, 1], np.float32), v, np.array([1, 0])),
      [10.0, 0.0], atol=1e-3)


def test_pck_and_auc_hand_computed():
  # Errors of 0, 40, 100, 149, 150, 200 mm along x (one sample, six joints).
  errs = np.array([0.0, 40.0, 100.0, 149.0, 150.0, 200.0], np.float32)
  target = np.zeros((1, 6, 3), np.float32)
  pred = target.copy()
  pred[0, :, 0] = errs / 1000.0
  # PCK@150: strictly below 150 -> 4 of 6.
  np.testing.assert_allclose(metrics.pck(pred, target), [400.0 / 6], atol=1e-3)
  # AUC: per joint, the fraction of the 31 thresholds 0..150 that exceed the
  # error: 0 mm -> 30/31 (not < 0), 40 -> 22/31 (45..150), 100 -> 10/31,
  # 149 -> 1/31 (150 only), 150 -> 0, 200 -> 0.
  expected = 100.0 * (30 + 22 + 10 + 1) / 31 / 6
  np.testing.assert_allclose(metrics.auc(pred, target), [expected], atol=1e-2)
  # Masks: drop the two failing joints -> PCK 100.
  mask = np.array([[1, 1, 1, 1, 0, 0]])
  np.testing.assert_allclose(metrics.pck(pred, target, mask), [100.0], atol=1e-3)
  # Direct from errors, with a custom threshold.
  np.testing.assert_allclose(
      metrics.pck_from_errors(errs[None], threshold_mm=50.0), [200.0 / 6], atol=1e-3)


def test_sum_count_averages_across_batches():
  rng = np.random.default_rng(10)
  err = rng.uniform(0, 300, size=(5, 17)).astype(np.float32)
  mask = (rng.uniform(size=(5, 17)) > 0.2).astype(np.float32)
  whole = {'e': metrics.SumCount.from_values(err, mask)}
  # Uneven batches (3 + 2) add up to the same average: the mean over valid
  # entries.
  parts = None
  for sl in (slice(0, 3), slice(3, 5)):
    parts = metrics.merge_sums(
        parts, {'e': metrics.SumCount.from_values(err[sl], mask[sl])})
  a, b = metrics.compute_averages(whole), metrics.compute_averages(parts)
  np.testing.assert_allclose(a['e'], b['e'], rtol=1e-6)
  np.testing.assert_allclose(a['e'], (err * mask).sum() / mask.sum(), rtol=1e-5)
  # A tree-sum (what a cross-device psum does) keeps the average.
  summed = jax.tree.map(lambda x, y: x + y, whole, whole)
  np.testing.assert_allclose(float(summed['e'].compute()), a['e'], rtol=1e-6)
  with pytest.raises(ValueError, match='different metrics'):
    metrics.merge_sums(whole, {'f': whole['e']})
  # An average over nothing is undefined (NaN), never 0.
  assert np.isnan(float(metrics.SumCount.from_values(
      err, np.zeros_like(mask)).compute()))


def test_degenerate_inputs_are_nan_free_with_finite_grads():
  target = _random_points(11, b=1, j=5)
  cases = {
      'collapsed_pred': np.zeros((1, 5, 3), np.float32),
      'collinear_pred': np.outer(np.arange(5), [1.0, 0, 0]).astype(np.float32)[None],
      'equal': target.copy(),
  }
  for name, pred in cases.items():
    value = metrics.pa_mpjpe(pred, target)
    assert np.isfinite(np.asarray(value)).all(), name
    grad = jax.grad(lambda p: jnp.sum(metrics.pa_mpjpe(p, target)))(jnp.asarray(pred))
    assert np.isfinite(np.asarray(grad)).all(), name
    grad = jax.grad(lambda p: jnp.sum(metrics.mpjpe(p, target)))(jnp.asarray(pred))
    assert np.isfinite(np.asarray(grad)).all(), name
  # All joints masked out: zeros, finite gradient.
  zero_mask = np.zeros((1, 5))
  grad = jax.grad(lambda p: jnp.sum(metrics.pa_mpjpe(p, target, zero_mask)))(
      jnp.asarray(target))
  assert np.isfinite(np.asarray(grad)).all()
  assert float(metrics.pa_mpjpe(target, target, zero_mask)[0]) == 0.0


def test_gradient_reduces_pa_mpjpe():
  target = _random_points(12, b=1)
  pred = jnp.asarray(target + np.random.default_rng(13).normal(
      scale=0.05, size=target.shape).astype(np.float32))
  loss = lambda p: jnp.sum(metrics.pa_mpjpe(p, target))
  g = jax.grad(loss)(pred)
  assert float(loss(pred - 1e-4 * g)) < float(loss(pred))


def test_float64():
  with jax.enable_x64(True):
    t = jnp.asarray(_random_points(14), jnp.float64)
    out = metrics.pa_mpjpe(t * 2.0, t)
    assert out.dtype == jnp.float64
    np.testing.assert_allclose(out, np.zeros(3), atol=1e-8)


def test_shape_errors():
  with pytest.raises(ValueError, match='pred'):
    metrics.mpjpe(np.zeros((2, 17)), np.zeros((2, 17)))
  with pytest.raises(ValueError, match='target'):
    metrics.mpjpe(np.zeros((2, 17, 3)), np.zeros((2, 16, 3)))
  with pytest.raises(ValueError, match='mask'):
    metrics.mpjpe(np.zeros((2, 17, 3)), np.zeros((2, 17, 3)), np.ones((2, 16)))


def _joint_sums(pred, target, mask=None):
  """The (sum, count) forms a protocol builds from metrics' functions."""
  m = np.ones(np.shape(pred)[:2]) if mask is None else mask
  err = metrics.joint_errors(pred, target)
  err_pa = metrics.joint_errors(metrics.procrustes_align(pred, target, m), target)
  return {'mpjpe': metrics.SumCount.from_values(err, m),
          'pa_mpjpe': metrics.SumCount.from_values(err_pa, m),
          'pck': metrics.SumCount.from_values(metrics.pck_values(err), m),
          'auc': metrics.SumCount.from_values(metrics.auc_values(err), m)}


def test_non_finite_is_never_scored_as_good():
  target = _random_points(21, b=3, j=5)
  pred = target + 0.01
  pred[0, 2] = np.nan  # a failed prediction
  pred[1, 0] = np.inf  # another
  bad_target = target.copy()
  bad_target[2, 1] = np.nan  # bad ground truth on one joint
  for fn in (metrics.mpjpe, metrics.pa_mpjpe):
    per_sample = np.asarray(fn(pred, bad_target))
    assert np.isposinf(per_sample[0]) and np.isposinf(per_sample[1]), fn
    assert np.isfinite(per_sample[2]) and per_sample[2] > 0, fn
  err = np.asarray(metrics.joint_errors(pred, bad_target))
  assert np.isposinf(err[0, 2]) and np.isnan(err[2, 1])
  sums = _joint_sums(pred, bad_target)
  counts = metrics.non_finite_counts(sums)
  averages = metrics.compute_averages(sums)
  # 3 samples x 5 joints: samples 0 and 1 failed (left out whole, counted
  # once each), sample 2's bad target joint left out; its 4 others averaged.
  assert counts['mpjpe'] == {'non_finite_pred': 2, 'non_finite_target': 1}
  assert int(sums['mpjpe'].count) == 4
  np.testing.assert_allclose(averages['mpjpe'], 1000 * 0.01 * np.sqrt(3),
                             rtol=1e-4)
  # The same rule in every metric: the same two samples fail.
  for name in ('pa_mpjpe', 'pck', 'auc'):
    assert counts[name] == counts['mpjpe'], name
    assert int(sums[name].count) == 4, name
  assert averages['pck'] == 100.0
  assert all(np.isfinite(v) for v in averages.values())
  # The counts add up across batches (merge and tree-sums alike).
  merged = metrics.merge_sums(sums, sums)
  assert metrics.non_finite_counts(merged)['mpjpe']['non_finite_pred'] == 4
  # A masked-out NaN is not counted at all.
  mask = np.ones((3, 5))
  mask[0, 2] = mask[1, 0] = mask[2, 1] = 0
  clean = metrics.non_finite_counts(_joint_sums(pred, bad_target, mask))
  assert clean['mpjpe'] == {'non_finite_pred': 0, 'non_finite_target': 0}
  # A failed sample has no PCK (not a hit, not a number).
  assert np.isnan(float(metrics.pck(pred[:1], target[:1])[0]))


def test_metrics_of_nothing_are_undefined_and_one_rule_everywhere():
  """Issue 25 case 1: every prediction NaN -> undefined (not 0 mm); one NaN
  joint fails its whole sample in every metric and both code paths."""
  target = _random_points(31, b=4, j=17)
  pred = target + 0.02
  sums = _joint_sums(np.full_like(pred, np.nan), target)
  averages = metrics.compute_averages(sums)
  assert all(np.isnan(v) for v in averages.values()), averages
  assert all(c['non_finite_pred'] == 4
             for c in metrics.non_finite_counts(sums).values())
  assert metrics.format_value(averages['mpjpe'], 'mm', 8) == 'undefined'
  assert metrics.format_value(12.345, 'mm', 8) == '   12.35 mm'
  # One NaN joint in sample 0: the per-sample functions and the (sum, count)
  # form agree on every metric (the other three samples only).
  pred[0, 5] = np.nan
  sums = _joint_sums(pred, target)
  averages = metrics.compute_averages(sums)
  for name, fn in (('mpjpe', metrics.mpjpe), ('pa_mpjpe', metrics.pa_mpjpe),
                   ('pck', metrics.pck), ('auc', metrics.auc)):
    per_sample = np.asarray(fn(pred, target))
    assert not np.isfinite(per_sample[0]), name
    np.testing.assert_allclose(averages[name], per_sample[1:].mean(),
                               rtol=1e-5, err_msg=name)
    assert int(sums[name].count) == 3 * 17, name
    assert metrics.non_finite_counts(sums)[name]['non_finite_pred'] == 1
