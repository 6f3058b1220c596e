"""Helpers shared by the builders of the real datasets (h36m, pw3d, mpi_inf_3dhp,
coco_keypoints) and the Beam / process-pool generation all five share.

What the four builders have in common and `hybrik_jax.data.features` does not
cover: checking the manual_dir layout (errors that name the missing file and
point at the instructions), reading JSON and frames through `epath` (works on
any filesystem TFDS supports), skipping unreadable frames with a warning and a
count stored in the dataset's metadata, and cropping the frame around the
person with `features.DEFAULT_MARGIN`, clipped to the frame.

Crops are **clipped to the frame**: the stored image is the part of the square
margin box (`features.margin_box`) that lies inside the frame, so it can be
non-square and is never larger than the frame; a crop of 75 % of the frame or
more becomes the whole frame, stored as the source JPEG bytes when possible. Pixels outside it are zeros for
the augmentations, exactly what HybrIK's `cv2.warpAffine` gives outside the
frame. Every 2D quantity is then `frame px - crop_offset`.
"""

import collections
import concurrent.futures
import dataclasses
import importlib
import itertools
import json
import multiprocessing
import os
import pathlib
import sys
from typing import Any, Callable, Iterable, Iterator, Sequence

from absl import logging
import cv2
from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from hybrik_jax.data import features

# How many skipped file names the metadata keeps per split (the count is exact).
MAX_LISTED_SKIPS = 20

# The on-disk format of a new build when none is asked for: ArrayRecord, the
# random-access format the input pipeline reads with `tfds.data_source` (TFDS's
# own default, TFRecord, needs TensorFlow to read and is not random access).
DEFAULT_FILE_FORMAT = 'array_record'
# Splits with fewer source rows than this are built in the calling process.
MIN_ROWS_FOR_WORKERS = 1000


class ManualDataError(FileNotFoundError):
  """A manual-download dataset's files are not where the build looks.

  `str()` is the full message (with the download instructions); `summary` is
  one line naming the folder and what to do, which is all `tfds build` prints
  for it (see install_one_line_errors).
  """

  def __init__(self, message: str, summary: str):
    super().__init__(message)
    self.summary = summary


def _one_line_excepthook(exc_type, exc, tb, _previous=sys.excepthook):
  if isinstance(exc, ManualDataError):
    print(f'error: {exc.summary}', file=sys.stderr, flush=True)
    return
  _previous(exc_type, exc, tb)


def install_one_line_errors() -> None:
  """An uncaught ManualDataError ends the process with one line, no traceback.

  `tfds build` (absl) lets a builder's exception reach the interpreter, which
  would print a traceback; in-process callers (prepare_data, tests) catch the
  exception as usual. The exit status stays 1.
  """
  if sys.excepthook is not _one_line_excepthook:
    _one_line_excepthook.__defaults__ = (sys.excepthook,)
    sys.excepthook = _one_line_excepthook


def dataset_root(manual_dir: 'epath.PathLike | tfds.download.DownloadManager',
                 subdir: str, dataset: str, instructions: str) -> epath.Path:
  """manual_dir/subdir, or a ManualDataError that says what to put there.

  `manual_dir` may be the DownloadManager: its `manual_dir` (TFDS's
  AssertionError for a missing or empty folder) is then read here.
  """
  readme = f'tfds_builders/{dataset}/README.md'
  if not isinstance(manual_dir, (str, os.PathLike)):
    try:
      manual_dir = manual_dir.manual_dir
    except AssertionError as e:
      folder = getattr(manual_dir, '_manual_dir', None)
      raise ManualDataError(
          str(e), f'{dataset}: manual_dir {folder} does not exist or is empty; '
          f'download the files into it as {readme} says and pass it with '
          '--manual_dir') from None
  root = epath.Path(manual_dir) / subdir
  if not root.is_dir():
    raise ManualDataError(
        f'{dataset}: folder {root} not found. Put the dataset under '
        f'<manual_dir>/{subdir}/ as the instructions say ({readme}):\n'
        f'{instructions}',
        f'{dataset}: folder {root} not found; put the dataset under '
        f'<manual_dir>/{subdir}/ as {readme} says')
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


