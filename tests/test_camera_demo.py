"""The demos with a camera model (configs/test_cam.py, random weights): the body
placed by the predicted camera, its outputs in the results, HybrIK's res.pk
(demos/hybrik_res.py); --placement fit on a camera model.

One jitted prediction (batch 1) serves every test of the module: the image
demo's `predict_image` and the video demo's `run_video` with batch_size 1.
"""

import os

import cv2
import numpy as np
import pytest

from hybrik_jax import models
from hybrik_jax.checkpoints import model_dir
from hybrik_jax.demos import core
from hybrik_jax.demos import hybrik_res
from hybrik_jax.demos import image as image_demo
from hybrik_jax.demos import results as results_lib
from hybrik_jax.demos import video as video_demo
from hybrik_jax.demos import video_io
from hybrik_jax.training import train_config

from conftest import tiny_variables  # pylint: disable=g-bad-import-order

REPO = os.path.join(os.path.dirname(__file__), '..')
H, W = 96, 128
BOX = np.array([30.0, 8.0, 78.0, 88.0], np.float32)  # xyxy, a tall person box


@pytest.fixture(scope='module')
def camera_model(tmp_path_factory):
  """A saved tiny camera model (deconv head: camera (s, tx, ty)) and it loaded."""
  cfg = train_config.load_config_file(os.path.join(REPO, 'configs', 'test_cam.py')).model
  path = str(tmp_path_factory.mktemp('cam') / 'model')
  model_dir.save_model(path, tiny_variables(models.create_model(cfg), cfg.input_size, seed=3),
                       cfg)
  return path, core.load_model(path)


@pytest.fixture(scope='module')
def predict_fn(camera_model):
  model = camera_model[1]
  return core.make_predict_fn(model.model_config, model.smpl_model, flip_test=True)


@pytest.fixture(scope='module')
def image():
  return np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)


@pytest.fixture(scope='module')
def camera_pred(camera_model, predict_fn, image):
  return image_demo.predict_image(camera_model[1], image, BOX, predict_fn=predict_fn)


def _project(points, K):
  p = np.asarray(points, np.float64) @ np.asarray(K, np.float64).T
  return p[..., :2] / p[..., 2:]


def test_camera_model_places_the_body_with_its_camera(camera_model, camera_pred):
  """The mesh is where the model's transl puts it, under the model's focal length."""
  cfg = camera_model[1].model_config
  pred = camera_pred
  assert str(pred['placement']) == 'camera'
  assert str(pred['depth_source']) == core.DEPTH_FROM_CAMERA
  assert bool(pred['valid'])
  # The image's camera: the model's focal length per crop, the image centre.
  side = core.crop_side(BOX)
  assert float(pred['focal']) == pytest.approx(cfg.focal_length / cfg.input_size * side,
                                               rel=1e-6)
  np.testing.assert_allclose(pred['intrinsics'][:2, 2], [W / 2, H / 2])
  np.testing.assert_allclose(pred['crop_box'], core.crop_box(BOX))
  # HybrIK's rendering: its vertices (relative to the H36M pelvis) + transl,
  # so the H36M pelvis sits at the model's transl (= its cam_root).
  np.testing.assert_allclose(pred['joints_h36m'][0], pred['cam_transl'], atol=1e-5)
  np.testing.assert_allclose(pred['cam_transl'], pred['cam_root'], atol=1e-6)
  # The camera is the full image's: the placed root (cam_root) projects onto
  # the network's own 2D root (the crop box and image centre reached the model).
  np.testing.assert_allclose(_project(pred['cam_root'], pred['intrinsics']),
                             pred['joints_2d'][0], atol=1e-2)
  # Its depth is the camera's: f / (S s) plus the root's own relative depth.
  df = core.depth_factor(cfg)
  z = cfg.focal_length / (cfg.input_size * float(pred['cam_scale'])) + pred['uvd29'][0, 2] * df
  assert float(pred['cam_root'][2]) == pytest.approx(z, rel=1e-5)
  assert pred['pred_camera'].shape == (3,) and pred['pred_sigma'].shape == (29,)


