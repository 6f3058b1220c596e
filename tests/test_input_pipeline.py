"""Tests of hybrik_jax.data.input_pipeline on small in-memory examples."""

import collections
import copy
import json

import chex
import numpy as np
import pytest

from hybrik_jax.body import constants
from hybrik_jax.data import augment
from hybrik_jax.data import input_pipeline

INPUT_SIZE = (64, 64)
CROP = 160


def _project(points, k):
  uvw = points @ k.T
  return uvw[:, :2] / uvw[:, 2:]


def make_example(seed: int, *, has_3d: bool = True, has_smpl: bool = True,
                 blob_joint: int | None = None, invalid=()) -> dict:
  """A stored example with the common fields (data/features.py), made up.

  A person 1.6 m tall ~4 m away seen by a 250 px focal camera in a CROP px crop;
  the image is noise, or black with a white 3x3 blob on joint `blob_joint`.
  """
  rng = np.random.default_rng(seed)
  k = np.array([[250.0, 0, CROP / 2 - 3], [0, 250.0, CROP / 2 + 2], [0, 0, 1]])
  root = np.array([rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1), rng.uniform(3.8, 4.2)])
  offsets = rng.uniform([-0.4, -0.8, -0.3], [0.4, 0.8, 0.3], size=(29, 3))
  offsets[0] = 0.0
  cam = root + offsets
  img2d = _project(cam, k)
  valid = np.ones(29, np.float32)
  valid[list(invalid)] = 0.0
  bbox = np.concatenate([img2d.min(0), img2d.max(0)])
  if blob_joint is None:
    image = rng.integers(0, 256, size=(CROP, CROP, 3), dtype=np.uint8)
  else:
    image = np.zeros((CROP, CROP, 3), np.uint8)
    x, y = np.round(img2d[blob_joint]).astype(int)
    image[y - 1:y + 2, x - 1:x + 2] = 255
  twist_angle = rng.uniform(-np.pi, np.pi, size=23)
  j17 = root + rng.uniform(-0.5, 0.5, size=(17, 3))
  return {
      'image': image,
      'image_file': b'fake.jpg',
      'crop_offset': np.zeros(2, np.int32),
      'bbox': bbox.astype(np.float32),
      'intrinsics': (k if has_3d else np.zeros((3, 3))).astype(np.float32),
      'joint_root': (root if has_3d else np.zeros(3)).astype(np.float32),
      'depth_factor': np.float32(2.2),
      'joints29_cam': (cam if has_3d else np.zeros((29, 3))).astype(np.float32),
      'joints29_img': img2d.astype(np.float32),
      'joints29_valid': valid,
      'joints17_cam': (j17 if has_3d else np.zeros((17, 3))).astype(np.float32),
      'joints17_valid': np.full(17, float(has_3d), np.float32),
      'smpl_theta': (rng.normal(0, 0.4, size=(24, 3)) * has_smpl).astype(np.float32),
      'smpl_beta': (rng.normal(size=10) * has_smpl).astype(np.float32),
      'smpl_twist': (np.stack([np.cos(twist_angle), np.sin(twist_angle)], -1)
                     * has_smpl).astype(np.float32),
      'smpl_valid': np.float32(has_smpl),
      'twist_valid': np.full(23, float(has_smpl), np.float32),
      'gender': np.int32(0),
      'native_joints_img': img2d[:17].astype(np.float32),
      'native_joints_cam': cam[:17].astype(np.float32),
      'native_joints_valid': np.ones(17, np.float32),
  }


class ListSource:
  """A random-access source over a list (what grain needs)."""

  def __init__(self, examples):
    self._examples = list(examples)

  def __len__(self):
    return len(self._examples)

  def __getitem__(self, i):
    return self._examples[int(i)]


def _aug(**kw):
  return augment.Augmentation(**kw)


