"""Human3.6M (HybrIK's SMPL-parsed annotations), protocol 2: person crops + 3D labels."""

import functools
import re
from typing import Any

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from hybrik_jax.data import boxes
from hybrik_jax.data import features
from tfds_builders import real_data_common as common

_SUBDIR = 'h36m'
# HybrIK's parsed annotation files (README "Fetch data", configs/*.yaml
# DATASET.SET_LIST[0]), looked for in this order; `_protocol_2.json` appended.
_TRAIN_FILES = (
    'Sample_5_train_Human36M_smpl_leaf_twist_protocol_2.json',
    'Sample_trainmin_train_Human36M_smpl_leaf_twist_protocol_2.json',
)
_TEST_FILES = ('Sample_20_test_Human36M_smpl_protocol_2.json',)
# Protocol 2 subjects.
_TRAIN_SUBJECTS = (1, 5, 6, 7, 8)
_TEST_SUBJECTS = (9, 11)
# Sequences HybrIK leaves out (h36m_smpl.py block_list: broken S9 videos).
_BLOCK_LIST = ('s_09_act_05_subact_02_ca', 's_09_act_10_subact_02_ca',
               's_09_act_13_subact_01_ca')
# HybrIK marks an invalid twist angle with -999; it keeps angles > -10.
_MIN_VALID_ANGLE = -10.0
_NUM_NATIVE = 17  # Human3.6M's 17 joints (hybrik_jax.body.constants.H36M_JOINT_NAMES order)
_SUBJECT_RE = re.compile(r's_(\d+)_act_')

_INSTRUCTIONS = """\
Human3.6M cannot be downloaded automatically (licence: http://vision.imar.ro/human3.6m/,
academic use only). Get:
  1. the frames extracted by Moon et al. (3DMPPE PoseNet release,
     https://github.com/mks0601/3DMPPE_POSENET_RELEASE) into h36m/images/,
  2. HybrIK's parsed SMPL annotations (links in https://github.com/Jeff-sjtu/HybrIK
     README, "Fetch data") into h36m/annotations/.
Layout under manual_dir (HybrIK's data/ folder works as is):
  <manual_dir>/h36m/annotations/Sample_5_train_Human36M_smpl_leaf_twist_protocol_2.json
  <manual_dir>/h36m/annotations/Sample_20_test_Human36M_smpl_protocol_2.json
  <manual_dir>/h36m/images/s_01_act_02_subact_01_ca_01/s_01_act_02_subact_01_ca_01_000001.jpg ...
Then: python -m hybrik_jax.prepare_data --dataset h36m --manual_dir <manual_dir>
  (or: tfds build tfds_builders/h36m --manual_dir=<manual_dir>)
"""


class Builder(common.GenerationMixin, tfds.core.GeneratorBasedBuilder):
  """Human3.6M, protocol 2 (train S1 S5 S6 S7 S8, test S9 S11), HybrIK's SMPL fits.

  Per example: a crop around the person (features.DEFAULT_MARGIN, clipped to the
  frame); native_joints_* and joints17_cam: the 17 Human3.6M joints; joints29_*:
  HybrIK's 24 SMPL + 5 leaf joints; SMPL theta/beta; twist angles (train file);
  K in crop px; joint_root = the SMPL pelvis (HybrIK's uvd depth root; its
  `root_coord` if that is invalid). All 3D in metres (the source is in mm).
  """

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release: protocol 2, crops clipped to the frame.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=features.example_features(_NUM_NATIVE),
        supervised_keys=None,
        homepage='http://vision.imar.ro/human3.6m/',
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = common.dataset_root(dl_manager, _SUBDIR, 'h36m', _INSTRUCTIONS)
    ann_dir = root / 'annotations'
    train = common.first_existing(ann_dir, _TRAIN_FILES, 'h36m', _INSTRUCTIONS)
    test = common.first_existing(ann_dir, _TEST_FILES, 'h36m', _INSTRUCTIONS)
    return {
        'train': self._generate_examples(root, train, 'train', _TRAIN_SUBJECTS),
        'test': self._generate_examples(root, test, 'test', _TEST_SUBJECTS),
    }

  def _generate_examples(self, root: epath.Path, ann_file: epath.Path, split: str,
                         subjects: tuple[int, ...]):
    """(key, example) iterator, or a beam.PTransform (common.GenerationMixin)."""
    return self._generate(split, functools.partial(
        self._tasks, root, ann_file, split, subjects), _process)

  def _tasks(self, root: epath.Path, ann_file: epath.Path, split: str,
             subjects: tuple[int, ...], skips: common.SkipCounter) -> list[dict[str, Any]]:
    """One task per annotation row of the protocol's subjects (see _process)."""
    self.info.metadata.setdefault('annotation_files', {})[split] = ann_file.name
    database = common.load_json(ann_file, 'h36m')
    for key in ('images', 'annotations'):
      if key not in database:
        raise KeyError(f'h36m: {ann_file} has no {key!r} list; is it HybrIK\'s '
                       'parsed annotation file?')
    images, annotations = database['images'], database['annotations']
    if len(images) != len(annotations):
      raise ValueError(f'h36m: {ann_file} has {len(images)} images but '
                       f'{len(annotations)} annotations (HybrIK pairs them 1:1)')
    tasks = []
    for index, (image_row, ann_row) in enumerate(zip(images, annotations)):
      row = {**image_row, **ann_row}
      where = f'h36m {ann_file.name} row {index}'
      common.require_keys(row, ('file_name', 'width', 'height', 'bbox', 'cam_param',
                                'h36m_joints', 'smpl_joints', 'thetas', 'betas',
                                'root_coord'), where)
      file_name = row['file_name']
      if any(name in file_name for name in _BLOCK_LIST):
        skips.skip('blocked_sequence', file_name)
        continue
      match = _SUBJECT_RE.search(file_name)
      if match is None or int(match.group(1)) not in subjects:
        skips.skip('subject_outside_protocol_2', file_name)
        continue
      tasks.append({'row': row, 'where': where, 'key': f'{index:08d}_{file_name}',
                    'path': str(root / 'images' / file_name),
                    'image_file': f'{_SUBDIR}/images/{file_name}'})
    return tasks