def read_frame_and_source(path: epath.Path) -> tuple[np.ndarray | None, bytes | None]:
  """Decodes an image file to (H, W, 3) uint8 RGB (None if missing or corrupt).

  Also returns the file's bytes when they can be stored as they are for an
  example whose crop is the whole frame: a 3-channel 8-bit JPEG without EXIF
  (so every decoder, with or without EXIF orientation, sees the same pixels);
  else None.
  """
  try:
    data = epath.Path(path).read_bytes()
  except (FileNotFoundError, OSError):
    return None, None
  if not data:
    return None, None
  reusable = data[:2] == b'\xff\xd8' and b'Exif' not in data[:65536]
  try:
    frame = cv2.imdecode(np.frombuffer(data, np.uint8),
                         cv2.IMREAD_UNCHANGED if reusable else cv2.IMREAD_COLOR)
    if frame is not None and reusable and (
        frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8):
      reusable = False
      frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
  except cv2.error:
    return None, None
  if frame is None or frame.ndim != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
    return None, None
  return frame[..., ::-1].copy(), (data if reusable else None)


def read_frame(path: epath.Path) -> np.ndarray | None:
  """Decodes an image file to (H, W, 3) uint8 RGB; None if missing or corrupt."""
  return read_frame_and_source(path)[0]


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
    if reason.startswith('unreadable') and path:
      if counts[reason] <= MAX_LISTED_SKIPS:
        logging.warning('%s/%s: skipping %s (%s: missing or not a decodable '
                        'image)', self._dataset, self._split, path, reason)
      elif counts[reason] == MAX_LISTED_SKIPS + 1:
        logging.warning('%s/%s: more unreadable images; the total is counted in '
                        "metadata.json ['skipped']", self._dataset, self._split)

  def add_totals(self, counts: dict[str, int], listed: Sequence[str]) -> None:
    """Adds counts and listed 'reason: path' entries counted elsewhere (Beam)."""
    totals = self._metadata['skipped'][self._split]
    for reason, n in counts.items():
      totals[reason] = totals.get(reason, 0) + int(n)
    kept = self._metadata['skipped_files'][self._split]
    kept.extend(listed[:max(MAX_LISTED_SKIPS - len(kept), 0)])


# A crop with at least this fraction of the frame's pixels is widened to the
# whole frame, so the example can store the source JPEG as it is (no second
# JPEG loss; re-encoding most of a frame costs more bytes than the source).
WHOLE_FRAME_FRACTION = 0.75


def crop_in_frame(frame: np.ndarray, bbox: np.ndarray,
                  margin: float = features.DEFAULT_MARGIN,
                  whole_frame_fraction: float = WHOLE_FRAME_FRACTION
                  ) -> tuple[np.ndarray, np.ndarray]:
  """The margin box around the person, clipped to the frame.

  Args:
    frame: (H, W, 3) uint8.
    bbox: (4,) [x_min, y_min, x_max, y_max] frame px, positive size.
    margin: crop side / larger side of bbox, before clipping.
    whole_frame_fraction: crops with at least this fraction of the frame's
      pixels become the whole frame (offset 0).

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
  if (x1 - x0) * (y1 - y0) >= whole_frame_fraction * w * h:
    return frame.copy(), np.zeros(2, np.int32)
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
  people counts once, so the ratio is the storage saving of the split), and
  'source_jpeg': how many examples store their source file unchanged.
  """

  def __init__(self, metadata: tfds.core.MetadataDict, split: str):
    self._entry = metadata.setdefault('crop_pixels', {}).setdefault(
        split, {})
    self._entry.update(frame=0, crop=0, ratio=0.0, source_jpeg=0)

  def add(self, frame_pixels: int, crop_pixels: int, source_bytes: bool = False) -> None:
    """frame_pixels: H * W of a frame not counted yet, else 0; source_bytes:
    the example stores the source file as it is (its crop is the whole frame)."""
    self._entry['source_jpeg'] += int(source_bytes)
    self._entry['frame'] += int(frame_pixels)
    self._entry['crop'] += int(crop_pixels)
    self._entry['ratio'] = round(self._entry['crop'] / max(self._entry['frame'], 1), 4)

  def add_totals(self, frame: int, crop: int, source_jpeg: int) -> None:
    """Adds sums counted elsewhere (Beam): frame and crop pixels, source JPEGs."""
    self._entry['source_jpeg'] += int(source_jpeg)
    self.add(frame, crop)


