"""HybrIK's input pipeline: preprocessing, grain loaders and the training mix.

Examples come from TFDS builders (ArrayRecord, random access) through
`tfds.data_source`, which decodes JPEGs with OpenCV (no TensorFlow op in the
hot path), or from any random-access source (`__len__`, `__getitem__`) given in
`data_sources` (tests). grain turns them into per-host numpy batches
(docs/ARCHITECTURE.md, "Batches"):

  train: per dataset: shard for this host -> shuffle (reshuffled each epoch)
         -> repeat -> random_map(preprocess_train) ; mix with the config's
         weights (deterministic interleave) -> batch -> [worker processes]
  eval:  shard for this host -> pad to whole batches (mask 0) -> preprocess_eval

Every random choice comes from grain's per-element generator, seeded from
(seed, host, dataset), so batch i is a pure function of (config, seed, host,
i): the same seed gives the same batches whatever the number of worker
processes, and a restored iterator state (`iterator.get_state()` ->
{'next_batch': i}, `set_state`; JSON, e.g. through grain's Orbax handler) gives
the same next batch, also with another worker_count.

The mixture is grain's deterministic interleave in the weights' proportions
(HybrIK draws the dataset of each sample at random with the same
probabilities). HybrIK's half-body transform and DPG box jitter are off in its
configs (PROB_HALF_BODY -1, DPG False) and not implemented here.

The loaders take a typed `DataConfig`, built once from the trainer's
`config.data` by `DataConfig.from_config` (the only place that reads it; see
`DataConfig` for the fields and their defaults, `augment.AugmentConfig` for
the augmentation's).
"""

from collections.abc import Mapping
import dataclasses
import functools
import importlib
import math
from typing import Any

import grain
import numpy as np

from hybrik_jax.body import constants
from hybrik_jax.data import augment
from hybrik_jax.data import targets

# HybrIK's training mixes (mix_dataset.py): H36M, COCO, MPI-INF-3DHP [, 3DPW].
HYBRIK_MIX = (('h36m', 0.4), ('coco_keypoints', 0.5), ('mpi_inf_3dhp', 0.1))
HYBRIK_MIX_W_PW3D = (('h36m', 0.3), ('coco_keypoints', 0.4), ('mpi_inf_3dhp', 0.1),
                     ('pw3d', 0.2))

# `dataset_id` in the batches, by TFDS dataset name (config suffix ignored).
DATASET_IDS = {'h36m': 0, 'coco_keypoints': 1, 'mpi_inf_3dhp': 2, 'pw3d': 3,
               'synthetic_humans': 4, 'synthetic_whole_body': 5}
UNKNOWN_DATASET_ID = -1

# HybrIK's box margin is 1.25 except for its Human3.6M SMPL set (1.0).
DEFAULT_SCALE_MULT = 1.25
DEFAULT_SCALE_MULT_PER_DATASET = {'h36m': 1.0}

BATCH_KEYS = (
    'image', 'target_uvd_29', 'target_uvd_weight_29', 'target_xyz_24',
    'target_xyz_weight_24', 'target_theta', 'target_theta_weight', 'target_beta',
    'target_smpl_weight', 'target_twist', 'target_twist_weight', 'trans_inv',
    'intrinsics', 'joint_root', 'depth_factor', 'joints17_cam', 'joints17_valid',
    'bbox', 'dataset_id', 'mask')


def _pair(size) -> tuple[int, int]:
  """int or (h, w) -> (h, w)."""
  if isinstance(size, (int, np.integer)):
    return int(size), int(size)
  h, w = size
  return int(h), int(w)


def base_name(name: str) -> str:
  """'synthetic_humans/tiny:1.0.0' -> 'synthetic_humans'."""
  return name.split('/')[0].split(':')[0]


def resolve_name(name: str) -> str:
  """The dataset name with an old, renamed base replaced ('coco' -> 'coco_keypoints',
  one deprecation line on stderr; tfds_builders.RENAMED)."""
  import tfds_builders  # pylint: disable=g-import-not-at-top
  return tfds_builders.resolve_name(name)


def dataset_id(name: str) -> int:
  """The batch's dataset_id of a TFDS dataset name (DATASET_IDS, else -1)."""
  return DATASET_IDS.get(base_name(resolve_name(name)), UNKNOWN_DATASET_ID)


