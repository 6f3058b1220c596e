"""Video files, person boxes per frame (detections files, tracking), track colours.

Decoding and encoding go through imageio-ffmpeg (its wheel ships an ffmpeg
binary): it reads any format ffmpeg reads and writes H.264 mp4 at the exact
input size and frame rate (OpenCV's wheel has no H.264 encoder, and its mp4v
writer silently rounds odd sizes down to even ones).

Boxes are (4,) [x_min, y_min, x_max, y_max] in frame pixels everywhere here; the
files a user writes give x, y, w, h (see `load_detections`).
"""

import csv
import dataclasses
import json
import os
from typing import Iterator, Sequence

import numpy as np

from hybrik_jax import errors
from hybrik_jax.data import boxes as boxes_lib
from hybrik_jax.data import render


class VideoError(errors.InputError):
  """A bad video or detections file (one line, names the input)."""


# ----------------------------------------------------------------------------
# Decoding and encoding.
# ----------------------------------------------------------------------------


def _ffmpeg():
  # imageio-ffmpeg starts ffmpeg with preexec_fn=os.setpgrp (so a Ctrl-C does
  # not reach it), and a preexec_fn makes subprocess fork this multithreaded
  # JAX process through Python's fork hooks: JAX then warns "os.fork() was
  # called ... will likely lead to a deadlock". imageio-ffmpeg's own switch
  # for that hang drops the preexec_fn, so ffmpeg is started by vfork + exec
  # with no Python code in the child. ffmpeg then shares our process group: a
  # Ctrl-C stops both, and the demos' outputs, written under temporary names
  # (`atomic_output`), are removed.
  os.environ.setdefault('IMAGEIO_FFMPEG_NO_PREVENT_SIGINT', '1')
  try:
    import imageio_ffmpeg  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise VideoError('video needs imageio-ffmpeg: pip install imageio-ffmpeg') from e
  return imageio_ffmpeg


@dataclasses.dataclass(frozen=True)
class VideoInfo:
  """What a video file holds: num_frames decoded frames of height x width at fps.

  declared_frames: what the container's header promises (duration x fps),
  None if it says nothing; more than num_frames for a truncated file.
  """
  path: str
  num_frames: int
  fps: float
  width: int
  height: int
  declared_frames: int | None = None

  @property
  def missing_frames(self) -> int:
    """Frames the header declares that do not decode (0 if none)."""
    if self.declared_frames is None:
      return 0
    return max(0, self.declared_frames - self.num_frames)


def missing_frames_note(info: VideoInfo) -> str | None:
  """One line saying how many declared frames are missing, or None."""
  if info.missing_frames <= 1:  # a frame of rounding in the duration
    return None
  return (f'warning: video {info.path!r}: its header declares '
          f'{info.declared_frames} frames but only {info.num_frames} decode '
          f'({info.missing_frames} missing: a truncated or damaged file?); the '
          f'results cover those {info.num_frames}')


def probe_video(path: str) -> VideoInfo:
  """Frame count (by decoding, exact), rate and size of a video file.

  Raises:
    VideoError: missing, unreadable, or without a single frame.
  """
  iio = _ffmpeg()
  if not os.path.isfile(path):
    raise VideoError(f'video {path!r} does not exist')
  try:
    reader = iio.read_frames(path)
    meta = next(reader)
    reader.close()
    num_frames, _ = iio.count_frames_and_secs(path)
  except (RuntimeError, OSError, StopIteration, IOError) as e:
    raise VideoError(f'video {path!r} could not be read (ffmpeg: '
                     f'{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__})'
                     '; expected a video file such as .mp4, .mov, .avi') from e
  width, height = (int(v) for v in meta['size'])
  fps = float(meta.get('fps') or 0.0)
  if num_frames <= 0 or width <= 0 or height <= 0:
    raise VideoError(f'video {path!r} has no frames')
  if not np.isfinite(fps) or fps <= 0:
    raise VideoError(f'video {path!r} has no frame rate')
  try:
    declared = int(round(float(meta.get('duration') or 0.0) * fps))
  except (TypeError, ValueError):
    declared = 0
  return VideoInfo(path=path, num_frames=int(num_frames), fps=fps, width=width,
                   height=height, declared_frames=declared or None)


