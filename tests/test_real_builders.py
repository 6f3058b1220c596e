"""Bad input and geometry checks of the real-dataset builders (h36m, pw3d, mpi_inf_3dhp,
coco_keypoints).

Each builder's own DatasetBuilderTestCase (tfds_builders/<name>/) builds its
dummy_data as is (TFRecord). Here copies of the dummy data are damaged (a
corrupt or missing frame, NaN / behind-camera joints, a subject outside the
protocol) and built as ArrayRecord; the tests check that the damage is skipped
and counted, or masked, and that labels and crops agree with the source files.
"""

import json
import math
import pathlib
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from hybrik_jax.data import features
from tfds_builders import real_data_common as common
from tfds_builders.coco_keypoints import coco_keypoints_dataset_builder
from tfds_builders.h36m import h36m_dataset_builder
from tfds_builders.mpi_inf_3dhp import mpi_inf_3dhp_dataset_builder
from tfds_builders.pw3d import pw3d_dataset_builder

_BUILDERS = pathlib.Path(__file__).resolve().parents[1] / 'tfds_builders'
_MODULES = {
    'h36m': h36m_dataset_builder,
    'pw3d': pw3d_dataset_builder,
    'mpi_inf_3dhp': mpi_inf_3dhp_dataset_builder,
    'coco_keypoints': coco_keypoints_dataset_builder,
}
_H36M_TRAIN = 'h36m/annotations/Sample_5_train_Human36M_smpl_leaf_twist_protocol_2.json'
_H36M_TEST = 'h36m/annotations/Sample_20_test_Human36M_smpl_protocol_2.json'


def _copy_dummy(name: str, dst: pathlib.Path) -> pathlib.Path:
  manual = dst / f'{name}_manual'
  shutil.copytree(_BUILDERS / name / 'dummy_data', manual)
  return manual


def _edit_json(path: pathlib.Path, fn) -> None:
  data = json.loads(path.read_text())
  fn(data)
  path.write_text(json.dumps(data))  # NaN is written as NaN, which json.loads reads


def _build(name: str, manual: pathlib.Path, data_dir: pathlib.Path,
           file_format: str = 'array_record'):
  builder = _MODULES[name].Builder(data_dir=str(data_dir), file_format=file_format)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
  return builder


def _examples(builder, split: str) -> list[dict]:
  source = builder.as_data_source(split)
  return [source[i] for i in range(len(source))]


def _reloaded_metadata(builder) -> dict:
  return dict(tfds.builder_from_directory(str(builder.data_dir)).info.metadata)


# ----------------------------------------------------------------------------
# Damaged copies, built once per module.
# ----------------------------------------------------------------------------


@pytest.fixture(scope='module')
def h36m_damaged(tmp_path_factory):
  """train: row 0 NaN h36m joint 5 + SMPL joint 10 behind the camera, row 1 corrupt
  frame, an extra S9 row; row 2 has HybrIK's -999 twists (as committed)."""
  tmp = tmp_path_factory.mktemp('h36m')
  manual = _copy_dummy('h36m', tmp)
  train = manual / _H36M_TRAIN

  def damage(data):
    ann = data['annotations'][0]
    h36m = np.asarray(ann['h36m_joints'], np.float64).reshape(17, 3)
    h36m[5] = np.nan
    ann['h36m_joints'] = h36m.reshape(-1).tolist()
    smpl = np.asarray(ann['smpl_joints'], np.float64).reshape(-1, 3)
    smpl[10, 2] = -smpl[10, 2]
    ann['smpl_joints'] = smpl.reshape(-1).tolist()
    extra_image = dict(data['images'][0])
    extra_image['file_name'] = 's_09_act_02_subact_01_ca_01/' + pathlib.Path(
        data['images'][0]['file_name']).name
    data['images'].append(extra_image)
    data['annotations'].append(dict(data['annotations'][2]))

  _edit_json(train, damage)
  rows = json.loads(train.read_text())
  corrupt = manual / 'h36m' / 'images' / rows['images'][1]['file_name']
  corrupt.write_bytes(b'\xff\xd8 this is not a JPEG')
  builder = _build('h36m', manual, tmp / 'data')
  return builder, manual, rows