@dataclasses.dataclass
class Outcome:
  """What processing one source row gave: an example, or a reason to skip it.

  Attributes:
    key: the example's TFDS key (examples only).
    example: the example, its image already JPEG bytes (examples only).
    frame_pixels: H * W of the source frame for the first example of a frame,
      0 for the others (so SizeStats counts each frame once).
    crop_pixels: Hc * Wc of the stored crop.
    skip_reason: non-empty for a skip, e.g. 'unreadable_image'.
    skip_path: the file or row it concerns (listed in the metadata).
    skip_count: how many rows the skip stands for.
    source_bytes: the example stores the source file's bytes (whole frame).
  """
  key: str = ''
  example: dict[str, Any] | None = None
  frame_pixels: int = 0
  crop_pixels: int = 0
  skip_reason: str = ''
  skip_path: str = ''
  skip_count: int = 1
  source_bytes: bool = False


def example_outcome(key: str, example: dict[str, Any], frame_shape: tuple[int, ...],
                    first_of_frame: bool = True,
                    source_jpeg: bytes | None = None) -> Outcome:
  """Encodes the example's crop and records the pixel counts.

  A crop that is the whole frame stores `source_jpeg` (the file's own bytes,
  from read_frame_and_source) when given: no second JPEG loss, no growth.
  """
  crop = example['image']
  whole = (tuple(crop.shape[:2]) == tuple(frame_shape[:2])
           and not np.any(example['crop_offset']))
  if whole and source_jpeg is not None:
    example['image'] = source_jpeg
  else:
    whole = False
    example['image'] = features.encode_jpeg(crop)
  return Outcome(key=key, example=example,
                 frame_pixels=int(frame_shape[0] * frame_shape[1]) if first_of_frame else 0,
                 crop_pixels=int(crop.shape[0] * crop.shape[1]), source_bytes=whole)


