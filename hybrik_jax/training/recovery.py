"""Resuming a run: the newest readable, compatible checkpoint of a workdir.

Unreadable checkpoints (truncated, bit-flipped, non-finite) are named, moved
to WORKDIR/checkpoints_corrupt/ (never deleted) and skipped; a checkpoint of
another model, batch size or epoch length is refused before anything is
written.
"""

import sys
from typing import Any, Mapping

from absl import logging
import jax
import numpy as np

from hybrik_jax import cli
from hybrik_jax import errors
from hybrik_jax.checkpoints import integrity
from hybrik_jax.checkpoints import train_checkpoints


class IncompatibleCheckpointError(errors.InputError):
  """The workdir holds a checkpoint of another model or epoch length."""


def check_compatible(saved_meta: Mapping[str, Any], meta: Mapping[str, Any],
                     directory) -> None:
  """Refuses to resume from a checkpoint of another model, batch size or
  epoch length.

  Raises:
    IncompatibleCheckpointError: naming the fields that differ.
  """
  saved_model = saved_meta.get('model')
  if saved_model != meta['model']:
    diffs = sorted(
        k for k in set(saved_model or {}) | set(meta['model'])
        if (saved_model or {}).get(k) != meta['model'].get(k))
    details = ', '.join(
        f'{k}: saved {(saved_model or {}).get(k)!r} vs config '
        f'{meta["model"].get(k)!r}' for k in diffs)
    raise IncompatibleCheckpointError(
        f'{directory} holds a checkpoint of another model ({details}). '
        'Refusing to resume or overwrite it: use a new --workdir, or the '
        'config that trained it.')
  saved_batch = saved_meta.get('batch_size')
  if saved_batch is not None and saved_batch != meta.get('batch_size'):
    # The data iterator's saved position counts batches of the saved size:
    # resuming with another would skip or repeat examples, and the run's
    # hparams would no longer describe it.
    raise IncompatibleCheckpointError(
        f'{directory} was trained with config.batch_size={saved_batch}, this '
        f'config gives {meta.get("batch_size")}. Refusing to resume (the data '
        'position is saved in batches of the old size): use a new --workdir, '
        f'or --config.batch_size={saved_batch}.')
  if saved_meta.get('steps_per_epoch') != meta['steps_per_epoch']:
    raise IncompatibleCheckpointError(
        f'{directory} was trained with {saved_meta.get("steps_per_epoch")} '
        f'steps per epoch, this config gives {meta["steps_per_epoch"]} (batch '
        'size or dataset changed). Refusing to resume: use a new --workdir.')


def _any_process(bad: bool) -> bool:
  """Whether `bad` holds on any process (all processes must call this)."""
  if jax.process_count() == 1:
    return bad
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return bool(np.any(multihost_utils.process_allgather(np.int32(bad))))


def restore_latest_readable(manager, state, meta: Mapping[str, Any],
                            train_iter):
  """(state, step) of the newest readable checkpoint, or (state, None).

  Every process sets the same unreadable steps aside (an all-gather agrees),
  with a warning, and tries the next newest.

  Raises:
    IncompatibleCheckpointError: a checkpoint of another model.
  """
  while True:
    latest = train_checkpoints.latest_step(manager)
    if latest is None:
      return state, None
    error, restored = None, None
    try:
      check_compatible(train_checkpoints.restore_meta(manager, latest), meta,
                       manager.directory)
      restored = train_checkpoints.restore_train_state(
          manager, state, latest, data_iterator=train_iter)
    except integrity.CorruptCheckpointError as e:
      error = e
    if _any_process(error is not None) and error is None:
      error = 'unreadable on another process'
    if error is None:
      return restored, latest
    moved = train_checkpoints.set_aside(manager, latest)
    message = (f'WARNING: checkpoint step {latest} is unreadable: '
               f'{cli.one_line(error)} Moved it to {moved}; resuming from the '
               'newest readable checkpoint.')
    # Once on the console (process 0 prints it); the log keeps it at INFO,
    # as a WARNING log would show it a second time.
    logging.info(message)
    if jax.process_index() == 0:
      print(message, file=sys.stderr, flush=True)