@pytest.fixture(scope='module')
def pw3d_damaged(tmp_path_factory):
  """train frame 0 (2 people) corrupt; test person 0 has a NaN SMPL joint 3."""
  tmp = tmp_path_factory.mktemp('pw3d')
  manual = _copy_dummy('pw3d', tmp)
  train = json.loads((manual / 'pw3d/json/3DPW_train_new.json').read_text())
  image = train['images'][0]
  (manual / 'pw3d/imageFiles' / image['sequence'] / image['file_name']).write_bytes(b'')

  def damage(data):
    joints = np.asarray(data['annotations'][0]['smpl_joint_cam'], np.float64)
    joints[3] = np.nan
    data['annotations'][0]['smpl_joint_cam'] = joints.tolist()

  _edit_json(manual / 'pw3d/json/3DPW_test_new.json', damage)
  return _build('pw3d', manual, tmp / 'data'), manual


@pytest.fixture(scope='module')
def hp3d_damaged(tmp_path_factory):
  """train frame 1 missing; test row 0 has a NaN joint 2 (right_shoulder)."""
  tmp = tmp_path_factory.mktemp('3dhp')
  manual = _copy_dummy('mpi_inf_3dhp', tmp)
  train = json.loads((manual / '3dhp/annotation_mpi_inf_3dhp_train_v2.json').read_text())
  (manual / '3dhp/mpi_inf_3dhp_train_set' / train['images'][1]['file_name']).unlink()

  def damage(data):
    joints = np.asarray(data['annotations'][0]['keypoints_cam'], np.float64)
    joints[2] = np.nan
    data['annotations'][0]['keypoints_cam'] = joints.tolist()

  _edit_json(manual / '3dhp/annotation_mpi_inf_3dhp_test.json', damage)
  return _build('mpi_inf_3dhp', manual, tmp / 'data'), manual


@pytest.fixture(scope='module')
def coco_damaged(tmp_path_factory):
  """validation frame 1 (2 people) corrupt, built as TFRecord."""
  tmp = tmp_path_factory.mktemp('coco')
  manual = _copy_dummy('coco_keypoints', tmp)
  val = json.loads((manual / 'coco/annotations/person_keypoints_val2017.json').read_text())
  frame = manual / 'coco/val2017' / val['images'][1]['file_name']
  frame.write_bytes(frame.read_bytes()[:40])  # truncated JPEG
  return _build('coco_keypoints', manual, tmp / 'data', file_format='tfrecord'), manual


# ----------------------------------------------------------------------------
# Corrupt / missing frames: skipped, counted in the metadata, no crash.
# ----------------------------------------------------------------------------


def test_h36m_corrupt_frame_and_subject_outside_protocol_are_skipped_and_counted(
    h36m_damaged):
  builder, _, _ = h36m_damaged
  assert builder.info.splits['train'].num_examples == 2  # 3 + 1 extra - 1 corrupt - 1 S9
  assert builder.info.splits['test'].num_examples == 2
  meta = _reloaded_metadata(builder)
  assert meta['skipped']['train'] == {'unreadable_image': 1,
                                      'subject_outside_protocol_2': 1}
  assert meta['skipped']['test'] == {'blocked_sequence': 1}
  assert any('unreadable_image' in f for f in meta['skipped_files']['train'])


def test_pw3d_corrupt_frame_skips_all_its_people(pw3d_damaged):
  builder, _ = pw3d_damaged
  assert builder.info.splits['train'].num_examples == 2
  meta = _reloaded_metadata(builder)
  assert meta['skipped']['train'] == {'unreadable_image': 1, 'unreadable_image_rows': 2}
  assert meta['skipped']['validation'] == {}


def test_3dhp_missing_frame_is_skipped_and_counted(hp3d_damaged):
  builder, _ = hp3d_damaged
  assert builder.info.splits['train'].num_examples == 2
  assert _reloaded_metadata(builder)['skipped']['train'] == {'unreadable_image': 1}


