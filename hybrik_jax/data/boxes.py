"""Person boxes: the one "x, y, w, h -> clipped [x_min, y_min, x_max, y_max]".

Every box a user or a dataset gives as x, y, w, h (pixels) goes through
`xywh_to_xyxy` (the dataset builders, which skip empty boxes) or `check_xywh` /
`parse_xywh` (the demos' --bbox and detections files, which reject them with
one line naming the input). Two corner conventions, both kept as they were:

  inclusive=True   HybrIK's and its datasets': the box covers pixels x .. x+w-1
                   (x_max = x + max(w - 1, 0)); the TFDS builders use it.
  inclusive=False  the continuous one: x_max = x + w; the demos use it.

Boxes are (4,) float32 [x_min, y_min, x_max, y_max] image pixels, clipped to
[0, width - 1] x [0, height - 1].
"""

from typing import Sequence

import numpy as np

from hybrik_jax import errors


class BoxError(errors.InputError):
  """A box that is not four numbers, has no area, or lies outside the image."""


def xywh_to_xyxy(xywh: Sequence[float], width: int, height: int, *,
                 inclusive: bool = False) -> np.ndarray:
  """x, y, w, h (px) -> (4,) float32 xyxy clipped to the image; may be empty.

  Args:
    xywh: four numbers.
    width, height: the image's size, px.
    inclusive: HybrIK's convention (x_max = x + w - 1), else x_max = x + w.
  """
  x, y, w, h = (float(v) for v in xywh)
  shrink = 1.0 if inclusive else 0.0
  box = np.array([x, y, x + max(w - shrink, 0.0), y + max(h - shrink, 0.0)], np.float64)
  box[[0, 2]] = np.clip(box[[0, 2]], 0.0, width - 1.0)
  box[[1, 3]] = np.clip(box[[1, 3]], 0.0, height - 1.0)
  return box.astype(np.float32)


def check_xywh(xywh: Sequence[float], width: int, height: int, *, what: str = 'box',
               image: str = 'image') -> np.ndarray:
  """x, y, w, h (px) -> (4,) xyxy clipped to the image (continuous convention).

  Args:
    xywh: the box as given.
    width, height: the image's size, px.
    what: names the input in the message (e.g. '--bbox').
    image: what the box is in ('image', 'frame').

  Raises:
    BoxError: not four finite numbers, no area, or (less than a pixel of it)
      inside the image.
  """
  try:
    values = np.asarray(xywh, np.float64).reshape(-1)
  except (TypeError, ValueError):
    values = np.zeros(0)
  if values.shape != (4,) or not np.all(np.isfinite(values)):
    raise BoxError(f'{what} must be four numbers x,y,w,h (pixels), got {_show(xywh)}')
  x, y, w, h = values
  if w <= 0 or h <= 0:
    raise BoxError(f'{what} {x:g},{y:g},{w:g},{h:g} has no area (width and height '
                   'must be positive)')
  box = xywh_to_xyxy(values, width, height)
  if box[2] - box[0] < 1 or box[3] - box[1] < 1:
    raise BoxError(f'{what} {x:g},{y:g},{w:g},{h:g} lies outside the '
                   f'{width}x{height} {image}')
  return box


def parse_xywh(text: str, width: int, height: int, *, what: str = '--bbox',
               image: str = 'image') -> np.ndarray:
  """'x,y,w,h' (px) -> (4,) xyxy clipped to the image; BoxError if it is not one."""
  try:
    values = [float(v) for v in str(text).replace(' ', '').split(',')]
  except ValueError:
    values = []
  if len(values) != 4:
    raise BoxError(f'{what} must be four numbers x,y,w,h (pixels), got {text!r}')
  return check_xywh(values, width, height, what=what, image=image)


def whole_image(width: int, height: int) -> np.ndarray:
  """(4,) float32 the whole image."""
  return np.array([0.0, 0.0, width - 1.0, height - 1.0], np.float32)


def iou(a: np.ndarray, b: np.ndarray) -> float:
  """Intersection over union of two xyxy boxes."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
  h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
  inter = w * h
  union = np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter
  return float(inter / union) if union > 0 else 0.0


def _show(xywh) -> str:
  try:
    return str(list(xywh))
  except TypeError:
    return repr(xywh)
