"""Tests for the image demo (hybrik_jax.demo, demos/image.py, demos/core.py):
geometry on an oracle, the CLI end to end, errors."""


import json
import os

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrik_jax import demo
from hybrik_jax import errors
from hybrik_jax import models
from hybrik_jax.body import constants
from hybrik_jax.checkpoints import model_dir
from hybrik_jax.data import augment
from hybrik_jax.data import input_pipeline
from hybrik_jax.data import render
from hybrik_jax.data import synthetic
from hybrik_jax.demos import core
from hybrik_jax.demos import hybrik_res
from hybrik_jax.demos import image as image_demo
from hybrik_jax.evaluation import metrics

from conftest import tiny_variables  # pylint: disable=g-bad-import-order


@pytest.fixture(scope='module')
def generator():
  return synthetic.SyntheticGenerator(synthetic.SyntheticConfig(image_size=128),
                                      batch_size=1)


@pytest.fixture(scope='module')
def scene_example(generator):
  """A 128 px synthetic example and its ground-truth silhouette."""
  scene = synthetic.sample_scene(5, generator.config, synthetic.STREAMS['validation'])
  body = {k: v[0] for k, v in generator.pose_bodies([scene]).items()}
  example, face_id = generator.make_example(5, scene, body, 'validation',
                                            return_face_id=True)
  return example, face_id >= 0


class _OracleModel:
  def apply(self, variables, images, train):
    del train
    return {k: jnp.repeat(v, images.shape[0], 0) for k, v in variables['params'].items()}


def test_oracle_prediction_lands_on_the_person(generator, scene_example):
  """Ground-truth uvd/twists/shape: the overlay must cover the rendered body."""
  example, silhouette = scene_example
  image = example['image']
  b = example['bbox']
  bbox = image_demo.parse_bbox(f'{b[0]},{b[1]},{b[2] - b[0]},{b[3] - b[1]}', image.shape)
  size = 64
  _, trans_inv = input_pipeline.preprocess_image(image, bbox, size)
  uv = augment.apply_affine(augment.invert_affine(trans_inv),
                            example['joints29_img'][:24]) / size - 0.5
  d = (example['joints29_cam'][:24, 2] - example['joint_root'][2]) / 2.2
  element = input_pipeline.preprocess_eval(example, input_size=size)
  raw = {'pred_uvd': np.concatenate([uv, d[:, None]], 1)[None].astype(np.float32),
         'pred_phi': element['target_twist'][None],
         'pred_shape': element['target_beta'][None],
         'pred_leaf': element['target_theta'][None][:, list(constants.LEAF_PARENT_JOINTS)]}
  cfg = models.get_tiny_model_config(input_size=size)
  fn = core.make_predict_fn(cfg, generator.model, flip_test=False, model=_OracleModel())
  pred = image_demo.predict_image(core.DemoModel({'params': raw}, cfg, generator.model, ''),
                                  image, bbox, predict_fn=fn)
  # The fitted translation reprojects the 3D joints onto the 2D joints.
  err_2d = np.linalg.norm(pred['joints_2d_projected'] - example['joints29_img'][:24], axis=-1)
  assert err_2d.max() < 3.0, err_2d
  assert str(pred['depth_source']) == 'fitted to the 2D joints'
  # The assumed camera: HybrIK's 1000 px per 256 px crop, centred.
  assert pred['focal'] == pytest.approx(1000 / 256 * core.crop_side(bbox), rel=1e-5)
  np.testing.assert_allclose(pred['intrinsics'][:2, 2], [64.0, 64.0])
  # The mesh's silhouette matches the rendered person's.
  _, face_id, _ = render.rasterize(pred['vertices'], np.asarray(generator.model.faces),
                                   pred['intrinsics'], image.shape[:2])
  covered = face_id >= 0
  iou = (covered & silhouette).sum() / (covered | silhouette).sum()
  assert iou > 0.8, iou
  # Same shape; the same pose up to the perspective distortion the assumed
  # (wrong) focal length brings into the uvd lifting.
  np.testing.assert_allclose(pred['betas'], example['smpl_beta'], atol=1e-5)
  pa = metrics.pa_mpjpe(pred['joints'][None], example['joints29_cam'][None, :24])
  assert float(pa[0]) < 40.0, pa


