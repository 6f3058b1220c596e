"""Tests for hybrik_jax.checkpoints and hybrik_jax.average_checkpoints."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import chex
import grain
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrik_jax import average_checkpoints
from hybrik_jax import errors
from hybrik_jax.checkpoints import averaging
from hybrik_jax.checkpoints import integrity
from hybrik_jax.checkpoints import model_dir
from hybrik_jax.checkpoints import train_checkpoints


def _variables(value: float):
  return {'params': {'backbone': {'kernel': jnp.full((3, 2), value)},
                     'head': {'bias': jnp.arange(4.0) * value}},
          'batch_stats': {'backbone': {'mean': jnp.full((2,), 2 * value),
                                       'var': jnp.full((2,), value + 1)}}}


MODEL_CONFIG = {'backbone': 'resnet_tiny', 'input_size': 64,
                'deconv_channels': (16, 16, 16), 'dtype': 'float32'}


def test_save_and_load_model(tmp_path):
  variables = _variables(1.5)
  model_dir.save_model(tmp_path / 'm', variables, MODEL_CONFIG)
  assert model_dir.is_exported_model(tmp_path / 'm')
  loaded, model_config = model_dir.load_model(tmp_path / 'm')
  chex.assert_trees_all_equal(loaded, jax.device_get(variables))
  assert model_config.backbone == 'resnet_tiny'
  assert model_config.deconv_channels == (16, 16, 16)  # tuples come back
  assert json.loads((tmp_path / 'm' / 'model_config.json').read_text())[
      'input_size'] == 64


def test_model_exported_before_the_ik_fields_loads_with_a_note(tmp_path, capsys):
  """MODEL_CONFIG has no IK fields: 'corrected' (what decoded it then) is assumed."""
  model_dir.save_model(tmp_path / 'old', _variables(1.0), MODEL_CONFIG)
  _, model_config = model_dir.load_model(tmp_path / 'old')
  note = capsys.readouterr().err.strip().splitlines()
  assert len(note) == 1 and 'no IK convention fields' in note[0]
  assert "ik_convention=corrected" in note[0] and 'depth_factor=2.2' in note[0]
  assert model_config.ik_convention == 'corrected' and model_config.depth_factor == 2.2
  assert model_config.leaf_flip_pairs == ((1, 2), (3, 4))
  # A current config round-trips silently, lists back as tuples.
  from hybrik_jax.body import ik  # pylint: disable=g-import-not-at-top
  from hybrik_jax.models import config as model_config_lib  # pylint: disable=g-import-not-at-top
  current = dict(MODEL_CONFIG, ik_convention='released', leaf_joints=None,
                 joint23_to_pelvis=None, leaf_flip_pairs=None, depth_factor=None)
  model_dir.save_model(tmp_path / 'new', _variables(1.0), current)
  written = json.loads((tmp_path / 'new' / 'model_config.json').read_text())
  assert written['leaf_joints'] == [10, 11, 15, 22] and written['depth_factor'] == 2.0
  _, model_config = model_dir.load_model(tmp_path / 'new')
  assert not capsys.readouterr().err
  convention = model_config_lib.ik_convention(model_config)
  assert convention == ik.IKConvention.released()
  assert (convention.leaf_joints, convention.joint23_to_pelvis, convention.leaf_flip_pairs,
          convention.depth_factor) == ((10, 11, 15, 22), True, ((0, 1), (3, 4)), 2.0)


def test_save_model_refuses_to_overwrite(tmp_path):
  model_dir.save_model(tmp_path / 'm', _variables(1.0), MODEL_CONFIG)
  with pytest.raises(FileExistsError, match='already holds'):
    model_dir.save_model(tmp_path / 'm', _variables(2.0), MODEL_CONFIG)
  model_dir.save_model(tmp_path / 'm', _variables(2.0), MODEL_CONFIG,
                       overwrite=True)
  loaded, _ = model_dir.load_model(tmp_path / 'm')
  np.testing.assert_array_equal(loaded['params']['head']['bias'],
                                np.arange(4.0) * 2)


@pytest.mark.parametrize('exchange', [True, False])
def test_save_model_overwrite_swaps_the_whole_directory(tmp_path, monkeypatch,
                                                        exchange):
  """Written beside, then swapped in: renameat2's atomic exchange, or (where
  the kernel has none) two renames; either way no leftovers, no stale files."""
  if not exchange:
    monkeypatch.setattr(model_dir, '_exchange', lambda a, b: False)
  out = tmp_path / 'm'
  model_dir.save_model(out, _variables(1.0), MODEL_CONFIG,
                       train_config={'seed': 1})
  model_dir.save_model(out, _variables(3.0), MODEL_CONFIG, overwrite=True)
  loaded, _ = model_dir.load_model(out)
  chex.assert_trees_all_equal(loaded, jax.device_get(_variables(3.0)))
  # The old train_config.json went with the old model.
  assert sorted(os.listdir(out)) == ['checksums.json', 'files.json',
                                     'model_config.json', 'variables']
  assert os.listdir(tmp_path) == ['m']
  # An empty directory is filled; a file is refused.
  (tmp_path / 'empty').mkdir()
  model_dir.save_model(tmp_path / 'empty', _variables(1.0), MODEL_CONFIG)
  assert model_dir.is_exported_model(tmp_path / 'empty')
  (tmp_path / 'file').write_text('x')
  with pytest.raises(model_dir.ModelExistsError, match='is a file'):
    model_dir.save_model(tmp_path / 'file', _variables(1.0), MODEL_CONFIG)


def test_load_model_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match='model_config.json'):
    model_dir.load_model(tmp_path)
  with pytest.raises(ValueError, match='collections'):
    model_dir.save_model(tmp_path / 'x', {'params': {}, 'cache': {}}, {})


@pytest.mark.parametrize('field, value, message', [
    ('ik_convention', 'sideways', "model.ik_convention"),
    ('leaf_joints', 'abc', "model.leaf_joints"),
])
def test_load_model_names_the_file_and_the_bad_ik_field(tmp_path, field, value,
                                                         message):
  model_dir.save_model(tmp_path / 'm', _variables(1.0), MODEL_CONFIG)
  config_file = tmp_path / 'm' / 'model_config.json'
  config = json.loads(config_file.read_text())
  config[field] = value
  config_file.write_text(json.dumps(config))
  with pytest.raises(errors.InputError) as e:
    model_dir.load_model(tmp_path / 'm')
  assert str(e.value).startswith(f'{config_file}: {message}'), str(e.value)
  assert '\n' not in str(e.value)


def _save_epochs(workdir, values, steps_per_epoch=2):
  manager = train_checkpoints.create_checkpoint_manager(
      workdir, steps_per_epoch=steps_per_epoch, keep_epochs=10)
  for i, value in enumerate(values):
    state = {**_variables(value), 'opt_state': {'mu': jnp.ones(3)},
             'step': jnp.int32((i + 1) * steps_per_epoch)}
    train_checkpoints.save_train_state(
        manager, (i + 1) * steps_per_epoch, state,
        meta={'model': MODEL_CONFIG, 'steps_per_epoch': steps_per_epoch})
  train_checkpoints.wait(manager)
  manager.close()


def test_average_of_three_checkpoints(tmp_path):
  _save_epochs(tmp_path / 'w', [1.0, 2.0, 6.0, 10.0])
  averaged = averaging.average_last_epochs(str(tmp_path / 'w'), last=3)
  assert averaged.steps == [4, 6, 8]
  expected = _variables((2.0 + 6.0 + 10.0) / 3)
  chex.assert_trees_all_close(averaged.variables, jax.device_get(expected),
                              rtol=1e-6)
  assert averaged.model_config.input_size == 64
  # The CLI writes an exported model.
  rc = average_checkpoints.main(['--workdir', str(tmp_path / 'w'), '--last',
                                 '3', '--out', str(tmp_path / 'avg')])
  assert rc == 0
  loaded, _ = model_dir.load_model(tmp_path / 'avg')
  chex.assert_trees_all_close(loaded, jax.device_get(expected), rtol=1e-6)


def _average_as_before(trees):
  """The average of average_checkpoints before the running mean: all trees
  held, float64 sum, divided, cast to the first tree's dtypes."""
  total = jax.tree.map(lambda x: np.asarray(x, np.float64), trees[0])
  for tree in trees[1:]:
    total = jax.tree.map(lambda t, x: t + np.asarray(x, np.float64), total,
                         tree)
  return jax.tree.map(
      lambda t, x: jnp.asarray(t / len(trees), dtype=jnp.asarray(x).dtype),
      total, trees[0])