def _process(task: dict[str, Any]) -> list[common.Outcome]:
  """Reads, crops and encodes one row's frame (runs in a worker process)."""
  frame, source = common.read_frame_and_source(epath.Path(task['path']))
  if frame is None:
    return [common.Outcome(skip_reason='unreadable_image', skip_path=task['image_file'])]
  example = _make_example(task['row'], frame, task['image_file'], task['where'])
  if example is None:
    return [common.Outcome(skip_reason='degenerate_bbox', skip_path=task['image_file'])]
  return [common.example_outcome(task['key'], example, frame.shape, True, source)]


def _make_example(row: dict[str, Any], frame: np.ndarray, image_file: str,
                  where: str) -> dict[str, Any] | None:
  """One HybrIK Human3.6M annotation row (image and annotation merged) -> example."""
  height, width = frame.shape[:2]
  bbox = boxes.xywh_to_xyxy(row['bbox'], width, height, inclusive=True)
  if not (bbox[2] > bbox[0] and bbox[3] > bbox[1]):
    return None
  crop, offset = common.crop_in_frame(frame, bbox)
  cam = row['cam_param']
  common.require_keys(cam, ('f', 'c'), where + ' cam_param')
  K = features.shift_intrinsics(common.intrinsics_from_fc(cam['f'], cam['c']), offset)

  ex = features.empty_example(_NUM_NATIVE)
  ex.update(image=crop, image_file=image_file, crop_offset=offset,
            bbox=features.shift_bbox(bbox, offset), intrinsics=K)

  h36m = common.mm_to_m(row['h36m_joints'], (_NUM_NATIVE, 3))
  cam17, img17, valid17 = common.joints_in_crop(h36m, np.ones(_NUM_NATIVE), K)
  ex.update(native_joints_cam=cam17, native_joints_img=img17,
            native_joints_valid=valid17, joints17_cam=cam17, joints17_valid=valid17)

  smpl = np.asarray(row['smpl_joints'], np.float64).reshape(-1, 3)
  if smpl.shape[0] not in (24, 29):
    raise ValueError(f'{where}: smpl_joints must hold 24 or 29 joints, got '
                     f'{smpl.shape[0]}')
  joints29 = np.zeros((29, 3))
  joints29[:smpl.shape[0]] = smpl / 1000.0
  source_valid = (np.arange(29) < smpl.shape[0]).astype(np.float32)
  cam29, img29, valid29 = common.joints_in_crop(joints29, source_valid, K)
  ex.update(joints29_cam=cam29, joints29_img=img29, joints29_valid=valid29)

  # The root the relative depths are taken from: HybrIK's uvd targets subtract
  # the SMPL pelvis depth (joint_cam_29[0]); `root_coord` (the Human3.6M pelvis,
  # a few cm away) only stands in when the SMPL pelvis is invalid.
  root = common.mm_to_m(row['root_coord'], (3,))
  if valid29[0] > 0:
    ex['joint_root'] = cam29[0]
  elif np.all(np.isfinite(root)) and root[2] > 0:
    ex['joint_root'] = root.astype(np.float32)

  theta = np.asarray(row['thetas'], np.float64).reshape(24, 3)
  beta = np.asarray(row['betas'], np.float64).reshape(10)
  if np.all(np.isfinite(theta)) and np.all(np.isfinite(beta)):
    ex.update(smpl_theta=theta, smpl_beta=beta, smpl_valid=np.float32(1))

  twist = row.get('angle_twist')
  if twist is not None:
    angle = np.asarray(twist['angle'], np.float64).reshape(23)
    cos = np.asarray(twist['cos'], np.float64).reshape(23)
    sin = np.asarray(twist['sin'], np.float64).reshape(23)
    ok = (angle > _MIN_VALID_ANGLE) & np.isfinite(cos) & np.isfinite(sin)
    phi = np.where(ok[:, None], np.stack([cos, sin], axis=1), 0.0)
    ex.update(smpl_twist=phi, twist_valid=ok.astype(np.float32))
  return features.check_example(ex, _NUM_NATIVE)
