r"""Benchmark evaluation with HybrIK's protocols.

  python -m hybrik_jax.evaluate --checkpoint DIR [--dataset pw3d] \
      [--config configs/x.py] [--smpl SMPL_NEUTRAL.pkl] [--rootnet_json FILE]

DIR is an exported model (`checkpointing.save_model`: a trained, averaged or
converted PyTorch model) or a training workdir (its latest checkpoint). The
dataset is a prepared TFDS dataset (`python -m hybrik_jax.prepare_data`);
by default the one, with the builder config, split and data settings, that the
checkpoint was validated on in training (`benchmark.resolve_dataset`).
Prints a table and writes it as JSON beside the checkpoint
(`<DIR>_eval_<dataset>_<split>.json`; if an earlier run's results are there
they are kept and the new ones get the next free `-2`, `-3`, ... name), or to
--output (refused if it exists, unless --overwrite).

The library is `hybrik_jax.evaluation` (benchmark: prepare / run / evaluate;
report: summarise / format_table / write; loop: the evaluation loop the
trainer's validation runs too, so a checkpoint gets the same numbers from
both). Flip test is on by default (--noflip_test turns it off).

Root depth. The uvd -> camera-space lifting needs the absolute depth of the
root. HybrIK's evaluation uses the ground-truth root; with --rootnet_json the
roots published by RootNet (3DMPPE_ROOTNET_RELEASE, `bbox_root_*_output.json`:
a list of {'image_id', 'root_cam' (mm), ...}) are used where an example
matches, and the ground truth elsewhere; the table says which was used and
for how many examples. Entries are matched to examples by file name (keys
'file_name', 'img_name', 'image_file' or 'img_path' in the entry), or by
'image_id' through a COCO-style annotation file (--rootnet_annotations, e.g.
HybrIK's Sample_20_test_Human36M_smpl_protocol_2.json: images[{id, file_name}]).
"""

import argparse
import sys
from typing import Sequence

from hybrik_jax.evaluation import benchmark
from hybrik_jax.evaluation import report
from hybrik_jax.training import checkpointing
from hybrik_jax.training import train_config


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog='python -m hybrik_jax.evaluate', description=__doc__.split('\n\n')[0],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--checkpoint', required=True,
                      help='exported model directory or training workdir')
  parser.add_argument('--dataset', default=None,
                      help='h36m | pw3d | mpi_inf_3dhp | synthetic_humans[/tiny|small] '
                      '(default: the dataset the checkpoint was validated on)')
  parser.add_argument('--config', default=None,
                      help='experiment config file (configs/x.py[:arg]) for data_dir '
                      'etc. (default: the config that trained the checkpoint)')
  parser.add_argument('--split', default=None,
                      help="TFDS split (default: the checkpoint's validation split "
                      "for its dataset, else 'test'; 'validation' for synthetic_humans)")
  parser.add_argument('--data_dir', default=None, help='TFDS data_dir')
  parser.add_argument('--smpl', default=None, help='SMPL neutral .pkl')
  parser.add_argument('--h36m_regressor', default=None,
                      help="HybrIK's J_regressor_h36m.npy")
  parser.add_argument('--batch_size', type=int, default=32)
  parser.add_argument('--flip_test', dest='flip_test', action='store_true', default=True)
  parser.add_argument('--noflip_test', dest='flip_test', action='store_false')
  parser.add_argument('--rootnet_json', default=None,
                      help="RootNet's bbox_root_*_output.json (root_cam, mm)")
  parser.add_argument('--rootnet_annotations', default=None,
                      help='COCO-style json mapping image_id to file_name')
  parser.add_argument('--num_examples', type=int, default=None,
                      help='only the first N examples')
  parser.add_argument('--output', default=None, help='results JSON path')
  parser.add_argument('--overwrite', action='store_true',
                      help='replace the results JSON if it exists (default: '
                      'keep it; beside the checkpoint the new results get the '
                      'next free -2, -3, ... name)')
  args = parser.parse_args(argv)
  try:
    config = train_config.load_config_file(args.config) if args.config else None
    model = checkpointing.load_for_inference(args.checkpoint)
    results = benchmark.evaluate(
        model, args.checkpoint, args.dataset, split=args.split, config=config,
        data_dir=args.data_dir, smpl_path=args.smpl,
        h36m_regressor=args.h36m_regressor, batch_size=args.batch_size,
        flip_test=args.flip_test, rootnet_json=args.rootnet_json,
        rootnet_annotations=args.rootnet_annotations,
        num_examples=args.num_examples, output=args.output,
        overwrite=args.overwrite)
  except (FileNotFoundError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(report.format_table(results))
  print(f"results written to {results['output']}" +
        (f" (the earlier results in {results['kept_output']} are kept)"
         if results['kept_output'] else ''))
  return 0


if __name__ == '__main__':
  from hybrik_jax import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)  # UserError -> one line, status 2; Ctrl-C -> one line, 130
