r"""Benchmark evaluation with HybrIK's protocols.

  python -m hybrik_jax.evaluate --checkpoint DIR [--dataset pw3d] \
      [--config configs/x.py] [--smpl SMPL_NEUTRAL.pkl] [--rootnet_json FILE]
  # HybrIK-X (SMPL-X) models: --smpl SMPLX_NEUTRAL.npz [--kid_template smplx_kid_template.npy]

DIR is an exported model (`checkpoints.model_dir.save_model`: a trained, averaged or
converted PyTorch model) or a training workdir (its latest checkpoint). The
dataset is a prepared TFDS dataset (`python -m hybrik_jax.prepare_data`);
by default the one, with the builder config, split and data settings, that the
checkpoint was validated on in training (`benchmark.resolve_dataset`).
Prints a table and writes it as JSON beside the checkpoint
(`<DIR>_eval_<dataset>_<split>.json`; if an earlier run's results are there
they are kept and the new ones get the next free `-2`, `-3`, ... name), or to
--out (refused if it exists, unless --overwrite).

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

import sys
from typing import Sequence

from absl import flags

from hybrik_jax import cli_flags
from hybrik_jax.checkpoints import loading
from hybrik_jax.evaluation import benchmark
from hybrik_jax.evaluation import report
from hybrik_jax.training import train_config


def parse(argv: Sequence[str] | None = None) -> flags.FlagValues:
  """The flags of `python -m hybrik_jax.evaluate` (see --help)."""
  fs = cli_flags.FlagSet('python -m hybrik_jax.evaluate', __doc__,
                         aliases={'output': 'out'})
  fs.checkpoint(required=True)
  fs.dataset('h36m | pw3d | mpi_inf_3dhp | synthetic_humans[/tiny|small] | '
             'synthetic_whole_body[/tiny] (SMPL-X models) '
             '(default: the dataset the checkpoint was validated on)')
  fs.string('config', None, 'experiment config file (configs/x.py[:arg]) for '
            'data_dir etc. (default: the config that trained the checkpoint)')
  fs.string('split', None, "TFDS split (default: the checkpoint's validation "
            "split for its dataset, else 'test'; 'validation' for "
            'the synthetic datasets)')
  fs.data_dir()
  fs.smpl(cli_flags.SMPL_HELP + '; for an SMPL-X model (HybrIK-X) SMPLX_NEUTRAL.npz '
          '(default: config.smpl.model_path, else the synthetic body for the synthetic '
          'datasets)')
  fs.kid_template()
  fs.h36m_regressor()
  fs.batch_size(32, 'examples per evaluation step')
  fs.flip_test()
  fs.string('rootnet_json', None,
            "RootNet's bbox_root_*_output.json (root_cam, mm)")
  fs.string('rootnet_annotations', None,
            'COCO-style json mapping image_id to file_name')
  fs.integer('num_examples', None, 'only the first N examples', lower_bound=1)
  fs.out('results JSON path (default: <checkpoint>_eval_<dataset>_<split>.json)')
  fs.overwrite('replace the results JSON if it exists (default: keep it; beside '
               'the checkpoint the new results get the next free -2, -3, ... name)')
  return fs.parse(argv)


def main(argv: Sequence[str] | None = None) -> int:
  args = parse(argv)
  try:
    config = train_config.load_config_file(args.config) if args.config else None
    model = loading.load_for_inference(args.checkpoint)
    results = benchmark.evaluate(
        model, args.checkpoint, args.dataset, split=args.split, config=config,
        data_dir=args.data_dir, smpl_path=args.smpl, kid_template=args.kid_template,
        h36m_regressor=args.h36m_regressor, batch_size=args.batch_size,
        flip_test=args.flip_test, rootnet_json=args.rootnet_json,
        rootnet_annotations=args.rootnet_annotations,
        num_examples=args.num_examples, output=args.out,
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
