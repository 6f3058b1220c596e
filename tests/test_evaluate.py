"""Tests for hybrik_jax.evaluate and hybrik_jax.evaluation (benchmark, loop,
report, rootnet): protocols on an oracle, the CLI end to end."""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from hybrik_jax import evaluate
from hybrik_jax import models
from hybrik_jax.body import bodies
from hybrik_jax.body import constants
from hybrik_jax.body import smpl_io
from hybrik_jax.checkpoints import config_json
from hybrik_jax.checkpoints import integrity
from hybrik_jax.checkpoints import loading
from hybrik_jax.checkpoints import model_dir
from hybrik_jax.checkpoints import train_checkpoints
from hybrik_jax.data import input_pipeline
from hybrik_jax.data import synthetic
from hybrik_jax.evaluation import benchmark
from hybrik_jax.evaluation import loop
from hybrik_jax.evaluation import protocols
from hybrik_jax.evaluation import report
from hybrik_jax.evaluation import rootnet
from hybrik_jax.training import train_config

from conftest import tiny_variables  # pylint: disable=g-bad-import-order


@pytest.fixture(scope='module')
def generator():
  return synthetic.SyntheticGenerator(synthetic.SyntheticConfig(image_size=64),
                                      batch_size=4)


@pytest.fixture(scope='module')
def examples(generator):
  """Three synthetic examples (64 px) with image files that name a sequence."""
  out = []
  for i, ex in generator.generate(range(3), 'validation'):
    ex['image_file'] = f'TS{1 + i % 2}/imageSequence/img_{i:06d}.jpg'
    out.append(ex)
  return out


class _OracleModel:
  """Returns the raw outputs stored in its variables, whatever the images."""

  def apply(self, variables, images, train):
    del images, train
    return dict(variables['params'])


def test_protocol_on_oracle_predictions_gives_known_answers(generator, examples):
  """Ground-truth uvd/twists/shape/leaf rotations through the real decode."""
  size = 64
  elements = [input_pipeline.preprocess_eval(ex, input_size=size, scale_mult=1.25)
              for ex in examples]
  for e in elements:
    e['mask'] = np.float32(1.0)
  # One padded row (mask 0), as the evaluation batches pad.
  batch = {k: np.stack([e[k] for e in elements] + [elements[0][k]])
           for k in loop.STEP_KEYS}
  batch['mask'][-1] = 0.0
  stacked = {k: np.stack([e[k] for e in elements] + [elements[0][k]])
             for k in ('target_uvd_29', 'target_twist', 'target_beta', 'target_theta')}
  raw = {'pred_uvd': stacked['target_uvd_29'][:, :24],
         'pred_phi': stacked['target_twist'],
         'pred_shape': stacked['target_beta'],
         'pred_leaf': stacked['target_theta'][:, list(constants.LEAF_PARENT_JOINTS)]}
  everything = protocols.Protocol('everything', protocols.H36M_EVAL_14,
                                  smpl_24=True, pve=True, pck=True)
  step = loop.make_eval_step(_OracleModel(), generator.model,
                             model_config=models.get_tiny_model_config(input_size=size),
                             protocol=everything, flip_test=False)
  sums, per_example = jax.device_get(step({'params': raw}, batch))
  values = {k: float(v.compute()) for k, v in sums.items()}
  for k in ('mpjpe', 'pa_mpjpe', 'mpjpe_24', 'pa_mpjpe_24', 'pve'):
    assert values[k] < 1.0, (k, values[k])  # millimetres
  assert values['pck'] == pytest.approx(100.0)
  # Every error below 5 mm: above every AUC threshold but 0 -> 30/31.
  assert values['auc'] == pytest.approx(100.0 * 30 / 31, abs=1e-3)
  # 3 real examples x 14 joints, the padded row ignored.
  assert float(sums['mpjpe'].count) == 3 * 14
  assert float(sums['mpjpe_24'].count) == 3 * 24
  assert float(sums['pve'].count) == 3 * constants.NUM_VERTICES
  assert float(sums['pck'].count) == 3 * len(protocols.HP3D_PCK_JOINTS)
  np.testing.assert_array_equal(per_example['mpjpe'][1], [14, 14, 14, 0])
  assert float(sums['non_finite_outputs'].total) == 0.0
  assert np.all(per_example['mpjpe'][0][:3] / 14 < 1.0)
  np.testing.assert_allclose(per_example['pck'][0][:3] / per_example['pck'][1][:3], 100.0)

  # Collapsed joints: the metrics must see large errors.
  wrong = dict(raw, pred_uvd=np.zeros_like(raw['pred_uvd']))
  sums, _ = jax.device_get(step({'params': wrong}, batch))
  assert float(sums['mpjpe'].compute()) > 100.0
  assert float(sums['pck'].compute()) < 100.0