def test_res_pk_has_the_released_layout(camera_model, camera_pred, image, tmp_path):
  cfg = camera_model[1].model_config
  df = core.depth_factor(cfg)
  row = image_demo.res_row(camera_pred, image.shape[:2], 'person.png', df)
  path = str(tmp_path / 'out' / 'res.pk')
  hybrik_res.write(path, hybrik_res.stack_rows([row, row]))
  assert os.listdir(tmp_path / 'out') == ['res.pk']  # no temporary file left
  res = hybrik_res.read(path)
  assert list(res) == list(hybrik_res.RES_KEYS)
  released = {  # scripts/demo_video.py's np.stack of its rows (pred_camera: ResNet's 3)
      'pred_uvd': (29, 3), 'pred_xyz_17': (17, 3), 'pred_xyz_29': (29, 3),
      'pred_xyz_24_struct': (24, 3), 'pred_scores': (29,), 'pred_camera': (3,),
      'pred_betas': (10,), 'pred_thetas': (216,), 'pred_phi': (23, 2), 'pred_cam_root': (3,),
      'transl': (3,), 'transl_camsys': (3,), 'bbox': (4,), 'height': (), 'width': ()}
  for key, shape in released.items():
    assert res[key].shape == (2,) + shape, key
    want = {'bbox': np.float64, 'height': np.int64, 'width': np.int64}.get(key, np.float32)
    assert res[key].dtype == want, key
  assert res['img_path'].dtype.kind == 'U' and res['img_path'][0] == 'person.png'
  assert (res['height'][0], res['width'][0]) == (H, W)
  pred = camera_pred
  # The values: the model's camera, HybrIK's units (xyz in depth_factor units).
  np.testing.assert_allclose(res['transl'][0], pred['cam_transl'], atol=1e-6)
  np.testing.assert_allclose(res['pred_cam_root'][0], pred['cam_root'], atol=1e-5)
  np.testing.assert_allclose(res['transl_camsys'][0],
                             pred['cam_transl'] * 256 / (pred['crop_box'][2] - pred['crop_box'][0]),
                             rtol=1e-5)
  np.testing.assert_allclose(res['bbox'][0], pred['crop_box'])
  np.testing.assert_allclose(res['pred_thetas'][0].reshape(24, 3, 3), pred['rotmats'])
  np.testing.assert_allclose(res['pred_uvd'][0], pred['uvd29'])
  np.testing.assert_allclose(res['pred_xyz_29'][0] * df, pred['xyz29'], atol=1e-6)
  np.testing.assert_allclose(res['pred_scores'][0], pred['maxvals'])
  np.testing.assert_allclose(res['pred_xyz_24_struct'][0, 0], 0.0)
  np.testing.assert_allclose(res['pred_xyz_24_struct'][0] * df,
                             pred['joints'] - pred['joints'][0], atol=1e-5)
  np.testing.assert_allclose(res['pred_xyz_17'][0] * df,
                             pred['joints_h36m'] - pred['joints_h36m'][0], atol=1e-5)
  # What HybrIK's Blender add-on reads: 24 rotations, the shape, transl_camsys.
  rot = res['pred_thetas'].reshape(-1, 24, 3, 3)
  np.testing.assert_allclose(rot @ np.swapaxes(rot, -1, -2), np.broadcast_to(np.eye(3), rot.shape),
                             atol=1e-4)
  assert res['pred_betas'].mean(0).shape == (10,)