def test_running_mean_equals_the_average_of_all_trees_bit_for_bit(tmp_path):
  rng = np.random.default_rng(0)
  workdir = tmp_path / 'w'
  manager = train_checkpoints.create_checkpoint_manager(
      workdir, steps_per_epoch=1, keep_epochs=None, async_save=False)
  trees = []
  for step in range(1, 6):
    tree = {'params': {'w': rng.normal(size=(7, 5)).astype(np.float32) * 10,
                       'b': rng.normal(size=(5,)).astype(np.float32)},
            'batch_stats': {'mean': rng.normal(size=(5,)).astype(np.float32)}}
    trees.append(tree)
    train_checkpoints.save_train_state(
        manager, step, dict(tree, step=np.int32(step)),
        meta={'model': MODEL_CONFIG, 'steps_per_epoch': 1})
  manager.close()
  want = jax.device_get(_average_as_before(trees[1:]))
  got = averaging.average_last_epochs(str(workdir), last=4)
  assert got.steps == [2, 3, 4, 5]
  chex.assert_trees_all_equal(jax.device_get(got.variables), want)
  chex.assert_trees_all_equal_dtypes(got.variables, trees[0])


def _average_cli(*args, env=None, **kwargs):
  return subprocess.Popen(
      [sys.executable, '-m', 'hybrik_jax.average_checkpoints', *args],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
      cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
      **kwargs)