def test_evaluate_end_to_end_with_rootnet_and_json(tiny_checkpoint, examples,
                                                    generator, tmp_path, capsys):
  root_json = tmp_path / 'bbox_root_test_output.json'
  # RootNet's format: root_cam in mm; only the first example is listed.
  root_mm = (np.asarray(examples[0]['joint_root']) * 1000 + [0, 0, 50]).tolist()
  root_json.write_text(json.dumps([
      {'image_id': 0, 'file_name': examples[0]['image_file'], 'root_cam': root_mm,
       'bbox': [0, 0, 64, 64]}]))
  out = tmp_path / 'results.json'
  results = benchmark.evaluate(
      loading.load_for_inference(tiny_checkpoint), tiny_checkpoint,
      'mpi_inf_3dhp', split='test', data_source=examples,
      smpl_model=generator.model, batch_size=2, rootnet_json=str(root_json),
      output=str(out), progress=False)
  assert results['num_examples'] == 3
  assert results['root_depth'].startswith('RootNet (bbox_root_test_output.json) for 1 of 3')
  assert results['root_depth_rootnet_examples'] == 1
  assert set(results['metrics']) == {'mpjpe', 'pa_mpjpe', 'pck', 'auc'}
  for value in results['metrics'].values():
    assert np.isfinite(value)
  assert 0 < results['metrics']['pa_mpjpe'] <= results['metrics']['mpjpe'] + 1e-3
  assert results['counts']['mpjpe'] == 3 * 17
  assert results['flip_test'] is True
  assert results['non_finite_outputs'] == 0
  per = results['per_sequence']
  assert set(per) == {'TS1', 'TS2'} and set(per['TS1']) == {'mpjpe', 'pck', 'auc'}
  # Examples 0 and 2 are TS1, 1 is TS2: frame-weighted vs sequence-weighted.
  w = (2 * per['TS1']['mpjpe'] + per['TS2']['mpjpe']) / 3
  assert results['metrics']['mpjpe'] == pytest.approx(w, rel=1e-4)
  assert results['mpjpe_mean_over_sequences'] == pytest.approx(
      (per['TS1']['mpjpe'] + per['TS2']['mpjpe']) / 2, rel=1e-6)
  saved = json.loads(out.read_text())
  assert saved['metrics'] == pytest.approx(results['metrics'])
  table = report.format_table(results)
  assert 'PCK@150mm' in table and 'RootNet' in table and 'sequence TS2' in table
  assert 'mean over sequences' in table
  assert 'mpi_inf_3dhp (17 H36M joints, PA on the same joints, flip test on' in table

  # Default output path: beside the checkpoint directory.
  path = report.default_output_path(tiny_checkpoint, 'synthetic_humans/tiny',
                                    'validation')
  assert os.path.dirname(path) == os.path.dirname(tiny_checkpoint)
  assert path.endswith('tiny_model_eval_synthetic_humans_tiny_validation.json')


def test_evaluate_keeps_earlier_results(tiny_checkpoint, examples, generator,
                                       tmp_path):
  """A second evaluation never overwrites the first's JSON (issue 27): beside
  the checkpoint it takes the next free name; an explicit output that exists
  is refused before anything runs, unless overwriting is asked."""
  checkpoint = str(tmp_path / 'model')
  shutil.copytree(tiny_checkpoint, checkpoint)
  model = loading.load_for_inference(checkpoint)
  options = dict(split='test', data_source=examples[:2], batch_size=2,
                 smpl_model=generator.model, flip_test=False, progress=False)
  first = benchmark.evaluate(model, checkpoint, 'mpi_inf_3dhp', **options)
  default = report.default_output_path(checkpoint, 'mpi_inf_3dhp', 'test')
  assert first['output'] == default and first['kept_output'] is None
  second = benchmark.evaluate(model, checkpoint, 'mpi_inf_3dhp', **options)
  assert second['output'] == default[:-len('.json')] + '-2.json'
  assert second['kept_output'] == default
  assert json.loads(open(default).read())['num_examples'] == 2  # still there
  assert json.loads(open(second['output']).read())['metrics'] == pytest.approx(
      first['metrics'])
  assert report.output_path(checkpoint, 'mpi_inf_3dhp', 'test') == (
      default[:-len('.json')] + '-3.json', default)
  # An explicit path: refused if it exists (before evaluating), unless asked.
  with pytest.raises(report.OutputExistsError, match='--overwrite'):
    benchmark.evaluate(model, checkpoint, 'mpi_inf_3dhp', output=default,
                       **dict(options, data_source=None))
  assert report.output_path(checkpoint, 'mpi_inf_3dhp', 'test', output=default,
                            overwrite=True) == (default, None)
  assert report.output_path(checkpoint, 'mpi_inf_3dhp', 'test',
                            overwrite=True) == (default, None)


