"""Tests for the trainer (hybrik_jax.train, hybrik_jax.training.train_lib).

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

from hybrik_jax import errors
from hybrik_jax import models
from hybrik_jax import train
from hybrik_jax.body import synthetic_body
from hybrik_jax.checkpoints import config_json
from hybrik_jax.checkpoints import loading
from hybrik_jax.checkpoints import train_checkpoints
from hybrik_jax.data import build as build_lib
from hybrik_jax.data import input_pipeline
from hybrik_jax.data import synthetic
from hybrik_jax.evaluation import protocols
from hybrik_jax.models import hybrik as hybrik_model
from hybrik_jax.training import datasets
from hybrik_jax.training import recovery
from hybrik_jax.training import stop_signals
from hybrik_jax.training import summary as summary_lib
from hybrik_jax.training import train_lib
from hybrik_jax.training import trainer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
from configs import hybrik_x_hrw48_smplx_kid  # pylint: disable=g-import-not-at-top,wrong-import-position
from configs import test as test_config  # pylint: disable=g-import-not-at-top,wrong-import-position
from conftest import tiny_variables  # pylint: disable=g-bad-import-order,wrong-import-position

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
      input_pipeline.DataConfig.from_config(config.data), global_batch_size=config.batch_size, seed=0,
      input_size=config.model.input_size,
      data_sources={DATASET: examples[0]})
  batch = next(it)
  mesh = train_lib.create_mesh()
  smpl_model = synthetic_body.synthetic_smpl_model()
  # One compiled step shared by the tests below.
  step = train_lib.jit_train_step(
      mesh, smpl_model=smpl_model, model=model, tx=tx, lr_fn=lr_fn,
      loss_weights=dict(config.loss), model_config=config.model)
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


def test_learning_rate_cooldown():
  base = train_lib.create_learning_rate_fn(1e-3, 100)
  lr_fn = train_lib.create_learning_rate_fn(1e-3, 100, total_steps=1000, cooldown_steps=200)
  for step in (1, 50, 100, 400, 800):  # before the cooldown: the inverse-sqrt
    np.testing.assert_allclose(lr_fn(step), base(step), rtol=1e-6)
  np.testing.assert_allclose(lr_fn(801), base(801) * 200 / 200, rtol=1e-6)
  np.testing.assert_allclose(lr_fn(900), base(900) * 101 / 200, rtol=1e-6)
  np.testing.assert_allclose(lr_fn(1000), base(1000) / 200, rtol=1e-6)
  assert float(lr_fn(1001)) == 0.0
  with pytest.raises(ValueError, match='cooldown_steps'):
    train_lib.create_learning_rate_fn(1e-3, 100, total_steps=None, cooldown_steps=10)
  with pytest.raises(ValueError, match='cooldown_steps'):
    train_lib.create_learning_rate_fn(1e-3, 100, total_steps=5, cooldown_steps=10)


def test_one_step_lowers_loss(setup):
  config = setup['config']
  mesh = setup['mesh']
  batch = train_lib.global_batch(setup['batch'], mesh)
  state = train_lib.replicate(_copy(setup['state']), mesh)
  rng = jax.random.key(7)

  @jax.jit  # (eagerly, op by op, it took longer than compiling it)
  def loss_of(s):
    total, _ = train_lib.forward_and_loss(
        s.params, s.batch_stats, batch, rng, model=setup['model'],
        smpl_model=setup['smpl_model'], loss_weights=dict(config.loss),
        convention=models.config.ik_convention(config.model),
        input_size=config.model.input_size)
    return total

  before = float(loss_of(state))
  new_state, metrics = _step_fn(setup, mesh)(state, batch)
  after = float(loss_of(new_state))
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
  # The three runs share the suite's compilation cache (conftest; the trainer's
  # default compilation_cache_dir='auto' uses it), so they compile at most once.
  config = test_config.get_config()
  config.num_train_steps = 4
  config.steps_per_epoch = 2
  config.evals.max_batches = 1
  full = _run(config, tmp_path / 'full', examples)
  # The checkpoint records the config: evaluate defaults to its validation set.
  loaded = loading.load_for_inference(tmp_path / 'full')
  assert loaded.step == 4
  assert loaded.train_config.data.eval_dataset == config.data.eval_dataset
  assert loaded.train_config.data.eval_split == config.data.eval_split
  first = _run(config, tmp_path / 'resumed', examples, stop_after_steps=2)
  assert first['step'] == 2 and 'eval' not in first
  resumed = _run(config, tmp_path / 'resumed', examples)
  assert full['step'] == resumed['step'] == 4
  chex.assert_trees_all_close(jax.device_get(full['state'].params),
                              jax.device_get(resumed['state'].params),
                              rtol=1e-6, atol=1e-7)
  chex.assert_trees_all_close(jax.device_get(full['state'].opt_state),
                              jax.device_get(resumed['state'].opt_state),
                              rtol=1e-6, atol=1e-7)
  assert np.isfinite(full['eval']['mpjpe'])
  # Both runs keep the last keep_epochs=2 epoch ends (steps 2 and 4).
  manager = train_checkpoints.create_checkpoint_manager(
      tmp_path / 'resumed', steps_per_epoch=2, read_only=True)
  assert train_checkpoints.all_steps(manager) == [2, 4]
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
  manager = train_checkpoints.create_checkpoint_manager(
      tmp_path, steps_per_epoch=config.steps_per_epoch, async_save=False)
  train_checkpoints.save_train_state(
      manager, 1, {'params': {'w': jnp.ones(2)}},
      meta={'model': config_json.config_to_dict(other.model),
            'steps_per_epoch': config.steps_per_epoch})
  manager.close()
  files_before = sorted(
      (str(p), p.stat().st_mtime_ns) for p in (tmp_path / 'checkpoints').rglob('*'))
  with pytest.raises(ValueError, match='another model.*d_model'):
    _run(config, tmp_path, examples)
  files_after = sorted(
      (str(p), p.stat().st_mtime_ns) for p in (tmp_path / 'checkpoints').rglob('*'))
  assert files_after == files_before


def test_refuses_to_resume_with_another_batch_size(tmp_path):
  """Issue 25 case 4: steps_per_epoch fixed in the config, so only the batch
  size differs: refused, one message naming the field. The job's meta (what
  restore_latest_readable compares) records the batch size."""
  config = test_config.get_config()
  meta = {'model': config_json.config_to_dict(config.model),
          'steps_per_epoch': config.steps_per_epoch,
          'batch_size': config.batch_size}
  saved = dict(meta, batch_size=2 * config.batch_size)
  with pytest.raises(recovery.IncompatibleCheckpointError) as info:
    recovery.check_compatible(saved, meta, tmp_path)
  message = str(info.value)
  assert '\n' not in message
  assert (f'trained with config.batch_size={2 * config.batch_size}, this '
          f'config gives {config.batch_size}') in message
  assert f'--config.batch_size={2 * config.batch_size}' in message
  recovery.check_compatible(meta, meta, tmp_path)  # same: resumes
  legacy = {k: v for k, v in meta.items() if k != 'batch_size'}
  recovery.check_compatible(legacy, meta, tmp_path)  # not recorded: resumes
  assert trainer._Job.meta.fget(  # pylint: disable=protected-access
      type('J', (), {'config': config, 'epoch_steps': 2}))['batch_size'] == (
          config.batch_size)


def test_missing_dataset_names_the_build_command(tmp_path):
  config = test_config.get_config()
  config.data.data_dir = str(tmp_path / 'no_data_here')
  with pytest.raises(FileNotFoundError) as info:
    train.train_and_evaluate(config, tmp_path / 'work')
  message = str(info.value)
  assert 'python -m hybrik_jax.prepare_data --dataset synthetic_humans' in message
  assert '--config tiny' in message and str(tmp_path / 'no_data_here') in message


def test_datasets_without_a_builder_are_named(tmp_path):
  """HybrIK-X's zoo config lists AGORA and FreiHAND, which have no builder here:
  the error names them instead of a build command for a builder that does not exist."""
  config = hybrik_x_hrw48_smplx_kid.get_config()
  config.data.data_dir = str(tmp_path)
  message = datasets.missing_message(input_pipeline.DataConfig.from_config(config.data))
  assert message.startswith('dataset(s) agora, freihand: the project has no builder')
  assert 'prepare_data' not in message
  config = test_config.get_config()
  config.data.train_datasets = (('coco', 1.0),)  # the old name of coco_keypoints
  message = datasets.missing_message(input_pipeline.DataConfig.from_config(config.data))
  assert 'prepare_data --dataset coco' in message


def test_summary_lists_the_three_numbers():
  summary = {
      'step': 10, 'workdir': '/w', 'checkpoint_dir': '/w/checkpoints',
      'protocol': protocols.PROTOCOLS['h36m'].describe(),
      'baselines': {'untrained': {'mpjpe': 500.0, 'pa_mpjpe': 300.0},
                    'mean_pose': {'mpjpe': 200.0, 'pa_mpjpe': 150.0}},
      'eval': {'mpjpe': 100.0, 'pa_mpjpe': 80.0}}
  text = summary_lib.format_summary(summary)
  assert 'untrained model' in text and '500.0' in text
  assert 'mean training pose' in text and '200.0' in text
  assert 'trained model' in text and '100.0' in text
  assert '50.0% below' in text and '/w/checkpoints' in text
  assert 'Validation protocol: h36m_p2 (14 H36M joints' in text


@pytest.mark.parametrize('convention', ['corrected', 'released'])
def test_train_step_lowers_loss_with_either_ik_convention(setup, convention):
  """model.ik_convention selects the IK of the theta loss; both train.

  'released' decodes with the released layer's train-mode IK in the train step
  (other rotations than at evaluation); 'corrected' has one IK.
  """
  config = setup['config']
  model_config = models.get_tiny_model_config(
      input_size=config.model.input_size, predict_leaf=True, num_blocks=1,
      ik_convention=convention)  # the one field that selects the convention
  model = hybrik_model.create_model(model_config)
  weights = dict(config.loss, theta=1.0)
  # Random variables without compiling model.init (conftest.tiny_variables).
  state = train_lib.create_train_state(
      model, setup['tx'], jax.random.key(0), model_config.input_size,
      variables=tiny_variables(model, model_config.input_size))
  mesh = setup['mesh']
  batch = train_lib.global_batch(setup['batch'], mesh)
  state = train_lib.replicate(state, mesh)
  step = train_lib.jit_train_step(
      mesh, smpl_model=setup['smpl_model'], model=model, tx=setup['tx'],
      lr_fn=setup['lr_fn'], loss_weights=weights, model_config=model_config)

  ik_convention = models.config.ik_convention(model_config)

  @jax.jit
  def loss_of(s):
    _, (comps, _) = train_lib.forward_and_loss(
        s.params, s.batch_stats, batch, jax.random.key(7), model=model,
        smpl_model=setup['smpl_model'], loss_weights=weights,
        convention=ik_convention, input_size=model_config.input_size, train=True)
    return comps

  before = loss_of(state)
  # The same network outputs decoded as the train step and as evaluation do.
  raw = model.apply({'params': state.params, 'batch_stats': state.batch_stats},
                    batch['image'], train=False)
  geometry = {k: batch[k] for k in ('trans_inv', 'intrinsics', 'joint_root')}
  rotmats = [hybrik_model.decode(raw, smpl_model=setup['smpl_model'],
                                 input_size=model_config.input_size, convention=c,
                                 **geometry).pred_rotmats
             for c in (ik_convention.for_training(), ik_convention)]
  ik_change = float(jnp.abs(rotmats[0] - rotmats[1]).max())
  new_state, metrics = step(state, batch)  # donates state
  assert float(metrics['skipped']) == 0.0
  assert np.isfinite(float(metrics['theta'])) and float(metrics['theta']) > 0
  assert float(loss_of(new_state)['loss']) < float(before['loss'])
  if convention == 'released':  # train mode: another root fit, no fallback
    assert ik_change > 1e-3
  else:
    assert ik_change == 0.0


@pytest.mark.parametrize('convention,sign', [('corrected', 'w_positive'),
                                            ('released', 'released')])
def test_theta_loss_quaternion_sign_follows_the_ik_convention(
    setup, monkeypatch, convention, sign):
  """'released' trains with the released criterion's quaternion sign."""
  seen = []
  real = train_lib.losses.hybrik_loss

  def recording(*args, **kwargs):
    seen.append(kwargs.get('quaternion_sign'))
    return real(*args, **kwargs)

  monkeypatch.setattr(train_lib.losses, 'hybrik_loss', recording)
  config = setup['config']
  model_config = models.get_tiny_model_config(
      input_size=config.model.input_size, predict_leaf=True, num_blocks=1,
      ik_convention=convention)
  model = hybrik_model.create_model(model_config)
  batch = setup['batch']

  def loss():  # traced only (jax.eval_shape): no compile
    variables = model.init(
        {k: jax.random.key(i) for i, k in enumerate(('params', 'dropout', 'patches'))},
        jnp.asarray(batch['image']), train=False)
    return train_lib.forward_and_loss(
        variables['params'], variables['batch_stats'], batch, jax.random.key(1),
        model=model, smpl_model=setup['smpl_model'],
        loss_weights=dict(config.loss, theta=1.0),
        convention=models.config.ik_convention(model_config),
        input_size=model_config.input_size)

  jax.eval_shape(loss)
  assert seen == [sign]


