"""Checkpoint integrity: file manifests, tree checksums, the errors they raise.

Orbax stores no checksum, so two layers are added around it:

* a **file manifest** (`files.json`: {relative path: [size, CRC-32]}) written
  once a checkpoint has committed and checked before Orbax reads a byte, so a
  truncated or bit-flipped file is named at once instead of failing (or, for
  array data, loading silently) deep inside an Orbax restore;
* **tree checksums** (`tree_checksum`: CRC-32 of a pytree's array bytes) saved
  with the arrays and compared after a restore, plus a non-finite check.

An Orbax restore that fails part way (a damaged checkpoint without a manifest)
leaves TensorStore callbacks that reach Orbax's closed event loop later and
print 'Event loop is closed' tracebacks; `quiet_failed_restore` keeps them off
the console for the duration of one restore call, and nothing is installed
for longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging as logging_lib
import os
import sys
import threading
import time
import warnings
import zlib
from typing import Any, Iterator, Mapping, Sequence

from etils import epath
import jax
import numpy as np

from hybrik_jax import errors

PyTree = Any

FILES_MANIFEST = 'files.json'  # {relative path: [size, crc32]} of a checkpoint


class CorruptCheckpointError(errors.InputError):
  """A checkpoint file cannot be read (truncated, bit-flipped, empty).

  Attributes:
    path: the file or directory that could not be read.
  """

  def __init__(self, path: str | os.PathLike[str], cause: BaseException | str):
    self.path = os.fspath(path)
    detail = ' '.join(str(cause).split())
    if len(detail) > 300:
      detail = detail[:300] + '...'
    super().__init__(
        f'{self.path} is corrupt or truncated and cannot be read ({detail}). '
        'Use another checkpoint, or re-create this one.')


class CheckpointNotFoundError(errors.InputError, FileNotFoundError):
  """No checkpoint (or no part of one) where one was expected."""


def read_json(path: epath.Path) -> Any:
  """json.loads of a file; CorruptCheckpointError naming it if it is not JSON."""
  text = path.read_text()
  try:
    return json.loads(text)
  except ValueError as e:
    raise CorruptCheckpointError(
        path, 'empty file' if not text.strip() else f'not valid JSON: {e}'
    ) from None


def corrupt_item(directory: epath.Path) -> epath.Path:
  """The Orbax item directory's file most likely at fault, for messages."""
  for name in ('_METADATA', 'manifest.ocdbt', '_CHECKPOINT_METADATA'):
    candidate = directory / name
    if candidate.exists():
      try:
        if name != 'manifest.ocdbt':
          json.loads(candidate.read_text())
      except (ValueError, UnicodeDecodeError):
        return candidate
  return directory


# ---------------------------------------------------------------------------
# Tree checksums.
# ---------------------------------------------------------------------------


def host_array(leaf) -> np.ndarray:
  """A leaf as a numpy array (this host's copy of a replicated jax.Array)."""
  if isinstance(leaf, jax.Array):
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      leaf = jax.random.key_data(leaf)
    return np.asarray(leaf.addressable_data(0))
  return np.asarray(leaf)


def tree_checksum(tree: PyTree) -> int:
  """CRC-32 of a pytree's array bytes, leaf by leaf in tree order.

  Saved with the arrays and compared after restoring: Orbax stores no
  checksum, so a flipped bit in the array data would otherwise load silently.
  """
  crc = 0
  for leaf in jax.tree.leaves(tree):
    x = np.ascontiguousarray(host_array(leaf))
    crc = zlib.crc32(str((x.dtype.str, x.shape)).encode(), crc)
    crc = zlib.crc32(x.view(np.uint8).reshape(-1) if x.size else b'', crc)
  return crc


def part(tree: PyTree, name: str) -> PyTree:
  """tree[name] of a dict, tree.name of a dataclass / struct."""
  return tree[name] if isinstance(tree, Mapping) else getattr(tree, name)


def verify_checksums(tree: PyTree, saved: Mapping[str, int] | None,
                     names: Sequence[str], path) -> None:
  """CorruptCheckpointError naming `path` if a restored part's checksum differs.

  Args:
    tree: the restored tree.
    saved: {name: crc} saved with it ('state' is the whole tree), or None
      (older checkpoints carry none: nothing is checked).
    names: which parts to check.
    path: what to name in the error.
  """
  for name in names:
    if not saved or name not in saved:
      continue
    tree_part = tree if name == 'state' else part(tree, name)
    if tree_checksum(tree_part) != saved[name]:
      raise CorruptCheckpointError(
          path, f'the {name} arrays do not match the checksum saved with them '
          '(flipped or overwritten bytes)')


def check_finite(tree: PyTree, path) -> None:
  """CorruptCheckpointError naming `path` if a float array is not finite."""
  for key, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    x = host_array(leaf)
    if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
      raise CorruptCheckpointError(
          path, f'{jax.tree_util.keystr(key)} holds non-finite values')


# ---------------------------------------------------------------------------
# File manifests.
# ---------------------------------------------------------------------------


def _file_crc(path: str | os.PathLike[str]) -> int:
  """CRC-32 of a file's bytes, read in 16 MiB blocks."""
  crc = 0
  with open(path, 'rb') as f:
    while block := f.read(1 << 24):
      crc = zlib.crc32(block, crc)
  return crc


def _files_under(directory: epath.Path, only: Sequence[str] | None
                 ) -> list[str]:
  """Relative paths of the files under `directory` (or its `only` entries)."""
  files = []
  for root, _, names in os.walk(directory):
    for name in names:
      rel = os.path.relpath(os.path.join(root, name), directory)
      if rel == FILES_MANIFEST or rel.startswith(f'.{FILES_MANIFEST}'):
        continue
      if only is None or rel.split(os.sep)[0] in only:
        files.append(rel)
  return sorted(files)