def test_average_refuses_an_existing_out_before_reading_anything(tmp_path):
  model_dir.save_model(tmp_path / 'avg', _variables(1.0), MODEL_CONFIG)
  # The workdir does not exist: refusing the out dir comes first.
  proc = _average_cli('--workdir', str(tmp_path / 'no_such_workdir'), '--out',
                      str(tmp_path / 'avg'))
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 2, err
  assert err.strip().splitlines() == [
      f'error: {tmp_path / "avg"} already holds an exported model; choose '
      'another directory or pass overwrite=True (--overwrite).'], err
  assert not out
  # Other files than a model are never replaced, even with --overwrite.
  (tmp_path / 'notes').mkdir()
  (tmp_path / 'notes' / 'todo.txt').write_text('keep me')
  with pytest.raises(model_dir.ModelExistsError, match="other files.*todo"):
    average_checkpoints.main(['--workdir', str(tmp_path / 'w'), '--out',
                              str(tmp_path / 'notes'), '--overwrite'])


_KILLED_AVERAGE = textwrap.dedent('''
    import sys, time
    from hybrik_jax import average_checkpoints
    from hybrik_jax.checkpoints import model_dir
    def commit(staging, directory):  # the new model is written beside: stop
      print('COMMITTING', flush=True)
      time.sleep(120)
    model_dir._commit = commit
    average_checkpoints.main(sys.argv[1:])
''')


