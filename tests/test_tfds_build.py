"""`tfds build` on the builders, the Beam path against the plain one, and errors.

`tfds build` runs as a subprocess (as a user runs it) on the dummy data; the
Beam builds use the DirectRunner with 2 worker processes and are compared,
example by example in stored order and metadata, with an in-process build
of the plain (process-pool) path. Beam workers start a Python each, so these
are the slow tests of the builders (about a minute each on 2 cores).

The README's own `tfds build` command (DOCUMENTED_*) runs as written, with
only a smaller config and a temporary data_dir, and must need no package
beyond the `build` extra and give data the input pipeline reads.
"""

import configparser
import importlib.metadata
import json
import os
import pathlib
import re
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

# The README's install and build commands for TFDS's own CLI, verbatim.
DOCUMENTED_INSTALL = "pip install -e '.[build]'"
DOCUMENTED_BUILD = ('tfds build tfds_builders/synthetic_humans --config small '
                    '--data_dir ~/tensorflow_datasets')
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


# ---------------------------------------------------------------------------
# The README's `tfds build`: only the build extra, data the pipeline reads.
# ---------------------------------------------------------------------------

# Runs TFDS's CLI (the `tfds` console script's launch_cli) with argv[3:] as if
# only the modules allowed were installed: the top-level modules listed in the
# JSON file argv[1] fail to import, as in a venv without them. Writes the
# top-level modules it imported to argv[2] at exit.
_RECORD_IMPORTS = """
import atexit, json, sys
class NotInstalled:
  blocked = frozenset(json.load(open(sys.argv.pop(1))))
  @classmethod
  def find_spec(cls, name, path=None, target=None):
    if name.partition('.')[0] in cls.blocked:
      raise ModuleNotFoundError(f'No module named {name!r}', name=name)
    return None
sys.meta_path.insert(0, NotInstalled)
out = sys.argv[1]
atexit.register(lambda: json.dump(sorted({m.split('.')[0] for m in list(sys.modules)}),
                                  open(out, 'w')))
sys.argv = ['tfds'] + sys.argv[2:]
from tensorflow_datasets.scripts.cli.main import launch_cli
launch_cli()
"""


def _norm(name: str) -> str:
  return re.sub(r'[-_.]+', '-', name).lower()


def _requirements(extras: tuple[str, ...]) -> list[str]:
  """install_requires plus the given extras of setup.cfg (this checkout's)."""
  cfg = configparser.ConfigParser()
  cfg.read(REPO / 'setup.cfg')
  lines = cfg['options']['install_requires'].split('\n')
  for extra in extras:
    lines += cfg['options.extras_require'][extra].split('\n')
  return [line.strip() for line in lines if line.strip()]


def _closure(requirements: list[str]) -> set[str]:
  """The distributions pip installs for `requirements`: them and, recursively,
  what their installed metadata requires (markers evaluated, extras followed)."""
  from packaging.requirements import Requirement  # pylint: disable=g-import-not-at-top
  seen: set[str] = set()
  todo = [(Requirement(r), '') for r in requirements]
  while todo:
    req, extra = todo.pop()
    if req.marker is not None and not req.marker.evaluate({'extra': extra}):
      continue
    name = _norm(req.name)
    key_extras = [f'{name}[{e}]' for e in sorted(req.extras)]
    if name in seen and all(k in seen for k in key_extras):
      continue
    seen.add(name)
    seen.update(key_extras)
    for line in importlib.metadata.requires(req.name) or []:
      sub = Requirement(line)
      if sub.marker is None:
        todo.append((sub, ''))
      else:  # needed without extras, or for one of the extras asked for
        for e in ('', *req.extras):
          if sub.marker.evaluate({'extra': e}):
            todo.append((Requirement(str(sub).split(';')[0]), ''))
            break
  return {n for n in seen if '[' not in n}


def _not_installed_with(allowed: set[str]) -> list[str]:
  """Top-level modules that only distributions outside `allowed` provide."""
  return sorted(m for m, dists in importlib.metadata.packages_distributions().items()
                if m not in sys.stdlib_module_names
                and m not in ('hybrik_jax', 'tfds_builders')
                and not any(_norm(d) in allowed for d in dists))


def _imported_distributions(modules: list[str]) -> set[str]:
  """The installed distributions that provide these top-level modules."""
  providers = importlib.metadata.packages_distributions()
  ours = {'hybrik_jax', 'tfds_builders', '__main__'}
  return {_norm(dist) for m in modules
          if m not in sys.stdlib_module_names and m not in ours
          for dist in providers.get(m, [])}


