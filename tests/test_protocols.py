"""Tests for hybrik_jax.evaluation.protocols: one protocol for the trainer and evaluate."""

import os
import sys

import numpy as np
import pytest

from hybrik_jax import models
from hybrik_jax.body import synthetic_body
from hybrik_jax.checkpoints import loading
from hybrik_jax.checkpoints import model_dir
from hybrik_jax.data import input_pipeline
from hybrik_jax.data import synthetic
from hybrik_jax.evaluation import benchmark
from hybrik_jax.evaluation import loop
from hybrik_jax.evaluation import metrics
from hybrik_jax.evaluation import protocols
from hybrik_jax.training import train_lib

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
from configs import test as test_config  # pylint: disable=g-import-not-at-top,wrong-import-position


def _batch(rng, b=5):
  gt = rng.normal(size=(b, 17, 3)).astype(np.float32) * 0.3
  valid = (rng.uniform(size=(b, 17)) > 0.2).astype(np.float32)
  valid[:, 0] = 1.0
  mask = np.ones((b,), np.float32)
  mask[-1] = 0.0  # padding
  return {'joints17_cam': gt, 'joints17_valid': valid, 'mask': mask}


def test_batch_metrics_follow_the_protocol_and_add_up_across_batches():
  rng = np.random.default_rng(0)
  batch = _batch(rng)
  pred = batch['joints17_cam'] + rng.normal(scale=0.05, size=(5, 17, 3)).astype(np.float32)
  protocol = protocols.PROTOCOLS['h36m']
  sums, per_example = protocols.batch_metrics(protocol, batch, pred_xyz_17=pred)
  # MPJPE: pelvis-relative, the 14 protocol joints, every valid joint once,
  # padding ignored.
  sel = list(protocols.H36M_EVAL_14)
  p = pred - pred[:, :1]
  g = batch['joints17_cam'] - batch['joints17_cam'][:, :1]
  err = np.linalg.norm(p - g, axis=-1)[:, sel] * 1000
  m = batch['joints17_valid'][:, sel] * batch['mask'][:, None]
  np.testing.assert_allclose(float(sums['mpjpe'].compute()),
                             (err * m).sum() / m.sum(), rtol=1e-5)
  assert float(sums['mpjpe'].count) == m.sum()
  np.testing.assert_allclose(per_example['mpjpe'][1], m.sum(-1))
  # PA-MPJPE of h36m_p2 aligns all 17 joints; pw3d aligns the 14.
  aligned = metrics.procrustes_align(p, g, batch['joints17_valid'])[:, sel]
  pa17 = np.linalg.norm(np.asarray(aligned) - g[:, sel], axis=-1) * 1000
  np.testing.assert_allclose(float(sums['pa_mpjpe'].compute()),
                             (pa17 * m).sum() / m.sum(), rtol=1e-4)
  sums_pw3d, _ = protocols.batch_metrics(protocols.PROTOCOLS['pw3d'], batch,
                                         pred_xyz_17=pred)
  assert float(sums_pw3d['pa_mpjpe'].compute()) < float(sums['pa_mpjpe'].compute())
  assert float(sums['non_finite_outputs'].count) == 4
  # Uneven batches add up to the whole (3DHP: PCK and AUC too).
  hp3d = protocols.PROTOCOLS['mpi_inf_3dhp']
  whole, _ = protocols.batch_metrics(hp3d, batch, pred_xyz_17=pred)
  parts = None
  for sl in (slice(0, 3), slice(3, 5)):
    part, _ = protocols.batch_metrics(
        hp3d, {k: v[sl] for k, v in batch.items()}, pred_xyz_17=pred[sl])
    parts = metrics.merge_sums(parts, part)
  a, b = protocols.averages(whole), protocols.averages(parts)
  assert set(a) == {'mpjpe', 'pa_mpjpe', 'pck', 'auc', 'num_examples',
                    'non_finite_outputs', 'non_finite_pred', 'non_finite_target'}
  for k in a:
    np.testing.assert_allclose(a[k], b[k], rtol=1e-5)
  assert a['num_examples'] == 4


def test_names_and_tags():
  assert protocols.protocol_for('h36m:1.0.0').name == 'h36m_p2'
  assert protocols.tag(protocols.PROTOCOLS['h36m'], 'mpjpe') == 'h36m_p2/mpjpe_mm'
  assert protocols.tag(protocols.PROTOCOLS['mpi_inf_3dhp'], 'pck') == 'mpi_inf_3dhp/pck_pct'
  text = protocols.PROTOCOLS['h36m'].describe()
  assert 'h36m_p2' in text and 'flip test on' in text and 'ground truth root' in text
  with pytest.raises(ValueError, match='unknown dataset'):
    protocols.protocol_for('imagenet')


def test_trainer_validation_equals_evaluate(tiny_checkpoint, tmp_path):
  """Same checkpoint, same images: the trainer's validation numbers are the
  evaluate tool's (different batch sizes, so padding must not matter)."""
  gen = synthetic.SyntheticGenerator(synthetic.SyntheticConfig(image_size=64))
  val = [e for _, e in gen.generate(range(5), split='validation')]
  variables, model_config = model_dir.load_model(tiny_checkpoint)
  config = test_config.get_config()
  config.model = model_config
  mesh = train_lib.create_mesh()
  protocol = protocols.protocol_for(config.data.eval_dataset)
  eval_fn = loop.make_eval_step(
      models.create_model(model_config), synthetic_body.synthetic_smpl_model(),
      model_config=model_config, protocol=protocol, mesh=mesh)
  trainer = loop.evaluate(
      eval_fn, variables, input_pipeline.DataConfig.from_config(config.data),
      batch_size=2, mesh=mesh, input_size=model_config.input_size,
      data_source=val)
  results = benchmark.evaluate(
      loading.load_for_inference(tiny_checkpoint), tiny_checkpoint,
      config.data.eval_dataset, split='validation',
      config=config, data_source=val, batch_size=4, progress=False,
      output=str(tmp_path / 'results.json'))
  assert results['protocol'] == 'synthetic_humans' and results['flip_test']
  assert set(results['metrics']) == {'mpjpe', 'pa_mpjpe', 'mpjpe_24',
                                     'pa_mpjpe_24', 'pve'}
  assert trainer['num_examples'] == results['num_examples'] == 5
  for k, v in results['metrics'].items():
    assert np.isfinite(v) and v > 0, k
    assert trainer[k] == pytest.approx(v, rel=1e-4), k