class GenerationMixin:
  """How every builder of tfds_builders makes its examples: a process pool or Beam.

  A builder lists its *tasks* (plain JSON-able dicts, e.g. one annotation row
  each) in the calling process and processes each with a module-level function
  `fn(task) -> list[Outcome]` (decode, crop, encode). `_generate` then returns

  * without Beam (the default): a generator over `map_tasks` (a process pool of
    `num_workers`), as `tfds.core.GeneratorBasedBuilder` expects;
  * with Beam, when the build asks for it (`DownloadConfig.beam_options` or
    `beam_runner` set, e.g. `tfds build --beam_pipeline_options=...`): a
    `beam.PTransform` (TFDS's Beam-based `_generate_examples`,
    https://www.tensorflow.org/datasets/beam_datasets). The tasks are written
    to `<split>.tasks.jsonl` in the dataset folder being built (shared storage
    on a cluster), read back with `beam.io.ReadFromText` and processed in the
    runner's workers: the DirectRunner with N processes here, Dataflow, Flink
    or Spark unchanged. The skip counts and crop sizes are combined in the
    pipeline and merged into `info.metadata` after it has run
    (`_process_pipeline_result`); the temporary files are then deleted.

  Both paths produce the same examples under the same keys and the same
  metadata; TFDS orders the stored examples by a hash of the key (per split)
  in both of its writers, so the files read back in the same order.
  `--max_examples_per_split` (a debug cap TFDS's Beam writer ignores) always
  takes the plain path, so it means "the first N examples" in both.

  A new build is written in ArrayRecord (DEFAULT_FILE_FORMAT) unless a
  `file_format` is given, so that `tfds build` without `--file_format` makes
  what the input pipeline reads. The lines TFDS prints before and after a
  build say "generated" (synthetic_humans) or "prepared from the files in the
  manual_dir" (the real datasets) instead of "downloaded and prepared".

  Args: num_workers: processes of the plain path (default: $HYBRIK_DATA_WORKERS,
  else 1 for splits under 1000 rows, else the cores, <= 8; see
  default_num_workers). Beam's parallelism is the runner's
  (e.g. direct_num_workers). file_format: as TFDS's (None: the format of
  the prepared dataset, else DEFAULT_FILE_FORMAT). Put the mixin before
  tfds.core.GeneratorBasedBuilder.
  """

  def __init__(self, *, num_workers: int | None = None,
               file_format: 'str | tfds.core.FileFormat | None' = None, **kwargs):
    self._num_workers = num_workers
    self._use_beam = False
    self._beam_splits: dict[str, tuple[Any, Any, epath.Path, epath.Path]] = {}
    super().__init__(file_format=file_format, **kwargs)
    if file_format is None and not self.info.initialized:
      # A new build with no format asked for (`tfds build` without
      # --file_format): ArrayRecord, not TFDS's TFRecord. A prepared dataset
      # (info read from its folder) keeps the format it was written in.
      self.info.set_file_format(DEFAULT_FILE_FORMAT, override=True)

  def _what(self) -> str:
    """'synthetic_humans/tiny 2.0.0': the dataset, its config and version."""
    config = self.builder_config
    return f'{self.name}{"/" + config.name if config else ""} {self.version}'

  def _log_download_bytes(self) -> None:
    """The line before a build (TFDS's says 'Downloading and preparing dataset
    Unknown size (download: Unknown size, ...)': nothing here is downloaded)."""
    if getattr(self, 'MANUAL_DOWNLOAD_INSTRUCTIONS', None):
      how = 'Preparing dataset {} from the files in the manual_dir'
    else:
      how = 'Generating dataset {} (nothing to download)'
    print(f'{how.format(self._what())} to {self.data_dir} ...', flush=True)

  def _log_download_done(self) -> None:
    """The line after a build (TFDS's says 'downloaded and prepared')."""
    how = ('prepared from the files in the manual_dir'
           if getattr(self, 'MANUAL_DOWNLOAD_INSTRUCTIONS', None) else 'generated')
    print(f'Dataset {self._what()} {how} in {self.data_dir} '
          f'({self.info.file_format.value}). Subsequent calls will reuse this data.',
          flush=True)

  def _download_and_prepare(self, dl_manager, download_config):
    install_one_line_errors()
    self._use_beam = (
        (download_config.beam_runner is not None
         or download_config.beam_options is not None)
        and download_config.max_examples_per_split is None)
    if download_config.max_examples_per_split is not None and (
        download_config.beam_runner is not None
        or download_config.beam_options is not None):
      logging.warning('%s: --max_examples_per_split takes the process-pool path '
                      '(TFDS\'s Beam writer does not cap splits).', self.name)
    self._beam_splits = {}
    return super()._download_and_prepare(dl_manager, download_config)

  def _generate(self, split: str, list_tasks: Callable[['SkipCounter | None'], list[Any]],
                fn: Callable[[Any], list['Outcome']], stats: bool = True,
                plain: Callable[[list[Any]], Iterator[tuple[Any, Any]]] | None = None):
    """The split's examples: an iterator (pool) or a beam.PTransform (Beam).

    Args:
      split: split name.
      list_tasks: (skips) -> the split's tasks (JSON-able; it may count rows it
        leaves out into `skips`, None when `stats` is False).
      fn: module-level function, task -> list[Outcome] (runs in the workers).
      stats: count skips and crop sizes into info.metadata.
      plain: (tasks) -> (key, example) iterator for the plain path, instead of
        the pool over `fn` (synthetic_humans' own pool); its output must equal fn's.
    """
    if self._use_beam:
      skips, sizes = self._counters(split, stats)
      return self._beam_transform(split, list_tasks(skips), fn, skips, sizes)
    return self._plain_examples(split, list_tasks, fn, stats, plain)

  def _counters(self, split: str, stats: bool):
    if not stats:
      return None, None
    return (SkipCounter(self.info.metadata, split, self.name),
            SizeStats(self.info.metadata, split))

  def _plain_examples(self, split, list_tasks, fn, stats, plain):
    skips, sizes = self._counters(split, stats)
    tasks = list_tasks(skips)
    if plain is not None:
      yield from plain(tasks)
      return
    workers = self._num_workers or default_num_workers(len(tasks))
    outcomes = map_tasks(TaskFn(fn), tasks, workers)
    if stats:
      yield from emit(outcomes, skips, sizes)
    else:
      for group in outcomes:
        for outcome in group:
          if outcome.example is not None:
            yield outcome.key, outcome.example

  def _beam_transform(self, split, tasks, fn, skips, sizes):
    beam = tfds.core.lazy_imports.apache_beam
    folder = epath.Path(self.data_dir)
    tasks_file = folder / f'{split}.tasks.jsonl'
    stats_file = folder / f'{split}.generation_stats.json'
    with tasks_file.open('w') as f:
      for index, task in enumerate(tasks):
        f.write(json.dumps({'index': index, 'task': task}) + '\n')
    self._beam_splits[split] = (skips, sizes, tasks_file, stats_file)
    task_fn = TaskFn(fn)
    with_stats = skips is not None

    @beam.ptransform_fn
    def examples(pipeline):
      outcomes = (
          pipeline
          | 'ReadTasks' >> beam.io.ReadFromText(os.fspath(tasks_file))
          | 'Reshuffle' >> beam.Reshuffle()
          | 'Process' >> beam.FlatMap(_process_line, task_fn))
      if with_stats:
        _ = (outcomes
             | 'StatsRows' >> beam.Map(_stats_row)
             | 'CombineStats' >> beam.CombineGlobally(_merge_stats)
             | 'WriteStats' >> beam.Map(_write_json, path=stats_file))
      return outcomes | 'Examples' >> beam.FlatMap(_key_example)

    return examples()  # pylint: disable=no-value-for-parameter

  def _process_pipeline_result(self, pipeline_result) -> None:
    """After the Beam pipeline: merges each split's stats into the metadata."""
    super()._process_pipeline_result(pipeline_result)
    for split, (skips, sizes, tasks_file, stats_file) in self._beam_splits.items():
      if skips is not None:
        combined = json.loads(stats_file.read_text())
        skips.add_totals(combined['skipped'],
                         [f'{r}: {p}' for _, _, r, p in combined['listed']])
        sizes.add_totals(**combined['sizes'])
        stats_file.unlink()
        unreadable = sum(n for r, n in combined['skipped'].items()
                         if r.startswith('unreadable'))
        if unreadable:
          logging.warning('%s/%s: %d unreadable images skipped (metadata.json '
                          "['skipped'])", self.name, split, unreadable)
      tasks_file.unlink()
    self._beam_splits = {}