def parse_mix(mix) -> tuple[tuple[str, float], ...]:
  """config.data.train_datasets -> ((tfds name, weight > 0), ...).

  Accepts ((name, weight), ...), a {name: weight} mapping, bare names
  (weight 1) and a single name.

  Raises:
    ValueError: empty, or a weight that is not > 0.
  """
  if isinstance(mix, str):
    mix = ((mix, 1.0),)
  if not mix:
    raise ValueError('config.data.train_datasets must list (tfds name, weight) pairs, '
                     'e.g. input_pipeline.HYBRIK_MIX')
  if isinstance(mix, Mapping):
    mix = list(mix.items())
  out = []
  for item in mix:
    if isinstance(item, str):
      item = (item, 1.0)
    name, weight = item
    if not float(weight) > 0:
      raise ValueError(f'config.data.train_datasets: weight of {name!r} must be > 0, '
                       f'got {weight}')
    out.append((str(name), float(weight)))
  return tuple(out)


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """What the loaders need, typed; `from_config(config.data)` builds it.

  Attributes:
    train_datasets: ((tfds name, weight), ...) (`parse_mix`); empty means
      no training mix (evaluation only).
    data_dir: TFDS data_dir (None: TFDS's default).
    train_split, eval_dataset, eval_split: TFDS names.
    augmentation: the training augmentation (its defaults are HybrIK's).
    scale_mult: box margin (HybrIK: 1.25) ...
    scale_mult_per_dataset: ... except these datasets ((name, margin), ...).
    flip_prob_per_dataset: ((name, probability), ...): these datasets' flip
      probability instead of augmentation.flip_prob (HybrIK's camera preset
      flips its SMPL datasets, H36M and 3DPW, with probability 0.25).
    worker_count: grain worker processes (0: in this process).
    worker_buffer_size: batches buffered per worker.
    read_threads: threads preprocessing elements per process.
    cache_decoded: keep each training example in memory once read and decoded
      (`DecodedCache`): later epochs skip the image decoding. For datasets that
      fit in memory (synthetic_humans/small: about 0.2 GB); per worker process.
    camera_targets: HybrIK's camera preset (simple_smpl_3d_cam) for training
      and evaluation batches: the camera models' targets (`preprocess_example`).
    focal_length: the camera models' virtual focal length, px (their configs'
      FOCAL_LENGTH; used with camera_targets).
  """
  train_datasets: tuple[tuple[str, float], ...] = ()
  data_dir: str | None = None
  train_split: str = 'train'
  eval_dataset: str = 'h36m'
  eval_split: str = 'test'
  augmentation: augment.AugmentConfig = augment.AugmentConfig()
  scale_mult: float = DEFAULT_SCALE_MULT
  scale_mult_per_dataset: tuple[tuple[str, float], ...] = tuple(
      DEFAULT_SCALE_MULT_PER_DATASET.items())
  flip_prob_per_dataset: tuple[tuple[str, float], ...] = ()
  worker_count: int = 0
  worker_buffer_size: int = 2
  read_threads: int = 4
  cache_decoded: bool = False
  camera_targets: bool = False
  focal_length: float = targets.DEFAULT_FOCAL_LENGTH

  # config.data fields that are the trainer's, not the loaders'.
  _TRAINER_FIELDS = ('build_if_missing',)

  @classmethod
  def from_config(cls, data) -> 'DataConfig':
    """From a config.data section (ConfigDict or dict; absent fields keep
    their defaults).

    Raises:
      ValueError: an unknown field, or a bad training mix.
    """
    data = dict(data.items()) if data is not None else {}
    aug_fields = {f.name for f in dataclasses.fields(augment.AugmentConfig)}
    own = {f.name for f in dataclasses.fields(cls)} - {'augmentation'}
    unknown = set(data) - aug_fields - own - set(cls._TRAINER_FIELDS)
    if unknown:
      raise ValueError(f'unknown config.data fields {sorted(unknown)}')
    aug = augment.AugmentConfig(**{
        k: type(getattr(augment.AugmentConfig, k))(data[k])
        for k in aug_fields if k in data})
    kw = {k: data[k] for k in own if k in data}
    if 'train_datasets' in kw:
      kw['train_datasets'] = parse_mix(kw['train_datasets']) if kw['train_datasets'] else ()
    for key in ('scale_mult_per_dataset', 'flip_prob_per_dataset'):
      if key in kw:
        kw[key] = tuple((str(k), float(v)) for k, v in dict(kw[key] or {}).items())
    for k, typ in (('scale_mult', float), ('worker_count', int),
                   ('worker_buffer_size', int), ('read_threads', int),
                   ('cache_decoded', bool), ('camera_targets', bool),
                   ('focal_length', float)):
      if k in kw:
        kw[k] = typ(kw[k])
    return cls(augmentation=aug, **kw)

  def augmentation_for(self, name: str) -> augment.AugmentConfig:
    """A dataset's augmentation: `augmentation` with its flip_prob_per_dataset."""
    flip = dict(self.flip_prob_per_dataset).get(base_name(name))
    if flip is None:
      return self.augmentation
    return dataclasses.replace(self.augmentation, flip_prob=float(flip))

  def scale_mult_for(self, name: str) -> float:
    """Box margin of a dataset: scale_mult_per_dataset[name] else scale_mult."""
    return float(dict(self.scale_mult_per_dataset).get(base_name(name), self.scale_mult))


# ----------------------------------------------------------------------------
# Per-example preprocessing.
# ----------------------------------------------------------------------------


