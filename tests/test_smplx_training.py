"""Training HybrIK-X (SMPL-X) models: the criteria, the zoo configs.

The released criteria the zoo yamls name (L1LossDimSMPLXCamKid,
RLELossDimSMPLXCamKid) are not in the released code; training/smplx_losses.py
composes them from the released SMPL camera criterion's terms. Its fixture
(tests/data/released_hybrik_x/smplx_losses.npz) holds those terms as
Jeff-sjtu/HybrIK @ 9b8681d's criterion.py computes them, run as it is on
SMPL-X-sized inputs (tests/data/released_hybrik_x/README.md says how).
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrik_jax.training import smplx_losses
import released_fixtures  # pylint: disable=g-bad-import-order

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(REPO, 'tests', 'data', 'released_hybrik_x', 'smplx_losses.npz')


@pytest.fixture(scope='module')
def loss_fixture():
  fx = released_fixtures.load_npz(
      FIXTURE, {'pred_uvd': (8, 71, 3), 'pred_rotmats': (8, 55, 3, 3),
                'target_xyz_weight_71': (8, 71, 3), 'released/loss_uvd': (),
                'composed/RLELossDimSMPLXCamKid': ()},
      readme='tests/data/released_hybrik_x/README.md')
  outputs = {k: jnp.asarray(v) for k, v in fx.items() if k.startswith('pred_')}
  batch = {k: jnp.asarray(v) for k, v in fx.items() if k.startswith('target_')}
  return fx, outputs, batch


@pytest.fixture(scope='module')
def jit_losses():
  return {name: jax.jit(smplx_losses.criterion(name)) for name in smplx_losses.CRITERIA}


def test_smplx_loss_terms_match_released(loss_fixture, jit_losses):
  """Every term against the released code's (1e-5 relative); the hand-relative uvd too."""
  fx, outputs, batch = loss_fixture
  _, comps = jit_losses['L1LossDimSMPLXCamKid'](outputs, batch)
  for name in smplx_losses.SMPLX_LOSS_NAMES:
    np.testing.assert_allclose(float(comps[name]), float(fx[f'released/loss_{name}']),
                               rtol=1e-5, err_msg=name)
  _, rel = jit_losses['RLELossDimSMPLXCamKid'](outputs, batch)
  np.testing.assert_allclose(float(rel['uvd']), float(fx['released/loss_uvd_hand_rel']),
                             rtol=1e-5)
  assert abs(float(rel['uvd']) - float(comps['uvd'])) > 1e-3  # the fingers do count


@pytest.mark.parametrize('name', sorted(smplx_losses.CRITERIA))
def test_smplx_criteria_totals_and_yaml_weights(loss_fixture, jit_losses, name):
  fx, outputs, batch = loss_fixture
  total, comps = jit_losses[name](outputs, batch)
  np.testing.assert_allclose(float(total), float(fx[f'composed/{name}']), rtol=1e-5)
  assert float(comps['loss']) == float(total)
  # The yaml that names this criterion gives our weights.
  key = 'kid' if name.startswith('L1') else 'rle'
  assert str(fx[f'yaml/{key}/type']) == name
  el = dict(zip([str(n) for n in fx[f'yaml/{key}/weight_names']],
                fx[f'yaml/{key}/weights'].tolist()))
  w = smplx_losses.CRITERIA[name][0]
  assert (w['uvd'], w['beta'], w['expression'], w['theta'], w['twist']) == (
      el['UVD24_WEIGHT'], el['BETA_WEIGHT'], el['BETA_WEIGHT'], el['THETA_WEIGHT'],
      el['TWIST_WEIGHT'])
  # ... and the released code has no class of that name (why ours is composed).
  assert 'not in the loss registry' in str(fx[f'released/registry_{key}'])


