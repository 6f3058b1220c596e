"""Real trainer subprocesses: workdir lock, signals, corrupt checkpoints.

One sequence of `python -m hybrik_jax.train` runs on configs/test.py and a
freshly built synthetic_humans/tiny, sharing one workdir (and one XLA compile
cache, so only the first run compiles):

1. run A trains; run B on the same workdir is refused with one line naming
   A's host and pid; SIGTERM to A: it finishes the step, saves, exits 143.
2. the test copies A's checkpoint to a newer step and flips a byte of its
   array data; run C names that step and file (its files.json CRC), moves it
   to checkpoints_corrupt/ and resumes from A's; SIGINT to C: it saves and
   exits 130.
3. run D saves every step; SIGKILL: the newest checkpoint still loads (Orbax
   commits atomically), so at most the steps since it are lost.
4. run E takes over D's stale lock with a warning; two Ctrl-Cs abort at once
   (status 130, no new checkpoint).
No run prints a traceback.

No step waits on the clock: a signal is sent only once the trainer has
printed a line that comes after its signal handlers are installed ('steps per
epoch', 'Resumed from'), and the second Ctrl-C only once the trainer is held
at the stop's save (stop_signals.STOP_SAVE_GATE_ENV), so the outcome is the same on
an idle and on a loaded machine.
"""

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from hybrik_jax.checkpoints import train_checkpoints
from hybrik_jax.training import stop_signals

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
TIMEOUT_S = 600


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  from hybrik_jax import prepare_data  # pylint: disable=g-import-not-at-top
  path = tmp_path_factory.mktemp('data')
  prepare_data.build('synthetic_humans', data_dir=str(path), config='tiny')
  return str(path)


class _Run:
  """A trainer subprocess with its output in files."""

  def __init__(self, tmp_path, name, workdir, data_dir, env, *overrides):
    self.out = tmp_path / f'{name}.out'
    self.err = tmp_path / f'{name}.err'
    cmd = [sys.executable, '-m', 'hybrik_jax.train', '--config',
           os.path.join(REPO, 'configs', 'test.py'), f'--workdir={workdir}',
           f'--config.data.data_dir={data_dir}',
           '--config.num_train_steps=1000', '--config.steps_per_epoch=1000',
           '--config.checkpoint_every_steps=1000', *overrides]
    with open(self.out, 'w') as out, open(self.err, 'w') as err:
      self.process = subprocess.Popen(cmd, stdout=out, stderr=err, env=env,
                                      cwd=REPO)

  def wait(self) -> int:
    return self.process.wait(timeout=TIMEOUT_S)

  def stderr(self) -> str:
    return self.err.read_text()

  def stdout(self) -> str:
    return self.out.read_text()

  def last_line(self) -> str:
    lines = [l for l in self.stderr().splitlines() if l.strip()]
    return lines[-1] if lines else ''


def _wait_for(condition, run, what):
  deadline = time.time() + TIMEOUT_S
  while not condition():
    if run.process.poll() is not None:
      raise AssertionError(f'trainer exited ({run.process.returncode}) before '
                           f'{what}:\n{run.stderr()[-3000:]}')
    if time.time() > deadline:
      raise AssertionError(f'timed out waiting for {what}')
    time.sleep(0.2)


def _holds_lock(workdir, run):
  def check():
    try:
      body = json.loads((workdir / '.trainer.lock').read_text())
    except (OSError, ValueError):
      return False
    return body.get('pid') == run.process.pid
  return check


def _steps(workdir):
  return sorted(int(os.path.basename(p)) for p in
                glob.glob(str(workdir / 'checkpoints' / '*'))
                if os.path.basename(p).isdigit())


def _handlers_installed(run):
  """The trainer printed its first line after installing its signal handlers."""
  return lambda: 'steps per epoch' in run.stdout()


def _no_traceback(run):
  assert 'Traceback' not in run.stderr(), run.stderr()[-3000:]