def test_coco_truncated_frame_is_skipped_and_counted_tfrecord(coco_damaged):
  builder, _ = coco_damaged
  assert builder.info.splits['validation'].num_examples == 1
  meta = _reloaded_metadata(builder)
  assert meta['skipped']['validation'] == {'unreadable_image': 1,
                                           'unreadable_image_rows': 2}
  assert meta['skipped']['train'] == {'crowd': 1, 'no_keypoints': 1}
  examples = list(tfds.as_numpy(builder.as_dataset(split='validation')))
  assert len(examples) == 1 and examples[0]['image'].ndim == 3
  # storage statistics: crop pixels of the stored examples / pixels of distinct frames
  train = list(tfds.as_numpy(builder.as_dataset(split='train')))
  stats = meta['crop_pixels']['train']
  assert stats['crop'] == sum(e['image'].shape[0] * e['image'].shape[1] for e in train)
  frames = {e['image_file'] for e in train}
  assert len(frames) == 2 and stats['frame'] == 2 * 64 * 48
  assert stats['ratio'] == pytest.approx(stats['crop'] / stats['frame'], abs=1e-4)


# ----------------------------------------------------------------------------
# Invalid joints: kept, masked with zero validity and zero values.
# ----------------------------------------------------------------------------


def _by_file(examples, fragment):
  found = [e for e in examples if fragment in e['image_file'].decode()]
  assert len(found) == 1, fragment
  return found[0]


def test_h36m_invalid_joints_and_twists_have_zero_validity(h36m_damaged):
  builder, _, rows = h36m_damaged
  train = _examples(builder, 'train')
  nan_row = _by_file(train, rows['images'][0]['file_name'])
  for key in ('native_joints_valid', 'joints17_valid'):
    assert nan_row[key][5] == 0 and nan_row[key].sum() == 16
  np.testing.assert_array_equal(nan_row['native_joints_cam'][5], 0.0)
  assert nan_row['joints29_valid'][10] == 0 and nan_row['joints29_valid'].sum() == 28
  np.testing.assert_array_equal(nan_row['joints29_img'][10], 0.0)
  twist_row = _by_file(train, rows['images'][2]['file_name'])
  assert list(np.flatnonzero(twist_row['twist_valid'] == 0)) == [3, 7]
  np.testing.assert_array_equal(twist_row['smpl_twist'][[3, 7]], 0.0)
  np.testing.assert_allclose(np.linalg.norm(twist_row['smpl_twist'][twist_row['twist_valid'] > 0], axis=1), 1.0, atol=1e-3)
  # the test file has 24 SMPL joints and no twists: leaves and twists invalid
  test = _examples(builder, 'test')
  assert len(test) == 2
  for ex in test:
    assert ex['joints29_valid'][:24].all() and not ex['joints29_valid'][24:].any()
    assert not ex['twist_valid'].any() and ex['smpl_valid'] == 1


def test_pw3d_nan_joint_is_masked(pw3d_damaged):
  builder, _ = pw3d_damaged
  test = _examples(builder, 'test')
  masked = [e for e in test if e['joints29_valid'][3] == 0]
  assert len(masked) == 1
  assert masked[0]['native_joints_valid'][3] == 0
  assert masked[0]['joints29_valid'][:24].sum() == 23
  assert all(np.isfinite(e['joints29_cam']).all() for e in test)


def test_3dhp_nan_joint_is_masked_and_test_joints_fill_their_slots(hp3d_damaged):
  builder, _ = hp3d_damaged
  m = mpi_inf_3dhp_dataset_builder
  test = _examples(builder, 'test')
  masked = [e for e in test if e['native_joints_valid'].sum() == 16]
  assert len(masked) == 1
  slot = m.TEST_JOINTS_IN_28[2]
  assert m.JOINT_NAMES[slot] == 'right_shoulder'
  assert masked[0]['native_joints_valid'][slot] == 0
  assert len(test) == builder.info.splits['test'].num_examples > 1
  for ex in test:
    others = np.setdiff1d(np.arange(28), m.TEST_JOINTS_IN_28)
    assert not ex['native_joints_valid'][others].any()
    # joints17: the test joints in H36M-17 order; pelvis first and at the root
    np.testing.assert_allclose(ex['joints17_cam'][0], ex['joint_root'], atol=1e-6)
  train = _examples(builder, 'train')
  assert len(train) == 2
  for ex in train:
    assert ex['native_joints_valid'].sum() == 28 and not ex['joints17_valid'].any()
    assert ex['joints29_valid'].sum() == 12


