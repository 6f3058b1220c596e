"""Tests of hybrik_jax.body.smpl's file I/O: load_smpl, save_smpl_pkl, smplx parity.

No SMPL file can be shipped here: the tests write files in the official layout from
the synthetic body, with chumpy objects pickled exactly as chumpy pickles them
(`Ch.__getstate__`: the instance __dict__ without `_parents` and `_cache`; the value
in `x`), by a stand-in `chumpy.ch.Ch` class registered in sys.modules only while
pickling.
"""

import contextlib
import pickle
import sys
import types
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse

from hybrik_jax.body import constants
from hybrik_jax.body import smpl
from hybrik_jax.body import smpl_io
from hybrik_jax.body import synthetic_body


@pytest.fixture(scope='module')
def model():
  return synthetic_body.synthetic_smpl_model()


@contextlib.contextmanager
def _fake_chumpy():
  """Registers modules chumpy / chumpy.ch with a class Ch that pickles as chumpy's."""

  class Ch:
    dterms = ['x']

    def __init__(self, x):
      d = self.__dict__
      d['_dirty_vars'] = set()
      d['_itr'] = None
      d['_parents'] = {}
      d['_cache'] = {'r': None, 'drs': {}}
      d['_make_dense'] = False
      d['_make_sparse'] = False
      d['_depends_on_deps'] = {}
      d['x'] = np.asarray(x, np.float64)

    def __getstate__(self):  # as chumpy.ch.Ch.__getstate__
      result = dict(self.__dict__)
      del result['_parents']
      del result['_cache']
      return result

  Ch.__module__ = 'chumpy.ch'
  Ch.__qualname__ = 'Ch'
  package = types.ModuleType('chumpy')
  module = types.ModuleType('chumpy.ch')
  module.Ch = Ch
  package.ch = module
  package.Ch = Ch
  saved = {k: sys.modules.get(k) for k in ('chumpy', 'chumpy.ch')}
  sys.modules['chumpy'] = package
  sys.modules['chumpy.ch'] = module
  try:
    yield Ch
  finally:
    for k, v in saved.items():
      if v is None:
        sys.modules.pop(k, None)
      else:
        sys.modules[k] = v


def _official_dict(model, ch=None, num_betas=10):
  """The keys and value types of basicModel_neutral_lbs_10_207_0_v1.0.0.pkl."""
  wrap = ch if ch is not None else np.asarray
  v = np.asarray(model.v_template, np.float64)
  shapedirs = np.asarray(model.shapedirs, np.float64)
  if num_betas > 10:
    extra = np.random.default_rng(0).normal(size=(6890, 3, num_betas - 10)) * 1e-3
    shapedirs = np.concatenate([shapedirs, extra], -1)
  j_reg = np.asarray(model.J_regressor, np.float64)
  kintree = np.stack([np.asarray(constants.SMPL_PARENTS), np.arange(24)])
  kintree[0, 0] = 4294967295
  return {
      'v_template': wrap(v),
      'shapedirs': wrap(shapedirs),
      'posedirs': np.asarray(model.posedirs, np.float64).T.reshape(6890, 3, 207),
      'J_regressor': scipy.sparse.csc_matrix(j_reg),
      'J_regressor_prior': scipy.sparse.csc_matrix(j_reg),
      'weights': wrap(np.asarray(model.lbs_weights, np.float64)),
      'weights_prior': wrap(np.asarray(model.lbs_weights, np.float64)),
      'kintree_table': kintree.astype(np.int64),
      'f': np.asarray(model.faces, np.uint32),
      'J': wrap(j_reg @ v),
      'vert_sym_idxs': np.arange(6890),
      'bs_type': 'lrotmin',
      'bs_style': 'lbs',
  }


def _pickle_old_style(data, path, protocol=2):
  """Pickles with chumpy stand-ins and the module paths of old numpy / scipy."""
  raw = pickle.dumps(data, protocol=protocol)
  raw = raw.replace(b'numpy._core.multiarray', b'numpy.core.multiarray')
  raw = raw.replace(b'scipy.sparse._csc\n', b'scipy.sparse.csc\n')
  path.write_bytes(raw)


def _assert_same_model(a, b, atol=0.0):
  for name in ('v_template', 'shapedirs', 'posedirs', 'J_regressor', 'lbs_weights',
               'faces'):
    np.testing.assert_allclose(np.asarray(getattr(a, name)),
                               np.asarray(getattr(b, name)), atol=atol, err_msg=name)
  assert a.parents == b.parents and a.leaf_vertex_ids == b.leaf_vertex_ids


# ---------------------------------------------------------------- loading