def preprocess_image(image: np.ndarray, bbox, input_size,
                     scale_mult: float = DEFAULT_SCALE_MULT) -> tuple[np.ndarray, np.ndarray]:
  """Evaluation-time crop of one person (also used by the demo).

  Args:
    image: (H, W, 3) uint8 RGB.
    bbox: (4,) person box [x_min, y_min, x_max, y_max] in image px.
    input_size: int or (in_h, in_w).
    scale_mult: box margin (HybrIK: 1.25).

  Returns:
    input: (in_h, in_w, 3) float32, ImageNet-normalised (augment.normalize_image).
    trans_inv: (2, 3) float32, input px -> image px.
  """
  in_h, in_w = _pair(input_size)
  center, size = augment.box_to_center_scale(bbox, in_w / in_h, scale_mult)
  trans = augment.crop_affine(center, size[0], 0.0, (in_w, in_h))
  inp = augment.normalize_image(augment.warp(np.asarray(image), trans, (in_w, in_h)))
  return inp, augment.invert_affine(trans).astype(np.float32)


def preprocess_example(example: Mapping[str, Any], *, input_size, scale_mult: float,
                       dataset_id: int, augmentation: augment.Augmentation | None = None,
                       occlusion_rng: np.random.Generator | None = None,
                       camera_targets: bool = False,
                       focal_length: float = targets.DEFAULT_FOCAL_LENGTH
                       ) -> dict[str, np.ndarray]:
  """One stored example (data/features.py) -> one batch element (ARCHITECTURE.md).

  Args:
    example: the decoded example: image (Hc, Wc, 3) uint8 and the common fields.
    input_size: int or (in_h, in_w).
    scale_mult: box margin.
    dataset_id: stored as `dataset_id`.
    augmentation: scale, rotation, flip, colour; None for none.
    occlusion_rng: if given, paste HybrIK's synthetic occluder drawn from it
      (the SMPL-data occluder when smpl_valid, else the 2D-data one).
    camera_targets: HybrIK's camera preset (simple_smpl_3d_cam, for the
      camera models; data/targets.py): the rotation also turns theta's root
      and target_xyz_24, uvd weights are kept outside the crop, and the batch
      gains target_rotmats, target_rotmats_weight (24, 3, 3),
      target_camera_scale (1,), target_camera_trans (2,) m,
      target_camera_valid (1,), target_camera_error (1,) mm and img_center (2,)
      (the stored image's centre, px).
    focal_length: the camera models' virtual focal length, px (camera preset).

  Returns:
    dict of float32 arrays (dataset_id int32) with the batch fields, unbatched.
    After a flip, trans_inv, intrinsics, joint_root and bbox describe the
    mirrored stored image and camera (x -> Wc - 1 - x, X -> -X), so uvd and
    target_xyz_24 stay consistent with them. As in HybrIK's SMPL preset, the
    in-plane rotation changes the 2D targets only (theta and xyz are not
    rotated), except with camera_targets (its camera preset).
  """
  if 'joints71_cam' in example:  # the whole-body (SMPL-X) spec
    return preprocess_example_smplx(
        example, input_size=input_size, scale_mult=scale_mult, dataset_id=dataset_id,
        augmentation=augmentation, occlusion_rng=occlusion_rng, focal_length=focal_length)
  aug = augmentation if augmentation is not None else augment.Augmentation()
  in_h, in_w = _pair(input_size)
  smpl_valid = float(np.asarray(example['smpl_valid'])) > 0
  inp, trans, center, size, width, height = _crop(
      example, input_size, scale_mult, aug, occlusion_rng,
      augment.OCCLUSION_3D if smpl_valid else augment.OCCLUSION_2D)

  joints_img = np.asarray(example['joints29_img'], np.float64)
  joints_cam = np.asarray(example['joints29_cam'], np.float64)
  valid_2d = np.asarray(example['joints29_valid'], np.float32)
  valid_3d = targets.joints_3d_valid(example)
  joint_root = np.asarray(example['joint_root'], np.float32).copy()
  intrinsics = np.asarray(example['intrinsics'], np.float32)
  joints17 = np.asarray(example['joints17_cam'], np.float32)
  valid17 = np.asarray(example['joints17_valid'], np.float32)
  if aug.flip:
    perm29, perm17 = list(constants.FLIP_PERM_29), list(constants.FLIP_PERM_H36M)
    joints_img = augment.flip_points_2d(joints_img, width, perm29)
    joints_cam = augment.flip_points_3d(joints_cam, perm29)
    valid_2d, valid_3d = valid_2d[perm29], valid_3d[perm29]
    joint_root[0] = -joint_root[0]
    intrinsics = augment.flip_intrinsics(intrinsics, width)
    joints17 = augment.flip_points_3d(joints17, perm17)
    valid17 = valid17[perm17]

  depth_factor = float(np.asarray(example['depth_factor']))
  # Depth relative to the labelled pelvis of the 29 joints (HybrIK), else the root.
  z_root = float(joints_cam[0, 2]) if valid_3d[0] > 0 else float(joint_root[2])
  joints_in = augment.apply_affine(trans, joints_img)
  uvd, uvd_weight = targets.uvd_targets(
      joints_in, joints_cam[:, 2], valid_2d, valid_3d, z_root, depth_factor, (in_h, in_w),
      zero_outside=not camera_targets)
  w24 = valid_3d[:24] * valid_3d[0]
  xyz24 = joints_cam[:24] - joints_cam[0]
  if camera_targets:
    xyz24 = targets.rotate_xy(xyz24, aug.rotation)
  xyz24 = xyz24 * w24[:, None]

  out = {
      'image': inp,
      'target_uvd_29': uvd,
      'target_uvd_weight_29': uvd_weight,
      'target_xyz_24': xyz24.astype(np.float32),
      'target_xyz_weight_24': np.repeat(w24[:, None], 3, axis=1).astype(np.float32),
      'trans_inv': augment.invert_affine(trans).astype(np.float32),
      'intrinsics': intrinsics.astype(np.float32),
      'joint_root': joint_root,
      'depth_factor': np.array([depth_factor], np.float32),
      'joints17_cam': (joints17 * (valid17[:, None] > 0)).astype(np.float32),
      'joints17_valid': (valid17 > 0).astype(np.float32),
      'bbox': augment.center_scale_to_box(center, size).astype(np.float32),
      'dataset_id': np.int32(dataset_id),
      'mask': np.float32(1.0),
  }
  if not camera_targets:
    out.update(targets.smpl_targets(example, aug.flip))
    return out
  out.update(targets.smpl_targets(example, aug.flip, rotation=aug.rotation, rotmats=True))
  out.update(targets.camera_targets(xyz24, uvd, uvd_weight, focal_length=focal_length,
                                    input_size=(in_h, in_w), depth_factor=depth_factor))
  out['img_center'] = np.array([0.5 * width, 0.5 * height], np.float32)
  return out


