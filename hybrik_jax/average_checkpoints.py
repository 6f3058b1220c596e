r"""Averages the last N epoch checkpoints of a training run into one model.

    python -m hybrik_jax.average_checkpoints --workdir DIR --last 10 --out DIR2

The paper reports the average of the weights of its last 10 epochs. Params
and batch statistics of the last N epoch-end checkpoints in
`DIR/checkpoints` are averaged element-wise (`checkpoints.averaging`) and
written as an exported model (`checkpoints.model_dir`: what `evaluate` and
`demo` read). An existing --out is refused before anything is read; with
--overwrite the new model is written beside it and swapped in at the end.
"""

import argparse
from typing import Sequence

from hybrik_jax.checkpoints import averaging
from hybrik_jax.checkpoints import model_dir


def main(argv: Sequence[str] | None = None) -> int:
  p = argparse.ArgumentParser(
      prog='python -m hybrik_jax.average_checkpoints',
      description='Average the last N epoch checkpoints into one exported '
                  'model.')
  p.add_argument('--workdir', required=True, help='the training workdir')
  p.add_argument('--last', type=int, default=10,
                 help='how many of the last epoch checkpoints (default 10)')
  p.add_argument('--out', required=True, help='output model directory')
  p.add_argument('--overwrite', action='store_true',
                 help='replace a model already in --out')
  args = p.parse_args(argv)
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