def test_official_pkl_with_chumpy_objects(model, tmp_path):
  path = tmp_path / 'basicModel_neutral_lbs_10_207_0_v1.0.0.pkl'
  for protocol in (0, 2):
    with _fake_chumpy() as ch:
      data = _official_dict(model, ch)
      _pickle_old_style(data, path, protocol)
    assert b'chumpy.ch' in path.read_bytes()
    assert 'chumpy' not in sys.modules or not hasattr(sys.modules['chumpy'], 'Ch')
    # The stand-in really pickles like chumpy: plain unpickling needs chumpy.
    with pytest.raises(ModuleNotFoundError, match='chumpy'):
      pickle.loads(path.read_bytes(), encoding='latin1')
    with warnings.catch_warnings():
      warnings.simplefilter('ignore')
      loaded = smpl_io.load_smpl(path, h36m_regressor=np.asarray(model.J_regressor_h36m))
    _assert_same_model(loaded, model, atol=1e-7)
    np.testing.assert_allclose(loaded.J_regressor_h36m, model.J_regressor_h36m,
                               atol=1e-7)
    assert loaded.v_template.dtype == jnp.float32
    assert loaded.faces.dtype == jnp.int32


def test_smpl_neutral_like_pkl_300_betas(model, tmp_path):
  """SMPL_NEUTRAL.pkl (v1.1): 300 shape components, plain weights; first 10 used."""
  path = tmp_path / 'SMPL_NEUTRAL.pkl'
  with _fake_chumpy() as ch:
    data = _official_dict(model, ch, num_betas=300)
    data['weights'] = np.asarray(model.lbs_weights, np.float64)
    _pickle_old_style(data, path, protocol=2)
  h36m_path = tmp_path / 'J_regressor_h36m.npy'
  np.save(h36m_path, np.asarray(model.J_regressor_h36m, np.float64))
  loaded = smpl_io.load_smpl(path, h36m_regressor=h36m_path, dtype=jnp.float32)
  _assert_same_model(loaded, model, atol=1e-7)
  np.testing.assert_allclose(loaded.J_regressor_h36m, model.J_regressor_h36m,
                             atol=1e-7)


def test_npz_conversion(model, tmp_path):
  path = tmp_path / 'SMPL_FEMALE.npz'
  data = _official_dict(model)
  data['J_regressor'] = data['J_regressor'].toarray()
  del data['J_regressor_prior'], data['bs_type'], data['bs_style']
  np.savez(path, **data)
  with pytest.warns(UserWarning, match='J_regressor_h36m'):
    smpl_io._warned_h36m = False  # pylint: disable=protected-access
    loaded = smpl_io.load_smpl(path)
  _assert_same_model(loaded, model, atol=1e-7)
  # Without a regressor: the documented approximation, with convex rows.
  approx = np.asarray(loaded.J_regressor_h36m, np.float64)
  np.testing.assert_allclose(approx, smpl_io.approximate_h36m_regressor(
      np.asarray(model.J_regressor)), atol=1e-6)
  np.testing.assert_allclose(approx.sum(1), 1.0, atol=1e-5)
  assert approx.min() >= 0
  joints = np.asarray(model.J_regressor) @ np.asarray(model.v_template)
  h36m = approx @ np.asarray(model.v_template)
  np.testing.assert_allclose(h36m[constants.H36M_JOINT_NAMES.index('left_knee')],
                             joints[4], atol=1e-5)
  # The warning comes once.
  with warnings.catch_warnings():
    warnings.simplefilter('error')
    smpl_io.load_smpl(path)


def test_save_smpl_pkl_roundtrip(model, tmp_path):
  path = tmp_path / 'synthetic.pkl'
  smpl_io.save_smpl_pkl(model, path)
  with open(path, 'rb') as f:
    data = pickle.load(f, encoding='latin1')  # plain objects: no chumpy needed
  assert scipy.sparse.issparse(data['J_regressor'])
  assert data['posedirs'].shape == (6890, 3, 207)
  assert data['kintree_table'].shape == (2, 24)
  assert data['f'].dtype == np.uint32
  assert data['bs_type'] == 'lrotmin' and data['bs_style'] == 'lbs'
  loaded = smpl_io.load_smpl(path)
  _assert_same_model(loaded, model)
  np.testing.assert_array_equal(loaded.J_regressor_h36m, model.J_regressor_h36m)


# ---------------------------------------------------------------- errors


def _expect_error(path, *fragments, **kwargs):
  with pytest.raises(smpl_io.SMPLFileError) as info:
    smpl_io.load_smpl(path, **kwargs)
  message = str(info.value)
  assert str(path) in message
  assert smpl_io.SMPL_SITE in message and 'smpl.is.tue.mpg.de' in message
  for fragment in fragments:
    assert fragment in message, message
  assert isinstance(info.value, ValueError)


def test_missing_file(tmp_path):
  _expect_error(tmp_path / 'SMPL_NEUTRAL.pkl', 'does not exist')
  _expect_error(tmp_path, 'directory')


