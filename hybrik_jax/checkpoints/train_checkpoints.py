"""Training checkpoints: Orbax's CheckpointManager in WORKDIR/checkpoints.

Each step directory `WORKDIR/checkpoints/<step>/` holds the items

  state      StandardSave of the train state pytree (params, batch_stats,
             opt_state, step, rng, skip counter)
  data_iter  the input iterator's state (grain's handler: one JSON file per
             process), so a resumed run sees the same examples as an
             uninterrupted one
  meta       JSON: model config, steps per epoch, the whole training config
             (evaluate defaults to its validation set), format version, and
             the tree checksums of the state
  files.json CRC-32 and size of every file above (`integrity`), written once
             the save has committed (at the next save or at `wait`); restores
             check it before Orbax reads anything

Checkpoints are written every N steps and at the end of each epoch; the latest
checkpoint (for resuming) and the last `keep_epochs` epoch-end checkpoints (for
`average_checkpoints`) are kept. Saves are asynchronous and atomic (Orbax
writes to a temporary directory and renames on commit), so a killed run never
leaves a checkpoint the next start cannot read. An unreadable one is moved to
WORKDIR/checkpoints_corrupt/ (`set_aside`), never deleted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging as logging_lib
import os
import shutil
from typing import Any, Iterator, Mapping, Sequence

from absl import logging
from etils import epath
from grain import checkpoint as grain_checkpoint
import jax
import orbax.checkpoint as ocp

from hybrik_jax import errors
from hybrik_jax.checkpoints import config_json
from hybrik_jax.checkpoints import integrity
from hybrik_jax.checkpoints import model_dir

PyTree = Any
CheckpointManager = ocp.CheckpointManager

CHECKPOINTS_DIR = 'checkpoints'
CORRUPT_DIR = 'checkpoints_corrupt'  # unreadable checkpoints are moved here
FORMAT_VERSION = 1

_STATE = 'state'
_DATA_ITER = 'data_iter'
_META = 'meta'


@dataclasses.dataclass
class KeepLatestAndEpochs(ocp.checkpoint_managers.PreservationPolicy):
  """Keeps the newest checkpoint and the last `keep_epochs` epoch ends.

  A checkpoint is an epoch end when its step is a multiple of
  `steps_per_epoch`.
  """
  steps_per_epoch: int
  keep_epochs: int | None

  def should_preserve(self, checkpoints, *, context) -> Sequence[bool]:
    del context
    steps = [c.step for c in checkpoints]
    latest = max(steps) if steps else None
    epoch_steps = sorted(s for s in steps if s % self.steps_per_epoch == 0)
    if self.keep_epochs is not None:
      epoch_steps = epoch_steps[max(0, len(epoch_steps) - self.keep_epochs):]
    keep = set(epoch_steps) | {latest}
    return [s in keep for s in steps]


def checkpoint_dir(workdir: str | os.PathLike[str]) -> epath.Path:
  """WORKDIR/checkpoints, absolute."""
  return epath.Path(workdir).absolute() / CHECKPOINTS_DIR


def is_workdir(path: str | os.PathLike[str]) -> bool:
  """Whether `path` has a checkpoints/ directory (a training workdir)."""
  return os.path.isdir(checkpoint_dir(path))


def create_checkpoint_manager(workdir: str | os.PathLike[str],
                              *,
                              steps_per_epoch: int,
                              keep_epochs: int | None = 10,
                              async_save: bool = True,
                              read_only: bool = False
                              ) -> ocp.CheckpointManager:
  """An Orbax CheckpointManager in `WORKDIR/checkpoints`.

  Args:
    workdir: the training workdir.
    steps_per_epoch: epoch-end checkpoints are those at multiples of it.
    keep_epochs: how many epoch-end checkpoints to keep (None: all). The newest
      checkpoint is always kept too.
    async_save: save in a background thread (call `wait` before exiting).
    read_only: open for reading only (no directory created, nothing deleted).
  """
  options = ocp.CheckpointManagerOptions(
      preservation_policy=KeepLatestAndEpochs(steps_per_epoch, keep_epochs),
      enable_async_checkpointing=async_save,
      create=not read_only,
      read_only=read_only,
      cleanup_tmp_directories=not read_only,
      # A reader never saves (Orbax would warn while setting this itself).
      save_interval_steps=0 if read_only else 1,
  )
  with _without_log_message(_READ_ONLY_MESSAGE if read_only else None):
    return ocp.CheckpointManager(
        checkpoint_dir(workdir),
        options=options,
        item_names=(_STATE, _DATA_ITER, _META),
    )


def open_for_reading(workdir: str | os.PathLike[str]) -> ocp.CheckpointManager:
  """A read-only manager of every checkpoint (evaluate, demo, averaging)."""
  return create_checkpoint_manager(workdir, steps_per_epoch=1,
                                   keep_epochs=None, async_save=False,
                                   read_only=True)


# Orbax logs this WARNING whenever a CheckpointManager is opened with
# read_only=True (checkpoint_manager.py), with no option to turn it off. Read-only
# is what we ask for (evaluate, demo and average_checkpoints must never write
# to or clean up a workdir a training job may be using), so on every such run
# it would look like a fault; only this exact message is dropped, only while
# the manager is created.
_READ_ONLY_MESSAGE = 'Given directory is read only=%s'


class _DropMessage(logging_lib.Filter):

  def __init__(self, message: str):
    super().__init__()
    self._message = message

  def filter(self, record: logging_lib.LogRecord) -> bool:
    return record.msg != self._message


@contextlib.contextmanager
def _without_log_message(message: str | None) -> Iterator[None]:
  """Drops absl/Python log records whose format string is `message`."""
  if message is None:
    yield
    return
  handler_filter = _DropMessage(message)
  logger = logging.get_absl_logger()
  logger.addFilter(handler_filter)
  try:
    yield
  finally:
    logger.removeFilter(handler_filter)


def latest_step(manager: ocp.CheckpointManager) -> int | None:
  """The newest committed checkpoint's step, or None."""
  manager.reload()
  return manager.latest_step()


