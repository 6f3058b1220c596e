"""HybrIK's image-space augmentations and the affine maps behind them, in numpy.

Facts from HybrIK (Li et al. 2021; `hybrik/utils/presets/simple_transform*.py`,
`hybrik/utils/bbox.py`, `hybrik/utils/transforms.py`), implemented here anew:

- The input box is the person box grown to the input aspect ratio and scaled by
  `scale_mult` (1.25; HybrIK's Human3.6M SMPL set uses 1.0), described by its
  centre and (width, height) in pixels.
- Training jitters the box size by a factor clip(N(1, 0.3), 0.7, 1.3), rotates
  with probability 0.6 by clip(N(0, 30), -60, 60) degrees, flips horizontally with
  probability 0.5 (x -> W - 1 - x and left/right swaps), pastes one uniform-noise
  rectangle (synthetic occlusion) inside the box, and multiplies each colour
  channel by U(0.8, 1.2).
- The crop is an affine warp (similarity: scale, rotation, translation) of the
  box onto the input; its inverse maps input pixels back to the stored image.
- ImageNet normalisation with HybrIK's constants (RGB channels): mean (0.406,
  0.457, 0.480), std (0.225, 0.224, 0.229).
- Flipping an SMPL pose mirrors every local axis-angle (negate y and z) and swaps
  left/right joints; a twist angle (cos, sin) mirrors to (cos, -sin) and swaps.

Pixel convention: integer coordinates are pixel centres (as cv2.warpAffine).
"""

import dataclasses
import math

import cv2
import numpy as np

from hybrik_jax.body import constants

# HybrIK normalises RGB images with these (they are ImageNet's in BGR order).
IMAGE_MEAN = np.array([0.406, 0.457, 0.480], np.float32)
IMAGE_STD = np.array([0.225, 0.224, 0.229], np.float32)


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
  """Training augmentation strengths (HybrIK's defaults).

  Attributes:
    scale_factor: box size jitter: factor clip(N(1, sf), 1 - sf, 1 + sf).
    rot_factor: rotation std in degrees; clipped to +-2 rot_factor.
    rot_prob: probability of rotating at all.
    flip_prob: probability of a horizontal flip.
    color_factor: each RGB channel is multiplied by U(1 - cf, 1 + cf).
    occlusion: paste a uniform-noise rectangle inside the box.
  """
  scale_factor: float = 0.3
  rot_factor: float = 30.0
  rot_prob: float = 0.6
  flip_prob: float = 0.5
  color_factor: float = 0.2
  occlusion: bool = True


@dataclasses.dataclass(frozen=True)
class Augmentation:
  """One draw of the augmentation parameters.

  Attributes:
    scale: box size multiplier, in [1 - sf, 1 + sf].
    rotation: degrees, in [-2 rot_factor, 2 rot_factor] (counter-clockwise in
      the input image, as HybrIK).
    flip: horizontal flip.
    color: (3,) per-channel multipliers in [1 - cf, 1 + cf].
  """
  scale: float = 1.0
  rotation: float = 0.0
  flip: bool = False
  color: np.ndarray = dataclasses.field(
      default_factory=lambda: np.ones(3, np.float32))


def sample_augmentation(rng: np.random.Generator, config: AugmentConfig) -> Augmentation:
  """Draws scale, rotation, flip and colour as HybrIK's training transform."""
  sf, rf = float(config.scale_factor), float(config.rot_factor)
  scale = float(np.clip(rng.normal() * sf + 1.0, 1.0 - sf, 1.0 + sf))
  rotate = rng.random() < config.rot_prob
  rotation = float(np.clip(rng.normal() * rf, -2.0 * rf, 2.0 * rf)) if rotate else 0.0
  flip = bool(rng.random() < config.flip_prob)
  cf = float(config.color_factor)
  color = rng.uniform(1.0 - cf, 1.0 + cf, size=3).astype(np.float32)
  return Augmentation(scale=scale, rotation=rotation, flip=flip, color=color)


# ----------------------------------------------------------------------------
# Boxes and affine maps.
# ----------------------------------------------------------------------------


def box_to_center_scale(bbox, aspect_ratio: float = 1.0,
                        scale_mult: float = 1.25) -> tuple[np.ndarray, np.ndarray]:
  """[x_min, y_min, x_max, y_max] -> centre (2,) px and size (2,) = (w, h) px.

  The box is grown along one side to width / height == aspect_ratio, then both
  sides are multiplied by scale_mult.
  """
  x_min, y_min, x_max, y_max = [float(v) for v in bbox]
  w, h = x_max - x_min, y_max - y_min
  if not (w > 0 or h > 0) or not np.all(np.isfinite([w, h])):
    raise ValueError(f'bbox must be [x_min, y_min, x_max, y_max] with a positive size, '
                     f'got {list(bbox)}')
  center = np.array([x_min + 0.5 * w, y_min + 0.5 * h], np.float64)
  if w > aspect_ratio * h:
    h = w / aspect_ratio
  elif w < aspect_ratio * h:
    w = h * aspect_ratio
  return center, np.array([w, h], np.float64) * scale_mult