class TaskFn:
  """A builder's `fn(task)`, pickled by name under its tfds_builders module path.

  `tfds build tfds_builders/h36m` imports the builder as `h36m.h36m_dataset_builder`
  with tfds_builders/ on sys.path only while importing, so a worker process
  (pool or Beam) could not import the function under that name; this resolves
  it as `tfds_builders.h36m.h36m_dataset_builder` in the worker instead.
  """

  def __init__(self, fn: Callable[[Any], list['Outcome']]):
    self.module = _importable_module_name(fn)
    self.name = fn.__name__
    self._fn = fn

  def __getstate__(self):
    return {'module': self.module, 'name': self.name}

  def __setstate__(self, state):
    self.__dict__.update(state)
    self._fn = None

  def __call__(self, task: Any) -> list['Outcome']:
    if self._fn is None:
      self._fn = getattr(importlib.import_module(self.module), self.name)
    return self._fn(task)


def _importable_module_name(fn: Callable[..., Any]) -> str:
  """fn's module as `tfds_builders.<...>` when its file lies in this package."""
  module = sys.modules.get(fn.__module__)
  path = getattr(module, '__file__', None)
  package = pathlib.Path(__file__).resolve().parent
  if path:
    try:
      rel = pathlib.Path(path).resolve().relative_to(package)
    except ValueError:
      return fn.__module__
    return '.'.join((package.name, *rel.with_suffix('').parts))
  return fn.__module__


def _process_line(line: str, fn: TaskFn) -> Iterator[tuple[int, int, 'Outcome']]:
  """One tasks.jsonl line -> (task index, outcome index, outcome) for each outcome."""
  row = json.loads(line)
  for position, outcome in enumerate(fn(row['task'])):
    yield row['index'], position, outcome


