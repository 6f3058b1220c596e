"""Orbax in a few functions: exported models and training checkpoints.

Every Orbax call of the project lives here, so that an Orbax API change touches
one file.

Two formats:

* An **exported model** (what `convert`, `average_checkpoints`, `evaluate` and
  `demo` read and write) is a directory::

    DIR/model_config.json   the model config (`config.model`) as JSON
    DIR/variables/          Orbax StandardSave of {'params', 'batch_stats'}
    DIR/checksums.json      CRC-32 of params and batch_stats (`tree_checksum`;
                            checked on load when present)

  `save_model(DIR, variables, model_config)` / `load_model(DIR)`.

* A **training workdir** holds an Orbax `CheckpointManager` under
  `WORKDIR/checkpoints/<step>/` with the items

    state      StandardSave of the train state pytree (params, batch_stats,
               opt_state, step, rng, skip counter)
    data_iter  the input iterator's state (grain's handler: one JSON file per
               process), so a resumed run sees the same examples as an
               uninterrupted one
    meta       JSON: model config, steps per epoch, the whole training config
               (evaluate defaults to its validation set), format version

    files.json CRC-32 and size of every file above, written once the save has
               committed (at the next save or at `wait`); restores check it
               before Orbax reads anything, so a damaged file is named at once
               instead of failing deep inside an Orbax restore

  Checkpoints are written every N steps and at the end of each epoch; the
  latest checkpoint (for resuming) and the last `keep_epochs` epoch-end
  checkpoints (for `average_checkpoints`) are kept. Saves are asynchronous and
  atomic (Orbax writes to a temporary directory and renames on commit), so a
  killed run never leaves a checkpoint the next start cannot read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging as logging_lib
import os
import sys
import zlib
from typing import Any, Mapping, Sequence

from absl import logging
from etils import epath
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from grain import checkpoint as grain_checkpoint

from hybrik_jax import cli

PyTree = Any

MODEL_CONFIG_FILE = 'model_config.json'
# The training config of an exported model, when known (average_checkpoints).
TRAIN_CONFIG_FILE = 'train_config.json'
CHECKSUMS_FILE = 'checksums.json'  # CRC-32 of params / batch_stats (optional)
# CRC-32 and size of every file of a committed training checkpoint (optional).
FILES_MANIFEST = 'files.json'
_CHECKSUMMED = ('params', 'batch_stats')
VARIABLES_DIR = 'variables'
CHECKPOINTS_DIR = 'checkpoints'
FORMAT_VERSION = 1

_STATE = 'state'
_DATA_ITER = 'data_iter'
_META = 'meta'
# Unreadable training checkpoints are moved here (never deleted).
CORRUPT_DIR = 'checkpoints_corrupt'


def _silence_closed_event_loop_noise() -> None:
  """Drops the 'Event loop is closed' reports of an aborted Orbax restore.

  When TensorStore fails mid-restore, its pending callbacks fire after Orbax
  has closed its asyncio loop, and each prints a traceback through
  `sys.unraisablehook` (the "147 tracebacks" of a corrupt checkpoint). Other
  unraisable exceptions still reach the previous hook.
  """
  previous = sys.unraisablehook
  if getattr(previous, '_hybrik_jax_filter', False):
    return

  def hook(unraisable):
    exc = unraisable.exc_value
    if isinstance(exc, RuntimeError) and str(exc) == 'Event loop is closed':
      return
    previous(unraisable)

  hook._hybrik_jax_filter = True  # pylint: disable=protected-access
  sys.unraisablehook = hook


class CorruptCheckpointError(cli.UserError, ValueError):
  """A checkpoint file cannot be read (truncated, bit-flipped, empty).

  Attributes:
    path: the file or directory that could not be read.
  """

  def __init__(self, path, cause: BaseException | str):
    _silence_closed_event_loop_noise()
    self.path = os.fspath(path)
    detail = cli.one_line(cause)
    if len(detail) > 300:
      detail = detail[:300] + '...'
    super().__init__(
        f'{self.path} is corrupt or truncated and cannot be read ({detail}). '
        'Use another checkpoint, or re-create this one.')


def _read_json(path: epath.Path) -> Any:
  """json.loads of a file; CorruptCheckpointError naming it if it is not JSON."""
  text = path.read_text()
  try:
    return json.loads(text)
  except ValueError as e:
    raise CorruptCheckpointError(
        path, 'empty file' if not text.strip() else f'not valid JSON: {e}'
    ) from None


def _corrupt_item(directory: epath.Path) -> epath.Path:
  """The Orbax item directory's file most likely at fault, for messages."""
  for name in ('_METADATA', 'manifest.ocdbt', '_CHECKPOINT_METADATA'):
    candidate = directory / name
    if candidate.exists():
      try:
        if name != 'manifest.ocdbt':
          json.loads(candidate.read_text())
      except (ValueError, UnicodeDecodeError):
        return candidate
  return directory