def test_build_missing_builds_every_missing_dataset(monkeypatch):
  """Two unbuilt datasets: both are built (the second used to hit an
  UnboundLocalError), each once."""
  config = test_config.get_config()
  opened, built = [], []

  def missing(name, data_dir):
    opened.append(name)
    return False

  monkeypatch.setattr(build_lib, 'is_built', missing)
  monkeypatch.setattr(build_lib, 'build',
                      lambda base, data_dir, config: built.append((base, config)))
  datasets.build_missing(input_pipeline.DataConfig.from_config(config.data), [
      'synthetic_humans/tiny', 'h36m', 'synthetic_humans/small',
      'synthetic_humans/tiny'])
  assert opened == ['synthetic_humans/tiny', 'synthetic_humans/small']
  assert built == [('synthetic_humans', 'tiny'), ('synthetic_humans', 'small')]


def test_validation_never_scores_nan_as_good():
  """A NaN prediction is a failure and NaN ground truth bad data: both are left
  out of the validation averages and counted, never scored as 0 mm."""
  target = np.random.default_rng(0).normal(size=(4, 17, 3)).astype(np.float32)
  pred = target - target[:, :1]
  pred[:, 1:] += 0.01  # 10 sqrt(3) mm at every joint but the pelvis
  pred[0] = np.nan  # a failed prediction: its 17 joints
  target[1, 3] = np.nan  # bad ground truth: one joint
  batch = {'joints17_cam': jnp.asarray(target),
           'joints17_valid': jnp.ones((4, 17)), 'mask': jnp.ones(4)}
  every_joint = protocols.Protocol('all_17', protocols.ALL_17)
  sums, _ = jax.device_get(protocols.batch_metrics(
      every_joint, batch, pred_xyz_17=jnp.asarray(pred)))
  averages = protocols.averages(sums)
  assert averages['non_finite_pred'] == 1  # one failed sample
  assert averages['non_finite_target'] == 1
  assert float(sums['mpjpe'].count) == 17 + 17 + 16
  np.testing.assert_allclose(averages['mpjpe'], 47 / 50 * 10 * np.sqrt(3),
                             rtol=1e-4)
  # Every prediction NaN: undefined, never 0 mm.
  sums, _ = jax.device_get(protocols.batch_metrics(
      every_joint, batch, pred_xyz_17=jnp.full_like(pred, np.nan)))
  averages = protocols.averages(sums)
  assert np.isnan(averages['mpjpe']) and np.isnan(averages['pa_mpjpe'])
  assert averages['non_finite_pred'] == 4
  line = summary_lib.validation_line(3, 'all_17', averages)
  assert 'MPJPE undefined, PA-MPJPE undefined' in line
  assert '4 failed sample(s)' in line
  text = summary_lib.format_summary({
      'step': 1, 'workdir': '/w', 'checkpoint_dir': '/w/c',
      'eval': {'mpjpe': 17.3, 'pa_mpjpe': 1.0, 'non_finite_pred': 1.0,
               'non_finite_target': 1.0}})
  assert '1 failed sample(s) (a non-finite predicted joint)' in text
  assert '1 with non-finite ground truth' in text
  # The suggested export command survives a pasted workdir with a space.
  text = summary_lib.format_summary({'step': 1, 'workdir': '/tmp/my runs/a',
                                     'checkpoint_dir': '/c'})
  assert "--workdir '/tmp/my runs/a' --last 10" in text