def all_steps(manager: ocp.CheckpointManager) -> list[int]:
  """All committed checkpoint steps, ascending."""
  manager.reload()
  return sorted(manager.all_steps())


def step_dir(manager: ocp.CheckpointManager, step: int) -> epath.Path:
  """WORKDIR/checkpoints/<step>."""
  return epath.Path(manager.directory) / str(step)


class _IteratorStateSnapshot:
  """The state of a grain iterator, taken now, for grain's Orbax handler.

  grain's handler may run after `save` returns (asynchronous saves) while the
  iterator moves on; handing it a frozen copy of the state avoids that race.
  The handler stores `get_state()` bytes (JSON) as one file per process.
  """

  def __init__(self, iterator):
    self._state = json.dumps(iterator.get_state()).encode()

  def get_state(self) -> bytes:
    return self._state


class _IteratorStateSetter:
  """Forwards the restored JSON state to a grain DatasetIterator."""

  def __init__(self, iterator):
    self._iterator = iterator

  def set_state(self, state: bytes) -> None:
    self._iterator.set_state(json.loads(state.decode()))

  def start_prefetch(self) -> None:
    pass


def _write_missing_manifests(manager: ocp.CheckpointManager) -> None:
  """files.json for each committed checkpoint lacking one (process 0 only).

  The caller has waited for pending saves, so every listed step is committed.
  A step deleted meanwhile by the preservation policy is skipped.
  """
  if jax.process_index() != 0:
    return
  for step in all_steps(manager):
    directory = step_dir(manager, step)
    if (directory / integrity.FILES_MANIFEST).exists():
      continue
    try:
      integrity.write_file_manifest(directory)
    except FileNotFoundError:
      continue


# ---------------------------------------------------------------------------
# A full disk: one line, the incomplete step removed.
# ---------------------------------------------------------------------------