def test_documented_tfds_build_needs_only_the_build_extra_and_the_pipeline_reads_it(
    tmp_path):
  readme = (REPO / 'README.md').read_text()
  assert DOCUMENTED_INSTALL in readme and DOCUMENTED_BUILD in readme
  # The README's command with the test config and a temporary data_dir.
  data_dir = tmp_path / 'tensorflow_datasets'
  argv = DOCUMENTED_BUILD.replace('--config small', '--config tiny').replace(
      '~/tensorflow_datasets', str(data_dir)).split()
  assert argv[:2] == ['tfds', 'build']
  # This venv has the test extra too: what the build extra does not bring is
  # made unimportable (IPython, for one, is imported only when installed).
  with_extra = _closure(_requirements(('build',)))
  blocked = tmp_path / 'blocked.json'
  blocked.write_text(json.dumps(_not_installed_with(with_extra)))
  assert 'torch' in json.loads(blocked.read_text())
  imports = tmp_path / 'imports.json'
  run = subprocess.run(
      [sys.executable, '-c', _RECORD_IMPORTS, str(blocked), str(imports), *argv[1:]],
      cwd=REPO, capture_output=True, text=True, env=_env(), timeout=600,
      check=False)
  assert run.returncode == 0, run.stderr[-3000:]

  # Everything `tfds build` imported comes with the library and the build
  # extra; TensorFlow among it (the tfds CLI imports it at start-up), which
  # the library alone does not bring.
  imported = _imported_distributions(json.loads(imports.read_text()))
  assert {'tensorflow-datasets', 'apache-beam', 'mlcroissant'} <= imported
  assert 'tensorflow-cpu' in imported or 'tensorflow' in imported
  assert imported <= with_extra, sorted(imported - with_extra)
  assert not imported <= _closure(_requirements(()))

  # What it printed: generated, nothing downloaded.
  assert 'Dataset synthetic_humans/tiny 2.0.0 generated in' in run.stdout
  assert 'Generating dataset synthetic_humans/tiny 2.0.0 (nothing to download)' in run.stdout
  for tfds_line in ('downloaded and prepared', 'Downloading and preparing'):
    assert tfds_line not in run.stdout + run.stderr

  # ArrayRecord (no --file_format given), read by the trainer's input pipeline.
  folder = data_dir / 'synthetic_humans' / 'tiny' / '2.0.0'
  assert sorted(p.name for p in folder.glob('*array_record*')) == [
      'synthetic_humans-train.array_record-00000-of-00001',
      'synthetic_humans-validation.array_record-00000-of-00001']
  from hybrik_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  data = input_pipeline.DataConfig(eval_dataset='synthetic_humans/tiny',
                                   eval_split='validation', data_dir=str(data_dir))
  batches = list(input_pipeline.create_eval_iterator(
      data, global_batch_size=4, input_size=64, shard_index=0, shard_count=1))
  assert len(batches) == 1
  assert batches[0]['image'].shape[:3] == (4, 64, 64)
  assert batches[0]['mask'].tolist() == [1, 1, 1, 1]
  assert len(input_pipeline.open_data_source('synthetic_humans/tiny', 'train',
                                             str(data_dir))) == 8


def test_builders_write_array_record_unless_asked_and_say_how_the_data_came(
    tmp_path, capsys):
  """No file_format: a new build is ArrayRecord; a prepared one keeps its format.
  The lines around a build say 'prepared from the files in the manual_dir'."""
  from tfds_builders.coco_keypoints import coco_keypoints_dataset_builder as coco  # pylint: disable=g-import-not-at-top
  manual = tfds.download.DownloadConfig(
      manual_dir=str(BUILDERS / 'coco_keypoints' / 'dummy_data'))
  new = coco.Builder(data_dir=str(tmp_path / 'a'))
  assert new.info.file_format == tfds.core.FileFormat.ARRAY_RECORD
  new.download_and_prepare(download_config=manual)
  out = capsys.readouterr().out
  assert 'Preparing dataset coco_keypoints 1.0.0 from the files in the manual_dir' in out
  assert ('Dataset coco_keypoints 1.0.0 prepared from the files in the manual_dir '
          f'in {new.data_dir} (array_record)') in out
  assert 'download' not in out.lower()
  assert tfds.data_source('coco_keypoints', split='train', data_dir=str(tmp_path / 'a'),
                          download=False)[0]['image'].ndim == 3

  tfrecord = coco.Builder(data_dir=str(tmp_path / 'b'), file_format='tfrecord')
  tfrecord.download_and_prepare(download_config=manual)
  again = coco.Builder(data_dir=str(tmp_path / 'b'))  # as tfds.data_source makes it
  assert again.info.file_format == tfds.core.FileFormat.TFRECORD
  assert again.is_prepared()