def _crop(example, input_size, scale_mult, aug, occlusion_rng, occlusion_area):
  """The augmented input crop: (input, trans (2, 3), centre, size, width, height)."""
  in_h, in_w = _pair(input_size)
  image = np.asarray(example['image'])
  if image.ndim != 3 or image.shape[2] != 3:
    raise ValueError(f'example image must be (H, W, 3), got {image.shape}')
  height, width = image.shape[:2]
  center, size = augment.box_to_center_scale(example['bbox'], in_w / in_h, scale_mult)
  if occlusion_rng is not None:
    image = np.array(image, copy=True)
    augment.random_occlusion(occlusion_rng, image, augment.center_scale_to_box(center, size),
                             *occlusion_area)
  size = size * aug.scale
  if aug.flip:
    center = center.copy()
    center[0] = width - 1.0 - center[0]
  trans = augment.crop_affine(center, size[0], aug.rotation, (in_w, in_h))
  warp_m = augment.compose_affine(trans, augment.flip_affine(width)) if aug.flip else trans
  crop = augment.warp(image, warp_m, (in_w, in_h))
  inp = augment.normalize_image(crop, None if np.all(aug.color == 1.0) else aug.color)
  return inp, trans, center, size, width, height


def preprocess_example_smplx(example: Mapping[str, Any], *, input_size, scale_mult: float,
                             dataset_id: int,
                             augmentation: augment.Augmentation | None = None,
                             occlusion_rng: np.random.Generator | None = None,
                             focal_length: float = targets.DEFAULT_FOCAL_LENGTH
                             ) -> dict[str, np.ndarray]:
  """One whole-body example (features.SMPLX_SHAPES) -> one HybrIK-X batch element.

  HybrIK-X's SMPL-X preset (simple_transform_3d_smplx.py; always the camera
  preset): the crop as `preprocess_example`; a flip mirrors the 71 joints
  (smplx_constants.FLIP_PERM_71), the 55 rotations (FLIP_PERM_55: y and z of each
  axis-angle negated) and the 54 twists ((cos, -sin), FLIP_PERM_TWIST_54); the
  expression is kept (as released); the in-plane rotation turns the root
  orientation and the 3D joints; uvd weights are kept outside the crop; the
  camera (scale, translation) is fitted on the first 55 joints (`targets.fit_camera`,
  weights uvd x xyz).

  Returns (float32 unless said, unbatched):
    image (in_h, in_w, 3); target_uvd_71, target_uvd_weight_71 (71, 3) (d in the
    example's depth_factor); target_xyz_71, target_xyz_weight_71 (71, 3) metres,
    root-relative; target_rotmats, target_rotmats_weight (55, 3, 3);
    target_beta (10,), target_beta_kid (1,), target_expression (10,),
    target_smpl_weight (1,); target_twist, target_twist_weight (54, 2);
    target_camera_scale (1,), target_camera_trans (2,) m, target_camera_valid (1,),
    target_camera_error (1,) mm; trans_inv (2, 3), intrinsics (3, 3), joint_root (3,),
    depth_factor (1,), bbox (4,), img_center (2,), dataset_id () int32, mask ().
  """
  from hybrik_jax.body import smplx_constants as xc  # pylint: disable=g-import-not-at-top
  aug = augmentation if augmentation is not None else augment.Augmentation()
  in_h, in_w = _pair(input_size)
  smpl_valid = float(np.asarray(example['smplx_valid']) > 0)
  area = augment.OCCLUSION_3D if smpl_valid else augment.OCCLUSION_2D
  inp, trans, center, size, width, height = _crop(example, input_size, scale_mult, aug,
                                                 occlusion_rng, area)
  joints_img = np.asarray(example['joints71_img'], np.float64)
  joints_cam = np.asarray(example['joints71_cam'], np.float64)
  valid_2d = np.asarray(example['joints71_valid'], np.float32)
  joint_root = np.asarray(example['joint_root'], np.float32).copy()
  intrinsics = np.asarray(example['intrinsics'], np.float32)
  depth_factor = float(np.asarray(example['depth_factor']))
  valid_3d = ((valid_2d > 0) & (joints_cam[:, 2] > 0) & (joint_root[2] > 0)
              & (depth_factor > 0)).astype(np.float32)
  theta = np.asarray(example['smplx_theta'], np.float32)
  twist = np.asarray(example['smplx_twist'], np.float32)
  twist_valid = (np.asarray(example['twist_valid'], np.float32) > 0).astype(np.float32)
  if aug.flip:
    perm = list(xc.FLIP_PERM_71)
    joints_img = augment.flip_points_2d(joints_img, width, perm)
    joints_cam = augment.flip_points_3d(joints_cam, perm)
    valid_2d, valid_3d = valid_2d[perm], valid_3d[perm]
    joint_root[0] = -joint_root[0]
    intrinsics = augment.flip_intrinsics(intrinsics, width)
    theta = augment.flip_theta(theta, xc.FLIP_PERM_55)
    twist, twist_valid = augment.flip_twist(twist, twist_valid, xc.FLIP_PERM_TWIST_54)
  if aug.rotation:
    theta = targets.rotate_root_orientation(theta, aug.rotation)

  z_root = float(joints_cam[0, 2]) if valid_3d[0] > 0 else float(joint_root[2])
  uvd, uvd_weight = targets.uvd_targets(
      augment.apply_affine(trans, joints_img), joints_cam[:, 2], valid_2d, valid_3d,
      z_root, depth_factor, (in_h, in_w), zero_outside=False)
  w71 = valid_3d * valid_3d[0]
  xyz = targets.rotate_xy(joints_cam - joints_cam[0], aug.rotation) * w71[:, None]
  xyz_weight = np.repeat(w71[:, None], 3, axis=1).astype(np.float32)
  n = xc.NUM_JOINTS
  cam = targets.fit_camera(xyz[:n], uvd[:n], uvd_weight[:n] * xyz_weight[:n],
                           focal_length=focal_length, input_size=(in_h, in_w),
                           depth_factor=depth_factor)
  twist_weight = np.repeat(twist_valid[:, None] * smpl_valid, 2, axis=1)
  f32 = lambda x: np.asarray(x, np.float32)
  return {
      'image': inp,
      'target_uvd_71': uvd, 'target_uvd_weight_71': uvd_weight,
      'target_xyz_71': f32(xyz), 'target_xyz_weight_71': xyz_weight,
      'target_rotmats': f32(targets.axis_angle_to_matrix(theta) * smpl_valid),
      'target_rotmats_weight': np.full((n, 3, 3), smpl_valid, np.float32),
      'target_beta': f32(np.asarray(example['smplx_beta']) * smpl_valid),
      'target_beta_kid': f32(np.asarray(example['smplx_kid']).reshape(1) * smpl_valid),
      'target_expression': f32(np.asarray(example['smplx_expression']) * smpl_valid),
      'target_smpl_weight': np.full((1,), smpl_valid, np.float32),
      'target_twist': f32(twist * twist_weight), 'target_twist_weight': f32(twist_weight),
      'target_camera_scale': cam['scale'], 'target_camera_trans': cam['trans'],
      'target_camera_valid': cam['valid'], 'target_camera_error': cam['error_mm'],
      'trans_inv': augment.invert_affine(trans).astype(np.float32),
      'intrinsics': intrinsics.astype(np.float32), 'joint_root': joint_root,
      'depth_factor': np.array([depth_factor], np.float32),
      'bbox': augment.center_scale_to_box(center, size).astype(np.float32),
      'img_center': np.array([0.5 * width, 0.5 * height], np.float32),
      'dataset_id': np.int32(dataset_id), 'mask': np.float32(1.0),
  }