# ---------------------------------------------------------------------------
# Config <-> JSON.
# ---------------------------------------------------------------------------


def config_to_dict(config: Mapping[str, Any] | ml_collections.ConfigDict
                   ) -> dict[str, Any]:
  """A JSON-serialisable plain dict of a (possibly nested) config."""
  if isinstance(config, ml_collections.ConfigDict):
    config = config.to_dict()

  def convert(x):
    if isinstance(x, Mapping):
      return {str(k): convert(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
      return [convert(v) for v in x]
    if isinstance(x, np.generic):
      return x.item()
    return x

  return convert(config)


def dict_to_config(d: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """The inverse of `config_to_dict`; JSON lists come back as tuples."""

  def convert(x):
    if isinstance(x, Mapping):
      return {k: convert(v) for k, v in x.items()}
    if isinstance(x, list):
      return tuple(convert(v) for v in x)
    return x

  return ml_collections.ConfigDict(convert(d))


# ---------------------------------------------------------------------------
# Exported models.
# ---------------------------------------------------------------------------


def _local_abstract_tree(item_metadata: PyTree) -> PyTree:
  """ShapeDtypeStructs on the first local device for a saved tree."""
  sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])

  def to_abstract(m):
    return jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=sharding)

  return jax.tree.map(to_abstract, item_metadata)


def is_exported_model(directory: str | os.PathLike[str]) -> bool:
  """Whether `directory` holds an exported model (see module docstring)."""
  directory = epath.Path(directory)
  return ((directory / MODEL_CONFIG_FILE).exists() and
          (directory / VARIABLES_DIR).exists())


def save_model(directory: str | os.PathLike[str],
               variables: Mapping[str, PyTree],
               model_config: Mapping[str, Any] | ml_collections.ConfigDict,
               *,
               overwrite: bool = False,
               train_config: Mapping[str, Any] | None = None) -> epath.Path:
  """Writes an exported model: variables + model config.

  Args:
    directory: the output directory (created; must not already hold a model
      unless `overwrite`).
    variables: {'params': ..., 'batch_stats': ...} (batch_stats may be empty
      or missing; it is saved as {}). Other collections are refused.
    model_config: the model config (`config.model`), JSON-serialisable.
    overwrite: replace an existing model in `directory`.
    train_config: the config that trained it (optional; `evaluate` then
      defaults to its validation dataset, split and data settings).

  Returns:
    The directory as an `epath.Path`.
  """
  directory = epath.Path(directory).absolute()
  unknown = set(variables) - {'params', 'batch_stats'}
  if unknown:
    raise ValueError(f'save_model: variables has unexpected collections '
                     f'{sorted(unknown)}; expected params and batch_stats.')
  if 'params' not in variables:
    raise ValueError('save_model: variables must contain "params".')
  tree = {'params': variables['params'],
          'batch_stats': variables.get('batch_stats', {}) or {}}
  model_config = config_to_dict(model_config)
  if 'ik_convention' in model_config:  # record the convention's resolved fields
    from hybrik_jax.models import config as model_config_lib  # pylint: disable=g-import-not-at-top
    model_config.update(config_to_dict(
        model_config_lib.ik_fields(model_config_lib.ik_convention(model_config))))
  config_json = json.dumps(model_config, indent=2,
                           sort_keys=True)
  variables_dir = directory / VARIABLES_DIR
  if variables_dir.exists() or (directory / MODEL_CONFIG_FILE).exists():
    if not overwrite:
      raise FileExistsError(
          f'{directory} already holds an exported model; choose another '
          'directory or pass overwrite=True (--overwrite).')
    if variables_dir.exists():
      variables_dir.rmtree()
  directory.mkdir(parents=True, exist_ok=True)
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(variables_dir, tree)
    checkpointer.wait_until_finished()
  if jax.process_index() == 0:
    (directory / CHECKSUMS_FILE).write_text(json.dumps(
        {k: tree_checksum(tree[k]) for k in _CHECKSUMMED}))
    (directory / MODEL_CONFIG_FILE).write_text(config_json)
    if train_config is not None:
      (directory / TRAIN_CONFIG_FILE).write_text(json.dumps(
          config_to_dict(train_config), indent=2, sort_keys=True))
  logging.info('Saved model to %s', directory)
  return directory


