"""The example spec shared by every TFDS builder, and the helpers they all need.

Every builder stores a **crop** of the source frame around the person, with a
margin for the training augmentations (HybrIK scales the box by 1.25, jitters
the scale by up to 1.3x and rotates by up to 30 degrees), and expresses every 2D
quantity and the camera intrinsics in that crop's pixels. The fields
(docs/ARCHITECTURE.md, "Examples on disk"):

```
image            Image uint8 (Hc, Wc, 3), JPEG
image_file       Text   source frame path relative to manual_dir
crop_offset      (2,) int32    [x0, y0] of the crop in the source frame, px
bbox             (4,) float32  person box [x_min, y_min, x_max, y_max], crop px
intrinsics       (3,3) float32 K in crop px
joint_root       (3,) float32  pelvis, camera frame, metres
depth_factor     ()   float32  metres (normalises relative depth)
joints29_cam     (29,3) metres camera frame;  joints29_img (29,2) crop px;
joints29_valid   (29,)
joints17_cam     (17,3) H36M-17 metres; joints17_valid (17,)   (evaluation)
smpl_theta       (24,3) axis-angle; smpl_beta (10,); smpl_twist (23,2) (cos, sin);
smpl_valid       (); twist_valid (23,)
gender           int32  0 neutral, 1 male, 2 female
native_joints_img (J,2) crop px; native_joints_cam (J,3) metres; native_joints_valid (J,)
```

Fields a dataset lacks are zeros with a zero validity (`empty_example` makes
such a dict). Validity flags are float32 in {0, 1} so they can weight losses.

Typical use in a builder's `_generate_examples`:

```python
crop, offset = features.crop_with_margin(frame, bbox)
ex = features.empty_example(num_native_joints=17)
ex.update(
    image=features.encode_jpeg(crop), image_file=rel_path,
    crop_offset=offset, bbox=features.shift_bbox(bbox, offset),
    intrinsics=features.shift_intrinsics(K, offset),
    joints29_img=features.shift_points(joints_px, offset), ...)
features.check_example(ex, num_native_joints=17)
yield key, ex
```
"""

from typing import Any

import cv2
import numpy as np
import tensorflow_datasets as tfds

# Human3.6M's 17-joint order is hybrik_jax.body.constants.H36M_JOINT_NAMES; the 29
# joints are SMPL's 24 followed by HybrIK's 5 leaves (constants.SMPL29_JOINT_NAMES).
NUM_JOINTS_29 = 29
NUM_JOINTS_17 = 17
NUM_SMPL_JOINTS = 24
NUM_TWISTS = 23
NUM_BETAS = 10

# HybrIK's BBOX_3D_SHAPE for its SMPL configs (configs/256x192_*_smpl_*.yaml:
# [2200, 2200, 2200] mm; its code default is 2000 mm): relative depth in the
# uvd targets is (z - z_root) / depth_factor.
DEFAULT_DEPTH_FACTOR = 2.2  # metres

# Side of the stored square crop, as a multiple of the larger side of the person
# box. HybrIK crops 1.25x the box, jitters the scale up to 1.3x (1.625x) and
# rotates up to 30 degrees; the bounding square of a square rotated by 30
# degrees is cos30 + sin30 = 1.37x larger, so 1.625 * 1.37 = 2.2x keeps every
# augmented input inside the stored pixels (anything outside is zero padding,
# as HybrIK's cv2.warpAffine border).
DEFAULT_MARGIN = 2.2

# JPEG settings for the stored crops (tf.image.encode_jpeg's default quality).
JPEG_QUALITY = 95

GENDER_NEUTRAL, GENDER_MALE, GENDER_FEMALE = 0, 1, 2