def test_smplx_loss_masks_and_gradients(loss_fixture):
  """Unlabelled rows give no shape/camera gradient; gradients finite; bad shapes named."""
  _, outputs, batch = loss_fixture
  grads = jax.grad(lambda o: smplx_losses.smplx_loss(o, batch, hand_relative_uvd=True)[0])(
      outputs)
  for k, g in grads.items():
    assert np.all(np.isfinite(np.asarray(g))), k
  for row in (2, 5):  # target_smpl_weight 0
    assert not np.any(np.asarray(grads['pred_shape'][row]))
    assert not np.any(np.asarray(grads['pred_expression'][row]))
  for row in (2, 4, 6):  # <= 3 labelled coordinates among the first 24 joints
    assert float(grads['pred_camera'][row, 0]) == 0.0
  assert float(grads['pred_camera'][0, 0]) != 0.0
  # Row 1's left wrist is unlabelled: its fingers have no relative uvd term.
  assert not np.any(np.asarray(grads['pred_uvd'][1, 25:40]))
  assert np.any(np.asarray(grads['pred_uvd'][1, 40:55]))
  with pytest.raises(ValueError, match='pred_phi'):
    smplx_losses.smplx_loss(dict(outputs, pred_phi=outputs['pred_phi'][:, :23]), batch)
  with pytest.raises(ValueError, match='unknown SMPL-X criterion'):
    smplx_losses.criterion('L1LossDimSMPLX')


# ----------------------------------------------------------------------------
# The two zoo configs (resolved, not trained).
# ----------------------------------------------------------------------------

@pytest.mark.parametrize('name', ['hybrik_x_hrw48_smplx_kid', 'hybrik_x_hrw48_rle_smplx_kid'])
def test_smplx_zoo_configs_resolve(name):
  from hybrik_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  from hybrik_jax.models import config as model_config_lib  # pylint: disable=g-import-not-at-top
  from hybrik_jax.training import train_config  # pylint: disable=g-import-not-at-top
  from hybrik_jax.training import train_lib  # pylint: disable=g-import-not-at-top
  config = train_config.load_config_file(os.path.join(REPO, 'configs', f'{name}.py'))
  train_config.check_config(config.copy_and_resolve_references())
  rle = 'rle' in name
  m = config.model
  assert (m.backbone, m.body, m.head) == ('hrnet_w48', 'smplx', 'regression' if rle else 'heatmap')
  assert m.predict_camera and m.focal_length == 1000.0 and m.input_size == 256
  assert model_config_lib.ik_convention(m).depth_factor == 2.2  # BBOX_3D_SHAPE 2200
  assert dict(config.loss) == smplx_losses.SMPLX_LOSS_WEIGHTS
  data = input_pipeline.DataConfig.from_config(config.data)
  mix = dict(data.train_datasets)
  assert set(mix) == ({'agora', 'coco_keypoints', 'mpi_inf_3dhp', 'h36m', 'pw3d'}
                      | (set() if rle else {'freihand'}))
  assert (data.eval_dataset, data.eval_split) == ('agora', 'validation')
  aug = data.augmentation_for('agora')
  assert (aug.flip_prob, aug.rot_factor, aug.rot_prob, aug.scale_factor, aug.color_factor) == (
      0.5, 30.0, 0.6, 0.3, 0.2)
  assert aug.occlusion == rle and data.scale_mult_for('agora') == 1.0
  assert config.batch_size == (144 if rle else 224)
  # MultiStepLR from 1e-3, x0.1 at the yaml's epochs (100 steps an epoch here).
  _, lr_fn = train_lib.create_optimizer(config.optim, None, 100)
  first, second = config.optim.lr_step_epochs
  assert (first, second) == ((30, 60) if rle else (60, 80))
  lrs = [float(lr_fn(e * 100 + 1)) for e in (0, first - 1, first, second - 1, second)]
  np.testing.assert_allclose(lrs, [1e-3, 1e-3, 1e-4, 1e-4, 1e-5], rtol=1e-6)
  assert smplx_losses.HEAD_CRITERIA[m.head] == (
      'RLELossDimSMPLXCamKid' if rle else 'L1LossDimSMPLXCamKid')


