"""Tests for the video demo: decode/encode, tracking, export, smoothing, errors.

The clip: a synthetic person walking across a 192x160 frame (data/synthetic_clip),
each frame's background a uniform grey whose level encodes the frame index, so
that the oracle below can tell, from the crop alone, which frame it was given
and answer with that frame's true pose (as tests/test_demo.py's oracle, with
the truth mapped into the crop the pipeline chose).
"""

import json
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial import transform

from hybrik_jax import demo
from hybrik_jax import models
from hybrik_jax.body import constants
from hybrik_jax.body import geometry
from hybrik_jax.checkpoints import model_dir
from hybrik_jax.data import augment
from hybrik_jax.data import boxes
from hybrik_jax.data import synthetic
from hybrik_jax.data import synthetic_clip
from hybrik_jax.demos import core
from hybrik_jax.demos import results as results_lib
from hybrik_jax.demos import smoothing
from hybrik_jax.demos import video as video_demo
from hybrik_jax.demos import video_io
from test_demo import tiny_variables

T, W, H, FPS = 14, 192, 160, 12.5
INPUT_SIZE = 64
NAN_FRAME = 9  # the oracle's prediction for this frame is not finite


def _grey(t: int) -> int:
  return 30 + 14 * t


@pytest.fixture(scope='module')
def generator():
  return synthetic.SyntheticGenerator(batch_size=T)


@pytest.fixture(scope='module')
def clip(generator, tmp_path_factory):
  backgrounds = np.stack([np.full((H, W, 3), _grey(t), np.uint8) for t in range(T)])
  frames, truth = synthetic_clip.moving_person_clip(
      T, W, H, seed=3, backgrounds=backgrounds, person_height=0.5, travel=0.25,
      generator=generator)
  path = str(tmp_path_factory.mktemp('clip') / 'walk.mp4')
  video_io.write_video(path, list(frames), FPS)
  return path, frames, truth


class _OracleModel:
  def apply(self, variables, images, train):
    del images, train
    return variables['params']


@pytest.fixture(scope='module')
def oracle_decode(generator):
  """The image demo's jitted decoding behind a model that returns its params
  (one jit for the module: the IK compiles once per batch size)."""
  return core.make_predict_fn(models.get_tiny_model_config(input_size=INPUT_SIZE),
                              generator.model, flip_test=False, model=_OracleModel())


def _oracle_predict_fn(inner, truth, nan_frame=None, fail_frame=None):
  """A predict_fn stand-in: the true pose of the frame the crop comes from."""
  quats = np.asarray(geometry.matrix_to_quaternion(jnp.asarray(truth['rot_mats'])))
  calls = []

  def predict_fn(variables, image, trans_inv, intrinsics, z_root):
    del variables
    top = np.asarray(image)[:, 0] * 255.0 * augment.IMAGE_STD + 255.0 * augment.IMAGE_MEAN
    corner = np.median(top.mean(-1), axis=1)  # the crop's top row: background
    frames = np.rint((corner - _grey(0)) / (_grey(1) - _grey(0))).astype(int)
    calls.append(frames)
    raw = {'pred_uvd': [], 'pred_phi': [], 'pred_shape': [], 'pred_leaf': []}
    for i, f in enumerate(frames):
      assert 0 <= f < T and abs(corner[i] - _grey(f)) < 4, corner[i]
      if f == fail_frame:
        raise RuntimeError(f'oracle stops at frame {f}')
      uv = augment.apply_affine(augment.invert_affine(trans_inv[i]),
                                truth['joints29_img'][f, :24]) / INPUT_SIZE - 0.5
      d = (truth['joints29_cam'][f, :24, 2] - truth['joints29_cam'][f, 0, 2]) / 2.2
      uvd = np.concatenate([uv, d[:, None]], 1)
      if f == nan_frame:
        uvd = uvd * np.nan
      raw['pred_uvd'].append(uvd)
      raw['pred_phi'].append(truth['twist'][f])
      raw['pred_shape'].append(truth['betas'])
      raw['pred_leaf'].append(quats[f][list(constants.LEAF_PARENT_JOINTS)])
    raw = {k: np.asarray(v, np.float32) for k, v in raw.items()}
    return inner({'params': raw}, image, trans_inv, intrinsics, z_root)

  predict_fn.calls = calls
  return predict_fn


