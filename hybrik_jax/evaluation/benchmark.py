"""A model's evaluation on a benchmark with HybrIK's protocols.

The library of `python -m hybrik_jax.evaluate`, in three steps (scenic's
run / summarise / write):

    bench = benchmark.prepare(model, 'pw3d', ...)      # what to read, how to score
    result = benchmark.run(model, bench, batch_size=32)  # evaluation.loop.run
    results = report.summarise(result, ...); report.write(results, path)

`evaluate(model, checkpoint, ...)` does all three. `model` is what
`loading.load_for_inference` read (variables, model_config,
description, train_config). The protocols (joints, alignment, flip test,
root) are `evaluation.protocols`, the loop `evaluation.loop`, the same the
trainer's validation runs: a checkpoint gets the same numbers from both.
"""

import dataclasses
import os
import sys
from typing import Any

import ml_collections
import tqdm

from hybrik_jax import models
from hybrik_jax import parallel
from hybrik_jax.data import input_pipeline
from hybrik_jax.evaluation import loop
from hybrik_jax.evaluation import protocols
from hybrik_jax.evaluation import report
from hybrik_jax.evaluation import rootnet


# The generated datasets (their held-out split is 'validation').
SYNTHETIC_DATASETS = ('synthetic_humans', 'synthetic_whole_body')


def resolve_dataset(dataset: str | None, split: str | None,
                    train_config: ml_collections.ConfigDict | None
                    ) -> tuple[str, str]:
  """(dataset, split) to evaluate: what was asked, completed from the
  checkpoint's training config.

  No dataset: the one the checkpoint was validated on. A plain name of that
  dataset ('synthetic_humans'): its builder config ('synthetic_humans/small').
  No split: the validated split for that dataset, else 'validation' for
  synthetic_humans and 'test' for the benchmarks.

  Raises:
    ValueError: no dataset given and the checkpoint does not record one.
  """
  data = train_config.get('data') if train_config is not None else None
  trained_on = data.get('eval_dataset') if data is not None else None
  if dataset is None:
    if not trained_on:
      raise ValueError('--dataset is needed: the checkpoint does not record the '
                       'dataset it was validated on (h36m | pw3d | mpi_inf_3dhp '
                       '| synthetic_humans[/config])')
    dataset = trained_on
  elif (trained_on and dataset == protocols.base_name(dataset) and
        protocols.base_name(trained_on) == dataset):
    dataset = trained_on
  if split is None:
    if trained_on and dataset == trained_on and data.get('eval_split'):
      split = data.get('eval_split')
    else:
      split = ('validation' if protocols.base_name(dataset) in SYNTHETIC_DATASETS
               else 'test')
  return dataset, split


@dataclasses.dataclass(frozen=True)
class Benchmark:
  """A resolved evaluation: what to read and how to score it.

  Attributes:
    dataset, split: the TFDS dataset (with builder config) and split.
    protocol: its HybrIK protocol.
    source: the random-access source of its examples.
    data: the DataConfig (scale_mult, read_threads).
    smpl_model: the body model; body_model: its description.
    roots: RootNet roots, or None for the ground-truth root.
  """
  dataset: str
  split: str
  protocol: protocols.Protocol
  source: Any
  data: input_pipeline.DataConfig
  smpl_model: Any
  body_model: str
  roots: rootnet.RootTable | None = None


def prepare(model, dataset: str | None = None, *, split: str | None = None,
            config: ml_collections.ConfigDict | None = None,
            data_dir: str | None = None, data_source=None,
            smpl_path: str | None = None, h36m_regressor: str | None = None,
            kid_template: str | None = None,
            smpl_model=None, rootnet_json: str | None = None,
            rootnet_annotations: str | None = None) -> Benchmark:
  """Resolves the dataset, protocol, data, body model and roots.

  Args:
    model: what loading.load_for_inference read.
    dataset: 'h36m' | 'pw3d' | 'mpi_inf_3dhp' | 'synthetic_humans[/config]';
      default and builder config: see `resolve_dataset`.
    split: TFDS split (default: see `resolve_dataset`).
    config: the experiment config: config.data (data_dir, scale_mult,
      read_threads) and config.smpl are read if present. Default: the config
      that trained the checkpoint, when recorded.
    data_dir: TFDS data_dir (overrides the config's).
    data_source: a random-access source of examples (tests) instead of TFDS.
    smpl_path: SMPL .pkl (an SMPL-X model: SMPLX_NEUTRAL.npz / .pkl, its kid
      template beside it); default config.smpl.model_path (and
      kid_template_path), else the synthetic body (SMPL or SMPL-X) for the
      synthetic datasets.
    h36m_regressor: J_regressor_h36m.npy; default
      config.smpl.h36m_regressor_path.
    kid_template: an SMPL-X model's smplx_kid_template.npy (HybrIK-X models
      only; default the one beside smpl_path, else
      config.smpl.kid_template_path).
    smpl_model: an SMPLModel to use directly (overrides smpl_path).
    rootnet_json, rootnet_annotations: see evaluation.rootnet.
  """
  from hybrik_jax.body import bodies  # pylint: disable=g-import-not-at-top
  config = model.train_config if config is None else config
  dataset, split = resolve_dataset(dataset, split, model.train_config)
  # The config is read here, once.
  data = input_pipeline.DataConfig.from_config(
      config.get('data') if config is not None else None)
  if smpl_model is not None:
    body_model = 'given body model'
  else:
    smpl_config = (config.get('smpl') if config is not None else None) or {}
    body = model.model_config.get('body', 'smpl')
    if kid_template and body != 'smplx':
      raise ValueError('--kid_template is for SMPL-X models (HybrIK-X); this model '
                       'predicts SMPL')
    smpl_model, body_model = bodies.load_body(
        body, model_path=smpl_path or smpl_config.get('model_path'),
        h36m_regressor_path=h36m_regressor or smpl_config.get('h36m_regressor_path'),
        # --smpl SMPLX_NEUTRAL.npz: its kid template beside it unless --kid_template.
        kid_template_path=kid_template or (
            None if smpl_path else smpl_config.get('kid_template_path')),
        dataset=dataset,
        # Messages name the flag unless the path came from the config.
        names=('config.smpl.model_path'
               if not smpl_path and smpl_config.get('model_path') else '--smpl',
               'config.smpl.kid_template_path'
               if not (smpl_path or kid_template) and smpl_config.get('kid_template_path')
               else '--kid_template'))
  roots = (rootnet.load_rootnet(rootnet_json, rootnet_annotations)
           if rootnet_json else None)
  if data_source is None:
    data_source = input_pipeline.open_data_source(dataset, split,
                                                  data_dir or data.data_dir)
  return Benchmark(dataset, split, protocols.protocol_for(dataset),
                   data_source, data, smpl_model, body_model, roots)


