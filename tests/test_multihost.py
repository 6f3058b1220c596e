"""Two trainer processes (jax.distributed on localhost): preemption for real.

Every run is `python -m hybrik_jax.train` twice (process 0 and 1 of one run, a
localhost coordinator, CPU collectives) on configs/test.py and a freshly
built synthetic_humans/tiny, checkpointing every step, sharing one workdir
and one compilation cache (only the first run compiles):

1. run A trains; run B on the same workdir is refused on both of its
   processes with one line (process 0 holds the lock and broadcasts the
   verdict); SIGTERM to A's process 1 only: both processes stop and save at
   the same step (the stop flag is all-gathered) and exit 143.
2. the test copies A's checkpoint to a newer step and flips a byte of it; run
   C (the same command): both processes set that step aside and resume from
   A's step.
3. SIGKILL of C's process 1: process 0 exits within the heartbeat timeout
   (--heartbeat_timeout_s=5) with one line naming process 1 (status 75); run
   D resumes from the last committed checkpoint.
4. a run R on a fresh workdir, never interrupted, has the same parameters
   at every step as the interrupted, corrupted and killed sequence.

Events are ordered by what the runs print or write (a committed checkpoint
means both processes are inside the training loop, signal handlers
installed), never by sleeping on the clock.
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

import jax
import numpy as np
import pytest

from hybrik_jax.checkpoints import train_checkpoints

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
TIMEOUT_S = 600
HEARTBEAT_S = 5


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  from hybrik_jax import prepare_data  # pylint: disable=g-import-not-at-top
  path = tmp_path_factory.mktemp('data')
  prepare_data.build('synthetic_humans', data_dir=str(path), config='tiny')
  return str(path)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


class _Process:
  """One trainer process with its output in files."""

  def __init__(self, cmd, env, out, err):
    self.out, self.err = out, err
    with open(out, 'w') as o, open(err, 'w') as e:
      self.process = subprocess.Popen(cmd, stdout=o, stderr=e, env=env,
                                      cwd=REPO)

  def wait(self, timeout=TIMEOUT_S) -> int:
    return self.process.wait(timeout=timeout)

  def stdout(self) -> str:
    return self.out.read_text()

  def stderr(self) -> str:
    return self.err.read_text()

  def last_line(self) -> str:
    lines = [l for l in self.stderr().splitlines() if l.strip()]
    return lines[-1] if lines else ''

  def no_traceback(self) -> None:
    assert 'Traceback' not in self.stderr(), self.stderr()[-3000:]


class _Run:
  """Processes 0 and 1 of one two-process training run."""

  def __init__(self, tmp_path, name, workdir, data_dir, cache_dir):
    env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS='cpu')
    port = _free_port()
    self.processes = []
    for i in range(2):
      cmd = [sys.executable, '-m', 'hybrik_jax.train', '--config',
             os.path.join(REPO, 'configs', 'test.py'), f'--workdir={workdir}',
             f'--coordinator_address=localhost:{port}', '--num_processes=2',
             f'--process_id={i}', f'--heartbeat_timeout_s={HEARTBEAT_S}',
             f'--config.data.data_dir={data_dir}',
             '--config.num_train_steps=1000', '--config.steps_per_epoch=1',
             '--config.keep_epochs=1000', '--config.checkpoint_every_steps=1',
             f'--config.compilation_cache_dir={cache_dir}',
             '--config.compilation_cache_min_compile_s=0']
      self.processes.append(_Process(cmd, env, tmp_path / f'{name}{i}.out',
                                     tmp_path / f'{name}{i}.err'))

  def __getitem__(self, i) -> _Process:
    return self.processes[i]

  def wait_for(self, condition, what) -> None:
    deadline = time.time() + TIMEOUT_S
    while not condition():
      for p in self.processes:
        if p.process.poll() is not None:
          raise AssertionError(
              f'process exited ({p.process.returncode}) before {what}:\n'
              f'{p.stderr()[-3000:]}')
      if time.time() > deadline:
        raise AssertionError(f'timed out waiting for {what}')
      time.sleep(0.1)

  def kill(self) -> None:
    for p in self.processes:
      if p.process.poll() is None:
        p.process.kill()
        p.process.wait()


def _steps(workdir) -> list[int]:
  return sorted(int(os.path.basename(p)) for p in
                glob.glob(str(workdir / 'checkpoints' / '*'))
                if os.path.basename(p).isdigit())


def _stopped_step(process: _Process) -> int:
  line = process.last_line()
  assert line.startswith('Stopped by SIGTERM at step '), process.stderr()[-3000:]
  return int(line.split('at step ')[1].split()[0])


def _params(workdir, step):
  manager = train_checkpoints.create_checkpoint_manager(
      workdir, steps_per_epoch=1, read_only=True)
  return train_checkpoints.restore_variables(manager, step)['params']


def test_two_processes_preempted_refused_corrupt_and_killed(tmp_path,
                                                            data_dir):
  workdir, cache = tmp_path / 'work', tmp_path / 'xla_cache'
  runs = []

  def start(name, where=workdir):
    runs.append(_Run(tmp_path, name, where, data_dir, cache))
    return runs[-1]

  try:
    # 1. A trains; B on the same workdir is refused on both processes.
    a = start('a')
    a.wait_for(lambda: _steps(workdir), 'the first checkpoint')
    b = start('b')
    for i in range(2):
      assert b[i].wait() == 2, b[i].stderr()[-3000:]
      b[i].no_traceback()
      assert 'in use by another trainer' in b[i].last_line()
    assert f'pid {a[0].process.pid}' in b[0].last_line()
    assert 'process 0 of this run found it locked' in b[1].last_line()
    # SIGTERM to process 1 only: both save the same step and exit 143.
    a[1].process.send_signal(signal.SIGTERM)
    for i in range(2):
      assert a[i].wait() == 128 + signal.SIGTERM, a[i].stderr()[-3000:]
      a[i].no_traceback()
    step_a = _stopped_step(a[0])
    assert _stopped_step(a[1]) == step_a
    assert _steps(workdir)[-1] == step_a

    # 2. A corrupt newer step: both processes set it aside, resume from A's.
    bad = step_a + 1
    shutil.copytree(workdir / 'checkpoints' / str(step_a),
                    workdir / 'checkpoints' / str(bad))
    data_file = max(glob.glob(str(workdir / 'checkpoints' / str(bad) /
                                  'state' / 'd' / '*')), key=os.path.getsize)
    with open(data_file, 'r+b') as f:
      f.seek(os.path.getsize(data_file) // 2)
      byte = f.read(1)
      f.seek(-1, os.SEEK_CUR)
      f.write(bytes([byte[0] ^ 0x10]))
    c = start('c')
    c.wait_for(lambda: 'Resumed from' in c[0].stdout(), 'the resume')
    assert f'Resumed from {workdir}/checkpoints/{step_a}\n' in c[0].stdout()
    moved = workdir / 'checkpoints_corrupt' / str(bad)
    assert (moved / 'state').is_dir()
    # Said once, by process 0 (training.recovery: the console gets it once).
    assert (f'checkpoint step {bad} is unreadable' in c[0].stderr() and
            f'Moved it to {moved};' in c[0].stderr()), c[0].stderr()[-3000:]
    assert 'is unreadable' not in c[1].stderr(), c[1].stderr()[-3000:]

    # 3. SIGKILL of process 1: process 0 names it within the heartbeat bound.
    c.wait_for(lambda: _steps(workdir)[-1] >= bad + 1, 'two new checkpoints')
    c[1].process.send_signal(signal.SIGKILL)
    assert c[1].wait() == -signal.SIGKILL
    killed_at = time.monotonic()
    assert c[0].wait() == 75, c[0].stderr()[-3000:]
    assert time.monotonic() - killed_at < HEARTBEAT_S + 60
    c[0].no_traceback()
    assert c[0].last_line().startswith(
        'error: lost process 1 of this 2-process run (no heartbeat for 5 s'), (
            c[0].stderr()[-3000:])
    committed = _steps(workdir)[-1]
    d = start('d')
    d.wait_for(lambda: _steps(workdir)[-1] > committed, 'a new checkpoint')
    assert f'Resumed from {workdir}/checkpoints/{committed}\n' in d[0].stdout()
    d[0].process.send_signal(signal.SIGTERM)
    for i in range(2):
      assert d[i].wait() == 128 + signal.SIGTERM, d[i].stderr()[-3000:]
    last = _stopped_step(d[0])

    # 4. Uninterrupted, on a fresh workdir: the same parameters at each step.
    fresh = tmp_path / 'fresh'
    r = start('r', fresh)
    r.wait_for(lambda: _steps(fresh) and _steps(fresh)[-1] >= last,
               f'step {last}')
    r[0].process.send_signal(signal.SIGTERM)
    for i in range(2):
      assert r[i].wait() == 128 + signal.SIGTERM, r[i].stderr()[-3000:]
    for step in (step_a, bad, committed, last):
      got, want = _params(workdir, step), _params(fresh, step)
      got, want = (jax.tree_util.tree_flatten_with_path(p)[0]
                   for p in (got, want))
      assert [k for k, _ in got] == [k for k, _ in want]
      for (path, x), (_, y) in zip(got, want):
        np.testing.assert_array_equal(
            x, y, err_msg=f'step {step} {jax.tree_util.keystr(path)}')
  finally:
    for run in runs:
      run.kill()


_CACHE_DRIVER = '''
import json, logging, sys
from hybrik_jax import train
hits = []

class Hits(logging.Handler):
  def emit(self, record):
    message = record.getMessage()
    if message.startswith('Persistent compilation cache hit for'):
      hits.append(message.split("'")[1])

logger = logging.getLogger('jax._src.compiler')
logger.setLevel(logging.DEBUG)
logger.addHandler(Hits())
logger.propagate = False
status = train.main(sys.argv[2:])
with open(sys.argv[1], 'w') as f:
  json.dump({'status': status, 'hits': hits}, f)
'''


def test_second_run_loads_its_train_step_from_the_cache(tmp_path, data_dir):
  """config.compilation_cache_dir: a restart does not compile its train step
  again (JAX's own cache-hit log records, not timing)."""
  env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS='cpu')
  cache = tmp_path / 'cache'
  results = []
  for name in ('cold', 'warm'):
    out = tmp_path / f'{name}.json'
    run = subprocess.run(
        [sys.executable, '-c', _CACHE_DRIVER, str(out), '--config',
         os.path.join(REPO, 'configs', 'test.py'),
         f'--workdir={tmp_path / name}', f'--config.data.data_dir={data_dir}',
         '--config.num_train_steps=1', '--config.evals.max_batches=1',
         f'--config.compilation_cache_dir={cache}',
         '--config.compilation_cache_min_compile_s=0'],
        env=env, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=REPO,
        check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    results.append(json.loads(out.read_text()))
  cold, warm = results
  assert 'jit_hybrik_train_step' not in cold['hits']
  assert 'jit_hybrik_train_step' in warm['hits']
  assert glob.glob(str(cache / 'jit_hybrik_train_step-*'))
  # A relative setting is inside the workdir; '' leaves JAX's settings alone.
  from hybrik_jax.training import compilation_cache  # pylint: disable=g-import-not-at-top
  assert compilation_cache.cache_dir('xla_cache', '/w') == '/w/xla_cache'
  assert compilation_cache.cache_dir('', '/w') == ''
