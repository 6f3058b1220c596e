"""JAX's persistent compilation cache for a training run.

A restarted (preempted) run loads its compiled train and eval steps from disk
instead of compiling them again. `config.compilation_cache_dir`:
  'auto' (default)  JAX's own cache if one is set (JAX_COMPILATION_CACHE_DIR,
                    jax.config.jax_compilation_cache_dir), else WORKDIR/xla_cache;
  a relative path   inside the workdir;
  an absolute path  one cache shared between workdirs;
  ''                JAX's own settings, whatever they are (no cache if none).
`config.compilation_cache_min_compile_s`: compiles shorter than this are not
written (JAX's own minimum applies where JAX's cache is used). JAX keys each entry on the computation, the compile
options, the backend and the JAX / jaxlib version, so a stale entry is never
used. The cache is trusted code: keep it in a directory only you can write.
"""

import contextlib
import os
from typing import Iterator

from absl import logging
import jax
from jax.experimental.compilation_cache import compilation_cache as jax_cc

AUTO = 'auto'
DEFAULT_DIR = 'xla_cache'  # inside the workdir, for AUTO without JAX's own cache

_DIR = 'jax_compilation_cache_dir'
_MIN_TIME = 'jax_persistent_cache_min_compile_time_secs'
_MIN_SIZE = 'jax_persistent_cache_min_entry_size_bytes'


def _jax_cache_dir() -> str:
  return getattr(jax.config, _DIR) or ''


def cache_dir(setting: str, workdir: str | os.PathLike[str]) -> str:
  """The cache directory of `setting` (config.compilation_cache_dir): 'auto' is
  JAX's own cache if set, else WORKDIR/xla_cache; a relative path is inside
  `workdir`; '' is '' (JAX's settings untouched)."""
  if not setting:
    return ''
  if setting == AUTO:
    return _jax_cache_dir() or os.path.join(os.fspath(workdir), DEFAULT_DIR)
  if '://' in setting or os.path.isabs(setting):
    return setting
  return os.path.join(os.fspath(workdir), setting)


@contextlib.contextmanager
def persistent_cache(setting: str, workdir: str | os.PathLike[str],
                     min_compile_s: float) -> Iterator[str]:
  """Compiles inside use (and fill) the cache; yields its directory ('' off).

  Must be entered before the steps compile. JAX's previous settings are put
  back on exit, so later compiles of the same process (tests, notebooks) do not
  write into this workdir.
  """
  path = cache_dir(setting, workdir)
  if not path or path == _jax_cache_dir():  # off, or JAX's own cache already
    if path:
      logging.info('Persistent compilation cache: %s (JAX\'s own setting)', path)
    yield path
    return
  old = {k: getattr(jax.config, k) for k in (_DIR, _MIN_TIME, _MIN_SIZE)}
  if '://' not in path:
    os.makedirs(path, exist_ok=True)
  jax_cc.reset_cache()  # JAX opens its cache once, at the first compile
  jax.config.update(_DIR, path)
  jax.config.update(_MIN_TIME, float(min_compile_s))
  jax.config.update(_MIN_SIZE, 0)
  logging.info('Persistent compilation cache: %s (compiles of %.1f s or more)',
               path, min_compile_s)
  try:
    yield path
  finally:
    jax_cc.reset_cache()
    for key, value in old.items():
      jax.config.update(key, value)
