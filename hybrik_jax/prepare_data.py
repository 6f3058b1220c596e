r"""Builds the TFDS datasets hybrik_jax trains and evaluates on.

  python -m hybrik_jax.prepare_data --datasets synthetic_humans --config small \
      --data-dir ~/tensorflow_datasets
  python -m hybrik_jax.prepare_data --datasets synthetic_humans,h36m,pw3d \
      --manual-dir /data/manual --data-dir ~/tensorflow_datasets \
      --file-format array_record

synthetic_humans needs no download. The real datasets read files you
downloaded by hand from `--manual-dir` (each builder's README.md,
tfds_builders/<name>/README.md, says which files go where). Builders are
imported from `tfds_builders` by name, so a dataset whose builder is missing
fails with a clear message and does not stop the others from being listed.

`--config` applies to every dataset that has a config of that name (e.g.
synthetic_humans' default/small/tiny); a dataset without it uses its default.
`--file-format` is array_record (random access, used by grain) or tfrecord.
Flags also accept underscores (--data_dir, --manual_dir, ...) and --dataset.
"""

import argparse
import sys
import time
from typing import Sequence

from hybrik_jax.data import build as build_lib

# The library (tests and notebooks call these through this module too).
DEFAULT_FILE_FORMAT = build_lib.DEFAULT_FILE_FORMAT
build = build_lib.build
describe = build_lib.describe
is_built = build_lib.is_built


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
  p = argparse.ArgumentParser(
      prog='python -m hybrik_jax.prepare_data',
      description='Build hybrik_jax TFDS datasets (with a progress bar).')
  p.add_argument('--datasets', '--dataset', default='synthetic_humans',
                 help='comma-separated dataset names, e.g. '
                      'synthetic_humans,h36m,pw3d or synthetic_humans/small '
                      '(default: synthetic_humans)')
  p.add_argument('--data-dir', '--data_dir', default=None,
                 help='TFDS data_dir to write to (default: TFDS default, '
                      '~/tensorflow_datasets)')
  p.add_argument('--manual-dir', '--manual_dir', default=None,
                 help='folder with the manually downloaded files of the real '
                      'datasets (not needed for synthetic_humans)')
  p.add_argument('--config', default=None,
                 help='builder config name, for datasets that have it '
                      '(synthetic_humans: default, small, tiny)')
  p.add_argument('--file-format', '--file_format', default=DEFAULT_FILE_FORMAT,
                 choices=('array_record', 'tfrecord'),
                 help='on-disk format (default: array_record)')
  p.add_argument('--num-workers', '--num_workers', type=int, default=None,
                 help='generation processes for synthetic_humans (default: '
                      '$HYBRIK_DATA_WORKERS or the number of cores)')
  p.add_argument('--overwrite', action='store_true',
                 help='regenerate even if the dataset version already exists')
  return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
  args = _parse_args(sys.argv[1:] if argv is None else argv)
  names = [n.strip() for n in args.datasets.split(',') if n.strip()]
  if not names:
    print('error: --datasets is empty', file=sys.stderr)
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
