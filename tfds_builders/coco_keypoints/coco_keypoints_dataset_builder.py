"""MSCOCO 2017 person keypoints: one person crop + 17 2D keypoints per example."""

import collections
import functools
from typing import Any

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from hybrik_jax.data import boxes
from hybrik_jax.data import features
from tfds_builders import real_data_common as common

_SUBDIR = 'coco'

# Named coco_keypoints, not coco: TFDS ships its own `coco` (detection), and
# `tfds build` / `tfds.builder('coco')` must never pick the wrong one. The
# manual_dir subfolder stays coco/ (HybrIK's data/ layout).
_SPLITS = {'train': 'train2017', 'validation': 'val2017'}
_PERSON = 'person'

# COCO's 17 keypoints, in the annotation order.
JOINT_NAMES = ('nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear',
               'left_shoulder', 'right_shoulder', 'left_elbow', 'right_elbow',
               'left_wrist', 'right_wrist', 'left_hip', 'right_hip',
               'left_knee', 'right_knee', 'left_ankle', 'right_ankle')
NUM_JOINTS = len(JOINT_NAMES)
# SMPL joint i <- COCO keypoint SMPL24_FROM_NATIVE[i] (-1: none), HybrIK's
# mix_dataset.py s_coco_2_smpl_jt, for the input pipeline's 2D targets.
SMPL24_FROM_NATIVE = (-1, -1, -1, -1, 13, 14, -1, 15, 16, -1, -1, -1, -1, -1, -1, -1,
                      5, 6, 7, 8, 9, 10, -1, -1)

_INSTRUCTIONS = """\
COCO 2017 images and annotations (https://cocodataset.org, annotations CC BY 4.0; images
under their Flickr licences) are large; download them yourself:
  http://images.cocodataset.org/zips/train2017.zip
  http://images.cocodataset.org/zips/val2017.zip
  http://images.cocodataset.org/annotations/annotations_trainval2017.zip
Layout under manual_dir (HybrIK's data/ folder works as is):
  <manual_dir>/coco/annotations/person_keypoints_train2017.json
  <manual_dir>/coco/annotations/person_keypoints_val2017.json
  <manual_dir>/coco/train2017/000000000009.jpg ...
  <manual_dir>/coco/val2017/000000000139.jpg ...
Then: python -m hybrik_jax.prepare_data --dataset coco_keypoints --manual_dir <manual_dir>
  (or: tfds build tfds_builders/coco_keypoints --manual_dir=<manual_dir>)
"""


class Builder(common.GenerationMixin, tfds.core.GeneratorBasedBuilder):
  """COCO 2017 person keypoints (train, validation), HybrIK's selection of people.

  Per example: a crop around one person (features.DEFAULT_MARGIN, clipped to the
  frame); native_joints_img / native_joints_valid: COCO's 17 keypoints in crop px,
  valid where COCO's visibility flag v > 0 (labelled, visible or not);
  joints29_img / joints29_valid: the 10 SMPL joints HybrIK takes from COCO
  (SMPL24_FROM_NATIVE: knees, ankles, shoulders, elbows, wrists), 2D only.
  No 3D, no camera: intrinsics, joint_root, joints29_cam and the other 3D
  fields are zeros (joint_root z = 0 marks "no depth").
  People HybrIK leaves out (crowds, no keypoints, empty boxes) are counted in
  the metadata under `skipped`.
  """

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release: crops clipped to the frame.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=features.example_features(NUM_JOINTS),
        supervised_keys=None,
        homepage='https://cocodataset.org/#keypoints-2017',
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = common.dataset_root(dl_manager, _SUBDIR, 'coco_keypoints',
                              _INSTRUCTIONS)
    generators = {}
    for split, name in _SPLITS.items():
      ann_file = common.first_existing(
          root / 'annotations', (f'person_keypoints_{name}.json',), 'coco_keypoints',
          _INSTRUCTIONS)
      generators[split] = self._generate_examples(root, ann_file, split, name)
    return generators

  def _generate_examples(self, root: epath.Path, ann_file: epath.Path, split: str,
                         image_dir: str):
    """(key, example) iterator, or a beam.PTransform (common.GenerationMixin)."""
    return self._generate(split, functools.partial(
        self._tasks, root, ann_file, split, image_dir), _process)

  def _tasks(self, root: epath.Path, ann_file: epath.Path, split: str,
             image_dir: str, skips: common.SkipCounter) -> list[dict[str, Any]]:
    """One task per image with usable people (see _process)."""
    self.info.metadata.setdefault('annotation_files', {})[split] = ann_file.name
    database = common.load_json(ann_file, 'coco_keypoints')
    for key in ('images', 'annotations', 'categories'):
      if key not in database:
        raise KeyError(f'coco_keypoints: {ann_file} has no {key!r} list; is it a COCO '
                       'person_keypoints file?')
    person_ids = {c['id'] for c in database['categories'] if c.get('name') == _PERSON}
    if not person_ids:
      raise ValueError(f'coco_keypoints: {ann_file} has no {_PERSON!r} category')
    by_image = collections.defaultdict(list)
    for ann in database['annotations']:
      if ann.get('category_id') in person_ids:
        by_image[ann['image_id']].append(ann)
    tasks = []
    for image_row in sorted(database['images'], key=lambda r: r['id']):
      common.require_keys(image_row, ('id', 'file_name'), f'coco_keypoints {ann_file.name} image')
      candidates = []
      for ann in by_image.get(image_row['id'], []):
        reason = _unusable(ann)
        if reason:
          skips.skip(reason)
        else:
          candidates.append(ann)
      if not candidates:
        continue
      rel_path = _image_path(image_row, image_dir)
      tasks.append({'image_id': image_row['id'], 'anns': candidates,
                    'image_file': rel_path,
                    'path': str(epath.Path(root).parent / rel_path)})
    return tasks


