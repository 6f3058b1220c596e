"""3DPW (HybrIK's parsed COCO-style annotations): person crops + SMPL labels."""

import collections
import functools
from typing import Any

from absl import logging
from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from hybrik_jax.data import boxes
from hybrik_jax.data import features
from tfds_builders import real_data_common as common

_SUBDIR = 'pw3d'
_ANN_FILE = '3DPW_{split}_new.json'
_NUM_NATIVE = 24  # SMPL's 24 joints (hybrik_jax.body.constants.SMPL_JOINT_NAMES)
# HybrIK (pw3d.py) drops boxes narrower or lower than this many px.
_MIN_BOX_PX = 5.0
_GENDERS = {'male': features.GENDER_MALE, 'm': features.GENDER_MALE,
            'female': features.GENDER_FEMALE, 'f': features.GENDER_FEMALE,
            'neutral': features.GENDER_NEUTRAL}

_INSTRUCTIONS = """\
3DPW cannot be downloaded automatically (licence: https://virtualhumans.mpi-inf.mpg.de/3DPW/,
non-commercial research only). Get:
  1. imageFiles.zip from the 3DPW site, unzipped into pw3d/imageFiles/<sequence>/image_XXXXX.jpg,
  2. HybrIK's parsed annotations (links in https://github.com/Jeff-sjtu/HybrIK README,
     "Fetch data") into pw3d/json/.
Layout under manual_dir (HybrIK's data/ folder works as is):
  <manual_dir>/pw3d/json/3DPW_train_new.json
  <manual_dir>/pw3d/json/3DPW_validation_new.json   (optional: no validation split without it)
  <manual_dir>/pw3d/json/3DPW_test_new.json
  <manual_dir>/pw3d/imageFiles/courtyard_arguing_00/image_00000.jpg ...
Then: python -m hybrik_jax.prepare_data --dataset pw3d --manual_dir <manual_dir>
  (or: tfds build tfds_builders/pw3d --manual_dir=<manual_dir>)
"""


class Builder(common.GenerationMixin, tfds.core.GeneratorBasedBuilder):
  """3DPW train / validation / test with HybrIK's SMPL joints, one example per person.

  Per example: a crop around the person (features.DEFAULT_MARGIN, clipped to the
  frame); native_joints_* and joints29_*[:24]: the 24 SMPL joints of the fit
  (`smpl_joint_cam`, metres), leaves invalid; joints17_cam: Human3.6M-17 joints
  regressed from the fitted mesh (`h36m_joints`); SMPL theta/beta/gender (no
  twist: HybrIK's 3DPW files have none); K in crop px; joint_root = SMPL pelvis.
  """

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release: crops clipped to the frame.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=features.example_features(_NUM_NATIVE),
        supervised_keys=None,
        homepage='https://virtualhumans.mpi-inf.mpg.de/3DPW/',
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = common.dataset_root(dl_manager, _SUBDIR, 'pw3d', _INSTRUCTIONS)
    files = {}
    for split in ('train', 'test'):
      files[split] = common.first_existing(
          root / 'json', (_ANN_FILE.format(split=split),), 'pw3d', _INSTRUCTIONS)
    validation = root / 'json' / _ANN_FILE.format(split='validation')
    if validation.exists():
      files['validation'] = validation
    else:
      logging.warning('pw3d: %s not found; building train and test only.',
                      validation)
    return {split: self._generate_examples(root, path, split)
            for split, path in files.items()}

  def _generate_examples(self, root: epath.Path, ann_file: epath.Path, split: str):
    """(key, example) iterator, or a beam.PTransform (common.GenerationMixin)."""
    return self._generate(split, functools.partial(self._tasks, root, ann_file, split),
                          _process)

  def _tasks(self, root: epath.Path, ann_file: epath.Path, split: str,
             skips: common.SkipCounter) -> list[dict[str, Any]]:
    """One task per frame with people (see _process)."""
    del skips  # pw3d leaves nothing out before reading the frames.
    self.info.metadata.setdefault('annotation_files', {})[split] = ann_file.name
    database = common.load_json(ann_file, 'pw3d')
    for key in ('images', 'annotations'):
      if key not in database:
        raise KeyError(f'pw3d: {ann_file} has no {key!r} list; is it HybrIK\'s '
                       '3DPW_*_new.json?')
    by_image = collections.defaultdict(list)
    for ann in database['annotations']:
      common.require_keys(ann, ('image_id',), f'pw3d {ann_file.name} annotation')
      by_image[ann['image_id']].append(ann)
    tasks = []
    for image_row in database['images']:
      common.require_keys(image_row, ('id', 'file_name', 'sequence', 'cam_param'),
                          f'pw3d {ann_file.name} image')
      anns = by_image.get(image_row['id'], [])
      if not anns:
        continue
      rel_path = f"{_SUBDIR}/imageFiles/{image_row['sequence']}/{image_row['file_name']}"
      tasks.append({'image_row': image_row, 'anns': anns, 'image_file': rel_path,
                    'path': str(epath.Path(root).parent / rel_path),
                    'ann_file': ann_file.name})
    return tasks