class DiskFullError(errors.InputError):
  """A checkpoint could not be written: no space left on the workdir's disk."""


_NO_SPACE = ('No space left on device', "os_error_code='28'")


def _is_disk_full(e: BaseException | None) -> bool:
  """Whether `e` (or its cause / context) is ENOSPC (also Orbax's wrapped
  TensorStore 'RESOURCE_EXHAUSTED ... No space left on device')."""
  seen = 0
  while e is not None and seen < 20:
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
      return True
    if any(text in str(e) for text in _NO_SPACE):
      return True
    e, seen = e.__cause__ or e.__context__, seen + 1
  return False


class _NoSpaceLogFilter(logging_lib.Filter):
  """Drops Orbax's per-thread ENOSPC tracebacks (the error is raised once,
  as a DiskFullError); installed while saves are pending."""

  def filter(self, record: logging_lib.LogRecord) -> bool:
    text = str(record.msg)
    if record.exc_info and record.exc_info[1] is not None:
      text += str(record.exc_info[1])
    try:
      text += record.getMessage()
    except Exception:  # pylint: disable=broad-except
      pass
    return not any(t in text for t in _NO_SPACE)


_NO_SPACE_FILTER = _NoSpaceLogFilter()


def _quiet_no_space(on: bool) -> None:
  """Adds (on) or removes the ENOSPC filter on the absl logger."""
  logger = logging_lib.getLogger('absl')
  if on and _NO_SPACE_FILTER not in logger.filters:
    logger.addFilter(_NO_SPACE_FILTER)
  elif not on:
    logger.removeFilter(_NO_SPACE_FILTER)


def _dir_bytes(directory: str | os.PathLike[str]) -> int:
  total = 0
  for root, _, names in os.walk(directory):
    for name in names:
      try:
        total += os.path.getsize(os.path.join(root, name))
      except OSError:
        pass
  return total


# Bytes of the state each manager is saving (a failed asynchronous save is
# reported later, by `wait`).
_PENDING_BYTES: dict[int, int] = {}


def _disk_full(manager: ocp.CheckpointManager) -> DiskFullError:
  """Removes the incomplete step(s) and says what happened, in one line."""
  directory = epath.Path(manager.directory)
  incomplete = sorted(p for p in os.listdir(directory)
                      if '.orbax-checkpoint-tmp' in p)
  failed = sorted({p.split('.')[0] for p in incomplete if p.split('.')[0].isdigit()},
                  key=int)
  if jax.process_index() == 0:
    for name in incomplete:
      shutil.rmtree(directory / name, ignore_errors=True)
  committed = sorted(int(p) for p in os.listdir(directory) if p.isdigit())
  last = committed[-1] if committed else None
  # What a step takes: the state's bytes, or (after an asynchronous save,
  # state unknown) the size of the last committed step.
  needed = max(_PENDING_BYTES.get(id(manager), 0),
               _dir_bytes(directory / str(last)) if last is not None else 0)
  free = shutil.disk_usage(directory).free
  workdir = directory.parent
  what = f'checkpoint step {", ".join(failed)}' if failed else 'a checkpoint'
  resume = (f'the last good checkpoint is step {last}' if last is not None
            else 'no checkpoint was saved yet')
  return DiskFullError(
      f'no space left on the disk of {workdir} to save {what} (one needs '
      f'about {needed / 2**20:.1f} MiB, {free / 2**20:.1f} MiB free): {resume}; '
      'the incomplete step was removed. Free space (or use another --workdir) '
      'and rerun to resume.')


def _state_checksums(state: PyTree) -> dict[str, int]:
  """{'state': crc of everything, 'params': ..., 'batch_stats': ...}."""
  sums = {'state': integrity.tree_checksum(state)}
  for name in model_dir.CHECKSUMMED:
    try:
      sums[name] = integrity.tree_checksum(integrity.part(state, name))
    except (KeyError, AttributeError, TypeError):
      pass
  return sums


