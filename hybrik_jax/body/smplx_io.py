"""Reading SMPL-X model files safely (no chumpy, no pickle code execution).

`load_smplx` reads SMPLX_{NEUTRAL,MALE,FEMALE}.npz / .pkl (v1.0: shapedirs with
10 shape + 10 expression components; v1.1: 300 + 100) and, optionally, the kid
template (smplx_kid_template.npy, as HybrIK-X and the smplx package's
`age='kid'`) into a `smplx.SMPLXModel`. .npz keys that need pickle (the files'
dicts such as part2num) are skipped; .pkl files go through `smpl_io`'s safe
unpickler (numpy / scipy / chumpy stand-ins only).
"""

from __future__ import annotations

import io
import os
import zipfile

import jax.numpy as jnp
import numpy as np
import scipy.sparse

from hybrik_jax import errors
from hybrik_jax.body import smpl_io
from hybrik_jax.body import smplx_constants as xc
from hybrik_jax.body.smplx import SMPLXModel

SMPLX_SITE = 'https://smpl-x.is.tue.mpg.de'


class SMPLXFileError(errors.InputError):
  """An SMPL-X model (or kid template) file is missing, truncated or malformed."""


def _file_error(path, what: str) -> SMPLXFileError:
  return SMPLXFileError(
      f'SMPL-X model file {os.fspath(path)!r}: {what}. Use an official SMPL-X model '
      f'file (SMPLX_NEUTRAL.npz or .pkl, v1.0 or v1.1), obtained after registration '
      f'and under its licence from {SMPLX_SITE}.')


_REQUIRED_KEYS = ('v_template', 'shapedirs', 'posedirs', 'J_regressor', 'weights',
                  'kintree_table', 'f', 'hands_componentsl', 'hands_componentsr',
                  'hands_meanl', 'hands_meanr')
_OPTIONAL_KEYS = ('lmk_faces_idx', 'lmk_bary_coords')


def _read_dict(path) -> dict:
  if not os.path.exists(path):
    raise _file_error(path, 'the file does not exist')
  if os.path.isdir(path):
    raise _file_error(path, 'this is a directory, give the model file itself')
  with open(path, 'rb') as f:
    raw = f.read()
  if not raw:
    raise _file_error(path, 'the file is empty')
  if raw[:4] == b'PK\x03\x04':
    try:
      with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        out = {}
        for key in npz.files:
          if key in _REQUIRED_KEYS + _OPTIONAL_KEYS:
            out[key] = npz[key]  # object arrays (pickled) here raise ValueError
        return out
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
      raise _file_error(path, f'cannot read it as .npz ({type(e).__name__}: {e}); '
                              'it may be truncated or corrupted') from e
  try:
    data = smpl_io.SafeUnpickler(io.BytesIO(raw), encoding='latin1').load()
  except Exception as e:  # pylint: disable=broad-except
    raise _file_error(path, f'cannot unpickle it ({type(e).__name__}: {e}); it may '
                            'be truncated, corrupted or not an SMPL-X pickle') from e
  if not isinstance(data, dict):
    raise _file_error(path, f'it holds a {type(data).__name__}, not a dict of arrays')
  try:
    return {k: smpl_io.plain_value(v) for k, v in data.items()
            if k in _REQUIRED_KEYS + _OPTIONAL_KEYS}
  except Exception as e:  # pylint: disable=broad-except
    raise _file_error(path, f'cannot convert its values to arrays ({e})') from e


def _dense(value) -> np.ndarray:
  if scipy.sparse.issparse(value):
    return np.asarray(value.toarray())
  return np.asarray(value)


def load_smplx(path, kid_template=None, num_betas: int = xc.NUM_BETAS,
               num_expression: int = xc.NUM_EXPRESSION,
               dtype=jnp.float32) -> SMPLXModel:
  """Reads an SMPL-X model file (and optionally a kid template) into an SMPLXModel.

  The shape / expression components are chosen as the smplx package does: with
  fewer than 400 components in 'shapedirs' (v1.0), betas are components [0,
  min(num_betas, 10)) and expression [10, 10 + min(num_expression, 10)); else
  [0, num_betas) and [300, 300 + num_expression).

  Args:
    path: the .npz or .pkl file.
    kid_template: optional path to the (10475, 3) kid template .npy (or the
      array): the model gains `kid_dir` = (template - its mean) - v_template, the
      extra last beta's direction.
    num_betas: shape components to keep.
    num_expression: expression components to keep.
    dtype: float dtype of the arrays.

  Raises:
    SMPLXFileError (an InputError): a missing, truncated or malformed file; the
      message names the file, the problem and where SMPL-X is obtained.
  """
  return model_from_arrays(_read_dict(path), kid_template, num_betas,
                           num_expression, dtype, source=path)