def example_features(num_native_joints: int) -> tfds.features.FeaturesDict:
  """The FeaturesDict of one example, common to every builder.

  Args:
    num_native_joints: J, the size of the dataset's own joint set stored under
      `native_joints_*` (e.g. 17 for Human3.6M, 24 for 3DPW, 28 for MPI-INF-3DHP,
      17 for COCO keypoints, 29 for synthetic_humans).

  Returns:
    The tfds.features.FeaturesDict described in the module docstring.
  """
  f32 = np.float32

  def tensor(shape):
    return tfds.features.Tensor(shape=shape, dtype=f32)

  j = int(num_native_joints)
  return tfds.features.FeaturesDict({
      'image': tfds.features.Image(shape=(None, None, 3), dtype=np.uint8,
                                   encoding_format='jpeg'),
      'image_file': tfds.features.Text(),
      'crop_offset': tfds.features.Tensor(shape=(2,), dtype=np.int32),
      'bbox': tensor((4,)),
      'intrinsics': tensor((3, 3)),
      'joint_root': tensor((3,)),
      'depth_factor': tensor(()),
      'joints29_cam': tensor((NUM_JOINTS_29, 3)),
      'joints29_img': tensor((NUM_JOINTS_29, 2)),
      'joints29_valid': tensor((NUM_JOINTS_29,)),
      'joints17_cam': tensor((NUM_JOINTS_17, 3)),
      'joints17_valid': tensor((NUM_JOINTS_17,)),
      'smpl_theta': tensor((NUM_SMPL_JOINTS, 3)),
      'smpl_beta': tensor((NUM_BETAS,)),
      'smpl_twist': tensor((NUM_TWISTS, 2)),
      'smpl_valid': tensor(()),
      'twist_valid': tensor((NUM_TWISTS,)),
      'gender': tfds.features.Tensor(shape=(), dtype=np.int32),
      'native_joints_img': tensor((j, 2)),
      'native_joints_cam': tensor((j, 3)),
      'native_joints_valid': tensor((j,)),
  })


def _expected_shapes(num_native_joints: int) -> dict[str, tuple[tuple[int, ...], Any]]:
  j = int(num_native_joints)
  f32, i32 = np.float32, np.int32
  return {
      'crop_offset': ((2,), i32),
      'bbox': ((4,), f32),
      'intrinsics': ((3, 3), f32),
      'joint_root': ((3,), f32),
      'depth_factor': ((), f32),
      'joints29_cam': ((NUM_JOINTS_29, 3), f32),
      'joints29_img': ((NUM_JOINTS_29, 2), f32),
      'joints29_valid': ((NUM_JOINTS_29,), f32),
      'joints17_cam': ((NUM_JOINTS_17, 3), f32),
      'joints17_valid': ((NUM_JOINTS_17,), f32),
      'smpl_theta': ((NUM_SMPL_JOINTS, 3), f32),
      'smpl_beta': ((NUM_BETAS,), f32),
      'smpl_twist': ((NUM_TWISTS, 2), f32),
      'smpl_valid': ((), f32),
      'twist_valid': ((NUM_TWISTS,), f32),
      'gender': ((), i32),
      'native_joints_img': ((j, 2), f32),
      'native_joints_cam': ((j, 3), f32),
      'native_joints_valid': ((j,), f32),
  }


def empty_example(num_native_joints: int) -> dict[str, Any]:
  """A dict with every numeric field at zero (all validities 0).

  `image` and `image_file` are left for the builder; `depth_factor` is
  DEFAULT_DEPTH_FACTOR and `gender` neutral. Update the fields the dataset has.
  """
  ex: dict[str, Any] = {
      name: np.zeros(shape, dtype)
      for name, (shape, dtype) in _expected_shapes(num_native_joints).items()}
  ex['depth_factor'] = np.float32(DEFAULT_DEPTH_FACTOR)
  ex['image_file'] = ''
  return ex


def check_example(example: dict[str, Any], num_native_joints: int) -> dict[str, Any]:
  """Casts an example's numeric fields to the spec's dtypes and checks shapes.

  Args:
    example: a dict with every field of `example_features` (image as an
      (H, W, 3) uint8 array, encoded JPEG bytes or a path).
    num_native_joints: J, as in `example_features`.

  Returns:
    The same dict with numeric fields as numpy arrays of the right dtype.

  Raises:
    ValueError: naming the field that is missing, has the wrong shape, or holds
      a NaN/inf.
  """
  expected = _expected_shapes(num_native_joints)
  missing = [k for k in list(expected) + ['image', 'image_file'] if k not in example]
  if missing:
    raise ValueError(f'example is missing fields {missing}; start from '
                     'hybrik_jax.data.features.empty_example(...)')
  extra = [k for k in example if k not in expected and k not in ('image', 'image_file')]
  if extra:
    raise ValueError(f'example has fields {extra} that are not in the spec '
                     '(hybrik_jax.data.features.example_features)')
  for name, (shape, dtype) in expected.items():
    value = np.asarray(example[name])
    if value.shape != shape:
      raise ValueError(f'example field {name!r} must have shape {shape}, '
                       f'got {value.shape}')
    if not np.all(np.isfinite(value)):
      raise ValueError(f'example field {name!r} has NaN or inf values')
    example[name] = value.astype(dtype)
  image = example['image']
  if isinstance(image, np.ndarray) and (
      image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8):
    raise ValueError('example field image must be (H, W, 3) uint8, got '
                     f'{image.shape} {image.dtype}')
  return example


