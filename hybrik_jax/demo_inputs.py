r"""Write inputs for the demos: dataset images as PNG, or a rendered clip.

  python -m hybrik_jax.demo_inputs images --dataset synthetic_humans/small \
      --n 4 --out demo_inputs [--split validation] [--first 0] [--data_dir D]
  python -m hybrik_jax.demo_inputs clip --out demo_inputs/walk.mp4 \
      [--frames 48] [--size 256] [--fps 25] [--seed 0]

`images` writes examples first..first+n-1 of a prepared dataset (see
prepare_data) as PNG and prints each with its person's box as --bbox; `clip`
renders the synthetic walking person (hybrik_jax.data.synthetic_clip) and
prints its first frame's box. Then, e.g.:

  python -m hybrik_jax.demo --image demo_inputs/synthetic_humans_small_validation_0000.png \
      --checkpoint DIR --out out.png
  python -m hybrik_jax.demo --video demo_inputs/walk.mp4 --checkpoint DIR --out out.mp4
"""

import sys
from typing import Sequence

from absl import flags

from hybrik_jax import cli
from hybrik_jax import cli_flags
from hybrik_jax import errors

COMMANDS = ('images', 'clip')


def parse(argv: Sequence[str] | None = None) -> tuple[str, flags.FlagValues]:
  """(command, flags) of `python -m hybrik_jax.demo_inputs images|clip ...`."""
  argv = list(sys.argv[1:] if argv is None else argv)
  prog = 'python -m hybrik_jax.demo_inputs'
  if not argv or argv[0] not in COMMANDS:
    if argv and argv[0] in cli_flags.HELP_FLAGS:
      print(__doc__)
      raise SystemExit(0)
    got = f'got {argv[0]!r}' if argv else 'got nothing'
    raise cli.UserError(f'{prog} needs a command first: images or clip ({got}); '
                        f'see {prog} --help')
  command, argv = argv[0], argv[1:]
  fs = cli_flags.FlagSet(f'{prog} {command}', __doc__)
  if command == 'images':
    fs.string('dataset', None, 'a prepared dataset, e.g. synthetic_humans/small',
              required=True)
    fs.integer('n', 4, 'how many images', lower_bound=1)
    fs.out('output folder', required=True)
    fs.string('split', 'validation', 'the split to read')
    fs.integer('first', 0, 'index of the first example', lower_bound=0)
    fs.data_dir()
  else:
    fs.out('output .mp4', required=True)
    fs.integer('frames', 48, 'number of frames', lower_bound=1)
    fs.integer('size', 256, 'frame side, px', lower_bound=32)
    fs.number('fps', 25.0, 'frame rate, frames per second', lower_bound=1e-3)
    fs.integer('seed', 0, 'random seed of the clip')
  return command, fs.parse(argv)


def main(argv: Sequence[str] | None = None) -> int:
  command, args = parse(argv)
  from hybrik_jax.demos import inputs  # pylint: disable=g-import-not-at-top
  try:
    if command == 'images':
      written = inputs.write_dataset_images(args.dataset, args.out, args.n, split=args.split,
                                            first=args.first, data_dir=args.data_dir)
      for w in written:
        print(f'{w.path}  --bbox {w.bbox_xywh}')
    else:
      box = inputs.write_clip(args.out, frames=args.frames, size=args.size, fps=args.fps,
                              seed=args.seed)
      print(f'{args.out}  ({args.frames} frames, {args.size}x{args.size} px; '
            f'first frame --bbox {box})')
  except errors.InputError as e:
    print(f'error: {cli.one_line(e)}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  cli.run(main)