def save_train_state(manager: ocp.CheckpointManager,
                     step: int,
                     state: PyTree,
                     *,
                     data_iterator: Any = None,
                     meta: Mapping[str, Any] | None = None,
                     force: bool = True) -> bool:
  """Saves (asynchronously) the train state at `step`.

  Args:
    manager: from `create_checkpoint_manager`.
    step: the training step (the checkpoint's name).
    state: the train state pytree (jax arrays; may be sharded).
    data_iterator: the training iterator (grain `DatasetIterator`, anything
      with a JSON-serialisable `get_state()`), or None. Its state is taken
      now; every process writes its own.
    meta: JSON-serialisable metadata (model config, ...).
    force: save even if the manager's own interval policy would not.

  Returns:
    Whether a save was started.
  """
  items = {
      _STATE: ocp.args.StandardSave(state),
      _META: ocp.args.JsonSave(
          {'format_version': FORMAT_VERSION,
           **config_json.config_to_dict(meta or {}),
           'checksums': _state_checksums(state)}),
  }
  if data_iterator is not None:
    items[_DATA_ITER] = grain_checkpoint.CheckpointSave(
        _IteratorStateSnapshot(data_iterator))
  # Orbax's save waits for the previous one anyway; waiting first lets the
  # now-committed checkpoints get their file manifests.
  _quiet_no_space(True)
  try:
    wait(manager, quiet=False)
    _PENDING_BYTES[id(manager)] = sum(
        int(getattr(x, 'nbytes', 0)) for x in jax.tree.leaves(state))
    return manager.save(step, args=ocp.args.Composite(**items), force=force)
  except Exception as e:  # pylint: disable=broad-except
    if not _is_disk_full(e):
      raise
    _quiet_no_space(False)
    raise _disk_full(manager) from None


def _meta_file(meta_dir: epath.Path) -> epath.Path:
  """The JSON file of a checkpoint's meta item (Orbax names it 'metadata')."""
  return meta_dir / 'metadata' if (meta_dir / 'metadata').exists() else meta_dir


def restore_meta(manager: ocp.CheckpointManager,
                 step: int | None = None) -> dict[str, Any]:
  """The JSON metadata saved with a checkpoint (default: the latest)."""
  step = manager.latest_step() if step is None else step
  meta_dir = step_dir(manager, step) / _META
  try:
    restored = manager.restore(
        step, args=ocp.args.Composite(**{_META: ocp.args.JsonRestore()}))
  except Exception as e:  # pylint: disable=broad-except
    raise integrity.CorruptCheckpointError(_meta_file(meta_dir), e) from None
  if not isinstance(restored[_META], Mapping):
    raise integrity.CorruptCheckpointError(_meta_file(meta_dir),
                                           'not a JSON object')
  return dict(restored[_META])


def restore_train_state(manager: ocp.CheckpointManager,
                        abstract_state: PyTree,
                        step: int | None = None,
                        *,
                        data_iterator: Any = None) -> PyTree:
  """Restores a train state (and, if given, the iterator's state in place).

  Args:
    manager: from `create_checkpoint_manager`.
    abstract_state: a pytree of `jax.ShapeDtypeStruct` (with shardings) or
      arrays, with the structure of the saved state.
    step: which checkpoint (default: the latest).
    data_iterator: a fresh training iterator; its position is set to the saved
      one (this process's). The checkpoint must hold an iterator state.

  Returns:
    The restored state.

  Raises:
    CheckpointNotFoundError: no checkpoint.
    CorruptCheckpointError: naming the file that cannot be read, or a state
      that differs from its checksums or is not finite.
  """
  step = manager.latest_step() if step is None else step
  if step is None:
    raise integrity.CheckpointNotFoundError(
        f'no checkpoint in {manager.directory}')
  abstract_state = jax.tree.map(ocp.utils.to_shape_dtype_struct,
                                abstract_state)
  items = {_STATE: ocp.args.StandardRestore(abstract_state),
           _META: ocp.args.JsonRestore()}
  if data_iterator is not None:
    items[_DATA_ITER] = grain_checkpoint.CheckpointRestore(
        _IteratorStateSetter(data_iterator))
  directory = step_dir(manager, step)
  integrity.verify_file_manifest(directory)
  try:
    with integrity.quiet_failed_restore():
      restored = manager.restore(step, args=ocp.args.Composite(**items))
  except Exception as e:  # pylint: disable=broad-except
    raise integrity.CorruptCheckpointError(
        integrity.corrupt_item(directory / _STATE), e) from None
  integrity.verify_checksums(
      restored[_STATE], (restored[_META] or {}).get('checksums'), ('state',),
      directory / _STATE)
  integrity.check_finite(restored[_STATE], directory)
  return restored[_STATE]