@pytest.mark.parametrize('aug', [
    _aug(),
    _aug(scale=1.2, rotation=25.0),
    _aug(flip=True),
    _aug(scale=0.8, rotation=-40.0, flip=True),
])
def test_targets_map_back_to_source_joints(aug):
  ex = make_example(0)
  out = input_pipeline.preprocess_example(ex, input_size=INPUT_SIZE, scale_mult=1.25,
                                          dataset_id=0, augmentation=aug)
  back = augment.uv_to_image(out['target_uvd_29'][:, :2], out['trans_inv'], INPUT_SIZE)
  expected = ex['joints29_img'].astype(np.float64)
  if aug.flip:
    expected = augment.flip_points_2d(expected, CROP, constants.FLIP_PERM_29)
  w = out['target_uvd_weight_29'][:, 0] > 0
  assert w.sum() >= 20
  np.testing.assert_array_less(np.abs(back - expected)[w], 1.0)
  # Depth: d * depth_factor + z_root is the joint's z.
  z = ex['joints29_cam'][:, 2]
  if aug.flip:
    z = z[list(constants.FLIP_PERM_29)]
  d_back = out['target_uvd_29'][:, 2] * 2.2 + ex['joint_root'][2]
  np.testing.assert_allclose(d_back[w], z[w], atol=1e-5)


@pytest.mark.parametrize('flip', [False, True])
def test_image_content_follows_targets(flip):
  """A blob drawn on the left wrist appears where the (flipped) target says."""
  joint = constants.SMPL29_JOINT_NAMES.index('left_wrist')
  ex = make_example(3, blob_joint=joint)
  aug = _aug(scale=1.1, rotation=20.0, flip=flip)
  out = input_pipeline.preprocess_example(ex, input_size=INPUT_SIZE, scale_mult=1.25,
                                          dataset_id=0, augmentation=aug)
  target_joint = constants.FLIP_PERM_29[joint] if flip else joint
  img = augment.denormalize_image(out['image']).astype(np.float32).sum(-1)
  ys, xs = np.nonzero(img > 0.5 * img.max())
  found = np.array([np.average(xs, weights=img[ys, xs]), np.average(ys, weights=img[ys, xs])])
  uv = out['target_uvd_29'][target_joint, :2]
  expected = (uv + 0.5) * np.array(INPUT_SIZE[::-1])
  np.testing.assert_array_less(np.abs(found - expected), 1.0)


def test_flip_twice_is_identity():
  ex = make_example(1)
  np.testing.assert_allclose(augment.flip_theta(augment.flip_theta(ex['smpl_theta'])),
                             ex['smpl_theta'])
  t, w = augment.flip_twist(*augment.flip_twist(ex['smpl_twist'], ex['twist_valid']))
  np.testing.assert_allclose(t, ex['smpl_twist'])
  np.testing.assert_allclose(w, ex['twist_valid'])
  perm = constants.FLIP_PERM_29
  j2 = augment.flip_points_2d(augment.flip_points_2d(ex['joints29_img'], CROP, perm), CROP, perm)
  np.testing.assert_allclose(j2, ex['joints29_img'], atol=1e-5)
  j3 = augment.flip_points_3d(augment.flip_points_3d(ex['joints29_cam'], perm), perm)
  np.testing.assert_allclose(j3, ex['joints29_cam'])
  k = ex['intrinsics']
  np.testing.assert_allclose(augment.flip_intrinsics(augment.flip_intrinsics(k, CROP), CROP), k)


def test_flipped_targets_are_consistent_with_flipped_camera():
  """After a flip, projecting target xyz with K and the root gives the uv targets."""
  ex = make_example(2)
  out = input_pipeline.preprocess_example(ex, input_size=INPUT_SIZE, scale_mult=1.25,
                                          dataset_id=0, augmentation=_aug(flip=True))
  xyz = out['target_xyz_24'] + ex['joints29_cam'][0] * np.array([-1, 1, 1])
  np.testing.assert_allclose(out['joint_root'], ex['joint_root'] * np.array([-1, 1, 1]))
  px = _project(xyz.astype(np.float64), out['intrinsics'].astype(np.float64))
  back = augment.uv_to_image(out['target_uvd_29'][:24, :2], out['trans_inv'], INPUT_SIZE)
  np.testing.assert_allclose(back, px, atol=1e-3)


