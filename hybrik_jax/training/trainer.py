"""The training job: `train_and_evaluate(config, workdir)`.

Starting again with the same workdir resumes from the latest checkpoint
(params, optimizer, step, rng, input iterator). `python -m hybrik_jax.train`
is the command line over it; tests and notebooks call it directly.

The job, by section (big_vision's banners): config check, input, workdir
lock and signals, mesh and body model, model and optimizer, checkpoint load,
logging, compiled steps, evals before training (baselines), training loop,
summary. Its parts live beside it: `datasets` (open / build / name missing
data), `stop_signals` (SIGTERM / SIGINT, `Stopped`), `recovery` (newest
readable checkpoint), `initial_weights` (config.init), `baselines`,
`summary`, and the one evaluation loop `evaluation.loop`.
"""

import dataclasses
import functools
import os
import time
from typing import Any, Callable, Mapping

from absl import logging
from etils import epath
import jax
import ml_collections
import tqdm

from hybrik_jax import cli
from hybrik_jax import errors
from hybrik_jax import parallel
from hybrik_jax.checkpoints import config_json
from hybrik_jax.checkpoints import train_checkpoints
from hybrik_jax.data import input_pipeline
from hybrik_jax.evaluation import loop
from hybrik_jax.evaluation import protocols
from hybrik_jax.models import hybrik as hybrik_model
from hybrik_jax.training import baselines
from hybrik_jax.training import compilation_cache
from hybrik_jax.training import datasets
from hybrik_jax.training import initial_weights
from hybrik_jax.training import metric_writer
from hybrik_jax.training import recovery
from hybrik_jax.training import stop_signals
from hybrik_jax.training import summary as summary_lib
from hybrik_jax.training import train_config
from hybrik_jax.training import train_lib
from hybrik_jax.training import workdir_lock


def _say(message: str) -> None:
  """Logs, and prints on process 0 (the console shows WARNING logs only)."""
  logging.info(message)
  if jax.process_index() == 0:
    print(message, flush=True)


def steps_per_epoch(config, sizes: list[int]) -> int:
  """config.steps_per_epoch, or HybrIK's epoch length in steps."""
  if config.steps_per_epoch > 0:
    return int(config.steps_per_epoch)
  examples = 2 * max(sizes) if len(sizes) > 1 else sizes[0]
  return max(1, examples // config.batch_size)


# ---------------------------------------------------------------------------
# The job.
# ---------------------------------------------------------------------------


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str | os.PathLike[str],
                       *,
                       data_sources: Mapping[str, Any] | None = None,
                       eval_data_source: Any = None,
                       stop_after_steps: int | None = None
                       ) -> dict[str, Any]:
  """Trains (resuming from `workdir` if it holds a checkpoint) and evaluates.

  Args:
    config: a config from configs/ (fields: `train_config.base_config`).
    workdir: checkpoints and TensorBoard event files go here. One trainer at
      a time: it is locked (`workdir_lock`) for the whole run.
    data_sources: optional {tfds name: random-access source} used instead of
      the prepared TFDS datasets (tests, in-memory data).
    eval_data_source: optional random-access source for the validation split.
    stop_after_steps: stop (after checkpointing) once this many steps are done
      in total, as if the run were interrupted there (tests).

  Returns:
    A summary: {'step', 'workdir', 'checkpoint_dir', 'protocol', 'state',
    'eval': {...}, 'baselines': {...} (if config.evals.baselines),
    'num_skipped'}.

  Raises:
    errors.InputError (one line): a bad config, workdir or dataset
      (datasets.DatasetMissingError), a busy workdir, an incompatible
      checkpoint (recovery.IncompatibleCheckpointError); nothing is written.
    stop_signals.Stopped: SIGTERM / SIGINT, or too many skipped steps; a
      checkpoint of the last step was saved first.
  """
  # --- Config check and input (before anything is written) -----------------
  workdir = _check_config_and_workdir(config, workdir)
  # config.data is read here, once; the input pipeline gets the typed result.
  data = input_pipeline.DataConfig.from_config(config.data)
  sources, eval_source = datasets.open_sources(
      data, data_sources, eval_data_source,
      build_if_missing=config.data.build_if_missing)
  check_dataset_bodies(config, sources, eval_source)

  # --- Workdir lock and signals ---------------------------------------------
  # SIGTERM / SIGINT from here on stop the run after the current (or first)
  # step, with a checkpoint.
  workdir.mkdir(parents=True, exist_ok=True)
  lock = workdir_lock.lock_workdir(workdir)
  try:
    with stop_signals.StopSignals(config.preemption_sync_every_steps) as signals, \
        compilation_cache.persistent_cache(
            config.compilation_cache_dir, workdir,
            config.compilation_cache_min_compile_s):
      job = _Job.create(config, data, workdir, sources)
      state, start_step = _initial_state(job)

      # --- Logging ----------------------------------------------------------
      writer = metric_writer.MetricWriter(os.fspath(workdir),
                                          just_logging=not job.is_main)
      if start_step == 0 and job.is_main:
        writer.write_hparams(summary_lib.flat_hparams(config))

      # --- Compiled steps ---------------------------------------------------
      train_step = train_lib.jit_train_step(
          job.mesh, smpl_model=job.smpl_model, model=job.model, tx=job.tx,
          lr_fn=job.lr_fn, model_config=config.model,
          loss_weights={k: float(v) for k, v in config.loss.items()})
      run_eval = _validation(job, eval_source)
      summary = {'workdir': os.fspath(workdir),
                 'checkpoint_dir': os.fspath(job.manager.directory),
                 'protocol': job.protocol.describe()}

      # --- Evals before training: the baselines ------------------------------
      if config.evals.baselines:
        summary['baselines'] = _baselines(job, state, start_step, run_eval,
                                          writer, eval_source)

      # --- Training loop ----------------------------------------------------
      with writer:
        state, step, eval_metrics = _train(job, state, start_step, train_step,
                                           run_eval, writer, signals,
                                           stop_after_steps)
  finally:
    if lock is not None:
      lock.release()

  # --- Summary ----------------------------------------------------------------
  summary.update(step=step, state=state,
                 num_skipped=int(parallel.host_value(state.num_skipped)))
  if eval_metrics is not None:
    summary['eval'] = eval_metrics
  if step == job.num_steps and job.is_main:
    print(summary_lib.format_summary(summary))
  return summary