def test_load_checkpoint_from_training_workdir(tmp_path):
  cfg = models.get_tiny_model_config()
  # Weights that fit the config (load_checkpoint checks them against it).
  variables = jax.device_get(tiny_variables(models.create_model(cfg),
                                            cfg.input_size))
  manager = train_checkpoints.create_checkpoint_manager(
      tmp_path, steps_per_epoch=5, async_save=False)
  train_checkpoints.save_train_state(
      manager, 7, dict(variables, step=np.int32(7)),
      meta={'model': config_json.config_to_dict(cfg), 'steps_per_epoch': 5})
  train_checkpoints.wait(manager)
  manager.close()
  loaded = loading.load_for_inference(str(tmp_path))
  assert 'step 7' in loaded.description and loaded.step == 7
  assert loaded.model_config.backbone == cfg.backbone
  assert loaded.train_config is None  # not recorded in this checkpoint
  np.testing.assert_array_equal(
      loaded.variables['params']['backbone']['conv1']['kernel'],
      variables['params']['backbone']['conv1']['kernel'])
  # Weights of another model than the saved config: one line naming the step.
  manager = train_checkpoints.create_checkpoint_manager(
      tmp_path / 'other', steps_per_epoch=5, async_save=False)
  train_checkpoints.save_train_state(
      manager, 3, {'params': {'w': np.ones((2, 3), np.float32)}, 'step': 3},
      meta={'model': config_json.config_to_dict(cfg), 'steps_per_epoch': 5})
  manager.close()
  with pytest.raises(model_dir.ConfigMismatchError, match='step 3: model'):
    loading.load_for_inference(str(tmp_path / 'other'))


def test_reader_never_calls_a_vanished_step_corrupt(tmp_path, monkeypatch):
  """Issue 25 case 3: the trainer removes the step evaluate is reading (its
  garbage collection after a newer save): the newest step is read instead and
  named, never 'corrupt'. A step that is still the newest and damaged is."""
  cfg = models.get_tiny_model_config()
  variables = jax.device_get(tiny_variables(models.create_model(cfg),
                                            cfg.input_size))
  meta = {'model': config_json.config_to_dict(cfg), 'steps_per_epoch': 5}
  manager = train_checkpoints.create_checkpoint_manager(
      tmp_path, steps_per_epoch=5, async_save=False)
  train_checkpoints.save_train_state(
      manager, 7, dict(variables, step=np.int32(7)), meta=meta)
  real_restore = train_checkpoints.restore_variables
  calls = []

  def trainer_collects_meanwhile(reader, step):
    calls.append(step)
    if step == 7:  # the trainer saves step 8 and removes step 7 meanwhile
      train_checkpoints.save_train_state(
          manager, 8, dict(variables, step=np.int32(8)), meta=meta)
      shutil.rmtree(tmp_path / 'checkpoints' / '7', ignore_errors=True)
      assert not (tmp_path / 'checkpoints' / '7').exists()
    return real_restore(reader, step)

  monkeypatch.setattr(train_checkpoints, 'restore_variables',
                      trainer_collects_meanwhile)
  loaded = loading.load_for_inference(str(tmp_path))
  assert calls == [7, 8] and loaded.step == 8
  assert loaded.description.endswith(
      'step 8 (the trainer removed step 7 while it was read)')
  monkeypatch.setattr(train_checkpoints, 'restore_variables', real_restore)
  # The newest step itself damaged (and still there): corrupt, named.
  state = tmp_path / 'checkpoints' / '8' / 'state'
  for f in sorted(state.rglob('*')):
    if f.is_file() and f.stat().st_size > 1000:
      f.write_bytes(f.read_bytes()[:100])
      break
  manager.close()
  with pytest.raises(integrity.CorruptCheckpointError, match='corrupt'):
    loading.load_for_inference(str(tmp_path))