def test_average_overwrite_killed_keeps_the_old_model(tmp_path):
  _save_epochs(tmp_path / 'w', [1.0, 2.0, 6.0])
  out = tmp_path / 'avg'
  model_dir.save_model(out, _variables(5.0), MODEL_CONFIG)
  args = ['--workdir', str(tmp_path / 'w'), '--last', '2', '--out', str(out),
          '--overwrite']
  proc = subprocess.Popen(
      [sys.executable, '-c', _KILLED_AVERAGE, *args],
      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
  try:
    line = proc.stdout.readline()
    assert 'COMMITTING' in line, line
    staging = tmp_path / '.avg.saving'
    assert model_dir.is_exported_model(staging)  # the new model, complete
    os.kill(proc.pid, signal.SIGKILL)
  finally:
    proc.kill()
    proc.wait()
  # The old model is untouched and loads.
  loaded, _ = model_dir.load_model(out)
  chex.assert_trees_all_equal(loaded, jax.device_get(_variables(5.0)))
  assert sorted(os.listdir(out)) == ['checksums.json', 'files.json',
                                     'model_config.json', 'variables']
  # The rerun replaces it (and the killed run's leftover).
  assert average_checkpoints.main(args) == 0
  loaded, _ = model_dir.load_model(out)
  chex.assert_trees_all_close(loaded, jax.device_get(_variables(4.0)),
                              rtol=1e-6)
  assert not (tmp_path / '.avg.saving').exists()
  assert sorted(os.listdir(tmp_path)) == ['avg', 'w']


def test_keeps_latest_and_last_epochs(tmp_path):
  manager = train_checkpoints.create_checkpoint_manager(
      tmp_path, steps_per_epoch=3, keep_epochs=3, async_save=False)
  for step in range(1, 14):
    train_checkpoints.save_train_state(manager, step, {'x': jnp.float32(step)})
    if step == 7:  # Fewer epoch ends (3, 6) than keep_epochs: all kept.
      assert train_checkpoints.all_steps(manager) == [3, 6, 7]
  # Epoch ends 3, 6, 9, 12: the last three, plus the newest (13).
  assert train_checkpoints.all_steps(manager) == [6, 9, 12, 13]


def test_iterator_state_round_trip(tmp_path):
  def make():
    ds = grain.MapDataset.source(list(range(50))).shuffle(seed=3)
    return iter(ds.to_iter_dataset().batch(4))

  it = make()
  manager = train_checkpoints.create_checkpoint_manager(tmp_path, steps_per_epoch=5)
  for step in (1, 2):
    next(it)
    train_checkpoints.save_train_state(manager, step, {'x': jnp.zeros(2)},
                                       data_iterator=it)
  expected = next(it)  # moves on while the save may still be running
  train_checkpoints.wait(manager)
  fresh = make()
  state = train_checkpoints.restore_train_state(manager, {'x': jnp.ones(2)},
                                                data_iterator=fresh)
  np.testing.assert_array_equal(state['x'], np.zeros(2))
  np.testing.assert_array_equal(next(fresh), expected)


_KILLED_SAVER = textwrap.dedent('''
    import sys, time
    import jax.numpy as jnp
    from hybrik_jax.checkpoints import train_checkpoints
    manager = train_checkpoints.create_checkpoint_manager(
        sys.argv[1], steps_per_epoch=1, async_save=True)
    train_checkpoints.save_train_state(manager, 1, {'x': jnp.ones((4,))})
    manager.wait_until_finished()
    print('SAVED 1', flush=True)
    big = {'x': jnp.ones((4,)), 'y': jnp.ones((32, 1024, 1024))}  # 128 MB
    train_checkpoints.save_train_state(manager, 2, big)
    print('SAVING 2', flush=True)
    time.sleep(60)
''')


def test_killed_mid_save_leaves_a_readable_checkpoint(tmp_path):
  proc = subprocess.Popen(
      [sys.executable, '-c', _KILLED_SAVER, str(tmp_path)],
      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
  try:
    lines = []
    deadline = time.time() + 120
    while time.time() < deadline:
      line = proc.stdout.readline()
      lines.append(line)
      if 'SAVING 2' in line or not line:
        break
    assert any('SAVING 2' in l for l in lines), lines
    os.kill(proc.pid, signal.SIGKILL)  # while step 2 is being written
  finally:
    proc.kill()
    proc.wait()
  manager = train_checkpoints.create_checkpoint_manager(tmp_path, steps_per_epoch=1)
  latest = train_checkpoints.latest_step(manager)
  assert latest in (1, 2)
  state = train_checkpoints.restore_train_state(
      manager, {'x': jnp.zeros(4)} if latest == 1 else
      {'x': jnp.zeros(4), 'y': jnp.zeros((32, 1024, 1024))})
  np.testing.assert_array_equal(state['x'], np.ones(4))
  # The next run saves over the interrupted step without trouble.
  train_checkpoints.save_train_state(manager, 3, {'x': jnp.full((4,), 3.0)})
  train_checkpoints.wait(manager)
  assert train_checkpoints.latest_step(manager) == 3


def _flip_a_byte(directory):
  """Flips one bit in the middle of the largest array data file (d/)."""
  files = [os.path.join(directory, 'd', f)
           for f in os.listdir(os.path.join(directory, 'd'))]
  path = max(files, key=os.path.getsize)
  with open(path, 'r+b') as f:
    f.seek(os.path.getsize(path) // 2)
    byte = f.read(1)
    f.seek(-1, os.SEEK_CUR)
    f.write(bytes([byte[0] ^ 0x01]))


def test_corrupt_files_are_named(tmp_path):
  good = _variables(1.0)
  # Exported models: a flipped bit, a truncated _METADATA, an empty or
  # truncated model_config.json, arrays that differ from their checksum.
  model_dir.save_model(tmp_path / 'flip', good, MODEL_CONFIG)
  _flip_a_byte(tmp_path / 'flip' / 'variables')
  with pytest.raises(integrity.CorruptCheckpointError,
                     match=r'flip/variables/d/\w+ is corrupt.*CRC-32'):
    model_dir.load_model(tmp_path / 'flip')  # files.json, before Orbax reads
  os.remove(tmp_path / 'flip' / 'files.json')  # a model from before files.json
  hook = sys.unraisablehook
  with pytest.raises(integrity.CorruptCheckpointError,
                     match=r'flip/variables is corrupt'):
    model_dir.load_model(tmp_path / 'flip')
  assert sys.unraisablehook is hook  # nothing global is left installed
  model_dir.save_model(tmp_path / 'sums', good, MODEL_CONFIG)
  (tmp_path / 'sums' / 'checksums.json').write_text(
      json.dumps({'params': 1, 'batch_stats': 2}))
  with pytest.raises(integrity.CorruptCheckpointError,
                     match=r'sums/variables .*params arrays do not match'):
    model_dir.load_model(tmp_path / 'sums')
  model_dir.save_model(tmp_path / 'meta', good, MODEL_CONFIG)
  metadata = tmp_path / 'meta' / 'variables' / '_METADATA'
  metadata.write_text(metadata.read_text()[:40])
  with pytest.raises(integrity.CorruptCheckpointError,
                     match=r'variables/_METADATA is corrupt'):
    model_dir.load_model(tmp_path / 'meta')
  for text, why in (('', 'empty file'), ('{"backbone": "res', 'not valid JSON')):
    model_dir.save_model(tmp_path / 'cfg', good, MODEL_CONFIG, overwrite=True)
    (tmp_path / 'cfg' / 'model_config.json').write_text(text)
    with pytest.raises(integrity.CorruptCheckpointError,
                       match=f'cfg/model_config.json is corrupt.*{why}'):
      model_dir.load_model(tmp_path / 'cfg')
  # Training checkpoints: the corrupt step is named and can be set aside.
  manager = train_checkpoints.create_checkpoint_manager(
      tmp_path / 'work', steps_per_epoch=1, async_save=False)
  for step in (1, 2):
    train_checkpoints.save_train_state(manager, step, dict(good, step=step),
                                       meta={'steps_per_epoch': 1})
  meta_file = tmp_path / 'work' / 'checkpoints' / '2' / 'meta' / 'metadata'
  meta = json.loads(meta_file.read_text())
  meta['checksums']['params'] += 1
  meta['checksums']['state'] += 1
  meta_file.write_text(json.dumps(meta))
  with pytest.raises(integrity.CorruptCheckpointError,
                     match=r'checkpoints/2/state .*checksum'):
    train_checkpoints.restore_variables(manager, 2)
  with pytest.raises(integrity.CorruptCheckpointError,
                     match=r'checkpoints/2/state .*checksum'):
    train_checkpoints.restore_train_state(manager, dict(good, step=0), 2)
  _flip_a_byte(tmp_path / 'work' / 'checkpoints' / '2' / 'state')
  with pytest.raises(integrity.CorruptCheckpointError,
                     match=r'checkpoints/2/state is corrupt'):
    train_checkpoints.restore_train_state(manager, dict(good, step=0), 2)
  (tmp_path / 'work' / 'checkpoints' / '2' / 'meta' / 'metadata').write_text('{')
  with pytest.raises(integrity.CorruptCheckpointError,
                     match=r'checkpoints/2/meta/metadata is corrupt'):
    train_checkpoints.restore_meta(manager, 2)
  moved = train_checkpoints.set_aside(manager, 2)
  assert moved == tmp_path / 'work' / 'checkpoints_corrupt' / '2'
  assert (moved / 'state').is_dir()  # kept, not deleted
  assert train_checkpoints.latest_step(manager) == 1
  restored = train_checkpoints.restore_train_state(manager, dict(good, step=0))
  assert int(restored['step']) == 1
  manager.close()


def test_file_manifest_names_a_damaged_file_before_orbax_reads_it(tmp_path):
  good = _variables(1.0)
  manager = train_checkpoints.create_checkpoint_manager(
      tmp_path, steps_per_epoch=1, keep_epochs=None)
  for step in (1, 2, 3, 4, 5):
    train_checkpoints.save_train_state(manager, step, dict(good, step=step))
  train_checkpoints.wait(manager)
  root = tmp_path / 'checkpoints'
  for step in (1, 2, 3, 4, 5):
    manifest = json.loads((root / str(step) / 'files.json').read_text())
    on_disk = sorted(
        os.path.relpath(os.path.join(d, f), root / str(step))
        for d, _, names in os.walk(root / str(step)) for f in names
        if f != 'files.json')
    assert sorted(manifest) == on_disk
    assert any(rel.startswith('state/d/') for rel in manifest)
  restore = lambda step: train_checkpoints.restore_train_state(
      manager, dict(good, step=0), step)
  chex.assert_trees_all_equal(restore(1)['params'], good['params'])

  _flip_a_byte(root / '1' / 'state')
  with pytest.raises(integrity.CorruptCheckpointError,
                     match=r'checkpoints/1/state/d/\w+ is corrupt.*CRC-32'):
    restore(1)
  with pytest.raises(integrity.CorruptCheckpointError,
                     match=r'checkpoints/1/state/d/\w+ is corrupt.*CRC-32'):
    train_checkpoints.restore_variables(manager, 1)
  metadata = root / '2' / 'state' / '_METADATA'
  metadata.write_text(metadata.read_text()[:-10])
  with pytest.raises(integrity.CorruptCheckpointError,
                     match=r'2/state/_METADATA is corrupt .*bytes, \d+ when it'):
    restore(2)
  os.remove(root / '3' / 'meta' / 'metadata')
  with pytest.raises(integrity.CorruptCheckpointError,
                     match=r'3/meta/metadata is corrupt .*missing'):
    restore(3)
  (root / '4' / 'files.json').write_text('{"state/_METADATA": [1')
  with pytest.raises(integrity.CorruptCheckpointError,
                     match=r'4/files.json is corrupt .*not valid JSON'):
    restore(4)
  # A checkpoint without a manifest (killed before it was written) restores.
  os.remove(root / '5' / 'files.json')
  chex.assert_trees_all_equal(restore(5)['params'], good['params'])


def test_model_config_that_does_not_match_the_weights():
  from hybrik_jax import models  # pylint: disable=g-import-not-at-top
  config = models.get_tiny_model_config()
  model = models.create_model(config)
  variables = jax.eval_shape(
      lambda: model.init({'params': jax.random.key(0),
                          'dropout': jax.random.key(1),
                          'patches': jax.random.key(2)},
                         jnp.zeros((1, 64, 64, 3)), train=False))
  model_dir.check_variables_match(variables, config, 'ckpt')
  other = models.get_tiny_model_config(d_model=2 * config.d_model)
  with pytest.raises(model_dir.ConfigMismatchError,
                     match='ckpt: model_config.json does not match the weights'):
    model_dir.check_variables_match(variables, other, 'ckpt')


_FAILED_RESTORES = textwrap.dedent('''
    import os, sys, time
    import grain
    import jax.numpy as jnp
    from hybrik_jax.checkpoints import integrity
    from hybrik_jax.checkpoints import train_checkpoints
    workdir = sys.argv[1]
    state = {'params': {f'l{i}': {'k': jnp.full((64, 64), i)} for i in range(200)},
             'batch_stats': {'m': jnp.ones(3)}, 'step': jnp.int32(1)}
    def iterator():
      return iter(grain.MapDataset.source(list(range(50))).to_iter_dataset())
    manager = train_checkpoints.create_checkpoint_manager(
        workdir, steps_per_epoch=1, async_save=False)
    for step in (1, 2):
      train_checkpoints.save_train_state(manager, step, state,
                                         data_iterator=iterator(),
                                         meta={'steps_per_epoch': 1})
    train_checkpoints.wait(manager)
    step_dir = os.path.join(workdir, 'checkpoints', '2')
    os.remove(os.path.join(step_dir, 'files.json'))  # as if killed before it
    data = os.path.join(step_dir, 'state', 'd')
    for name in os.listdir(data):  # flip a bit in every array data file
      with open(os.path.join(data, name), 'r+b') as f:
        f.seek(os.path.getsize(f.name) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x10]))
    hook = sys.unraisablehook
    for _ in range(3):
      try:
        train_checkpoints.restore_train_state(manager, state, 2,
                                              data_iterator=iterator())
        print('RESTORED A CORRUPT CHECKPOINT')
      except integrity.CorruptCheckpointError:
        print('REFUSED', flush=True)
      assert sys.unraisablehook is hook
      train_checkpoints.restore_train_state(manager, state, 1,
                                            data_iterator=iterator())
      time.sleep(0.5)
''')


def test_a_failed_restore_leaves_no_tracebacks_and_no_hook(tmp_path):
  """A damaged checkpoint without files.json fails inside Orbax: the residue of
  its aborted reads (TensorStore callbacks reaching Orbax's closed event loop,
  futures whose exceptions nobody retrieves) must not print tracebacks, during
  the call or later, and nothing stays installed."""
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=4')
  proc = subprocess.run(
      [sys.executable, '-c', _FAILED_RESTORES, str(tmp_path)],
      capture_output=True, text=True, env=env, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.split() == ['REFUSED'] * 3
  assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
  assert 'never retrieved' not in proc.stderr, proc.stderr[-3000:]


def _small_filesystem(path):
  """A 1 MiB tmpfs at `path` (root), else None."""
  path.mkdir()
  if os.geteuid() != 0 or shutil.which('mount') is None:
    return None
  done = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs',
                         str(path)], capture_output=True, check=False)
  return path if done.returncode == 0 else None


@pytest.mark.parametrize('async_save', [False, True])
def test_disk_full_is_one_line_and_removes_the_incomplete_step(
    tmp_path, monkeypatch, async_save):
  """Issue 25 case 5: a save that runs out of space: one line naming the
  workdir, the space needed and the last good step; the incomplete step is
  removed and the earlier one still reads. A real 1 MiB tmpfs where one can
  be mounted, else a writer that raises ENOSPC as a full disk does."""
  mount = _small_filesystem(tmp_path / 'small')
  workdir = tmp_path / 'small' / 'work dir'
  manager = train_checkpoints.create_checkpoint_manager(
      workdir, steps_per_epoch=5, async_save=async_save)
  try:
    train_checkpoints.save_train_state(
        manager, 1, {'params': {'w': np.ones(100, np.float32)}}, meta={})
    train_checkpoints.wait(manager)
    big = {'params': {'w': np.random.default_rng(0).normal(
        size=600_000).astype(np.float32)}}  # 2.4 MB, incompressible
    if mount is None:
      real_save = manager.save

      def full_disk(step, *args, **kwargs):
        (workdir / 'checkpoints' / f'{step}.orbax-checkpoint-tmp').mkdir()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
      monkeypatch.setattr(manager, 'save', full_disk)
    with pytest.raises(train_checkpoints.DiskFullError) as info:
      train_checkpoints.save_train_state(manager, 2, big, meta={})
      train_checkpoints.wait(manager)
    message = str(info.value)
    assert '\n' not in message
    assert f'no space left on the disk of {workdir} to save checkpoint step 2' in message
    assert 'one needs about 2.3 MiB' in message
    assert 'the last good checkpoint is step 1' in message
    assert sorted(os.listdir(workdir / 'checkpoints')) == ['1']
    manager.close()
    reader = train_checkpoints.open_for_reading(workdir)
    assert train_checkpoints.all_steps(reader) == [1]
    assert train_checkpoints.restore_variables(reader, 1)['params']['w'].shape == (100,)
    reader.close()
  finally:
    if mount is not None:
      subprocess.run(['umount', str(mount)], check=False)


_RESUME_UNDER_ABSL = """
import sys
from absl import app
import numpy as np
from hybrik_jax.checkpoints import train_checkpoints
from hybrik_jax.training import recovery

def main(_):
  from absl import logging
  logging.set_verbosity(logging.WARNING)  # as the trainer's console
  manager = train_checkpoints.create_checkpoint_manager(
      sys.argv[1], steps_per_epoch=5, async_save=False)
  state = {'params': {'w': np.arange(4096, dtype=np.float32)}}
  _, step = recovery.restore_latest_readable(
      manager, state, {'model': {'d': 1}, 'steps_per_epoch': 5}, None)
  manager.close()
  print('resumed', step)

app.run(main, argv=sys.argv[:1])
"""


def test_corrupt_step_warning_is_printed_once(tmp_path):
  """Issue 25 case 10: the set-aside warning appears once on the console of
  an absl program (the trainer's), not once printed and once logged."""
  meta = {'model': {'d': 1}, 'steps_per_epoch': 5}
  manager = train_checkpoints.create_checkpoint_manager(
      tmp_path, steps_per_epoch=5, async_save=False)
  state = {'params': {'w': np.arange(4096, dtype=np.float32)}}
  for step in (5, 10):  # epoch ends: both kept
    train_checkpoints.save_train_state(manager, step, state, meta=meta)
  train_checkpoints.wait(manager)
  manager.close()
  data = max((p for p in (tmp_path / 'checkpoints' / '10' / 'state').rglob('*')
              if p.is_file()), key=lambda p: p.stat().st_size)
  data.write_bytes(data.read_bytes()[:10])
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  result = subprocess.run(
      [sys.executable, '-c', _RESUME_UNDER_ABSL, str(tmp_path)],
      env=dict(os.environ, PYTHONPATH=repo, JAX_PLATFORMS='cpu'),
      capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.split() == ['resumed', '5']
  assert result.stderr.count('checkpoint step 10 is unreadable') == 1, (
      result.stderr)
