"""The demos with an SMPL-X model (HybrIK-X's HRNetSMPLXCamKid, tiny, random
weights) and the synthetic SMPL-X body written as its body file: the SMPL-X mesh
drawn and placed by the model's camera, SMPL-X's parameters in the .npz and the
video results (SMPLX_FIELDS), HybrIK-X's res.pk layout (RES_KEYS_X).

One compiled prediction (batch 1) serves the module: the image demo's CLI
compiles it (the suite's persistent cache then serves the video's jit).
"""

import os

import cv2
import numpy as np
import pytest

from hybrik_jax import demo
from hybrik_jax import models
from hybrik_jax.body import ik
from hybrik_jax.body import smplx_constants as xc
from hybrik_jax.body import synthetic_smplx
from hybrik_jax.checkpoints import model_dir
from hybrik_jax.demos import core
from hybrik_jax.demos import hybrik_res
from hybrik_jax.demos import image as image_demo
from hybrik_jax.demos import results as results_lib
from hybrik_jax.demos import video as video_demo
from hybrik_jax.demos import video_io
from hybrik_jax.models import config as config_lib

from conftest import tiny_variables  # pylint: disable=g-bad-import-order

H, W = 96, 128
BBOX = '30,8,48,80'  # x, y, w, h


@pytest.fixture(scope='module')
def smplx_model(tmp_path_factory):
  """(model dir, body file, core.DemoModel): a saved tiny HybrIK-X model and the
  synthetic SMPL-X body written as SMPLX_NEUTRAL.npz + its kid template."""
  root = tmp_path_factory.mktemp('smplx_demo')
  cfg = models.get_tiny_model_config(
      backbone='hrnet_tiny', head='heatmap', body='smplx', predict_camera=True,
      init_cam=(0.9,), focal_length=1000.0, **config_lib.ik_fields(ik.IKConvention.hybrik()))
  path = str(root / 'model')
  model_dir.save_model(path, tiny_variables(models.create_model(cfg), cfg.input_size, seed=1),
                       cfg)
  body = synthetic_smplx.write_synthetic_smplx(str(root / 'body'), 0, kinds=('npz',))['npz']
  return path, body, core.load_model(path, body)


@pytest.fixture(scope='module')
def image_run(smplx_model, tmp_path_factory):
  """`python -m hybrik_jax.demo --image` in-process: (out dir, image, npz arrays)."""
  path, body, _ = smplx_model
  out = tmp_path_factory.mktemp('smplx_image')
  small = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
  image = cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC)  # smooth: H.264 keeps it
  cv2.imwrite(str(out / 'in.png'), image[..., ::-1])
  assert demo.main(['--image', str(out / 'in.png'), '--bbox', BBOX, '--checkpoint', path,
                    '--out', str(out / 'out.png'), '--smpl', body,
                    '--hybrik_res_pk', str(out / 'res.pk')]) == 0
  with np.load(out / 'out.npz') as data:
    return out, image, {k: data[k] for k in data.files}


def _project(points, K):
  p = np.asarray(points, np.float64) @ np.asarray(K, np.float64).T
  return p[..., :2] / p[..., 2:]


def test_image_demo_draws_and_exports_smplx(smplx_model, image_run):
  out, _, pred = image_run
  body = smplx_model[2].smpl_model
  assert str(pred['body_model']) == 'SMPL-X SMPLX_NEUTRAL.npz'
  # The SMPL-X mesh (the synthetic body's faces and its 10,475 vertices).
  np.testing.assert_array_equal(pred['faces'], np.asarray(body.faces))
  assert pred['vertices'].shape == (xc.NUM_VERTICES, 3) and bool(pred['valid'])
  # Placed by the model's camera: vertices + transl, the pelvis at cam_root,
  # projected onto the network's own 2D root.
  assert str(pred['placement']) == 'camera'
  np.testing.assert_allclose(pred['transl'], pred['cam_transl'], atol=1e-6)
  np.testing.assert_allclose(pred['joints'][0], pred['cam_root'], atol=1e-4)
  np.testing.assert_allclose(_project(pred['joints'][0], pred['intrinsics']),
                             pred['joints_2d'][0], atol=2e-2)
  # The parameters: the pose parts are the full pose's, shapes SMPL-X's.
  full = pred['pose_axis_angle']
  assert full.shape == (55, 3) and pred['rotmats'].shape == (55, 3, 3)
  np.testing.assert_array_equal(pred['global_orient'], full[0])
  np.testing.assert_array_equal(pred['body_pose'], full[1:22])
  np.testing.assert_array_equal(pred['jaw_pose'], full[22])
  np.testing.assert_array_equal(pred['left_hand_pose'], full[25:40])
  np.testing.assert_array_equal(pred['right_hand_pose'], full[40:55])
  assert (pred['betas'].shape, pred['kid_blend'].shape, pred['expression'].shape) == (
      (10,), (), (10,))
  # The PNG: overlay, side view and the crop magnified, each the same height.
  png = cv2.imread(str(out / 'out.png'))
  assert png.shape[1] == png.shape[0] * (2 * W / H + 1)