def model_from_arrays(data: dict, kid_template=None, num_betas: int = xc.NUM_BETAS,
                      num_expression: int = xc.NUM_EXPRESSION, dtype=jnp.float32,
                      source='<arrays>') -> SMPLXModel:
  """`load_smplx` on a dict of arrays in the file's key layout (`source` names it)."""
  path = source
  missing = [k for k in _REQUIRED_KEYS if k not in data]
  if missing:
    raise _file_error(path, f'missing key(s) {missing}; found {sorted(data)}')
  arrays = {k: _dense(v) for k, v in data.items()}
  nv, nj = xc.NUM_VERTICES, xc.NUM_JOINTS

  def expect(key, shape):
    arr = arrays[key]
    ok = arr.ndim == len(shape) and all(
        e is None or e == s for e, s in zip(shape, arr.shape))
    if not ok:
      want = '(' + ', '.join('n' if e is None else str(e) for e in shape) + ')'
      raise _file_error(path, f'{key!r} has shape {arr.shape}, expected {want}')

  expect('v_template', (nv, 3))
  expect('shapedirs', (nv, 3, None))
  expect('posedirs', (nv, 3, xc.NUM_POSE_FEATURES))
  expect('J_regressor', (nj, nv))
  expect('weights', (nv, nj))
  expect('kintree_table', (2, nj))
  expect('f', (xc.NUM_FACES, 3))
  for key in ('hands_componentsl', 'hands_componentsr'):
    expect(key, (None, 45))
  for key in ('hands_meanl', 'hands_meanr'):
    expect(key, (45,))
  parents = arrays['kintree_table'][0].astype(np.int64)
  if tuple(parents[1:]) != xc.SMPLX_PARENTS[1:]:
    raise _file_error(path, f"kintree_table[0] (parents) is {parents.tolist()}, not "
                            "SMPL-X's")
  for key in ('v_template', 'shapedirs', 'posedirs', 'J_regressor', 'weights'):
    if not np.all(np.isfinite(arrays[key].astype(np.float64))):
      raise _file_error(path, f'{key!r} has non-finite values')
  faces = arrays['f'].astype(np.int64)
  if faces.min() < 0 or faces.max() >= nv:
    raise _file_error(path, f"'f' has vertex indices outside [0, {nv})")

  sd = arrays['shapedirs']
  if sd.shape[2] < xc.SHAPE_SPACE_DIM + xc.EXPRESSION_SPACE_DIM:
    nb, ne = min(num_betas, xc.NUM_BETAS), min(num_expression, xc.NUM_EXPRESSION)
    expr_start = xc.NUM_BETAS
  else:
    nb = min(num_betas, xc.SHAPE_SPACE_DIM)
    ne = min(num_expression, xc.EXPRESSION_SPACE_DIM)
    expr_start = xc.SHAPE_SPACE_DIM
  if sd.shape[2] < expr_start + ne:
    raise _file_error(path, f"'shapedirs' has {sd.shape[2]} components, expected "
                            f'{xc.NUM_BETAS + xc.NUM_EXPRESSION} (10 shape + 10 '
                            'expression) or 400 (300 + 100)')
  v_template = arrays['v_template'].astype(np.float64)
  kid_dir = None
  if kid_template is not None:
    if isinstance(kid_template, (str, os.PathLike)):
      if not os.path.exists(kid_template):
        raise SMPLXFileError(f'kid template file {os.fspath(kid_template)!r} does not '
                             'exist (smplx_kid_template.npy, (10475, 3))')
      try:
        kid = np.load(kid_template, allow_pickle=False)
      except Exception as e:  # pylint: disable=broad-except
        raise SMPLXFileError(f'kid template file {os.fspath(kid_template)!r}: cannot '
                             f'read it as .npy ({type(e).__name__}: {e})') from e
    else:
      kid = np.asarray(kid_template)
    if kid.shape != (nv, 3):
      raise SMPLXFileError(f'the kid template must have shape ({nv}, 3), got '
                           f'{kid.shape}')
    kid = kid.astype(np.float64)
    kid_dir = jnp.asarray(kid - kid.mean(0) - v_template, dtype)

  n_comp_l = arrays['hands_componentsl'].shape[0]
  n_comp_r = arrays['hands_componentsr'].shape[0]
  lmk_faces = arrays.get('lmk_faces_idx', np.zeros((0,), np.int64))
  lmk_bary = arrays.get('lmk_bary_coords', np.zeros((0, 3)))
  return SMPLXModel(
      v_template=jnp.asarray(v_template, dtype),
      shapedirs=jnp.asarray(sd[:, :, :nb], dtype),
      expr_dirs=jnp.asarray(sd[:, :, expr_start:expr_start + ne], dtype),
      kid_dir=kid_dir,
      posedirs=jnp.asarray(arrays['posedirs'].reshape(-1, xc.NUM_POSE_FEATURES).T,
                           dtype),
      J_regressor=jnp.asarray(arrays['J_regressor'], dtype),
      lbs_weights=jnp.asarray(arrays['weights'], dtype),
      faces=jnp.asarray(faces, jnp.int32),
      hands_components_l=jnp.asarray(arrays['hands_componentsl'].reshape(n_comp_l, 45),
                                     dtype),
      hands_components_r=jnp.asarray(arrays['hands_componentsr'].reshape(n_comp_r, 45),
                                     dtype),
      hands_mean_l=jnp.asarray(arrays['hands_meanl'], dtype),
      hands_mean_r=jnp.asarray(arrays['hands_meanr'], dtype),
      lmk_faces_idx=jnp.asarray(np.asarray(lmk_faces).reshape(-1), jnp.int32),
      lmk_bary_coords=jnp.asarray(np.asarray(lmk_bary).reshape(-1, 3), dtype),
  )