def test_smpl_targets_and_flip():
  ex = make_example(4)
  out = input_pipeline.preprocess_example(ex, input_size=INPUT_SIZE, scale_mult=1.25,
                                          dataset_id=0, augmentation=_aug(flip=True))
  quat = out['target_theta']
  np.testing.assert_allclose(np.linalg.norm(quat, axis=-1), 1.0, rtol=1e-5)
  assert np.all(quat[:, 0] >= 0)
  # Left hip (1) of the flipped pose is the mirrored right hip (2).
  aa = ex['smpl_theta'][2] * np.array([1, -1, -1])
  angle = np.linalg.norm(aa)
  np.testing.assert_allclose(quat[1], np.concatenate([[np.cos(angle / 2)],
                                                      np.sin(angle / 2) * aa / angle]),
                             atol=1e-5)
  # Twist of joint 16 (index 15) becomes that of joint 17 (index 16), sin negated.
  np.testing.assert_allclose(out['target_twist'][15],
                             ex['smpl_twist'][16] * np.array([1, -1]), atol=1e-6)
  np.testing.assert_allclose(out['target_theta_weight'], 1.0)
  np.testing.assert_allclose(out['target_twist_weight'], 1.0)
  np.testing.assert_allclose(out['target_beta'], ex['smpl_beta'])


def test_weights_zero_where_source_joints_invalid():
  invalid = (3, 7, 27)
  ex = make_example(5, invalid=invalid)
  out = input_pipeline.preprocess_example(ex, input_size=INPUT_SIZE, scale_mult=1.25,
                                          dataset_id=0)
  w = out['target_uvd_weight_29']
  np.testing.assert_array_equal(w[list(invalid)], 0.0)
  np.testing.assert_array_equal(out['target_uvd_29'][list(invalid)], 0.0)
  np.testing.assert_array_equal(out['target_xyz_weight_24'][[3, 7]], 0.0)
  assert np.all(w[[0, 1, 2, 4]] == 1.0)
  # Flipped: the weights move with the joints (7 left ankle -> 8 right ankle).
  out = input_pipeline.preprocess_example(ex, input_size=INPUT_SIZE, scale_mult=1.25,
                                          dataset_id=0, augmentation=_aug(flip=True))
  np.testing.assert_array_equal(out['target_uvd_weight_29'][[3, 8, 28]], 0.0)
  assert np.all(out['target_uvd_weight_29'][7] == 1.0)


def test_2d_only_example_has_no_depth_or_smpl_weight():
  ex = make_example(6, has_3d=False, has_smpl=False)
  out = input_pipeline.preprocess_example(ex, input_size=INPUT_SIZE, scale_mult=1.25,
                                          dataset_id=1, augmentation=_aug(flip=True))
  w = out['target_uvd_weight_29']
  assert np.all(w[:, :2] == 1.0)
  np.testing.assert_array_equal(w[:, 2], 0.0)
  np.testing.assert_array_equal(out['target_xyz_weight_24'], 0.0)
  np.testing.assert_array_equal(out['target_theta_weight'], 0.0)
  np.testing.assert_array_equal(out['target_twist_weight'], 0.0)
  np.testing.assert_array_equal(out['target_smpl_weight'], 0.0)
  np.testing.assert_array_equal(out['intrinsics'], 0.0)
  np.testing.assert_array_equal(out['joints17_valid'], 0.0)


def test_joints_outside_the_input_get_zero_weight():
  ex = make_example(7)
  # Zoom in: a quarter of the box; the extremities fall outside.
  out = input_pipeline.preprocess_example(ex, input_size=INPUT_SIZE, scale_mult=0.4,
                                          dataset_id=0)
  uv = out['target_uvd_29'][:, :2]
  outside = np.any(np.abs(uv) > 0.5, axis=-1)
  assert outside.any() and (~outside).any()
  np.testing.assert_array_equal(out['target_uvd_weight_29'][outside], 0.0)


