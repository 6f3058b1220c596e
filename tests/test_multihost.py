"""Two trainer processes (jax.distributed on localhost): preemption for real.

Every run is `python -m hybrik_jax.train` twice (process 0 and 1 of one run, a
localhost coordinator, CPU collectives) on configs/test.py and a freshly
built synthetic_humans/tiny, checkpointing every step, sharing one workdir
and one compilation cache (only the first run compiles):

1. run A trains; run B on the same workdir (started once A holds the lock) is
   refused on both of its processes with one line (process 0 holds the lock
   and broadcasts the verdict); SIGTERM to A's process 1 only: both processes
   stop and save at the same step (the stop flag is all-gathered) and exit 143.
2. the test copies A's checkpoint to a newer step and flips a byte of it; run
   C (the same command): both processes set that step aside and resume from
   A's step, loading the train step A compiled from the compilation cache
   (JAX's own cache-hit log record, not timing).
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
import os
import shutil
import signal
import socket
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

from hybrik_jax.checkpoints import train_checkpoints
from trainer_runs import REPO, TrainerProcess, build_tiny_humans, steps, train_command, wait_for  # pylint: disable=g-bad-import-order

HEARTBEAT_S = 5


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return build_tiny_humans(tmp_path_factory)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


class _Run:
  """Processes 0 and 1 of one two-process training run."""

  def __init__(self, tmp_path, name, workdir, data_dir, cache_dir):
    # JAX's own debug log of jax._src.compiler records each persistent-cache hit.
    env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS='cpu',
               JAX_DEBUG_LOG_MODULES='jax._src.compiler')
    port = _free_port()
    self.processes = []
    for i in range(2):
      cmd = train_command(
          workdir, data_dir, f'--coordinator_address=localhost:{port}',
          '--num_processes=2', f'--process_id={i}',
          f'--heartbeat_timeout_s={HEARTBEAT_S}',
          '--config.steps_per_epoch=1', '--config.keep_epochs=1000',
          '--config.checkpoint_every_steps=1',
          f'--config.compilation_cache_dir={cache_dir}',
          '--config.compilation_cache_min_compile_s=0')
      self.processes.append(TrainerProcess(cmd, env, tmp_path, f'{name}{i}'))

  def __getitem__(self, i) -> TrainerProcess:
    return self.processes[i]

  def wait_for(self, condition, what) -> None:
    wait_for(condition, self.processes, what)

  def kill(self) -> None:
    for p in self.processes:
      p.kill()


def _params(workdir, step):
  manager = train_checkpoints.create_checkpoint_manager(
      workdir, steps_per_epoch=1, read_only=True)
  return train_checkpoints.restore_variables(manager, step)['params']


def _kill_process_1_and_see_0_name_it(processes, bound_s: float) -> None:
  """SIGKILLs processes[1]; processes[0] must exit 75 within `bound_s` with
  one line naming process 1, no traceback."""
  processes[1].process.send_signal(signal.SIGKILL)
  assert processes[1].wait() == -signal.SIGKILL
  killed_at = time.monotonic()
  assert processes[0].wait() == 75, processes[0].stderr()[-3000:]
  assert time.monotonic() - killed_at < bound_s
  processes[0].no_traceback()
  assert processes[0].last_line().startswith(
      'error: lost process 1 of this 2-process run (no heartbeat for 5 s'), (
          processes[0].stderr()[-3000:])


def test_two_processes_preempted_refused_corrupt_and_killed(tmp_path,
                                                            data_dir):
  workdir, cache = tmp_path / 'work', tmp_path / 'xla_cache'
  runs = []

  def start(name, where=workdir):
    runs.append(_Run(tmp_path, name, where, data_dir, cache))
    return runs[-1]

  try:
    # 1. A trains; B on the same workdir is refused on both processes.
    # B starts as soon as A holds the lock (A prints its step counts after
    # taking it), so B's start-up overlaps A's and A trains few steps (which
    # run R repeats).
    a = start('a')
    a.wait_for(lambda: 'steps per epoch' in a[0].stdout(), 'the lock')
    b = start('b')
    for i in range(2):
      assert b[i].wait() == 2, b[i].stderr()[-3000:]
      b[i].no_traceback()
      assert 'in use by another trainer' in b[i].last_line()
    assert f'pid {a[0].pid}' in b[0].last_line()
    assert 'process 0 of this run found it locked' in b[1].last_line()
    # SIGTERM to process 1 only: both save the same step and exit 143.
    a.wait_for(lambda: steps(workdir), 'the first checkpoint')
    a[1].process.send_signal(signal.SIGTERM)
    for i in range(2):
      assert a[i].wait() == 128 + signal.SIGTERM, a[i].stderr()[-3000:]
      a[i].no_traceback()
    step_a = a[0].stopped_step('SIGTERM')
    assert a[1].stopped_step('SIGTERM') == step_a
    assert steps(workdir)[-1] == step_a

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
    # config.compilation_cache_dir: A compiled its train step, C loads it.
    hit = "Persistent compilation cache hit for 'jit_hybrik_train_step'"
    assert hit not in a[0].stderr()
    c.wait_for(lambda: hit in c[0].stderr(), 'the cached train step')
    assert glob.glob(str(cache / 'jit_hybrik_train_step-*'))
    assert f'Resumed from {workdir}/checkpoints/{step_a}\n' in c[0].stdout()
    moved = workdir / 'checkpoints_corrupt' / str(bad)
    assert (moved / 'state').is_dir()
    # Said once, by process 0 (training.recovery: the console gets it once).
    assert (f'checkpoint step {bad} is unreadable' in c[0].stderr() and
            f'Moved it to {moved};' in c[0].stderr()), c[0].stderr()[-3000:]
    assert 'is unreadable' not in c[1].stderr(), c[1].stderr()[-3000:]

    # 3. SIGKILL of process 1: process 0 names it within the heartbeat bound.
    c.wait_for(lambda: steps(workdir)[-1] >= bad + 1, 'two new checkpoints')
    _kill_process_1_and_see_0_name_it(c.processes, bound_s=HEARTBEAT_S + 60)
    committed = steps(workdir)[-1]
    d = start('d')
    d.wait_for(lambda: steps(workdir)[-1] > committed, 'a new checkpoint')
    assert f'Resumed from {workdir}/checkpoints/{committed}\n' in d[0].stdout()
    d[0].process.send_signal(signal.SIGTERM)
    for i in range(2):
      assert d[i].wait() == 128 + signal.SIGTERM, d[i].stderr()[-3000:]
    last = d[0].stopped_step('SIGTERM')

    # 4. Uninterrupted, on a fresh workdir: the same parameters at each step.
    fresh = tmp_path / 'fresh'
    r = start('r', fresh)
    r.wait_for(lambda: steps(fresh) and steps(fresh)[-1] >= last,
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


# One process of a two-process run that arms the trainer's peer watchdog, then
# waits where no collective will fail: 'sleep' (a barrier without deadline
# stands for any such wait) or 'exit' (both pass the trainer's exit barrier,
# then process 0 outlives process 1 by more than the heartbeat timeout).
_WATCHED = textwrap.dedent("""
    import sys, time, types
    from hybrik_jax import train
    port, i, mode, wait_s = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    args = types.SimpleNamespace(
        coordinator_address=f'localhost:{port}', num_processes=2, process_id=i,
        heartbeat_timeout_s=%d, workdir='WORKDIR', distributed=False)
    train._initialize_distributed(args)
    train._PeerWatchdog(args).start()
    print('armed', flush=True)
    if mode == 'exit':
      train._exit_together(args)  # process 1 leaves here (status 0)
    time.sleep(wait_s)
    print('waited it out', flush=True)