# ----------------------------------------------------------------------------
# The tiny config trained a few steps (synthetic_whole_body/tiny), through the CLI too.
# ----------------------------------------------------------------------------

def synthetic_smplx_batch(smplx_model, rng: np.random.Generator, b: int, size: int) -> dict:
  """A batch of SMPL-X targets from the synthetic body: random shapes in their rest
  pose (identity rotations, twists 0), the 71 joints with the root 3 m in front of a
  focal-1000 camera, projected into the `size` px crop; random images."""
  from hybrik_jax.body import ik_smplx  # pylint: disable=g-import-not-at-top
  rot = np.tile(np.eye(3, dtype=np.float32), (b, 55, 1, 1))
  betas = np.concatenate([rng.normal(0, 1, (b, 10)), np.zeros((b, 1))], 1).astype(np.float32)
  rest = ik_smplx.rest_joints71(smplx_model, jnp.asarray(betas))
  joints = np.asarray(rest - rest[:, :1])
  uvd = np.concatenate([joints[..., :2] / (3.0 + joints[..., 2:]) * 1000.0 / size,
                        joints[..., 2:] / 2.2], -1)
  ones = lambda *s: np.ones((b,) + s, np.float32)
  return dict(
      image=rng.normal(0, 1, (b, size, size, 3)).astype(np.float32),
      target_uvd_71=uvd.astype(np.float32), target_uvd_weight_71=ones(71, 3),
      target_beta=betas[:, :10], target_beta_kid=betas[:, 10:],
      target_expression=np.zeros((b, 10), np.float32), target_smpl_weight=ones(1),
      target_rotmats=rot, target_rotmats_weight=ones(55, 3, 3),
      target_twist=np.tile(np.array([1.0, 0.0], np.float32), (b, 54, 1)),
      target_twist_weight=ones(54, 2), target_xyz_weight_71=ones(71, 3),
      target_camera_scale=np.full((b, 1), 1000.0 / (size * 3.0), np.float32),
      depth_factor=np.full((b, 1), 2.2, np.float32))


@pytest.fixture(scope='module')
def smplx_body():
  """The synthetic SMPL-X body (seed 0), built once for this file (3 s)."""
  from hybrik_jax.body import synthetic_smplx  # pylint: disable=g-import-not-at-top
  return synthetic_smplx.synthetic_smplx_model(0)


def _test_smplx_config():
  """configs/test_smplx.py as the CLI test below runs it (theta off: the train-mode
  SMPL-X IK's gradient adds 42 s of compile on 2 cores;
  test_smplx_theta_through_the_train_ik checks that path)."""
  from hybrik_jax.training import train_config  # pylint: disable=g-import-not-at-top
  config = train_config.load_config_file(os.path.join(REPO, 'configs', 'test_smplx.py'))
  config.loss.theta = 0.0
  train_config.check_config(config.copy_and_resolve_references())
  return config


def test_tiny_smplx_config_trains(smplx_body, whole_body_tiny_data):
  """configs/test_smplx.py: the trainer's compiled step (`jit_train_step`, its optimizer
  and the input pipeline's batches of synthetic_whole_body/tiny, as `train` builds
  them) lowers the loss in 3 Adam steps on one batch; every term finite. The same
  programs as the CLI run below, which then finds them in the suite's cache."""
  from hybrik_jax import models  # pylint: disable=g-import-not-at-top
  from hybrik_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  from hybrik_jax.training import train_lib  # pylint: disable=g-import-not-at-top
  config = _test_smplx_config()
  data = input_pipeline.DataConfig.from_config(
      dict(config.data, data_dir=whole_body_tiny_data))
  batch = next(input_pipeline.create_train_iterator(
      data, global_batch_size=config.batch_size, seed=config.seed,
      input_size=config.model.input_size))
  assert batch['target_uvd_71'].shape == (2, 71, 3)
  model = models.create_model(config.model)
  tx, lr_fn = train_lib.create_optimizer(config.optim, config.num_train_steps,
                                         config.steps_per_epoch)
  state = train_lib.create_train_state(model, tx, jax.random.key(config.seed),
                                       config.model.input_size)
  mesh = train_lib.create_mesh()
  step = train_lib.jit_train_step(
      mesh, smpl_model=smplx_body, model=model, tx=tx, lr_fn=lr_fn,
      model_config=config.model, loss_weights={k: float(v) for k, v in config.loss.items()})
  state = train_lib.replicate(state, mesh)
  history = []
  for _ in range(3):
    state, metrics = step(state, train_lib.global_batch(batch, mesh))
    history.append({k: float(v) for k, v in metrics.items()})
  for m in history:
    assert m['skipped'] == 0.0 and np.isfinite(m['loss']), m
    for name in smplx_losses.SMPLX_LOSS_NAMES:
      assert np.isfinite(m[name]), name
  assert history[0]['uvd'] != 0.0 and history[0]['twist'] > 0.0
  assert history[-1]['loss'] < history[0]['loss'], [m['loss'] for m in history]


