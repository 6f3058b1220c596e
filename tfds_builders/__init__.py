"""TFDS dataset builders of hybrik_jax, one folder each (the `tfds new` layout).

  synthetic_humans  rendered synthetic SMPL bodies, exact labels, no download
  synthetic_whole_body  rendered synthetic SMPL-X bodies (hands, face, kids), exact
                    labels, no download (the whole-body spec of data.features)
  h36m, pw3d, mpi_inf_3dhp, coco_keypoints  real datasets from files you download by hand
                    (each builder's README.md says which files go where)

Every builder stores the common example spec of `hybrik_jax.data.features`
(synthetic_whole_body: its whole-body spec, `SMPLX_SHAPES`).
Builders are imported lazily (by `hybrik_jax.prepare_data` or
`import tfds_builders.<name>`), so a missing optional builder costs nothing.
"""

import importlib
import sys
import types

# Dataset names that prepare_data knows; each is the package tfds_builders.<name>.
KNOWN_DATASETS = ('synthetic_humans', 'synthetic_whole_body', 'h36m', 'pw3d', 'mpi_inf_3dhp', 'coco_keypoints')


# Old dataset names, still accepted with a one-line deprecation message:
# `coco` is TFDS's own COCO (detection), so ours is `coco_keypoints`.
RENAMED = {'coco': 'coco_keypoints'}
_WARNED: set[str] = set()


def resolve_name(name: str) -> str:
  """A dataset name with a renamed base replaced: 'coco/x:1.0.0' -> 'coco_keypoints/x:1.0.0'.

  Prints one deprecation line to stderr (once per old name and process).
  """
  base = name.split('/')[0].split(':')[0]
  if base not in RENAMED:
    return name
  new = RENAMED[base]
  if base not in _WARNED:
    _WARNED.add(base)
    print(f'warning: dataset name {base!r} is deprecated, use {new!r} (TFDS\'s own '
          f'{base!r} is another dataset); reading {new!r}', file=sys.stderr, flush=True)
  return new + name[len(base):]


def import_builder_module(name: str) -> types.ModuleType:
  """Imports tfds_builders.<name> (which registers its Builder with TFDS).

  Raises:
    ModuleNotFoundError: with a message naming the missing builder folder.
  """
  try:
    return importlib.import_module(f'{__name__}.{name}')
  except ModuleNotFoundError as e:
    if e.name not in (f'{__name__}.{name}',):
      raise
    raise ModuleNotFoundError(
        f'No TFDS builder for dataset {name!r}: expected the folder '
        f'tfds_builders/{name}/ with {name}_dataset_builder.py (class Builder). '
        f'Known datasets: {", ".join(KNOWN_DATASETS)}.', name=e.name) from None