def restore_variables(manager: ocp.CheckpointManager,
                      step: int) -> dict[str, PyTree]:
  """{'params', 'batch_stats'} of a training checkpoint, no other state.

  Reads the saved tree's metadata, so no model or optimizer is needed. The
  arrays come back on the first local device.
  """
  state_dir = step_dir(manager, step) / _STATE
  if not state_dir.exists():
    raise integrity.CheckpointNotFoundError(f'no train state at {state_dir}')
  integrity.verify_file_manifest(state_dir.parent)
  try:
    with integrity.quiet_failed_restore(), \
         ocp.PyTreeCheckpointer() as checkpointer:
      # The item's own metadata (the handler's): the checkpointer's metadata()
      # also looks for a step metadata file inside the item directory, which
      # a CheckpointManager writes one level up, and warns that it is missing.
      metadata = ocp.PyTreeCheckpointHandler().metadata(state_dir)
      metadata = getattr(metadata, 'tree', metadata)
      abstract = model_dir.local_abstract_tree(
          {k: metadata[k] for k in model_dir.CHECKSUMMED if k in metadata})
      restored = checkpointer.restore(
          state_dir, args=ocp.args.PyTreeRestore(
              item=abstract,
              restore_args=jax.tree.map(
                  lambda x: ocp.ArrayRestoreArgs(sharding=x.sharding), abstract),
              partial_restore=True))
  except Exception as e:  # pylint: disable=broad-except
    raise integrity.CorruptCheckpointError(
        integrity.corrupt_item(state_dir), e) from None
  try:
    saved = json.loads(
        (state_dir.parent / _META / 'metadata').read_text()).get('checksums')
  except (OSError, ValueError, AttributeError):
    saved = None
  integrity.verify_checksums(restored, saved, model_dir.CHECKSUMMED, state_dir)
  restored = dict(restored)
  restored.setdefault('batch_stats', {})
  return restored


def set_aside(manager: ocp.CheckpointManager, step: int) -> epath.Path:
  """Moves checkpoint `step` to WORKDIR/checkpoints_corrupt/ (never deletes).

  Process 0 renames; the others wait for it. Returns the new path (the same
  on every process: each picks the name before process 0 renames).
  """
  source = step_dir(manager, step)
  target_dir = epath.Path(manager.directory).parent / CORRUPT_DIR
  target = target_dir / str(step)
  n = 1
  while target.exists():
    target, n = target_dir / f'{step}.{n}', n + 1
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices(f'hybrik_jax name set aside {step}')
  if jax.process_index() == 0:
    target_dir.mkdir(parents=True, exist_ok=True)
    os.rename(source, target)
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices(f'hybrik_jax set aside {step}')
  manager.reload()
  return target


def wait(manager: ocp.CheckpointManager, quiet: bool = True) -> None:
  """Blocks until pending saves are committed; writes their file manifests.

  Raises:
    DiskFullError: a save ran out of disk space (one line naming the
      workdir, the space needed and the last good step; the incomplete step
      is removed).
  """
  try:
    manager.wait_until_finished()
    _write_missing_manifests(manager)
  except Exception as e:  # pylint: disable=broad-except
    if not _is_disk_full(e):
      raise
    _quiet_no_space(False)
    raise _disk_full(manager) from None
  if quiet:
    _quiet_no_space(False)