def preprocess_train(example: Mapping[str, Any], rng: np.random.Generator, *, input_size,
                     augment_config: augment.AugmentConfig = augment.AugmentConfig(),
                     scale_mult: float = DEFAULT_SCALE_MULT,
                     dataset_id: int = UNKNOWN_DATASET_ID,
                     **camera) -> dict[str, np.ndarray]:
  """HybrIK's training transform of one example with randomness from `rng`.

  See preprocess_example for the fields (and `camera`: its camera_targets,
  focal_length); grain's random_map calls this with a generator seeded per
  element.
  """
  aug = augment.sample_augmentation(rng, augment_config)
  return preprocess_example(
      example, input_size=input_size, scale_mult=scale_mult, dataset_id=dataset_id,
      augmentation=aug, occlusion_rng=rng if augment_config.occlusion else None, **camera)


def preprocess_eval(example: Mapping[str, Any], *, input_size,
                    scale_mult: float = DEFAULT_SCALE_MULT,
                    dataset_id: int = UNKNOWN_DATASET_ID, **camera) -> dict[str, np.ndarray]:
  """Evaluation transform: the box crop without augmentation, same fields."""
  return preprocess_example(example, input_size=input_size, scale_mult=scale_mult,
                            dataset_id=dataset_id, **camera)