def test_bad_inputs_are_one_line_and_write_nothing(tmp_path, monkeypatch):
  config = test_config.get_config()
  a_file = tmp_path / 'a_file'
  a_file.write_text('x')
  cases = {
      'is a file': (a_file, {}),
      'cannot be created': (a_file / 'sub', {}),
      'does not exist': (tmp_path / 'w1',
                         {'data_dir': str(tmp_path / 'no_data')}),
  }
  for expected, (workdir, data) in cases.items():
    config.data.data_dir = data.get('data_dir', '')
    with pytest.raises(errors.InputError, match=expected) as info:
      train.train_and_evaluate(config, workdir)
    assert '\n' not in str(info.value)
  assert sorted(os.listdir(tmp_path)) == ['a_file']  # nothing written
  config.data.data_dir = ''
  config.batch_size = 4
  monkeypatch.setattr(trainer.jax, 'device_count', lambda: 3)
  with pytest.raises(errors.InputError, match='batch_size=4 must be divisible.*3'):
    train.train_and_evaluate(config, tmp_path / 'w2')
  assert not (tmp_path / 'w2').exists()


def test_too_many_skipped_steps_stop_after_saving(examples, tmp_path):
  # Non-finite shape targets in every training example: every step's loss is
  # NaN and skipped. (The same program as the other tests compile: cached.)
  train_examples = [dict(e, smpl_beta=np.full_like(e['smpl_beta'], np.nan))
                    for e in examples[0]]
  examples = (train_examples, examples[1])
  config = test_config.get_config()
  config.num_train_steps = 6
  config.steps_per_epoch = 6
  config.checkpoint_every_steps = 100
  config.max_skipped_fraction = 0.3
  config.skipped_check_after_steps = 3
  with pytest.raises(stop_signals.Stopped, match='config.max_skipped_fraction') as info:
    _run(config, tmp_path, examples)
  assert info.value.exit_code == 3
  step = int(str(info.value).split('stopped at step ')[1].split()[0])
  assert 3 <= step < 6
  manager = train_checkpoints.create_checkpoint_manager(
      tmp_path, steps_per_epoch=6, read_only=True)
  assert train_checkpoints.all_steps(manager) == [step]