def encode_jpeg(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
  """Encodes an (H, W, 3) uint8 RGB image as JPEG bytes (tfds stores them as is)."""
  if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
    raise ValueError(f'image must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}')
  ok, buf = cv2.imencode('.jpg', np.ascontiguousarray(rgb[..., ::-1]),
                         [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
  if not ok:
    raise ValueError('cv2.imencode failed to encode the crop as JPEG')
  return buf.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray:
  """Decodes JPEG/PNG bytes to an (H, W, 3) uint8 RGB array."""
  bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
  if bgr is None:
    raise ValueError('could not decode the image bytes')
  return bgr[..., ::-1].copy()


def margin_box(bbox: np.ndarray, margin: float = DEFAULT_MARGIN) -> np.ndarray:
  """The square crop box around a person box: int [x0, y0, x1, y1] (x1, y1 excluded).

  Args:
    bbox: (4,) [x_min, y_min, x_max, y_max] px.
    margin: crop side / larger side of `bbox`.
  """
  x_min, y_min, x_max, y_max = [float(v) for v in bbox]
  if not (x_max > x_min and y_max > y_min):
    raise ValueError(f'bbox must be [x_min, y_min, x_max, y_max] with positive '
                     f'size, got {list(bbox)}')
  side = max(int(np.ceil(margin * max(x_max - x_min, y_max - y_min))), 1)
  cx, cy = 0.5 * (x_min + x_max), 0.5 * (y_min + y_max)
  x0 = int(np.floor(cx - 0.5 * side))
  y0 = int(np.floor(cy - 0.5 * side))
  return np.array([x0, y0, x0 + side, y0 + side], np.int64)


def crop_with_margin(image: np.ndarray, bbox: np.ndarray,
                     margin: float = DEFAULT_MARGIN) -> tuple[np.ndarray, np.ndarray]:
  """Crops a square around the person box; pads with zeros outside the frame.

  Args:
    image: (H, W, C) frame.
    bbox: (4,) person box [x_min, y_min, x_max, y_max] in frame px.
    margin: crop side / larger side of bbox (DEFAULT_MARGIN = 2.2).

  Returns:
    crop: (S, S, C) same dtype as image, S = ceil(margin * max(w, h)).
    offset: (2,) int32 [x0, y0], the crop's top-left corner in frame px (may be
      negative); frame px = crop px + offset.
  """
  x0, y0, x1, y1 = margin_box(bbox, margin)
  h, w = image.shape[:2]
  crop = np.zeros((y1 - y0, x1 - x0) + image.shape[2:], image.dtype)
  sx0, sy0 = max(x0, 0), max(y0, 0)
  sx1, sy1 = min(x1, w), min(y1, h)
  if sx1 > sx0 and sy1 > sy0:
    crop[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
  return crop, np.array([x0, y0], np.int32)


def shift_points(points_px: np.ndarray, offset: np.ndarray) -> np.ndarray:
  """Frame px -> crop px: (..., 2) points minus the crop offset [x0, y0]."""
  return (np.asarray(points_px, np.float32)
          - np.asarray(offset, np.float32)).astype(np.float32)


def shift_bbox(bbox: np.ndarray, offset: np.ndarray) -> np.ndarray:
  """Frame px -> crop px for a [x_min, y_min, x_max, y_max] box."""
  return shift_points(np.reshape(bbox, (2, 2)), offset).reshape(4)


def shift_intrinsics(K: np.ndarray, offset: np.ndarray) -> np.ndarray:
  """K of the frame -> K of the crop: the principal point moves by -offset."""
  K = np.array(K, np.float32, copy=True)
  K[0, 2] -= float(offset[0])
  K[1, 2] -= float(offset[1])
  return K


def scale_intrinsics(K: np.ndarray, scale: float) -> np.ndarray:
  """K after resizing the image by `scale` (pixel centres kept: x' = s(x+.5)-.5)."""
  K = np.array(K, np.float32, copy=True)
  K[0, 0] *= scale
  K[1, 1] *= scale
  K[0, 2] = scale * (K[0, 2] + 0.5) - 0.5
  K[1, 2] = scale * (K[1, 2] + 0.5) - 0.5
  return K


def project(points_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
  """Pinhole projection: (..., 3) camera-frame points -> (..., 2) px."""
  p = np.asarray(points_cam, np.float64)
  uvw = p @ np.asarray(K, np.float64).T
  z = uvw[..., 2:3]
  z = np.where(np.abs(z) < 1e-9, 1e-9, z)
  return (uvw[..., :2] / z).astype(np.float32)


def bbox_from_points(points_px: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
  """Tight [x_min, y_min, x_max, y_max] around the (valid) (N, 2) points."""
  pts = np.asarray(points_px, np.float32).reshape(-1, 2)
  if valid is not None:
    pts = pts[np.asarray(valid).reshape(-1) > 0]
  if pts.shape[0] == 0:
    raise ValueError('bbox_from_points: no valid points')
  return np.concatenate([pts.min(0), pts.max(0)]).astype(np.float32)


# ----------------------------------------------------------------------------
# The whole-body (SMPL-X, HybrIK-X) example spec.
# ----------------------------------------------------------------------------
# HybrIK-X's 71 joints (smplx_constants: SMPL-X's 55, then 16 leaf vertices), its
# 55 rotations, 54 twists, 10 betas + 10 expression + the kid blend. Fields:
#
#   image, image_file, crop_offset, bbox, intrinsics, joint_root, depth_factor,
#   gender                                 as the common spec
#   joints71_cam (71,3) metres;  joints71_img (71,2) crop px;  joints71_valid (71,)
#   smplx_theta (55,3) axis-angle (full pose, camera-frame root);
#   smplx_beta (10,); smplx_expression (10,); smplx_kid (1,) kid blend;
#   smplx_twist (54,2) (cos, sin) of joints 1..54; smplx_valid (); twist_valid (54,)
NUM_JOINTS_71 = 71
NUM_SMPLX_JOINTS = 55
NUM_TWISTS_X = 54
NUM_EXPRESSION = 10
SMPLX_SHAPES = {
    'crop_offset': ((2,), np.int32),
    'bbox': ((4,), np.float32),
    'intrinsics': ((3, 3), np.float32),
    'joint_root': ((3,), np.float32),
    'depth_factor': ((), np.float32),
    'joints71_cam': ((NUM_JOINTS_71, 3), np.float32),
    'joints71_img': ((NUM_JOINTS_71, 2), np.float32),
    'joints71_valid': ((NUM_JOINTS_71,), np.float32),
    'smplx_theta': ((NUM_SMPLX_JOINTS, 3), np.float32),
    'smplx_beta': ((NUM_BETAS,), np.float32),
    'smplx_expression': ((NUM_EXPRESSION,), np.float32),
    'smplx_kid': ((1,), np.float32),
    'smplx_twist': ((NUM_TWISTS_X, 2), np.float32),
    'smplx_valid': ((), np.float32),
    'twist_valid': ((NUM_TWISTS_X,), np.float32),
    'gender': ((), np.int32),
}


def is_smplx_example(example) -> bool:
  """True for an example of the whole-body spec (it has joints71_cam)."""
  return 'joints71_cam' in example


def smplx_example_features() -> tfds.features.FeaturesDict:
  """The FeaturesDict of one whole-body (SMPL-X) example (SMPLX_SHAPES + image)."""
  spec = {name: tfds.features.Tensor(shape=shape, dtype=dtype)
          for name, (shape, dtype) in SMPLX_SHAPES.items()}
  spec['image'] = tfds.features.Image(shape=(None, None, 3), dtype=np.uint8,
                                      encoding_format='jpeg')
  spec['image_file'] = tfds.features.Text()
  return tfds.features.FeaturesDict(spec)


def empty_smplx_example() -> dict[str, Any]:
  """A whole-body example with every numeric field at zero (validities 0)."""
  ex: dict[str, Any] = {name: np.zeros(shape, dtype)
                        for name, (shape, dtype) in SMPLX_SHAPES.items()}
  ex['depth_factor'] = np.float32(DEFAULT_DEPTH_FACTOR)
  ex['image_file'] = ''
  return ex


def check_smplx_example(example: dict[str, Any]) -> dict[str, Any]:
  """`check_example` for the whole-body spec: casts, checks shapes and finiteness.

  Raises:
    ValueError: naming the field that is missing, extra, misshapen or not finite.
  """
  missing = [k for k in list(SMPLX_SHAPES) + ['image', 'image_file'] if k not in example]
  extra = [k for k in example if k not in SMPLX_SHAPES and k not in ('image', 'image_file')]
  if missing or extra:
    raise ValueError(f'whole-body example: missing fields {missing}, extra fields {extra} '
                     '(start from hybrik_jax.data.features.empty_smplx_example())')
  for name, (shape, dtype) in SMPLX_SHAPES.items():
    value = np.asarray(example[name])
    if value.shape != shape:
      raise ValueError(f'example field {name!r} must have shape {shape}, got {value.shape}')
    if not np.all(np.isfinite(value)):
      raise ValueError(f'example field {name!r} has NaN or inf values')
    example[name] = value.astype(dtype)
  return example
