"""Training HybrIK's camera models: the criterion, the camera preset's targets, the configs.

Parity fixtures (tests/data/released_hybrik/camera_losses.npz, camera_targets.npz) hold
outputs of Jeff-sjtu/HybrIK @ 9b8681d's LaplaceLossDimSMPLCam and SimpleTransform3DSMPLCam
run as they are (torch 2.13 CPU); tests/data/released_hybrik/README.md says how. These
tests run only the project (numpy + JAX).
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrik_jax.data import augment
from hybrik_jax.data import input_pipeline
from hybrik_jax.data import targets
from hybrik_jax.training import camera_losses
from hybrik_jax.training import train_config
from hybrik_jax.training import train_lib
import released_fixtures  # pylint: disable=g-bad-import-order

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, 'tests', 'data', 'released_hybrik')
CAMERA_CONFIGS = ('hybrik_res34_cam', 'hybrik_hrw48_cam_wo_pw3d', 'hybrik_hrw48_cam_w_pw3d_3dhp')


def load_fixture(name: str, required=()) -> dict:
  return released_fixtures.load_npz(os.path.join(DATA, name), required,
                                    readme='tests/data/released_hybrik/README.md')


# ----------------------------------------------------------------------------
# The criterion.
# ----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def loss_fixture():
  fx = load_fixture('camera_losses.npz', ('pred_uvd', 'pred_sigma', 'pred_camera',
                                          'released/resnet/loss_tot', 'released/loss_uvd'))
  outputs = {k: jnp.asarray(v) for k, v in fx.items() if k.startswith('pred_')}
  batch = {k: jnp.asarray(v) for k, v in fx.items() if k.startswith('target_')}
  return fx, outputs, batch


@pytest.fixture(scope='module')
def jit_loss():
  return jax.jit(lambda o, b: camera_losses.camera_loss(o, b))


@pytest.mark.parametrize('cls', ['resnet', 'hrnet'])
def test_camera_loss_total_matches_released(loss_fixture, jit_loss, cls):
  """ResNet class: camera (s, tx, ty), translation term on; HRNet class: (s,) only."""
  fx, outputs, batch = loss_fixture
  if cls == 'hrnet':
    outputs = dict(outputs, pred_camera=outputs['pred_camera'][:, :1])
  total, comps = jit_loss(outputs, batch)
  np.testing.assert_allclose(float(total), float(fx[f'released/{cls}/loss_tot']), rtol=1e-5)
  if cls == 'hrnet':
    assert float(comps['cam_trans']) == 0.0


def test_camera_loss_components_match_released(loss_fixture, jit_loss):
  fx, outputs, batch = loss_fixture
  _, comps = jit_loss(outputs, batch)
  for name in camera_losses.CAMERA_LOSS_NAMES:
    # The released components are differences of totals (README): 1e-5 relative.
    np.testing.assert_allclose(float(comps[name]), float(fx[f'released/loss_{name}']),
                               rtol=1e-5, err_msg=name)
  # The yaml's weights are the ones the fixture's criterion was built with.
  names = [str(n) for n in fx['released/weight_names']]
  el = dict(zip(names, fx['released/weights'].tolist()))
  w = camera_losses.CAMERA_LOSS_WEIGHTS
  assert (w['uvd'], w['beta'], w['theta'], w['twist']) == (
      el['UVD24_WEIGHT'], el['BETA_WEIGHT'], el['THETA_WEIGHT'], el['TWIST_WEIGHT'])


def test_camera_loss_masks_and_gradients(loss_fixture, jit_loss):
  """Rows with <= 3 labelled 3D coordinates give no camera loss; gradients are finite."""
  _, outputs, batch = loss_fixture
  mask = camera_losses.camera_mask(batch['target_xyz_weight_24'])
  np.testing.assert_array_equal(np.asarray(mask)[:, 0], [1, 1, 0, 1, 1, 1, 0, 1])
  # Moving the masked rows' camera changes nothing.
  moved = dict(outputs, pred_camera=outputs['pred_camera'].at[jnp.array([2, 6])].add(3.0))
  _, a = jit_loss(outputs, batch)
  _, b = jit_loss(moved, batch)
  assert float(a['cam_scale']) == float(b['cam_scale'])
  assert float(a['cam_trans']) == float(b['cam_trans'])
  # All-zero uvd weights: the plain (zero) sum, finite.
  zero_w = dict(batch, target_uvd_weight_29=jnp.zeros_like(batch['target_uvd_weight_29']))
  keys = ('pred_uvd', 'pred_sigma', 'pred_camera', 'pred_shape', 'pred_phi', 'pred_rotmats')
  grad_fn = jax.jit(jax.grad(lambda o, b: camera_losses.camera_loss(o, b)[0]))
  for b_ in (batch, zero_w):
    grads = grad_fn({k: outputs[k] for k in keys}, b_)
    for k, g in grads.items():
      assert np.all(np.isfinite(np.asarray(g))), k
    assert float(jnp.abs(grads['pred_camera']).sum()) > 0


def test_camera_loss_rejects_bad_inputs(loss_fixture):
  _, outputs, batch = loss_fixture
  with pytest.raises(ValueError, match='unknown loss weight'):
    camera_losses.camera_loss(outputs, batch, {'phi_norm': 1.0})
  with pytest.raises(ValueError, match='pred_camera'):
    camera_losses.camera_loss(dict(outputs, pred_camera=outputs['pred_camera'][:, :2]), batch)


# ----------------------------------------------------------------------------
# The camera preset's targets.
# ----------------------------------------------------------------------------

# (project key, released key, released -> project scale)
_TARGET_PAIRS = (
    ('target_uvd_29', 'target_uvd_29', 1.0), ('target_uvd_weight_29', 'target_weight_29', 1.0),
    ('target_xyz_24', 'target_xyz_24', 2.2), ('target_xyz_weight_24', 'target_weight_24', 1.0),
    ('target_rotmats', 'target_theta', 1.0),
    ('target_rotmats_weight', 'target_theta_weight', 1.0),
    ('target_beta', 'target_beta', 1.0), ('target_smpl_weight', 'target_smpl_weight', 1.0),
    ('target_twist', 'target_twist', 1.0), ('target_twist_weight', 'target_twist_weight', 1.0),
    ('trans_inv', 'trans_inv', 1.0), ('bbox', 'bbox', 1.0),
    ('target_camera_scale', 'camera_scale', 1.0), ('target_camera_trans', 'camera_trans', 1.0),
    ('target_camera_valid', 'camera_valid', 1.0), ('target_camera_error', 'camera_error', 1.0),
    ('img_center', 'img_center', 1.0))


@pytest.fixture(scope='module')
def targets_fixture():
  return load_fixture('camera_targets.npz', ('example/image_shape', 'eval/camera_scale',
                                             'aug2/camera_trans'))


def _example(fx):
  """The stored example; its image is black (the targets do not read pixels)."""
  ex = {k[len('example/'):]: v for k, v in fx.items() if k.startswith('example/')}
  ex['image'] = np.zeros(tuple(int(s) for s in ex.pop('image_shape')), np.uint8)
  return ex


def _camera_preprocess(fx, aug):
  return input_pipeline.preprocess_example(
      _example(fx), input_size=256, scale_mult=1.25, dataset_id=0, augmentation=aug,
      camera_targets=True, focal_length=1000.0)


def _check(out, fx, prefix):
  for ours, theirs, scale in _TARGET_PAIRS:
    want = fx[f'{prefix}/{theirs}'].astype(np.float64).reshape(np.shape(out[ours])) * scale
    # Pixels: float32 affine maps of a 256 px crop; the rest at 1e-5 relative.
    atol = 1e-4 if ours in ('trans_inv', 'bbox') else 1e-6
    np.testing.assert_allclose(np.asarray(out[ours], np.float64), want, rtol=1e-5, atol=atol,
                               err_msg=f'{prefix} {ours}')


@pytest.mark.parametrize('case', ['eval', 'aug0', 'aug1', 'aug2'])
def test_camera_targets_match_released(targets_fixture, case):
  """No augmentation, then scale / rotation / flip drawn as the released call's (README)."""
  fx = targets_fixture
  aug = None
  if case != 'eval':
    aug = augment.Augmentation(scale=float(fx[f'{case}/scale']),
                               rotation=float(fx[f'{case}/rotation']),
                               flip=bool(fx[f'{case}/flip']))
  out = _camera_preprocess(fx, aug)
  _check(out, fx, case)
  assert out['target_camera_valid'][0] == 1.0