def test_preprocess_image_matches_eval_preprocessing():
  ex = make_example(8)
  inp, trans_inv = input_pipeline.preprocess_image(ex['image'], ex['bbox'], INPUT_SIZE)
  out = input_pipeline.preprocess_eval(ex, input_size=INPUT_SIZE, scale_mult=1.25)
  np.testing.assert_allclose(inp, out['image'], atol=1e-5)
  np.testing.assert_allclose(trans_inv, out['trans_inv'], atol=1e-5)
  assert inp.shape == INPUT_SIZE + (3,) and inp.dtype == np.float32
  # The box centre maps to the input centre.
  centre = np.array([[(ex['bbox'][0] + ex['bbox'][2]) / 2, (ex['bbox'][1] + ex['bbox'][3]) / 2]])
  np.testing.assert_allclose(augment.apply_affine(trans_inv, [[32.0, 32.0]]), centre, atol=1e-3)


_RAW_CONFIG = {'train_datasets': (('h36m', 0.4), ('coco_keypoints', 0.5), ('mpi_inf_3dhp', 0.1)),
               'read_threads': 2}


def _config(**kw):
  """A DataConfig from config.data-style fields (the trainer's edge)."""
  return input_pipeline.DataConfig.from_config(dict(_RAW_CONFIG, **kw))


def _sources(n=(7, 5, 3)):
  return {
      'h36m': ListSource(make_example(100 + i) for i in range(n[0])),
      'coco_keypoints': ListSource(make_example(200 + i, has_3d=False, has_smpl=False)
                         for i in range(n[1])),
      'mpi_inf_3dhp': ListSource(make_example(300 + i, has_smpl=False) for i in range(n[2])),
  }


def _train_iter(seed=0, sources=None, **kw):
  return input_pipeline.create_train_iterator(
      _config(**kw), global_batch_size=4, seed=seed, input_size=INPUT_SIZE,
      data_sources=sources or _sources(), shard_index=0, shard_count=1)


def test_batches_have_the_documented_fields_and_shapes():
  batch = next(_train_iter())
  b, (h, w) = 4, INPUT_SIZE
  expected = {
      'image': (b, h, w, 3), 'target_uvd_29': (b, 29, 3), 'target_uvd_weight_29': (b, 29, 3),
      'target_xyz_24': (b, 24, 3), 'target_xyz_weight_24': (b, 24, 3),
      'target_theta': (b, 24, 4), 'target_theta_weight': (b, 24, 4), 'target_beta': (b, 10),
      'target_smpl_weight': (b, 1), 'target_twist': (b, 23, 2),
      'target_twist_weight': (b, 23, 2), 'trans_inv': (b, 2, 3), 'intrinsics': (b, 3, 3),
      'joint_root': (b, 3), 'depth_factor': (b, 1), 'joints17_cam': (b, 17, 3),
      'joints17_valid': (b, 17), 'bbox': (b, 4), 'dataset_id': (b,), 'mask': (b,)}
  assert set(batch) == set(expected) == set(input_pipeline.BATCH_KEYS)
  for key, shape in expected.items():
    assert batch[key].shape == shape, key
    want = np.int32 if key == 'dataset_id' else np.float32
    assert batch[key].dtype == want, key
    assert np.all(np.isfinite(batch[key])), key


def test_same_seed_same_batches_other_seed_different():
  a = [next(it) for it in [_train_iter(seed=3)] for _ in range(3)]
  b = [next(it) for it in [_train_iter(seed=3)] for _ in range(3)]
  c = next(_train_iter(seed=4))
  for x, y in zip(a, b):
    chex.assert_trees_all_equal(x, y)
  assert not np.array_equal(a[0]['image'], c['image'])


class DecodingSource(ListSource):
  """A ListSource that hands out fresh copies (as decoding does) and counts reads."""

  def __init__(self, examples):
    super().__init__(examples)
    self.reads = 0

  def __getitem__(self, i):
    self.reads += 1
    return copy.deepcopy(super().__getitem__(i))


