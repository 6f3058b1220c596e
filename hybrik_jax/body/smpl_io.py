"""Reading and writing SMPL model files, safely (no chumpy, no arbitrary pickles).

`load_smpl` reads the official files (pickles of chumpy objects, read here
without chumpy: only numpy / scipy / chumpy stand-ins may be named by the
pickle) and their .npz conversions into a `smpl.SMPLModel`; `save_smpl_pkl`
writes the official layout; `load_body_model` is the one place the trainer,
`evaluate` and `demo` get their body model.
"""

from __future__ import annotations

import io
import os
import pickle
import warnings
from typing import Any

import jax.numpy as jnp
import numpy as np
import scipy.sparse

from hybrik_jax import errors
from hybrik_jax.body import constants
from hybrik_jax.body.smpl import NUM_POSE_FEATURES
from hybrik_jax.body.smpl import SMPLModel

SMPL_SITE = 'https://smpl.is.tue.mpg.de'


# --------------------------------------------------------------------------------------
# Loading official SMPL files


class SMPLFileError(errors.InputError):
  """An SMPL model file is missing, truncated or malformed."""


def _file_error(path, what: str) -> SMPLFileError:
  return SMPLFileError(
      f'SMPL model file {os.fspath(path)!r}: {what}. Use an official SMPL model file '
      f'(e.g. basicModel_neutral_lbs_10_207_0_v1.0.0.pkl or SMPL_NEUTRAL.pkl, or an '
      f'.npz conversion with the same keys); SMPL is obtained, after registration and '
      f'under its licence, from {SMPL_SITE}.')


class _ChumpyStandIn:
  """Stands in for any chumpy class while unpickling; keeps the pickled state.

  chumpy's `Ch.__getstate__` pickles the instance `__dict__` (minus its caches);
  the value of a plain `Ch` is its `x` entry.
  """
  chumpy_class = 'chumpy'

  def __init__(self, *args, **kwargs):
    self.args, self.kwargs, self.state = args, kwargs, None

  def __setstate__(self, state):
    self.state = state

  def to_array(self) -> np.ndarray:
    state = self.state if isinstance(self.state, dict) else {}
    if 'x' in state:
      x = state['x']
      return x.to_array() if isinstance(x, _ChumpyStandIn) else np.asarray(x)
    if self.args:
      return np.asarray(self.args[0])
    raise ValueError(f'a chumpy object of class {self.chumpy_class} without a stored '
                     f'value (keys {sorted(state)})')


class _SparseStandIn:
  """Stands in for a pickled scipy.sparse matrix of any scipy version."""
  sparse_class = 'csc_matrix'

  def __init__(self, *args, **kwargs):
    self.state = None

  def __setstate__(self, state):
    self.state = state

  def to_sparse(self):
    s = self.state if isinstance(self.state, dict) else {}
    shape = tuple(s.get('_shape', s.get('shape', ())))
    fmt = self.sparse_class[:3]
    if fmt in ('csc', 'csr'):
      cls = scipy.sparse.csc_matrix if fmt == 'csc' else scipy.sparse.csr_matrix
      return cls((s['data'], s['indices'], s['indptr']), shape=shape)
    if fmt == 'coo':
      if 'coords' in s:
        row, col = s['coords']
      else:
        row, col = s['row'], s['col']
      return scipy.sparse.coo_matrix((s['data'], (row, col)), shape=shape)
    raise ValueError(f'unsupported sparse matrix class {self.sparse_class}')


_SAFE_BUILTINS = frozenset({
    'set', 'frozenset', 'object', 'slice', 'complex', 'bytearray', 'range', 'tuple',
    'list', 'dict', 'int', 'float', 'str', 'bytes', 'bool'})


class _SMPLUnpickler(pickle.Unpickler):
  """Unpickles SMPL files without chumpy or old numpy/scipy module paths.

  Only numpy, scipy, chumpy (as stand-ins) and plain builtin types may be named by
  the pickle; anything else (which could run code) is refused.
  """

  def find_class(self, module, name):
    if module == 'chumpy' or module.startswith('chumpy.'):
      return type(name, (_ChumpyStandIn,), {'chumpy_class': f'{module}.{name}'})
    if module.startswith('scipy.sparse') and ('matrix' in name or 'array' in name):
      return type(name, (_SparseStandIn,), {'sparse_class': name})
    if module.startswith('numpy.core'):
      module = 'numpy._core' + module[len('numpy.core'):]
    allowed = (
        module == 'numpy' or module.startswith(('numpy.', 'scipy.'))
        or (module in ('copy_reg', 'copyreg')
            and name in ('_reconstructor', '__newobj__', '__newobj_ex__'))
        or (module == '_codecs' and name == 'encode')
        or (module in ('builtins', '__builtin__') and name in _SAFE_BUILTINS))
    if not allowed:
      raise pickle.UnpicklingError(
          f'refusing to load {module}.{name}: not part of an SMPL model file')
    return super().find_class(module, name)