def read_frames(info: VideoInfo) -> Iterator[np.ndarray]:
  """Yields the frames of a probed video, (H, W, 3) uint8 RGB, in order."""
  iio = _ffmpeg()
  reader = iio.read_frames(info.path, pix_fmt='rgb24')
  try:
    next(reader)  # the metadata
    for data in reader:
      yield np.frombuffer(data, np.uint8).reshape(info.height, info.width, 3)
  finally:
    reader.close()


class VideoWriter:
  """H.264 mp4 writer at a given size and rate (yuv420p; yuv444p for odd sizes).

  Use as a context manager; frames are (H, W, 3) uint8 RGB of exactly the
  given size. Writes to `path` directly: callers that must not leave a partial
  file write to a temporary name and rename (see `atomic_output`).
  """

  def __init__(self, path: str, width: int, height: int, fps: float, crf: int = 18):
    self.path, self.width, self.height = path, int(width), int(height)
    even = self.width % 2 == 0 and self.height % 2 == 0
    self._gen = _ffmpeg().write_frames(
        path, (self.width, self.height), fps=float(fps), codec='libx264',
        pix_fmt_out='yuv420p' if even else 'yuv444p', macro_block_size=1,
        quality=None, output_params=['-crf', str(int(crf))],
        ffmpeg_log_level='error')
    self._gen.send(None)
    self.num_frames = 0

  def write(self, frame: np.ndarray) -> None:
    if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
      raise ValueError(f'frame must be ({self.height}, {self.width}, 3) uint8, got '
                       f'{frame.shape} {frame.dtype}')
    self._gen.send(np.ascontiguousarray(frame))
    self.num_frames += 1

  def close(self) -> None:
    if self._gen is not None:
      self._gen.close()
      self._gen = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def write_video(path: str, frames: Sequence[np.ndarray], fps: float) -> None:
  """Writes (H, W, 3) uint8 RGB frames as an H.264 mp4."""
  h, w = frames[0].shape[:2]
  with VideoWriter(path, w, h, fps) as writer:
    for frame in frames:
      writer.write(frame)


class atomic_output:  # pylint: disable=invalid-name
  """Temporary names beside the final paths, renamed on success, removed on error.

    with atomic_output([out_mp4, out_npz]) as (tmp_mp4, tmp_npz):
      ...write the temporaries...
  """

  def __init__(self, paths: Sequence[str]):
    self.paths = [os.path.abspath(p) for p in paths]
    self.tmp = []
    for p in self.paths:
      root, ext = os.path.splitext(p)
      self.tmp.append(f'{root}.partial-{os.getpid()}{ext}')

  def __enter__(self) -> list[str]:
    for p in self.paths:
      os.makedirs(os.path.dirname(p), exist_ok=True)
    return list(self.tmp)

  def __exit__(self, exc_type, exc, tb):
    if exc_type is None:
      for t, p in zip(self.tmp, self.paths):
        os.replace(t, p)
    else:
      for t in self.tmp:
        if os.path.exists(t):
          os.remove(t)
    return False


# ----------------------------------------------------------------------------
# Where the people are: detections files, --bbox, the whole frame.
# ----------------------------------------------------------------------------


@dataclasses.dataclass
class Detections:
  """Boxes per frame and track.

  track_ids: (P,) int, sorted.
  boxes: (T, P, 4) float32 [x_min, y_min, x_max, y_max] px; NaN where track p
    has no box in frame t.
  """
  track_ids: np.ndarray
  boxes: np.ndarray

  @property
  def has_box(self) -> np.ndarray:
    """(T, P) bool."""
    return np.all(np.isfinite(self.boxes), axis=-1)


def check_box(xywh: Sequence[float], width: int, height: int, what: str) -> np.ndarray:
  """x, y, w, h (px) -> (4,) xyxy clipped to the frame (`boxes.check_xywh`).

  Raises:
    VideoError: not four finite numbers, empty, or entirely outside the frame.
  """
  try:
    return boxes_lib.check_xywh(xywh, width, height, what=f'{what}: box', image='frame')
  except boxes_lib.BoxError as e:
    raise VideoError(str(e)) from e


def parse_bbox_arg(text: str, width: int, height: int) -> np.ndarray:
  """--bbox 'x,y,w,h' -> (4,) xyxy; VideoError if malformed or outside."""
  try:
    return boxes_lib.parse_xywh(text, width, height, what='--bbox', image='frame')
  except boxes_lib.BoxError as e:
    raise VideoError(str(e)) from e