def test_defaults_come_from_the_checkpoint(tiny_checkpoint, tmp_path):
  """A model knows what it was validated on: evaluate needs no --dataset, and
  the plain dataset name means the builder config it trained on."""
  train_config = config_json.dict_to_config({'data': {
      'eval_dataset': 'synthetic_humans/small', 'eval_split': 'validation',
      'data_dir': '/data'}})
  assert benchmark.resolve_dataset(None, None, train_config) == (
      'synthetic_humans/small', 'validation')
  assert benchmark.resolve_dataset('synthetic_humans', None, train_config) == (
      'synthetic_humans/small', 'validation')
  assert benchmark.resolve_dataset('synthetic_humans/tiny', None, train_config) == (
      'synthetic_humans/tiny', 'validation')
  assert benchmark.resolve_dataset('pw3d', None, train_config) == ('pw3d', 'test')
  assert benchmark.resolve_dataset('synthetic_humans', 'train', None) == (
      'synthetic_humans', 'train')
  with pytest.raises(ValueError, match='--dataset is needed'):
    benchmark.resolve_dataset(None, None, None)
  # Recorded with an exported model (average_checkpoints does this).
  variables, model_config = model_dir.load_model(tiny_checkpoint)
  path = tmp_path / 'exported'
  model_dir.save_model(path, variables, model_config,
                       train_config=train_config)
  loaded = loading.load_for_inference(path)
  assert loaded.train_config.data.eval_dataset == 'synthetic_humans/small'
  assert loaded.description == f'exported model {path}'


def test_rootnet_json_formats_and_errors(tmp_path):
  ann = tmp_path / 'ann.json'
  ann.write_text(json.dumps({'images': [
      {'id': 5, 'file_name': ('s_09_act_02_subact_01_ca_01/'
                              's_09_act_02_subact_01_ca_01_000001.jpg')}]}))
  by_id = tmp_path / 'bbox_root_human36m_output.json'
  by_id.write_text(json.dumps([{'image_id': 5, 'root_cam': [10.0, 20.0, 5000.0]}]))
  table = rootnet.load_rootnet(str(by_id), str(ann))
  root = table.lookup('h36m/images/s_09_act_02_subact_01_ca_01/'
                      's_09_act_02_subact_01_ca_01_000001.jpg')
  np.testing.assert_allclose(root, [0.01, 0.02, 5.0], rtol=1e-6)
  assert table.lookup('s_11_act_02_subact_01_ca_01/other.jpg') is None
  with pytest.raises(ValueError, match='rootnet_annotations'):
    rootnet.load_rootnet(str(by_id))
  bad = tmp_path / 'bad.json'
  bad.write_text(json.dumps([{'image_id': 1, 'bbox': [0, 0, 1, 1]}]))
  with pytest.raises(ValueError, match="no 'root_cam'"):
    rootnet.load_rootnet(str(bad))
  with pytest.raises(FileNotFoundError, match='not found'):
    rootnet.load_rootnet(str(tmp_path / 'missing.json'))
  # Shared base names (3DPW's image_00000.jpg) only match with their folder.
  shared = tmp_path / 'pw3d.json'
  shared.write_text(json.dumps([
      {'img_name': 'a_seq_00/image_00000.jpg', 'root_cam': [0, 0, 3000]},
      {'img_name': 'b_seq_00/image_00000.jpg', 'root_cam': [0, 0, 4000]}]))
  table = rootnet.load_rootnet(str(shared))
  assert table.lookup('pw3d/imageFiles/b_seq_00/image_00000.jpg')[2] == pytest.approx(4.0)
  assert table.lookup('c_seq_00/image_00000.jpg') is None


def test_bad_inputs_give_clear_errors(tmp_path, capsys):
  with pytest.raises(FileNotFoundError, match='does not exist'):
    loading.load_for_inference(str(tmp_path / 'nope'))
  with pytest.raises(FileNotFoundError, match='neither an exported model'):
    loading.load_for_inference(str(tmp_path))
  with pytest.raises(ValueError, match='unknown dataset'):
    protocols.protocol_for('imagenet')
  with pytest.raises(ValueError, match='real SMPL body model'):
    smpl_io.load_body_model(None, dataset='pw3d')
  # The CLI prints the error and exits with status 2.
  rc = evaluate.main(['--checkpoint', str(tmp_path / 'nope'), '--dataset', 'pw3d'])
  assert rc == 2
  assert 'does not exist' in capsys.readouterr().err


