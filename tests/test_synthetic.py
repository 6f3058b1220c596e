"""Tests for hybrik_jax.data.features, hybrik_jax.data.synthetic and prepare_data."""

import numpy as np
import pytest
from scipy.spatial import transform
import tensorflow_datasets as tfds

from hybrik_jax.data import augment
from hybrik_jax.data import features
from hybrik_jax.data import render
from hybrik_jax.data import synthetic

SIZE = 64


# --------------------------------------------------------------------- features


def test_example_features_fields_and_roundtrip():
  spec = features.example_features(17)
  names = {'image', 'image_file', 'crop_offset', 'bbox', 'intrinsics', 'joint_root',
           'depth_factor', 'joints29_cam', 'joints29_img', 'joints29_valid',
           'joints17_cam', 'joints17_valid', 'smpl_theta', 'smpl_beta', 'smpl_twist',
           'smpl_valid', 'twist_valid', 'gender', 'native_joints_img',
           'native_joints_cam', 'native_joints_valid'}
  assert set(spec.keys()) == names
  assert spec['native_joints_cam'].shape == (17, 3)
  assert spec['image'].encoding_format == 'jpeg'
  ex = features.empty_example(17)
  ex['image'] = features.encode_jpeg(np.full((20, 30, 3), 128, np.uint8))
  ex['image_file'] = 'S1/a.jpg'
  ex['joints29_cam'][3] = [1.0, 2.0, 3.0]
  ex = features.check_example(ex, 17)
  back = spec.deserialize_example_np(spec.serialize_example(ex))
  assert back['image'].shape == (20, 30, 3)
  np.testing.assert_allclose(back['joints29_cam'][3], [1.0, 2.0, 3.0])
  assert back['depth_factor'] == pytest.approx(features.DEFAULT_DEPTH_FACTOR)
  assert back['gender'] == 0 and back['smpl_valid'] == 0


def test_check_example_names_bad_field():
  ex = features.empty_example(17)
  ex['image'], ex['image_file'] = np.zeros((4, 4, 3), np.uint8), ''
  ex['joints17_cam'] = np.zeros((16, 3))
  with pytest.raises(ValueError, match='joints17_cam'):
    features.check_example(ex, 17)
  ex = features.empty_example(17)
  ex['image'], ex['image_file'] = np.zeros((4, 4, 3), np.uint8), ''
  ex['bbox'] = np.array([0, 0, np.nan, 1])
  with pytest.raises(ValueError, match='bbox'):
    features.check_example(ex, 17)
  del ex['intrinsics']
  with pytest.raises(ValueError, match='intrinsics'):
    features.check_example(ex, 17)


def test_crop_with_margin_pads_and_shifts():
  frame = np.arange(100 * 80 * 3, dtype=np.int64).reshape(100, 80, 3).astype(np.uint8)
  bbox = np.array([10.0, 20.0, 30.0, 60.0])  # 20 x 40, centre (20, 40)
  crop, offset = features.crop_with_margin(frame, bbox, margin=2.0)
  assert crop.shape == (80, 80, 3) and offset.dtype == np.int32
  np.testing.assert_array_equal(offset, [-20, 0])
  np.testing.assert_array_equal(crop[:, :20], 0)  # outside the frame
  np.testing.assert_array_equal(crop[5, 20 + 7], frame[5, 7])
  # The box, K and projections move together.
  K = np.array([[500.0, 0, 40], [0, 500, 50], [0, 0, 1]])
  pts = np.array([[0.1, -0.2, 3.0], [0.0, 0.0, 2.0]])
  np.testing.assert_allclose(
      features.project(pts, features.shift_intrinsics(K, offset)),
      features.shift_points(features.project(pts, K), offset), atol=1e-4)
  np.testing.assert_allclose(features.shift_bbox(bbox, offset), [30, 20, 50, 60])
  # Resizing by s maps pixel centres x -> s (x + 0.5) - 0.5.
  ks = features.scale_intrinsics(K, 0.5)
  np.testing.assert_allclose(features.project(pts, ks),
                             0.5 * (features.project(pts, K) + 0.5) - 0.5, atol=1e-4)


def test_jpeg_roundtrip():
  img = np.zeros((16, 16, 3), np.uint8)
  img[..., 0] = 200
  back = features.decode_jpeg(features.encode_jpeg(img))
  assert back.shape == img.shape
  assert np.abs(back.astype(int) - img).max() <= 3  # RGB order kept


