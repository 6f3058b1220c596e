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

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Training config file (configs/*.py).', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None,
                               'Checkpoints and TensorBoard logs go here.')
_DISTRIBUTED = flags.DEFINE_bool(
    'distributed', False,
    'Call jax.distributed.initialize() (auto-detected clusters: TPU, SLURM).')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None,
    'host:port of process 0, for several processes (implies --distributed).')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None,
                                      'Number of processes (hosts).')
_PROCESS_ID = flags.DEFINE_integer('process_id', None,
                                   'This process\'s index in [0, num_processes).')


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Too many command-line arguments: {argv[1:]}')
  if not flags.FLAGS['verbosity'].present:
    # Keep the console to the progress bar and results (Orbax logs a lot at
    # INFO); --verbosity=0 brings the INFO logs back. TensorBoard gets all.
    logging.set_verbosity(logging.WARNING)
  if _COORDINATOR.value or _DISTRIBUTED.value:
    jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                               num_processes=_NUM_PROCESSES.value,
                               process_id=_PROCESS_ID.value)
  logging.info('JAX process %d of %d, local devices %s', jax.process_index(),
               jax.process_count(), jax.local_devices())
  try:
    train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except errors.InputError as e:  # a Stopped run too: its line and status
    cli.fail(e)
  except KeyboardInterrupt:  # before the training loop's handlers are set
    print('Interrupted before training started; nothing was saved.',
          file=sys.stderr, flush=True)
    sys.exit(cli.EXIT_INTERRUPTED)


def _parse_flags(argv: Sequence[str]) -> Sequence[str]:
  """absl's flag parsing, with a bad --config.x override as one line."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    cli.fail(cli.UserError(f'{e}. See the fields in '
                           'hybrik_jax/training/train_config.py and configs/.'))
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    # ml_collections raises these for an unknown or mistyped --config.x=...
    overrides = ' '.join(a for a in argv if a.startswith('--config.'))
    cli.fail(cli.UserError(
        f'bad config override in {overrides or "the flags"} '
        f'({type(e).__name__}: {e}): not a field of the config, or a value '
        'of the wrong type. See hybrik_jax/training/train_config.py and configs/.'))


if __name__ == '__main__':
  flags.mark_flags_as_required(['config', 'workdir'])
  app.run(main, flags_parser=_parse_flags)
