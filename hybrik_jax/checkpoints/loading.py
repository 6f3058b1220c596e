"""What inference reads: an exported model or a training workdir's latest step."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from etils import epath
import ml_collections

from hybrik_jax import errors
from hybrik_jax.checkpoints import config_json
from hybrik_jax.checkpoints import integrity
from hybrik_jax.checkpoints import model_dir
from hybrik_jax.checkpoints import train_checkpoints
from hybrik_jax.models import config as model_config_lib

PyTree = Any


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


# A reader retries this many times when the step it was reading disappeared
# (the trainer removes old checkpoints while evaluate or demo reads one).
_VANISHED_RETRIES = 5


def _read_step(manager, path: str, step: int):
  """(meta, variables) of one committed step of a workdir."""
  meta = train_checkpoints.restore_meta(manager, step)
  model_dict = meta.get('model') or meta.get('model_config')
  if not model_dict:
    raise errors.InputError(
        f'checkpoint {path!r} step {step}: its metadata has no model '
        f'config (keys {sorted(meta)}).')
  return meta, train_checkpoints.restore_variables(manager, step)


def _superseded(path: str, step: int) -> bool:
  """Whether `step` is gone or no longer the newest committed step."""
  manager = train_checkpoints.open_for_reading(path)
  try:
    newest = train_checkpoints.latest_step(manager)
    return (not train_checkpoints.step_dir(manager, step).exists() or
            (newest is not None and newest > step))
  finally:
    manager.close()


def _load_from_workdir(path: str) -> InferenceModel:
  """The newest committed step of a training workdir (see load_for_inference).

  A step that vanishes or is superseded while it is read (the trainer's
  garbage collection) is not corrupt: the newest step is read instead, and
  the description says which step was evaluated.
  """
  vanished = []
  while True:
    manager = train_checkpoints.open_for_reading(path)
    try:
      step = train_checkpoints.latest_step(manager)
      if step is None:
        raise integrity.CheckpointNotFoundError(
            f'training workdir {path!r} has no committed checkpoint yet.')
      try:
        meta, variables = _read_step(manager, path, step)
      except (integrity.CorruptCheckpointError,
              integrity.CheckpointNotFoundError, OSError):
        if len(vanished) >= _VANISHED_RETRIES or not _superseded(path, step):
          raise
        vanished.append(step)
        continue
    finally:
      manager.close()
    break
  model_dict = meta.get('model') or meta.get('model_config')
  model_config = model_dir.complete_model_config(
      config_json.dict_to_config(model_dict), path)
  try:  # the IK fields, checked once where the model config is read
    model_config_lib.ik_convention(model_config)
  except errors.InputError as e:
    raise errors.InputError(
        f'{path} step {step} (its meta model config): {e}') from None
  model_dir.check_variables_match(variables, model_config,
                                  f'{path} step {step}')
  train_config = (config_json.dict_to_config(meta['config'])
                  if meta.get('config') else None)
  description = f'training workdir {path}, step {step}'
  if vanished:
    description += (f' (the trainer removed step '
                    f'{", ".join(map(str, vanished))} while it was read)')
  return InferenceModel(variables, model_config, description, train_config,
                        step)


def load_for_inference(path: str | os.PathLike[str]) -> InferenceModel:
  """Variables and configs of an exported model or a training workdir.

  Raises:
    CheckpointNotFoundError: `path` is neither (or has no committed
      checkpoint), saying what to do.
    CorruptCheckpointError: naming the file that cannot be read (never for a
      workdir step that the trainer removed while it was read: the newest
      step is read instead).
    ConfigMismatchError: the model config does not describe the weights.
    errors.InputError: a checkpoint whose metadata lacks the model config.
  """
  path = os.fspath(path)
  if not os.path.isdir(path):
    raise integrity.CheckpointNotFoundError(
        f'checkpoint {path!r} does not exist. Give an exported model directory '
        '(train on synthetic_humans with `python -m hybrik_jax.train`, or convert '
        'the published PyTorch weights with `python -m hybrik_jax.convert`) or a '
        'training workdir.')
  if model_dir.is_exported_model(path):
    variables, model_config = model_dir.load_model(path)
    model_dir.check_variables_match(variables, model_config, path)
    train_file = epath.Path(path) / model_dir.TRAIN_CONFIG_FILE
    train_config = (config_json.dict_to_config(integrity.read_json(train_file))
                    if train_file.exists() else None)
    return InferenceModel(variables, model_config, f'exported model {path}',
                          train_config)
  if train_checkpoints.is_workdir(path):
    return _load_from_workdir(path)
  raise integrity.CheckpointNotFoundError(
      f'{path!r} is neither an exported model (no {model_dir.MODEL_CONFIG_FILE} '
      f'and {model_dir.VARIABLES_DIR}/) nor a training workdir (no '
      f'{train_checkpoints.CHECKPOINTS_DIR}/).')