def camera_kwargs(data_config: 'DataConfig') -> dict[str, Any]:
  """The camera preset's preprocess_example arguments of a DataConfig ({} without it)."""
  if not data_config.camera_targets:
    return {}
  return {'camera_targets': True, 'focal_length': data_config.focal_length}


# ----------------------------------------------------------------------------
# Sources.
# ----------------------------------------------------------------------------


def open_data_source(name: str, split: str, data_dir: str | None = None):
  """A random-access TFDS source (ArrayRecord) of a prepared dataset.

  `name` may carry a builder config, e.g. 'synthetic_humans/tiny'. The builder
  module tfds_builders.<name> is imported when it exists (to register it);
  otherwise TFDS reads the prepared files' metadata. Nothing is built here
  (download=False): a missing dataset raises ValueError naming the command.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  name = resolve_name(name)
  module = f'tfds_builders.{base_name(name)}'
  try:
    importlib.import_module(module)
  except ModuleNotFoundError as e:
    if e.name not in ('tfds_builders', module):
      raise
  try:
    return tfds.data_source(name, split=split, data_dir=data_dir, download=False)
  except Exception as e:  # Name the dataset and what to do.
    config = name.split(':')[0].split('/')[1] if '/' in name else None
    build = f'--dataset {base_name(name)}' + (f' --config {config}' if config else '')
    raise ValueError(
        f'could not open TFDS dataset {name!r} split {split!r} in data_dir '
        f'{data_dir!r}: {e}. Prepare it first (python -m hybrik_jax.prepare_data '
        f'{build}, array_record format) or fix config.data.'
    ) from e


class DecodedCache:
  """A random-access source that keeps every example it has read (decoded).

  Wraps a source with __len__ and __getitem__ (a TFDS data source); example i is
  read from it once, later reads return the kept dict (its arrays are shared:
  preprocessing must not write into them, and does not). Thread-safe for the
  pipeline's reader threads (two threads may both read an example once).
  """

  def __init__(self, source):
    self._source = source
    self._examples = {}

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index):
    index = int(index)
    example = self._examples.get(index)
    if example is None:
      example = self._source[index]
      self._examples[index] = example
    return example

  def __repr__(self) -> str:
    return f'DecodedCache({self._source!r}, {len(self._examples)} kept)'


def _shard(shard_index: int | None, shard_count: int | None) -> tuple[int, int]:
  if shard_index is None or shard_count is None:
    import jax  # pylint: disable=g-import-not-at-top
    shard_index = jax.process_index() if shard_index is None else shard_index
    shard_count = jax.process_count() if shard_count is None else shard_count
  if not 0 <= shard_index < shard_count:
    raise ValueError(f'shard_index {shard_index} must be in [0, {shard_count})')
  return int(shard_index), int(shard_count)


def _host_shard(global_batch_size: int, shard_index: int | None,
                shard_count: int | None) -> tuple[int, int, int]:
  """(shard_index, shard_count, this host's batch size) of a global batch."""
  shard_index, shard_count = _shard(shard_index, shard_count)
  if global_batch_size % shard_count:
    raise ValueError(f'global_batch_size {global_batch_size} must be divisible by the '
                     f'number of hosts {shard_count}')
  return shard_index, shard_count, global_batch_size // shard_count


def _multiprocessing(ds: grain.IterDataset, worker_count: int,
                     buffer_size: int) -> grain.IterDataset:
  """ds read by `worker_count` grain worker processes (0: ds unchanged)."""
  if worker_count <= 0:
    return ds
  # grain's workers read absl flags; outside absl.app (tests, notebooks) they
  # are unparsed, so take their defaults.
  from absl import flags  # pylint: disable=g-import-not-at-top
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
  return ds.mp_prefetch(
      grain.MultiprocessingOptions(num_workers=worker_count,
                                   per_worker_buffer_size=buffer_size),
      worker_init_fn=_init_worker)


def _init_worker(worker_index: int, worker_count: int) -> None:
  """One OpenCV thread per grain worker process (the workers use the cores)."""
  del worker_index, worker_count
  import cv2  # pylint: disable=g-import-not-at-top
  cv2.setNumThreads(1)


def _seeds(seed: int, *keys: int) -> int:
  """A 32-bit seed derived from (seed, *keys)."""
  return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *keys]).generate_state(1)[0])


