"""Runs the colab/ notebooks top to bottom, headless, with their smoke settings.

Each notebook reads HYBRIK_NOTEBOOK_SMOKE=1 (tiny datasets, a few steps) and
HYBRIK_NOTEBOOK_WORKDIR; the Colab install cell only acts on Colab. The
kernels share a persistent JAX compilation cache (in the system's temp
folder, kept between runs: keys are the compiled programs, so it never goes
stale), so the same tiny model is compiled once across notebooks and runs.
"""

import base64
import os
import tempfile

import nbformat
from nbclient import NotebookClient
import pytest


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLAB = os.path.join(REPO, 'colab')
TIMEOUT_S = 900  # per cell; generous for a busy 2-core machine


@pytest.fixture(scope='module')
def cache_dir():
  # The suite's cache (conftest) where there is one: the notebooks compile the
  # same tiny programs as the tests.
  path = os.environ.get('HYBRIK_JAX_TEST_XLA_CACHE') or os.path.join(
      tempfile.gettempdir(), 'hybrik_jax_notebook_xla_cache')
  os.makedirs(path, exist_ok=True)
  return path


def _run(name: str, workdir, cache_dir: str, extra_env=None):
  """Executes colab/<name>.ipynb; returns the executed notebook."""
  env = {
      'HYBRIK_NOTEBOOK_SMOKE': '1',
      'HYBRIK_NOTEBOOK_WORKDIR': str(workdir),
      'HYBRIK_JAX_ROOT': REPO,
      'HYBRIK_MANUAL_DIR': str(workdir / 'no_manual_downloads'),
      'JAX_COMPILATION_CACHE_DIR': cache_dir,
      'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS': '0',
      'JAX_PLATFORMS': 'cpu',
      'PYTHONPATH': os.pathsep.join(
          [REPO] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]),
  }
  env.update(extra_env or {})
  old = {k: os.environ.get(k) for k in env}
  os.environ.update(env)
  try:
    nb = nbformat.read(os.path.join(COLAB, f'{name}.ipynb'), as_version=4)
    NotebookClient(nb, timeout=TIMEOUT_S, kernel_name='python3',
                   resources={'metadata': {'path': COLAB}}).execute()
  finally:
    for k, v in old.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v
  return nb


def _text(nb) -> str:
  parts = []
  for cell in nb.cells:
    for out in cell.get('outputs', []):
      if out.get('output_type') == 'stream':
        parts.append(out['text'])
      elif 'data' in out and 'text/plain' in out['data']:
        parts.append(out['data']['text/plain'])
  return '\n'.join(parts)


def _pngs(nb) -> list[bytes]:
  return [base64.b64decode(out['data']['image/png'])
          for cell in nb.cells for out in cell.get('outputs', [])
          if 'data' in out and 'image/png' in out['data']]


def test_notebooks_are_valid_and_guard_the_install():
  for name in ('demo', 'train_synthetic', 'datasets', 'export'):
    nb = nbformat.read(os.path.join(COLAB, f'{name}.ipynb'), as_version=4)
    nbformat.validate(nb)
    install = [c.source for c in nb.cells
               if c.cell_type == 'code' and "'pip', 'install'" in c.source]
    assert len(install) == 1, name
    assert "IN_COLAB = 'google.colab' in sys.modules" in install[0]
    assert 'if IN_COLAB:' in install[0]
    # Committed without outputs.
    assert all(not c.get('outputs') for c in nb.cells if c.cell_type == 'code'), name


def test_datasets_notebook(tmp_path, cache_dir):
  nb = _run('datasets', tmp_path, cache_dir)
  text = _text(nb)
  for name in ('h36m', 'pw3d', 'mpi_inf_3dhp', 'coco_keypoints'):
    assert f'{name}: skipped' in text  # no manual downloads here: said so
    assert f'{name} dummy data:' in text
  assert len(_pngs(nb)) == 1
  assert os.path.isdir(tmp_path / 'tensorflow_datasets_dummy' / 'synthetic_humans')


def test_train_synthetic_notebook(tmp_path, cache_dir):
  nb = _run('train_synthetic', tmp_path, cache_dir)
  text = _text(nb)
  assert 'validation:' in text and 'mpjpe' in text
  assert 'PA-MPJPE' in text  # the evaluate table
  assert len(_pngs(nb)) == 2  # examples, loss + validation curves
  assert os.path.isdir(tmp_path / 'checkpoints')


def test_demo_notebook(tmp_path, cache_dir, tiny_checkpoint):
  """With a given checkpoint (the training path is train_synthetic's, tested above)."""
  ckpt = tiny_checkpoint
  nb = _run('demo', tmp_path, cache_dir, {'HYBRIK_NOTEBOOK_CHECKPOINT': ckpt})
  text = _text(nb)
  assert f'using the checkpoint {ckpt}' in text
  assert 'rendered a synthetic person' in text
  assert 'placement: fit' in text  # the tiny model predicts no camera: the 2D fit
  assert len(_pngs(nb)) == 1
  assert os.path.isfile(tmp_path / 'demo.png') and os.path.isfile(tmp_path / 'demo.npz')
  # The video cell: a rendered 4-frame clip, tracked, every frame kept.
  assert 'video: 4 frames, 4 valid predictions' in text
  assert 'joints3d_29        (4, 1, 29, 3)' in text
  for name in ('demo_video.mp4', 'demo_video.npz', 'demo_video.json'):
    assert os.path.isfile(tmp_path / name), name


def test_export_notebook(tmp_path, cache_dir, tiny_checkpoint):
  """The tiny checkpoint to ONNX by the export command, run by onnxruntime (no
  JAX in that cell's inference), the mesh drawn over a rendered person."""
  nb = _run('export', tmp_path, cache_dir,
            {'HYBRIK_NOTEBOOK_CHECKPOINT': tiny_checkpoint})
  text = _text(nb)
  assert 'valid: True' in text, text[-2000:]
  assert "'pred_vertices': (1, 6890, 3)" in text, text[-2000:]
  assert os.path.isfile(tmp_path / 'onnx_model' / 'export.json')
  pngs = _pngs(nb)
  assert len(pngs) == 1
  assert (tmp_path / 'onnx_mesh.png').read_bytes() == pngs[0]