def test_cli_trains_test_smplx_and_evaluates_its_checkpoint(whole_body_tiny_data, tmp_path,
                                                            capsys):
  """`python -m hybrik_jax.train --config configs/test_smplx.py` (2 steps, theta off as
  above) on synthetic_whole_body/tiny, then `python -m hybrik_jax.evaluate
  --checkpoint WORKDIR` on its validation split: MPJPE and PA-MPJPE on the 22 body
  joints, the hands' MPJPE and the MVE, finite, with the SMPL-X synthetic body, and
  the trainer's validation MPJPE the same."""
  import json  # pylint: disable=g-import-not-at-top
  from hybrik_jax import evaluate  # pylint: disable=g-import-not-at-top
  from hybrik_jax import train  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / 'wd'
  rc = train.main(['--config', os.path.join(REPO, 'configs', 'test_smplx.py'),
                   f'--workdir={workdir}', f'--config.data.data_dir={whole_body_tiny_data}',
                   '--config.loss.theta=0', '--config.compilation_cache_dir='])
  assert rc == 0
  out = capsys.readouterr().out
  assert 'synthetic_whole_body' in out and 'Training finished at step 2' in out, out
  result = tmp_path / 'eval.json'
  rc = evaluate.main(['--checkpoint', str(workdir), '--batch_size', '2',
                      '--out', str(result)])
  assert rc == 0
  table = capsys.readouterr().out
  assert 'MVE' in table and 'MPJPE hands' in table, table
  results = json.loads(result.read_text())
  assert (results['dataset'], results['split']) == ('synthetic_whole_body/tiny', 'validation')
  values = results['metrics']
  for name in ('mpjpe', 'pa_mpjpe', 'mpjpe_hands', 'mve'):
    assert values[name] is not None and 0 < values[name] < 1e4, (name, values)
  assert values['pa_mpjpe'] < values['mpjpe']
  assert results['num_examples'] == 4 and results['body_model'] == 'synthetic SMPL-X body'
  assert f"MPJPE {values['mpjpe']:.1f} mm" in out, out  # the trainer's validation


def test_smplx_theta_through_the_train_ik(smplx_body):
  """The train step's SMPL-X rotations (back-projection with the predicted scale, the
  train-mode IK): the truth predicted gives theta ~ 0; a wrong twist does not."""
  from hybrik_jax.body import ik  # pylint: disable=g-import-not-at-top
  from hybrik_jax.training import train_lib  # pylint: disable=g-import-not-at-top
  body = smplx_body
  batch = {k: jnp.asarray(v) for k, v in synthetic_smplx_batch(
      body, np.random.default_rng(1), 2, 64).items()}
  raw = dict(pred_uvd=batch['target_uvd_71'], pred_sigma=jnp.full((2, 71), 0.1),
             pred_shape=jnp.concatenate([batch['target_beta'], batch['target_beta_kid']], 1),
             pred_expression=batch['target_expression'], pred_phi=batch['target_twist'],
             pred_camera=batch['target_camera_scale'])
  run = lambda r: train_lib._smplx_model_loss(  # pylint: disable=protected-access
      r, batch, smplx_model=body, head='heatmap', loss_weights=smplx_losses.SMPLX_LOSS_WEIGHTS,
      convention=ik.IKConvention.hybrik(), input_size=64, focal_length=1000.0)[1]
  truth = run(raw)
  assert float(truth['theta']) < 1e-9, float(truth['theta'])
  for name in ('beta', 'expression', 'twist', 'cam_scale'):
    assert float(truth[name]) == 0.0, name
  twisted = raw['pred_phi'].at[:, 17].set(jnp.array([np.cos(1.0), np.sin(1.0)]))  # an elbow
  assert float(run(dict(raw, pred_phi=twisted))['theta']) > 1e-4


