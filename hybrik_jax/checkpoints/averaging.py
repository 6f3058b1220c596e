"""The mean of the last N epoch checkpoints of a training run.

The paper reports the average of the weights of its last 10 epochs. The
checkpoints are read one at a time into a float64 running sum (never all of
them at once), then divided and cast back to each array's dtype.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from hybrik_jax import errors
from hybrik_jax.checkpoints import config_json
from hybrik_jax.checkpoints import integrity
from hybrik_jax.checkpoints import model_dir
from hybrik_jax.checkpoints import train_checkpoints

PyTree = Any


class RunningMean:
  """Element-wise mean of pytrees of one structure, added one at a time.

  Sums in float64 in the order added; `result` divides by the count and casts
  each leaf to the dtype of the first tree's.
  """

  def __init__(self):
    self._total = None
    self._like = None
    self.count = 0

  def add(self, tree: PyTree) -> None:
    if self._total is None:
      self._total = jax.tree.map(lambda x: np.asarray(x, np.float64), tree)
      self._like = jax.tree.map(lambda x: jax.ShapeDtypeStruct(
          np.shape(x), jnp.asarray(x).dtype), tree)
    else:
      self._total = jax.tree.map(lambda t, x: t + np.asarray(x, np.float64),
                                 self._total, tree)
    self.count += 1

  def result(self) -> PyTree:
    if not self.count:
      raise ValueError('RunningMean: nothing to average')
    return jax.tree.map(lambda t, x: jnp.asarray(t / self.count, dtype=x.dtype),
                        self._total, self._like)


def average_trees(trees: Iterable[PyTree]) -> PyTree:
  """Element-wise mean of pytrees of the same structure (float64 sums)."""
  mean = RunningMean()
  for tree in trees:
    mean.add(tree)
  return mean.result()


@dataclasses.dataclass
class Averaged:
  """What `average_last_epochs` returns.

  Attributes:
    variables: {'params', 'batch_stats'}, the mean of the checkpoints'.
    model_config: the model config (IK fields completed).
    train_config: the run's training config as saved, or None.
    steps: the steps averaged, ascending.
  """
  variables: dict[str, PyTree]
  model_config: ml_collections.ConfigDict
  train_config: dict[str, Any] | None
  steps: list[int]


def average_last_epochs(workdir: str, last: int, *,
                        progress: bool = False) -> Averaged:
  """Averages the variables of the last `last` epoch-end checkpoints.

  Reads the newest checkpoint's metadata once (steps per epoch, configs),
  then each checkpoint's variables in turn.

  Raises:
    errors.InputError: `last` < 1, or no epoch-end checkpoint yet.
    CheckpointNotFoundError: no checkpoint in `workdir`.
    CorruptCheckpointError: a checkpoint that cannot be read, named.
  """
  if last < 1:
    raise errors.InputError(f'--last must be >= 1, got {last}')
  directory = train_checkpoints.checkpoint_dir(workdir)
  if not directory.exists():
    raise integrity.CheckpointNotFoundError(
        f'{directory} does not exist: no training checkpoints in {workdir}')
  manager = train_checkpoints.open_for_reading(workdir)
  try:
    steps = train_checkpoints.all_steps(manager)
    if not steps:
      raise integrity.CheckpointNotFoundError(f'no checkpoint in {directory}')
    meta = train_checkpoints.restore_meta(manager, steps[-1])
    per_epoch = int(meta.get('steps_per_epoch', 0)) or 1
    steps = [s for s in steps if s % per_epoch == 0]
    if not steps:
      raise errors.InputError(f'{workdir} holds no epoch-end checkpoint yet')
    if len(steps) < last:
      logging.warning('Only %d epoch checkpoints (%s) in %s; averaging those.',
                      len(steps), steps, workdir)
    steps = steps[-last:]
    mean = RunningMean()
    if progress:
      import tqdm  # pylint: disable=g-import-not-at-top
      steps_iter = tqdm.tqdm(steps, desc='reading checkpoints', unit='ckpt')
    else:
      steps_iter = steps
    for step in steps_iter:
      mean.add(train_checkpoints.restore_variables(manager, step))
  finally:
    manager.close()
  model_config = model_dir.complete_model_config(
      config_json.dict_to_config(meta['model']), workdir)
  return Averaged(mean.result(), model_config, meta.get('config'), steps)
