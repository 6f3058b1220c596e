"""hybrik_jax.training.workdir_lock: one holder, a one-line refusal, stale takeover."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from hybrik_jax.training import workdir_lock

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')


def test_second_holder_is_refused_and_stale_lock_taken_over(tmp_path, capsys):
  lock_file = tmp_path / workdir_lock.LOCK_FILE
  with workdir_lock.WorkdirLock(tmp_path):
    body = json.loads(lock_file.read_text())
    assert body['pid'] == os.getpid() and body['host'] == socket.gethostname()
    other = subprocess.run(
        [sys.executable, '-c', 'import sys; from hybrik_jax.training import '
         'workdir_lock as w; w.WorkdirLock(sys.argv[1]).acquire()',
         str(tmp_path)], capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=REPO))
    assert other.returncode != 0
    assert f'pid {os.getpid()}' in other.stderr and 'in use' in other.stderr
  assert lock_file.read_text() == ''  # released: body emptied, file kept
  # A body left by a process that is gone (a SIGKILLed trainer).
  gone = subprocess.Popen([sys.executable, '-c', 'pass'])
  gone.wait()
  lock_file.write_text(json.dumps({'host': socket.gethostname(),
                                   'pid': gone.pid, 'start_time': time.time()}))
  with workdir_lock.WorkdirLock(tmp_path):
    pass
  assert f'stale lock of host {socket.gethostname()}, pid {gone.pid}' in (
      capsys.readouterr().err)
  # A body naming this live process, on a file system whose flock did not
  # stop us, is honoured.
  lock_file.write_text(json.dumps({'host': socket.gethostname(),
                                   'pid': os.getppid(),
                                   'start_time': time.time()}))
  with pytest.raises(workdir_lock.WorkdirBusyError, match=f'pid {os.getppid()}'):
    workdir_lock.WorkdirLock(tmp_path).acquire()
