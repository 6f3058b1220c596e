"""The one evaluation loop: padded batches -> a jitted step -> summed metrics.

The trainer's validation (`training.trainer`, `training.baselines`) and
`python -m hybrik_jax.evaluate` (`evaluation.benchmark`) both run it, so a
checkpoint gets the same numbers from both:

  batches   input_pipeline.create_eval_iterator: this host's shard, padded to
            whole batches (padding: mask 0), HybrIK's test crop, in order
  step      `eval_step`: models.inference.predict_batch [flip test] ->
            protocols.batch_metrics, jitted over the ('data',) mesh
            (variables and body model replicated, the batch sharded)
  sums      `run`: metrics.SumCount sums over the split (padding and
            non-finite items left out and counted); per action / sequence
            groups and RootNet roots when asked (one process)
"""

import collections
import dataclasses
import functools
import re
import time
from typing import Any, Callable, Iterable, Mapping

import jax
import numpy as np

from hybrik_jax import parallel
from hybrik_jax.data import input_pipeline
from hybrik_jax.evaluation import metrics
from hybrik_jax.evaluation import protocols
from hybrik_jax.models import inference

# The fields of a batch the step reads (the others stay on the host).
STEP_KEYS = ('image', 'trans_inv', 'intrinsics', 'joint_root', 'depth_factor',
             'joints17_cam', 'joints17_valid', 'target_xyz_24',
             'target_xyz_weight_24', 'target_theta', 'target_beta',
             'target_smpl_weight', 'mask')
# ... and those of a whole-body (SMPL-X) batch (protocols.batch_metrics_smplx).
SMPLX_STEP_KEYS = ('target_xyz_71', 'target_xyz_weight_71', 'target_rotmats',
                   'target_beta_kid', 'target_expression')

# (variables, batch) -> (sums {metric: SumCount}, per_example).
Step = Callable[[Any, Mapping[str, Any]], tuple[dict[str, Any], dict[str, Any]]]


# ---------------------------------------------------------------------------
# The step.
# ---------------------------------------------------------------------------


def eval_step(variables, batch, smpl_model, *, model, model_config,
              protocol: protocols.Protocol, flip_test: bool):
  """`protocols.batch_metrics` (sums, per_example) of the model on one batch.

  The prediction is `models.inference.predict_batch`; non-finite network
  outputs count (decode scores them as zeros) in 'non_finite_outputs'.
  """
  out = inference.predict_batch(model, variables, batch, smpl_model=smpl_model,
                                flip_test=flip_test, model_config=model_config)
  if protocol.body == 'smplx':  # HybrIK-X: smpl_model is the SMPL-X body
    return protocols.batch_metrics_smplx(
        protocol, batch, pred_xyz_71=out.pred_xyz_71_struct,
        pred_vertices=out.pred_vertices, valid=out.valid, smplx_model=smpl_model)
  return protocols.batch_metrics(
      protocol, batch, pred_xyz_17=out.pred_xyz_17,
      pred_xyz_24=out.pred_xyz_24_struct, pred_vertices=out.pred_vertices,
      valid=out.valid, smpl_model=smpl_model)


def jit_step(fn: Callable, mesh, smpl_model) -> Step:
  """fn(variables, batch, smpl_model) jitted over `mesh`: f(variables, batch).

  Variables and outputs replicated, the batch sharded on 'data'; the body
  model is put on the mesh once and passed as an argument (not baked into the
  program as constants).
  """
  repl = parallel.replicated_sharding(mesh)
  step = jax.jit(fn, in_shardings=(repl, parallel.batch_sharding(mesh), repl),
                 out_shardings=repl)
  smpl_replicated = parallel.replicate(smpl_model, mesh)
  return lambda variables, batch: step(variables, batch, smpl_replicated)


def make_eval_step(model, smpl_model, *, model_config,
                   protocol: protocols.Protocol, flip_test: bool | None = None,
                   mesh=None) -> Step:
  """The jitted eval step: f(variables, batch) -> (sums, per_example).

  flip_test: default the protocol's (HybrIK's evaluation: on). mesh: default
  every device (`parallel.create_mesh`).

  Raises:
    ValueError: the model's body (model_config.body) is not the protocol's.
  """
  body = model_config.get('body', 'smpl')
  if body != protocol.body:
    raise ValueError(f'a model of body {body!r} cannot be scored on {protocol.name} (a '
                     f'{protocol.body!r} dataset): evaluate SMPL-X models on '
                     'synthetic_whole_body and SMPL models on the SMPL datasets')
  fn = functools.partial(
      eval_step, model=model, model_config=model_config, protocol=protocol,
      flip_test=protocol.flip_test if flip_test is None else flip_test)
  return jit_step(fn, parallel.create_mesh() if mesh is None else mesh,
                  smpl_model)


