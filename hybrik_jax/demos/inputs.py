"""Inputs to try the demos on: a prepared dataset's images as PNG, a rendered clip.

  write_dataset_images  N images of a prepared TFDS dataset's split as PNG, and
                        each person's box as the demo's --bbox x,y,w,h;
  write_clip            the synthetic walking person (`data.synthetic_clip`) as
                        an H.264 mp4, and its first frame's box.

The command line is `python -m hybrik_jax.demo_inputs` (demo_inputs.py).
"""

import dataclasses
import os

import cv2
import numpy as np

from hybrik_jax import errors
from hybrik_jax.data import input_pipeline
from hybrik_jax.data import synthetic_clip
from hybrik_jax.demos import video_io


@dataclasses.dataclass(frozen=True)
class WrittenImage:
  path: str
  bbox_xywh: str  # the person's box as --bbox takes it ('x,y,w,h', px)


def xywh_text(box: np.ndarray) -> str:
  """(4,) xyxy px -> 'x,y,w,h' (one decimal), as --bbox takes it."""
  x0, y0, x1, y1 = (float(v) for v in box)
  return f'{x0:.1f},{y0:.1f},{x1 - x0:.1f},{y1 - y0:.1f}'


def write_dataset_images(dataset: str, out_dir: str, n: int = 4, *, split: str = 'validation',
                         first: int = 0, data_dir: str | None = None) -> list[WrittenImage]:
  """Writes examples first .. first + n - 1 of a prepared dataset as PNG.

  Files are OUT_DIR/<dataset>_<split>_<index>.png ('/' in the name becomes '_').

  Raises:
    errors.InputError: the dataset is not prepared, or has fewer examples.
    ValueError: n < 1 or first < 0.
  """
  if n < 1 or first < 0:
    raise errors.InputError(f'--n must be >= 1 and --first >= 0, got {n} and {first}')
  try:
    source = input_pipeline.open_data_source(dataset, split, data_dir)
  except ValueError as e:
    raise errors.InputError(str(e)) from e
  if first + n > len(source):
    raise errors.InputError(f'{dataset} {split} has {len(source)} examples; asked for '
                            f'{first}..{first + n - 1}')
  os.makedirs(out_dir, exist_ok=True)
  stem = dataset.replace('/', '_').replace(':', '_')
  written = []
  for i in range(first, first + n):
    example = source[i]
    path = os.path.join(out_dir, f'{stem}_{split}_{i:04d}.png')
    if not cv2.imwrite(path, cv2.cvtColor(np.asarray(example['image']), cv2.COLOR_RGB2BGR)):
      raise errors.InputError(f'could not write {path!r}')
    written.append(WrittenImage(path, xywh_text(np.asarray(example['bbox']))))
  return written


def write_clip(out_path: str, *, frames: int = 48, size: int = 256, fps: float = 25.0,
               seed: int = 0) -> str:
  """Renders the synthetic walking person (size x size px) to an mp4.

  Returns:
    its first frame's person box as 'x,y,w,h' (the video demo's --bbox).

  Raises:
    errors.InputError: a bad size, frame count or path.
  """
  if not out_path.lower().endswith('.mp4'):
    raise errors.InputError(f'--out must be an .mp4 path, got {out_path!r}')
  if frames < 1 or size < 32 or not fps > 0:
    raise errors.InputError(f'need --frames >= 1, --size >= 32 px and --fps > 0, got '
                            f'{frames}, {size}, {fps}')
  clip, truth = synthetic_clip.moving_person_clip(frames, size, size, seed=seed)
  os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
  with video_io.atomic_output([out_path]) as (tmp,):
    video_io.write_video(tmp, list(clip), fps)
  return xywh_text(truth['bbox'][0])