def test_camera_preset_keeps_weights_outside_the_crop(targets_fixture):
  """aug1 (scale 0.74) puts a labelled joint outside the crop: the camera preset keeps
  its weight (as released), the SMPL preset zeroes it."""
  fx = targets_fixture
  aug = augment.Augmentation(scale=float(fx['aug1/scale']), rotation=float(fx['aug1/rotation']))
  cam = _camera_preprocess(fx, aug)
  outside = np.any(np.abs(cam['target_uvd_29']) > 0.5, axis=-1)
  assert outside.any() and np.all(cam['target_uvd_weight_29'][outside] == 1.0)
  plain = input_pipeline.preprocess_example(_example(fx), input_size=256, scale_mult=1.25,
                                            dataset_id=0, augmentation=aug)
  assert np.all(plain['target_uvd_weight_29'][outside] == 0.0)
  assert 'target_camera_scale' not in plain


def test_fit_camera_recovers_an_exact_camera():
  """uvd made by the camera models' own projection -> the same (s, t), zero error."""
  rng = np.random.default_rng(0)
  xyz = rng.normal(0.0, 0.3, (24, 3))
  xyz -= xyz[0]
  s, t, f, size, df = 0.8, np.array([0.05, -0.1]), 1000.0, 256, 2.2
  depth = f / (size * s)
  uv = f / size * (xyz[:, :2] + t) / (xyz[:, 2:] + depth)
  uvd = np.concatenate([uv, xyz[:, 2:] / df], axis=1)
  weight = np.ones((24, 3))
  weight[5] = 0.0  # an unlabelled joint does not enter the fit
  uvd[5] = 9.0
  cam = targets.fit_camera(xyz, uvd, weight, focal_length=f, input_size=(size, size),
                           depth_factor=df)
  np.testing.assert_allclose(cam['scale'], [s], rtol=1e-5)
  np.testing.assert_allclose(cam['trans'], t, atol=1e-6)
  assert cam['error_mm'][0] < 1e-3 and cam['valid'][0] == 1.0
  # Fewer than two fully labelled joints: no camera.
  weight[:, 2] = 0.0
  none = targets.fit_camera(xyz, uvd, weight, focal_length=f, input_size=(size, size),
                            depth_factor=df)
  assert none['scale'][0] == 0.0 and none['valid'][0] == 0.0 and none['error_mm'][0] == -1.0