def test_kid_template_flag(tiny_checkpoint, tmp_path, capsys):
  """--kid_template: for SMPL-X models only, its file checked before any data is
  read, the errors naming the flags (one line, status 2)."""
  import types  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  rc = evaluate.main(['--checkpoint', tiny_checkpoint, '--dataset', 'synthetic_humans/tiny',
                      '--kid_template', str(tmp_path / 'kid.npy')])
  assert rc == 2
  assert '--kid_template is for SMPL-X models' in capsys.readouterr().err
  smplx_model = types.SimpleNamespace(
      model_config=ml_collections.ConfigDict({'body': 'smplx'}), train_config=None)
  model_file = tmp_path / 'SMPLX_NEUTRAL.npz'
  model_file.write_bytes(b'')
  with pytest.raises(bodies.SMPLXFileError,
                     match=r'kid\.npy.* not found \(--kid_template\)'):
    benchmark.prepare(smplx_model, 'synthetic_whole_body/tiny', smpl_path=str(model_file),
                      kid_template=str(tmp_path / 'kid.npy'))
  with pytest.raises(bodies.SMPLXFileError, match=r'smplx_kid_template\.npy.* not found \(--kid_template\)'):
    benchmark.prepare(smplx_model, 'synthetic_whole_body/tiny', smpl_path=str(model_file))
  with pytest.raises(bodies.SMPLXFileError, match='--kid_template is set but --smpl is not'):
    benchmark.prepare(smplx_model, 'synthetic_whole_body/tiny',
                      kid_template=str(tmp_path / 'kid.npy'))


def test_protocol_facts():
  assert len(protocols.H36M_EVAL_14) == 14
  names = [constants.H36M_JOINT_NAMES[i] for i in protocols.H36M_EVAL_14]
  assert not {'pelvis', 'torso', 'nose'} & set(names)
  pck = {constants.H36M_JOINT_NAMES[i] for i in protocols.HP3D_PCK_JOINTS}
  assert pck == {'head', 'neck', 'left_shoulder', 'right_shoulder', 'left_elbow',
                 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip',
                 'right_hip', 'left_knee', 'right_knee', 'left_ankle',
                 'right_ankle'}
  assert protocols.PROTOCOLS['h36m'].align_all_17
  assert not protocols.PROTOCOLS['pw3d'].align_all_17 and protocols.PROTOCOLS['pw3d'].pve
  config = train_config.load_config_file(os.path.join(
      os.path.dirname(os.path.dirname(__file__)), 'configs', 'test.py'))
  assert config.data.eval_split == 'validation'
  with pytest.raises(FileNotFoundError, match='config file'):
    train_config.load_config_file('configs/missing.py')
  assert protocols.group_of(protocols.PROTOCOLS['h36m'],
                           's_09_act_16_subact_01_ca_01/x.jpg') == 'WalkTogether'


def test_report_of_nothing_says_undefined_with_failure_counts(tmp_path):
  """Issue 25 case 1: every prediction NaN -> 'undefined' (JSON null), the
  failed samples counted beside each metric, never '0.00 mm'."""
  target = np.random.default_rng(3).normal(size=(6, 17, 3)).astype(np.float32)
  batch = {'joints17_cam': target, 'joints17_valid': np.ones((6, 17)),
           'mask': np.ones(6)}
  protocol = protocols.PROTOCOLS['mpi_inf_3dhp']
  sums, _ = jax.device_get(protocols.batch_metrics(
      protocol, batch, pred_xyz_17=np.full_like(target, np.nan)))
  results = report.summarise(
      loop.EvalRun(sums=sums, num_examples=6), protocol=protocol,
      flip_test=True, dataset='mpi_inf_3dhp', split='test',
      checkpoint_kind='model', body_model='test')
  assert set(results['metrics']) == {'mpjpe', 'pa_mpjpe', 'pck', 'auc'}
  assert all(v is None for v in results['metrics'].values())
  assert all(n == 6 for n in results['non_finite_pred'].values())
  table = report.format_table(results)
  assert '0.00' not in table
  assert table.count('undefined (no sample scored)  (0 averaged; left out: '
                     '6 failed samples') == 4, table
  path = report.write(results, str(tmp_path / 'r.json'))
  assert json.load(open(path))['metrics']['mpjpe'] is None