def _run(clip, generator, oracle_decode, tmp_path, **kwargs):
  path, _, truth = clip
  fn = _oracle_predict_fn(oracle_decode, truth, kwargs.pop('nan_frame', None),
                          kwargs.pop('fail_frame', None))
  kwargs.setdefault('focal', float(truth['K'][0, 0]))
  res = video_demo.run_video(
      path, str(tmp_path / 'out.mp4'), variables={},
      model_config=models.get_tiny_model_config(input_size=INPUT_SIZE),
      smpl_model=generator.model, predict_fn=fn, progress=False, **kwargs)
  return res, fn


def _xywh(box):
  return f'{box[0]:.1f},{box[1]:.1f},{box[2] - box[0]:.1f},{box[3] - box[1]:.1f}'


def test_clip_round_trips_through_the_video_files(clip):
  path, frames, _ = clip
  info = video_io.probe_video(path)
  assert (info.num_frames, info.width, info.height) == (T, W, H)
  assert info.fps == pytest.approx(FPS)
  decoded = np.stack(list(video_io.read_frames(info)))
  assert decoded.shape == frames.shape
  assert np.abs(decoded.astype(int) - frames).mean() < 3.0  # H.264 at crf 18


_FFMPEG_AFTER_JAX = """
import sys
import jax.numpy as jnp
import numpy as np
from hybrik_jax.demos import video_io
jnp.ones((256, 256)) @ jnp.ones((256, 256))  # JAX's threads are running
frames = np.random.default_rng(0).integers(0, 255, (4, 32, 48, 3), np.uint8)
video_io.write_video(sys.argv[1], list(frames), 10.0)
info = video_io.probe_video(sys.argv[1])
print(len(list(video_io.read_frames(info))))
"""


