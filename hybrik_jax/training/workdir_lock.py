"""One trainer per workdir: an OS-level lock on WORKDIR/.trainer.lock.

The lock is `fcntl.flock(LOCK_EX | LOCK_NB)` on a lock file that stays in the
workdir (it is never deleted, so two starters cannot race on creating it). The
kernel drops a flock when its process dies, SIGKILL included, so a local run
can never leave a stale lock. The file's body is JSON naming the holder
(host, pid, start time, command) for the refusal message; the holder empties
it on a clean exit.

Stale locks. On file systems whose flock is not shared between hosts
(some FUSE mounts such as gcsfuse; NFS without lock support, where flock
fails with ENOLCK and we fall back to the body alone) the body is the only
record. A body naming a live process on this host (same pid, created before the
body was written, so not a reused pid) is honoured (refused); one naming a
process that is gone from this host is stale and taken over with a warning. A body naming another host cannot be checked: when the OS lock was
granted we take it over with a warning that names the previous holder.

Remote workdirs (gs://, s3://: object stores without flock) are not locked;
`lock_workdir` logs a warning instead.

Several processes (jax.distributed): the workdir is shared by all processes
of one run, so only process 0 takes the lock; its verdict is broadcast, so
every process of a refused run stops with the same one-line error (a second
*run* has its own process 0, which finds the lock held).
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import socket
import sys
import time
from typing import Any

from absl import logging

from hybrik_jax import errors

LOCK_FILE = '.trainer.lock'


class WorkdirBusyError(errors.InputError):
  """Another live trainer holds the workdir."""


def _describe(holder: dict[str, Any]) -> str:
  started = holder.get('start_time')
  when = (datetime.datetime.fromtimestamp(started).isoformat(
      sep=' ', timespec='seconds') if isinstance(started, (int, float))
          else 'an unknown time')
  return (f'host {holder.get("host", "?")}, pid {holder.get("pid", "?")}, '
          f'started {when}')


def _holder_alive(holder: dict[str, Any]) -> bool:
  """Whether the body's process still runs on this host (not a reused pid)."""
  import psutil  # pylint: disable=g-import-not-at-top
  try:
    process = psutil.Process(int(holder.get('pid', -1)))
    created = process.create_time()
  except (psutil.Error, ValueError):
    return False
  started = holder.get('start_time')
  # A process created after the holder wrote its body is a reused pid.
  return not isinstance(started, (int, float)) or created <= started + 1.0


class WorkdirLock:
  """An exclusive lock on a workdir; a context manager.

      with WorkdirLock(workdir):
        train(...)

  Raises WorkdirBusyError (one line naming the holder) if another live
  process holds it.
  """

  def __init__(self, workdir: str | os.PathLike[str]):
    self.path = os.path.join(os.fspath(workdir), LOCK_FILE)
    self._fd: int | None = None

  def _busy(self, holder: dict[str, Any]) -> WorkdirBusyError:
    return WorkdirBusyError(
        f'{os.path.dirname(self.path)} is in use by another trainer '
        f'({_describe(holder)}; lock file {self.path}). Wait for it to '
        'finish, stop it, or use another --workdir.')

  def _read_body(self) -> dict[str, Any] | None:
    try:
      os.lseek(self._fd, 0, os.SEEK_SET)
      text = os.read(self._fd, 1 << 16).decode('utf-8', 'replace').strip()
      return json.loads(text) if text else None
    except (OSError, ValueError):
      return None

  def acquire(self) -> 'WorkdirLock':
    """Takes the lock or raises WorkdirBusyError."""
    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = self._read_body() or {}
      self._close()
      raise self._busy(holder) from None
    except OSError as e:
      if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
        self._close()
        raise
      logging.warning('%s: this file system does not support flock (%s); '
                      'relying on the lock file body alone.', self.path, e)
    holder = self._read_body()
    me = socket.gethostname()
    if holder and holder.get('pid') != os.getpid():
      same_host = holder.get('host') == me
      if same_host and _holder_alive(holder):
        self._close()
        raise self._busy(holder)
      why = ('its process is gone' if same_host else
             'it is on another host and the lock was free')
      message = (f'Taking over the stale lock of {_describe(holder)} on '
                 f'{os.path.dirname(self.path)} ({why}).')
      logging.info(message)
      print(f'WARNING: {message}', file=sys.stderr, flush=True)
    body = {'host': me, 'pid': os.getpid(), 'start_time': time.time(),
            'argv': sys.argv}
    os.ftruncate(self._fd, 0)
    os.pwrite(self._fd, json.dumps(body).encode(), 0)
    os.fsync(self._fd)
    return self

  def _close(self) -> None:
    if self._fd is not None:
      os.close(self._fd)  # also drops the flock
      self._fd = None

  def release(self) -> None:
    """Empties the body and drops the lock (the file stays)."""
    if self._fd is None:
      return
    try:
      os.ftruncate(self._fd, 0)
    except OSError:
      pass
    self._close()

  def __enter__(self) -> 'WorkdirLock':
    return self.acquire()

  def __exit__(self, *exc) -> None:
    self.release()


def lock_workdir(workdir: str | os.PathLike[str]) -> WorkdirLock | None:
  """Process 0 locks `workdir`; every process raises if that failed.

  Returns the held lock on process 0 (release it at the end), None elsewhere.
  A remote workdir (gs://..., no flock) is not locked: a warning says so.
  """
  import jax  # pylint: disable=g-import-not-at-top
  if '://' in os.fspath(workdir):
    logging.warning('%s is not a local path: it is not locked against a '
                    'second trainer (object stores have no flock).', workdir)
    return None
  lock, error = None, ''
  if jax.process_index() == 0:
    try:
      lock = WorkdirLock(workdir).acquire()
    except WorkdirBusyError as e:
      error = str(e)
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    import numpy as np  # pylint: disable=g-import-not-at-top
    busy = multihost_utils.broadcast_one_to_all(np.int32(bool(error)))
    if int(busy) and not error:
      error = (f'{workdir} is in use by another trainer (process 0 of this '
               'run found it locked).')
  if error:
    raise WorkdirBusyError(error)
  return lock
