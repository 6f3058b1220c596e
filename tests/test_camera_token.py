"""The Transformer head's camera token (model.predict_camera with head 'transformer').

Tiny models (models.config.get_tiny_model_config, configs/test_cam_token.py), the
synthetic body; the compiled functions are shared by module fixtures.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrik_jax import models
from hybrik_jax.body import constants
from hybrik_jax.body import ik
from hybrik_jax.body import synthetic_body
from hybrik_jax.data import input_pipeline
from hybrik_jax.data import synthetic
from hybrik_jax.models import camera
from hybrik_jax.models import config as model_config_lib
from hybrik_jax.models import hybrik
from hybrik_jax.models import transformer
from hybrik_jax.training import camera_losses
from hybrik_jax.training import train_config
from hybrik_jax.training import train_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RNGS = lambda: {'params': jax.random.key(0), 'dropout': jax.random.key(1),
                'patches': jax.random.key(2)}


def _init(model_config, size):
  model = models.create_model(model_config)
  init = jax.jit(lambda: model.init(RNGS(), jnp.zeros((1, size, size, 3)), train=False))
  return model, init()


def test_the_camera_token_is_one_more_token_and_off_changes_nothing():
  """Off: the 48 tokens and the parameters of the released layout; on: token 49
  (type embedding row 4) and deccam / decsigma only."""
  joint = jax.random.normal(jax.random.key(0), (29, 8))
  types = jax.random.normal(jax.random.key(1), (10, 8))
  off = transformer.target_templates(joint, types, False, 0)
  on = transformer.target_templates(joint, types, False, 0, predict_camera=True)
  assert off.shape == (48, 8) and on.shape == (49, 8)
  np.testing.assert_array_equal(np.asarray(on[:48]), np.asarray(off))
  np.testing.assert_array_equal(np.asarray(on[48]), np.asarray(types[transformer.TYPE_CAMERA]))
  leaf = transformer.target_templates(joint, types, True, 0, predict_camera=True)
  assert leaf.shape == (54, 8)

  # Parameter trees by abstract evaluation (no compute).
  cfg = model_config_lib.get_tiny_model_config(input_size=32, backbone_stride=16)
  shapes = lambda c: jax.tree.map(np.shape, jax.eval_shape(
      lambda: models.create_model(c).init(RNGS(), jnp.zeros((1, 32, 32, 3)), train=False)))
  head_plain = shapes(cfg)['params']['head']
  head_cam = shapes(model_config_lib.get_tiny_model_config(
      input_size=32, backbone_stride=16, predict_camera=True))['params']['head']
  assert set(head_cam) - set(head_plain) == {'deccam', 'decsigma'}
  assert set(head_plain) == set(head_cam) - {'deccam', 'decsigma'}
  assert {k: head_cam[k] for k in head_plain} == head_plain
  assert head_cam['deccam']['kernel'][1] == 3
  assert head_cam['decsigma']['kernel'][1] == 1
  with pytest.raises(ValueError, match='init_cam'):
    shapes(model_config_lib.get_tiny_model_config(
        input_size=32, backbone_stride=16, predict_camera=True, init_cam=(0.9,)))


def test_flip_outputs_mirror_the_camera_and_swap_sigma():
  rng = np.random.default_rng(0)
  raw = {'pred_uvd': jnp.asarray(rng.normal(size=(2, 24, 3)), jnp.float32),
         'pred_phi': jnp.asarray(rng.normal(size=(2, 23, 2)), jnp.float32),
         'pred_shape': jnp.asarray(rng.normal(size=(2, 10)), jnp.float32),
         'pred_camera': jnp.asarray([[0.9, 0.1, -0.2], [1.1, -0.3, 0.05]], jnp.float32),
         'pred_sigma': jnp.asarray(rng.uniform(size=(2, 24)), jnp.float32)}
  flipped = hybrik.flip_outputs(raw)
  np.testing.assert_array_equal(np.asarray(flipped['pred_camera']),
                                np.asarray(raw['pred_camera']) * np.float32([1, -1, 1]))
  np.testing.assert_array_equal(np.asarray(flipped['pred_sigma']),
                                np.asarray(raw['pred_sigma'])[:, list(constants.FLIP_PERM_24)])
  back = hybrik.flip_outputs(flipped)
  for k in raw:
    np.testing.assert_array_equal(np.asarray(back[k]), np.asarray(raw[k]), err_msg=k)


@pytest.fixture(scope='module')
def cam_model():
  """The tiny camera-token model at 32 px, its predict (jitted, flip test as asked)."""
  cfg = model_config_lib.get_tiny_model_config(input_size=32, backbone_stride=16,
                                               predict_camera=True)
  model, variables = _init(cfg, 32)
  # A non-trivial camera (the read-out's bias moves the init camera) and small
  # sigma (weights 1 - 10 sigma > 0: the scale refinement at work).
  variables = jax.tree.map(lambda x: x, variables)
  variables['params']['head']['deccam']['bias'] = jnp.asarray([0.1, 0.05, -0.08])
  variables['params']['head']['decsigma']['bias'] = jnp.asarray([-4.0])
  smpl_model = synthetic_body.synthetic_smpl_model()

  @jax.jit
  def predict(images, bboxes, img_center):
    return models.predict(model, variables, images, smpl_model=smpl_model, flip_test=True,
                          model_config=cfg, bboxes=bboxes, img_center=img_center)

  images = jax.random.normal(jax.random.key(3), (2, 32, 32, 3))
  raw = jax.jit(lambda x: model.apply(variables, x, train=False))(images)
  return dict(raw=raw, cfg=cfg, model=model, variables=variables, smpl_model=smpl_model,
              predict=predict, images=images)


def test_predict_places_the_transformer_body_as_the_camera_classes(cam_model):
  """predict(bboxes=, img_center=) gives cam_scale / cam_root / transl for the
  Transformer camera model: the scale refined with its sigma (update_scale), the
  root back-projected as HybrIK's camera classes place it; the flip test is
  mirror-equivariant (camera averaged with tx negated)."""
  predict, images, raw = cam_model['predict'], cam_model['images'], cam_model['raw']
  assert raw['pred_uvd'].shape == (2, 24, 3) and raw['pred_camera'].shape == (2, 3)
  assert raw['pred_sigma'].shape == (2, 24)
  assert np.all((np.asarray(raw['pred_sigma']) > 0) & (np.asarray(raw['pred_sigma']) < 0.1))
  boxes = jnp.asarray([[100.0, 50.0, 300.0, 250.0], [0.0, 0.0, 100.0, 100.0]])
  centre = jnp.asarray([[200.0, 150.0], [200.0, 150.0]])
  out = predict(images, boxes, centre)
  cam = out.camera
  assert cam is not None and cam.maxvals is None and out.pred_leaf is None
  assert cam.cam_scale.shape == (2, 1) and cam.cam_root.shape == (2, 3)
  assert np.all(np.asarray(out.valid))
  # transl: the SMPL translation (the body is root-relative).
  np.testing.assert_allclose(np.asarray(cam.transl), np.asarray(cam.cam_root), atol=1e-6)
  # The refinement moved the scale; the root is back-projected with it.
  scale = np.asarray(cam.cam_scale, np.float64)
  assert np.all(np.abs(scale - np.asarray(cam.pred_camera[:, :1])) > 1e-4)
  f, size = float(cam_model['cfg'].focal_length), 32.0
  depth = f / (size * scale[:, 0] + 1e-9)
  uvd_root = np.asarray(cam.pred_uvd_29[:, 0], np.float64)
  z = uvd_root[:, 2] * ik.IKConvention.corrected().depth_factor
  offset = np.asarray([[0.0, 0.0], [-1.5, -1.0]])  # (box centre - image centre) / size
  want = np.concatenate([(uvd_root[:, :2] + offset) * size / f * (z + depth)[:, None],
                         (z + depth)[:, None]], axis=1)
  np.testing.assert_allclose(np.asarray(cam.cam_root), want, rtol=1e-4)
  # Mirrored images (and boxes): the same scale and depth, x and tx negated.
  mirrored_boxes = jnp.asarray([[100.0, 50.0, 300.0, 250.0], [300.0, 0.0, 400.0, 100.0]])
  mirrored = predict(hybrik.flip_image(images), mirrored_boxes, centre).camera
  np.testing.assert_allclose(np.asarray(mirrored.pred_camera),
                             np.asarray(cam.pred_camera) * [1.0, -1.0, 1.0], rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(np.asarray(mirrored.cam_scale), scale, rtol=1e-4)
  np.testing.assert_allclose(np.asarray(mirrored.cam_root),
                             np.asarray(cam.cam_root) * [-1.0, 1.0, 1.0], rtol=1e-4, atol=1e-5)
  assert camera.refines_scale('transformer') and camera.refines_scale('heatmap')
  assert not camera.refines_scale('deconv')


def test_camera_token_loss():
  """Zero for a perfect camera; the sigma term trains sigma, not the joints; rows
  with too few 3D labels give no camera loss."""
  rng = np.random.default_rng(2)
  b = 3
  batch = {'target_uvd_29': jnp.asarray(rng.normal(0, 0.1, (b, 29, 3)), jnp.float32),
           'target_uvd_weight_29': jnp.ones((b, 29, 3)),
           'target_xyz_weight_24': jnp.ones((b, 24, 3)).at[2].set(0.0),
           'target_camera_scale': jnp.asarray([[0.9], [1.0], [1.1]]),
           'target_camera_trans': jnp.asarray(rng.normal(0, 0.1, (b, 2)), jnp.float32)}
  outputs = {'pred_uvd': batch['target_uvd_29'][:, :24] + 0.01,
             'pred_sigma': jnp.full((b, 24), 0.2),
             'pred_camera': jnp.concatenate([batch['target_camera_scale'],
                                             batch['target_camera_trans']], axis=1)}
  total, comps = camera_losses.camera_token_loss(outputs, batch)
  assert float(comps['cam_scale']) == 0.0 and float(comps['cam_trans']) == 0.0
  assert float(total) == pytest.approx(float(comps['sigma']))
  moved = dict(outputs, pred_camera=outputs['pred_camera'].at[2].add(1.0))
  assert float(camera_losses.camera_token_loss(moved, batch)[1]['cam_scale']) == 0.0
  grads = jax.grad(lambda o: camera_losses.camera_token_loss(o, batch)[0])(outputs)
  assert float(jnp.abs(grads['pred_uvd']).sum()) == 0.0
  assert float(jnp.abs(grads['pred_sigma']).sum()) > 0.0
  with pytest.raises(ValueError, match='unknown loss weight'):
    camera_losses.camera_token_loss(outputs, batch, {'uvd': 1.0})


def test_test_cam_token_config_trains():
  """configs/test_cam_token.py: the camera preset's batches, the Transformer's loss
  plus the camera token's, three steps on one batch lower it; the camera read-out
  learns."""
  config = train_config.load_config_file(os.path.join(REPO, 'configs', 'test_cam_token.py'))
  train_config.check_config(config.copy_and_resolve_references())
  assert config.model.predict_camera and config.model.head == 'transformer'
  # 32 px and no theta term (the IK) keep the compile small; the trainer runs the rest.
  config.model.input_size = 32
  config.model.backbone_stride = 16
  config.loss.theta = 0.0
  gen = synthetic.SyntheticGenerator(synthetic.SyntheticConfig(image_size=64))
  examples = [e for _, e in gen.generate(range(4), split='train')]
  data = input_pipeline.DataConfig.from_config(config.data)
  it = input_pipeline.create_train_iterator(
      data, global_batch_size=4, seed=0, input_size=32,
      data_sources={config.data.train_datasets[0][0]: examples})
  batch = next(it)
  assert batch['target_camera_scale'].shape == (4, 1)
  model = models.create_model(config.model)
  tx, lr_fn = train_lib.create_optimizer(config.optim)
  state = train_lib.create_train_state(model, tx, jax.random.key(0), 32)
  step = train_lib.jit_train_step(
      train_lib.create_mesh(), smpl_model=synthetic_body.synthetic_smpl_model(), model=model, tx=tx,
      lr_fn=lr_fn, loss_weights=dict(config.loss), model_config=config.model)
  first = jax.device_get(state.params['head']['deccam'])
  losses = []
  for _ in range(3):
    state, metrics = step(state, batch)
    losses.append(float(metrics['loss']))
    for name in ('cam_scale', 'cam_trans', 'sigma', 'uvd'):
      assert np.isfinite(float(metrics[name])), name
  assert losses[-1] < losses[0], losses
  moved = jax.device_get(state.params['head']['deccam'])
  assert not np.allclose(moved['kernel'], first['kernel'])
