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

import argparse
import sys
from typing import Sequence

from hybrik_jax import cli
from hybrik_jax import errors


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog='python -m hybrik_jax.demo_inputs', description=__doc__.split('\n\n')[0],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  commands = parser.add_subparsers(dest='command', required=True)
  images = commands.add_parser('images', help='N images of a prepared dataset as PNG')
  images.add_argument('--dataset', required=True, help="e.g. synthetic_humans/small")
  images.add_argument('--n', type=int, default=4, help='how many images')
  images.add_argument('--out', required=True, help='output folder')
  images.add_argument('--split', default='validation')
  images.add_argument('--first', type=int, default=0, help='index of the first example')
  images.add_argument('--data_dir', default=None, help='TFDS data_dir (default: TFDS\'s)')
  clip = commands.add_parser('clip', help='a rendered synthetic clip as mp4')
  clip.add_argument('--out', required=True, help='output .mp4')
  clip.add_argument('--frames', type=int, default=48)
  clip.add_argument('--size', type=int, default=256, help='frame side, px')
  clip.add_argument('--fps', type=float, default=25.0)
  clip.add_argument('--seed', type=int, default=0)
  args = parser.parse_args(argv)

  from hybrik_jax.demos import inputs  # pylint: disable=g-import-not-at-top
  try:
    if args.command == 'images':
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