def _check_config_and_workdir(config, workdir) -> epath.Path:
  """The absolute workdir, once the config and the workdir are usable."""
  try:
    train_config.check_config(config)
  except ValueError as e:
    raise errors.InputError(str(e)) from None
  workdir = epath.Path(workdir).absolute()
  cli.check_writable_dir(workdir, 'workdir')
  for name, value in (('config.batch_size', config.batch_size),
                      ('config.evals.batch_size', config.evals.batch_size)):
    if value % jax.device_count():
      raise errors.InputError(
          f'{name}={value} must be divisible by the number of devices '
          f'({jax.device_count()}): use a multiple of {jax.device_count()}.')
  if config.model.get('body', 'smpl') == 'smplx' and config.evals.baselines:
    raise errors.InputError('config.evals.baselines scores the 17 H36M joints of SMPL models; '
                            "set it to False for model.body 'smplx'")
  return workdir


def check_dataset_bodies(config, sources: Mapping[str, Any], eval_source) -> None:
  """An SMPL-X model (model.body 'smplx') reads whole-body examples (features.SMPLX_SHAPES:
  synthetic_whole_body) only, an SMPL model the common spec only (read from each
  source's first example).

  Raises:
    errors.InputError: one line naming the dataset and the model's body.
  """
  smplx = config.model.get('body', 'smpl') == 'smplx'
  named = list(sources.items()) + [(f'{config.data.eval_dataset} (validation)', eval_source)]
  for name, source in named:
    if source is None or not len(source):
      continue
    if ('joints71_cam' in source[0]) != smplx:
      raise errors.InputError(
          f'dataset {name} holds {"SMPL" if smplx else "whole-body (SMPL-X)"} examples but '
          f'model.body is {"smplx" if smplx else "smpl"}: SMPL-X models train and validate on '
          'synthetic_whole_body, SMPL models on the SMPL datasets')


# ---------------------------------------------------------------------------
# Mesh, body model, input, model and optimizer, checkpoint load.
# ---------------------------------------------------------------------------


def load_body(config):
  """The body model the run trains with: SMPL (config.smpl.model_path,
  h36m_regressor_path) or, for model.body 'smplx', SMPL-X (model_path,
  kid_template_path); '' gives the synthetic body of either."""
  from hybrik_jax.body import bodies  # pylint: disable=g-import-not-at-top
  return bodies.load_body(config.model.get('body', 'smpl'),
                          model_path=config.smpl.model_path,
                          h36m_regressor_path=config.smpl.h36m_regressor_path,
                          kid_template_path=config.smpl.get('kid_template_path', ''))[0]


