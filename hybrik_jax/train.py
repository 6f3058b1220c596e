r"""Trains HybrIK-Transformer: `python -m hybrik_jax.train`.

    python -m hybrik_jax.train --config configs/paper.py --workdir /tmp/hybrik \
        [--config.batch_size=64 ...]

`train_and_evaluate(config, workdir)` is the whole job and is importable
(tests, Colab). Starting again with the same workdir resumes from the latest
checkpoint (params, optimizer, step, rng, input iterator).

Several hosts (one process per host; every process runs the same command):

    python -m hybrik_jax.train --config configs/paper.py --workdir DIR \
        --coordinator_address=HOST0:1234 --num_processes=N --process_id=I

On TPU pods and SLURM, `--distributed` alone lets JAX detect the cluster.

The loop, by section: config check, logging, mesh, body model, input, model
and optimizer, checkpoint load, compiled steps, evals, training loop, summary.
"""

import functools
import os
import signal
import sys
import threading
import time
from typing import Any, Mapping, Sequence

from absl import app
from absl import flags
from absl import logging
from etils import epath
import jax
import ml_collections
from ml_collections import config_flags
import numpy as np
import tqdm

from hybrik_jax import cli
from hybrik_jax import cli_flags
from hybrik_jax import errors
from hybrik_jax.checkpoints import config_json
from hybrik_jax.checkpoints import integrity
from hybrik_jax.checkpoints import model_dir
from hybrik_jax.checkpoints import train_checkpoints
from hybrik_jax.data import input_pipeline
from hybrik_jax.evaluation import protocols
from hybrik_jax.models import hybrik as hybrik_model
from hybrik_jax.training import metric_writer
from hybrik_jax.training import train_config
from hybrik_jax.training import train_lib
from hybrik_jax.training import workdir_lock


# The config: every field and its default (train_config.base_config).
base_config = train_config.base_config
check_config = train_config.check_config


# ---------------------------------------------------------------------------
# Small helpers.
# ---------------------------------------------------------------------------


class DatasetMissingError(cli.UserError, FileNotFoundError):
  """A configured dataset is not prepared in the data_dir."""


def _dataset_missing_message(data: input_pipeline.DataConfig,
                             error: Exception | None) -> str:
  """One line: which data_dir lacks the data, and the commands that build it."""
  del error  # TFDS's own message misleads ("already prepared ... TFRECORD").
  names = [n for n, _ in data.train_datasets] + [data.eval_dataset]
  data_dir = f' --data_dir {data.data_dir}' if data.data_dir else ''
  build = []
  for name in dict.fromkeys(names):
    base = input_pipeline.base_name(name)
    builder_config = f' --config {name.split("/")[1]}' if '/' in name else ''
    manual = ('' if base in _BUILDABLE else
              ' --manual_dir <the downloaded files, see '
              f'tfds_builders/{base}/README.md>')
    build.append(f'python -m hybrik_jax.prepare_data --dataset {base}'
                 f'{builder_config}{data_dir}{manual}')
  where = data.data_dir or 'the default TFDS data_dir'
  return (f'dataset(s) {", ".join(dict.fromkeys(names))} not prepared in '
          f'{where} (config.data.data_dir). Build first: ' +
          '; '.join(dict.fromkeys(build)))


# Exit status of a run stopped for too many skipped steps.
_EXIT_DIVERGED = 3

# Datasets that need no download: built on first use if
# config.data.build_if_missing.
_BUILDABLE = ('synthetic_humans',)


def _build_missing(data: input_pipeline.DataConfig,
                   names: Sequence[str]) -> None:
  """Builds the missing no-download datasets among `names` (process 0)."""
  from hybrik_jax import prepare_data  # pylint: disable=g-import-not-at-top
  for name in dict.fromkeys(names):
    base = input_pipeline.base_name(name)
    if base not in _BUILDABLE:
      continue
    builder_config = name.split('/')[1] if '/' in name else None
    if jax.process_index() == 0:
      if prepare_data.is_built(name, data.data_dir):
        continue
      logging.info('Building %s (config.data.build_if_missing)', name)
      print(f'{name} is not built yet: building it (once).', flush=True)
      prepare_data.build(base, data_dir=data.data_dir,
                         config=builder_config)
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices('hybrik_jax dataset build')


