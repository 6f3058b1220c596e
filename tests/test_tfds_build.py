"""`tfds build` on the builders, the Beam path against the plain one, and errors.

`tfds build` runs as a subprocess (as a user runs it) on the dummy data; the
Beam builds use the DirectRunner with 2 worker processes and are compared,
example by example in stored order and metadata, with an in-process build
of the plain (process-pool) path. Beam workers start a Python each, so these
are the slow tests of the builders (about a minute each on 2 cores).
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

import tfds_builders
from tfds_builders import real_data_common as common
from tfds_builders.h36m import h36m_dataset_builder
from tfds_builders.synthetic_humans import synthetic_humans_dataset_builder

REPO = pathlib.Path(__file__).resolve().parents[1]
BUILDERS = REPO / 'tfds_builders'
BEAM_2_WORKERS = ('runner=DirectRunner,direct_num_workers=2,'
                  'direct_running_mode=multi_processing')


def _env() -> dict[str, str]:
  env = dict(os.environ)
  env['PYTHONPATH'] = os.pathsep.join(
      [str(REPO)] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
  env.setdefault('JAX_PLATFORMS', 'cpu')
  env['TF_CPP_MIN_LOG_LEVEL'] = '3'
  return env


def _tfds_build(*args: str) -> subprocess.CompletedProcess:
  """`tfds build ARGS` (the CLI's module, so the venv's own tfds is used)."""
  return subprocess.run(
      [sys.executable, '-m', 'tensorflow_datasets.scripts.cli.main', 'build', *args],
      capture_output=True, text=True, env=_env(), timeout=900, check=False)


def _assert_same_dataset(ours, theirs) -> None:
  """Same splits, same examples in the same stored order, same metadata."""
  assert dict(ours.info.metadata or {}) == dict(theirs.info.metadata or {})
  assert sorted(ours.info.splits) == sorted(theirs.info.splits)
  for split in ours.info.splits:
    a, b = ours.as_data_source(split), theirs.as_data_source(split)
    assert len(a) == len(b) > 0, split
    for i in range(len(a)):
      assert sorted(a[i]) == sorted(b[i])
      for key in a[i]:
        np.testing.assert_array_equal(a[i][key], b[i][key], err_msg=f'{split}[{i}].{key}')


def _plain_build(builder_cls, data_dir, manual_dir=None, **kwargs):
  builder = builder_cls(data_dir=str(data_dir), file_format='array_record', **kwargs)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return builder


@pytest.fixture(scope='module')
def h36m_with_a_corrupt_frame(tmp_path_factory):
  """A copy of h36m's dummy data: train frame 1 corrupt (a counted, listed skip)."""
  manual = tmp_path_factory.mktemp('h36m') / 'manual'
  shutil.copytree(BUILDERS / 'h36m' / 'dummy_data', manual)
  ann = json.loads((manual / 'h36m/annotations/'
                    'Sample_5_train_Human36M_smpl_leaf_twist_protocol_2.json').read_text())
  (manual / 'h36m/images' / ann['images'][1]['file_name']).write_bytes(b'\xff\xd8 no')
  return manual


def test_tfds_build_h36m_with_beam_equals_the_plain_build(h36m_with_a_corrupt_frame,
                                                          tmp_path):
  manual = h36m_with_a_corrupt_frame
  plain = _plain_build(h36m_dataset_builder.Builder, tmp_path / 'plain', str(manual))
  assert plain.info.metadata['skipped']['train'] == {'unreadable_image': 1}

  run = _tfds_build(str(BUILDERS / 'h36m'), '--manual_dir', str(manual),
                    '--data_dir', str(tmp_path / 'beam'), '--file_format', 'array_record',
                    f'--beam_pipeline_options={BEAM_2_WORKERS}')
  assert run.returncode == 0, run.stderr[-3000:]
  assert 'apache_beam' in run.stderr  # it did run a Beam pipeline
  beam = tfds.builder_from_directory(str(tmp_path / 'beam' / 'h36m' / '1.0.0'))
  _assert_same_dataset(beam, plain)
  # The tasks and stats files of the Beam path are gone.
  assert not [p for p in os.listdir(beam.data_dir) if 'tasks' in p or 'stats' in p]


def test_tfds_build_synthetic_humans_with_beam_equals_the_plain_build(tmp_path):
  plain = _plain_build(synthetic_humans_dataset_builder.Builder, tmp_path / 'plain',
                       config='tiny')
  run = _tfds_build(str(BUILDERS / 'synthetic_humans'), '--config', 'tiny',
                    '--data_dir', str(tmp_path / 'beam'), '--file_format', 'array_record',
                    f'--beam_pipeline_options={BEAM_2_WORKERS}')
  assert run.returncode == 0, run.stderr[-3000:]
  beam = tfds.builder_from_directory(
      str(tmp_path / 'beam' / 'synthetic_humans' / 'tiny' / '2.0.0'))
  assert {s: i.num_examples for s, i in beam.info.splits.items()} == {
      'train': 8, 'validation': 4}
  _assert_same_dataset(beam, plain)


