r"""Averages the last N epoch checkpoints of a training run into one model.

    python -m hybrik_jax.average_checkpoints --workdir DIR --last 10 --out DIR2

The paper reports the average of the weights of its last 10 epochs. Params
and batch statistics of the last N epoch-end checkpoints in
`DIR/checkpoints` are averaged element-wise and written as an exported model
(`checkpointing.save_model`: what `evaluate` and `demo` read).
"""

import sys
from typing import Any, Sequence

from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from hybrik_jax import cli_flags
from hybrik_jax.training import checkpointing

PyTree = Any


def average_trees(trees: Sequence[PyTree]) -> PyTree:
  """Element-wise mean of pytrees of the same structure (float32 sums)."""
  if not trees:
    raise ValueError('average_trees: nothing to average')
  total = jax.tree.map(lambda x: np.asarray(x, np.float64), trees[0])
  for tree in trees[1:]:
    total = jax.tree.map(lambda t, x: t + np.asarray(x, np.float64), total,
                         tree)
  return jax.tree.map(
      lambda t, x: jnp.asarray(t / len(trees), dtype=jnp.asarray(x).dtype),
      total, trees[0])


def epoch_checkpoint_steps(workdir: str) -> tuple[list[int], dict[str, Any]]:
  """(epoch-end steps ascending, the latest checkpoint's metadata)."""
  directory = checkpointing.checkpoint_dir(workdir)
  if not directory.exists():
    raise FileNotFoundError(f'{directory} does not exist: no training '
                            f'checkpoints in {workdir}')
  manager = checkpointing.create_checkpoint_manager(
      workdir, steps_per_epoch=1, keep_epochs=None, read_only=True,
      async_save=False)
  steps = checkpointing.all_steps(manager)
  if not steps:
    raise FileNotFoundError(f'no checkpoint in {directory}')
  meta = checkpointing.restore_meta(manager, steps[-1])
  manager.close()
  per_epoch = int(meta.get('steps_per_epoch', 0)) or 1
  return [s for s in steps if s % per_epoch == 0], meta


def average_last_epochs(workdir: str, last: int
                        ) -> tuple[dict[str, PyTree],
                                   ml_collections.ConfigDict, list[int]]:
  """Averages the variables of the last `last` epoch-end checkpoints.

  Returns:
    (variables {'params', 'batch_stats'}, model_config, the steps averaged).
  """
  if last < 1:
    raise ValueError(f'--last must be >= 1, got {last}')
  steps, meta = epoch_checkpoint_steps(workdir)
  if not steps:
    raise ValueError(f'{workdir} holds no epoch-end checkpoint yet')
  if len(steps) < last:
    logging.warning('Only %d epoch checkpoints (%s) in %s; averaging those.',
                    len(steps), steps, workdir)
  steps = steps[-last:]
  manager = checkpointing.create_checkpoint_manager(
      workdir, steps_per_epoch=1, keep_epochs=None, read_only=True,
      async_save=False)
  trees = [checkpointing.restore_variables(manager, s)
           for s in tqdm.tqdm(steps, desc='reading checkpoints', unit='ckpt')]
  manager.close()
  model_config = checkpointing.complete_model_config(
      checkpointing.dict_to_config(meta['model']), workdir)
  return average_trees(trees), model_config, steps


def parse(argv: Sequence[str] | None = None) -> flags.FlagValues:
  """The flags of `python -m hybrik_jax.average_checkpoints` (see --help)."""
  fs = cli_flags.FlagSet('python -m hybrik_jax.average_checkpoints', __doc__)
  fs.workdir('the training workdir (its checkpoints/ folder)')
  fs.integer('last', 10, 'how many of the last epoch checkpoints', lower_bound=1)
  fs.out('output model directory', required=True)
  fs.overwrite('replace a model already in --out')
  return fs.parse(argv)


def main(argv: Sequence[str] | None = None) -> int:
  args = parse(argv)
  try:
    variables, model_config, steps = average_last_epochs(args.workdir,
                                                         args.last)
    _, meta = epoch_checkpoint_steps(args.workdir)
    checkpointing.save_model(args.out, variables, model_config,
                             overwrite=args.overwrite,
                             train_config=meta.get('config'))
  except (FileNotFoundError, FileExistsError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  print(f'Averaged {len(steps)} checkpoints (steps {steps}) into {args.out}')
  return 0


if __name__ == '__main__':
  from hybrik_jax import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)  # UserError -> one line, status 2; Ctrl-C -> one line, 130