def _key_example(item: tuple[int, int, 'Outcome']) -> Iterator[tuple[Any, dict[str, Any]]]:
  outcome = item[2]
  if not outcome.skip_reason and outcome.example is not None:
    yield outcome.key, outcome.example


def _stats_row(item: tuple[int, int, 'Outcome']) -> dict[str, Any]:
  """The part of one outcome the metadata needs (not its image), as stats."""
  index, position, o = item
  stats = _empty_stats()
  if o.skip_reason:
    stats['skipped'][o.skip_reason] = int(o.skip_count)
    if o.skip_path:
      stats['listed'] = [[index, position, o.skip_reason, o.skip_path]]
  else:
    stats['sizes'] = {'frame': int(o.frame_pixels), 'crop': int(o.crop_pixels),
                      'source_jpeg': int(o.source_bytes)}
  return stats


def _merge_stats(parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
  """Sums skip counts and sizes; keeps the first MAX_LISTED_SKIPS skipped paths
  in task order (associative and commutative: a Beam combiner)."""
  out = _empty_stats()
  for part in parts:
    for reason, n in part['skipped'].items():
      out['skipped'][reason] = out['skipped'].get(reason, 0) + n
    out['listed'] = sorted(out['listed'] + part['listed'])[:MAX_LISTED_SKIPS]
    for k, v in part['sizes'].items():
      out['sizes'][k] += v
  return out


def _write_json(value: Any, path: epath.Path) -> None:
  path.write_text(json.dumps(value))


def _empty_stats() -> dict[str, Any]:
  return {'skipped': {}, 'listed': [],
          'sizes': {'frame': 0, 'crop': 0, 'source_jpeg': 0}}


def default_num_workers(num_rows: int) -> int:
  """Processes for a split: $HYBRIK_DATA_WORKERS, else 1 for small splits, else cores (<= 8)."""
  env = os.environ.get('HYBRIK_DATA_WORKERS')
  if env:
    return max(1, int(env))
  if num_rows < MIN_ROWS_FOR_WORKERS:
    return 1
  return max(1, min(len(os.sched_getaffinity(0)), 8))


def _run_chunk(fn: Callable[[Any], list[Outcome]], tasks: list[Any]) -> list[list[Outcome]]:
  return [fn(task) for task in tasks]


def map_tasks(fn: Callable[[Any], list[Outcome]], tasks: Sequence[Any],
              num_workers: int, chunk: int = 16) -> Iterator[list[Outcome]]:
  """fn over tasks, in order, in `num_workers` processes (1: here).

  Frames are decoded, cropped and re-encoded in the workers; `fn` and the
  tasks must pickle (a module-level function and plain dicts / strings).
  """
  if num_workers <= 1:
    for task in tasks:
      yield fn(task)
    return
  starts = iter(range(0, len(tasks), chunk))
  ctx = multiprocessing.get_context('spawn')
  with concurrent.futures.ProcessPoolExecutor(num_workers, mp_context=ctx) as pool:
    # A bounded window of chunks in flight, so finished crops do not pile up
    # in memory when the TFDS writer is slower than the workers.
    pending = collections.deque()
    for start in itertools.islice(starts, 4 * num_workers):
      pending.append(pool.submit(_run_chunk, fn, list(tasks[start:start + chunk])))
    while pending:
      results = pending.popleft().result()
      start = next(starts, None)
      if start is not None:
        pending.append(pool.submit(_run_chunk, fn, list(tasks[start:start + chunk])))
      yield from results


def emit(outcomes: Iterable[list[Outcome]], skips: 'SkipCounter',
         sizes: 'SizeStats') -> Iterator[tuple[str, dict[str, Any]]]:
  """Yields the (key, example) pairs; counts skips and sizes into the metadata."""
  for group in outcomes:
    for outcome in group:
      if outcome.skip_reason:
        skips.skip(outcome.skip_reason, outcome.skip_path, outcome.skip_count)
      else:
        sizes.add(outcome.frame_pixels, outcome.crop_pixels, outcome.source_bytes)
        yield outcome.key, outcome.example
