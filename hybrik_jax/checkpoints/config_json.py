"""Configs as JSON: what checkpoints store of a model or training config."""

from __future__ import annotations

from typing import Any, Mapping

import ml_collections
import numpy as np


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