def test_coco_unlabelled_keypoints_have_zero_validity(coco_damaged):
  builder, manual = coco_damaged
  anns = json.loads((manual / 'coco/annotations/person_keypoints_train2017.json'
                     ).read_text())['annotations']
  by_id = {a['id']: a for a in anns}
  examples = list(tfds.as_numpy(builder.as_dataset(split='train')))
  partial = [e for e in examples if e['native_joints_valid'].sum() < 17]
  assert len(partial) == 1
  ex = partial[0]
  flags = [np.asarray(a['keypoints']).reshape(17, 3)[:, 2] for a in anns
           if (np.asarray(a['keypoints']).reshape(17, 3)[:, 2] > 0).sum() == 12]
  np.testing.assert_array_equal(ex['native_joints_valid'], (flags[0] > 0).astype(np.float32))
  np.testing.assert_array_equal(ex['native_joints_img'][flags[0] == 0], 0.0)
  assert ex['joint_root'][2] == 0 and not ex['joints29_cam'].any()
  assert by_id  # the annotation file was read


# ----------------------------------------------------------------------------
# Geometry: crop + K keep projection consistent with the source files.
# ----------------------------------------------------------------------------


def _check_projection(ex, keys=('native', 'joints29')):
  for prefix in keys:
    cam = ex[f'{prefix}_joints_cam' if prefix == 'native' else 'joints29_cam']
    img = ex[f'{prefix}_joints_img' if prefix == 'native' else 'joints29_img']
    valid = ex[f'{prefix}_joints_valid' if prefix == 'native' else 'joints29_valid'] > 0
    if valid.any():
      err = np.abs(features.project(cam[valid], ex['intrinsics']) - img[valid])
      assert err.max() < 1.0, (prefix, err.max())


def _check_crop_pixels(ex, frame_path: pathlib.Path):
  frame = common.read_frame(frame_path)
  x0, y0 = ex['crop_offset']
  h, w = ex['image'].shape[:2]
  assert x0 >= 0 and y0 >= 0 and x0 + w <= frame.shape[1] and y0 + h <= frame.shape[0]
  diff = np.abs(frame[y0:y0 + h, x0:x0 + w].astype(np.float32) - ex['image'])
  assert diff.mean() < 12.0  # two JPEG round trips


def test_h36m_projection_crop_and_units_match_the_source(h36m_damaged):
  builder, manual, rows = h36m_damaged
  source = {img['file_name']: (img, ann) for img, ann in
            zip(rows['images'], rows['annotations'])}
  checked = 0
  for ex in _examples(builder, 'train'):
    _check_projection(ex)
    file_name = ex['image_file'].decode().removeprefix('h36m/images/')
    img, ann = source[file_name]
    # metres, and the source K shifted by the crop offset
    np.testing.assert_allclose(ex['joint_root'],
                               np.asarray(ann['smpl_joints'][:3]) / 1000, atol=1e-5)
    np.testing.assert_allclose(ex['joint_root'], ex['joints29_cam'][0])
    f, c = np.asarray(img['cam_param']['f']), np.asarray(img['cam_param']['c'])
    np.testing.assert_allclose(np.diag(ex['intrinsics'])[:2], f, atol=1e-4)
    np.testing.assert_allclose(ex['intrinsics'][:2, 2] + ex['crop_offset'], c, atol=1e-4)
    joints = np.asarray(ann['h36m_joints'], np.float64).reshape(17, 3)
    ok = ex['native_joints_valid'] > 0
    frame_px = joints[ok, :2] / joints[ok, 2:] * f + c
    np.testing.assert_allclose(ex['native_joints_img'][ok] + ex['crop_offset'],
                               frame_px, atol=1.0)
    x, y, w, h = ann['bbox']
    np.testing.assert_allclose(ex['bbox'] + np.tile(ex['crop_offset'], 2),
                               [x, y, x + w - 1, y + h - 1], atol=1e-3)
    _check_crop_pixels(ex, manual / ex['image_file'].decode())
    checked += 1
  assert checked == 2


def test_pw3d_and_3dhp_projection_and_crops(pw3d_damaged, hp3d_damaged):
  for builder, manual in (pw3d_damaged, hp3d_damaged):
    for split in builder.info.splits:
      examples = _examples(builder, split)
      assert examples, (builder.name, split)  # an empty split checks nothing
      for ex in examples:
        _check_projection(ex)
        _check_crop_pixels(ex, manual / ex['image_file'].decode())
        assert 3.0 < ex['joint_root'][2] < 6.0  # metres, not millimetres