def load_model_config(directory: str | os.PathLike[str]
                      ) -> ml_collections.ConfigDict:
  """The model config of an exported model (JSON lists as tuples)."""
  path = epath.Path(directory) / MODEL_CONFIG_FILE
  if not path.exists():
    raise FileNotFoundError(
        f'{path} not found: {directory} is not an exported model (expected '
        f'{MODEL_CONFIG_FILE} and {VARIABLES_DIR}/; make one with '
        '`python -m hybrik_jax.convert` or `python -m '
        'hybrik_jax.average_checkpoints`).')
  config = _read_json(path)
  if not isinstance(config, Mapping):
    raise CorruptCheckpointError(path, 'not a JSON object')
  return dict_to_config(config)


def complete_model_config(model_config: ml_collections.ConfigDict,
                          source: Any = 'model') -> ml_collections.ConfigDict:
  """A model config with the IK fields that configs from before them lack.

  Such a checkpoint was decoded with the project's 'corrected' IK convention and
  the data's depth factor (2.2 m by default), so that is what is assumed, with a
  one-line note on stderr. Configs that have the fields come back unchanged.
  """
  from hybrik_jax.body import ik  # pylint: disable=g-import-not-at-top
  from hybrik_jax.models import config as model_config_lib  # pylint: disable=g-import-not-at-top
  missing = [k for k in model_config_lib.IK_FIELDS if k not in model_config]
  if not missing:
    return model_config
  complete = ml_collections.ConfigDict(model_config.to_dict())
  for key, value in model_config_lib.ik_fields(ik.IKConvention.corrected()).items():
    if key in missing:
      complete[key] = value
  print(f'Note: {source} has no IK convention fields (exported before they existed); '
        f"assuming {', '.join(f'{k}={complete[k]}' for k in missing)} (the project's "
        "convention; re-convert a released HybrIK(-Transformer) checkpoint to get "
        "'released').", file=sys.stderr)
  return complete


def load_model(directory: str | os.PathLike[str]
               ) -> tuple[dict[str, PyTree], ml_collections.ConfigDict]:
  """Reads an exported model.

  Args:
    directory: a directory written by `save_model`.

  Returns:
    (variables, model_config): variables = {'params', 'batch_stats'} as jax
    arrays on the first local device; model_config a ConfigDict (with the IK
    fields filled in for models exported before them: `complete_model_config`).
  """
  directory = epath.Path(directory).absolute()
  model_config = complete_model_config(load_model_config(directory), directory)
  variables_dir = directory / VARIABLES_DIR
  if not variables_dir.exists():
    raise FileNotFoundError(f'{variables_dir} not found: incomplete exported '
                            'model.')
  try:
    with ocp.StandardCheckpointer() as checkpointer:
      metadata = checkpointer.metadata(variables_dir).item_metadata
      abstract = _local_abstract_tree(_metadata_tree(metadata))
      variables = checkpointer.restore(variables_dir, abstract)
  except Exception as e:  # pylint: disable=broad-except
    # Orbax / TensorStore raise many types for unreadable bytes.
    raise CorruptCheckpointError(_corrupt_item(variables_dir), e) from None
  checksums = directory / CHECKSUMS_FILE
  if checksums.exists():
    _verify_checksums(variables, _read_json(checksums), _CHECKSUMMED,
                      variables_dir)
  variables = dict(variables)
  variables.setdefault('batch_stats', {})
  return variables, model_config