def center_scale_to_box(center, scale) -> np.ndarray:
  """Centre (2,) and size (2,) -> (4,) [x_min, y_min, x_max, y_max]."""
  c = np.asarray(center, np.float64)
  s = np.asarray(scale, np.float64)
  return np.concatenate([c - 0.5 * s, c + 0.5 * s])


def crop_affine(center, width: float, rotation: float,
                output_size: tuple[int, int]) -> np.ndarray:
  """The (2, 3) similarity mapping the box onto the output image.

  The box centre goes to the output centre, the box width to the output width,
  and the image is rotated by `rotation` degrees (a point at angle +r around the
  centre in the source lands on the output's vertical axis), as HybrIK's
  get_affine_transform.

  Args:
    center: (2,) box centre, source px.
    width: box width, source px.
    rotation: degrees.
    output_size: (out_w, out_h) px.

  Returns:
    (2, 3) float64 matrix M: out = M @ [x, y, 1].
  """
  out_w, out_h = output_size
  k = float(out_w) / float(width)
  r = math.radians(rotation)
  cs, sn = math.cos(r), math.sin(r)
  # Rotation by -r (the source direction rotated by +r maps to the output's).
  lin = k * np.array([[cs, sn], [-sn, cs]], np.float64)
  c = np.asarray(center, np.float64)
  t = np.array([0.5 * out_w, 0.5 * out_h]) - lin @ c
  return np.concatenate([lin, t[:, None]], axis=1)


def flip_affine(width: int) -> np.ndarray:
  """(2, 3) map of a horizontal flip of an image `width` px wide: x -> W - 1 - x."""
  return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0]], np.float64)


def compose_affine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """(2, 3) matrix of `a` after `b` (x -> a(b(x)))."""
  a3 = np.concatenate([np.asarray(a, np.float64), [[0.0, 0.0, 1.0]]])
  b3 = np.concatenate([np.asarray(b, np.float64), [[0.0, 0.0, 1.0]]])
  return (a3 @ b3)[:2]


def invert_affine(m: np.ndarray) -> np.ndarray:
  """Inverse of a (..., 2, 3) affine map, same shape."""
  m = np.asarray(m, np.float64)
  lin, t = m[..., :2], m[..., 2:]
  inv_lin = np.linalg.inv(lin)
  return np.concatenate([inv_lin, -inv_lin @ t], axis=-1)


def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
  """Applies a (2, 3) (or (..., 2, 3), broadcast) map to (..., N, 2) points."""
  m = np.asarray(m)
  p = np.asarray(points)
  return np.einsum('...ij,...nj->...ni', m[..., :2], p) + m[..., None, :, 2]


def uv_to_image(uv: np.ndarray, trans_inv: np.ndarray,
                input_size: tuple[int, int]) -> np.ndarray:
  """Normalised input coordinates -> stored-image pixels.

  Args:
    uv: (..., N, 2) with u = x_in / in_w - 0.5, v = y_in / in_h - 0.5.
    trans_inv: (2, 3) or (..., 2, 3) input px -> stored-image px.
    input_size: (in_h, in_w).

  Returns:
    (..., N, 2) stored-image px.
  """
  in_h, in_w = input_size
  px = (np.asarray(uv, np.float64) + 0.5) * np.array([in_w, in_h], np.float64)
  return apply_affine(trans_inv, px)