# ----------------------------------------------------------------------------
# Configs and the schedule.
# ----------------------------------------------------------------------------

# The camera models' fields (models/config.py of the camera-model change).
CAMERA_MODEL_FIELDS = ('predict_camera', 'focal_length')


@pytest.mark.parametrize('name', CAMERA_CONFIGS)
def test_camera_configs_load(name):
  config = train_config.load_config_file(os.path.join(REPO, 'configs', f'{name}.py'))
  checked = config.copy_and_resolve_references()
  reference_model = train_config.base_config().model
  # Every field but the camera models' own must be a trainer field.
  for key in CAMERA_MODEL_FIELDS:
    if key not in reference_model:
      del checked.model[key]
  train_config.check_config(checked)
  assert config.model.predict_camera is True and config.model.focal_length == 1000.0
  assert config.model.ik_convention == 'hybrik' and config.model.input_size == 256
  assert (config.model.backbone, config.model.head) == (
      ('resnet34', 'deconv') if 'res34' in name else ('hrnet_w48', 'heatmap'))
  assert dict(config.loss) == camera_losses.CAMERA_LOSS_WEIGHTS
  data = input_pipeline.DataConfig.from_config(config.data)
  assert data.camera_targets and data.focal_length == 1000.0
  assert data.augmentation_for('h36m').flip_prob == 0.25
  assert data.augmentation_for('coco_keypoints').flip_prob == 0.5
  assert data.scale_mult_for('h36m') == 1.0 and data.scale_mult_for('pw3d') == 1.25
  mix = dict(data.train_datasets)
  assert ('pw3d' in mix) == (name != 'hybrik_hrw48_cam_wo_pw3d')
  assert config.batch_size == (256 if 'res34' in name else 144)
  # MultiStepLR: 1e-3, x0.1 at each milestone epoch.
  _, lr_fn = train_lib.create_optimizer(config.optim, None, 100)
  first, second = config.optim.lr_step_epochs
  lrs = [float(lr_fn(e * 100 + 1)) for e in (0, first - 1, first, second - 1, second)]
  np.testing.assert_allclose(lrs, [1e-3, 1e-3, 1e-4, 1e-4, 1e-5], rtol=1e-6)


