"""The exported model: a directory `evaluate` and `demo` read.

`convert`, `average_checkpoints` and `train` (config.init) read and write it::

  DIR/model_config.json   the model config (`config.model`) as JSON
  DIR/variables/          Orbax StandardSave of {'params', 'batch_stats'}
  DIR/checksums.json      CRC-32 of params and batch_stats
                          (`integrity.tree_checksum`; checked on load)
  DIR/files.json          size and CRC-32 of every file under variables/
                          (checked before Orbax reads them)
  DIR/train_config.json   the training config, when known (optional)

Models written before checksums.json / files.json load without those checks.

`save_model` writes the whole directory beside DIR (`.DIR.saving`) and puts it
in place at the end, exchanging it with an existing model atomically when
`overwrite`: a killed save never leaves half a model, nor destroys the old one.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from typing import Any, Mapping

from absl import logging
from etils import epath
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from hybrik_jax import errors
from hybrik_jax.body import ik
from hybrik_jax.checkpoints import config_json
from hybrik_jax.checkpoints import integrity
from hybrik_jax.models import config as model_config_lib
from hybrik_jax.models import hybrik as hybrik_model

PyTree = Any

MODEL_CONFIG_FILE = 'model_config.json'
TRAIN_CONFIG_FILE = 'train_config.json'
CHECKSUMS_FILE = 'checksums.json'
VARIABLES_DIR = 'variables'
CHECKSUMMED = ('params', 'batch_stats')
# What an exported model directory may hold (Orbax's unfinished variables
# directory of a save killed before this format wrote beside it included).
_MODEL_ENTRIES = (MODEL_CONFIG_FILE, TRAIN_CONFIG_FILE, CHECKSUMS_FILE,
                  VARIABLES_DIR, integrity.FILES_MANIFEST)
_ORBAX_TMP = f'{VARIABLES_DIR}.orbax-checkpoint-tmp'


class ConfigMismatchError(errors.InputError):
  """A model config does not describe the weights stored with it."""


class ModelExistsError(errors.InputError, FileExistsError):
  """The output directory already holds a model (or something else)."""


def is_exported_model(directory: str | os.PathLike[str]) -> bool:
  """Whether `directory` holds an exported model (see module docstring)."""
  directory = epath.Path(directory)
  return ((directory / MODEL_CONFIG_FILE).exists() and
          (directory / VARIABLES_DIR).exists())


def _is_model_entry(name: str) -> bool:
  return name in _MODEL_ENTRIES or name.startswith(_ORBAX_TMP)


def check_can_write(directory: str | os.PathLike[str], *,
                    overwrite: bool = False) -> None:
  """ModelExistsError unless `save_model(directory, overwrite=...)` may write.

  Reads nothing but the directory listing, so a command line can refuse
  before any work. Allowed: a new or empty directory; with `overwrite`, also
  one that holds an exported model (nothing else: other files are never
  replaced).
  """
  directory = epath.Path(directory).absolute()
  if not directory.exists():
    return
  if not directory.is_dir():
    raise ModelExistsError(f'{directory} is a file: choose a directory for '
                           'the model.')
  entries = sorted(os.listdir(directory))
  if not entries:
    return
  others = [e for e in entries if not _is_model_entry(e)]
  if others:
    raise ModelExistsError(
        f'{directory} already exists and holds other files than a model '
        f'({others[0]!r}): choose a new or empty directory.')
  if not overwrite:
    raise ModelExistsError(
        f'{directory} already holds an exported model; choose another '
        'directory or pass overwrite=True (--overwrite).')


def _sync(tag: str) -> None:
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices(f'hybrik_jax {tag}')


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: epath.Path, b: epath.Path) -> bool:
  """Atomically swaps two directories (Linux renameat2); False if unsupported."""
  try:
    renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
  except (AttributeError, OSError):
    return False
  renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                        ctypes.c_char_p, ctypes.c_uint]
  return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b),
                   _RENAME_EXCHANGE) == 0


def _commit(staging: epath.Path, directory: epath.Path) -> None:
  """Puts the finished `staging` directory at `directory` (process 0).

  A new or empty `directory` is replaced by one rename; an existing model is
  exchanged with it atomically (or, where the kernel cannot exchange, moved
  to `.NAME.replaced` first), then deleted.
  """
  if not directory.exists() or not os.listdir(directory):
    os.replace(staging, directory)
    return
  if _exchange(staging, directory):
    staging.rmtree()  # now the old model
    return
  replaced = directory.parent / f'.{directory.name}.replaced'
  if replaced.exists():
    replaced.rmtree()
  os.rename(directory, replaced)
  os.rename(staging, directory)
  replaced.rmtree()


def save_model(directory: str | os.PathLike[str],
               variables: Mapping[str, PyTree],
               model_config: Mapping[str, Any] | ml_collections.ConfigDict,
               *,
               overwrite: bool = False,
               train_config: Mapping[str, Any] | None = None) -> epath.Path:
  """Writes an exported model: variables + model config.

  Everything is written to `.NAME.saving` beside `directory` first and put in
  place at the end (see the module docstring), so a killed save leaves the
  old model, if any, as it was. A leftover `.NAME.saving` of a killed save is
  removed (one writer per directory).

  Args:
    directory: the output directory: new or empty, or holding an exported
      model when `overwrite` (`check_can_write`).
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
  model_config = config_json.config_to_dict(model_config)
  if 'ik_convention' in model_config:  # record the convention's resolved fields
    model_config.update(config_json.config_to_dict(
        model_config_lib.ik_fields(model_config_lib.ik_convention(model_config))))
  check_can_write(directory, overwrite=overwrite)
  staging = directory.parent / f'.{directory.name}.saving'
  if jax.process_index() == 0:
    if staging.exists():
      staging.rmtree()
    staging.mkdir(parents=True)
  _sync('save_model start')
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(staging / VARIABLES_DIR, tree)
    checkpointer.wait_until_finished()
  if jax.process_index() == 0:
    (staging / CHECKSUMS_FILE).write_text(json.dumps(
        {k: integrity.tree_checksum(tree[k]) for k in CHECKSUMMED}))
    (staging / MODEL_CONFIG_FILE).write_text(
        json.dumps(model_config, indent=2, sort_keys=True))
    if train_config is not None:
      (staging / TRAIN_CONFIG_FILE).write_text(json.dumps(
          config_json.config_to_dict(train_config), indent=2, sort_keys=True))
    integrity.write_file_manifest(staging, only=(VARIABLES_DIR,))
    _commit(staging, directory)
  _sync('save_model commit')
  logging.info('Saved model to %s', directory)
  return directory


