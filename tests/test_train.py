"""Tests for the trainer (hybrik_jax.train, hybrik_jax.train_lib).

Tiny model (configs/test.py), 64 px images, batch 4, in-memory synthetic
examples through the real input pipeline.
"""

import os
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrik_jax import checkpointing
from hybrik_jax import input_pipeline
from hybrik_jax import smpl
from hybrik_jax import train
from hybrik_jax import train_lib
from hybrik_jax.data import synthetic
from hybrik_jax.models import hybrik as hybrik_model

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
from configs import test as test_config  # pylint: disable=g-import-not-at-top,wrong-import-position

DATASET = 'synthetic_humans/tiny'


@pytest.fixture(scope='module')
def examples():
  gen = synthetic.SyntheticGenerator(synthetic.SyntheticConfig(image_size=64))
  train_examples = [e for _, e in gen.generate(range(8), split='train')]
  val_examples = [e for _, e in gen.generate(range(4), split='validation')]
  return train_examples, val_examples


@pytest.fixture(scope='module')
def setup(examples):
  config = test_config.get_config()
  model = hybrik_model.create_model(config.model)
  tx, lr_fn = train_lib.create_optimizer(config.optim)
  state = train_lib.create_train_state(model, tx, jax.random.key(0),
                                       config.model.input_size)
  it = input_pipeline.create_train_iterator(
      config.data, global_batch_size=config.batch_size, seed=0,
      input_size=config.model.input_size,
      data_sources={DATASET: examples[0]})
  batch = next(it)
  mesh = train_lib.create_mesh()
  smpl_model = smpl.synthetic_smpl_model()
  # One compiled step shared by the tests below.
  step = train_lib.jit_train_step(
      mesh, smpl_model=smpl_model, model=model, tx=tx, lr_fn=lr_fn,
      loss_weights=dict(config.loss), input_size=config.model.input_size)
  return dict(config=config, model=model, tx=tx, lr_fn=lr_fn, state=state,
              batch=batch, smpl_model=smpl_model, mesh=mesh, step=step)


def _step_fn(setup, mesh):
  assert mesh is setup['mesh']
  return setup['step']


def _copy(tree):
  return jax.tree.map(jnp.copy, tree)


def test_learning_rate_schedule():
  lr_fn = train_lib.create_learning_rate_fn(5e-4, 4000)
  np.testing.assert_allclose(lr_fn(1), 5e-4 / 4000, rtol=1e-6)
  np.testing.assert_allclose(lr_fn(2000), 2.5e-4, rtol=1e-6)
  np.testing.assert_allclose(lr_fn(4000), 5e-4, rtol=1e-6)
  np.testing.assert_allclose(lr_fn(16000), 2.5e-4, rtol=1e-6)
  # The optimizer applies lr(k) at its k-th update (optax counts from 0).
  config = test_config.get_config()
  config.optim.peak_lr, config.optim.warmup_steps = 5e-4, 4000
  tx, _ = train_lib.create_optimizer(config.optim)
  params = {'w': jnp.zeros(3)}
  opt_state = tx.init(params)
  updates, _ = tx.update({'w': jnp.ones(3)}, opt_state, params)
  # Adam's first normalised step is 1, scaled by -lr(1).
  np.testing.assert_allclose(updates['w'], -5e-4 / 4000, rtol=1e-3)


def test_one_step_lowers_loss(setup):
  config = setup['config']
  mesh = setup['mesh']
  batch = train_lib.global_batch(setup['batch'], mesh)
  state = train_lib.replicate(_copy(setup['state']), mesh)
  rng = jax.random.key(7)

  def loss_of(s):
    total, _ = train_lib.forward_and_loss(
        s.params, s.batch_stats, batch, rng, model=setup['model'],
        smpl_model=setup['smpl_model'], loss_weights=dict(config.loss),
        input_size=config.model.input_size)
    return float(total)

  before = loss_of(state)
  new_state, metrics = _step_fn(setup, mesh)(state, batch)
  after = loss_of(new_state)
  assert np.isfinite(before) and after < before
  assert int(new_state.step) == 1 and int(new_state.num_skipped) == 0
  assert float(metrics['skipped']) == 0.0
  for key in ('loss', 'uvd', 'beta', 'theta', 'twist', 'phi_norm', 'lr',
              'grad_norm', 'param_norm'):
    assert np.isfinite(float(metrics[key])), key
  np.testing.assert_allclose(float(metrics['lr']), setup['lr_fn'](1))


def test_nan_batch_is_skipped(setup):
  mesh = setup['mesh']
  bad = dict(setup['batch'])
  bad['image'] = np.full_like(bad['image'], np.nan)
  state = train_lib.replicate(_copy(setup['state']), mesh)
  before = jax.device_get(state)
  new_state, metrics = _step_fn(setup, mesh)(state,
                                             train_lib.global_batch(bad, mesh))
  assert not np.isfinite(float(metrics['loss']))
  assert float(metrics['skipped']) == 1.0
  assert int(new_state.num_skipped) == 1 and int(new_state.step) == 1
  chex.assert_trees_all_equal(jax.device_get(new_state.params), before.params)
  chex.assert_trees_all_equal(jax.device_get(new_state.batch_stats),
                              before.batch_stats)
  chex.assert_trees_all_equal(jax.device_get(new_state.opt_state),
                              before.opt_state)