def check_finite(tree: PyTree, path) -> None:
  """CorruptCheckpointError naming `path` if a float array is not finite."""
  for key, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    x = _host_array(leaf)
    if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
      raise CorruptCheckpointError(
          path, f'{jax.tree_util.keystr(key)} holds non-finite values')


def _host_array(leaf) -> np.ndarray:
  if isinstance(leaf, jax.Array):
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      leaf = jax.random.key_data(leaf)
    return np.asarray(leaf.addressable_data(0))  # this host's replicated copy
  return np.asarray(leaf)


def tree_checksum(tree: PyTree) -> int:
  """CRC-32 of a pytree's array bytes, leaf by leaf in tree order.

  Saved in a checkpoint's meta and compared after restoring: Orbax stores no
  checksum, so a flipped bit in the array data would otherwise load silently.
  """
  crc = 0
  for leaf in jax.tree.leaves(tree):
    x = np.ascontiguousarray(_host_array(leaf))
    crc = zlib.crc32(str((x.dtype.str, x.shape)).encode(), crc)
    crc = zlib.crc32(x.view(np.uint8).reshape(-1) if x.size else b'', crc)
  return crc


def _part(tree: PyTree, name: str) -> PyTree:
  return tree[name] if isinstance(tree, Mapping) else getattr(tree, name)





def _state_checksums(state: PyTree) -> dict[str, int]:
  """{'state': crc of everything, 'params': ..., 'batch_stats': ...}."""
  sums = {'state': tree_checksum(state)}
  for name in _CHECKSUMMED:
    try:
      sums[name] = tree_checksum(_part(state, name))
    except (KeyError, AttributeError, TypeError):
      pass
  return sums


def _verify_checksums(tree: PyTree, saved: Mapping[str, int] | None,
                      names: Sequence[str], path) -> None:
  """CorruptCheckpointError if a restored part's checksum differs."""
  for name in names:
    if not saved or name not in saved:
      continue  # older checkpoints carry no checksums
    part = tree if name == 'state' else _part(tree, name)
    if tree_checksum(part) != saved[name]:
      raise CorruptCheckpointError(
          path, f'the {name} arrays do not match the checksum saved with them '
          '(flipped or overwritten bytes)')


class ConfigMismatchError(cli.UserError, ValueError):
  """A model config does not describe the weights stored with it."""


def check_variables_match(variables: Mapping[str, PyTree],
                          model_config: Mapping[str, Any],
                          where: str | os.PathLike[str]) -> None:
  """ConfigMismatchError unless `variables` fit the model of `model_config`.

  Compares names and shapes with the model's own (abstract) initialisation,
  so a mismatch is one line naming `where` instead of a Flax
  ScopeParamShapeError at the first forward pass.
  """
  from hybrik_jax.models import hybrik as hybrik_model  # pylint: disable=g-import-not-at-top
  if not isinstance(model_config, ml_collections.ConfigDict):
    model_config = dict_to_config(model_config)
  try:
    model = hybrik_model.create_model(model_config)
    size = int(model_config['input_size'])
    images = jax.ShapeDtypeStruct((1, size, size, 3), np.float32)
    expected = jax.eval_shape(
        lambda x: model.init({'params': jax.random.key(0),
                              'dropout': jax.random.key(1),
                              'patches': jax.random.key(2)}, x, train=False),
        images)
  except Exception as e:  # pylint: disable=broad-except
    raise ConfigMismatchError(
        f'{where}: its {MODEL_CONFIG_FILE} does not describe a model '
        f'({cli.one_line(e)[:200]}).') from None
  shapes = lambda tree: {
      jax.tree_util.keystr(k): tuple(np.shape(v))
      for k, v in jax.tree_util.tree_flatten_with_path(tree)[0]}
  problems = []
  for collection in ('params', 'batch_stats'):
    want = shapes(expected.get(collection, {}))
    have = shapes(variables.get(collection, {}) or {})
    for key in sorted(set(want) | set(have)):
      if want.get(key) != have.get(key):
        problems.append(f'{collection}{key}: weights '
                        f'{have.get(key, "missing")}, config '
                        f'{want.get(key, "missing")}')
  if problems:
    more = f' (and {len(problems) - 3} more)' if len(problems) > 3 else ''
    raise ConfigMismatchError(
        f'{where}: {MODEL_CONFIG_FILE} does not match the weights: '
        f'{"; ".join(problems[:3])}{more}. Use the {MODEL_CONFIG_FILE} that '
        'was saved with these weights.')