def warp(image: np.ndarray, m: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
  """cv2.warpAffine with bilinear sampling and a black border: (out_h, out_w, C)."""
  out_w, out_h = output_size
  return cv2.warpAffine(image, np.asarray(m, np.float32), (int(out_w), int(out_h)),
                        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                        borderValue=0)


def normalize_image(image: np.ndarray, color: np.ndarray | None = None) -> np.ndarray:
  """(H, W, 3) RGB in [0, 255] -> float32 (img / 255 - mean) / std.

  With `color`, first applies color_jitter(image, color). A uint8 image goes
  through one lookup table (cv2.LUT), the same values in a fraction of the time.
  """
  if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
    values = np.arange(256, dtype=np.float32)[:, None]
    if color is not None:
      values = np.clip(values * np.asarray(color, np.float32)[None], 0.0, 255.0)
    lut = ((values - 255.0 * IMAGE_MEAN) / (255.0 * IMAGE_STD)).astype(np.float32)
    return cv2.LUT(np.ascontiguousarray(image), lut.reshape(256, 1, 3))
  x = np.asarray(image, np.float32)
  if color is not None:
    x = color_jitter(x, color)
  return (x - 255.0 * IMAGE_MEAN) * (1.0 / (255.0 * IMAGE_STD))


def denormalize_image(x: np.ndarray) -> np.ndarray:
  """Inverse of normalize_image, to uint8 (for visualisation)."""
  img = np.asarray(x, np.float32) * (255.0 * IMAGE_STD) + 255.0 * IMAGE_MEAN
  return np.clip(np.round(img), 0, 255).astype(np.uint8)


def color_jitter(image: np.ndarray, color: np.ndarray) -> np.ndarray:
  """Multiplies each channel of an (H, W, 3) image and clips to [0, 255] (float32)."""
  return np.clip(np.asarray(image, np.float32) * np.asarray(color, np.float32), 0.0, 255.0)


# (area fraction range of the box, aspect ratio range) of HybrIK's occluder:
# the SMPL (3D) transform and the 2D-keypoint transform use different ones.
OCCLUSION_3D = ((0.0, 0.3), (0.5, 1.0 / 0.5))
OCCLUSION_2D = ((0.0, 0.7), (0.3, 1.0 / 0.3))


def random_occlusion(rng: np.random.Generator, image: np.ndarray, box,
                     area_range=OCCLUSION_3D[0], ratio_range=OCCLUSION_3D[1],
                     max_tries: int = 20) -> tuple[np.ndarray, np.ndarray | None]:
  """Pastes one uniform-noise rectangle inside `box` (HybrIK's synthetic occlusion).

  The rectangle's area is U(area_range) times the box area and its height / width
  is U(ratio_range); it is placed uniformly inside the box and must lie inside
  the image (redrawn up to max_tries times, else no occlusion).

  Args:
    rng: numpy Generator.
    image: (H, W, 3) uint8, modified in place.
    box: (4,) [x_min, y_min, x_max, y_max] px.
    area_range, ratio_range: see above.
    max_tries: draws before giving up.

  Returns:
    (image, rect) with rect the int (4,) [x0, y0, x1, y1] pasted, or None.
  """
  height, width = image.shape[:2]
  x_min, y_min, x_max, y_max = [float(v) for v in box]
  bw, bh = x_max - x_min, y_max - y_min
  for _ in range(max_tries):
    area = rng.uniform(*area_range) * bw * bh
    ratio = rng.uniform(*ratio_range)
    oh, ow = math.sqrt(area * ratio), math.sqrt(area / ratio)
    ox = rng.random() * (bw - ow - 1.0) + x_min
    oy = rng.random() * (bh - oh - 1.0) + y_min
    if ox >= 0 and oy >= 0 and ox + ow < width and oy + oh < height:
      x0, y0, w, h = int(ox), int(oy), int(ow), int(oh)
      if w > 0 and h > 0:
        image[y0:y0 + h, x0:x0 + w] = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
      return image, np.array([x0, y0, x0 + w, y0 + h])
  return image, None


# ----------------------------------------------------------------------------
# Flips of labels.
# ----------------------------------------------------------------------------


def flip_points_2d(points: np.ndarray, width: int, perm) -> np.ndarray:
  """(J, 2) image px of an image `width` px wide -> the mirrored image's, swapped."""
  p = np.array(points, copy=True)
  p[:, 0] = width - 1.0 - p[:, 0]
  return p[list(perm)]


def flip_points_3d(points: np.ndarray, perm) -> np.ndarray:
  """(J, 3) camera-frame points -> mirrored (x negated) and left/right swapped."""
  p = np.array(points, copy=True)
  p[:, 0] = -p[:, 0]
  return p[list(perm)]


def flip_theta(theta: np.ndarray, perm=constants.FLIP_PERM_24) -> np.ndarray:
  """(J, 3) axis-angle -> the mirrored pose's (negate y, z; swap pairs).

  perm: the J joints' left/right permutation (SMPL's 24 by default; SMPL-X's 55:
  smplx_constants.FLIP_PERM_55).
  """
  t = np.array(theta, copy=True)
  t[:, 1:] = -t[:, 1:]
  return t[list(perm)]


# Twist i belongs to joint i + 1, so swapping joints (a, b) swaps twists (a-1, b-1).
FLIP_PERM_TWIST = tuple(j - 1 for j in constants.FLIP_PERM_24[1:])


def flip_twist(twist: np.ndarray, weight: np.ndarray | None = None,
               perm=FLIP_PERM_TWIST):
  """(T, 2) (cos, sin) twists -> the mirrored pose's: (cos, -sin), swapped.

  perm: the twists' permutation (SMPL's 23 by default; SMPL-X's 54:
  smplx_constants.FLIP_PERM_TWIST_54). Returns the flipped twist, and the
  swapped (T, ...) weight if one is given.
  """
  t = np.array(twist, copy=True)
  t[:, 1] = -t[:, 1]
  t = t[list(perm)]
  if weight is None:
    return t
  return t, np.asarray(weight)[list(perm)]


def flip_intrinsics(k: np.ndarray, width: int) -> np.ndarray:
  """K of an image `width` px wide -> K of the mirrored image and mirrored camera.

  With x' = W - 1 - x and X' = -X: cx' = W - 1 - cx, the skew changes sign. An
  all-zero K (a dataset without intrinsics) stays zero.
  """
  k = np.array(k, np.float32, copy=True)
  if k[2, 2] == 0:
    return k
  k[0, 2] = width - 1.0 - k[0, 2]
  k[0, 1] = -k[0, 1]
  return k
