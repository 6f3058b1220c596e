"""Builds the TFDS datasets of `tfds_builders` (the library of prepare_data).

`build(name, ...)` makes one dataset (what and how big first, `describe`),
`is_built(name, data_dir)` says whether it is there. synthetic_humans needs
no download; the real datasets read the files downloaded by hand from a
`manual_dir` (tfds_builders/<name>/README.md says which files go where).
`python -m hybrik_jax.prepare_data` is the command line over these.
"""

import os
import shutil
from typing import Sequence

from absl import logging

DEFAULT_FILE_FORMAT = 'array_record'


def make_builder(name: str, config: str | None, data_dir: str | None,
                  file_format: str, num_workers: int | None):
  """Imports tfds_builders.<name> and instantiates its Builder."""
  import tfds_builders  # pylint: disable=g-import-not-at-top
  module = tfds_builders.import_builder_module(name)
  builder_cls = getattr(module, 'Builder', None)
  if builder_cls is None:
    raise ModuleNotFoundError(
        f'tfds_builders/{name}/__init__.py does not export a Builder class')
  kwargs = {'data_dir': data_dir, 'file_format': file_format}
  configs = {c.name for c in (builder_cls.BUILDER_CONFIGS or [])}
  if config is not None:
    if config in configs:
      kwargs['config'] = config
    else:
      logging.warning('%s has no config %r (has %s); using its default.',
                      name, config, sorted(configs))
  if num_workers is not None and name in ('synthetic_humans', 'synthetic_whole_body'):
    kwargs['num_workers'] = num_workers
  return builder_cls(**kwargs)


def _check_manual_dir(builder, name: str, manual_dir: str | None) -> None:
  """A clear error if a manual-download dataset has no (or an empty) manual_dir.

  `builder` may be the Builder class: nothing is created by the check.
  """
  if not getattr(builder, 'MANUAL_DOWNLOAD_INSTRUCTIONS', None):
    return
  from etils import epath  # pylint: disable=g-import-not-at-top
  if manual_dir is None:
    raise FileNotFoundError(
        f'{name} is built from files you download by hand: pass '
        f'--manual_dir DIR with them (see tfds_builders/{name}/README.md)')
  if not epath.Path(manual_dir).is_dir():
    raise FileNotFoundError(
        f'--manual_dir {manual_dir} does not exist or is not a folder; {name} '
        f'reads its files from there (see tfds_builders/{name}/README.md).')
  if not any(epath.Path(manual_dir).iterdir()):
    raise FileNotFoundError(
        f'--manual_dir {manual_dir} is empty; put the downloaded {name} files '
        f'there first (see tfds_builders/{name}/README.md).')


def _new_dirs(path: str) -> list[str]:
  """`path` and its ancestors that do not exist yet (deepest first)."""
  out = []
  path = os.path.abspath(path)
  while path and not os.path.exists(path):
    out.append(path)
    parent = os.path.dirname(path)
    if parent == path:
      break
    path = parent
  return out


def _remove_empty_dirs(top: str, created: Sequence[str]) -> None:
  """Removes the empty folders under `top` (and `top`), then `created`."""
  for root, _, _ in os.walk(top, topdown=False):
    try:
      os.rmdir(root)  # fails (and is kept) unless empty
    except OSError:
      pass
  for path in created:  # deepest first
    try:
      os.rmdir(path)
    except OSError:
      pass


INCOMPLETE_PREFIX = 'incomplete.'  # TFDS's temporary build folders


def remove_incomplete(builder) -> list[str]:
  """Removes what a killed build of this dataset left: TFDS's
  `incomplete.*` folders beside its version folder. Returns their paths.

  Builds of one dataset into one data_dir run one at a time (TFDS renames the
  temporary folder into place at the end), so any such folder is stale.
  """
  parent = os.path.dirname(os.path.abspath(os.fspath(builder.data_dir)))
  if not os.path.isdir(parent):
    return []
  removed = []
  for name in sorted(os.listdir(parent)):
    path = os.path.join(parent, name)
    if name.startswith(INCOMPLETE_PREFIX) and os.path.isdir(path):
      shutil.rmtree(path, ignore_errors=True)
      removed.append(path)
  return removed


