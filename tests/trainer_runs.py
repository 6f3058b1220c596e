"""Real `python -m hybrik_jax.train` subprocesses for the signal tests.

Shared by tests/test_preemption.py (one process) and tests/test_multihost.py
(two processes of one jax.distributed run): the command line, the output in
files, waiting on what a trainer prints or writes (never on the clock).
"""

import glob
import os
import signal
import subprocess
import sys
import time
from typing import Callable, Sequence

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
TIMEOUT_S = 600


def build_tiny_humans(tmp_path_factory) -> str:
  """A freshly built synthetic_humans/tiny data dir (seconds)."""
  from hybrik_jax import prepare_data  # pylint: disable=g-import-not-at-top
  path = tmp_path_factory.mktemp('data')
  prepare_data.build('synthetic_humans', data_dir=str(path), config='tiny')
  return str(path)


def train_command(workdir, data_dir, *overrides: str) -> list[str]:
  """`python -m hybrik_jax.train` on configs/test.py, 1000 steps."""
  # -X faulthandler: a hung trainer's Python stacks on SIGABRT (TrainerProcess.wait).
  return [sys.executable, '-X', 'faulthandler', '-m', 'hybrik_jax.train', '--config',
          os.path.join(REPO, 'configs', 'test.py'), f'--workdir={workdir}',
          f'--config.data.data_dir={data_dir}',
          '--config.num_train_steps=1000', *overrides]


class TrainerProcess:
  """One trainer process; its stdout and stderr in files under `tmp_path`."""

  def __init__(self, cmd: Sequence[str], env: dict[str, str], tmp_path,
               name: str):
    self.out = tmp_path / f'{name}.out'
    self.err = tmp_path / f'{name}.err'
    with open(self.out, 'w') as out, open(self.err, 'w') as err:
      self.process = subprocess.Popen(list(cmd), stdout=out, stderr=err,
                                      env=env, cwd=REPO)

  @property
  def pid(self) -> int:
    return self.process.pid

  def wait(self, timeout: float = TIMEOUT_S) -> int:
    """The exit status; a process still running after `timeout` s fails the
    test with its Python stacks (SIGABRT: the trainer runs with -X
    faulthandler) and the end of its output, so a hang says where it hung."""
    try:
      return self.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
      self.process.send_signal(signal.SIGABRT)
      try:
        self.process.wait(timeout=30)
      except subprocess.TimeoutExpired:
        self.kill()
      raise AssertionError(
          f'{self.err.name}: still running after {timeout:.0f} s; its stacks and '
          f'output:\n{self.stderr()[-8000:]}\nstdout:\n{self.stdout()[-2000:]}') from None

  def stdout(self) -> str:
    return self.out.read_text()

  def stderr(self) -> str:
    return self.err.read_text()

  def last_line(self) -> str:
    lines = [l for l in self.stderr().splitlines() if l.strip()]
    return lines[-1] if lines else ''

  def no_traceback(self) -> None:
    assert 'Traceback' not in self.stderr(), self.stderr()[-3000:]

  def stopped_step(self, signal_name: str) -> int:
    """The step of the last line 'Stopped by SIGNAL at step N ...'."""
    line = self.last_line()
    assert line.startswith(f'Stopped by {signal_name} at step '), (
        self.stderr()[-3000:])
    return int(line.split('at step ')[1].split()[0])

  def kill(self) -> None:
    if self.process.poll() is None:
      self.process.kill()
      self.process.wait()


def wait_for(condition: Callable[[], bool],
             processes: Sequence[TrainerProcess], what: str,
             timeout: float = TIMEOUT_S) -> None:
  """Polls `condition`; fails at once if a process exits first."""
  deadline = time.time() + timeout
  while not condition():
    for p in processes:
      if p.process.poll() is not None:
        raise AssertionError(
            f'trainer exited ({p.process.returncode}) before {what}:\n'
            f'{p.stderr()[-3000:]}')
    if time.time() > deadline:
      raise AssertionError(f'timed out waiting for {what}')
    time.sleep(0.1)


def steps(workdir) -> list[int]:
  """The committed checkpoint steps in `workdir`, ascending."""
  return sorted(int(os.path.basename(p)) for p in
                glob.glob(str(workdir / 'checkpoints' / '*'))
                if os.path.basename(p).isdigit())
