"""prepare_data on a bad --manual_dir: one line, nothing left behind."""

import os
import signal
import subprocess
import sys
import time

import pytest

from hybrik_jax import prepare_data
from hybrik_jax.data import build as build_lib


def test_empty_or_wrong_manual_dir_leaves_nothing(tmp_path, capsys):
  manual = tmp_path / 'manual'
  manual.mkdir()
  data_dir = tmp_path / 'data'
  rc = prepare_data.main(['--dataset', 'pw3d', '--manual_dir', str(manual),
                          '--data_dir', str(data_dir)])
  err = capsys.readouterr().err.strip().splitlines()
  assert rc == 1
  assert err[0].startswith(f'error: pw3d: --manual_dir {manual} is empty')
  assert not data_dir.exists()
  # Files that are not 3DPW's: the build fails with one line and the folders
  # it created are removed again.
  (manual / 'readme.txt').write_text('not the dataset')
  rc = prepare_data.main(['--dataset', 'pw3d', '--manual_dir', str(manual),
                          '--data_dir', str(data_dir)])
  err = capsys.readouterr().err.strip().splitlines()
  assert rc == 1 and err[0].startswith('error: pw3d: ')
  assert 'Traceback' not in '\n'.join(err)
  leftovers = [r for r, d, f in os.walk(data_dir) if not d and not f]
  assert not leftovers, leftovers


_RENDER_FOREVER = '''
import multiprocessing, os, signal, sys, threading
from hybrik_jax import prepare_data
from hybrik_jax.data import synthetic
if sys.argv[1] == 'term':
  signal.signal(signal.SIGTERM, prepare_data._terminated)

def say_ready():  # once both workers run (they need not have rendered)
  while len(multiprocessing.active_children()) < 2:
    threading.Event().wait(0.02)
  print('READY', *[p.pid for p in multiprocessing.active_children()],
        flush=True)

threading.Thread(target=say_ready, daemon=True).start()
for _ in synthetic.generate_parallel(
    range(64), synthetic.SyntheticConfig(image_size=32), num_workers=2,
    chunk=1, progress=False):
  pass
'''


def _alive(pid: int) -> bool:
  try:
    with open(f'/proc/{pid}/stat') as f:
      return f.read().split(') ')[1][0] != 'Z'
  except OSError:
    return False


@pytest.mark.skipif(not os.path.isdir('/proc'), reason='needs /proc (Linux)')
def test_workers_die_with_their_parent_and_on_sigterm(tmp_path):
  """Issue 25 case 6: a build's rendering workers do not outlive it, whether
  it is SIGKILLed or SIGTERMed (real processes, real signals)."""
  env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))), JAX_PLATFORMS='cpu')
  runs = {how: subprocess.Popen(
      [sys.executable, '-c', _RENDER_FOREVER, how], env=env,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
          for how in ('kill', 'term')}
  workers = {}
  try:
    for how, proc in runs.items():
      line = proc.stdout.readline().split()
      assert line and line[0] == 'READY', proc.stderr.read()
      workers[how] = [int(p) for p in line[1:]]
      assert len(workers[how]) >= 2 and all(map(_alive, workers[how]))
    runs['kill'].send_signal(signal.SIGKILL)
    runs['term'].send_signal(signal.SIGTERM)
    assert runs['kill'].wait(60) == -signal.SIGKILL
    assert runs['term'].wait(60) == 143
    assert 'Traceback' not in runs['term'].stderr.read()
    deadline = time.monotonic() + 30
    while (any(_alive(p) for ps in workers.values() for p in ps) and
           time.monotonic() < deadline):
      time.sleep(0.05)
    assert not [p for ps in workers.values() for p in ps if _alive(p)]
  finally:
    for proc in runs.values():
      if proc.poll() is None:
        proc.kill()
    for pid in (p for ps in workers.values() for p in ps):
      if _alive(pid):
        os.kill(pid, signal.SIGKILL)


def test_next_build_removes_what_a_killed_one_left(tmp_path):
  """Issue 25 case 6: TFDS's incomplete.* folders of a killed build are
  removed by the next build of the dataset (and nothing else)."""
  version_dir = tmp_path / 'synthetic_humans' / 'tiny' / '1.0.0'
  left = tmp_path / 'synthetic_humans' / 'tiny' / 'incomplete.AB12CD_1.0.0'
  (left / 'sub').mkdir(parents=True)
  (left / 'sub' / 'x.tfrecord').write_bytes(b'x')
  version_dir.mkdir()
  builder = type('B', (), {'data_dir': str(version_dir)})()
  assert build_lib.remove_incomplete(builder) == [str(left)]
  assert sorted(os.listdir(version_dir.parent)) == ['1.0.0']