_MIN_SHUFFLE_SIZE = 1024


def create_train_dataset(data_config: DataConfig, *, global_batch_size: int, seed: int, input_size,
                         data_sources: Mapping[str, Any] | None = None,
                         shard_index: int | None = None,
                         shard_count: int | None = None) -> grain.MapDataset:
  """The infinite training MapDataset of per-host batches (see module doc).

  Batch i is a pure function of (config, seed, host, i); create_train_iterator
  reads them in order with threads and worker processes.

  Args:
    data_config: the DataConfig (`DataConfig.from_config(config.data)`).
    global_batch_size: batch over all hosts; each host yields
      global_batch_size // shard_count examples per batch.
    seed: fixes the shuffles, the mixture order and every augmentation.
    input_size: int or (in_h, in_w).
    data_sources: optional {name: random-access source} replacing
      tfds.data_source for those names (tests, in-memory data).
    shard_index, shard_count: this host's shard (default jax.process_index()
      and jax.process_count()).

  Returns:
    a grain MapDataset of dicts of numpy arrays with a leading batch axis.
  """
  shard_index, shard_count, batch_size = _host_shard(global_batch_size, shard_index,
                                                     shard_count)
  _check_data_config(data_config)
  if not data_config.train_datasets:
    raise ValueError('config.data.train_datasets must list (tfds name, weight) pairs, '
                     'e.g. input_pipeline.HYBRIK_MIX')
  data_sources = data_sources or {}
  components, weights = [], []
  for i, (name, weight) in enumerate(data_config.train_datasets):
    source = data_sources.get(name)
    if source is None:
      source = open_data_source(name, data_config.train_split, data_config.data_dir)
    if len(source) < shard_count:
      raise ValueError(f'dataset {name!r} has {len(source)} examples, fewer than the '
                       f'{shard_count} hosts')
    if data_config.cache_decoded:
      source = DecodedCache(source)
    ds = grain.MapDataset.source(source)[shard_index::shard_count]
    if len(ds) < _MIN_SHUFFLE_SIZE:
      # grain's index shuffle costs milliseconds per element on tiny domains:
      # shuffle blocks of several epochs instead (each element equally often).
      ds = ds.repeat(math.ceil(_MIN_SHUFFLE_SIZE / len(ds)))
    ds = ds.shuffle(seed=_seeds(seed, 0, i)).repeat()
    ds = ds.random_map(
        functools.partial(preprocess_train, input_size=_pair(input_size),
                          augment_config=data_config.augmentation_for(name),
                          scale_mult=data_config.scale_mult_for(name),
                          dataset_id=dataset_id(name), **camera_kwargs(data_config)),
        seed=_seeds(seed, 1, i, shard_index))
    components.append(ds)
    weights.append(weight)
  ds = components[0] if len(components) == 1 else grain.MapDataset.mix(components, weights)
  # Batch before the workers: each worker makes whole batches, and the batch
  # sequence does not depend on the number of workers.
  return ds.batch(batch_size, drop_remainder=True)


class BatchIterator:
  """Iterates over a MapDataset of batches; its state is the next batch's index.

  Batches are read by `read_threads` threads and, if worker_count > 0, by grain
  worker processes; the sequence is the MapDataset's, whatever the number of
  workers, so a state saved with one worker_count restores with another.
  get_state() -> {'next_batch': int} (JSON); set_state(state) makes the next
  batch the one that followed the save. close() stops the workers.
  """

  def __init__(self, batches: grain.MapDataset, *, read_threads: int = 4,
               worker_count: int = 0, worker_buffer_size: int = 2):
    self._batches = batches
    self._read_threads = int(read_threads)
    self._worker_count = int(worker_count)
    self._worker_buffer_size = int(worker_buffer_size)
    self._next = 0
    self._iterator = None

  def _start(self):
    ds = self._batches[self._next:] if self._next else self._batches
    ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=self._read_threads,
                                              prefetch_buffer_size=2 * self._read_threads))
    return iter(_multiprocessing(ds, self._worker_count, self._worker_buffer_size))

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    if self._iterator is None:
      self._iterator = self._start()
    batch = next(self._iterator)
    self._next += 1
    return batch

  def __len__(self) -> int:
    """Batches in one pass (sys.maxsize for the infinite training stream)."""
    return len(self._batches)

  def get_state(self) -> dict[str, int]:
    return {'next_batch': self._next}

  def set_state(self, state: Mapping[str, Any]) -> None:
    if 'next_batch' not in state:
      raise ValueError(f'not a BatchIterator state (no next_batch): {state!r}')
    self.close()
    self._next = int(state['next_batch'])

  def close(self) -> None:
    if self._iterator is not None:
      close = getattr(self._iterator, 'close', None)
      if close is not None:
        close()
      self._iterator = None