@dataclasses.dataclass
class _Job:
  """What the job builds once, before its first step."""
  config: ml_collections.ConfigDict
  data: input_pipeline.DataConfig
  sources: dict[str, Any]
  mesh: jax.sharding.Mesh
  smpl_model: Any
  input_size: int
  epoch_steps: int
  num_steps: int
  train_iter: input_pipeline.BatchIterator
  model: Any
  tx: Any
  lr_fn: Callable
  manager: Any
  protocol: protocols.Protocol

  @property
  def is_main(self) -> bool:
    return jax.process_index() == 0

  @classmethod
  def create(cls, config, data, workdir, sources) -> '_Job':
    """Mesh, body model, input iterator, model, optimizer, checkpoints."""
    logging.info('Workdir %s; %d process(es), %d device(s) (%s)', workdir,
                 jax.process_count(), jax.device_count(), jax.default_backend())
    smpl_model = load_body(config)
    input_size = int(config.model.input_size)
    epoch_steps = steps_per_epoch(config, [len(s) for s in sources.values()])
    num_steps = (int(config.num_train_steps) if config.num_train_steps > 0
                 else int(config.num_epochs) * epoch_steps)
    train_iter = input_pipeline.create_train_iterator(
        data, global_batch_size=config.batch_size, seed=config.seed,
        input_size=input_size, data_sources=sources)
    _say(f'{epoch_steps} steps per epoch, {num_steps} steps in total, global '
         f'batch {config.batch_size} on {jax.device_count()} device(s) of '
         f'{jax.process_count()} process(es)')
    tx, lr_fn = train_lib.create_optimizer(config.optim, num_steps, epoch_steps)
    manager = train_checkpoints.create_checkpoint_manager(
        workdir, steps_per_epoch=epoch_steps, keep_epochs=config.keep_epochs,
        async_save=config.async_checkpoints)
    return cls(config, data, sources, train_lib.create_mesh(), smpl_model,
               input_size, epoch_steps, num_steps, train_iter,
               hybrik_model.create_model(config.model), tx, lr_fn, manager,
               protocols.protocol_for(data.eval_dataset))

  @property
  def meta(self) -> dict[str, Any]:
    """What a checkpoint records besides the state. The whole config too:
    `evaluate` defaults to its validation dataset, split and data settings."""
    return {'model': config_json.config_to_dict(self.config.model),
            'steps_per_epoch': self.epoch_steps,
            'batch_size': self.config.batch_size,
            'config': config_json.config_to_dict(self.config)}


def _initial_state(job: _Job) -> tuple[train_lib.TrainState, int]:
  """(replicated state, its step): fresh (config.init's weights) or resumed.

  A checkpoint of another model is refused before anything is written.
  """
  state = train_lib.create_train_state(job.model, job.tx,
                                       jax.random.key(job.config.seed),
                                       job.input_size)
  state = initial_weights.load_initial_weights(state, job.config)
  state, latest = recovery.restore_latest_readable(job.manager, state,
                                                   job.meta, job.train_iter)
  if latest is not None:
    _say(f'Resumed from {job.manager.directory}/{latest}')
  state = train_lib.replicate(state, job.mesh)
  return state, int(parallel.host_value(state.step))


# ---------------------------------------------------------------------------
# Evals.
# ---------------------------------------------------------------------------


def _validation(job: _Job, eval_source) -> Callable[..., dict[str, float]]:
  """run_eval(variables, step=the model's eval step) -> validation averages."""
  config = job.config
  eval_step = loop.make_eval_step(job.model, job.smpl_model,
                                  model_config=config.model,
                                  protocol=job.protocol, mesh=job.mesh)

  def run_eval(variables, step=eval_step):
    return loop.evaluate(step, variables, job.data,
                         batch_size=config.evals.batch_size,
                         max_batches=config.evals.max_batches, mesh=job.mesh,
                         input_size=job.input_size, data_source=eval_source)

  return run_eval


def _num_validation_examples(config, eval_source) -> int:
  n = len(eval_source)
  if config.evals.max_batches >= 0:
    n = min(n, config.evals.max_batches * config.evals.batch_size)
  return n


def _baselines(job: _Job, state, start_step: int, run_eval, writer,
               eval_source) -> dict[str, dict[str, float]]:
  """The untrained model's and the constant's validation, logged at start."""
  model = 'untrained model' if start_step == 0 else f'model at step {start_step}'
  _say(f'Evaluating the {model} and the constant baseline (mean training '
       f'pose) on {_num_validation_examples(job.config, eval_source)} '
       'validation examples ...')
  name = job.data.train_datasets[0][0]
  result = baselines.evaluate(
      job.config, job.data, state.variables, run_eval, mesh=job.mesh,
      input_size=job.input_size, train_source=job.sources[name],
      protocol=job.protocol)
  writer.write_scalars(start_step, {
      f'baseline/{k}/{protocols.tag(job.protocol, m)}': v
      for k, d in result.items() for m, v in d.items()})
  return result