# The safe unpickler and stand-in conversion, shared with `smplx_io`.
SafeUnpickler = _SMPLUnpickler


def _plain(value):
  """Replaces chumpy / sparse stand-ins by numpy arrays / scipy matrices."""
  if isinstance(value, _ChumpyStandIn):
    return value.to_array()
  if isinstance(value, _SparseStandIn):
    return value.to_sparse()
  return value


def plain_value(value):
  """A value read by `SafeUnpickler` with chumpy / sparse stand-ins made plain."""
  return _plain(value)


def _dense(value) -> np.ndarray:
  if scipy.sparse.issparse(value):
    return np.asarray(value.toarray())
  return np.asarray(value)


def _read_smpl_dict(path) -> dict[str, Any]:
  """Reads an SMPL .pkl or .npz into a dict of plain numpy / scipy values."""
  if not os.path.exists(path):
    raise _file_error(path, 'the file does not exist')
  if os.path.isdir(path):
    raise _file_error(path, 'this is a directory, give the model file itself')
  with open(path, 'rb') as f:
    raw = f.read()
  if not raw:
    raise _file_error(path, 'the file is empty')
  if raw[:4] == b'PK\x03\x04':  # a zip, i.e. an .npz
    try:
      with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}
    except Exception as e:  # pylint: disable=broad-except
      raise _file_error(path, f'cannot read it as .npz ({type(e).__name__}: {e}); '
                              'it may be truncated or corrupted') from e
  try:
    data = _SMPLUnpickler(io.BytesIO(raw), encoding='latin1').load()
  except Exception as e:  # pylint: disable=broad-except
    raise _file_error(path, f'cannot unpickle it ({type(e).__name__}: {e}); it may '
                            'be truncated, corrupted or not an SMPL pickle') from e
  if not isinstance(data, dict):
    raise _file_error(path, f'it holds a {type(data).__name__}, not the dict of '
                            'arrays of an SMPL model')
  try:
    return {k: _plain(v) for k, v in data.items()}
  except Exception as e:  # pylint: disable=broad-except
    raise _file_error(path, f'cannot convert its values to arrays ({e})') from e


# How far a vertex's skinning weights may sum from 1 (float32 files: ~1e-7).
_SKINNING_SUM_TOLERANCE = 1e-3
_REQUIRED_KEYS = ('v_template', 'shapedirs', 'posedirs', 'J_regressor', 'weights',
                  'kintree_table', 'f')

_warned_h36m = False


def approximate_h36m_regressor(j_regressor: np.ndarray,
                               leaf_vertex_ids=constants.LEAF_VERTEX_IDS) -> np.ndarray:
  """A stand-in (17, 6890) H36M regressor built from SMPL's (24, 6890) J_regressor.

  Each H36M joint takes the row of the nearest SMPL joint: pelvis 0, hips 1/2,
  knees 4/5, ankles 7/8, torso = mean of spine1 (3) and spine2 (6), neck (thorax)
  12, nose 15 (head), head = mean of joint 15 and the head-top vertex
  (`leaf_vertex_ids[0]`), shoulders 16/17, elbows 18/19, wrists 20/21. Rows stay
  convex vertex weights. H36M numbers (MPJPE/PA-MPJPE on Human3.6M) need HybrIK's
  real `J_regressor_h36m.npy`.
  """
  j = np.asarray(j_regressor, np.float64)
  head_top = np.zeros(j.shape[1])
  head_top[leaf_vertex_ids[0]] = 1.0
  rows = [j[0], j[2], j[5], j[8], j[1], j[4], j[7], 0.5 * (j[3] + j[6]), j[12], j[15],
          0.5 * (j[15] + head_top), j[16], j[18], j[20], j[17], j[19], j[21]]
  return np.stack(rows)


def _load_h36m_regressor(h36m_regressor) -> np.ndarray:
  if isinstance(h36m_regressor, (str, os.PathLike)):
    path = h36m_regressor
    if not os.path.exists(path):
      raise SMPLFileError(
          f'H36M regressor file {os.fspath(path)!r} does not exist; it is HybrIK\'s '
          'J_regressor_h36m.npy (17, 6890), shipped with HybrIK\'s model files.')
    try:
      arr = np.load(path, allow_pickle=False)
      if isinstance(arr, np.lib.npyio.NpzFile):
        arr = arr[arr.files[0]]
    except Exception as e:  # pylint: disable=broad-except
      raise SMPLFileError(f'H36M regressor file {os.fspath(path)!r}: cannot read it '
                          f'as .npy ({type(e).__name__}: {e})') from e
  else:
    arr = _dense(h36m_regressor)
  arr = np.asarray(arr, np.float64)
  if arr.shape != (17, constants.NUM_VERTICES):
    raise SMPLFileError(f'h36m_regressor must have shape (17, 6890), got {arr.shape}')
  return arr


