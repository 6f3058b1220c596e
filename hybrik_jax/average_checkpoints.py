r"""Averages the last N epoch checkpoints of a training run into one model.

    python -m hybrik_jax.average_checkpoints --workdir DIR --last 10 --out DIR2

The paper reports the average of the weights of its last 10 epochs. Params
and batch statistics of the last N epoch-end checkpoints in
`DIR/checkpoints` are averaged element-wise (`checkpoints.averaging`) and
written as an exported model (`checkpoints.model_dir`: what `evaluate` and
`demo` read). An existing --out is refused before anything is read; with
--overwrite the new model is written beside it and swapped in at the end.
"""

from typing import Sequence

from absl import flags

from hybrik_jax import cli_flags
from hybrik_jax.checkpoints import averaging
from hybrik_jax.checkpoints import model_dir


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
  # errors.InputError (an existing --out, a missing or corrupt checkpoint)
  # reaches cli.run: one line, exit status 2.
  model_dir.check_can_write(args.out, overwrite=args.overwrite)
  averaged = averaging.average_last_epochs(args.workdir, args.last,
                                           progress=True)
  model_dir.save_model(args.out, averaged.variables, averaged.model_config,
                       overwrite=args.overwrite,
                       train_config=averaged.train_config)
  print(f'Averaged {len(averaged.steps)} checkpoints (steps {averaged.steps}) '
        f'into {args.out}')
  return 0


if __name__ == '__main__':
  from hybrik_jax import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)  # InputError -> one line, status 2; Ctrl-C -> one line, 130