def test_smplx_models_refuse_smpl_data_and_the_smpl_baselines(tmp_path):
  """One line each, nothing written: an SMPL-X model on SMPL examples (and the reverse),
  the SMPL baselines, an SMPL protocol, a real dataset without the SMPL-X files."""
  from hybrik_jax import errors  # pylint: disable=g-import-not-at-top
  from hybrik_jax.body import bodies  # pylint: disable=g-import-not-at-top
  from hybrik_jax.evaluation import loop  # pylint: disable=g-import-not-at-top
  from hybrik_jax.evaluation import protocols  # pylint: disable=g-import-not-at-top
  from hybrik_jax.training import trainer  # pylint: disable=g-import-not-at-top
  config = _test_smplx_config()
  whole, smpl = [{'joints71_cam': 0}], [{'joints29_cam': 0}]
  trainer.check_dataset_bodies(config, {'synthetic_whole_body/tiny': whole}, whole)
  with pytest.raises(errors.InputError, match='holds SMPL examples but model.body is smplx'):
    trainer.check_dataset_bodies(config, {'synthetic_humans/tiny': smpl}, whole)
  with pytest.raises(errors.InputError, match=r'\(validation\) holds SMPL'):
    trainer.check_dataset_bodies(config, {'synthetic_whole_body/tiny': whole}, smpl)
  config.model.body = 'smpl'
  with pytest.raises(errors.InputError, match='whole-body'):
    trainer.check_dataset_bodies(config, {'synthetic_whole_body/tiny': whole}, smpl)
  config = _test_smplx_config()
  config.evals.baselines = True
  with pytest.raises(errors.InputError, match='config.evals.baselines'):
    trainer.train_and_evaluate(config, tmp_path / 'w')
  assert not (tmp_path / 'w').exists()
  with pytest.raises(ValueError, match="body 'smplx' cannot be scored on h36m_p2"):
    loop.make_eval_step(None, None, model_config=config.model,
                        protocol=protocols.PROTOCOLS['h36m'])
  with pytest.raises(bodies.SMPLXFileError, match='needs the real SMPL-X body'):
    bodies.load_body('smplx', model_path='', dataset='agora')
  with pytest.raises(bodies.SMPLXFileError, match='config.smpl.model_path'):
    bodies.load_smplx_body(str(tmp_path / 'SMPLX_NEUTRAL.npz'))
  # The demos' loader is the same one, its messages naming the demos' flags.
  from hybrik_jax.demos import core  # pylint: disable=g-import-not-at-top
  with pytest.raises(core.DemoError, match=r'not found \(--smpl\)'):
    core.load_smplx_body(str(tmp_path / 'SMPLX_NEUTRAL.npz'))
  (tmp_path / 'SMPLX_NEUTRAL.npz').write_bytes(b'')
  with pytest.raises(core.DemoError, match=r'smplx_kid_template.npy.* not found \(--kid_template\)'):
    core.load_smplx_body(str(tmp_path / 'SMPLX_NEUTRAL.npz'))
  with pytest.raises(core.DemoError, match='--kid_template is set but --smpl is not'):
    core.load_smplx_body(None, str(tmp_path / 'kid.npy'))