def test_tfds_build_flags_overwrite_and_max_examples_per_split(tmp_path):
  """Plain `tfds build` of coco_keypoints: --max_examples_per_split caps each split
  (also when Beam options are given: that takes the plain path), --overwrite rebuilds."""
  manual = str(BUILDERS / 'coco_keypoints' / 'dummy_data')
  data_dir = tmp_path / 'data'
  args = (str(BUILDERS / 'coco_keypoints'), '--manual_dir', manual,
          '--data_dir', str(data_dir))
  run = _tfds_build(*args, '--max_examples_per_split', '2',
                    f'--beam_pipeline_options={BEAM_2_WORKERS}')
  assert run.returncode == 0, run.stderr[-3000:]
  folder = data_dir / 'coco_keypoints' / '1.0.0'
  info = json.loads((folder / 'dataset_info.json').read_text())
  assert {s['name']: sum(map(int, s['shardLengths'])) for s in info['splits']} == {
      'train': 2, 'validation': 2}
  # (The Beam path would have ignored the cap: 3 + 3.)
  run = _tfds_build(*args, '--overwrite')
  assert run.returncode == 0, run.stderr[-3000:]
  info = json.loads((folder / 'dataset_info.json').read_text())
  assert {s['name']: sum(map(int, s['shardLengths'])) for s in info['splits']} == {
      'train': 3, 'validation': 3}


def _one_error_line(stderr: str) -> str:
  assert 'Traceback' not in stderr, stderr[-3000:]
  errors = [line for line in stderr.splitlines() if line.startswith('error:')]
  assert len(errors) == 1, stderr[-3000:]
  return errors[0]


def test_tfds_build_missing_manual_dir_is_one_line(tmp_path):
  missing = tmp_path / 'no_such_dir'
  run = _tfds_build(str(BUILDERS / 'h36m'), '--manual_dir', str(missing),
                    '--data_dir', str(tmp_path / 'data'))
  assert run.returncode != 0
  line = _one_error_line(run.stderr)
  assert str(missing) in line and 'tfds_builders/h36m/README.md' in line
  assert not (tmp_path / 'data' / 'h36m' / '1.0.0').exists()


def test_prepare_data_missing_manual_dir_is_one_line(tmp_path):
  empty = tmp_path / 'empty'
  (empty / 'something_else').mkdir(parents=True)
  for extra, expected in (([], '--manual_dir'),
                          (['--manual_dir', str(tmp_path / 'nowhere')], 'nowhere'),
                          (['--manual_dir', str(empty)], str(empty / 'h36m'))):
    run = subprocess.run(
        [sys.executable, '-m', 'hybrik_jax.prepare_data', '--dataset', 'h36m',
         '--data_dir', str(tmp_path / 'data'), *extra],
        capture_output=True, text=True, env=_env(), timeout=300, check=False)
    assert run.returncode == 1
    assert expected in _one_error_line(run.stderr)


def test_old_coco_name_is_an_alias_with_one_deprecation_line(tmp_path, capsys):
  from hybrik_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  from hybrik_jax import prepare_data  # pylint: disable=g-import-not-at-top
  tfds_builders._WARNED.discard('coco')  # pylint: disable=protected-access
  assert tfds_builders.resolve_name('coco/x:1.0.0') == 'coco_keypoints/x:1.0.0'
  assert tfds_builders.resolve_name('h36m') == 'h36m'
  assert input_pipeline.dataset_id('coco') == input_pipeline.dataset_id('coco_keypoints')
  err = capsys.readouterr().err
  assert err.count('deprecated') == 1 and len(err.strip().splitlines()) == 1
  rc = prepare_data.main(['--dataset', 'coco', '--data_dir', str(tmp_path),
                          '--manual_dir', str(BUILDERS / 'coco_keypoints' / 'dummy_data')])
  assert rc == 0
  assert (tmp_path / 'coco_keypoints' / '1.0.0' / 'dataset_info.json').exists()


def test_task_fn_pickles_by_its_tfds_builders_module_path():
  """Loaded as `tfds build` loads it (h36m.h36m_dataset_builder), the worker
  function still resolves under tfds_builders."""
  import pickle  # pylint: disable=g-import-not-at-top
  fn = common.TaskFn(h36m_dataset_builder._process)  # pylint: disable=protected-access
  assert fn.module == 'tfds_builders.h36m.h36m_dataset_builder'
  clone = pickle.loads(pickle.dumps(fn))
  assert clone.module == fn.module and clone.name == '_process'