def _metadata_tree(metadata: Any) -> PyTree:
  """The tree of array metadata from a StandardCheckpointer metadata object."""
  tree = getattr(metadata, 'tree', metadata)
  return tree


# ---------------------------------------------------------------------------
# Inference: an exported model or a training workdir's latest checkpoint.
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class InferenceModel:
  """What `load_for_inference` read.

  Attributes:
    variables: {'params', 'batch_stats'} on the first local device.
    model_config: the model's config.
    description: what was read, for result tables ('exported model DIR',
      'training workdir DIR, step N').
    train_config: the training config that made it (its validation dataset,
      split and data settings), or None when unknown (a converted model).
    step: the training step, or None for an exported model.
  """
  variables: dict[str, PyTree]
  model_config: ml_collections.ConfigDict
  description: str
  train_config: ml_collections.ConfigDict | None = None
  step: int | None = None


def load_for_inference(path: str | os.PathLike[str]) -> InferenceModel:
  """Variables and configs of an exported model or a training workdir.

  Raises:
    FileNotFoundError: `path` is neither (or has no committed checkpoint),
      saying what to do.
    ValueError: a checkpoint whose metadata lacks the model config.
  """
  path = os.fspath(path)
  if not os.path.isdir(path):
    raise FileNotFoundError(
        f'checkpoint {path!r} does not exist. Give an exported model directory '
        '(train on synthetic_humans with `python -m hybrik_jax.train`, or convert '
        'the published PyTorch weights with `python -m hybrik_jax.convert`) or a '
        'training workdir.')
  if is_exported_model(path):
    variables, model_config = load_model(path)
    check_variables_match(variables, model_config, path)
    train_file = epath.Path(path) / TRAIN_CONFIG_FILE
    train_config = (dict_to_config(_read_json(train_file))
                    if train_file.exists() else None)
    return InferenceModel(variables, model_config, f'exported model {path}',
                          train_config)
  if os.path.isdir(os.path.join(path, CHECKPOINTS_DIR)):
    manager = create_checkpoint_manager(path, steps_per_epoch=1,
                                        keep_epochs=None, async_save=False,
                                        read_only=True)
    try:
      step = latest_step(manager)
      if step is None:
        raise FileNotFoundError(f'training workdir {path!r} has no committed '
                                'checkpoint yet.')
      meta = restore_meta(manager, step)
      model_dict = meta.get('model') or meta.get('model_config')
      if not model_dict:
        raise ValueError(f'checkpoint {path!r} step {step}: its metadata has '
                         f'no model config (keys {sorted(meta)}).')
      variables = restore_variables(manager, step)
    finally:
      manager.close()
    model_config = complete_model_config(dict_to_config(model_dict), path)
    check_variables_match(variables, model_config, f'{path} step {step}')
    train_config = dict_to_config(meta['config']) if meta.get('config') else None
    return InferenceModel(variables, model_config,
                          f'training workdir {path}, step {step}',
                          train_config, step)
  raise FileNotFoundError(
      f'{path!r} is neither an exported model (no {MODEL_CONFIG_FILE} and '
      f'{VARIABLES_DIR}/) nor a training workdir (no {CHECKPOINTS_DIR}/).')


# ---------------------------------------------------------------------------
# Training checkpoints.
# ---------------------------------------------------------------------------


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
  return epath.Path(workdir).absolute() / CHECKPOINTS_DIR


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
def _without_log_message(message: str | None):
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


def _file_crc(path: str) -> int:
  """CRC-32 of a file's bytes, read in 16 MiB blocks."""
  crc = 0
  with open(path, 'rb') as f:
    while block := f.read(1 << 24):
      crc = zlib.crc32(block, crc)
  return crc