def _rows_from_coco(path: str, data) -> list[tuple[int, float, list[float], int | None]]:
  if isinstance(data, dict) and 'annotations' in data:
    data = data['annotations']
  if not isinstance(data, list):
    raise VideoError(f'detections {path!r}: expected a COCO results list '
                     '[{"image_id": frame, "bbox": [x, y, w, h], "score": s}, ...]')
  rows = []
  for i, d in enumerate(data):
    if not isinstance(d, dict) or 'image_id' not in d or 'bbox' not in d:
      raise VideoError(f'detections {path!r}: entry {i} lacks image_id or bbox')
    if int(d.get('category_id', 1)) != 1:  # COCO category 1: person
      continue
    track = d.get('track_id')
    rows.append((_as_int(d['image_id'], path, f'entry {i} image_id'),
                 _as_number(d.get('score', 1.0), path, f'entry {i} score'),
                 _as_box(d['bbox'], path, f'entry {i} bbox'),
                 None if track is None else _as_int(track, path, f'entry {i} track_id')))
  return rows


def _as_number(value, path: str, what: str) -> float:
  """A finite number (not a string, bool or null), else VideoError."""
  if isinstance(value, bool) or not isinstance(value, (int, float)) or \
      not np.isfinite(value):
    raise VideoError(f'detections {path!r}: {what} must be a finite number, '
                     f'got {value!r}')
  return float(value)


def _as_box(value, path: str, what: str) -> list[float]:
  """[x, y, w, h]: a list of four finite numbers, else VideoError."""
  if not isinstance(value, (list, tuple)) or len(value) != 4 or any(
      isinstance(v, bool) or not isinstance(v, (int, float)) or
      not np.isfinite(v) for v in value):
    raise VideoError(f'detections {path!r}: {what} must be [x, y, w, h] (four '
                     f'numbers, pixels), got {value!r}')
  return [float(v) for v in value]


def _as_int(value, path: str, what: str) -> int:
  try:
    f = float(value)
  except (TypeError, ValueError):
    f = float('nan')
  if not np.isfinite(f) or f != int(f):
    raise VideoError(f'detections {path!r}: {what} must be an integer, got {value!r}')
  return int(f)


def _rows_from_csv(path: str, text: str) -> list[tuple[int, float, list[float], int | None]]:
  rows = []
  for n, line in enumerate(csv.reader(text.splitlines()), start=1):
    cells = [c.strip() for c in line]
    if not cells or not cells[0] or cells[0].startswith('#'):
      continue
    if n == 1 and not cells[0].lstrip('-').isdigit():
      continue  # a header line
    if len(cells) not in (5, 6):
      raise VideoError(f'detections {path!r} line {n}: expected frame,x,y,w,h[,track_id], '
                       f'got {",".join(cells)!r}')
    try:
      box = [float(c) for c in cells[1:5]]
    except ValueError as e:
      raise VideoError(f'detections {path!r} line {n}: x,y,w,h must be numbers') from e
    rows.append((_as_int(cells[0], path, f'line {n} frame'), 1.0, box,
                 _as_int(cells[5], path, f'line {n} track_id') if len(cells) == 6 else None))
  return rows