def test_res_pk_has_hybrik_x_layout(image_run):
  out, _, pred = image_run
  res = hybrik_res.read(str(out / 'res.pk'))
  assert list(res) == list(hybrik_res.RES_KEYS_X)
  shapes = {  # demo_video_x.py's keys; docs/DEMO.md, "HybrIK-X's res.pk"
      'pred_uvd': (71, 3), 'pred_xyz_17': (17, 3), 'pred_xyz_29': (71, 3),
      'pred_xyz_24_struct': (71, 3), 'pred_scores': (29,), 'pred_camera': (1,), 'f': (),
      'pred_betas': (11,), 'pred_thetas': (495,), 'pred_phi': (54, 2), 'scale_mult': (),
      'pred_cam_root': (3,), 'transl': (3,), 'bbox': (4,), 'height': (), 'width': (),
      'img_path': ()}
  for key, shape in shapes.items():
    assert res[key].shape == (1,) + shape, key
  df = 2.2
  np.testing.assert_allclose(res['pred_uvd'][0], pred['uvd'])
  np.testing.assert_allclose(res['pred_xyz_29'][0] * df, pred['xyz71'], atol=1e-6)
  np.testing.assert_allclose(res['pred_xyz_24_struct'][0] * df,
                             pred['joints'] - pred['joints'][0], atol=1e-5)
  assert np.isnan(res['pred_xyz_17']).all()  # HybrIK-X has no H36M joints
  np.testing.assert_allclose(res['pred_scores'][0], pred['maxvals'][:29])
  np.testing.assert_allclose(res['pred_camera'][0], pred['pred_camera'])
  assert res['f'][0] == 1000.0 and res['scale_mult'][0] == 1.25
  np.testing.assert_allclose(res['pred_betas'][0, :10], pred['betas'])
  assert res['pred_betas'][0, 10] == pytest.approx(float(pred['kid_blend']))
  np.testing.assert_allclose(res['pred_thetas'][0].reshape(55, 3, 3), pred['rotmats'])
  np.testing.assert_allclose(res['pred_phi'][0], pred['phi'])
  np.testing.assert_allclose(res['transl'][0], pred['cam_transl'], atol=1e-6)
  np.testing.assert_allclose(res['pred_cam_root'][0], pred['cam_root'], atol=1e-4)
  np.testing.assert_allclose(res['bbox'][0], pred['crop_box'])
  assert (res['height'][0], res['width'][0]) == (H, W)
  assert res['img_path'][0] == str(out / 'in.png')


