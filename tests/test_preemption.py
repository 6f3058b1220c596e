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

import pytest

from hybrik_jax.checkpoints import train_checkpoints
from hybrik_jax.training import stop_signals
from trainer_runs import REPO, TrainerProcess, build_tiny_humans, steps, train_command, wait_for  # pylint: disable=g-bad-import-order


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return build_tiny_humans(tmp_path_factory)


def _holds_lock(workdir, run):
  def check():
    try:
      body = json.loads((workdir / '.trainer.lock').read_text())
    except (OSError, ValueError):
      return False
    return body.get('pid') == run.pid
  return check


def _handlers_installed(run):
  """The trainer printed its first line after installing its signal handlers."""
  return lambda: 'steps per epoch' in run.stdout()


def test_lock_signals_corrupt_checkpoint_and_kill(tmp_path, data_dir):
  workdir = tmp_path / 'work'
  # The runs compile once: they share the suite's compilation cache (conftest,
  # through JAX_COMPILATION_CACHE_DIR) or, without it, the workdir's
  # (config.compilation_cache_dir='auto').
  env = dict(os.environ, PYTHONPATH=REPO)
  def start(name, *overrides, env=env):
    cmd = train_command(workdir, data_dir, '--config.steps_per_epoch=1000',
                        '--config.checkpoint_every_steps=1000', *overrides)
    return TrainerProcess(cmd, env, tmp_path, name)

  # 1. A holds the workdir; B is refused; SIGTERM stops A with a checkpoint.
  a = start('a')
  wait_for(_holds_lock(workdir, a), [a], 'the lock')
  b = start('b', '--config.seed=1')
  assert b.wait() == 2
  assert 'in use by another trainer' in b.last_line()
  assert f'pid {a.pid}' in b.last_line()
  assert f'host {socket.gethostname()}' in b.last_line()
  b.no_traceback()
  wait_for(_handlers_installed(a), [a], 'the signal handlers')
  a.process.send_signal(signal.SIGTERM)
  assert a.wait() == 128 + signal.SIGTERM
  a.no_traceback()
  step_a = a.stopped_step('SIGTERM')
  assert 1 <= step_a < 1000 and steps(workdir) == [step_a]

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
  wait_for(lambda: 'Resumed from' in c.stdout(), [c], 'the resume')
  # Named by the file manifest before Orbax reads it, so no Orbax traceback.
  assert (f'checkpoint step {bad} is unreadable: {workdir}/checkpoints/{bad}/'
          f'state/d/{os.path.basename(data_file)} is corrupt') in c.stderr()
  assert f'Resumed from {workdir}/checkpoints/{step_a}' in c.stdout()
  assert (workdir / 'checkpoints_corrupt' / str(bad) / 'state').is_dir()
  c.process.send_signal(signal.SIGINT)
  assert c.wait() == 128 + signal.SIGINT
  c.no_traceback()
  step_c = c.stopped_step('SIGINT')
  assert step_c > step_a and steps(workdir)[-1] == step_c
  manager = train_checkpoints.create_checkpoint_manager(
      workdir, steps_per_epoch=1000, read_only=True)
  assert train_checkpoints.restore_meta(manager, step_c)['steps_per_epoch'] == 1000

  # 3. SIGKILL after a few per-step checkpoints: the newest one loads.
  d = start('d', '--config.checkpoint_every_steps=1')
  wait_for(lambda: steps(workdir)[-1] >= step_c + 2, [d],
            'two new checkpoints')
  d.process.send_signal(signal.SIGKILL)
  assert d.wait() == -signal.SIGKILL
  newest = steps(workdir)[-1]
  assert newest > step_c
  train_checkpoints.restore_variables(manager, newest)

  # 4. E takes over D's stale lock; a second Ctrl-C, sent while E is held at
  # the stop's save, aborts without saving.
  gate = tmp_path / 'stop_save_gate'
  e = start('e', env=dict(env, **{stop_signals.STOP_SAVE_GATE_ENV: str(gate)}))
  wait_for(_holds_lock(workdir, e), [e], 'the lock')
  assert f'stale lock of host {socket.gethostname()}, pid {d.pid}' in (
      e.stderr())
  steps_before = steps(workdir)
  wait_for(_handlers_installed(e), [e], 'the signal handlers')
  e.process.send_signal(signal.SIGINT)
  wait_for(lambda: os.path.exists(f'{gate}.held'), [e], 'the stop save')
  e.process.send_signal(signal.SIGINT)
  assert e.wait() == 130
  e.no_traceback()
  assert 'aborting now' in e.last_line()
  assert steps(workdir) == steps_before