def _open_sources(data: input_pipeline.DataConfig, data_sources, *,
                  build_if_missing: bool):
  """{name: random-access source} of the training mix (sizes for epochs)."""
  data_sources = dict(data_sources or {})
  names = [n for n, _ in data.train_datasets if n not in data_sources]
  if build_if_missing:
    _build_missing(data, names + [data.eval_dataset])
  out = {}
  for name, _ in data.train_datasets:
    if name in data_sources:
      out[name] = data_sources[name]
    else:
      out[name] = input_pipeline.open_data_source(name, data.train_split,
                                                  data.data_dir)
  return out


def steps_per_epoch(config, sizes: Sequence[int]) -> int:
  """config.steps_per_epoch, or HybrIK's epoch length in steps."""
  if config.steps_per_epoch > 0:
    return int(config.steps_per_epoch)
  examples = 2 * max(sizes) if len(sizes) > 1 else sizes[0]
  return max(1, examples // config.batch_size)


def host_value(x) -> np.ndarray:
  """A replicated (possibly multi-host) jax array as numpy, on every host."""
  if isinstance(x, jax.Array):
    return np.asarray(x.addressable_data(0))
  return np.asarray(x)


def _say(message: str) -> None:
  """Logs, and prints on process 0 (the console shows WARNING logs only)."""
  logging.info(message)
  if jax.process_index() == 0:
    print(message, flush=True)


def _host_scalars(tree: Mapping[str, Any]) -> dict[str, float]:
  return {k: float(host_value(v)) for k, v in tree.items()}


class _Averager:
  """Averages scalar metrics over a logging interval (on the host)."""

  def __init__(self):
    self._sums, self._n = {}, 0

  def add(self, metrics: Mapping[str, Any]) -> None:
    for k, v in metrics.items():
      self._sums[k] = self._sums[k] + v if k in self._sums else v
    self._n += 1

  def result(self) -> dict[str, float]:
    out = {k: float(host_value(v)) / max(self._n, 1)
           for k, v in self._sums.items()}
    self._sums, self._n = {}, 0
    return out


# ---------------------------------------------------------------------------
# Evaluation.
# ---------------------------------------------------------------------------


def evaluate(eval_fn, variables, data: input_pipeline.DataConfig, *,
             batch_size: int, max_batches: int = -1, mesh, input_size,
             data_source=None, dataset=None, split=None) -> dict[str, float]:
  """The eval dataset's protocol metrics of `eval_fn(variables, batch)`.

  Args:
    eval_fn: train_lib.jit_eval_step's function (or one of its signature).
    variables: the model variables.
    data: the DataConfig (eval dataset and split unless given).
    batch_size: global eval batch (config.evals.batch_size).
    max_batches: stop after this many batches (-1: the whole split).
    mesh, input_size: the trainer's mesh and the model's input size.
    data_source, dataset, split: see input_pipeline.create_eval_iterator.

  Returns:
    `protocols.averages`: {metric: mm or %, 'num_examples',
    'non_finite_outputs'}.
  """
  it = input_pipeline.create_eval_iterator(
      data, global_batch_size=batch_size, input_size=input_size,
      dataset=dataset, split=split, data_source=data_source)
  totals = None
  for i, batch in enumerate(it):
    if 0 <= max_batches <= i:
      break
    sums = eval_fn(variables, train_lib.global_batch(batch, mesh))
    sums = jax.tree.map(host_value, sums)
    totals = sums if totals is None else jax.tree.map(np.add, totals, sums)
  return protocols.averages(totals)


def _left_out(m: Mapping[str, float]) -> str:
  """', N non-finite prediction(s) ...' for an eval result, or ''."""
  parts = []
  if m.get('non_finite_pred'):
    parts.append(f'{int(m["non_finite_pred"])} joint(s) with a non-finite '
                 'prediction (failures)')
  if m.get('non_finite_target'):
    parts.append(f'{int(m["non_finite_target"])} with non-finite ground truth')
  return f' [left out: {"; ".join(parts)}]' if parts else ''


def mean_training_pose(data: input_pipeline.DataConfig, *, batch_size: int,
                       num_batches: int, input_size,
                       data_source=None) -> np.ndarray:
  """(17, 3) metres: mean pelvis-relative H36M-17 pose of training examples.

  Read without augmentation from the first dataset of the training mix.
  """
  name = data.train_datasets[0][0]
  it = input_pipeline.create_eval_iterator(
      data, global_batch_size=batch_size, input_size=input_size, dataset=name,
      split=data.train_split, data_source=data_source)
  total, count = np.zeros((17, 3)), np.zeros((17, 1))
  for i, batch in enumerate(it):
    if i >= num_batches:
      break
    joints = np.asarray(batch['joints17_cam'], np.float64)
    joints = joints - joints[:, :1]
    valid = (np.asarray(batch['joints17_valid']) *
             np.asarray(batch['mask'])[:, None])[..., None]
    total += np.sum(joints * valid, axis=0)
    count += np.sum(valid, axis=0)
  # Every host averages its own shard; combine so all hosts agree.
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    total = np.sum(multihost_utils.process_allgather(total), axis=0)
    count = np.sum(multihost_utils.process_allgather(count), axis=0)
  return (total / np.maximum(count, 1)).astype(np.float32)


# ---------------------------------------------------------------------------
# The job.
# ---------------------------------------------------------------------------


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str,
                       *,
                       data_sources: Mapping[str, Any] | None = None,
                       eval_data_source: Any = None,
                       stop_after_steps: int | None = None
                       ) -> dict[str, Any]:
  """Trains (resuming from `workdir` if it holds a checkpoint) and evaluates.

  Args:
    config: a config from configs/ (fields: `base_config`).
    workdir: checkpoints and TensorBoard event files go here. One trainer at
      a time: it is locked (`workdir_lock`) for the whole run.
    data_sources: optional {tfds name: random-access source} used instead of
      the prepared TFDS datasets (tests, in-memory data).
    eval_data_source: optional random-access source for the validation split.
    stop_after_steps: stop (after checkpointing) once this many steps are done
      in total, as if the run were interrupted there (tests).

  Returns:
    A summary: {'step', 'workdir', 'checkpoint_dir', 'eval': {...},
    'baselines': {...} (if config.evals.baselines), 'num_skipped'}.

  Raises:
    cli.UserError (one line): a bad config, workdir or dataset, a busy
      workdir, an incompatible checkpoint; nothing is written then.
    Stopped (a cli.UserError): SIGTERM / SIGINT, or too many skipped steps;
      a checkpoint of the last step was saved first.
  """
  try:
    check_config(config)
  except ValueError as e:
    raise cli.UserError(str(e)) from None
  workdir = epath.Path(workdir).absolute()
  cli.check_writable_dir(workdir, 'workdir')
  for name, value in (('config.batch_size', config.batch_size),
                      ('config.evals.batch_size', config.evals.batch_size)):
    if value % jax.device_count():
      raise cli.UserError(
          f'{name}={value} must be divisible by the number of devices '
          f'({jax.device_count()}): use a multiple of {jax.device_count()}.')

  # --- Input (before anything is written) -----------------------------------
  # config.data is read here, once; the input pipeline gets the typed result.
  data = input_pipeline.DataConfig.from_config(config.data)
  if (data.data_dir and not data_sources and not config.data.build_if_missing
      and '://' not in data.data_dir and not os.path.isdir(data.data_dir)):
    raise DatasetMissingError(
        f'config.data.data_dir {data.data_dir} does not exist. ' +
        _dataset_missing_message(data, None))
  try:
    sources = _open_sources(data, data_sources,
                            build_if_missing=config.data.build_if_missing)
    if eval_data_source is None:
      eval_data_source = input_pipeline.open_data_source(
          data.eval_dataset, data.eval_split, data.data_dir)
  except ValueError as e:
    raise DatasetMissingError(_dataset_missing_message(data, e)) from None

  workdir.mkdir(parents=True, exist_ok=True)
  lock = workdir_lock.lock_workdir(workdir)
  try:
    return _train_and_evaluate(config, data, workdir, sources,
                               eval_data_source, stop_after_steps)
  finally:
    if lock is not None:
      lock.release()