def _checkpoint_files(step_dir: epath.Path) -> list[str]:
  """Paths of the files under a step directory, relative, sorted."""
  files = []
  for root, _, names in os.walk(step_dir):
    for name in names:
      rel = os.path.relpath(os.path.join(root, name), step_dir)
      if rel != FILES_MANIFEST:
        files.append(rel)
  return sorted(files)


def write_file_manifest(step_dir: str | os.PathLike[str]) -> None:
  """Writes STEP_DIR/files.json: {relative path: [size, crc32]} of each file.

  Call only on a committed checkpoint (its files no longer change). Written to
  a temporary name and renamed, so a reader never sees half a manifest.
  """
  step_dir = epath.Path(step_dir)
  manifest = {rel: [os.path.getsize(step_dir / rel), _file_crc(step_dir / rel)]
              for rel in _checkpoint_files(step_dir)}
  tmp = step_dir / f'.{FILES_MANIFEST}.tmp'
  tmp.write_text(json.dumps(manifest, sort_keys=True))
  os.replace(tmp, step_dir / FILES_MANIFEST)


def verify_file_manifest(step_dir: str | os.PathLike[str]) -> None:
  """CorruptCheckpointError naming the first file that differs from files.json.

  A checkpoint without a manifest (killed before the next save wrote it, or
  from an older version) passes; its arrays are still checked against the
  checksums in its meta item after the restore.
  """
  step_dir = epath.Path(step_dir)
  path = step_dir / FILES_MANIFEST
  if not path.exists():
    return
  manifest = _read_json(path)
  if not isinstance(manifest, Mapping):
    raise CorruptCheckpointError(path, 'not a JSON object')
  for rel, expected in sorted(manifest.items()):
    file = step_dir / rel
    if not file.exists():
      raise CorruptCheckpointError(file, 'the file is missing')
    try:
      size, crc = expected
    except (TypeError, ValueError):
      raise CorruptCheckpointError(path, f'bad entry for {rel}') from None
    if os.path.getsize(file) != size:
      raise CorruptCheckpointError(
          file, f'{os.path.getsize(file)} bytes, {size} when it was saved')
    if _file_crc(file) != crc:
      raise CorruptCheckpointError(
          file, 'its CRC-32 differs from the one recorded when it was saved')


def _write_missing_manifests(manager: ocp.CheckpointManager) -> None:
  """files.json for each committed checkpoint lacking one (process 0 only).

  The caller has waited for pending saves, so every listed step is committed.
  A step deleted meanwhile by the preservation policy is skipped.
  """
  if jax.process_index() != 0:
    return
  for step in all_steps(manager):
    step_dir = epath.Path(manager.directory) / str(step)
    if (step_dir / FILES_MANIFEST).exists():
      continue
    try:
      write_file_manifest(step_dir)
    except FileNotFoundError:
      continue


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
          {'format_version': FORMAT_VERSION, **config_to_dict(meta or {}),
           'checksums': _state_checksums(state)}),
  }
  if data_iterator is not None:
    items[_DATA_ITER] = grain_checkpoint.CheckpointSave(
        _IteratorStateSnapshot(data_iterator))
  # Orbax's save waits for the previous one anyway; waiting first lets the
  # now-committed checkpoints get their file manifests.
  manager.wait_until_finished()
  _write_missing_manifests(manager)
  return manager.save(step, args=ocp.args.Composite(**items), force=force)


def restore_meta(manager: ocp.CheckpointManager,
                 step: int | None = None) -> dict[str, Any]:
  """The JSON metadata saved with a checkpoint (default: the latest)."""
  step = manager.latest_step() if step is None else step
  meta_dir = epath.Path(manager.directory) / str(step) / _META
  try:
    restored = manager.restore(
        step, args=ocp.args.Composite(**{_META: ocp.args.JsonRestore()}))
  except Exception as e:  # pylint: disable=broad-except
    raise CorruptCheckpointError(_meta_file(meta_dir), e) from None
  if not isinstance(restored[_META], Mapping):
    raise CorruptCheckpointError(_meta_file(meta_dir), 'not a JSON object')
  return dict(restored[_META])