def describe(builder) -> str:
  """'synthetic_humans/small 1.0.0 (4,000 train + 500 validation examples,
  128 px renders) in DIR': what a build makes, and how big when known."""
  cfg = builder.builder_config
  name = builder.name + (f'/{cfg.name}' if cfg is not None else '')
  sizes = [f'{getattr(cfg, "num_" + split):,} {split}'
           for split in ('train', 'validation', 'test')
           if cfg is not None and hasattr(cfg, 'num_' + split)]
  what = ''
  if sizes:
    what = ' (' + ' + '.join(sizes) + ' examples'
    if hasattr(cfg, 'image_size'):
      what += f', {cfg.image_size} px renders'
    what += ')'
  return f'{name} {builder.version}{what} in {builder.data_dir}'


def is_built(name: str, data_dir: str | None = None) -> bool:
  """Whether tfds_builders' `name` ('base[/config]') is prepared in data_dir.

  Read from the folder layout: asking TFDS to open a dataset that is not
  there logs a 'Variant folder ... has no dataset_info.json' warning, which
  would look like a fault on every first run.
  """
  base, _, config = name.partition('/')
  builder = make_builder(base, config.partition(':')[0] or None, data_dir,
                          DEFAULT_FILE_FORMAT, None)
  from etils import epath  # pylint: disable=g-import-not-at-top
  return (epath.Path(builder.data_dir) / 'dataset_info.json').exists()


def build(name: str, *, data_dir: str | None = None, manual_dir: str | None = None,
          config: str | None = None, file_format: str = DEFAULT_FILE_FORMAT,
          num_workers: int | None = None, overwrite: bool = False):
  """Builds one dataset; returns its tfds builder (info, splits, data_dir).

  Says what it builds and how big (`describe`) before TFDS's progress bars.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  import tfds_builders  # pylint: disable=g-import-not-at-top
  builder_cls = getattr(tfds_builders.import_builder_module(name), 'Builder',
                        None)
  if builder_cls is not None:  # check before the builder creates folders
    _check_manual_dir(builder_cls, name, manual_dir)
  root = os.path.expanduser(data_dir or tfds.core.constants.DATA_DIR)
  created = _new_dirs(root)
  # Folders TFDS makes for this build; removed again if it fails while empty.
  fresh = [p for p in (os.path.join(root, name), os.path.join(root, 'downloads'))
           if not os.path.exists(p)]
  builder = make_builder(name, config, data_dir, file_format, num_workers)
  for path in remove_incomplete(builder):
    print(f'Removed {path} (left by a build that was killed)', flush=True)
  print(f'Building {describe(builder)}', flush=True)
  # TFDS prints 'Downloading and preparing dataset Unknown size (download:
  # Unknown size, generated: Unknown size, ...)' before every build
  # (DatasetBuilder._log_download_bytes, no option turns it off). Our datasets
  # are generated or read from a manual_dir, so those sizes are always
  # unknown; the line above says what is built instead.
  builder._log_download_bytes = lambda: None  # pylint: disable=protected-access
  download_config = tfds.download.DownloadConfig(
      manual_dir=manual_dir,
      download_mode=(tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS
                     if overwrite else
                     tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS),
  )
  try:
    builder.download_and_prepare(download_config=download_config)
  except (AssertionError, FileNotFoundError, KeyError, OSError,
          ValueError) as e:
    for path in fresh:
      _remove_empty_dirs(path, [])
    if created:
      _remove_empty_dirs(root, created)
    if manual_dir is None:
      raise
    raise FileNotFoundError(
        f'{name} could not be built from --manual_dir {manual_dir} '
        f'({type(e).__name__}: {" ".join(str(e).split())[:200]}); check that '
        f'it holds the files tfds_builders/{name}/README.md lists.') from None
  return builder
