"""Helpers shared by the builders of the real datasets (h36m, pw3d, mpi_inf_3dhp, coco).

What the four builders have in common and `hybrik_jax.data.features` does not
cover: checking the manual_dir layout (errors that name the missing file and
point at the instructions), reading JSON and frames through `epath` (works on
any filesystem TFDS supports), skipping unreadable frames with a warning and a
count stored in the dataset's metadata, and cropping the frame around the
person with `features.DEFAULT_MARGIN`, clipped to the frame.

Crops are **clipped to the frame**: the stored image is the part of the square
margin box (`features.margin_box`) that lies inside the frame, so it can be
non-square and is never larger than the frame. Pixels outside it are zeros for
the augmentations, exactly what HybrIK's `cv2.warpAffine` gives outside the
frame. Every 2D quantity is then `frame px - crop_offset`.
"""

import json
from typing import Any, Iterable, Sequence

from absl import logging
import cv2
from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from hybrik_jax.data import features

# How many skipped file names the metadata keeps per split (the count is exact).
MAX_LISTED_SKIPS = 20


def dataset_root(manual_dir: epath.PathLike, subdir: str, dataset: str,
                 instructions: str) -> epath.Path:
  """manual_dir/subdir, or a FileNotFoundError that says what to put there."""
  root = epath.Path(manual_dir) / subdir
  if not root.is_dir():
    raise FileNotFoundError(
        f'{dataset}: folder {root} not found. Put the dataset under '
        f'<manual_dir>/{subdir}/ as the instructions say '
        f'(tfds_builders/{dataset}/README.md):\n{instructions}')
  return root


def first_existing(root: epath.Path, candidates: Sequence[str], dataset: str,
                   instructions: str) -> epath.Path:
  """The first root/candidate that exists, else an error naming all of them."""
  for name in candidates:
    path = root / name
    if path.exists():
      return path
  tried = ', '.join(str(root / c) for c in candidates)
  raise FileNotFoundError(
      f'{dataset}: annotation file not found (looked for {tried}). Download '
      f'it as the instructions say (tfds_builders/{dataset}/README.md):\n'
      f'{instructions}')


def load_json(path: epath.Path, dataset: str) -> Any:
  """Parses a JSON file; a clear ValueError if it is not valid JSON."""
  try:
    return json.loads(epath.Path(path).read_text())
  except json.JSONDecodeError as e:
    raise ValueError(f'{dataset}: {path} is not valid JSON ({e}); download '
                     'the annotation file again') from e


def require_keys(row: dict[str, Any], keys: Iterable[str], where: str) -> None:
  """Raises a KeyError naming the missing annotation fields of one row."""
  missing = [k for k in keys if k not in row]
  if missing:
    raise KeyError(f'{where}: annotation row lacks fields {missing} '
                   f'(has {sorted(row)}); is this the right annotation file?')


def read_frame(path: epath.Path) -> np.ndarray | None:
  """Decodes an image file to (H, W, 3) uint8 RGB; None if missing or corrupt."""
  try:
    data = epath.Path(path).read_bytes()
  except (FileNotFoundError, OSError):
    return None
  if not data:
    return None
  try:
    frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
  except cv2.error:
    return None
  if frame is None or frame.ndim != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
    return None
  return frame[..., ::-1].copy()


class SkipCounter:
  """Counts skipped frames and rows per split into the dataset's MetadataDict.

  Stored as `info.metadata['skipped'][split] = {reason: count, ...}` and
  `info.metadata['skipped_files'][split] = [first MAX_LISTED_SKIPS paths]`;
  TFDS writes it to metadata.json next to dataset_info.json after the build.
  """

  def __init__(self, metadata: tfds.core.MetadataDict, split: str, dataset: str):
    self._metadata = metadata
    self._split = split
    self._dataset = dataset
    metadata.setdefault('skipped', {})[split] = {}
    metadata.setdefault('skipped_files', {})[split] = []

  def skip(self, reason: str, path: str = '', count: int = 1) -> None:
    counts = self._metadata['skipped'][self._split]
    counts[reason] = counts.get(reason, 0) + int(count)
    if path:
      listed = self._metadata['skipped_files'][self._split]
      if len(listed) < MAX_LISTED_SKIPS:
        listed.append(f'{reason}: {path}')
      if reason.startswith('unreadable'):
        logging.warning('%s/%s: skipping %s (%s)', self._dataset, self._split,
                        path, reason)