def test_decoded_cache_reads_each_example_once_and_gives_the_same_batches():
  def sources():
    return {k: DecodingSource(v._examples) for k, v in _sources().items()}
  plain, counted = sources(), sources()
  kept = {k: input_pipeline.DecodedCache(v) for k, v in sources().items()}
  a = _train_iter(seed=2, sources=plain)
  b = _train_iter(seed=2, sources=kept)
  c = _train_iter(seed=2, sources=counted, cache_decoded=True)
  for _ in range(300):  # 1200 examples: each of the 15 read about 80 times
    batch = next(a)
    chex.assert_trees_all_equal(batch, next(b))
    chex.assert_trees_all_equal(batch, next(c))
  for it in (a, b, c):
    it.close()
  assert sum(s.reads for s in plain.values()) >= 1200
  for name, source in counted.items():
    # Once per example (a second reader thread may race the first read).
    assert len(source) <= source.reads <= 2 * len(source), name
  # Preprocessing never wrote into the kept examples.
  fresh = _sources()
  for name, source in kept.items():
    for i in range(len(source)):
      chex.assert_trees_all_equal(source[i], fresh[name][i])


def test_restored_iterator_gives_the_same_next_batch():
  it = _train_iter(seed=5)
  for _ in range(3):
    next(it)
  state = it.get_state()
  state = json.loads(json.dumps(state, default=lambda o: o.item()))  # as a checkpoint would
  expected = [next(it), next(it)]
  restored = _train_iter(seed=5)
  restored.set_state(state)
  for want in expected:
    chex.assert_trees_all_equal(next(restored), want)


def test_mixture_follows_the_weights():
  """Counts of dataset_id over many samples follow 0.4 / 0.5 / 0.1.

  Only the dataset choice is tested: the mixture is built over tiny sources with
  tiny images so that 2000 samples take little time.
  """
  it = input_pipeline.create_train_iterator(
      _config(occlusion=False), global_batch_size=50, seed=0, input_size=(8, 8),
      data_sources=_sources((3, 2, 2)), shard_index=0, shard_count=1)
  counts = collections.Counter()
  for _ in range(40):
    counts.update(next(it)['dataset_id'].tolist())
  total = sum(counts.values())
  ids = input_pipeline.DATASET_IDS
  for name, weight in (('h36m', 0.4), ('coco_keypoints', 0.5), ('mpi_inf_3dhp', 0.1)):
    assert abs(counts[ids[name]] / total - weight) < 0.02, (name, counts)


def test_hosts_read_disjoint_shards():
  sources = {'h36m': ListSource(make_example(i) for i in range(8))}
  seen = []
  for host in range(2):
    it = input_pipeline.create_train_iterator(
        _config(train_datasets=(('h36m', 1.0),), occlusion=False, flip_prob=0.0,
                rot_prob=0.0, scale_factor=0.0, color_factor=0.0),
        global_batch_size=8, seed=0, input_size=INPUT_SIZE, data_sources=sources,
        shard_index=host, shard_count=2)
    roots = set()
    for _ in range(4):
      batch = next(it)
      assert batch['image'].shape[0] == 4
      roots |= {round(float(r), 6) for r in batch['joint_root'][:, 2]}
    # Host h reads examples h, h + 2, ... only.
    shard = {round(float(sources['h36m'][i]['joint_root'][2]), 6) for i in range(host, 8, 2)}
    assert roots <= shard and len(roots) >= 3
    seen.append(roots)
  assert not seen[0] & seen[1]


def test_augmentation_is_applied_in_training():
  it = _train_iter(seed=0, sources={'h36m': ListSource([make_example(9)])},
                   train_datasets=(('h36m', 1.0),))
  batch = next(it)
  # The same example four times, four different augmentations.
  assert len({b.tobytes() for b in batch['trans_inv']}) == 4
  assert len({float(b.sum()) for b in batch['image']}) == 4


def test_eval_iterator_pads_and_masks():
  source = ListSource(make_example(i) for i in range(7))
  assert input_pipeline.eval_num_batches(7, 4, 1) == 2
  batches = list(input_pipeline.create_eval_iterator(
      input_pipeline.DataConfig(), global_batch_size=4, input_size=INPUT_SIZE, dataset='pw3d', split='test',
      data_source=source, shard_index=0, shard_count=1))
  assert len(batches) == 2
  mask = np.concatenate([b['mask'] for b in batches])
  np.testing.assert_array_equal(mask, [1, 1, 1, 1, 1, 1, 1, 0])
  assert np.all(np.concatenate([b['dataset_id'] for b in batches]) == 3)
  # No augmentation: equal to preprocess_eval of the same example.
  want = input_pipeline.preprocess_eval(source[5], input_size=INPUT_SIZE, scale_mult=1.25)
  np.testing.assert_allclose(batches[1]['image'][1], want['image'])
  # Two hosts: the same number of batches each, together every example once.
  roots = []
  for host in range(2):
    bs = list(input_pipeline.create_eval_iterator(
        input_pipeline.DataConfig(), global_batch_size=4, input_size=INPUT_SIZE, dataset='pw3d', split='test',
        data_source=source, shard_index=host, shard_count=2))
    assert len(bs) == input_pipeline.eval_num_batches(7, 4, 2) == 2
    for b in bs:
      roots += [float(r) for r, m in zip(b['joint_root'][:, 2], b['mask']) if m > 0]
  assert sorted(roots) == sorted(float(source[i]['joint_root'][2]) for i in range(7))