def test_truncated_and_garbage_files(model, tmp_path):
  good = tmp_path / 'good.pkl'
  smpl_io.save_smpl_pkl(model, good)
  raw = good.read_bytes()
  truncated = tmp_path / 'truncated.pkl'
  truncated.write_bytes(raw[:len(raw) // 2])
  _expect_error(truncated, 'truncated')
  empty = tmp_path / 'empty.pkl'
  empty.write_bytes(b'')
  _expect_error(empty, 'empty')
  garbage = tmp_path / 'garbage.pkl'
  garbage.write_bytes(b'this is not a pickle at all')
  _expect_error(garbage, 'cannot unpickle')
  evil = tmp_path / 'evil.pkl'
  evil.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
  _expect_error(evil, 'refusing to load os.system')
  not_dict = tmp_path / 'list.pkl'
  not_dict.write_bytes(pickle.dumps([1, 2, 3]))
  _expect_error(not_dict, 'list')
  npz = tmp_path / 'model.npz'
  np.savez(npz, v_template=np.zeros((6890, 3)))
  raw = npz.read_bytes()
  npz.write_bytes(raw[:len(raw) - 40])
  _expect_error(npz, '.npz')


def test_missing_keys_and_wrong_shapes(model, tmp_path):
  base = _official_dict(model)
  path = tmp_path / 'bad.pkl'

  def write(**changes):
    data = dict(base)
    for k, v in changes.items():
      if v is None:
        del data[k]
      else:
        data[k] = v
    path.write_bytes(pickle.dumps(data, protocol=2))

  write(shapedirs=None, weights=None)
  _expect_error(path, 'missing key', 'shapedirs', 'weights')
  write(v_template=np.zeros((6890, 2)))
  _expect_error(path, "'v_template'", '(6890, 2)', '(6890, 3)')
  write(J_regressor=scipy.sparse.csc_matrix(np.zeros((17, 6890))))
  _expect_error(path, "'J_regressor'", '(24, 6890)')
  write(posedirs=np.zeros((6890, 3, 200)))
  _expect_error(path, "'posedirs'")
  write(shapedirs=np.zeros((6890, 3, 5)))
  _expect_error(path, 'shape components')
  write(f=np.full((13776, 3), 7000, np.uint32))
  _expect_error(path, "'f'")
  kintree = base['kintree_table'].copy()
  kintree[0, 5] = 3
  write(kintree_table=kintree)
  _expect_error(path, 'kintree_table', 'parents')
  write(weights=np.full((6890, 24), np.nan))
  _expect_error(path, 'non-finite')
  write(weights=np.zeros((6890, 24)))  # would collapse the mesh to a point
  _expect_error(path, 'skinning', 'do not sum to 1')
  smpl_io.save_smpl_pkl(model, path)
  with pytest.raises(smpl_io.SMPLFileError, match='J_regressor_h36m.npy'):
    smpl_io.load_smpl(path, h36m_regressor=tmp_path / 'J_regressor_h36m.npy')
  with pytest.raises(smpl_io.SMPLFileError, match=r'\(17, 6890\)'):
    smpl_io.load_smpl(path, h36m_regressor=np.zeros((24, 6890)))


# ---------------------------------------------------------------- smplx parity


def test_parity_with_smplx(model, tmp_path):
  """smplx.SMPL on the written pkl == forward (vertices, 24 joints)."""
  import torch  # pylint: disable=g-import-not-at-top
  import smplx  # pylint: disable=g-import-not-at-top
  path = tmp_path / 'SMPL_NEUTRAL.pkl'
  smpl_io.save_smpl_pkl(model, path)
  batch = 3
  rng = np.random.default_rng(0)
  betas = rng.normal(size=(batch, 10))
  pose = rng.normal(size=(batch, 24, 3)) * 0.6
  transl = rng.normal(size=(batch, 3))
  body = smplx.SMPL(model_path=str(path), batch_size=batch, dtype=torch.float64)
  with torch.no_grad():
    ref = body(betas=torch.tensor(betas), global_orient=torch.tensor(pose[:, 0]),
               body_pose=torch.tensor(pose[:, 1:].reshape(batch, -1)),
               transl=torch.tensor(transl))
  ref_vertices = ref.vertices.numpy()
  ref_joints = ref.joints[:, :24].numpy()
  with jax.enable_x64(True):
    m64 = smpl_io.load_smpl(path, dtype=jnp.float64)
    out = jax.jit(smpl.forward)(m64, jnp.asarray(betas), jnp.asarray(pose),
                                jnp.asarray(transl))
    assert out.vertices.dtype == jnp.float64
    # smplx's Rodrigues adds 1e-8 to each axis-angle: differences of ~1e-9 m.
    np.testing.assert_allclose(out.vertices, ref_vertices, atol=1e-7)
    np.testing.assert_allclose(out.joints, ref_joints, atol=1e-7)
  out32 = jax.jit(smpl.forward)(model, jnp.asarray(betas, jnp.float32),
                                jnp.asarray(pose, jnp.float32),
                                jnp.asarray(transl, jnp.float32))
  assert np.abs(np.asarray(out32.vertices) - ref_vertices).max() < 1e-5
  assert np.abs(np.asarray(out32.joints) - ref_joints).max() < 1e-5