def load_smpl(path, h36m_regressor=None, dtype=jnp.float32) -> SMPLModel:
  """Reads an official SMPL model file into an SMPLModel, without chumpy.

  Reads basicModel_{neutral,f,m}_lbs_10_207_0_v1.0.0.pkl, SMPL_{NEUTRAL,MALE,
  FEMALE}.pkl (v1.0/v1.1, 10 or 300 shape components: the first 10 are used) and
  .npz conversions with the same keys. chumpy objects in the pickle become plain
  arrays, the scipy-sparse J_regressor a dense array.

  Args:
    path: the .pkl or .npz file.
    h36m_regressor: path to HybrIK's J_regressor_h36m.npy, or a (17, 6890) array.
      If None: the file's own 'J_regressor_h36m' key (written by `save_smpl_pkl`),
      else `approximate_h36m_regressor` with a one-time warning.
    dtype: float dtype of the arrays.

  Returns:
    The SMPLModel.

  Raises:
    SMPLFileError (a ValueError): the file is missing, truncated or malformed; the
      message names the file, the problem, and where SMPL is obtained.
  """
  global _warned_h36m
  data = _read_smpl_dict(path)
  missing = [k for k in _REQUIRED_KEYS if k not in data]
  if missing:
    raise _file_error(path, f'missing key(s) {missing}; found {sorted(data)}')
  nv, nj = constants.NUM_VERTICES, constants.NUM_JOINTS
  arrays = {}
  try:
    for key in _REQUIRED_KEYS:
      arrays[key] = _dense(data[key])
  except Exception as e:  # pylint: disable=broad-except
    raise _file_error(path, f'cannot convert {key!r} to an array ({e})') from e

  def expect(key, shape):
    arr = arrays[key]
    ok = arr.ndim == len(shape) and all(
        e is None or e == s for e, s in zip(shape, arr.shape))
    if not ok:
      want = '(' + ', '.join('n' if e is None else str(e) for e in shape) + ')'
      raise _file_error(path, f'{key!r} has shape {arr.shape}, expected {want}')

  expect('v_template', (nv, 3))
  expect('shapedirs', (nv, 3, None))
  if arrays['shapedirs'].shape[2] < constants.NUM_BETAS:
    raise _file_error(path, f"'shapedirs' has {arrays['shapedirs'].shape[2]} shape "
                            f'components, expected at least {constants.NUM_BETAS}')
  expect('posedirs', (nv, 3, NUM_POSE_FEATURES))
  expect('J_regressor', (nj, nv))
  expect('weights', (nv, nj))
  expect('kintree_table', (2, nj))
  expect('f', (constants.NUM_FACES, 3))
  parents = arrays['kintree_table'][0].astype(np.int64)
  if tuple(parents[1:]) != constants.SMPL_PARENTS[1:]:
    raise _file_error(path, f'kintree_table[0] (parents) is {parents.tolist()}, not '
                            f'SMPL\'s {list(constants.SMPL_PARENTS)}')
  for key in ('v_template', 'shapedirs', 'posedirs', 'J_regressor', 'weights'):
    if not np.all(np.isfinite(arrays[key].astype(np.float64))):
      raise _file_error(path, f'{key!r} has non-finite values')
  row_sums = arrays['weights'].astype(np.float64).sum(axis=1)
  off = np.flatnonzero(np.abs(row_sums - 1.0) > _SKINNING_SUM_TOLERANCE)
  if off.size:
    raise _file_error(
        path, f"'weights' (skinning) of {off.size} vertices do not sum to 1 "
              f'(vertex {off[0]}: {row_sums[off[0]]:.4g}); the mesh would collapse')
  faces = arrays['f'].astype(np.int64)
  if faces.min() < 0 or faces.max() >= nv:
    raise _file_error(path, f"'f' has vertex indices outside [0, {nv})")

  if h36m_regressor is not None:
    h36m = _load_h36m_regressor(h36m_regressor)
  elif 'J_regressor_h36m' in data:
    h36m = _dense(data['J_regressor_h36m']).astype(np.float64)
    if h36m.shape != (17, nv):
      raise _file_error(path, f"'J_regressor_h36m' has shape {h36m.shape}, expected "
                              '(17, 6890)')
  else:
    if not _warned_h36m:
      warnings.warn(
          'load_smpl: no H36M regressor given; using an approximation built from '
          'the SMPL J_regressor (approximate_h36m_regressor). Human3.6M numbers '
          '(MPJPE, PA-MPJPE) need HybrIK\'s J_regressor_h36m.npy.', stacklevel=2)
      _warned_h36m = True
    h36m = approximate_h36m_regressor(arrays['J_regressor'])

  posedirs = arrays['posedirs'].reshape(-1, NUM_POSE_FEATURES).T
  return SMPLModel(
      v_template=jnp.asarray(arrays['v_template'], dtype),
      shapedirs=jnp.asarray(arrays['shapedirs'][:, :, :constants.NUM_BETAS], dtype),
      posedirs=jnp.asarray(posedirs, dtype),
      J_regressor=jnp.asarray(arrays['J_regressor'], dtype),
      J_regressor_h36m=jnp.asarray(h36m, dtype),
      lbs_weights=jnp.asarray(arrays['weights'], dtype),
      faces=jnp.asarray(faces, jnp.int32),
  )