# -------------------------------------------------------------------- synthetic


@pytest.fixture(scope='module')
def generator():
  # Default batch size: the jit compiled here is reused by the builds below.
  return synthetic.SyntheticGenerator(synthetic.SyntheticConfig(image_size=SIZE))


@pytest.fixture(scope='module')
def examples(generator):
  return dict(generator.generate(range(4), 'train'))


def test_labels_self_consistent(examples):
  for ex in examples.values():
    np.testing.assert_allclose(ex['joints29_img'],
                               features.project(ex['joints29_cam'], ex['intrinsics']),
                               atol=1e-3)
    np.testing.assert_array_equal(ex['joint_root'], ex['joints29_cam'][0])
    np.testing.assert_array_equal(ex['native_joints_cam'], ex['joints29_cam'])
    assert ex['image'].shape == (SIZE, SIZE, 3) and ex['image'].dtype == np.uint8
    assert ex['smpl_valid'] == 1 and ex['twist_valid'].min() == 1
    assert ex['joints29_valid'].min() == 1 and ex['joints17_valid'].min() == 1
    assert ex['depth_factor'] == pytest.approx(2.2)
    x0, y0, x1, y1 = ex['bbox']
    side = max(x1 - x0, y1 - y0) / SIZE
    assert 0.55 <= side <= 0.85, side
    assert 0 <= x0 and 0 <= y0 and x1 <= SIZE - 1 and y1 <= SIZE - 1
    centre = 0.5 * (ex['bbox'][:2] + ex['bbox'][2:])
    assert np.abs(centre - (SIZE / 2 - 0.5)).max() <= 0.06 * SIZE
    # Joints lie inside the box of the projected body.
    j = ex['joints29_img']
    assert (j >= ex['bbox'][:2] - 1).all() and (j <= ex['bbox'][2:] + 1).all()
    # Pelvis in front of the camera, 17-joint pelvis near the 29-joint one.
    assert ex['joint_root'][2] > 1.0
    assert np.linalg.norm(ex['joints17_cam'][0] - ex['joint_root']) < 0.1
    features.check_example(ex, synthetic.NATIVE_JOINTS)


def test_labels_match_body_model(generator, examples):
  """Recomputes twist, 29 and 17 joints from the stored theta and beta."""
  import jax  # pylint: disable=g-import-not-at-top
  from hybrik_jax.body import geometry, ik, kinematics, smpl  # pylint: disable=g-import-not-at-top

  @jax.jit
  def labels(model, theta, beta):
    rot = geometry.axis_angle_to_matrix(theta)
    rest29 = smpl.rest_joints29(model, beta)
    posed, _ = kinematics.forward_kinematics(rot, rest29)
    j17 = smpl.forward(model, beta, theta).joints_h36m
    return ik.twist_angles(rot, rest29), posed, j17

  theta = np.stack([e['smpl_theta'] for e in examples.values()])
  beta = np.stack([e['smpl_beta'] for e in examples.values()])
  twist, posed, j17 = (np.asarray(x) for x in labels(generator.model, theta, beta))
  got = np.stack([e['smpl_twist'] for e in examples.values()])
  np.testing.assert_allclose(got, twist, atol=1e-4)
  cam = np.stack([e['joints29_cam'] for e in examples.values()])
  np.testing.assert_allclose(cam - cam[:, :1], posed - posed[:, :1], atol=1e-4)
  cam17 = np.stack([e['joints17_cam'] for e in examples.values()])
  np.testing.assert_allclose(cam17 - cam[:, :1], j17 - posed[:, :1], atol=1e-4)


def test_pelvis_projects_onto_the_body(generator):
  cfg = generator.config
  for index in range(4):
    scene = synthetic.sample_scene(index, cfg, stream=1)
    body = {k: v[0] for k, v in generator.pose_bodies([scene]).items()}
    ex, face_id = generator.make_example(index, scene, body, 'validation',
                                         return_face_id=True)
    u, v = np.rint(ex['joints29_img'][0]).astype(int)
    assert face_id[v, u] >= 0, (index, u, v)
    # Body pixels are exactly where the body's box is: mask inside bbox.
    ys, xs = np.nonzero(face_id >= 0)
    x0, y0, x1, y1 = ex['bbox']
    assert xs.min() >= np.floor(x0) and xs.max() <= np.ceil(x1)
    assert ys.min() >= np.floor(y0) and ys.max() <= np.ceil(y1)
    assert (face_id >= 0).mean() > 0.03  # the synthetic body is slender