def write_file_manifest(directory: str | os.PathLike[str],
                        only: Sequence[str] | None = None) -> None:
  """Writes DIR/files.json: {relative path: [size, crc32]} of each file.

  Call only on a committed checkpoint (its files no longer change). Written to
  a temporary name and renamed, so a reader never sees half a manifest.

  Args:
    directory: the checkpoint directory.
    only: list only the files under these top-level entries (default: all).
  """
  directory = epath.Path(directory)
  manifest = {rel: [os.path.getsize(directory / rel), _file_crc(directory / rel)]
              for rel in _files_under(directory, only)}
  tmp = directory / f'.{FILES_MANIFEST}.tmp'
  tmp.write_text(json.dumps(manifest, sort_keys=True))
  os.replace(tmp, directory / FILES_MANIFEST)


def verify_file_manifest(directory: str | os.PathLike[str]) -> None:
  """CorruptCheckpointError naming the first file that differs from files.json.

  A checkpoint without a manifest (killed before it was written, or from an
  older version) passes; its arrays are still checked against their tree
  checksums after the restore.
  """
  directory = epath.Path(directory)
  path = directory / FILES_MANIFEST
  if not path.exists():
    return
  manifest = read_json(path)
  if not isinstance(manifest, Mapping):
    raise CorruptCheckpointError(path, 'not a JSON object')
  for rel, expected in sorted(manifest.items()):
    file = directory / rel
    if not file.exists():
      raise CorruptCheckpointError(file, 'the file is missing')
    try:
      size, crc = expected
    except (TypeError, ValueError):
      raise CorruptCheckpointError(path, f'bad entry for {rel}') from None
    if os.path.getsize(file) != size:
      raise CorruptCheckpointError(
          file, f'{os.path.getsize(file)} bytes, {size} when it was saved')
    if _file_crc(file) != crc:
      raise CorruptCheckpointError(
          file, 'its CRC-32 differs from the one recorded when it was saved')


# ---------------------------------------------------------------------------
# The residue of a failed Orbax restore.
# ---------------------------------------------------------------------------

_CLOSED_LOOP = 'Event loop is closed'
_NEVER_RETRIEVED = 'exception was never retrieved'
_SETTLE_S = 0.3   # quiet this long after a failed restore before removing
_MAX_WAIT_S = 3.0  # ... but never wait longer than this


class _ResidueFilter(logging_lib.Filter):
  """Drops asyncio's 'Future exception was never retrieved' of a failed restore."""

  def __init__(self, on_drop):
    super().__init__()
    self._on_drop = on_drop

  def filter(self, record: logging_lib.LogRecord) -> bool:
    if _NEVER_RETRIEVED in str(record.msg):
      self._on_drop()
      return False
    return True


def _retrieve_orphaned_exceptions() -> None:
  """Marks the exceptions of finished futures of closed loops as retrieved.

  Nobody can await such a future any more; still referenced (by TensorStore),
  it would log 'exception was never retrieved' whenever it is collected,
  at the latest when the interpreter exits.
  """
  for obj in gc.get_objects():
    if not isinstance(obj, asyncio.Future):
      continue
    try:
      if (obj.done() and not obj.cancelled() and obj.get_loop().is_closed()):
        obj.exception()
    except Exception:  # pylint: disable=broad-except
      continue


@contextlib.contextmanager
def quiet_failed_restore() -> Iterator[None]:
  """Keeps the residue of a failed Orbax restore off the console, for one call.

  When TensorStore fails part way through a restore, Orbax closes its asyncio
  loop while other reads are still in flight; as they finish, their callbacks
  raise RuntimeError('Event loop is closed') (reported through
  `sys.unraisablehook`) and their futures are logged as 'exception was never
  retrieved' when collected: dozens of tracebacks after the one error that
  matters. While the block runs (and, if it raised, until that residue has
  stopped for a moment, at most a few seconds) exactly these reports are
  dropped; everything else reaches the previous hook and handlers. Both are
  put back when the block ends.

  Restores verify the file manifest first, so this matters only for a damaged
  checkpoint without one.
  """
  previous_hook = sys.unraisablehook
  last_drop = [time.monotonic()]
  lock = threading.Lock()

  def on_drop():
    with lock:
      last_drop[0] = time.monotonic()

  def hook(unraisable):
    exc = unraisable.exc_value
    if isinstance(exc, RuntimeError) and str(exc) == _CLOSED_LOOP:
      on_drop()
      return
    previous_hook(unraisable)

  log_filter = _ResidueFilter(on_drop)
  asyncio_logger = logging_lib.getLogger('asyncio')
  sys.unraisablehook = hook
  asyncio_logger.addFilter(log_filter)
  try:
    with warnings.catch_warnings():
      # Orbax's cancelled coroutines ("coroutine ... was never awaited").
      warnings.filterwarnings('ignore', message='coroutine .* was never awaited',
                              category=RuntimeWarning)
      try:
        yield
      except BaseException:
        on_drop()  # wait for quiet from now on
        start = time.monotonic()
        while time.monotonic() - start < _MAX_WAIT_S:
          gc.collect()  # the abandoned futures log now, while filtered
          with lock:
            quiet_for = time.monotonic() - last_drop[0]
          if quiet_for >= _SETTLE_S:
            break
          time.sleep(0.05)
        _retrieve_orphaned_exceptions()
        raise
  finally:
    asyncio_logger.removeFilter(log_filter)
    if sys.unraisablehook is hook:
      sys.unraisablehook = previous_hook