def save_smpl_pkl(model: SMPLModel, path) -> None:
  """Writes `model` in the official SMPL pickle layout (plain numpy / scipy values).

  Keys as basicModel_*_lbs_10_207_0_v1.0.0.pkl: v_template (6890, 3), shapedirs
  (6890, 3, 10), posedirs (6890, 3, 207), J_regressor (scipy.sparse csc (24, 6890)),
  weights (6890, 24), kintree_table (2, 24) (root parent 4294967295 as the official
  file), f (13776, 3) uint32, J (24, 3) rest joints, bs_type 'lrotmin', bs_style
  'lbs'; plus J_regressor_h36m (17, 6890), which official files lack. Readable by
  `smplx.SMPL(model_path=path)` and `load_smpl`.
  """
  v_template = np.asarray(model.v_template, np.float64)
  j_regressor = np.asarray(model.J_regressor, np.float64)
  nv = v_template.shape[0]
  kintree = np.stack([np.asarray(model.parents, np.int64),
                      np.arange(len(model.parents), dtype=np.int64)])
  kintree[0, 0] = 4294967295
  data = {
      'v_template': v_template,
      'shapedirs': np.asarray(model.shapedirs, np.float64),
      'posedirs': np.asarray(model.posedirs, np.float64).T.reshape(
          nv, 3, NUM_POSE_FEATURES),
      'J_regressor': scipy.sparse.csc_matrix(j_regressor),
      'weights': np.asarray(model.lbs_weights, np.float64),
      'kintree_table': kintree,
      'f': np.asarray(model.faces, np.uint32),
      'J': j_regressor @ v_template,
      'bs_type': 'lrotmin',
      'bs_style': 'lbs',
      'J_regressor_h36m': np.asarray(model.J_regressor_h36m, np.float64),
  }
  with open(path, 'wb') as f:
    pickle.dump(data, f, protocol=2)


def load_body_model(model_path: str | None, h36m_regressor_path: str | None = None,
                    *, dataset: str | None = None) -> tuple[SMPLModel, str]:
  """(SMPLModel, description): the given SMPL file, else the synthetic body.

  The one place the trainer, `evaluate` and `demo` get their body model.
  The synthetic body model is only right for synthetic_humans (and for models
  trained on it); the real benchmarks need the real neutral SMPL model, so for
  them (`dataset` a real benchmark's name) a missing file is an error;
  `dataset` None falls back to the synthetic body.

  Raises:
    FileNotFoundError: `model_path` given but missing.
    ValueError: no SMPL file for a real benchmark, saying where to get one.
  """
  if model_path:
    if not os.path.exists(model_path):
      raise FileNotFoundError(f'SMPL model file {model_path!r} not found')
    return (load_smpl(model_path, h36m_regressor_path or None),
            f'SMPL {os.path.basename(model_path)}')
  if dataset is None or dataset.split('/')[0].split(':')[0] == 'synthetic_humans':
    from hybrik_jax.body import synthetic_body  # pylint: disable=g-import-not-at-top
    return synthetic_body.synthetic_smpl_model(), 'synthetic body model'
  raise ValueError(
      f'evaluating on {dataset!r} needs the real SMPL body model: download '
      f'basicModel_neutral_lbs_10_207_0_v1.0.0.pkl ({SMPL_SITE}) and '
      "HybrIK's J_regressor_h36m.npy and pass --smpl PATH --h36m_regressor PATH "
      '(or set config.smpl.model_path / h36m_regressor_path).')