def test_same_index_same_example(generator, examples):
  again = dict(generator.generate([2, 0], 'train'))
  for i in (0, 2):
    np.testing.assert_array_equal(again[i]['image'], examples[i]['image'])
    for k in ('joints29_cam', 'smpl_theta', 'smpl_beta', 'intrinsics', 'smpl_twist'):
      np.testing.assert_array_equal(again[i][k], examples[i][k])
  other = dict(generator.generate([0], 'validation'))
  assert not np.allclose(other[0]['smpl_beta'], examples[0]['smpl_beta'])
  assert not np.array_equal(examples[0]['image'], examples[1]['image'])


def test_pose_sampler_within_limits():
  rng = np.random.default_rng(0)
  from scipy.spatial import transform  # pylint: disable=g-import-not-at-top
  lo, hi = synthetic.POSE_LIMITS[..., 0], synthetic.POSE_LIMITS[..., 1]
  assert (synthetic.NEUTRAL_POSE >= lo).all() and (synthetic.NEUTRAL_POSE <= hi).all()
  for scale in np.linspace(0.0, 1.0, 20):
    pose = synthetic.sample_pose(rng, scale)
    assert pose.shape == (24, 3)
    np.testing.assert_array_equal(pose[0], 0)
    # Euler 'XYZ' angles are unique while the middle (y) angle stays within
    # +-90 degrees: check those joints (all but shoulders and elbows).
    lo, hi = synthetic.POSE_LIMITS[..., 0], synthetic.POSE_LIMITS[..., 1]
    ok = np.maximum(np.abs(lo[:, 1]), np.abs(hi[:, 1])) < np.pi / 2 - 1e-3
    ok[0] = False
    assert ok.sum() == 19
    euler = transform.Rotation.from_rotvec(pose[ok]).as_euler('XYZ')
    lo, hi = lo[ok], hi[ok]
    assert (euler >= lo - 1e-6).all() and (euler <= hi + 1e-6).all()
  # Scale 0 is the relaxed stance: the arms hang down (left arm, bone +x, turned to -y).
  neutral = transform.Rotation.from_rotvec(synthetic.sample_pose(rng, 0.0)[16])
  assert neutral.apply([1.0, 0.0, 0.0])[1] < -0.8


def test_backgrounds_vary_and_are_deterministic():
  imgs = [synthetic.make_background(s, 32) for s in range(12)]
  for im in imgs:
    assert im.shape == (32, 32, 3) and im.dtype == np.uint8
  np.testing.assert_array_equal(imgs[3], synthetic.make_background(3, 32))
  stds = [im.astype(float).std(axis=(0, 1)).sum() for im in imgs]
  assert min(stds) < 1e-6 < max(stds)  # some solid, some textured


# ------------------------------------------------------------------ prepare_data


def test_prepare_data_builds_both_formats(tmp_path):
  from hybrik_jax import prepare_data  # pylint: disable=g-import-not-at-top
  for fmt, args in (('tfrecord', ['--dataset', 'synthetic_humans', '--config', 'tiny']),
                    ('array_record', ['--dataset', 'synthetic_humans/tiny'])):
    data_dir = tmp_path / fmt
    rc = prepare_data.main(args + ['--data_dir', str(data_dir), '--file_format', fmt])
    assert rc == 0
    builder = tfds.builder('synthetic_humans/tiny', data_dir=str(data_dir))
    assert builder.info.splits['train'].num_examples == 8
    assert builder.info.splits['validation'].num_examples == 4
    assert builder.info.file_format.value == fmt
  source = tfds.data_source('synthetic_humans/tiny', split='validation',
                            data_dir=str(tmp_path / 'array_record'))
  ex = source[2]
  assert ex['image'].shape == (SIZE, SIZE, 3)
  ref = dict(synthetic.SyntheticGenerator(
      synthetic.SyntheticConfig(image_size=SIZE)).generate([2], 'validation'))[2]
  np.testing.assert_allclose(ex['joints29_cam'], ref['joints29_cam'], atol=1e-6)
  assert ex['image_file'] == b'synthetic_humans/validation/00000002'