def test_unknown_config_override_is_one_line(tmp_path):
  import subprocess  # pylint: disable=g-import-not-at-top
  repo = os.path.join(os.path.dirname(__file__), '..')
  result = subprocess.run(
      [sys.executable, '-m', 'hybrik_jax.train', '--config',
       os.path.join(repo, 'configs', 'test.py'), f'--workdir={tmp_path / "w"}',
       '--config.seed=3', '--config.foo=1', '--config.batch_size=4'],
      capture_output=True, text=True, timeout=300,
      env=dict(os.environ, PYTHONPATH=repo))
  assert result.returncode == 2
  assert 'Traceback' not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  # Only the bad override is quoted (issue 25 case 10), not every one.
  assert last.startswith('error: bad config override in --config.foo=1 ('), last
  assert not (tmp_path / 'w').exists()


def test_hrnet_backbone_trains_checkpoints_and_evaluates(examples, tmp_path):
  from configs import test_hrnet  # pylint: disable=g-import-not-at-top
  from hybrik_jax.evaluation import benchmark  # pylint: disable=g-import-not-at-top
  config = test_hrnet.get_config()
  config.evals.max_batches = 1
  summary = _run(config, tmp_path, examples)
  assert summary['step'] == config.num_train_steps
  assert np.isfinite(summary['eval']['mpjpe'])
  backbone = jax.device_get(summary['state'].params['backbone'])
  assert {'stage4_0', 'incre_modules_3_0', 'final_feat_layer_0'} <= set(backbone)
  # The checkpoint reloads into the HRNet model and evaluates (with the
  # trainer's batch size and flip test: the program its validation compiled).
  results = benchmark.evaluate(loading.load_for_inference(tmp_path),
                               str(tmp_path), DATASET, split='validation',
                               data_source=examples[1],
                               smpl_model=synthetic_body.synthetic_smpl_model(),
                               batch_size=config.evals.batch_size, flip_test=True,
                               progress=False,
                               output=str(tmp_path / 'eval.json'))
  assert results['num_examples'] == len(examples[1])
  assert np.isfinite(results['metrics']['mpjpe'])