def load_detections(path: str, info: VideoInfo,
                    tracks: Sequence[int] | None = None) -> Detections:
  """Person boxes from a detections file.

  Two formats (see docs/DEMO.md, "Video"):
    * COCO results JSON: a list of {"image_id": frame index (0-based),
      "bbox": [x, y, w, h], "score": s, optional "track_id", optional
      "category_id" (entries of categories other than 1 = person are ignored)};
    * text/CSV: one `frame,x,y,w,h[,track_id]` per line (# comments and a
      header line allowed).
  Without track ids the file describes one person: the highest-scoring box of
  each frame is kept (track 0). With track ids, one box per (frame, track)
  (the highest-scoring when repeated).

  Args:
    path: the file (.json: COCO, anything else: CSV).
    info: the video (frame count and size, to check the file against).
    tracks: keep only these track ids (each must be in the file).

  Raises:
    VideoError: unreadable, malformed, a frame index outside the video, a box
      outside the frame, a requested track not in the file, or no boxes.
  """
  if not os.path.isfile(path):
    raise VideoError(f'detections file {path!r} does not exist')
  try:
    with open(path, encoding='utf-8') as f:
      text = f.read()
  except (OSError, UnicodeDecodeError) as e:
    raise VideoError(f'detections file {path!r} could not be read: {e}') from e
  if path.lower().endswith('.json'):
    try:
      data = json.loads(text)
    except json.JSONDecodeError as e:
      raise VideoError(f'detections {path!r} is not valid JSON (line {e.lineno}: {e.msg})') from e
    rows = _rows_from_coco(path, data)
  else:
    rows = _rows_from_csv(path, text)
  if not rows:
    raise VideoError(f'detections {path!r} has no person boxes')
  with_ids = [r[3] is not None for r in rows]
  if any(with_ids) and not all(with_ids):
    raise VideoError(f'detections {path!r}: either every box has a track_id or none has')
  bad = sorted({r[0] for r in rows if not 0 <= r[0] < info.num_frames})
  if bad:
    raise VideoError(f'detections {path!r} name frame {bad[0]}'
                     f'{f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""}, but the '
                     f'video has {info.num_frames} frames (0..{info.num_frames - 1})')
  rows = [(f, s, b, 0 if t is None else t) for f, s, b, t in rows]
  present = sorted({r[3] for r in rows})
  if tracks is not None:
    missing = [t for t in tracks if t not in present]
    if missing:
      raise VideoError(f'--tracks names track {missing[0]}, which detections {path!r} '
                       f'does not have (it has tracks {present})')
    present = sorted(set(int(t) for t in tracks))
  column = {t: i for i, t in enumerate(present)}
  boxes = np.full((info.num_frames, len(present), 4), np.nan, np.float32)
  scores = np.full((info.num_frames, len(present)), -np.inf)
  for frame, score, box, track in rows:
    if track not in column:
      continue
    box = check_box(box, info.width, info.height,
                    f'detections {path!r} frame {frame} track {track}')
    if score > scores[frame, column[track]]:
      scores[frame, column[track]] = score
      boxes[frame, column[track]] = box
  return Detections(track_ids=np.asarray(present, np.int64), boxes=boxes)


# ----------------------------------------------------------------------------
# Tracking from the predicted joints.
# ----------------------------------------------------------------------------

# The box of the 29 projected joints (head top, finger tips and toes: the
# body's extremities) grown by this fraction of its size on every side is the
# person's box (IoU 0.86 with the mesh's box over 32 synthetic_humans examples;
# 0.78 with 0.08); the crop then adds HybrIK's aspect ratio and x1.25 margin
# (input_pipeline.preprocess_image), as for any other box.
JOINT_BOX_PAD = 0.03
MIN_TRACK_BOX = 4.0  # px: a smaller joint box is not trusted


def box_from_joints(joints_2d: np.ndarray, width: int, height: int,
                    pad: float = JOINT_BOX_PAD) -> np.ndarray | None:
  """Person box (4,) xyxy from (J, 2) projected joints, clipped to the frame.

  None when the joints are not finite, the box is smaller than MIN_TRACK_BOX
  or lies outside the frame (the tracker then keeps the previous box).
  """
  pts = np.asarray(joints_2d, np.float64)
  if pts.size == 0 or not np.all(np.isfinite(pts)):
    return None
  lo, hi = pts.min(0), pts.max(0)
  size = hi - lo
  if size.max() < MIN_TRACK_BOX:
    return None
  lo, hi = lo - pad * size, hi + pad * size
  x0, y0 = max(lo[0], 0.0), max(lo[1], 0.0)
  x1, y1 = min(hi[0], width - 1.0), min(hi[1], height - 1.0)
  if x1 - x0 < MIN_TRACK_BOX or y1 - y0 < MIN_TRACK_BOX:
    return None
  return np.array([x0, y0, x1, y1], np.float32)


# Track colours: the image demo's blue-grey first, then well-separated hues.
TRACK_PALETTE = np.array([
    (0.70, 0.78, 0.92), (0.95, 0.62, 0.25), (0.45, 0.80, 0.45), (0.90, 0.45, 0.65),
    (0.95, 0.88, 0.35), (0.55, 0.45, 0.85), (0.35, 0.80, 0.82), (0.75, 0.55, 0.40),
], np.float32)


def track_colors(num_tracks: int) -> np.ndarray:
  """(P, 3) float RGB in [0, 1], one distinct colour per track."""
  extra = render.part_palette(max(num_tracks - len(TRACK_PALETTE), 0))
  return np.concatenate([TRACK_PALETTE, extra.reshape(-1, 3)])[:num_tracks]