def test_pw3d_gender_and_smpl_params(pw3d_damaged):
  builder, manual = pw3d_damaged
  anns = json.loads((manual / 'pw3d/json/3DPW_validation_new.json').read_text())['annotations']
  examples = _examples(builder, 'validation')
  genders = sorted(int(e['gender']) for e in examples)
  expected = sorted({'male': 1, 'female': 2}[a['smpl_param']['gender']] for a in anns)
  assert genders == expected
  betas = np.stack(sorted((e['smpl_beta'] for e in examples), key=lambda b: b[0]))
  source = np.stack(sorted((np.asarray(a['smpl_param']['shape']) for a in anns),
                           key=lambda b: b[0]))
  np.testing.assert_allclose(betas, source, atol=1e-5)
  assert all(e['smpl_valid'] == 1 and not e['twist_valid'].any() for e in examples)


def test_coco_keypoints_shift_with_the_crop(coco_damaged):
  builder, manual = coco_damaged
  anns = json.loads((manual / 'coco/annotations/person_keypoints_train2017.json'
                     ).read_text())['annotations']
  count = 0
  for ex in tfds.as_numpy(builder.as_dataset(split='train')):
    count += 1
    ok = ex['native_joints_valid'] > 0
    frame_px = ex['native_joints_img'][ok] + ex['crop_offset']
    matches = [a for a in anns
               if np.allclose(np.asarray(a['keypoints']).reshape(17, 3)[ok, :2],
                              frame_px, atol=1e-3)]
    assert len(matches) == 1
    # SMPL slots carry the same 2D points (HybrIK's coco -> smpl correspondence)
    for smpl, native in enumerate(coco_keypoints_dataset_builder.SMPL24_FROM_NATIVE):
      if native >= 0:
        np.testing.assert_array_equal(ex['joints29_img'][smpl], ex['native_joints_img'][native])
    _check_crop_pixels(ex, manual / ex['image_file'].decode())
  assert count == builder.info.splits['train'].num_examples > 0


def test_crop_in_frame_clips_and_keeps_offsets():
  frame = np.arange(40 * 60 * 3, dtype=np.uint32).reshape(40, 60, 3).astype(np.uint8)
  crop, offset = common.crop_in_frame(frame, np.array([50.0, 30.0, 58.0, 39.0]))
  side = math.ceil(features.DEFAULT_MARGIN * 9)
  x0, y0 = features.margin_box(np.array([50.0, 30.0, 58.0, 39.0]))[:2]
  assert tuple(offset) == (x0, y0)
  assert crop.shape == (40 - y0, 60 - x0, 3) and crop.shape[0] < side
  np.testing.assert_array_equal(crop, frame[y0:, x0:])
  with pytest.raises(ValueError, match='outside'):
    common.crop_in_frame(frame, np.array([100.0, 100.0, 120.0, 130.0]))


# ----------------------------------------------------------------------------
# Missing manual_dir or files: errors that name them and point at the instructions.
# ----------------------------------------------------------------------------


@pytest.mark.parametrize('name', sorted(_MODULES))
def test_missing_manual_dir_names_it(name, tmp_path):
  missing = tmp_path / 'no_such_dir'
  with pytest.raises(common.ManualDataError, match='does not exist') as err:
    _build(name, missing, tmp_path / 'data')
  assert str(missing) in str(err.value)
  assert 'manual_dir' in str(err.value)  # the instructions' layout
  assert str(missing) in err.value.summary and '\n' not in err.value.summary


@pytest.mark.parametrize('name,subdir', [('h36m', 'h36m'), ('pw3d', 'pw3d'),
                                         ('mpi_inf_3dhp', '3dhp'),
                                         ('coco_keypoints', 'coco')])
def test_manual_dir_without_dataset_folder_says_what_to_put_there(name, subdir, tmp_path):
  manual = tmp_path / 'manual'
  (manual / 'something_else').mkdir(parents=True)
  with pytest.raises(FileNotFoundError, match=f'{subdir}') as err:
    _build(name, manual, tmp_path / 'data')
  assert 'README.md' in str(err.value)
  assert str(manual / subdir) in str(err.value)


