"""`python -m hybrik_jax.demo_inputs images|clip`: demo inputs one command away."""

import os
import subprocess
import sys

import cv2
import numpy as np

from hybrik_jax import demo
from hybrik_jax import demo_inputs
from hybrik_jax import prepare_data
from hybrik_jax.data import input_pipeline
from hybrik_jax.demos import video_io

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')


def test_images_writes_the_dataset_images_and_their_boxes(tmp_path, capsys, tiny_checkpoint):
  data_dir = str(tmp_path / 'data')
  prepare_data.build('synthetic_humans', data_dir=data_dir, config='tiny')
  capsys.readouterr()  # the build's messages
  out = str(tmp_path / 'inputs')
  assert demo_inputs.main(['images', '--dataset', 'synthetic_humans/tiny', '--n', '2',
                           '--out', out, '--data_dir', data_dir]) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  assert len(lines) == 2
  source = input_pipeline.open_data_source('synthetic_humans/tiny', 'validation', data_dir)
  for i, line in enumerate(lines):
    path, _, bbox = line.partition('  --bbox ')
    assert path == os.path.join(out, f'synthetic_humans_tiny_validation_{i:04d}.png')
    written = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(written, source[i]['image'])  # PNG: lossless
    x, y, w, h = (float(v) for v in bbox.split(','))
    np.testing.assert_allclose([x, y, x + w, y + h], source[i]['bbox'], atol=0.06)
  # The printed line is the image demo's input as it stands.
  path, _, bbox = lines[0].partition('  --bbox ')
  assert demo.main(['--image', path, '--bbox', bbox, '--checkpoint', tiny_checkpoint,
                    '--out', str(tmp_path / 'out.png'), '--noflip_test']) == 0
  # Asking for more than the split has: one line, status 2.
  assert demo_inputs.main(['images', '--dataset', 'synthetic_humans/tiny', '--n', '9',
                           '--out', out, '--data_dir', data_dir]) == 2
  assert 'has 4 examples' in capsys.readouterr().err


def test_clip_command_renders_a_video(tmp_path):
  out = str(tmp_path / 'walk.mp4')
  result = subprocess.run(
      [sys.executable, '-m', 'hybrik_jax.demo_inputs', 'clip', '--out', out,
       '--frames', '3', '--size', '64'],
      capture_output=True, text=True, cwd=REPO, timeout=600, check=False,
      env={**os.environ, 'PYTHONPATH': REPO})
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'first frame --bbox' in result.stdout
  info = video_io.probe_video(out)
  assert (info.num_frames, info.width, info.height) == (3, 64, 64)