""" % HEARTBEAT_S)


@pytest.mark.parametrize('mode', ['sleep', 'exit'])
def test_the_peer_watchdog_ends_a_wait_no_collective_ends(tmp_path, mode):
  """A SIGKILLed process 1 ends process 0 within the heartbeat bound (75, one
  line) even where process 0 waits on no collective (a checkpoint barrier
  hung for 600 s there); once both have passed the exit barrier, process 1
  leaving is no loss (process 0 waits out its sleep and exits 0)."""
  env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS='cpu')
  port = _free_port()
  # 'exit': past the heartbeat, a poll and the watchdog's grace; 'sleep': long
  # enough that only the watchdog ends it within the test's bound.
  wait_s = 2 * HEARTBEAT_S + 2 if mode == 'exit' else 120
  run = [TrainerProcess([sys.executable, '-c', _WATCHED, str(port), str(i), mode, str(wait_s)],
                        env, tmp_path, f'{mode}{i}') for i in range(2)]
  try:
    wait_for(lambda: all('armed' in p.stdout() for p in run), run
             if mode == 'sleep' else [], 'both processes armed')
    if mode == 'exit':
      assert run[1].wait() == 0, run[1].stderr()[-3000:]
      assert run[0].wait() == 0, run[0].stderr()[-3000:]
      assert 'waited it out' in run[0].stdout()
      assert 'lost process' not in run[0].stderr()
      return
    _kill_process_1_and_see_0_name_it(run, bound_s=HEARTBEAT_S + 30)
    assert 'waited it out' not in run[0].stdout()
  finally:
    for p in run:
      p.kill()


def test_compilation_cache_dir_setting():
  """A relative setting is inside the workdir; '' leaves JAX's settings alone."""
  from hybrik_jax.training import compilation_cache  # pylint: disable=g-import-not-at-top
  assert compilation_cache.cache_dir('xla_cache', '/w') == '/w/xla_cache'
  assert compilation_cache.cache_dir('/c', '/w') == '/c'
  assert compilation_cache.cache_dir('', '/w') == ''
  # 'auto' (the default): JAX's own cache if one is set, else the workdir's.
  old = jax.config.jax_compilation_cache_dir
  try:
    jax.config.update('jax_compilation_cache_dir', '/jax_cache')
    assert compilation_cache.cache_dir('auto', '/w') == '/jax_cache'
    with compilation_cache.persistent_cache('auto', '/w', 1.0) as path:
      assert path == '/jax_cache'
      assert jax.config.jax_compilation_cache_dir == '/jax_cache'
    jax.config.update('jax_compilation_cache_dir', None)
    assert compilation_cache.cache_dir('auto', '/w') == '/w/xla_cache'
  finally:
    jax.config.update('jax_compilation_cache_dir', old)