@pytest.mark.parametrize('name,relpath', [
    ('h36m', _H36M_TEST),
    ('pw3d', 'pw3d/json/3DPW_train_new.json'),
    ('mpi_inf_3dhp', '3dhp/annotation_mpi_inf_3dhp_test.json'),
    ('coco_keypoints', 'coco/annotations/person_keypoints_val2017.json'),
])
def test_missing_annotation_file_is_named(name, relpath, tmp_path):
  manual = _copy_dummy(name, tmp_path)
  (manual / relpath).unlink()
  with pytest.raises(FileNotFoundError, match=pathlib.Path(relpath).name.replace('.', r'\.')):
    _build(name, manual, tmp_path / 'data')


def test_pw3d_without_validation_file_builds_train_and_test(tmp_path):
  manual = _copy_dummy('pw3d', tmp_path)
  (manual / 'pw3d/json/3DPW_validation_new.json').unlink()
  builder = _build('pw3d', manual, tmp_path / 'data')
  assert set(builder.info.splits) == {'train', 'test'}


def test_worker_processes_give_the_same_dataset(h36m_damaged, tmp_path):
  """Frames decoded and cropped in 2 spawned processes: same examples and counts."""
  serial, manual, _ = h36m_damaged
  builder = h36m_dataset_builder.Builder(data_dir=str(tmp_path), num_workers=2,
                                         file_format='array_record')
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
  assert dict(builder.info.metadata) == dict(serial.info.metadata)
  for split in ('train', 'test'):
    ours = sorted(_examples(builder, split), key=lambda e: e['image_file'])
    theirs = sorted(_examples(serial, split), key=lambda e: e['image_file'])
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
      for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_coco_keypoints_name_resolves_to_this_builder_and_coco_to_tfds(coco_damaged):
  """'coco_keypoints' by name gives this builder's files; 'coco' stays TFDS's own."""
  builder, _ = coco_damaged
  root = str(pathlib.Path(builder.data_dir).parents[1])
  ours = coco_keypoints_dataset_builder.Builder
  assert type(tfds.builder('coco_keypoints', data_dir=root)) is ours
  assert len(list(tfds.load('coco_keypoints', split='train', data_dir=root,
                            download=False))) == 3
  assert tfds.builder_cls('coco') is not ours


def test_whole_frame_crop_stores_the_source_jpeg_unchanged(tmp_path):
  """A person box so large that the crop is the whole frame: the file's own bytes."""
  manual = _copy_dummy('h36m', tmp_path)
  test_file = manual / _H36M_TEST

  def widen(data):
    data['annotations'][0]['bbox'] = [2.0, 2.0, 60.0, 60.0]

  _edit_json(test_file, widen)
  builder = _build('h36m', manual, tmp_path / 'data')
  meta = _reloaded_metadata(builder)
  assert meta['crop_pixels']['test']['source_jpeg'] == 1
  assert meta['crop_pixels']['train']['source_jpeg'] == 0
  first = json.loads(test_file.read_text())['images'][0]['file_name']
  ex = _by_file(_examples(builder, 'test'), first)
  assert tuple(ex['crop_offset']) == (0, 0) and ex['image'].shape == (64, 64, 3)
  source = common.read_frame(manual / 'h36m' / 'images' / first)
  np.testing.assert_array_equal(ex['image'], source)  # bit-exact: not re-encoded
  _check_projection(ex)


def test_crop_of_most_of_the_frame_becomes_the_frame():
  frame = np.zeros((100, 100, 3), np.uint8)
  crop, offset = common.crop_in_frame(frame, np.array([20.0, 8.0, 60.0, 90.0]))
  assert crop.shape == (100, 100, 3) and tuple(offset) == (0, 0)  # 2.2 x 82 px > frame
  crop, offset = common.crop_in_frame(frame, np.array([40.0, 40.0, 60.0, 60.0]))
  assert crop.shape == (44, 44, 3) and tuple(offset) == (28, 28)


def test_map_tasks_keeps_order_across_a_bounded_window():
  tasks = list(range(23))
  got = list(common.map_tasks(math.factorial, tasks, num_workers=2, chunk=2))
  assert got == [math.factorial(t) for t in tasks]
  assert list(common.map_tasks(math.factorial, tasks, num_workers=1)) == got
