"""MPI-INF-3DHP (HybrIK's parsed annotations): person crops + 3D joints."""

import functools
from typing import Any

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from hybrik_jax.data import boxes
from hybrik_jax.data import features
from tfds_builders import real_data_common as common

_SUBDIR = '3dhp'
# HybrIK's annotation files (README "Fetch data"; configs use TRAIN_SET 'train_v2').
_TRAIN_FILES = ('annotation_mpi_inf_3dhp_train_v2.json',
                'annotation_mpi_inf_3dhp_train.json')
_TEST_FILES = ('annotation_mpi_inf_3dhp_test.json',)
_IMAGE_DIRS = {'train': 'mpi_inf_3dhp_train_set', 'test': 'mpi_inf_3dhp_test_set'}

# The 28 joints of the training annotations (HybrIK hp3d.py `joints_name`); the
# stored native_joints_* always use this order, for both splits.
JOINT_NAMES = (
    'spine3', 'spine4', 'spine2', 'spine', 'pelvis',
    'neck', 'head', 'head_top',
    'left_clavicle', 'left_shoulder', 'left_elbow',
    'left_wrist', 'left_hand', 'right_clavicle',
    'right_shoulder', 'right_elbow', 'right_wrist',
    'right_hand', 'left_hip', 'left_knee',
    'left_ankle', 'left_foot', 'left_toe',
    'right_hip', 'right_knee', 'right_ankle', 'right_foot', 'right_toe')
NUM_JOINTS = len(JOINT_NAMES)
PELVIS = JOINT_NAMES.index('pelvis')
# The test annotations hold 17 joints; the i-th is JOINT_NAMES[TEST_JOINTS_IN_28[i]]
# (HybrIK hp3d.py EVAL_JOINTS; head_top, neck, right arm, left arm, right leg,
# left leg, pelvis, spine, head).
TEST_JOINTS_IN_28 = (7, 5, 14, 15, 16, 9, 10, 11, 23, 24, 25, 18, 19, 20, 4, 3, 6)
# joints17_cam[k] = test joint H36M17_FROM_TEST[k]: the 17 test joints in
# Human3.6M-17 order, as HybrIK evaluates them (hp3d.py EVAL_JOINTS_17).
H36M17_FROM_TEST = (14, 11, 12, 13, 8, 9, 10, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4)
# SMPL joint i <- native joint SMPL24_FROM_NATIVE[i] (-1: none), HybrIK's
# mix_dataset.py s_3dhp_2_smpl_jt, for the input pipeline's 2D/3D targets.
SMPL24_FROM_NATIVE = (4, -1, -1, -1, 19, 24, -1, 20, 25, -1, -1, -1, 5, -1, -1, -1,
                      9, 14, 10, 15, 11, 16, -1, -1)

_INSTRUCTIONS = """\
MPI-INF-3DHP cannot be downloaded automatically (licence: https://vcai.mpi-inf.mpg.de/3dhp-dataset/,
non-commercial research only). Get:
  1. the dataset with its get_dataset.sh / get_testset.sh, frames extracted from the
     videos as HybrIK expects (file names as in its annotation files),
  2. HybrIK's parsed annotations (links in https://github.com/Jeff-sjtu/HybrIK README,
     "Fetch data").
Layout under manual_dir (HybrIK's data/ folder works as is):
  <manual_dir>/3dhp/annotation_mpi_inf_3dhp_train_v2.json  (or annotation_mpi_inf_3dhp_train.json)
  <manual_dir>/3dhp/annotation_mpi_inf_3dhp_test.json
  <manual_dir>/3dhp/mpi_inf_3dhp_train_set/S1/Seq1/images/S1_Seq1_V0/S1_Seq1_V0_000001.jpg ...
  <manual_dir>/3dhp/mpi_inf_3dhp_test_set/TS1/imageSequence/img_000001.jpg ...
Then: python -m hybrik_jax.prepare_data --dataset mpi_inf_3dhp --manual_dir <manual_dir>
  (or: tfds build tfds_builders/mpi_inf_3dhp --manual_dir=<manual_dir>)
"""


class Builder(common.GenerationMixin, tfds.core.GeneratorBasedBuilder):
  """MPI-INF-3DHP train (28 joints) and test (17 joints), metres.

  Per example: a crop around the person (features.DEFAULT_MARGIN, clipped to the
  frame); native_joints_*: the 28 joints of JOINT_NAMES (test rows fill the 17
  slots TEST_JOINTS_IN_28, the other 11 have zero validity); joints17_cam (test
  only): the 17 test joints in Human3.6M-17 order, as HybrIK evaluates 3DHP;
  joints29_*: the 12 SMPL joints HybrIK takes from 3DHP (SMPL24_FROM_NATIVE:
  pelvis, knees, ankles, neck, shoulders, elbows, wrists), the others invalid;
  K in crop px; joint_root = pelvis. No SMPL parameters.
  """

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release: crops clipped to the frame.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=features.example_features(NUM_JOINTS),
        supervised_keys=None,
        homepage='https://vcai.mpi-inf.mpg.de/3dhp-dataset/',
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = common.dataset_root(dl_manager, _SUBDIR, 'mpi_inf_3dhp',
                               _INSTRUCTIONS)
    train = common.first_existing(root, _TRAIN_FILES, 'mpi_inf_3dhp', _INSTRUCTIONS)
    test = common.first_existing(root, _TEST_FILES, 'mpi_inf_3dhp', _INSTRUCTIONS)
    return {'train': self._generate_examples(root, train, 'train'),
            'test': self._generate_examples(root, test, 'test')}

  def _generate_examples(self, root: epath.Path, ann_file: epath.Path, split: str):
    """(key, example) iterator, or a beam.PTransform (common.GenerationMixin)."""
    return self._generate(split, functools.partial(self._tasks, root, ann_file, split),
                          _process)

  def _tasks(self, root: epath.Path, ann_file: epath.Path, split: str,
             skips: common.SkipCounter) -> list[dict[str, Any]]:
    """One task per annotation row (see _process)."""
    del skips  # mpi_inf_3dhp leaves nothing out before reading the frames.
    self.info.metadata.setdefault('annotation_files', {})[split] = ann_file.name
    database = common.load_json(ann_file, 'mpi_inf_3dhp')
    for key in ('images', 'annotations'):
      if key not in database:
        raise KeyError(f'mpi_inf_3dhp: {ann_file} has no {key!r} list; is it '
                       'HybrIK\'s parsed annotation file?')
    images, annotations = database['images'], database['annotations']
    if len(images) != len(annotations):
      raise ValueError(f'mpi_inf_3dhp: {ann_file} has {len(images)} images but '
                       f'{len(annotations)} annotations (HybrIK pairs them 1:1)')
    image_dir = _IMAGE_DIRS[split]
    tasks = []
    for index, (image_row, ann_row) in enumerate(zip(images, annotations)):
      row = {**image_row, **ann_row}
      where = f'mpi_inf_3dhp {ann_file.name} row {index}'
      common.require_keys(row, ('file_name', 'bbox', 'cam_param', 'keypoints_cam'),
                          where)
      tasks.append({'row': row, 'where': where, 'split': split,
                    'key': f"{index:08d}_{row['file_name']}",
                    'path': str(root / image_dir / row['file_name']),
                    'image_file': f"{_SUBDIR}/{image_dir}/{row['file_name']}"})
    return tasks


