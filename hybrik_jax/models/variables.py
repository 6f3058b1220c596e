"""Variable trees ({'params', 'batch_stats'}) as flat {path: leaf} maps, merged.

Used to put an exported backbone or model into a freshly initialised one (the
trainer's `config.init`) and by the PyTorch converter.
"""

from typing import Any, Mapping

import jax.numpy as jnp
import numpy as np

from hybrik_jax import errors

Path = tuple[str, ...]


class VariablesMismatchError(errors.InputError):
  """Variables that do not fit the tree they are merged into."""


def flatten(tree, prefix: Path = ()) -> dict[Path, Any]:
  """{path (tuple of keys): leaf} of a nested mapping."""
  if isinstance(tree, Mapping):
    out = {}
    for k, v in tree.items():
      out.update(flatten(v, prefix + (k,)))
    return out
  return {prefix: tree}


def unflatten(flat: Mapping[Path, Any]) -> dict:
  """The nested dict of a {path: leaf} map (`flatten`'s inverse)."""
  tree: dict = {}
  for path, value in flat.items():
    node = tree
    for k in path[:-1]:
      node = node.setdefault(k, {})
    node[path[-1]] = value
  return tree


def merge_variables(target: Mapping[str, Any], source: Mapping[str, Any]) -> dict:
  """`target` variables with every leaf that `source` has replaced.

  E.g. a freshly initialised full model and a converted ImageNet backbone.
  Leaves keep the target's dtype.

  Raises:
    VariablesMismatchError: a source leaf the target lacks, or of another
      shape (all of them named).
  """
  flat_target = flatten(target)
  flat_source = flatten(source)
  problems = []
  for path, value in flat_source.items():
    if path not in flat_target:
      problems.append(f'{"/".join(path)} is not in the target')
    elif np.shape(value) != np.shape(flat_target[path]):
      problems.append(f'{"/".join(path)}: {np.shape(value)} != {np.shape(flat_target[path])}')
  if problems:
    raise VariablesMismatchError('Cannot merge variables: ' + '; '.join(problems))
  merged = dict(flat_target)
  for path, value in flat_source.items():
    merged[path] = jnp.asarray(value, dtype=flat_target[path].dtype)
  return unflatten(merged)