def _check_data_config(data_config) -> None:
  if not isinstance(data_config, DataConfig):
    raise TypeError('the input pipeline takes a DataConfig: build it once with '
                    f'input_pipeline.DataConfig.from_config(config.data), got '
                    f'{type(data_config).__name__}')


def _batch_iterator(batches: grain.MapDataset, data_config: DataConfig,
                    worker_count: int | None) -> BatchIterator:
  if worker_count is None:
    worker_count = data_config.worker_count
  return BatchIterator(batches, read_threads=data_config.read_threads,
                       worker_count=worker_count,
                       worker_buffer_size=data_config.worker_buffer_size)


def create_train_iterator(data_config: DataConfig, *, global_batch_size: int, seed: int, input_size,
                          worker_count: int | None = None, **kwargs) -> BatchIterator:
  """An infinite iterator over training batches (arguments: create_train_dataset).

  Each batch: the fields of docs/ARCHITECTURE.md "Batches", numpy, leading axis
  global_batch_size // number of hosts. The iterator's get_state() is a JSON
  dict {'next_batch': n}; set_state(state) on a fresh iterator (same config,
  seed and hosts) makes the next batch the one that followed the save.
  """
  batches = create_train_dataset(data_config, global_batch_size=global_batch_size,
                                 seed=seed, input_size=input_size, **kwargs)
  return _batch_iterator(batches, data_config, worker_count)


@dataclasses.dataclass
class _PaddedShard:
  """A host's strided shard of a source's first `size` examples, padded to
  `length` (pad: mask 0).

  Element i is (example shard_index + i * shard_count, 1.0), or (example 0, 0.0)
  past the shard's end.
  """
  source: Any
  shard_index: int
  shard_count: int
  length: int
  size: int

  def __len__(self) -> int:
    return self.length

  def __getitem__(self, i: int):
    j = self.shard_index + int(i) * self.shard_count
    if j < self.size:
      return self.source[j], 1.0
    return self.source[0], 0.0


def _as_str(x) -> str:
  if isinstance(x, bytes):
    return x.decode('utf-8', 'replace')
  if isinstance(x, np.ndarray):
    return _as_str(x.item())
  return str(x)


def _eval_element(item, **kwargs):
  example, mask = item
  out = preprocess_eval(example, **kwargs)
  out['mask'] = np.float32(mask)
  # Per-action / per-sequence tables and RootNet roots go by file name.
  out['image_file'] = np.asarray(_as_str(example.get('image_file', '')))
  return out


def eval_num_batches(num_examples: int, global_batch_size: int, shard_count: int = 1) -> int:
  """Batches every host yields for `num_examples` (the last ones padded)."""
  per_host = math.ceil(num_examples / shard_count)
  return math.ceil(per_host / (global_batch_size // shard_count))


def create_eval_iterator(data_config: DataConfig, *, global_batch_size: int, input_size,
                         dataset: str | None = None, split: str | None = None,
                         data_source: Any = None, worker_count: int | None = None,
                         shard_index: int | None = None,
                         shard_count: int | None = None,
                         num_examples: int | None = None) -> BatchIterator:
  """One pass over an evaluation split in per-host batches, no augmentation.

  Every host yields eval_num_batches(N, global_batch_size, hosts) batches of
  global_batch_size // hosts; host h takes examples h, h + hosts, ...; padding
  elements repeat example 0 with `mask` 0 (all real ones have mask 1), so static
  shapes hold and metrics are sum(metric * mask) / sum(mask). Besides the
  fields of preprocess_eval, a batch has 'image_file' (strings).

  Args:
    data_config: the DataConfig; dataset and split default to its
      eval_dataset and eval_split.
    global_batch_size: batch over all hosts.
    input_size: int or (in_h, in_w).
    dataset, split: the TFDS dataset name and split.
    data_source: a random-access source to use instead of tfds.data_source.
    worker_count: grain worker processes (default config.data.worker_count).
    shard_index, shard_count: this host's shard (default from jax).
    num_examples: only the split's first N examples (default: all).
  """
  shard_index, shard_count, batch_size = _host_shard(global_batch_size, shard_index,
                                                     shard_count)
  _check_data_config(data_config)
  name = dataset or data_config.eval_dataset
  split = split or data_config.eval_split
  if data_source is None:
    data_source = open_data_source(name, split, data_config.data_dir)
  num = len(data_source)
  if num_examples is not None:
    num = min(num, int(num_examples))
  if num <= 0:
    raise ValueError(f'evaluation dataset {name!r} split {split!r} is empty')
  length = eval_num_batches(num, global_batch_size, shard_count) * batch_size
  ds = grain.MapDataset.source(
      _PaddedShard(data_source, shard_index, shard_count, length, num))
  ds = ds.map(functools.partial(_eval_element, input_size=_pair(input_size),
                                scale_mult=data_config.scale_mult_for(name),
                                dataset_id=dataset_id(name), **camera_kwargs(data_config)))
  # Batch before the workers so every batch is whole (each worker reads batches).
  return _batch_iterator(ds.batch(batch_size, drop_remainder=False), data_config,
                         worker_count)