def test_the_quiet_start_says_what_is_happening(examples, tmp_path, capsys):
  """Between the epoch line and the first step (baselines, compile: minutes
  on the paper's config) one line says what runs, in order (issue 27)."""
  config = test_config.get_config()
  config.num_train_steps = 1
  config.evals.baselines = True
  config.evals.max_batches = 1
  config.evals.mean_pose_batches = 1
  summary = _run(config, tmp_path, examples)
  out = capsys.readouterr().out
  lines = [
      'steps per epoch',
      'Evaluating the untrained model and the constant baseline (mean '
      f'training pose) on {config.evals.batch_size} validation examples ...',
      'Compiling the train step (the first step takes a while) ...',
      'Training finished at step 1.']
  where = [out.find(line) for line in lines]
  assert -1 not in where and where == sorted(where), out
  assert set(summary['baselines']) == {'untrained', 'mean_pose'}
  assert 'untrained model' in out and 'constant: mean training pose' in out


def test_release_free_host_memory_returns_whether_pages_went_back():
  import ctypes.util  # pylint: disable=g-import-not-at-top
  blocks = [bytearray(64 * 1024) for _ in range(2000)]   # ~128 MB of heap (below mmap size)
  del blocks[:-1]
  released = train_lib.release_free_host_memory()
  assert isinstance(released, bool)
  if sys.platform.startswith('linux') and ctypes.util.find_library('c'):
    assert released   # glibc had free pages to hand back