def test_video_demo_with_an_smplx_model(smplx_model, image_run, tmp_path):
  """Two tracks (frame 0 the image run's box), --smooth (the bodies re-posed),
  JSON, one res.pk per track."""
  _, image, pred0 = image_run
  model = smplx_model[2]
  rng = np.random.default_rng(1)
  video = str(tmp_path / 'clip.mp4')
  frames = [image] + [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(2)]
  with video_io.VideoWriter(video, W, H, 10.0) as writer:
    for frame in frames:
      writer.write(frame)
  dets = tmp_path / 'dets.csv'
  dets.write_text(f'0,{BBOX},1\n1,32,8,48,80,1\n2,34,9,48,80,1\n'
                  '0,70,20,40,70,2\n2,72,20,40,70,2\n')
  predict_fn = core.make_predict_fn(model.model_config, model.smpl_model, flip_test=True)
  res = video_demo.run_video(video, str(tmp_path / 'out.mp4'), variables=model.variables,
                             model_config=model.model_config, smpl_model=model.smpl_model,
                             detections=str(dets), batch_size=1, predict_fn=predict_fn,
                             progress=False, json_path=str(tmp_path / 'out.json'),
                             hybrik_res_pk=str(tmp_path / 'res.pk'), smooth=True)
  v = res['valid']
  assert v.tolist() == [[True, True], [True, False], [True, True]]
  assert str(res['body']) == 'smplx'
  specs = results_lib.field_specs(1, 'smplx')
  for name, (shape, _) in specs.items():
    assert res[name].shape == (3, 2) + shape, name
  for name in ('joints3d_24', 'joints3d_29'):
    assert name not in res
  # With --smooth the bodies are re-posed from the filtered parameters: the
  # re-posing gives the network's own body from its parameters (the image run's).
  shape = np.concatenate([pred0['betas'], pred0['kid_blend'][None]])[None]
  vertices, joints71, pose = video_demo.pose_bodies_smplx(
      model.smpl_model, shape, pred0['expression'][None], pred0['rotmats'][None], 1)
  np.testing.assert_allclose(vertices[0], pred0['vertices'] - pred0['transl'], atol=1e-5)
  np.testing.assert_allclose(joints71[0], pred0['joints'] - pred0['transl'], atol=1e-5)
  np.testing.assert_allclose(pose[0], pred0['pose_axis_angle'], atol=1e-5)
  # The parameters: pose parts of the full pose; the placed joints projected.
  np.testing.assert_array_equal(res['left_hand_pose'][v], res['pose_axis_angle'][v][:, 25:40])
  np.testing.assert_array_equal(res['jaw_pose'][v], res['pose_axis_angle'][v][:, 22])
  K = np.zeros(v.shape + (3, 3))
  K[..., 0, 0] = K[..., 1, 1] = res['focal']
  K[..., :2, 2], K[..., 2, 2] = res['principal_point'], 1.0
  proj = np.einsum('nij,nkj->nki', K[v], res['joints3d_71'][v])
  np.testing.assert_allclose(proj[..., :2] / proj[..., 2:], res['joints2d_71'][v], atol=1e-2)
  assert res['pred_sigma'].shape == (3, 2, 71)
  # Both files read back (the body told by the file).
  for path in (res['results'], res['json']):
    back = results_lib.load_results(path)
    assert results_lib.body_of(back) == 'smplx'
    np.testing.assert_allclose(back['right_hand_pose'][v], res['right_hand_pose'][v],
                               rtol=1e-6)
    np.testing.assert_allclose(back['kid_blend'][v], res['kid_blend'][v], rtol=1e-6)
  # res.pk: one per track, HybrIK-X's keys, the track's valid frames.
  for p, path in enumerate(res['res_pk']):
    pk = hybrik_res.read(path)
    frames_p = np.flatnonzero(v[:, p])
    assert list(pk) == list(hybrik_res.RES_KEYS_X)
    assert pk['pred_thetas'].shape == (len(frames_p), 495)
    np.testing.assert_allclose(pk['pred_thetas'].reshape(-1, 55, 3, 3),
                               res['rotmats'][frames_p, p], atol=1e-6)
    np.testing.assert_allclose(pk['pred_betas'][:, 10], res['kid_blend'][frames_p, p])
    np.testing.assert_allclose(pk['transl'], res['transl'][frames_p, p], atol=1e-6)
    assert list(pk['img_path']) == [f'{video}#frame={f}' for f in frames_p]


def test_smplx_body_options_are_one_line_errors(smplx_model, tmp_path, capsys):
  path, body, _ = smplx_model
  image = tmp_path / 'in.png'
  cv2.imwrite(str(image), np.zeros((H, W, 3), np.uint8))
  base = ['--image', str(image), '--bbox', BBOX, '--checkpoint', path,
          '--out', str(tmp_path / 'o.png')]
  lone = tmp_path / 'lone'
  lone.mkdir()
  os.link(body, lone / 'SMPLX_NEUTRAL.npz')
  for extra, match in ((['--smpl', str(lone / 'SMPLX_NEUTRAL.npz')], 'kid template'),
                       (['--smpl', str(tmp_path / 'none.npz')], 'not found'),
                       (['--h36m_regressor', 'x.npy'], 'for SMPL models')):
    assert demo.main(base + extra) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1, err