def test_placement_fit_on_a_camera_model(camera_model, predict_fn, image, camera_pred):
  model = camera_model[1]
  pred = image_demo.predict_image(model, image, BOX, predict_fn=predict_fn, placement='fit')
  assert str(pred['placement']) == 'fit'
  assert str(pred['depth_source']) in (core.DEPTH_FITTED, core.DEPTH_FROM_BOX)
  # The fit's camera (HybrIK's 1000 px per 256 px), not the model's.
  assert float(pred['focal']) == pytest.approx(core.FOCAL_PER_CROP * core.crop_side(BOX))
  assert not np.allclose(pred['transl'], camera_pred['transl'], atol=1e-3)
  # The model's camera is still reported (the same network outputs).
  np.testing.assert_allclose(pred['cam_root'], camera_pred['cam_root'], rtol=1e-5)
  with pytest.raises(core.DemoError, match='--focal sets the camera of the 2D fit'):
    core.resolve_placement(model.model_config, 'auto', focal=500.0)
  with pytest.raises(core.DemoError, match='predicts no camera'):
    core.resolve_placement(models.get_tiny_model_config(), 'camera')
  assert core.resolve_placement(models.get_tiny_model_config(), 'auto') == 'fit'
  with pytest.raises(core.DemoError, match='--placement must be one of auto, camera, fit'):
    core.resolve_placement(model.model_config, 'box')


def test_video_with_a_camera_model(camera_model, predict_fn, tmp_path):
  """Two tracks from a detections file: camera fields per frame, one res.pk per track."""
  model = camera_model[1]
  rng = np.random.default_rng(1)
  video = str(tmp_path / 'clip.mp4')
  with video_io.VideoWriter(video, W, H, 10.0) as writer:
    for _ in range(3):
      writer.write(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
  dets = tmp_path / 'dets.csv'
  dets.write_text('0,30,8,48,80,1\n1,32,8,48,80,1\n2,34,9,48,80,1\n'
                  '0,70,20,40,70,2\n2,72,20,40,70,2\n')
  out = str(tmp_path / 'out.mp4')
  res = video_demo.run_video(video, out, variables=model.variables,
                             model_config=model.model_config, smpl_model=model.smpl_model,
                             detections=str(dets), batch_size=1, predict_fn=predict_fn,
                             progress=False, json_path=str(tmp_path / 'out.json'),
                             hybrik_res_pk=str(tmp_path / 'res.pk'))
  assert str(res['placement']) == 'camera'
  assert res['valid'].tolist() == [[True, True], [True, False], [True, True]]
  # The camera fields, and the body placed by them: the H36M pelvis at the
  # model's transl; its root on the network's 2D root.
  for name in results_lib.CAMERA_FIELDS:
    assert name in res
  assert res['pred_camera'].shape == (3, 2, 3) and np.isnan(res['cam_root'][1, 1]).all()
  v = res['valid']
  K = np.zeros(v.shape + (3, 3))
  K[..., 0, 0] = K[..., 1, 1] = res['focal']
  K[..., :2, 2], K[..., 2, 2] = res['principal_point'], 1.0
  root_2d = np.einsum('tpij,tpj->tpi', K, res['cam_root'])
  np.testing.assert_allclose((root_2d[..., :2] / root_2d[..., 2:])[v],
                             res['joints2d_net'][..., 0, :][v], atol=2e-2)
  # Both files carry them.
  for path in (res['results'], res['json']):
    back = results_lib.load_results(path)
    np.testing.assert_allclose(back['cam_transl'][v], res['cam_transl'][v], rtol=1e-6)
    assert str(back['placement']) == 'camera'
  # res.pk: one per track, the track's valid frames in order.
  assert res['res_pk'] == [str(tmp_path / 'res_track1.pk'), str(tmp_path / 'res_track2.pk')]
  for p, path in enumerate(res['res_pk']):
    pk = hybrik_res.read(path)
    frames = np.flatnonzero(v[:, p])
    assert list(pk) == list(hybrik_res.RES_KEYS)
    assert pk['pred_thetas'].shape == (len(frames), 216)
    assert list(pk['img_path']) == [f'{video}#frame={f}' for f in frames]
    np.testing.assert_allclose(pk['transl'], res['cam_transl'][frames, p], atol=1e-5)
    np.testing.assert_allclose(pk['bbox'][:, 2] - pk['bbox'][:, 0],
                               1.25 * 80 * np.ones(len(frames)) if p == 0 else 1.25 * 70,
                               rtol=1e-6)
