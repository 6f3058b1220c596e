r"""Trains HybrIK-Transformer: `python -m hybrik_jax.train`.

    python -m hybrik_jax.train --config configs/paper.py --workdir /tmp/hybrik \
        [--config.batch_size=64 ...]

Starting again with the same workdir resumes from the latest checkpoint
(params, optimizer, step, rng, input iterator). The job itself is
`hybrik_jax.training.trainer.train_and_evaluate(config, workdir)`, importable
(tests, Colab) and re-exported here as `train.train_and_evaluate`.

Several hosts (one process per host; every process runs the same command):

    python -m hybrik_jax.train --config configs/paper.py --workdir DIR \
        --coordinator_address=HOST0:1234 --num_processes=N --process_id=I

On TPU pods and SLURM, `--distributed` alone lets JAX detect the cluster.
"""

import sys
from typing import Sequence

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from hybrik_jax import cli
from hybrik_jax import cli_flags
from hybrik_jax import errors
from hybrik_jax.training import train_config
from hybrik_jax.training import trainer

# The library, under the names this module has always offered.
train_and_evaluate = trainer.train_and_evaluate
# The config: every field and its default (train_config.base_config).
base_config = train_config.base_config
check_config = train_config.check_config


# ---------------------------------------------------------------------------
# Command line.
# ---------------------------------------------------------------------------

_PROG = 'python -m hybrik_jax.train'
_FIELDS = 'hybrik_jax/training/train_config.py and configs/'


def parse(argv: Sequence[str] | None = None) -> flags.FlagValues:
  """The flags of `python -m hybrik_jax.train` (see --help).

  Also accepts absl's own flags (--verbosity, --pdb, ...: --helpfull).
  """
  argv = list(sys.argv[1:] if argv is None else argv)
  fs = cli_flags.FlagSet(
      _PROG, __doc__, absl_flags=True,
      epilog='  --config.FIELD=VALUE: overrides a field of the config, e.g. '
      '--config.batch_size=64')
  config_flags.DEFINE_config_file(
      'config', None, 'Training config file (configs/*.py).',
      flag_values=fs.flag_values, lock_config=True, sys_argv=[_PROG] + argv)
  fs.require('config')
  fs.workdir('Checkpoints and TensorBoard logs go here.')
  fs.boolean('distributed', False, 'Call jax.distributed.initialize() '
             '(auto-detected clusters: TPU, SLURM).')
  fs.string('coordinator_address', None, 'host:port of process 0, for '
            'several processes (implies --distributed).')
  fs.integer('num_processes', None, 'Number of processes (hosts).')
  fs.integer('process_id', None, "This process's index in [0, num_processes).")
  try:
    args = fs.parse(argv)
    args.config.get  # pylint: disable=pointless-statement
  except cli.UserError as e:
    if '--config.' not in str(e):
      raise
    raise cli.UserError(f'{e}; see the fields in {_FIELDS}') from None
  except OSError as e:  # ml_collections: the config file did not load
    reason = str(e).strip().splitlines()[-1].strip()
    raise cli.UserError(f'--config: cannot load the config file ({reason})') from None
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    # ml_collections raises these for an unknown or mistyped --config.x=...
    overrides = ' '.join(_bad_overrides(argv, e))
    raise cli.UserError(
        f'bad config override in {overrides or "the flags"} '
        f'({type(e).__name__}: {cli.one_line(e)}): not a field of the config, '
        f'or a value of the wrong type. See {_FIELDS}.') from None
  return args


def _bad_overrides(argv: Sequence[str], error: BaseException) -> list[str]:
  """The --config.x=... flags the error names (by a field of their path),
  else every --config. flag."""
  overrides = [a for a in argv if a.startswith('--config.')]
  text = str(error)
  named = [a for a in overrides
           if any(f"'{part}'" in text or f'"{part}"' in text
                  for part in a[len('--config.'):].split('=')[0].split('.'))]
  return named or overrides


def main(argv: Sequence[str] | None = None) -> int:
  """`python -m hybrik_jax.train` with `argv` (its flags, no program name)."""
  return _main(parse(argv))


def _main(args: flags.FlagValues) -> int:
  if not args['verbosity'].present:
    # Keep the console to the progress bar and results (Orbax logs a lot at
    # INFO); --verbosity=0 brings the INFO logs back. TensorBoard gets all.
    logging.set_verbosity(logging.WARNING)
  if args.coordinator_address or args.distributed:
    jax.distributed.initialize(coordinator_address=args.coordinator_address,
                               num_processes=args.num_processes,
                               process_id=args.process_id)
  logging.info('JAX process %d of %d, local devices %s', jax.process_index(),
               jax.process_count(), jax.local_devices())
  try:
    train_and_evaluate(args.config, args.workdir)
  except errors.InputError as e:  # a Stopped run too: its line and status
    cli.fail(e)
  except KeyboardInterrupt:  # before the training loop's handlers are set
    print('Interrupted before training started; nothing was saved.',
          file=sys.stderr, flush=True)
    sys.exit(cli.EXIT_INTERRUPTED)
  return 0


def _parse_or_fail(argv: Sequence[str]) -> flags.FlagValues:
  """absl.app's flags_parser: `parse`, a bad flag as one line (exit 2)."""
  try:
    return parse(argv[1:])
  except cli.UserError as e:
    cli.fail(e)


if __name__ == '__main__':
  app.run(_main, flags_parser=_parse_or_fail)