def run(model, bench: Benchmark, *, batch_size: int = 32,
        flip_test: bool = True, num_examples: int | None = None,
        progress: bool = True) -> loop.EvalRun:
  """Runs the evaluation loop over the benchmark on every local device.

  batch_size: examples per step (rounded up to a multiple of the number of
  devices; the last batch is padded). num_examples: only the first N.
  """
  if batch_size < 1:
    raise ValueError(f'batch_size must be >= 1, got {batch_size}')
  mesh = parallel.create_mesh()
  devices = mesh.devices.size
  step = loop.make_eval_step(
      models.create_model(model.model_config), bench.smpl_model,
      model_config=model.model_config, protocol=bench.protocol,
      flip_test=flip_test, mesh=mesh)
  batches = input_pipeline.create_eval_iterator(
      bench.data, global_batch_size=-(-batch_size // devices) * devices,
      input_size=int(model.model_config.input_size), dataset=bench.dataset,
      split=bench.split, data_source=bench.source, worker_count=0,
      num_examples=num_examples)
  total = len(bench.source) if num_examples is None else min(
      num_examples, len(bench.source))
  with tqdm.tqdm(total=total, desc=f'eval {bench.dataset}/{bench.split}',
                 unit='img', disable=not progress, dynamic_ncols=True) as bar:
    return loop.run(
        step, parallel.replicate(model.variables, mesh), batches, mesh=mesh,
        protocol=bench.protocol, roots=bench.roots,
        check_h36m_subjects=protocols.base_name(bench.dataset) == 'h36m',
        progress=bar)


def evaluate(model, checkpoint: str, dataset: str | None = None, *,
             batch_size: int = 32, flip_test: bool = True,
             num_examples: int | None = None, output: str | None = None,
             overwrite: bool = False, progress: bool = True,
             **setup) -> dict[str, Any]:
  """Evaluates a model on a benchmark: `prepare`, `run`, summarise, write.

  Args:
    model: what loading.load_for_inference read from `checkpoint`.
    checkpoint: its path (recorded in the results; the JSON goes beside it).
    dataset: see `prepare`, which also takes `setup` (split, config,
      data_dir, data_source, smpl_path, h36m_regressor, kid_template, smpl_model,
      rootnet_json, rootnet_annotations).
    batch_size, flip_test, num_examples, progress: see `run`.
    output: the JSON path (default beside the checkpoint, never over a
      previous run's: report.output_path).
    overwrite: replace an existing output.

  Returns:
    The results dict (also written as JSON): metrics (mm / %), per-group
    MPJPE, counts, root source, checkpoint, protocol details; plus 'output'
    (the JSON's path) and 'kept_output' (an earlier run's JSON left in place,
    or None).
  """
  # Where the results go, decided (and an existing file refused) first.
  dataset, split = resolve_dataset(dataset, setup.pop('split', None),
                                   model.train_config)
  path, kept = report.output_path(checkpoint, dataset, split, output=output,
                                  overwrite=overwrite)
  bench = prepare(model, dataset, split=split, **setup)
  result = run(model, bench, batch_size=batch_size, flip_test=flip_test,
               num_examples=num_examples, progress=progress)
  if result.wrong_subjects:
    print(f'WARNING: {bench.dataset}/{bench.split} holds subjects '
          f'{sorted(result.wrong_subjects)}; protocol 2 tests on S9 and S11 '
          'only.', file=sys.stderr)
  results = report.summarise(
      result, protocol=bench.protocol, flip_test=flip_test, roots=bench.roots,
      dataset=bench.dataset, split=bench.split,
      checkpoint=os.path.abspath(checkpoint),
      checkpoint_kind=model.description, body_model=bench.body_model)
  results['output'] = report.write(results, path)
  results['kept_output'] = kept
  return results