def test_lock_signals_corrupt_checkpoint_and_kill(tmp_path, data_dir):
  workdir = tmp_path / 'work'
  env = dict(os.environ, PYTHONPATH=REPO,
             JAX_COMPILATION_CACHE_DIR=str(tmp_path / 'xla_cache'),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0')
  start = lambda name, *o: _Run(tmp_path, name, workdir, data_dir, env, *o)

  # 1. A holds the workdir; B is refused; SIGTERM stops A with a checkpoint.
  a = start('a')
  _wait_for(_holds_lock(workdir, a), a, 'the lock')
  b = start('b', '--config.seed=1')
  assert b.wait() == 2
  assert 'in use by another trainer' in b.last_line()
  assert f'pid {a.process.pid}' in b.last_line()
  assert f'host {socket.gethostname()}' in b.last_line()
  _no_traceback(b)
  _wait_for(_handlers_installed(a), a, 'the signal handlers')
  a.process.send_signal(signal.SIGTERM)
  assert a.wait() == 128 + signal.SIGTERM
  _no_traceback(a)
  assert a.last_line().startswith('Stopped by SIGTERM at step ')
  step_a = int(a.last_line().split('at step ')[1].split()[0])
  assert 1 <= step_a < 1000 and _steps(workdir) == [step_a]

  # 2. A newer checkpoint with a flipped byte is set aside, never deleted.
  bad = step_a + 1
  shutil.copytree(workdir / 'checkpoints' / str(step_a),
                  workdir / 'checkpoints' / str(bad))
  data_file = max(glob.glob(str(workdir / 'checkpoints' / str(bad) / 'state' /
                                'd' / '*')), key=os.path.getsize)
  with open(data_file, 'r+b') as f:
    f.seek(os.path.getsize(data_file) // 2)
    byte = f.read(1)
    f.seek(-1, os.SEEK_CUR)
    f.write(bytes([byte[0] ^ 0x10]))
  c = start('c')
  _wait_for(lambda: 'Resumed from' in c.stdout(), c, 'the resume')
  # Named by the file manifest before Orbax reads it, so no Orbax traceback.
  assert (f'checkpoint step {bad} is unreadable: {workdir}/checkpoints/{bad}/'
          f'state/d/{os.path.basename(data_file)} is corrupt') in c.stderr()
  assert f'Resumed from {workdir}/checkpoints/{step_a}' in c.stdout()
  assert (workdir / 'checkpoints_corrupt' / str(bad) / 'state').is_dir()
  c.process.send_signal(signal.SIGINT)
  assert c.wait() == 128 + signal.SIGINT
  _no_traceback(c)
  assert c.last_line().startswith('Stopped by SIGINT at step ')
  step_c = int(c.last_line().split('at step ')[1].split()[0])
  assert step_c > step_a and _steps(workdir)[-1] == step_c
  manager = train_checkpoints.create_checkpoint_manager(
      workdir, steps_per_epoch=1000, read_only=True)
  assert train_checkpoints.restore_meta(manager, step_c)['steps_per_epoch'] == 1000

  # 3. SIGKILL after a few per-step checkpoints: the newest one loads.
  d = start('d', '--config.checkpoint_every_steps=1')
  _wait_for(lambda: _steps(workdir)[-1] >= step_c + 2, d,
            'two new checkpoints')
  d.process.send_signal(signal.SIGKILL)
  assert d.wait() == -signal.SIGKILL
  newest = _steps(workdir)[-1]
  assert newest > step_c
  train_checkpoints.restore_variables(manager, newest)

  # 4. E takes over D's stale lock; a second Ctrl-C, sent while E is held at
  # the stop's save, aborts without saving.
  gate = tmp_path / 'stop_save_gate'
  e = _Run(tmp_path, 'e', workdir, data_dir,
           dict(env, **{stop_signals.STOP_SAVE_GATE_ENV: str(gate)}))
  _wait_for(_holds_lock(workdir, e), e, 'the lock')
  assert f'stale lock of host {socket.gethostname()}, pid {d.process.pid}' in (
      e.stderr())
  steps_before = _steps(workdir)
  _wait_for(_handlers_installed(e), e, 'the signal handlers')
  e.process.send_signal(signal.SIGINT)
  _wait_for(lambda: os.path.exists(f'{gate}.held'), e, 'the stop save')
  e.process.send_signal(signal.SIGINT)
  assert e.wait() == 130
  _no_traceback(e)
  assert 'aborting now' in e.last_line()
  assert _steps(workdir) == steps_before