def test_ffmpeg_does_not_fork_the_jax_process(tmp_path):
  """Encoding and decoding start ffmpeg without forking the interpreter.

  A fork of a multithreaded JAX process can deadlock, and JAX warns 'os.fork()
  was called' before every one (imageio-ffmpeg's preexec_fn forks).
  """
  repo = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
  env = {k: v for k, v in os.environ.items()
         if k != 'IMAGEIO_FFMPEG_NO_PREVENT_SIGINT'}
  env['PYTHONPATH'] = repo
  result = subprocess.run(
      [sys.executable, '-W', 'always', '-c', _FFMPEG_AFTER_JAX,
       str(tmp_path / 'v.mp4')], capture_output=True, text=True, env=env,
      timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.split() == ['4']
  assert 'fork' not in result.stderr, result.stderr[-3000:]


def test_tracking_with_an_oracle(clip, generator, oracle_decode, tmp_path):
  """--bbox on frame 0, then tracked: box on the person, joints = the truth."""
  path, _, truth = clip
  res, fn = _run(clip, generator, oracle_decode, tmp_path, bbox=_xywh(truth['bbox'][0]),
                 json_path=str(tmp_path / 'out.json'), nan_frame=NAN_FRAME)
  # One person per frame, each frame's crop from its own frame, in order.
  np.testing.assert_array_equal(np.concatenate(fn.calls), np.repeat(np.arange(T), 2))
  # The box stays on the person every frame (the box used for frame t comes
  # from frame t-1's joints; after the invalid frame it is kept).
  ious = [boxes.iou(res['bbox'][t, 0], truth['bbox'][t]) for t in range(T)]
  assert min(ious) > 0.6, np.round(ious, 2)
  np.testing.assert_allclose(res['bbox'][NAN_FRAME + 1, 0], res['bbox'][NAN_FRAME, 0])
  # The invalid frame is kept, marked, and made of NaN.
  assert res['valid'][:, 0].tolist() == [t != NAN_FRAME for t in range(T)]
  assert res['has_box'].all()
  assert np.isnan(res['joints3d_24'][NAN_FRAME]).all()
  ok = res['valid'][:, 0]
  # With the true focal length the exported joints are the true ones, up to
  # what two rounds of the image demo's translation fit leave (the uvd lifting
  # depends on the root depth being fitted; measured here: 2 cm root-relative,
  # 3 cm in depth, 5 degrees at the ankles; 4 rounds would give 0.6 cm, 1 degree).
  j29 = res['joints3d_29'][ok, 0]
  true29 = truth['joints29_cam'][ok]
  rel = np.linalg.norm((j29 - j29[:, :1]) - (true29 - true29[:, :1]), axis=-1)
  assert rel.max() < 0.03, rel.max(1)
  assert np.linalg.norm(j29 - true29, axis=-1).max() < 0.07
  err2d = np.linalg.norm(res['joints2d_29'][ok, 0] - truth['joints29_img'][ok], axis=-1)
  assert err2d.max() < 1.0, err2d.max(1)
  np.testing.assert_allclose(res['joints2d_net'][ok, 0], truth['joints29_img'][ok, :24],
                             atol=1e-3)
  angle = np.linalg.norm(transform.Rotation.from_matrix(
      np.einsum('tjba,tjbc->tjac', res['rotmats'][ok, 0], truth['rot_mats'][ok]).reshape(-1, 3, 3)
  ).as_rotvec(), axis=-1)
  assert np.degrees(angle).max() < 7.0
  np.testing.assert_allclose(
      geometry.axis_angle_to_matrix(jnp.asarray(res['pose_axis_angle'][ok, 0])),
      res['rotmats'][ok, 0], atol=1e-4)
  np.testing.assert_allclose(res['betas'][ok, 0], np.broadcast_to(truth['betas'], (ok.sum(), 10)),
                             atol=1e-5)
  assert res['depth_fitted'][ok].all()
  np.testing.assert_allclose(res['focal'][ok], truth['K'][0, 0])
  np.testing.assert_allclose(res['principal_point'][ok, 0], [[W / 2, H / 2]] * ok.sum())
  # The overlay: same frame count, size and rate as the input.
  info = video_io.probe_video(res['out'])
  assert (info.num_frames, info.width, info.height) == (T, W, H)
  assert info.fps == pytest.approx(FPS)
  # The results round-trip through .npz and .json.
  for saved in (results_lib.load_results(res['results']), results_lib.load_results(res['json'])):
    for name in list(results_lib.FIELDS) + ['fps', 'image_size', 'frame_index', 'track_id']:
      np.testing.assert_array_equal(saved[name], res[name], err_msg=name)
  with open(res['json']) as f:
    doc = json.load(f)
  assert doc['frames'][NAN_FRAME]['people'][0]['joints3d_24'] is None or all(
      v is None for row in doc['frames'][NAN_FRAME]['people'][0]['joints3d_24'] for v in row)
  assert not [p for p in os.listdir(tmp_path) if 'partial' in p]


def test_detections_file_with_two_tracks(clip, generator, oracle_decode, tmp_path):
  """A CSV with two tracks (one box missing in a frame): one result per track."""
  _, _, truth = clip
  lines = ['frame,x,y,w,h,track_id']
  for t in range(T):
    lines.append(f'{t},{_xywh(truth["bbox"][t])},7')
    if t != 4:
      lines.append(f'{t},{_xywh(truth["bbox"][t] + [-6, -6, 6, 6])},2')
  dets = tmp_path / 'dets.csv'
  dets.write_text('\n'.join(lines) + '\n')
  # Batch size 1 shares the tracking test's compilation; batches of several
  # people are the tiny-model test's.
  res, _ = _run(clip, generator, oracle_decode, tmp_path, detections=str(dets), batch_size=1)
  np.testing.assert_array_equal(res['track_id'], [2, 7])
  assert res['valid'].shape == (T, 2)
  assert res['has_box'][:, 1].all() and not res['has_box'][4, 0]
  assert res['valid'].sum() == 2 * T - 1
  np.testing.assert_allclose(res['bbox'][:, 1], truth['bbox'], atol=0.11)  # CSV: 0.1 px
  err = np.linalg.norm(res['joints3d_29'][:, 1] - truth['joints29_cam'], axis=-1)
  assert err.max() < 0.07
  with pytest.raises(video_io.VideoError, match='track 5'):
    _run(clip, generator, oracle_decode, tmp_path, detections=str(dets), tracks=[5])
  # A failure in the middle of a run leaves neither output nor a partial file.
  fail = tmp_path / 'fail'
  fail.mkdir()
  with pytest.raises(RuntimeError, match='frame 3'):
    _run(clip, generator, oracle_decode, fail, detections=str(dets), batch_size=1,
         fail_frame=3)
  assert not os.listdir(fail)


def test_smoothing_in_the_pipeline(clip, generator, oracle_decode, tmp_path):
  """--smooth: frame 0 as measured, later frames lag the walking person a
  little; joints stay those of the smoothed pose; invalid frames skipped."""
  _, _, truth = clip
  dets = tmp_path / 'dets.csv'
  dets.write_text(''.join(f'{t},{_xywh(truth["bbox"][t])}\n' for t in range(T)))
  raw, _ = _run(clip, generator, oracle_decode, tmp_path, detections=str(dets),
                batch_size=1, nan_frame=NAN_FRAME)
  res, _ = _run(clip, generator, oracle_decode, tmp_path, detections=str(dets),
                batch_size=1, nan_frame=NAN_FRAME, smooth=True, smooth_min_cutoff=0.3)
  assert str(res['smoothing']) == 'one_euro min_cutoff=0.3 beta=0.0'
  np.testing.assert_array_equal(res['valid'], raw['valid'])
  np.testing.assert_allclose(res['rotmats'][0], raw['rotmats'][0], atol=1e-6)
  moved = np.linalg.norm(res['transl'] - raw['transl'], axis=-1)[:, 0]
  ok = res['valid'][:, 0]
  travelled = np.linalg.norm(raw['transl'][:, 0] - raw['transl'][0, 0], axis=-1)
  # Behind the measurement, but between where the person started and is.
  assert moved[ok][1:].min() > 1e-3, moved
  assert np.all(moved[ok][1:] < travelled[ok][1:]), (moved, travelled)
  # The joints are the smoothed body's: 2D equals the projection of 3D.
  proj = np.einsum('tij,tkj->tki', np.asarray([[[f, 0, c[0]], [0, f, c[1]], [0, 0, 1]]
                                                for f, c in zip(res['focal'][ok, 0],
                                                                res['principal_point'][ok, 0])]),
                   res['joints3d_29'][ok, 0])
  np.testing.assert_allclose(proj[..., :2] / proj[..., 2:], res['joints2d_29'][ok, 0], atol=1e-3)
  geo = np.linalg.norm(transform.Rotation.from_matrix(
      np.einsum('tjba,tjbc->tjac', res['rotmats'][ok, 0], raw['rotmats'][ok, 0]).reshape(-1, 3, 3)
  ).as_rotvec(), axis=-1)
  assert 0 < np.degrees(geo).max() < 45


def test_detections_formats_and_errors(tmp_path):
  info = video_io.VideoInfo(path='v.mp4', num_frames=5, fps=25.0, width=100, height=80)
  coco = [{'image_id': 0, 'bbox': [10, 10, 30, 40], 'score': 0.5, 'category_id': 1},
          {'image_id': 0, 'bbox': [12, 12, 30, 40], 'score': 0.9, 'category_id': 1},
          {'image_id': 0, 'bbox': [0, 0, 5, 5], 'score': 0.99, 'category_id': 3},
          {'image_id': 3, 'bbox': [-10, 20, 40, 100], 'score': 0.7}]
  path = tmp_path / 'd.json'
  path.write_text(json.dumps(coco))
  dets = video_io.load_detections(str(path), info)
  np.testing.assert_array_equal(dets.track_ids, [0])
  np.testing.assert_allclose(dets.boxes[0, 0], [12, 12, 42, 52])  # best score, a person
  np.testing.assert_allclose(dets.boxes[3, 0], [0, 20, 30, 79])  # clipped to the frame
  assert dets.has_box[:, 0].tolist() == [True, False, False, True, False]
  path.write_text(json.dumps(coco + [{'image_id': 5, 'bbox': [1, 1, 5, 5]}]))
  with pytest.raises(video_io.VideoError, match='frame 5.*5 frames'):
    video_io.load_detections(str(path), info)
  path.write_text(json.dumps([{'image_id': 1, 'bbox': [200, 10, 5, 5]}]))
  with pytest.raises(video_io.VideoError, match='frame 1 track 0.*outside the 100x80'):
    video_io.load_detections(str(path), info)
  path.write_text('{not json')
  with pytest.raises(video_io.VideoError, match='not valid JSON'):
    video_io.load_detections(str(path), info)
  csv = tmp_path / 'd.txt'
  csv.write_text('# frame,x,y,w,h,track\n0,1,2,30,40,4\n0,5,5,20,20,9\n2,1,2,30,40,4\n')
  dets = video_io.load_detections(str(csv), info)
  np.testing.assert_array_equal(dets.track_ids, [4, 9])
  assert dets.has_box.tolist() == [[True, True], [False, False], [True, False],
                                   [False, False], [False, False]]
  dets = video_io.load_detections(str(csv), info, tracks=[9])
  np.testing.assert_array_equal(dets.track_ids, [9])
  np.testing.assert_allclose(dets.boxes[0, 0], [5, 5, 25, 25])
  with pytest.raises(video_io.VideoError, match='track 3.*has tracks \\[4, 9\\]'):
    video_io.load_detections(str(csv), info, tracks=[3])
  csv.write_text('0,1,2,3\n')
  with pytest.raises(video_io.VideoError, match='line 1: expected frame,x,y,w,h'):
    video_io.load_detections(str(csv), info)
  with pytest.raises(video_io.VideoError, match='outside the 100x80 frame'):
    video_io.parse_bbox_arg('150,10,20,20', 100, 80)


@pytest.fixture(scope='module')
def tiny_checkpoint(tmp_path_factory):
  cfg = models.get_tiny_model_config()
  ckpt = str(tmp_path_factory.mktemp('model') / 'model')
  model_dir.save_model(ckpt, tiny_variables(models.create_model(cfg), cfg.input_size), cfg)
  return ckpt


def test_bad_videos_are_one_line_errors(tmp_path, capsys, clip, tiny_checkpoint):
  ckpt = tiny_checkpoint
  garbage = tmp_path / 'garbage.mp4'
  garbage.write_bytes(b'not a video at all')
  empty = tmp_path / 'empty.mp4'
  empty.write_bytes(b'')
  dets = tmp_path / 'dets.csv'
  dets.write_text(f'{T + 3},10,10,50,50\n')
  out = tmp_path / 'o' / 'out.mp4'
  cases = [
      (['--video', str(tmp_path / 'missing.mp4')], 'does not exist'),
      (['--video', str(garbage)], 'could not be read'),
      (['--video', str(empty)], 'could not be read'),
      (['--video', clip[0], '--detections', str(dets)], f'frame {T + 3}'),
      (['--video', clip[0], '--bbox', '500,500,10,10'], 'outside the 192x160 frame'),
      (['--video', clip[0], '--tracks', '1'], '--tracks selects'),
      (['--video', clip[0], '--smooth', '--smooth_min_cutoff', '0'], '--smooth_min_cutoff'),
      (['--video', clip[0], '--out', str(tmp_path / 'o.png')], 'an .mp4 path'),
  ]
  for args, message in cases:
    rc = demo.main(args + ['--checkpoint', ckpt] + ([] if '--out' in args else ['--out', str(out)]))
    err = capsys.readouterr().err
    assert rc == 2, args
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert 'Traceback' not in err
  assert not out.parent.exists() or not os.listdir(out.parent)


def test_cli_on_the_clip_with_a_tiny_model(tmp_path, clip, tiny_checkpoint):
  """The real network end to end (random weights): every frame written."""
  ckpt = tiny_checkpoint
  out = str(tmp_path / 'out.mp4')
  assert demo.main(['--video', clip[0], '--checkpoint', ckpt, '--out', out, '--json',
                    '--smooth', '--batch_size', '5']) == 0
  info = video_io.probe_video(out)
  assert (info.num_frames, info.width, info.height) == (T, W, H)
  res = results_lib.load_results(str(tmp_path / 'out.npz'))
  assert res['valid'].shape == (T, 1) and res['valid'].all()
  assert np.all(np.isfinite(res['joints3d_29']))
  assert str(res['body_model']) == 'synthetic body model'
  assert str(res['smoothing']).startswith('one_euro')
  assert os.path.isfile(tmp_path / 'out.json')


def test_one_euro_filters():
  rng = np.random.default_rng(0)
  t = np.arange(200) / 30.0
  rms = lambda e: float(np.sqrt(np.mean(np.square(e[30:]))))
  # At rest: the jitter goes.
  still = np.array([1.0, -2.0, 0.5]) + 0.05 * rng.standard_normal((len(t), 3))
  f = smoothing.OneEuroFilter(min_cutoff=1.0, beta=0.0)
  out = np.stack([f(x, ti) for x, ti in zip(still, t)])
  assert rms(out - [1.0, -2.0, 0.5]) < 0.4 * rms(still - [1.0, -2.0, 0.5])
  # Moving fast (2 m/s): beta opens the cutoff, so less lag than without it.
  ramp = np.stack([2.0 * t, 0 * t, 0 * t], -1) + 0.01 * rng.standard_normal((len(t), 3))
  lag = {}
  for beta in (0.0, 2.0):
    f = smoothing.OneEuroFilter(min_cutoff=1.0, beta=beta)
    lag[beta] = rms(np.stack([f(x, ti) for x, ti in zip(ramp, t)]) - ramp)
  assert lag[2.0] < 0.3 * lag[0.0], lag
  # Rotations: jitter about a slow turn is reduced; the output stays a rotation
  # and is continuous through the quaternion double cover (angle near pi).
  base = transform.Rotation.from_rotvec(np.stack([np.zeros_like(t), 2.5 + 0.3 * t, 0 * t], -1))
  noise = transform.Rotation.from_rotvec(0.05 * rng.standard_normal((len(t), 3)))
  measured = (base * noise).as_matrix()
  fr = smoothing.RotationOneEuro(min_cutoff=1.0, beta=0.0)
  rots = np.stack([fr(m[None], ti)[0] for m, ti in zip(measured, t)])
  np.testing.assert_allclose(np.einsum('tij,tkj->tik', rots, rots),
                             np.broadcast_to(np.eye(3), rots.shape), atol=1e-9)
  err = lambda r: np.linalg.norm((base.inv() * transform.Rotation.from_matrix(r)).as_rotvec(), axis=-1)
  assert err(rots)[30:].mean() < 0.6 * err(measured)[30:].mean()
  assert err(rots).max() < 0.2
  with pytest.raises(ValueError, match='min_cutoff'):
    smoothing.OneEuroFilter(min_cutoff=0.0)


def test_box_from_joints():
  joints = np.array([[10.0, 20.0], [60.0, 120.0], [30.0, 70.0]])
  np.testing.assert_allclose(video_io.box_from_joints(joints, 200, 200, pad=0.1),
                             [5, 10, 65, 130])
  assert video_io.box_from_joints(joints * np.nan, 200, 200) is None
  assert video_io.box_from_joints(joints + 500, 200, 200) is None
  assert boxes.iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(1 / 3)


def test_truncated_video_and_bad_detection_entries(tmp_path):
  """Issue 25 case 8: a truncated mp4 says how many declared frames are
  missing; malformed --detections entries are one line naming the entry."""
  iio = pytest.importorskip('imageio_ffmpeg')
  path = str(tmp_path / 'full.mp4')
  rng = np.random.default_rng(0)
  writer = iio.write_frames(path, (64, 64), fps=10, codec='libx264',
                            output_params=['-movflags', '+faststart'],
                            macro_block_size=1)
  writer.send(None)
  for _ in range(24):
    writer.send(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
  writer.close()
  full = video_io.probe_video(path)
  assert (full.num_frames, full.declared_frames) == (24, 24)
  assert video_io.missing_frames_note(full) is None
  data = open(path, 'rb').read()
  cut = tmp_path / 'cut.mp4'
  cut.write_bytes(data[:len(data) // 2])
  info = video_io.probe_video(str(cut))
  assert info.declared_frames == 24 and 0 < info.num_frames < 20
  note = video_io.missing_frames_note(info)
  assert note == (f"warning: video {str(cut)!r}: its header declares 24 frames "
                  f"but only {info.num_frames} decode ({24 - info.num_frames} "
                  'missing: a truncated or damaged file?); the results cover '
                  f'those {info.num_frames}')

  dets = tmp_path / 'd.json'
  good = {'image_id': 0, 'bbox': [1, 1, 20, 20], 'score': 0.5}
  for entry, message in [
      (dict(good, bbox='oops'), "entry 1 bbox must be [x, y, w, h] (four "
       "numbers, pixels), got 'oops'"),
      (dict(good, bbox=None), 'entry 1 bbox must be [x, y, w, h]'),
      (dict(good, bbox=[1, 2, 3]), 'entry 1 bbox must be [x, y, w, h]'),
      (dict(good, score='high'), "entry 1 score must be a finite number, got "
       "'high'")]:
    dets.write_text(json.dumps([good, entry]))
    with pytest.raises(video_io.VideoError) as e:
      video_io.load_detections(str(dets), full)
    assert message in str(e.value) and '\n' not in str(e.value)