def test_config_errors_are_clear():
  with pytest.raises(ValueError, match='train_datasets'):
    input_pipeline.create_train_iterator(input_pipeline.DataConfig(), global_batch_size=4, seed=0,
                                         input_size=INPUT_SIZE, shard_index=0, shard_count=1)
  with pytest.raises(ValueError, match='divisible'):
    input_pipeline.create_train_dataset(
        _config(), global_batch_size=3, seed=0, input_size=INPUT_SIZE,
        data_sources=_sources(), shard_index=0, shard_count=2)


def test_worker_process_gives_the_same_batches_and_restores():
  """worker_count=1 yields the worker_count=0 sequence; states restore across both."""
  kw = dict(global_batch_size=2, seed=1, input_size=(16, 16), data_sources=_sources((3, 2, 2)),
            shard_index=0, shard_count=1)
  local = input_pipeline.create_train_iterator(_config(), **kw)
  want = [next(local) for _ in range(4)]
  it = input_pipeline.create_train_iterator(_config(), worker_count=1, **kw)
  try:
    chex.assert_trees_all_equal(next(it), want[0])
    chex.assert_trees_all_equal(next(it), want[1])
    state = json.loads(json.dumps(it.get_state()))
    # Restoring in place (workers restarted) continues the sequence.
    it.set_state(state)
    chex.assert_trees_all_equal(next(it), want[2])
  finally:
    it.close()
  # A state from one worker count restores with another.
  restored = input_pipeline.create_train_iterator(_config(), worker_count=0, **kw)
  restored.set_state(state)
  chex.assert_trees_all_equal(next(restored), want[2])
  chex.assert_trees_all_equal(next(restored), want[3])
  with pytest.raises(ValueError, match='next_batch'):
    restored.set_state({'next_index': 3})


def test_depth_is_relative_to_the_labelled_pelvis_else_the_root():
  ex = make_example(10)
  ex['joint_root'] = ex['joint_root'] + np.float32([0.0, 0.0, 0.05])
  out = input_pipeline.preprocess_eval(ex, input_size=INPUT_SIZE)
  z = ex['joints29_cam'][:, 2]
  np.testing.assert_allclose(out['target_uvd_29'][:, 2], (z - z[0]) / 2.2, atol=1e-6)
  ex['joints29_valid'][0] = 0.0
  out = input_pipeline.preprocess_eval(ex, input_size=INPUT_SIZE)
  w = out['target_uvd_weight_29'][:, 2] > 0
  assert not w[0] and w[1:].all()
  np.testing.assert_allclose(out['target_uvd_29'][w, 2],
                             (z[w] - ex['joint_root'][2]) / 2.2, atol=1e-6)
  # Without a labelled pelvis the root-relative xyz targets are unlabelled.
  np.testing.assert_array_equal(out['target_xyz_weight_24'], 0.0)