def test_step_schedule_needs_the_epoch_length():
  optim = train_config.base_config().optim
  optim.schedule = 'step'
  with pytest.raises(ValueError, match='steps_per_epoch'):
    train_lib.create_optimizer(optim)
  optim.schedule = 'cosine'
  with pytest.raises(ValueError, match='schedule'):
    train_lib.create_optimizer(optim, None, 10)


def test_per_parameter_clipping():
  """Each array's gradient is clipped to the norm on its own (HybrIK's loop)."""
  tx = train_lib.clip_by_norm_per_parameter(5.0)
  grads = {'a': jnp.full((4,), 10.0), 'b': jnp.array([3.0, 0.0])}
  out, _ = tx.update(grads, tx.init(grads))
  np.testing.assert_allclose(float(jnp.linalg.norm(out['a'])), 5.0, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(out['b']), [3.0, 0.0], rtol=1e-5)


def test_test_cam_config_loads():
  """configs/test_cam.py: the tiny camera model the suite trains (camera fields aside)."""
  config = train_config.load_config_file(os.path.join(REPO, 'configs', 'test_cam.py'))
  checked = config.copy_and_resolve_references()
  for key in CAMERA_MODEL_FIELDS:
    if key not in train_config.base_config().model:
      del checked.model[key]
  train_config.check_config(checked)
  assert config.model.predict_camera and config.model.head == 'deconv'
  assert config.data.camera_targets and dict(config.loss) == camera_losses.CAMERA_LOSS_WEIGHTS


class _FakeCameraModel:
  """Stands in for a camera model: apply returns a fixed raw dict (train mode's
  (raw, new state) pair)."""

  body, head, predict_camera = 'smpl', 'heatmap', True  # the model config's fields

  def __init__(self, raw):
    self.raw = raw

  def apply(self, variables, images, train, rngs=None, mutable=None):
    del variables, images, rngs
    return (self.raw, {'batch_stats': {}}) if train and mutable else self.raw


def test_train_step_sends_camera_models_to_the_camera_loss(loss_fixture):
  """A raw dict with pred_camera goes to camera_loss, the target depths put in the
  model's depth unit first (theta off: no decoding needed)."""
  import functools  # pylint: disable=g-import-not-at-top
  from hybrik_jax.body import ik  # pylint: disable=g-import-not-at-top
  _, outputs, batch = loss_fixture
  raw = {k: outputs[k] for k in ('pred_uvd', 'pred_sigma', 'pred_shape', 'pred_phi',
                                 'pred_camera')}
  b = raw['pred_uvd'].shape[0]
  batch = dict(batch, image=jnp.zeros((b, 8, 8, 3)), depth_factor=jnp.full((b, 1), 2.2))
  weights = {k: v for k, v in camera_losses.CAMERA_LOSS_WEIGHTS.items() if k != 'theta'}
  convention = ik.IKConvention.corrected().replace(depth_factor=2.2)
  loss = jax.jit(functools.partial(
      train_lib.forward_and_loss, model=_FakeCameraModel(raw), smpl_model=None,
      loss_weights=weights, convention=convention, input_size=8))
  reference = jax.jit(lambda batch: camera_losses.camera_loss(outputs, batch, weights))
  total, (comps, _) = loss({}, {}, batch, jax.random.key(0))
  want, _ = reference(batch)
  np.testing.assert_allclose(float(total), float(want), rtol=1e-6)
  assert float(comps['cam_trans']) > 0
  # Another example depth unit rescales the target d.
  half = dict(batch, depth_factor=jnp.full((b, 1), 1.1))
  _, (comps_half, _) = loss({}, {}, half, jax.random.key(0))
  scaled = dict(batch, target_uvd_29=batch['target_uvd_29'].at[..., 2:].multiply(0.5))
  _, want_half = reference(scaled)
  np.testing.assert_allclose(float(comps_half['uvd']), float(want_half['uvd']), rtol=1e-6)