def load_model_config(directory: str | os.PathLike[str]
                      ) -> ml_collections.ConfigDict:
  """The model config of an exported model (JSON lists as tuples)."""
  path = epath.Path(directory) / MODEL_CONFIG_FILE
  if not path.exists():
    raise integrity.CheckpointNotFoundError(
        f'{path} not found: {directory} is not an exported model (expected '
        f'{MODEL_CONFIG_FILE} and {VARIABLES_DIR}/; make one with '
        '`python -m hybrik_jax.convert` or `python -m '
        'hybrik_jax.average_checkpoints`).')
  config = integrity.read_json(path)
  if not isinstance(config, Mapping):
    raise integrity.CorruptCheckpointError(path, 'not a JSON object')
  return config_json.dict_to_config(config)


def complete_model_config(model_config: ml_collections.ConfigDict,
                          source: Any = 'model') -> ml_collections.ConfigDict:
  """A model config with the IK fields that configs from before them lack.

  Such a checkpoint was decoded with the project's 'corrected' IK convention and
  the data's depth factor (2.2 m by default), so that is what is assumed, with a
  one-line note on stderr. Configs that have the fields come back unchanged.
  """
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


def local_abstract_tree(item_metadata: PyTree) -> PyTree:
  """ShapeDtypeStructs on the first local device for a saved tree's metadata."""
  sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  tree = getattr(item_metadata, 'tree', item_metadata)

  def to_abstract(m):
    return jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=sharding)

  return jax.tree.map(to_abstract, tree)


def load_model(directory: str | os.PathLike[str]
               ) -> tuple[dict[str, PyTree], ml_collections.ConfigDict]:
  """Reads an exported model.

  Args:
    directory: a directory written by `save_model`.

  Returns:
    (variables, model_config): variables = {'params', 'batch_stats'} as jax
    arrays on the first local device; model_config a ConfigDict (with the IK
    fields filled in for models exported before them: `complete_model_config`).

  Raises:
    CheckpointNotFoundError: not an exported model.
    CorruptCheckpointError: naming the file that cannot be read.
  """
  directory = epath.Path(directory).absolute()
  model_config = complete_model_config(load_model_config(directory), directory)
  try:  # the IK fields, checked once where the model config is read
    model_config_lib.ik_convention(model_config)
  except errors.InputError as e:
    raise errors.InputError(
        f'{directory / MODEL_CONFIG_FILE}: {e}') from None
  variables_dir = directory / VARIABLES_DIR
  if not variables_dir.exists():
    raise integrity.CheckpointNotFoundError(
        f'{variables_dir} not found: incomplete exported model.')
  integrity.verify_file_manifest(directory)
  try:
    with integrity.quiet_failed_restore(), \
         ocp.StandardCheckpointer() as checkpointer:
      metadata = checkpointer.metadata(variables_dir).item_metadata
      variables = checkpointer.restore(variables_dir,
                                       local_abstract_tree(metadata))
  except Exception as e:  # pylint: disable=broad-except
    # Orbax / TensorStore raise many types for unreadable bytes.
    raise integrity.CorruptCheckpointError(
        integrity.corrupt_item(variables_dir), e) from None
  checksums = directory / CHECKSUMS_FILE
  if checksums.exists():
    integrity.verify_checksums(variables, integrity.read_json(checksums),
                               CHECKSUMMED, variables_dir)
  variables = dict(variables)
  variables.setdefault('batch_stats', {})
  return variables, model_config


def check_variables_match(variables: Mapping[str, PyTree],
                          model_config: Mapping[str, Any],
                          where: str | os.PathLike[str]) -> None:
  """ConfigMismatchError unless `variables` fit the model of `model_config`.

  Compares names and shapes with the model's own (abstract) initialisation,
  so a mismatch is one line naming `where` instead of a Flax
  ScopeParamShapeError at the first forward pass.
  """
  if not isinstance(model_config, ml_collections.ConfigDict):
    model_config = config_json.dict_to_config(model_config)
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
    detail = ' '.join(str(e).split())[:200]
    raise ConfigMismatchError(
        f'{where}: its {MODEL_CONFIG_FILE} does not describe a model '
        f'({detail}).') from None
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