def _meta_file(meta_dir: epath.Path) -> epath.Path:
  """The JSON file of a checkpoint's meta item (Orbax names it 'metadata')."""
  return meta_dir / 'metadata' if (meta_dir / 'metadata').exists() else meta_dir


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
  """
  step = manager.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f'no checkpoint in {manager.directory}')
  abstract_state = jax.tree.map(ocp.utils.to_shape_dtype_struct,
                                abstract_state)
  items = {_STATE: ocp.args.StandardRestore(abstract_state),
           _META: ocp.args.JsonRestore()}
  if data_iterator is not None:
    items[_DATA_ITER] = grain_checkpoint.CheckpointRestore(
        _IteratorStateSetter(data_iterator))
  verify_file_manifest(epath.Path(manager.directory) / str(step))
  _silence_closed_event_loop_noise()
  try:
    restored = manager.restore(step, args=ocp.args.Composite(**items))
  except Exception as e:  # pylint: disable=broad-except
    raise CorruptCheckpointError(
        _corrupt_item(epath.Path(manager.directory) / str(step) / _STATE),
        e) from None
  step_dir = epath.Path(manager.directory) / str(step)
  _verify_checksums(restored[_STATE], (restored[_META] or {}).get('checksums'),
                    ('state',), step_dir / _STATE)
  check_finite(restored[_STATE], step_dir)
  return restored[_STATE]


def restore_variables(manager: ocp.CheckpointManager,
                      step: int) -> dict[str, PyTree]:
  """{'params', 'batch_stats'} of a training checkpoint, no other state.

  Reads the saved tree's metadata, so no model or optimizer is needed.
  """
  state_dir = epath.Path(manager.directory) / str(step) / _STATE
  if not state_dir.exists():
    raise FileNotFoundError(f'no train state at {state_dir}')
  verify_file_manifest(state_dir.parent)
  _silence_closed_event_loop_noise()
  try:
    with ocp.PyTreeCheckpointer() as checkpointer:
      # The item's own metadata (the handler's): the checkpointer's metadata()
      # also looks for a step metadata file inside the item directory, which
      # a CheckpointManager writes one level up, and warns that it is missing.
      metadata = _metadata_tree(
          ocp.PyTreeCheckpointHandler().metadata(state_dir))
      abstract = _local_abstract_tree(
          {k: metadata[k] for k in ('params', 'batch_stats') if k in metadata})
      restored = checkpointer.restore(
          state_dir, args=ocp.args.PyTreeRestore(
              item=abstract,
              restore_args=jax.tree.map(
                  lambda x: ocp.ArrayRestoreArgs(sharding=x.sharding), abstract),
              partial_restore=True))
  except Exception as e:  # pylint: disable=broad-except
    raise CorruptCheckpointError(_corrupt_item(state_dir), e) from None
  try:
    saved = json.loads(
        (state_dir.parent / _META / 'metadata').read_text()).get('checksums')
  except (OSError, ValueError, AttributeError):
    saved = None
  _verify_checksums(restored, saved, _CHECKSUMMED, state_dir)
  restored = dict(restored)
  restored.setdefault('batch_stats', {})
  return restored


def set_aside(manager: ocp.CheckpointManager, step: int) -> epath.Path:
  """Moves checkpoint `step` to WORKDIR/checkpoints_corrupt/ (never deletes).

  Process 0 renames; the others wait for it. Returns the new path.
  """
  source = epath.Path(manager.directory) / str(step)
  target_dir = epath.Path(manager.directory).parent / CORRUPT_DIR
  target = target_dir / str(step)
  n = 1
  while target.exists():
    target, n = target_dir / f'{step}.{n}', n + 1
  if jax.process_index() == 0:
    target_dir.mkdir(parents=True, exist_ok=True)
    os.rename(source, target)
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices(f'hybrik_jax set aside {step}')
  manager.reload()
  return target


def wait(manager: ocp.CheckpointManager) -> None:
  """Blocks until pending saves are committed; writes their file manifests."""
  manager.wait_until_finished()
  _write_missing_manifests(manager)