# ---------------------------------------------------------------------------
# The loop.
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class EvalRun:
  """What `run` accumulated over a split (before any averaging).

  Attributes:
    sums: summed protocols.batch_metrics sums.
    groups: {group: {metric: [total, count]}} per action / sequence.
    num_examples: real examples seen (this host's).
    num_rootnet: examples whose root came from the RootNet table.
    wrong_subjects: Human3.6M subjects outside protocol 2's test set.
    seconds: wall time.
  """
  sums: dict[str, metrics.SumCount] | None = None
  groups: dict[str, dict[str, list[float]]] = dataclasses.field(
      default_factory=lambda: collections.defaultdict(
          lambda: collections.defaultdict(lambda: [0.0, 0.0])))
  num_examples: int = 0
  num_rootnet: int = 0
  wrong_subjects: set[int] = dataclasses.field(default_factory=set)
  seconds: float = 0.0

  def averages(self) -> dict[str, float]:
    """`protocols.averages` of the sums: {metric: mm or %, counts}."""
    return protocols.averages(self.sums)


def _use_roots(batch, files, real, roots, result: EvalRun) -> None:
  """Puts the RootNet roots of the batch's real examples in its joint_root."""
  joint_root = np.array(batch['joint_root'], copy=True)
  for i, f in enumerate(files):
    root = roots.lookup(f) if real[i] else None
    if root is not None:
      joint_root[i] = root
      result.num_rootnet += 1
  batch['joint_root'] = joint_root


def _note_subjects(files, result: EvalRun) -> None:
  """Notes Human3.6M subjects (file names s_XX_act) outside protocol 2's."""
  for f in files:
    match = re.search(r's_(\d+)_act', f)
    if match and int(match.group(1)) not in protocols.H36M_TEST_SUBJECTS:
      result.wrong_subjects.add(int(match.group(1)))


def _add_groups(result: EvalRun, protocol, files, real, per_example) -> None:
  """Adds the real examples' per-example metrics to their action / sequence."""
  for i, f in enumerate(files):
    group = protocols.group_of(protocol, f) if real[i] else None
    if group is None:
      continue
    for name, (total, count) in per_example.items():
      result.groups[group][name][0] += float(total[i])
      result.groups[group][name][1] += float(count[i])


def run(step: Step, variables, batches: Iterable[Mapping[str, np.ndarray]], *,
        mesh, protocol: protocols.Protocol | None = None, roots=None,
        check_h36m_subjects: bool = False, max_batches: int = -1,
        progress=None) -> EvalRun:
  """Runs `step` over host batches and sums the metrics.

  Args:
    step: `make_eval_step`'s function (or one of its signature).
    variables: the model variables (replicated on the mesh, or host arrays).
    batches: input_pipeline.create_eval_iterator's batches (with
      'image_file' for groups, roots and the subject check).
    mesh: the mesh the step is jitted over.
    protocol: for the per-action / per-sequence breakdown (one process).
    roots: an evaluation.rootnet.RootTable: its roots replace the batch's
      joint_root where found.
    check_h36m_subjects: note subjects outside S9/S11.
    max_batches: stop after this many batches (-1: all).
    progress: a tqdm bar to update by real examples, or None.

  Raises:
    ValueError: no batch at all.
  """
  start, result = time.time(), EvalRun()
  for i, batch in enumerate(batches):
    if 0 <= max_batches <= i:
      break
    batch = dict(batch)
    real = np.asarray(batch['mask']) > 0
    files = [str(f) for f in batch.pop('image_file', ())]
    if roots is not None:
      _use_roots(batch, files, real, roots, result)
    real_files = [f for f, r in zip(files, real) if r]
    if check_h36m_subjects:
      _note_subjects(real_files, result)
    host = {k: batch[k] for k in STEP_KEYS + SMPLX_STEP_KEYS if k in batch}
    sums, per_example = jax.tree.map(
        parallel.host_value, step(variables, parallel.global_batch(host, mesh)))
    result.sums = metrics.merge_sums(result.sums, sums)
    if protocol is not None and files and jax.process_count() == 1:
      _add_groups(result, protocol, files, real, per_example)
    result.num_examples += int(real.sum())
    if progress is not None:
      progress.update(int(real.sum()))
  if result.sums is None:
    raise ValueError('the evaluation dataset is empty')
  result.seconds = time.time() - start
  return result


def evaluate(step: Step, variables, data: input_pipeline.DataConfig, *,
             batch_size: int, input_size, mesh, max_batches: int = -1,
             data_source=None, dataset: str | None = None,
             split: str | None = None) -> dict[str, float]:
  """The trainer's validation: the eval split's protocol averages.

  Args:
    step: `make_eval_step`'s function (or one of its signature).
    variables: the model variables.
    data: the DataConfig (eval dataset and split unless given).
    batch_size: global eval batch (config.evals.batch_size).
    input_size: the model's input size.
    mesh: the trainer's mesh.
    max_batches: stop after this many batches (-1: the whole split).
    data_source, dataset, split: see input_pipeline.create_eval_iterator.

  Returns:
    `protocols.averages`: {metric: mm or %, 'num_examples',
    'non_finite_outputs', ...}.
  """
  batches = input_pipeline.create_eval_iterator(
      data, global_batch_size=batch_size, input_size=input_size,
      dataset=dataset, split=split, data_source=data_source)
  return run(step, variables, batches, mesh=mesh,
             max_batches=max_batches).averages()