# ---------------------------------------------------------------------------
# Training loop.
# ---------------------------------------------------------------------------


def _train(job: _Job, state, start_step: int, train_step, run_eval, writer,
           signals: stop_signals.StopSignals, stop_after_steps: int | None):
  """Steps from start_step to the end (or a stop): (state, step, last eval).

  Saves every config.checkpoint_every_steps, at epoch ends and at the end;
  validates every config.evals.every_steps (-1: every epoch) and at the end.

  Raises:
    stop_signals.Stopped: a signal or too many skipped steps, after saving.
  """
  config, num_steps = job.config, job.num_steps
  eval_every = (job.epoch_steps if config.evals.every_steps < 0 else
                int(config.evals.every_steps))
  end_step = num_steps if stop_after_steps is None else min(
      num_steps, int(stop_after_steps))
  if start_step < end_step:
    _say('Compiling the train step (the first step takes a while) ...')
  averager, log = summary_lib.Averager(), _Logger(job, start_step, writer)
  progress = tqdm.tqdm(total=num_steps, initial=start_step, unit='step',
                       dynamic_ncols=True, desc='train',
                       disable=not (job.is_main and config.progress_bar))
  step, saved_step, eval_metrics, stop = start_step, start_step, None, None

  def save():
    nonlocal saved_step
    if saved_step != step:
      train_checkpoints.save_train_state(job.manager, step, state,
                                     data_iterator=job.train_iter,
                                     meta=job.meta)
      saved_step = step

  while step < end_step:
    batch = train_lib.global_batch(next(job.train_iter), job.mesh)
    state, metrics = train_step(state, batch)
    step += 1
    progress.update(1)
    averager.add(metrics)  # device arrays: no host sync on every step
    is_last = step == num_steps
    if step % config.log_every_steps == 0 or is_last or step == end_step:
      stop = log(step, averager.result(), state, progress, end_step)
    if (step % config.checkpoint_every_steps == 0 or
        step % job.epoch_steps == 0 or is_last or step == end_step):
      save()
    if stop is None and signals.should_stop(step):
      stop = stop_signals.Stopped(
          signals.stop_message(step, num_steps, job.manager.directory),
          exit_code=128 + signals.signum)
    if stop is not None:
      if signals.signum is not None:
        stop_signals.wait_at_stop_save_gate()
      save()
      break
    if (eval_every > 0 and step % eval_every == 0) or is_last:
      eval_metrics = run_eval(state.variables)
      writer.write_scalars(step, {f'val/{protocols.tag(job.protocol, k)}': v
                                  for k, v in eval_metrics.items()})
      if job.is_main:
        progress.write(summary_lib.validation_line(step, job.protocol.name,
                                                   eval_metrics))
  progress.close()
  train_checkpoints.wait(job.manager)
  job.manager.close()
  if stop is not None:
    raise stop
  return state, step, eval_metrics


class _Logger:
  """Writes an interval's averages; says when too many steps were skipped."""

  def __init__(self, job: _Job, start_step: int, writer):
    self._job, self._writer = job, writer
    self._time, self._step = time.perf_counter(), start_step

  def __call__(self, step: int, scalars: dict[str, float], state, progress,
               end_step: int) -> stop_signals.Stopped | None:
    config = self._job.config
    now = time.perf_counter()
    dt = (now - self._time) / max(step - self._step, 1)
    self._time, self._step = now, step
    scalars.update(step_time_s=dt, images_per_s=config.batch_size / dt,
                   num_skipped=float(parallel.host_value(state.num_skipped)),
                   epoch=step / self._job.epoch_steps)
    self._writer.write_scalars(step,
                               {f'train/{k}': v for k, v in scalars.items()})
    progress.set_postfix(loss=f'{scalars["loss"]:.4g}',
                         lr=f'{scalars["lr"]:.2e}')
    if scalars['skipped'] > 0:
      logging.warning('step %d: %d non-finite step(s) skipped so far', step,
                      int(scalars['num_skipped']))
    if (step < min(config.skipped_check_after_steps, end_step) or
        scalars['num_skipped'] / step <= config.max_skipped_fraction):
      return None
    return stop_signals.Stopped(
        f'{int(scalars["num_skipped"])} of {step} steps were skipped '
        '(non-finite loss or gradient), more than '
        f'config.max_skipped_fraction={config.max_skipped_fraction}: '
        f'stopped at step {step} after saving a checkpoint in '
        f'{self._job.manager.directory}. Lower config.optim.peak_lr (or add '
        'config.optim.grad_clip_norm) or check the data.',
        exit_code=stop_signals.EXIT_DIVERGED, prefix='error: ')