def _process(task: dict[str, Any]) -> list[common.Outcome]:
  """Reads one frame and makes an example per person in it (runs in a worker)."""
  rel_path, anns, image_row = task['image_file'], task['anns'], task['image_row']
  frame, source = common.read_frame_and_source(epath.Path(task['path']))
  if frame is None:
    return [common.Outcome(skip_reason='unreadable_image', skip_path=rel_path),
            common.Outcome(skip_reason='unreadable_image_rows', skip_count=len(anns))]
  outcomes = []
  for ann in anns:
    where = f"pw3d {task['ann_file']} annotation {ann.get('id')}"
    example = _make_example(image_row, ann, frame, rel_path, where)
    if example is None:
      outcomes.append(common.Outcome(skip_reason='small_bbox',
                                     skip_path=f"{rel_path} annotation {ann.get('id')}"))
      continue
    first = not any(o.example is not None for o in outcomes)
    key = f"{image_row['sequence']}/{image_row['file_name']}/{ann.get('id')}"
    outcomes.append(common.example_outcome(key, example, frame.shape, first, source))
  return outcomes


def _make_example(image_row: dict[str, Any], ann: dict[str, Any], frame: np.ndarray,
                  image_file: str, where: str) -> dict[str, Any] | None:
  """One 3DPW person annotation -> example; None if its box is under 5 px."""
  common.require_keys(ann, ('bbox', 'smpl_param', 'h36m_joints', 'smpl_joint_cam'),
                      where)
  height, width = frame.shape[:2]
  bbox = boxes.xywh_to_xyxy(ann['bbox'], width, height, inclusive=True)
  if bbox[0] > bbox[2] - _MIN_BOX_PX or bbox[1] > bbox[3] - _MIN_BOX_PX:
    return None
  crop, offset = common.crop_in_frame(frame, bbox)
  cam = image_row['cam_param']
  common.require_keys(cam, ('focal', 'princpt'), where + ' cam_param')
  K = features.shift_intrinsics(common.intrinsics_from_fc(cam['focal'], cam['princpt']),
                                offset)

  ex = features.empty_example(_NUM_NATIVE)
  ex.update(image=crop, image_file=image_file, crop_offset=offset,
            bbox=features.shift_bbox(bbox, offset), intrinsics=K)

  smpl = np.asarray(ann['smpl_joint_cam'], np.float64).reshape(-1, 3)
  if smpl.shape[0] not in (24, 29):
    raise ValueError(f'{where}: smpl_joint_cam must hold 24 or 29 joints, got '
                     f'{smpl.shape[0]}')
  joints29 = np.zeros((29, 3))
  joints29[:smpl.shape[0]] = smpl
  source_valid = (np.arange(29) < smpl.shape[0]).astype(np.float32)
  cam29, img29, valid29 = common.joints_in_crop(joints29, source_valid, K)
  ex.update(joints29_cam=cam29, joints29_img=img29, joints29_valid=valid29,
            native_joints_cam=cam29[:24], native_joints_img=img29[:24],
            native_joints_valid=valid29[:24])
  if valid29[0] > 0:
    ex['joint_root'] = cam29[0]

  h36m = np.asarray(ann['h36m_joints'], np.float64).reshape(17, 3)
  cam17, _, valid17 = common.joints_in_crop(h36m, np.ones(17), K)
  ex.update(joints17_cam=cam17, joints17_valid=valid17)

  param = ann['smpl_param']
  common.require_keys(param, ('shape', 'pose'), where + ' smpl_param')
  theta = np.asarray(param['pose'], np.float64).reshape(24, 3)
  beta = np.asarray(param['shape'], np.float64).reshape(10)
  if np.all(np.isfinite(theta)) and np.all(np.isfinite(beta)):
    ex.update(smpl_theta=theta, smpl_beta=beta, smpl_valid=np.float32(1))
  gender = str(param.get('gender', 'neutral')).lower()
  ex['gender'] = np.int32(_GENDERS.get(gender, features.GENDER_NEUTRAL))
  return features.check_example(ex, _NUM_NATIVE)
