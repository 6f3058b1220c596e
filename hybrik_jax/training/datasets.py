"""The trainer's datasets: opened, built when allowed, or named when missing.

`open_sources` opens the training mix and the validation split (random
access; their sizes give the epoch length), builds the no-download datasets
first when config.data.build_if_missing, and turns a missing dataset into
one `DatasetMissingError` line that gives the commands that build it.
"""

import os
from typing import Any, Mapping, Sequence

from absl import logging
import jax

from hybrik_jax import errors
from hybrik_jax.data import build as build_lib
from hybrik_jax.data import input_pipeline

# Datasets that need no download: built on first use if
# config.data.build_if_missing.
BUILDABLE = ('synthetic_humans', 'synthetic_whole_body')


class DatasetMissingError(errors.InputError, FileNotFoundError):
  """A configured dataset is not prepared in the data_dir."""


def missing_message(data: input_pipeline.DataConfig) -> str:
  """One line: which data_dir lacks the data, and the commands that build it (or
  which datasets have no builder here)."""
  names = [n for n, _ in data.train_datasets] + [data.eval_dataset]
  import tfds_builders  # pylint: disable=g-import-not-at-top
  unknown = [n for n in dict.fromkeys(names)
             if input_pipeline.base_name(n) not in (*tfds_builders.KNOWN_DATASETS,
                                                    *tfds_builders.RENAMED)]
  if unknown:
    return (f'dataset(s) {", ".join(unknown)}: the project has no builder for them yet '
            f'(it has {", ".join(tfds_builders.KNOWN_DATASETS)}); this config cannot be '
            'trained as written: choose datasets it has (config.data.train_datasets, '
            'config.data.eval_dataset)')
  data_dir = f' --data_dir {data.data_dir}' if data.data_dir else ''
  build = []
  for name in dict.fromkeys(names):
    base = input_pipeline.base_name(name)
    builder_config = f' --config {name.split("/")[1]}' if '/' in name else ''
    manual = ('' if base in BUILDABLE else
              ' --manual_dir <the downloaded files, see '
              f'tfds_builders/{base}/README.md>')
    build.append(f'python -m hybrik_jax.prepare_data --dataset {base}'
                 f'{builder_config}{data_dir}{manual}')
  where = data.data_dir or 'the default TFDS data_dir'
  return (f'dataset(s) {", ".join(dict.fromkeys(names))} not prepared in '
          f'{where} (config.data.data_dir). Build first: ' +
          '; '.join(dict.fromkeys(build)))


def build_missing(data: input_pipeline.DataConfig,
                  names: Sequence[str]) -> None:
  """Builds the missing no-download datasets among `names` (process 0)."""
  for name in dict.fromkeys(names):
    base = input_pipeline.base_name(name)
    if base not in BUILDABLE:
      continue
    builder_config = name.split('/')[1] if '/' in name else None
    if jax.process_index() == 0:
      if build_lib.is_built(name, data.data_dir):
        continue
      logging.info('Building %s (config.data.build_if_missing)', name)
      print(f'{name} is not built yet: building it (once).', flush=True)
      build_lib.build(base, data_dir=data.data_dir, config=builder_config)
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices('hybrik_jax dataset build')


def open_sources(data: input_pipeline.DataConfig,
                 data_sources: Mapping[str, Any] | None, eval_source: Any, *,
                 build_if_missing: bool) -> tuple[dict[str, Any], Any]:
  """({name: source} of the training mix, the validation split's source).

  Sources given (`data_sources`, `eval_source`: tests, in-memory data) are
  used as they are; the others are the prepared TFDS datasets.

  Raises:
    DatasetMissingError: a dataset is not prepared (nothing is written).
  """
  data_sources = dict(data_sources or {})
  if (data.data_dir and not data_sources and not build_if_missing
      and '://' not in data.data_dir and not os.path.isdir(data.data_dir)):
    raise DatasetMissingError(
        f'config.data.data_dir {data.data_dir} does not exist. ' +
        missing_message(data))
  names = [n for n, _ in data.train_datasets if n not in data_sources]
  try:
    if build_if_missing:
      build_missing(data, names + [data.eval_dataset])
    sources = {
        name: data_sources[name] if name in data_sources else
              input_pipeline.open_data_source(name, data.train_split,
                                              data.data_dir)
        for name, _ in data.train_datasets}
    if eval_source is None:
      eval_source = input_pipeline.open_data_source(
          data.eval_dataset, data.eval_split, data.data_dir)
  except ValueError:
    # TFDS's own message misleads ("already prepared ... TFRECORD").
    raise DatasetMissingError(missing_message(data)) from None
  return sources, eval_source