def test_prepare_data_missing_builder_is_clear(tmp_path, capsys):
  from hybrik_jax import prepare_data  # pylint: disable=g-import-not-at-top
  rc = prepare_data.main(['--dataset', 'no_such_set', '--data_dir', str(tmp_path)])
  assert rc == 1
  err = capsys.readouterr().err
  assert 'tfds_builders/no_such_set/' in err


def test_prepare_data_manual_dataset_needs_manual_dir(tmp_path, capsys):
  from hybrik_jax import prepare_data  # pylint: disable=g-import-not-at-top
  rc = prepare_data.main(['--dataset', 'h36m', '--data_dir', str(tmp_path)])
  assert rc == 1
  err = capsys.readouterr().err
  assert '--manual_dir' in err and 'tfds_builders/h36m/README.md' in err
  missing = tmp_path / 'nowhere'
  rc = prepare_data.main(['--dataset', 'h36m', '--data_dir', str(tmp_path),
                          '--manual_dir', str(missing)])
  assert rc == 1
  assert str(missing) in capsys.readouterr().err


def _render_pose(generator, pose, colors, size=96, mirror=False):
  """Renders `pose` (betas 0) at a fixed camera whose principal point is the
  image centre, so that x -> -x in the camera is pixel x -> size - 1 - x."""
  scene = synthetic.Scene(betas=np.zeros(10, np.float32), pose=pose.astype(np.float32),
                          focal=0.0, fill=0.0, jitter=np.zeros(2),
                          light_dir=np.zeros(3), background_seed=0)
  body = generator.pose_bodies([scene])
  root = np.array([-0.05 if mirror else 0.05, 0.1, 3.0])
  verts = body['vertices'][0] - body['joints29'][0][0] + root
  K = np.array([[120.0, 0.0, (size - 1) / 2], [0.0, 120.0, (size - 1) / 2], [0, 0, 1.0]])
  light = np.array([-0.4 if mirror else 0.4, -0.5, -1.0])
  rgb, _, _ = render.render_mesh(verts, np.asarray(generator.model.faces), K,
                                 (size, size), colors=colors, light_dir=light)
  return rgb.astype(np.float32)


def test_flipped_render_is_the_render_of_the_mirrored_body(generator):
  # What flip augmentation and the flip test assume: the mirror image of a
  # render shows the mirrored pose (augment.flip_theta) as it would be rendered.
  # One colour per part breaks that (the left arm's colour lands on the right
  # arm); synthetic.body_colors keeps it.
  rng = np.random.default_rng(3)
  pose = synthetic.sample_pose(rng, 0.8)
  pose[0] = (transform.Rotation.from_euler('x', np.pi)
             * transform.Rotation.from_euler('y', 0.7)).as_rotvec()
  mirrored = augment.flip_theta(pose)
  errors = {}
  for name, colors in [('body_colors', synthetic.body_colors(generator.model)),
                       ('part_colors', render.part_colors(
                           np.asarray(generator.model.lbs_weights)))]:
    flipped = _render_pose(generator, pose, colors)[:, ::-1]
    other = _render_pose(generator, mirrored, colors, mirror=True)
    errors[name] = np.abs(flipped - other).mean()
  assert errors['body_colors'] < 1.0, errors  # grey levels, mostly edge pixels
  assert errors['part_colors'] > 5 * errors['body_colors'], errors


def test_body_colors_tell_front_from_back(generator):
  colors = synthetic.body_colors(generator.model)
  parts = render.part_ids(np.asarray(generator.model.lbs_weights))
  normals = render.vertex_normals(np.asarray(generator.model.v_template),
                                  np.asarray(generator.model.faces))
  for part in (3, 9, 15):  # spine1, spine3, head
    front = colors[(parts == part) & (normals[:, 2] > 0.5)]
    back = colors[(parts == part) & (normals[:, 2] < -0.5)]
    assert len(front) and len(back)
    assert np.linalg.norm(front.mean(0) - back.mean(0)) > 0.2
  for left, right in [(16, 17), (18, 19), (4, 5)]:  # shoulders, elbows, knees
    np.testing.assert_array_equal(np.unique(colors[parts == left], axis=0),
                                  np.unique(colors[parts == right], axis=0))
