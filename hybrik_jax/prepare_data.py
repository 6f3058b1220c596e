r"""Builds the TFDS datasets hybrik_jax trains and evaluates on.

  python -m hybrik_jax.prepare_data --dataset synthetic_humans --config small \
      --data_dir ~/tensorflow_datasets
  python -m hybrik_jax.prepare_data --dataset synthetic_humans,h36m,pw3d \
      --manual_dir /data/manual --data_dir ~/tensorflow_datasets \
      --file_format array_record

synthetic_humans needs no download. The real datasets read files you
downloaded by hand from `--manual_dir` (each builder's README.md,
tfds_builders/<name>/README.md, says which files go where). Builders are
imported from `tfds_builders` by name, so a dataset whose builder is missing
fails with a clear message and does not stop the others from being listed.

`--config` applies to every dataset that has a config of that name (e.g.
synthetic_humans' default/small/tiny); a dataset without it uses its default.
`--file_format` is array_record (random access, used by grain) or tfrecord.
The old spellings --datasets, --data-dir, --manual-dir, --file-format and
--num-workers are accepted, deprecated.
"""

import os
import sys
import time
from typing import Sequence

from absl import flags
from absl import logging

from hybrik_jax import cli_flags

DEFAULT_FILE_FORMAT = 'array_record'


def parse(argv: Sequence[str] | None = None) -> flags.FlagValues:
  """The flags of `python -m hybrik_jax.prepare_data` (see --help)."""
  fs = cli_flags.FlagSet(
      'python -m hybrik_jax.prepare_data', __doc__,
      aliases={'datasets': 'dataset', 'data-dir': 'data_dir',
               'manual-dir': 'manual_dir', 'file-format': 'file_format',
               'num-workers': 'num_workers'})
  fs.dataset_list('comma-separated dataset names, e.g. '
                  'synthetic_humans,h36m,pw3d or synthetic_humans/small',
                  default=['synthetic_humans'])
  fs.data_dir('TFDS data_dir to write to (default: TFDS default, '
              '~/tensorflow_datasets)')
  fs.string('manual_dir', None, 'folder with the manually downloaded files of '
            'the real datasets (not needed for synthetic_humans)')
  fs.string('config', None, 'builder config name, for datasets that have it '
            '(synthetic_humans: default, small, tiny)')
  fs.enum('file_format', DEFAULT_FILE_FORMAT, ('array_record', 'tfrecord'),
          'on-disk format')
  fs.integer('num_workers', None, 'generation processes for synthetic_humans '
             '(default: $HYBRIK_DATA_WORKERS or the number of cores)',
             lower_bound=1)
  fs.overwrite('regenerate even if the dataset version already exists')
  return fs.parse(argv)


def _make_builder(name: str, config: str | None, data_dir: str | None,
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
  if num_workers is not None and name == 'synthetic_humans':
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
  builder = _make_builder(base, config.partition(':')[0] or None, data_dir,
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
  builder = _make_builder(name, config, data_dir, file_format, num_workers)
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


def main(argv: Sequence[str] | None = None) -> int:
  args = parse(argv)
  names = [n.strip() for n in args.dataset if n.strip()]
  if not names:
    print('error: --dataset is empty', file=sys.stderr)
    return 2
  failed = []
  for entry in names:
    # 'name/config' (as config.data names datasets) overrides --config.
    import tfds_builders  # pylint: disable=g-import-not-at-top
    name, _, config = tfds_builders.resolve_name(entry).partition('/')
    config = config.partition(':')[0] or args.config
    t0 = time.time()
    print(f'== {entry} ==', flush=True)
    try:
      builder = build(name, data_dir=args.data_dir, manual_dir=args.manual_dir,
                      config=config, file_format=args.file_format,
                      num_workers=args.num_workers, overwrite=args.overwrite)
    except (ModuleNotFoundError, FileNotFoundError) as e:
      # One line (a ManualDataError's full text also has the instructions).
      message = getattr(e, 'summary', None) or str(e).splitlines()[0]
      print(f'error: {name}: {message}', file=sys.stderr, flush=True)
      failed.append(name)
      continue
    splits = ', '.join(f'{k}: {v.num_examples}' for k, v in builder.info.splits.items())
    print(f'{name} ({builder.builder_config.name if builder.builder_config else ""}'
          f') ready in {time.time() - t0:.0f} s at {builder.data_dir} [{splits}]',
          flush=True)
  if failed:
    if len(names) > 1:  # One dataset: its error line says it all.
      print(f'failed: {", ".join(failed)}', file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  from hybrik_jax import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)  # UserError -> one line, status 2; Ctrl-C -> one line, 130