def _process(task: dict[str, Any]) -> list[common.Outcome]:
  """Reads, crops and encodes one row's frame (runs in a worker process)."""
  frame, source = common.read_frame_and_source(epath.Path(task['path']))
  if frame is None:
    return [common.Outcome(skip_reason='unreadable_image', skip_path=task['image_file'])]
  example = _make_example(task['row'], frame, task['image_file'], task['split'],
                          task['where'])
  if example is None:
    return [common.Outcome(skip_reason='degenerate_bbox', skip_path=task['image_file'])]
  return [common.example_outcome(task['key'], example, frame.shape, True, source)]


def _intrinsics(cam_param: dict[str, Any], where: str) -> np.ndarray:
  """K (3, 3) from HybrIK's `intrinsic_param` (3x3, 3x4 or 4x4; last column 0)."""
  common.require_keys(cam_param, ('intrinsic_param',), where + ' cam_param')
  matrix = np.asarray(cam_param['intrinsic_param'], np.float64)
  if matrix.ndim != 2 or matrix.shape[0] < 3 or matrix.shape[1] < 3:
    raise ValueError(f'{where}: intrinsic_param must be 3x3, 3x4 or 4x4, got '
                     f'{matrix.shape}')
  return matrix[:3, :3].astype(np.float32)


def _to_smpl29(cam: np.ndarray, img: np.ndarray, valid: np.ndarray
               ) -> dict[str, np.ndarray]:
  """joints29_* from native joints with HybrIK's correspondence (leaves invalid)."""
  cam29 = np.zeros((29, 3), np.float32)
  img29 = np.zeros((29, 2), np.float32)
  valid29 = np.zeros((29,), np.float32)
  for smpl, native in enumerate(SMPL24_FROM_NATIVE):
    if native >= 0:
      cam29[smpl], img29[smpl], valid29[smpl] = cam[native], img[native], valid[native]
  return {'joints29_cam': cam29, 'joints29_img': img29, 'joints29_valid': valid29}


def _make_example(row: dict[str, Any], frame: np.ndarray, image_file: str,
                  split: str, where: str) -> dict[str, Any] | None:
  """One 3DHP row (image and annotation merged) -> example."""
  height, width = frame.shape[:2]
  bbox = boxes.xywh_to_xyxy(row['bbox'], width, height, inclusive=True)
  if not (bbox[2] > bbox[0] and bbox[3] > bbox[1]):
    return None
  crop, offset = common.crop_in_frame(frame, bbox)
  K = features.shift_intrinsics(_intrinsics(row['cam_param'], where), offset)

  ex = features.empty_example(NUM_JOINTS)
  ex.update(image=crop, image_file=image_file, crop_offset=offset,
            bbox=features.shift_bbox(bbox, offset), intrinsics=K)

  joints = np.asarray(row['keypoints_cam'], np.float64).reshape(-1, 3) / 1000.0
  native = np.zeros((NUM_JOINTS, 3))
  source_valid = np.zeros(NUM_JOINTS, np.float32)
  if joints.shape[0] == NUM_JOINTS:
    native[:] = joints
    source_valid[:] = 1.0
  elif joints.shape[0] == len(TEST_JOINTS_IN_28):
    native[list(TEST_JOINTS_IN_28)] = joints
    source_valid[list(TEST_JOINTS_IN_28)] = 1.0
  else:
    raise ValueError(f'{where}: keypoints_cam must hold {NUM_JOINTS} or '
                     f'{len(TEST_JOINTS_IN_28)} joints, got {joints.shape[0]}')
  cam, img, valid = common.joints_in_crop(native, source_valid, K)
  ex.update(native_joints_cam=cam, native_joints_img=img, native_joints_valid=valid)
  if valid[PELVIS] > 0:
    ex['joint_root'] = cam[PELVIS]
  ex.update(_to_smpl29(cam, img, valid))
  if split == 'test':
    in_28 = np.asarray(TEST_JOINTS_IN_28)[list(H36M17_FROM_TEST)]
    ex.update(joints17_cam=cam[in_28], joints17_valid=valid[in_28])
  return features.check_example(ex, NUM_JOINTS)
