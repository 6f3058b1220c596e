r"""Builds the TFDS datasets hybrik_jax trains and evaluates on.

  python -m hybrik_jax.prepare_data --dataset synthetic_humans --config small \
      --data_dir ~/tensorflow_datasets
  python -m hybrik_jax.prepare_data --dataset synthetic_humans,h36m,pw3d \
      --manual_dir /data/manual --data_dir ~/tensorflow_datasets \
      --file_format array_record

synthetic_humans and synthetic_whole_body (SMPL-X, HybrIK-X's targets:
`--dataset synthetic_whole_body --config tiny`) need no download. The real datasets read files you
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

import signal
import sys
import time
from typing import Sequence

from absl import flags

from hybrik_jax import cli_flags
from hybrik_jax.data import build as build_lib

# The library (tests and notebooks call these through this module too).
DEFAULT_FILE_FORMAT = build_lib.DEFAULT_FILE_FORMAT
build = build_lib.build
describe = build_lib.describe
is_built = build_lib.is_built


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
            '(synthetic_humans: default, small, tiny; synthetic_whole_body: default, tiny)')
  fs.enum('file_format', DEFAULT_FILE_FORMAT, ('array_record', 'tfrecord'),
          'on-disk format')
  fs.integer('num_workers', None, 'generation processes for synthetic_humans '
             '(default: $HYBRIK_DATA_WORKERS or the number of cores)',
             lower_bound=1)
  fs.overwrite('regenerate even if the dataset version already exists')
  return fs.parse(argv)


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


def _terminated(signum, frame):
  """SIGTERM ends the build like Ctrl-C: workers stopped, temp files removed."""
  del signum, frame
  print('terminated', file=sys.stderr, flush=True)
  raise SystemExit(128 + signal.SIGTERM)


if __name__ == '__main__':
  from hybrik_jax import cli  # pylint: disable=g-import-not-at-top
  signal.signal(signal.SIGTERM, _terminated)
  cli.run(main)  # UserError -> one line, status 2; Ctrl-C -> one line, 130