def test_run_writes_png_and_npz(tmp_path, tiny_checkpoint, scene_example):
  ckpt = tiny_checkpoint
  image = scene_example[0]['image']
  image_path = str(tmp_path / 'person.jpg')
  cv2.imwrite(image_path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
  out = str(tmp_path / 'out' / 'result.png')
  res_pk = str(tmp_path / 'res.pk')
  rc = demo.main(['--image', image_path, '--checkpoint', ckpt, '--out', out,
                  '--bbox', '20,10,90,110', '--hybrik_res_pk', res_pk])
  assert rc == 0
  png = cv2.imread(out)
  scale = int(np.ceil(image_demo.MIN_DISPLAY_SIDE / 128))
  assert png.shape == (128 * scale, 2 * 128 * scale, 3)
  data = np.load(out[:-4] + '.npz')
  expected = {'betas': (10,), 'pose_axis_angle': (24, 3), 'rotmats': (24, 3, 3),
              'phi': (23, 2), 'uvd': (24, 3), 'intrinsics': (3, 3), 'focal': (),
              'transl': (3,), 'vertices': (constants.NUM_VERTICES, 3),
              'joints': (24, 3), 'joints_h36m': (17, 3), 'joints_2d': (24, 2),
              'joints_2d_projected': (24, 2), 'bbox': (4,),
              'faces': (constants.NUM_FACES, 3)}
  for key, shape in expected.items():
    assert data[key].shape == shape, key
    assert np.all(np.isfinite(data[key])), key
  np.testing.assert_allclose(data['bbox'], [20, 10, 110, 120])
  assert bool(data['flip_test'])
  assert str(data['body_model']) == 'synthetic body model'
  # Vertices in front of the camera, the body near the box-size depth even for
  # an untrained model (the fit falls back to the box when implausible).
  assert data['vertices'][:, 2].min() > 0
  z_guess = float(data['focal']) * 2.2 / core.crop_side(data['bbox'])
  assert z_guess / 3.01 < data['joints'][0, 2] < 3.01 * z_guess
  # A model without a camera: the 2D fit places the body, no camera fields.
  assert str(data['placement']) == 'fit'
  assert str(data['depth_source']) in (core.DEPTH_FITTED, core.DEPTH_FROM_BOX)
  assert 'cam_root' not in data.files and 'pred_camera' not in data.files
  # HybrIK's res.pk, its placement fields from the fit (docs/DEMO.md).
  res = hybrik_res.read(res_pk)
  assert list(res) == list(hybrik_res.RES_KEYS)
  assert res['pred_uvd'].shape == (1, 29, 3) and res['pred_camera'].shape == (1, 1)
  assert np.isnan(res['pred_scores']).all()
  h36m_root = data['joints_h36m'][0]  # HybrIK's transl: its vertices are relative to it
  np.testing.assert_allclose(res['transl'][0], h36m_root, atol=1e-5)
  np.testing.assert_allclose(res['pred_cam_root'][0], h36m_root, atol=1e-5)
  side = res['bbox'][0, 2] - res['bbox'][0, 0]
  assert side == pytest.approx(core.crop_side(data['bbox']))
  np.testing.assert_allclose(res['transl_camsys'][0], h36m_root * 256 / side, rtol=1e-5)
  np.testing.assert_allclose(res['pred_uvd'][0, :24], data['uvd'], atol=1e-6)
  np.testing.assert_allclose(res['pred_thetas'][0], data['rotmats'].reshape(-1), atol=1e-7)
  # The 5 leaf joints' uvd are the placed body's, seen through the crop.
  leaf_px = res['pred_uvd'][0, 24:, :2] * side + (res['bbox'][0, :2] + res['bbox'][0, 2:]) / 2
  proj = data['joints29'][24:] @ data['intrinsics'].T
  np.testing.assert_allclose(leaf_px, proj[:, :2] / proj[:, 2:], atol=1e-2)
  assert str(res['img_path'][0]) == image_path
  # --placement camera needs a camera model: one line, status 2.
  assert demo.main(['--image', image_path, '--checkpoint', ckpt, '--out', out,
                    '--bbox', '20,10,90,110', '--placement', 'camera']) == 2


def test_bad_inputs(tmp_path, capsys):
  image = np.full((40, 60, 3), 128, np.uint8)
  path = str(tmp_path / 'img.png')
  cv2.imwrite(path, image)
  with pytest.raises(core.DemoError, match='no checkpoint given'):
    image_demo.run(path, None, str(tmp_path / 'o.png'))
  with pytest.raises(core.DemoError, match='does not exist'):
    image_demo.read_image(str(tmp_path / 'missing.jpg'))
  garbage = tmp_path / 'garbage.jpg'
  garbage.write_bytes(b'not an image at all')
  with pytest.raises(core.DemoError, match='could not be read'):
    image_demo.read_image(str(garbage))
  with pytest.raises(core.DemoError, match='outside the 60x40 image'):
    image_demo.parse_bbox('100,100,20,20', image.shape)
  with pytest.raises(core.DemoError, match='four numbers'):
    image_demo.parse_bbox('1,2,3', image.shape)
  with pytest.raises(core.DemoError, match='positive'):
    image_demo.parse_bbox('1,2,0,5', image.shape)
  np.testing.assert_allclose(image_demo.parse_bbox(None, image.shape), [0, 0, 59, 39])
  np.testing.assert_allclose(image_demo.parse_bbox('-5,10,30,100', image.shape), [0, 10, 25, 39])
  with pytest.raises(core.DemoError, match='exported model'):
    image_demo.run(path, str(tmp_path / 'nockpt'), str(tmp_path / 'o.png'))
  # The CLI: a clear message and status 2, also for the missing checkpoint.
  assert demo.main(['--image', path, '--out', str(tmp_path / 'o.png')]) == 2
  err = capsys.readouterr().err
  assert 'python -m hybrik_jax.train' in err and 'python -m hybrik_jax.convert' in err


def test_estimate_translation_recovers_a_known_shift():
  rng = np.random.default_rng(0)
  joints = rng.normal(size=(24, 3)) * 0.3
  K = np.array([[500.0, 0, 100], [0, 500.0, 80], [0, 0, 1]])
  t = np.array([0.2, -0.1, 4.0])
  cam = joints + t
  uv = (cam @ K.T)[:, :2] / cam[:, 2:]
  np.testing.assert_allclose(core.estimate_translation(joints, uv, K), t, atol=1e-6)
  # Degenerate: all joints at one point cannot fix the depth.
  assert core.estimate_translation(np.zeros((24, 3)), uv, K) is None


def test_bad_checkpoints_and_images_are_one_line(tmp_path, capsys):
  from hybrik_jax import evaluate  # pylint: disable=g-import-not-at-top
  cfg = models.get_tiny_model_config()
  variables = tiny_variables(models.create_model(cfg), cfg.input_size)
  image_path = str(tmp_path / 'img.png')
  cv2.imwrite(image_path, np.full((64, 64, 3), 128, np.uint8))
  tiny_image = str(tmp_path / 'tiny.png')
  cv2.imwrite(tiny_image, np.full((1, 1, 3), 128, np.uint8))

  def demo_error(image, ckpt):
    rc = demo.main(['--image', image, '--checkpoint', ckpt, '--out',
                    str(tmp_path / 'o.png')])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith('error:')
    return err

  good = str(tmp_path / 'good')
  model_dir.save_model(good, variables, cfg)
  assert 'is 1x1 px: too small' in demo_error(tiny_image, good)
  # An empty model_config.json: both CLIs name the file.
  empty = str(tmp_path / 'empty')
  model_dir.save_model(empty, variables, cfg)
  with open(os.path.join(empty, 'model_config.json'), 'w'):
    pass
  assert f'{empty}/model_config.json is corrupt' in demo_error(image_path, empty)
  rc = evaluate.main(['--checkpoint', empty, '--dataset', 'synthetic_humans'])
  err = capsys.readouterr().err.strip()
  assert rc == 2 and f'{empty}/model_config.json is corrupt' in err
  assert len(err.splitlines()) == 1
  # A model_config.json of another model than the weights.
  other = str(tmp_path / 'other')
  model_dir.save_model(other, variables,
                       models.get_tiny_model_config(d_model=2 * cfg.d_model))
  assert 'model_config.json does not match the weights' in demo_error(
      image_path, other)


def test_invalid_prediction_is_reported(tmp_path, capsys):
  cfg = models.get_tiny_model_config()
  variables = tiny_variables(models.create_model(cfg), cfg.input_size)
  variables = jax.tree.map(lambda x: jnp.full_like(x, jnp.nan), variables)
  ckpt = str(tmp_path / 'nan_model')  # e.g. convert --allow_non_finite
  model_dir.save_model(ckpt, variables, cfg)
  image_path = str(tmp_path / 'img.png')
  cv2.imwrite(image_path, np.full((64, 64, 3), 128, np.uint8))
  rc = demo.main(['--image', image_path, '--checkpoint', ckpt, '--out',
                  str(tmp_path / 'o.png'), '--noflip_test'])
  err = capsys.readouterr().err.strip()
  assert rc == 3 and 'the prediction is invalid' in err


def test_bad_ik_fields_are_one_line_everywhere(tmp_path, capsys):
  """Issue 25 case 7: an unknown ik_convention or leaf_joints 'abc' in an
  exported model's model_config.json (demo image and video, evaluate) or in a
  training checkpoint's meta: one line naming the file, field and values."""
  from hybrik_jax import evaluate  # pylint: disable=g-import-not-at-top
  from hybrik_jax.checkpoints import config_json  # pylint: disable=g-import-not-at-top
  from hybrik_jax.checkpoints import loading  # pylint: disable=g-import-not-at-top
  from hybrik_jax.checkpoints import train_checkpoints  # pylint: disable=g-import-not-at-top
  cfg = models.get_tiny_model_config()
  variables = jax.device_get(tiny_variables(models.create_model(cfg),
                                            cfg.input_size))
  image_path = str(tmp_path / 'img.png')
  cv2.imwrite(image_path, np.full((64, 64, 3), 128, np.uint8))
  video_path = str(tmp_path / 'v.mp4')
  writer = cv2.VideoWriter(video_path, cv2.VideoWriter_fourcc(*'mp4v'), 10,
                           (64, 64))
  for i in range(3):
    writer.write(np.full((64, 64, 3), 100 + i, np.uint8))
  writer.release()
  cases = {'ik_convention': ('nope', "must be one of ('released', 'corrected', 'hybrik'), "
                             "got 'nope'"),
           'leaf_joints': ('abc', "must be a list of distinct joints")}
  for field, (value, expected) in cases.items():
    ckpt = str(tmp_path / field)
    model_dir.save_model(ckpt, variables, cfg)
    path = os.path.join(ckpt, 'model_config.json')
    with open(path) as f:
      saved = json.load(f)
    saved[field] = value
    with open(path, 'w') as f:
      json.dump(saved, f)
    runs = [lambda a: demo.main(a + ['--image', image_path, '--out',
                                     str(tmp_path / 'o.png')]),
            lambda a: demo.main(a + ['--video', video_path, '--out',
                                     str(tmp_path / 'o.mp4')]),
            lambda a: evaluate.main(a + ['--dataset', 'synthetic_humans'])]
    for run in runs:
      rc = run(['--checkpoint', ckpt])
      err = capsys.readouterr().err.strip()
      assert rc == 2 and len(err.splitlines()) == 1, err
      assert f'{path}: model.{field} {expected}' in err, err
    # The same model config in a training checkpoint's meta.
    workdir = tmp_path / f'work_{field}'
    manager = train_checkpoints.create_checkpoint_manager(
        workdir, steps_per_epoch=5, async_save=False)
    train_checkpoints.save_train_state(
        manager, 3, dict(variables, step=np.int32(3)),
        meta={'model': dict(config_json.config_to_dict(cfg), **{field: value})})
    manager.close()
    with pytest.raises(errors.InputError) as info:
      loading.load_for_inference(str(workdir))
    assert f'step 3 (its meta model config): model.{field} {expected}' in str(
        info.value)


def test_huge_image_is_drawn_at_a_bounded_size():
  """Issue 25 case 9: an 8000x6000 photo: the PNG is drawn with its longer
  side at MAX_DISPLAY_SIDE per panel (the mesh where it belongs), unless
  full resolution is asked for."""
  h, w = 6000, 8000
  image = np.zeros((h, w, 3), np.uint8)
  K = np.array([[4000.0, 0, w / 2], [0, 4000.0, h / 2], [0, 0, 1]])
  # A triangle 2 m away around the optical axis, bright on black.
  vertices = np.array([[-0.3, -0.3, 2.0], [0.3, -0.3, 2.0], [0.0, 0.3, 2.0]])
  faces = np.array([[0, 1, 2]])
  out = image_demo.render_views(image, vertices, faces, K)
  side = image_demo.MAX_DISPLAY_SIDE
  assert out.shape == (side * h // w, 2 * side, 3)
  overlay = out[:, :side].max(axis=-1)
  ys, xs = np.nonzero(overlay[200:-200, 200:-200] > 50)  # the mesh, not labels
  scale = side / w
  # The triangle spans x in w/2 +- 600 px at full size.
  assert abs((xs.min() + 200) / scale - (w / 2 - 600)) < 20
  assert abs((xs.max() + 200) / scale - (w / 2 + 600)) < 20
  del out
  small = np.zeros((600, 800, 3), np.uint8)  # under the bound: as before
  K_small = np.array([[400.0, 0, 400], [0, 400.0, 300], [0, 0, 1]])
  assert image_demo.render_views(small, vertices, faces, K_small).shape == (
      600, 1600, 3)
  full = image_demo.render_views(small, vertices, faces, K_small, max_side=256)
  assert full.shape == (192, 512, 3)