class Stopped(cli.UserError):
  """The run stopped early after saving (signal, too many skipped steps)."""
  prefix = ''


# Test hook: when this variable names a path, the save that a signal asks for
# first creates PATH.held and waits until PATH exists. tests/test_preemption.py
# sends its second Ctrl-C in that window, so the abort provably interrupts the
# stop (on a busy machine the save could otherwise finish first).
STOP_SAVE_GATE_ENV = 'HYBRIK_JAX_TEST_STOP_SAVE_GATE'


def _wait_at_stop_save_gate() -> None:
  gate = os.environ.get(STOP_SAVE_GATE_ENV)
  if not gate:
    return
  with open(gate + '.held', 'w'):
    pass
  while not os.path.exists(gate):
    time.sleep(0.05)  # a signal handler runs here (the second Ctrl-C exits)


class _StopSignals:
  """SIGTERM / SIGINT -> stop at the end of the current step.

  The first signal sets a flag (the loop then saves and raises `Stopped`); a
  second SIGINT (Ctrl-C) exits at once (status 130, no checkpoint). With
  several processes the flag is OR-ed over all of them (an all-gather every
  `sync_every` steps) so they all stop, and save, at the same step; the
  signal may reach only one host.
  """

  def __init__(self, sync_every: int = 1):
    self.signum: int | None = None
    self._sync_every = max(1, int(sync_every))
    self._old = {}

  def __enter__(self) -> '_StopSignals':
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._old[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    for sig, handler in self._old.items():
      signal.signal(sig, handler)
    self._old = {}

  def _handle(self, signum, frame) -> None:
    del frame
    if self.signum is not None:
      if signum == signal.SIGINT:
        print('Second Ctrl-C: aborting now, without saving.', file=sys.stderr,
              flush=True)
        os._exit(cli.EXIT_INTERRUPTED)  # pylint: disable=protected-access
      return
    self.signum = signum
    print(f'{signal.Signals(signum).name} received: finishing this step and '
          'saving a checkpoint (Ctrl-C again aborts at once).',
          file=sys.stderr, flush=True)

  def should_stop(self, step: int) -> bool:
    """Whether every process agrees to stop after `step`."""
    if jax.process_count() == 1:
      return self.signum is not None
    if step % self._sync_every:
      return False
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    flags_ = multihost_utils.process_allgather(
        np.int32(self.signum or 0))
    signums = [int(f) for f in np.ravel(flags_) if f]
    if signums and self.signum is None:
      self.signum = signums[0]
    return bool(signums)


def _restore_latest_readable(manager, state, meta, train_iter):
  """(state, step) of the newest readable checkpoint, or (state, None).

  Unreadable checkpoints (truncated, bit-flipped, non-finite) are named,
  moved to WORKDIR/checkpoints_corrupt/ (never deleted) and skipped, with a
  warning. A checkpoint of another model is refused (IncompatibleCheckpoint).
  """
  while True:
    latest = train_checkpoints.latest_step(manager)
    if latest is None:
      return state, None
    error, restored = None, None
    try:
      _check_compatible(train_checkpoints.restore_meta(manager, latest), meta,
                        manager.directory)
      restored = train_checkpoints.restore_train_state(
          manager, state, latest, data_iterator=train_iter)
    except integrity.CorruptCheckpointError as e:
      error = e
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      any_bad = np.any(multihost_utils.process_allgather(np.int32(bool(error))))
      if any_bad and error is None:
        error = 'unreadable on another process'
    if error is None:
      return restored, latest
    moved = train_checkpoints.set_aside(manager, latest)
    message = (f'WARNING: checkpoint step {latest} is unreadable: '
               f'{cli.one_line(error)} Moved it to {moved}; resuming from the '
               'newest readable checkpoint.')
    logging.warning(message)
    if jax.process_index() == 0:
      print(message, file=sys.stderr, flush=True)


def _train_and_evaluate(config, data: input_pipeline.DataConfig,
                        workdir: epath.Path, sources, eval_data_source,
                        stop_after_steps) -> dict[str, Any]:
  """`train_and_evaluate` once the inputs are checked and the workdir locked.

  SIGTERM / SIGINT from here on stop the run after the current (or first)
  step, with a checkpoint.
  """
  with _StopSignals(config.preemption_sync_every_steps) as signals:
    return _train_loop(config, data, workdir, sources, eval_data_source,
                       stop_after_steps, signals)


def _train_loop(config, data: input_pipeline.DataConfig, workdir, sources,
                eval_data_source, stop_after_steps,
                signals: '_StopSignals') -> dict[str, Any]:
  """The body of `_train_and_evaluate` (see its docstring)."""
  is_main = jax.process_index() == 0
  logging.info('Workdir %s; %d process(es), %d device(s) (%s)', workdir,
               jax.process_count(), jax.device_count(), jax.default_backend())

  # --- Mesh -----------------------------------------------------------------
  mesh = train_lib.create_mesh()

  # --- Body model -----------------------------------------------------------
  from hybrik_jax.body import smpl_io  # pylint: disable=g-import-not-at-top
  smpl_model, _ = smpl_io.load_body_model(config.smpl.model_path,
                                          config.smpl.h36m_regressor_path)

  # --- Input ----------------------------------------------------------------
  input_size = int(config.model.input_size)
  epoch_steps = steps_per_epoch(config, [len(s) for s in sources.values()])
  num_steps = (int(config.num_train_steps) if config.num_train_steps > 0 else
               int(config.num_epochs) * epoch_steps)
  train_iter = input_pipeline.create_train_iterator(
      data, global_batch_size=config.batch_size, seed=config.seed,
      input_size=input_size, data_sources=sources)
  _say(f'{epoch_steps} steps per epoch, {num_steps} steps in total, global '
       f'batch {config.batch_size} on {jax.device_count()} device(s) of '
       f'{jax.process_count()} process(es)')

  # --- Model and optimizer --------------------------------------------------
  model = hybrik_model.create_model(config.model)
  tx, lr_fn = train_lib.create_optimizer(config.optim, num_steps)
  rng = jax.random.key(config.seed)
  state = train_lib.create_train_state(model, tx, rng, input_size)
  state = _maybe_load_init(state, config)

  # --- Checkpoint load (refuses another model before anything is written) ---
  manager = train_checkpoints.create_checkpoint_manager(
      workdir, steps_per_epoch=epoch_steps, keep_epochs=config.keep_epochs,
      async_save=config.async_checkpoints)
  # The whole config too: `evaluate` defaults to its validation dataset,
  # split and data settings.
  meta = {'model': config_json.config_to_dict(config.model),
          'steps_per_epoch': epoch_steps, 'batch_size': config.batch_size,
          'config': config_json.config_to_dict(config)}
  state, latest = _restore_latest_readable(manager, state, meta, train_iter)
  if latest is not None:
    _say(f'Resumed from {manager.directory}/{latest}')
  state = train_lib.replicate(state, mesh)
  start_step = int(host_value(state.step))

  # --- Logging --------------------------------------------------------------
  writer = metric_writer.MetricWriter(os.fspath(workdir),
                                      just_logging=not is_main)

  # --- Compiled steps -------------------------------------------------------
  loss_weights = {k: float(v) for k, v in config.loss.items()}
  train_step = train_lib.jit_train_step(
      mesh, smpl_model=smpl_model, model=model, tx=tx, lr_fn=lr_fn,
      loss_weights=loss_weights, model_config=config.model)
  protocol = protocols.protocol_for(data.eval_dataset)
  eval_fn = train_lib.jit_eval_step(
      mesh, smpl_model=smpl_model, model=model, model_config=config.model,
      protocol=protocol)

  def run_eval(variables, fn=eval_fn):
    return evaluate(fn, variables, data, batch_size=config.evals.batch_size,
                    max_batches=config.evals.max_batches, mesh=mesh,
                    input_size=input_size, data_source=eval_data_source)

  summary = {'workdir': os.fspath(workdir),
             'checkpoint_dir': os.fspath(manager.directory),
             'protocol': protocol.describe()}
  if start_step == 0 and is_main:
    writer.write_hparams(_flat_hparams(config))

  # --- Baselines (before training) ------------------------------------------
  if config.evals.baselines:
    baselines = _baselines(config, data, state, run_eval, mesh=mesh,
                           input_size=input_size, sources=sources,
                           protocol=protocol)
    summary['baselines'] = baselines
    writer.write_scalars(start_step, {
        f'baseline/{k}/{protocols.tag(protocol, m)}': v
        for k, d in baselines.items() for m, v in d.items()})

  # --- Training loop --------------------------------------------------------
  eval_every = (epoch_steps if config.evals.every_steps < 0 else
                int(config.evals.every_steps))
  end_step = num_steps if stop_after_steps is None else min(
      num_steps, int(stop_after_steps))
  averager = _Averager()
  progress = tqdm.tqdm(total=num_steps, initial=start_step, unit='step',
                       dynamic_ncols=True, desc='train',
                       disable=not (is_main and config.progress_bar))
  last_log_time, last_log_step = time.perf_counter(), start_step
  step = start_step
  eval_metrics = None
  stop_message = None
  saved_step = latest

  def save():
    nonlocal saved_step
    if saved_step != step:
      train_checkpoints.save_train_state(manager, step, state,
                                         data_iterator=train_iter, meta=meta)
      saved_step = step

  with writer:
    while step < end_step:
      batch = train_lib.global_batch(next(train_iter), mesh)
      state, metrics = train_step(state, batch)
      step += 1
      progress.update(1)
      is_last = step == num_steps
      averager.add(metrics)  # device arrays: no host sync on every step
      if step % config.log_every_steps == 0 or is_last or step == end_step:
        scalars = averager.result()
        now = time.perf_counter()
        dt = (now - last_log_time) / max(step - last_log_step, 1)
        scalars.update(step_time_s=dt, images_per_s=config.batch_size / dt,
                       num_skipped=float(host_value(state.num_skipped)),
                       epoch=step / epoch_steps)
        last_log_time, last_log_step = now, step
        writer.write_scalars(step, {f'train/{k}': v for k, v in scalars.items()})
        progress.set_postfix(loss=f'{scalars["loss"]:.4g}',
                             lr=f'{scalars["lr"]:.2e}')
        if scalars['skipped'] > 0:
          logging.warning('step %d: %d non-finite step(s) skipped so far', step,
                          int(scalars['num_skipped']))
        fraction = scalars['num_skipped'] / step
        if (step >= min(config.skipped_check_after_steps, end_step) and
            fraction > config.max_skipped_fraction):
          stop_message = (
              f'{int(scalars["num_skipped"])} of {step} steps were skipped '
              '(non-finite loss or gradient), more than '
              f'config.max_skipped_fraction={config.max_skipped_fraction}: '
              f'stopped at step {step} after saving a checkpoint in '
              f'{manager.directory}. Lower config.optim.peak_lr (or add '
              'config.optim.grad_clip_norm) or check the data.')
      epoch_end = step % epoch_steps == 0
      if (step % config.checkpoint_every_steps == 0 or epoch_end or is_last or
          step == end_step):
        save()
      if stop_message is None and signals.should_stop(step):
        stop_message = (
            f'Stopped by {signal.Signals(signals.signum).name} at step {step} '
            f'of {num_steps}; checkpoint saved in {manager.directory}/{step}. '
            'Run the same command again to resume.')
      if stop_message is not None:
        if signals.signum is not None:
          _wait_at_stop_save_gate()
        save()
        break
      if (eval_every > 0 and step % eval_every == 0) or is_last:
        eval_metrics = run_eval(state.variables)
        writer.write_scalars(step, {f'val/{protocols.tag(protocol, k)}': v
                                    for k, v in eval_metrics.items()})
        if is_main:
          progress.write(f'step {step}: validation {protocol.name} MPJPE '
                         f'{eval_metrics["mpjpe"]:.1f} mm, PA-MPJPE '
                         f'{eval_metrics["pa_mpjpe"]:.1f} mm over '
                         f'{int(eval_metrics["num_examples"])} examples'
                         f'{_left_out(eval_metrics)}')
    progress.close()
    train_checkpoints.wait(manager)
    manager.close()
  if stop_message is not None:
    if signals.signum is not None:
      raise Stopped(stop_message, exit_code=128 + signals.signum)
    error = Stopped(stop_message, exit_code=_EXIT_DIVERGED)
    error.prefix = 'error: '
    raise error

  # --- Summary --------------------------------------------------------------
  summary.update(step=step, num_skipped=int(host_value(state.num_skipped)),
                 state=state)
  if eval_metrics is not None:
    summary['eval'] = eval_metrics
  if step == num_steps and is_main:
    print(format_summary(summary))
  return summary


def _baselines(config, data, state, run_eval, *, mesh, input_size, sources,
               protocol):
  """Validation errors of the untrained model and of the mean training pose."""
  untrained = run_eval(state.variables)
  name = data.train_datasets[0][0]
  mean_pose = mean_training_pose(
      data, batch_size=config.evals.batch_size,
      num_batches=config.evals.mean_pose_batches, input_size=input_size,
      data_source=sources[name])
  repl = train_lib.replicated_sharding(mesh)
  constant_fn = jax.jit(functools.partial(train_lib.constant_eval_step,
                                          protocol=protocol),
                        in_shardings=(repl, train_lib.batch_sharding(mesh)),
                        out_shardings=repl)
  mean_pose = train_lib.replicate(mean_pose, mesh)
  constant = run_eval(None, fn=lambda _, batch: constant_fn(mean_pose, batch))
  return {'untrained': untrained, 'mean_pose': constant}


def format_summary(summary: Mapping[str, Any]) -> str:
  """The human-readable end-of-training report."""
  lines = ['', '=' * 64, f'Training finished at step {summary["step"]}.']
  rows = []
  for name, label in (('untrained', 'untrained model'),
                      ('mean_pose', 'constant: mean training pose')):
    if name in summary.get('baselines', {}):
      rows.append((label, summary['baselines'][name]))
  if 'eval' in summary:
    rows.append(('trained model', summary['eval']))
  if rows:
    if summary.get('protocol'):
      lines.append(f'Validation protocol: {summary["protocol"]}')
    lines.append(f'{"validation":32s} {"MPJPE mm":>10s} {"PA-MPJPE mm":>12s}')
    for label, m in rows:
      lines.append(f'{label:32s} {m["mpjpe"]:10.1f} {m["pa_mpjpe"]:12.1f}'
                   f'{_left_out(m)}')
  if 'baselines' in summary and 'eval' in summary:
    const = summary['baselines']['mean_pose']['mpjpe']
    gain = 100.0 * (1.0 - summary['eval']['mpjpe'] / max(const, 1e-9))
    side = 'below' if gain >= 0 else 'ABOVE (train longer)'
    lines.append(f'The trained model is {abs(gain):.1f}% {side} the constant '
                 'predictor\'s MPJPE.')
  if summary.get('num_skipped'):
    lines.append(f'{summary["num_skipped"]} non-finite step(s) were skipped.')
  lines.append(f'Checkpoints: {summary["checkpoint_dir"]}')
  lines.append('Export the last epochs\' average: python -m '
               'hybrik_jax.average_checkpoints --workdir '
               f'{summary["workdir"]} --last 10 --out DIR')
  lines.append('=' * 64)
  return '\n'.join(lines)


def _flat_hparams(config) -> dict[str, Any]:
  flat = {}

  def walk(d, prefix):
    for k, v in d.items():
      if isinstance(v, Mapping):
        walk(v, f'{prefix}{k}.')
      else:
        flat[f'{prefix}{k}'] = v if isinstance(v, (int, float, str, bool)) \
            else str(v)

  walk(config_json.config_to_dict(config), '')
  return flat


class IncompatibleCheckpointError(cli.UserError, ValueError):
  """The workdir holds a checkpoint of another model or epoch length."""


def _check_compatible(saved_meta: Mapping[str, Any], meta: Mapping[str, Any],
                      directory) -> None:
  """Refuses to resume from a checkpoint of another model or epoch length."""
  saved_model = saved_meta.get('model')
  if saved_model != meta['model']:
    diffs = sorted(
        k for k in set(saved_model or {}) | set(meta['model'])
        if (saved_model or {}).get(k) != meta['model'].get(k))
    details = ', '.join(
        f'{k}: saved {(saved_model or {}).get(k)!r} vs config '
        f'{meta["model"].get(k)!r}' for k in diffs)
    raise IncompatibleCheckpointError(
        f'{directory} holds a checkpoint of another model ({details}). '
        'Refusing to resume or overwrite it: use a new --workdir, or the '
        'config that trained it.')
  if saved_meta.get('steps_per_epoch') != meta['steps_per_epoch']:
    raise IncompatibleCheckpointError(
        f'{directory} was trained with {saved_meta.get("steps_per_epoch")} '
        f'steps per epoch, this config gives {meta["steps_per_epoch"]} (batch '
        'size or dataset changed). Refusing to resume: use a new --workdir.')


def _maybe_load_init(state: train_lib.TrainState, config
                     ) -> train_lib.TrainState:
  """Puts an exported backbone / full model into a fresh state."""
  from hybrik_jax import convert  # pylint: disable=g-import-not-at-top
  variables = state.variables
  for path, what in ((config.init.backbone_checkpoint, 'backbone'),
                     (config.init.model_checkpoint, 'model')):
    if not path:
      continue
    if not model_dir.is_exported_model(path):
      raise cli.UserError(
          f'config.init.{what}_checkpoint: {path} is not an exported model. '
          'Make it with `python -m hybrik_jax.convert --torch_checkpoint '
          f'X.pth --out {path}' + (' --arch backbone`' if what == 'backbone'
                                   else '`'))
    loaded, _ = model_dir.load_model(path)
    variables = convert.merge_variables(variables, loaded)
    logging.info('Initialised the %s from %s', what, path)
  return state.replace(params=variables['params'],
                       batch_stats=variables['batch_stats'])


# ---------------------------------------------------------------------------
# Command line.
# ---------------------------------------------------------------------------

_PROG = 'python -m hybrik_jax.train'
_FIELDS = 'hybrik_jax/training/train_config.py and configs/'


def parse(argv: Sequence[str] | None = None) -> flags.FlagValues:
  """The flags of `python -m hybrik_jax.train` (see --help).

  Also accepts absl's own flags (--verbosity, --pdb, ...: --helpfull).
  """
  argv = list(sys.argv[1:] if argv is None else argv)
  fs = cli_flags.FlagSet(
      _PROG, __doc__, absl_flags=True,
      epilog='  --config.FIELD=VALUE: overrides a field of the config, e.g. '
      '--config.batch_size=64')
  config_flags.DEFINE_config_file(
      'config', None, 'Training config file (configs/*.py).',
      flag_values=fs.flag_values, lock_config=True, sys_argv=[_PROG] + argv)
  fs.require('config')
  fs.workdir('Checkpoints and TensorBoard logs go here.')
  fs.boolean('distributed', False, 'Call jax.distributed.initialize() '
             '(auto-detected clusters: TPU, SLURM).')
  fs.string('coordinator_address', None, 'host:port of process 0, for '
            'several processes (implies --distributed).')
  fs.integer('num_processes', None, 'Number of processes (hosts).')
  fs.integer('process_id', None, "This process's index in [0, num_processes).")
  try:
    args = fs.parse(argv)
    args.config.get  # pylint: disable=pointless-statement
  except cli.UserError as e:
    if '--config.' not in str(e):
      raise
    raise cli.UserError(f'{e}; see the fields in {_FIELDS}') from None
  except OSError as e:  # ml_collections: the config file did not load
    reason = str(e).strip().splitlines()[-1].strip()
    raise cli.UserError(f'--config: cannot load the config file ({reason})') from None
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    # ml_collections raises these for an unknown or mistyped --config.x=...
    overrides = ' '.join(a for a in argv if a.startswith('--config.'))
    raise cli.UserError(
        f'bad config override in {overrides or "the flags"} '
        f'({type(e).__name__}: {cli.one_line(e)}): not a field of the config, '
        f'or a value of the wrong type. See {_FIELDS}.') from None
  return args


def main(argv: Sequence[str] | None = None) -> int:
  """`python -m hybrik_jax.train` with `argv` (its flags, no program name)."""
  return _main(parse(argv))


def _main(args: flags.FlagValues) -> int:
  if not args['verbosity'].present:
    # Keep the console to the progress bar and results (Orbax logs a lot at
    # INFO); --verbosity=0 brings the INFO logs back. TensorBoard gets all.
    logging.set_verbosity(logging.WARNING)
  if args.coordinator_address or args.distributed:
    jax.distributed.initialize(coordinator_address=args.coordinator_address,
                               num_processes=args.num_processes,
                               process_id=args.process_id)
  logging.info('JAX process %d of %d, local devices %s', jax.process_index(),
               jax.process_count(), jax.local_devices())
  try:
    train_and_evaluate(args.config, args.workdir)
  except errors.InputError as e:  # cli.UserError and the library's errors
    cli.fail(e)
  except KeyboardInterrupt:  # before the training loop's handlers are set
    print('Interrupted before training started; nothing was saved.',
          file=sys.stderr, flush=True)
    sys.exit(cli.EXIT_INTERRUPTED)
  return 0


def _parse_or_fail(argv: Sequence[str]) -> flags.FlagValues:
  """absl.app's flags_parser: `parse`, a bad flag as one line (exit 2)."""
  try:
    return parse(argv[1:])
  except cli.UserError as e:
    cli.fail(e)


if __name__ == '__main__':
  app.run(_main, flags_parser=_parse_or_fail)