def _run(config, workdir, examples, **kwargs):
  return train.train_and_evaluate(
      config, workdir, data_sources={DATASET: examples[0]},
      eval_data_source=examples[1], **kwargs)


def test_resume_equals_uninterrupted(examples, tmp_path):
  # Compiles are cached on disk so the three runs compile once.
  old_dir = jax.config.jax_compilation_cache_dir
  old_min = jax.config.jax_persistent_cache_min_compile_time_secs
  jax.config.update('jax_compilation_cache_dir', str(tmp_path / 'xla_cache'))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0)
  try:
    config = test_config.get_config()
    config.num_train_steps = 4
    config.steps_per_epoch = 2
    config.evals.max_batches = 1
    full = _run(config, tmp_path / 'full', examples)
    first = _run(config, tmp_path / 'resumed', examples, stop_after_steps=2)
    assert first['step'] == 2 and 'eval' not in first
    resumed = _run(config, tmp_path / 'resumed', examples)
  finally:
    jax.config.update('jax_compilation_cache_dir', old_dir)
    jax.config.update('jax_persistent_cache_min_compile_time_secs', old_min)
  assert full['step'] == resumed['step'] == 4
  chex.assert_trees_all_close(jax.device_get(full['state'].params),
                              jax.device_get(resumed['state'].params),
                              rtol=1e-6, atol=1e-7)
  chex.assert_trees_all_close(jax.device_get(full['state'].opt_state),
                              jax.device_get(resumed['state'].opt_state),
                              rtol=1e-6, atol=1e-7)
  assert np.isfinite(full['eval']['mpjpe'])
  # Both runs keep the last keep_epochs=2 epoch ends (steps 2 and 4).
  manager = checkpointing.create_checkpoint_manager(
      tmp_path / 'resumed', steps_per_epoch=2, read_only=True)
  assert checkpointing.all_steps(manager) == [2, 4]
  # A finished run started again does nothing and returns the same params.
  again = _run(config, tmp_path / 'resumed', examples)
  assert again['step'] == 4
  chex.assert_trees_all_equal(jax.device_get(again['state'].params),
                              jax.device_get(resumed['state'].params))


def test_unknown_config_field():
  config = test_config.get_config()
  config.optim.learning_rate = 1e-3
  with pytest.raises(ValueError, match='config.optim.learning_rate'):
    train.check_config(config)
  # On the command line, config_flags (lock_config=True) names it too.
  from absl import flags  # pylint: disable=g-import-not-at-top
  flag_values = flags.FlagValues()
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  config_flags.DEFINE_config_file('config', None, 'config',
                                  flag_values=flag_values, lock_config=True)
  path = os.path.join(os.path.dirname(__file__), '..', 'configs', 'test.py')
  with pytest.raises(Exception, match='batchsize'):
    flag_values(['prog', f'--config={path}', '--config.batchsize=8'])


def test_refuses_checkpoint_of_another_model(examples, tmp_path):
  config = test_config.get_config()
  other = test_config.get_config()
  other.model.d_model = 16
  manager = checkpointing.create_checkpoint_manager(
      tmp_path, steps_per_epoch=config.steps_per_epoch, async_save=False)
  checkpointing.save_train_state(
      manager, 1, {'params': {'w': jnp.ones(2)}},
      meta={'model': checkpointing.config_to_dict(other.model),
            'steps_per_epoch': config.steps_per_epoch})
  manager.close()
  files_before = sorted(
      (str(p), p.stat().st_mtime_ns) for p in (tmp_path / 'checkpoints').rglob('*'))
  with pytest.raises(ValueError, match='another model.*d_model'):
    _run(config, tmp_path, examples)
  files_after = sorted(
      (str(p), p.stat().st_mtime_ns) for p in (tmp_path / 'checkpoints').rglob('*'))
  assert files_after == files_before


def test_missing_dataset_names_the_build_command(tmp_path):
  config = test_config.get_config()
  config.data.data_dir = str(tmp_path / 'no_data_here')
  with pytest.raises(FileNotFoundError) as info:
    train.train_and_evaluate(config, tmp_path / 'work')
  message = str(info.value)
  assert 'python -m hybrik_jax.prepare_data --dataset synthetic_humans' in message
  assert '--config tiny' in message and str(tmp_path / 'no_data_here') in message


def test_summary_lists_the_three_numbers():
  summary = {
      'step': 10, 'workdir': '/w', 'checkpoint_dir': '/w/checkpoints',
      'baselines': {'untrained': {'mpjpe': 500.0, 'pa_mpjpe': 300.0},
                    'mean_pose': {'mpjpe': 200.0, 'pa_mpjpe': 150.0}},
      'eval': {'mpjpe': 100.0, 'pa_mpjpe': 80.0}}
  text = train.format_summary(summary)
  assert 'untrained model' in text and '500.0' in text
  assert 'mean training pose' in text and '200.0' in text
  assert 'trained model' in text and '100.0' in text
  assert '50.0% below' in text and '/w/checkpoints' in text


def test_release_free_host_memory_returns_whether_pages_went_back():
  import ctypes.util  # pylint: disable=g-import-not-at-top
  blocks = [bytearray(64 * 1024) for _ in range(2000)]   # ~128 MB of heap (below mmap size)
  del blocks[:-1]
  released = train_lib.release_free_host_memory()
  assert isinstance(released, bool)
  if sys.platform.startswith('linux') and ctypes.util.find_library('c'):
    assert released   # glibc had free pages to hand back
