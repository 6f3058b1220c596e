"""Suite-wide test settings.

The suite is dominated by XLA compile time on small CPUs. LLVM's -O0 backend
compiles the IK and train steps several times faster (48 s -> 6.5 s for a
train step on 2 cores) and leaves the numbers the tests check unchanged. Set
here, before any test module imports JAX, so it applies to every test the same
way; an explicit XLA_FLAGS setting from the caller wins.
"""

import os

if '--xla_backend_optimization_level' not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                             ' --xla_backend_optimization_level=0').strip()

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position


def tiny_variables(model, input_size: int, seed: int = 0):
  """Random variables of the right structure without compiling model.init.

  (jax.eval_shape only traces: seconds instead of a minute on a busy CPU.)
  """
  rngs = {k: jax.random.key(i) for i, k in enumerate(('params', 'dropout', 'patches'))}
  shapes = jax.eval_shape(lambda: model.init(
      rngs, jnp.zeros((1, input_size, input_size, 3)), train=False))
  rng = np.random.default_rng(seed)

  def fill(path, s):
    name = str(getattr(path[-1], 'key', path[-1]))
    if name in ('var', 'scale'):
      return np.ones(s.shape, s.dtype)
    if name in ('mean', 'bias'):
      return np.zeros(s.shape, s.dtype)
    fan_in = max(1, int(np.prod(s.shape[:-1])))
    return (rng.normal(size=s.shape) / np.sqrt(fan_in)).astype(s.dtype)

  return jax.tree_util.tree_map_with_path(fill, dict(shapes))


@pytest.fixture(scope='session')
def tiny_checkpoint(tmp_path_factory) -> str:
  """An exported tiny model (models.get_tiny_model_config(input_size=64)) with
  random weights: `model_dir.save_model` layout, shared by the suite."""
  from hybrik_jax.checkpoints import model_dir  # pylint: disable=g-import-not-at-top
  from hybrik_jax import models  # pylint: disable=g-import-not-at-top
  cfg = models.get_tiny_model_config(input_size=64)
  variables = tiny_variables(models.create_model(cfg), cfg.input_size)
  path = str(tmp_path_factory.mktemp('ckpt') / 'tiny_model')
  model_dir.save_model(path, variables, cfg)
  return path


@pytest.fixture(scope='session')
def whole_body_tiny_data(tmp_path_factory) -> str:
  """synthetic_whole_body/tiny (8 train, 4 validation, 64 px) built by prepare_data
  into a data_dir shared by the suite (seconds)."""
  from hybrik_jax import prepare_data  # pylint: disable=g-import-not-at-top
  path = str(tmp_path_factory.mktemp('whole_body_data'))
  prepare_data.build('synthetic_whole_body', data_dir=path, config='tiny')
  return path


# One persistent XLA compilation cache per test run. Many tests compile the same
# small programs (the tiny model's predict, eval and train steps) in fresh jit
# objects, in-process CLIs and subprocesses; with the cache each program is
# compiled once per run. The controller creates the directory and passes it to
# the xdist workers and to every subprocess through the environment; it is
# removed at the end, so every run starts cold. Tests of the cache itself (the
# trainer's own config.compilation_cache_dir) set and restore their own.
_CACHE_ENV = 'HYBRIK_JAX_TEST_XLA_CACHE'
_created_cache = []


def pytest_configure(config):  # pylint: disable=unused-argument
  import tempfile  # pylint: disable=g-import-not-at-top
  if os.environ.get('HYBRIK_JAX_TEST_NO_XLA_CACHE'):
    return
  path = os.environ.get(_CACHE_ENV)
  if not path:
    path = tempfile.mkdtemp(prefix='hybrik_jax_test_xla_cache_')
    os.environ[_CACHE_ENV] = path
    _created_cache.append(path)
  # Entries are written whole under a file lock (eviction on), so the two
  # workers never read each other's half-written files.
  values = {'jax_compilation_cache_dir': path,
            'jax_persistent_cache_min_compile_time_secs': 0.2,
            'jax_persistent_cache_min_entry_size_bytes': 0,
            'jax_compilation_cache_max_size': 8 * 2**30}
  for name, value in values.items():
    jax.config.update(name, value)
    os.environ[name.upper()] = str(value)  # JAX's own variable, for subprocesses


def pytest_unconfigure(config):  # pylint: disable=unused-argument
  import shutil  # pylint: disable=g-import-not-at-top
  for path in _created_cache:
    shutil.rmtree(path, ignore_errors=True)


# The longest test modules run first (measured: docs/PERFORMANCE.md, "Test
# suite"), so the two xdist workers do not end with one of them alone while the
# other idles. Each module's tests stay together and in their order (module
# fixtures are built once per worker).
_LONGEST_FIRST = ('test_multihost', 'test_train', 'test_preemption',
                  'test_train_multiprocess', 'test_smplx_training', 'test_export',
                  'test_smplx_demo', 'test_notebooks', 'test_benchmarks',
                  'test_camera_token', 'test_smplx', 'test_released_parity')


def pytest_collection_modifyitems(session, config, items):  # pylint: disable=unused-argument
  rank = {name: i for i, name in enumerate(_LONGEST_FIRST)}
  def key(item):
    module = item.nodeid.split('::')[0].rsplit('/', 1)[-1].removesuffix('.py')
    return rank.get(module, len(rank))
  items.sort(key=key)  # stable: the others keep their collection order