def _process(task: dict[str, Any]) -> list[common.Outcome]:
  """Reads one frame and makes an example per usable person (runs in a worker)."""
  rel_path, anns = task['image_file'], task['anns']
  frame, source = common.read_frame_and_source(epath.Path(task['path']))
  if frame is None:
    return [common.Outcome(skip_reason='unreadable_image', skip_path=rel_path),
            common.Outcome(skip_reason='unreadable_image_rows', skip_count=len(anns))]
  outcomes = []
  for ann in anns:
    example = _make_example(ann, frame, rel_path)
    if example is None:
      outcomes.append(common.Outcome(skip_reason='degenerate_bbox'))
      continue
    first = not any(o.example is not None for o in outcomes)
    outcomes.append(common.example_outcome(f"{task['image_id']}_{ann['id']}", example,
                                           frame.shape, first, source))
  return outcomes


def _image_path(image_row: dict[str, Any], image_dir: str) -> str:
  """coco/<dir>/<file>, the folder from `coco_url` as HybrIK does, else the split's."""
  url = image_row.get('coco_url', '')
  parts = url.split('/')
  if len(parts) >= 2 and parts[-1] == image_row['file_name']:
    image_dir = parts[-2]
  return f"{_SUBDIR}/{image_dir}/{image_row['file_name']}"


def _unusable(ann: dict[str, Any]) -> str:
  """Why HybrIK (mscoco.py) leaves a person annotation out; '' if usable."""
  if ann.get('iscrowd', 0):
    return 'crowd'
  keypoints = ann.get('keypoints') or []
  if len(keypoints) != 3 * NUM_JOINTS:
    return 'no_keypoints' if not keypoints else 'malformed_keypoints'
  if (max(keypoints) == 0 or ann.get('num_keypoints', 1) == 0
      or not any(v > 0 for v in keypoints[2::3])):
    return 'no_keypoints'
  if ann.get('area', 1.0) <= 0:
    return 'empty_area'
  return ''


def _make_example(ann: dict[str, Any], frame: np.ndarray,
                  image_file: str) -> dict[str, Any] | None:
  """One COCO person -> example; None if its clipped box is empty."""
  height, width = frame.shape[:2]
  bbox = boxes.xywh_to_xyxy(ann['bbox'], width, height, inclusive=True)
  if not (bbox[2] > bbox[0] and bbox[3] > bbox[1]):
    return None
  keypoints = np.asarray(ann['keypoints'], np.float64).reshape(NUM_JOINTS, 3)
  valid = ((keypoints[:, 2] > 0) & np.all(np.isfinite(keypoints), axis=1))
  crop, offset = common.crop_in_frame(frame, bbox)
  ex = features.empty_example(NUM_JOINTS)
  points = np.where(valid[:, None], features.shift_points(
      np.nan_to_num(keypoints[:, :2]), offset), 0.0)
  valid = valid.astype(np.float32)
  ex.update(image=crop, image_file=image_file, crop_offset=offset,
            bbox=features.shift_bbox(bbox, offset),
            native_joints_img=points, native_joints_valid=valid)
  for smpl, native in enumerate(SMPL24_FROM_NATIVE):
    if native >= 0:
      ex['joints29_img'][smpl] = points[native]
      ex['joints29_valid'][smpl] = valid[native]
  return features.check_example(ex, NUM_JOINTS)