def test_reads_a_locked_config_dict():
  import ml_collections  # pylint: disable=g-import-not-at-top
  cfg = ml_collections.ConfigDict(dict(_RAW_CONFIG, scale_mult_per_dataset={'h36m': 1.0, 'coco_keypoints': 1.5},
                                          occlusion=False, rot_prob=0.0))
  cfg.lock()
  data = input_pipeline.DataConfig.from_config(cfg)
  assert data.scale_mult_for('coco_keypoints') == 1.5
  assert data.scale_mult_for('mpi_inf_3dhp') == 1.25
  assert data.augmentation.rot_prob == 0.0 and not data.augmentation.occlusion
  # Defaults live in augment.AugmentConfig; the trainer's base config has them.
  from hybrik_jax.training import train_config  # pylint: disable=g-import-not-at-top
  assert (input_pipeline.DataConfig.from_config(train_config.base_config().data)
          .augmentation == augment.AugmentConfig())
  with pytest.raises(ValueError, match='unknown config.data fields'):
    input_pipeline.DataConfig.from_config({'rot_probability': 0.5})
  with pytest.raises(TypeError, match='DataConfig.from_config'):
    input_pipeline.create_train_iterator(cfg, global_batch_size=4, seed=0,
                                         input_size=INPUT_SIZE)
  batch = next(input_pipeline.create_train_iterator(
      data, global_batch_size=4, seed=0, input_size=INPUT_SIZE, data_sources=_sources(),
      shard_index=0, shard_count=1))
  assert batch['image'].shape == (4,) + INPUT_SIZE + (3,)


def test_orbax_checkpoint_restores_the_iterator(tmp_path):
  """Through hybrik_jax.checkpoints.train_checkpoints (grain's Orbax handler), as the trainer does."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from hybrik_jax.checkpoints import train_checkpoints  # pylint: disable=g-import-not-at-top
  kw = dict(global_batch_size=2, seed=1, input_size=(16, 16), data_sources=_sources((3, 2, 2)),
            shard_index=0, shard_count=1)
  it = input_pipeline.create_train_iterator(_config(), **kw)
  for _ in range(3):
    next(it)
  manager = train_checkpoints.create_checkpoint_manager(tmp_path, steps_per_epoch=10)
  train_checkpoints.save_train_state(manager, 3, {'x': jnp.zeros(2)}, data_iterator=it)
  manager.wait_until_finished()
  want = next(it)
  restored = input_pipeline.create_train_iterator(_config(), **kw)
  train_checkpoints.restore_train_state(
      train_checkpoints.create_checkpoint_manager(tmp_path, steps_per_epoch=10),
      {'x': jnp.zeros(2)}, data_iterator=restored)
  chex.assert_trees_all_equal(next(restored), want)


def test_missing_tfds_dataset_is_a_clear_error(tmp_path):
  with pytest.raises(ValueError, match='prepare_data'):
    input_pipeline.open_data_source('synthetic_humans/tiny', 'train', str(tmp_path))
  assert not any(tmp_path.iterdir())  # nothing was built


def test_reads_a_prepared_array_record_dataset(tmp_path):
  """open_data_source + the train iterator on a TFDS builder written here."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from hybrik_jax.data import features  # pylint: disable=g-import-not-at-top

  class InputPipelineTestData(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version('1.0.0')

    def _info(self):
      return tfds.core.DatasetInfo(builder=self, features=features.example_features(17))

    def _split_generators(self, dl_manager):
      del dl_manager
      return {'train': self._generate_examples()}

    def _generate_examples(self):
      for i in range(3):
        ex = make_example(400 + i)
        ex['image'] = features.encode_jpeg(ex['image'])
        ex['image_file'] = f'{i}.jpg'
        yield i, features.check_example(ex, num_native_joints=17)

  InputPipelineTestData(data_dir=str(tmp_path),
                        file_format='array_record').download_and_prepare()
  source = input_pipeline.open_data_source('input_pipeline_test_data', 'train',
                                           str(tmp_path))
  assert len(source) == 3
  assert source[0]['image'].shape == (CROP, CROP, 3)
  np.testing.assert_allclose(source[1]['joints29_img'], make_example(401)['joints29_img'])
  it = input_pipeline.create_train_iterator(
      _config(train_datasets=(('input_pipeline_test_data', 1.0),), data_dir=str(tmp_path)),
      global_batch_size=2, seed=0, input_size=INPUT_SIZE, shard_index=0, shard_count=1)
  batch = next(it)
  assert batch['image'].shape == (2,) + INPUT_SIZE + (3,)
  assert np.all(batch['dataset_id'] == input_pipeline.UNKNOWN_DATASET_ID)