def xywh_to_xyxy_clipped(xywh: Sequence[float], width: int,
                         height: int) -> np.ndarray:
  """HybrIK's box convention: [x, y, x + w - 1, y + h - 1], clipped to the frame."""
  x, y, w, h = [float(v) for v in xywh]
  box = np.array([x, y, x + max(w - 1.0, 0.0), y + max(h - 1.0, 0.0)], np.float64)
  box[[0, 2]] = np.clip(box[[0, 2]], 0.0, width - 1.0)
  box[[1, 3]] = np.clip(box[[1, 3]], 0.0, height - 1.0)
  return box.astype(np.float32)


def crop_in_frame(frame: np.ndarray, bbox: np.ndarray,
                  margin: float = features.DEFAULT_MARGIN
                  ) -> tuple[np.ndarray, np.ndarray]:
  """The margin box around the person, clipped to the frame.

  Args:
    frame: (H, W, 3) uint8.
    bbox: (4,) [x_min, y_min, x_max, y_max] frame px, positive size.
    margin: crop side / larger side of bbox, before clipping.

  Returns:
    crop: (Hc, Wc, 3) uint8, Hc <= H, Wc <= W.
    offset: (2,) int32 [x0, y0] >= 0; frame px = crop px + offset.
  """
  x0, y0, x1, y1 = features.margin_box(bbox, margin)
  h, w = frame.shape[:2]
  x0, y0 = max(int(x0), 0), max(int(y0), 0)
  x1, y1 = min(int(x1), w), min(int(y1), h)
  if x1 <= x0 or y1 <= y0:
    raise ValueError(f'person box {list(bbox)} lies outside the {w}x{h} frame')
  return frame[y0:y1, x0:x1].copy(), np.array([x0, y0], np.int32)


def mm_to_m(values: Any, shape: tuple[int, ...]) -> np.ndarray:
  """Millimetres (any nesting) -> float64 metres of the given shape."""
  return np.asarray(values, np.float64).reshape(shape) / 1000.0


def finite_rows(points: np.ndarray) -> np.ndarray:
  """(J,) float32 1 where a joint's coordinates are all finite, else 0."""
  return np.all(np.isfinite(points), axis=-1).astype(np.float32)


def joints_in_crop(joints_cam: np.ndarray, valid: np.ndarray, K_crop: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Projects camera-frame joints into the crop; invalid ones become zeros.

  A joint is valid when its source validity is 1, its coordinates are finite and
  it lies in front of the camera (z > 1 cm).

  Args:
    joints_cam: (J, 3) metres, camera frame (may hold NaN for missing joints).
    valid: (J,) source validity in {0, 1}.
    K_crop: (3, 3) intrinsics in crop px.

  Returns:
    cam: (J, 3) float32 metres, zeros where invalid.
    img: (J, 2) float32 crop px, zeros where invalid.
    valid: (J,) float32 in {0, 1}.
  """
  joints_cam = np.asarray(joints_cam, np.float64)
  ok = (np.asarray(valid, np.float32) > 0) & (finite_rows(joints_cam) > 0)
  safe = np.where(ok[:, None], joints_cam, 0.0)
  ok &= safe[:, 2] > 1e-2
  safe = np.where(ok[:, None], safe, 0.0)
  img = np.zeros((joints_cam.shape[0], 2), np.float32)
  if ok.any():
    img[ok] = features.project(safe[ok], K_crop)
  return safe.astype(np.float32), img, ok.astype(np.float32)


def intrinsics_from_fc(f: Sequence[float], c: Sequence[float]) -> np.ndarray:
  """K (3, 3) from focal lengths (fx, fy) and principal point (cx, cy), px."""
  fx, fy = [float(v) for v in np.asarray(f, np.float64).reshape(2)]
  cx, cy = [float(v) for v in np.asarray(c, np.float64).reshape(2)]
  return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float32)


class SizeStats:
  """Accumulates frame vs stored crop pixels per split into the metadata.

  `info.metadata['crop_pixels'][split] = {'frame': ..., 'crop': ..., 'ratio': ...}`
  (ratio = stored crop pixels / source frame pixels; a frame with several
  people counts once, so the ratio is the storage saving of the split).
  """

  def __init__(self, metadata: tfds.core.MetadataDict, split: str):
    self._entry = metadata.setdefault('crop_pixels', {}).setdefault(
        split, {'frame': 0, 'crop': 0, 'ratio': 0.0})
    self._entry.update(frame=0, crop=0, ratio=0.0)

  def add(self, frame_shape: tuple[int, ...], crop_shape: tuple[int, ...],
          new_frame: bool = True) -> None:
    if new_frame:
      self._entry['frame'] += int(frame_shape[0] * frame_shape[1])
    self._entry['crop'] += int(crop_shape[0] * crop_shape[1])
    self._entry['ratio'] = round(self._entry['crop'] / max(self._entry['frame'], 1), 4)
