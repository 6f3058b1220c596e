"""Smoke tests of benchmarks/efficiency.py, components.py, vs_reference.py and ik_smplx.py.

Tiny networks (configs/test.py), batch 2, one or two timed steps. They check
that the benchmarks run end to end and write well-formed reports (structure,
positive and finite numbers); they never assert speed. The theta loss weight
is set to 0 and the transformer has one block here so the compiled steps stay
quick to compile (the IK is slow to compile); the IK path of the step is
covered by the trainer's tests.
"""

import json
import math
import os

import chex
import numpy as np
import pytest

from benchmarks import components
from benchmarks import efficiency
from benchmarks import export_speed
from benchmarks import ik_smplx
from benchmarks import vs_reference
from hybrik_jax.body import synthetic_body

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_CONFIG = os.path.join(REPO, 'configs', 'test.py')


@pytest.fixture(scope='module')
def smpl_model():
  return synthetic_body.synthetic_smpl_model()


def _tiny_config():
  config = efficiency.load_config(TEST_CONFIG)
  config.loss.theta = 0.0
  config.model.num_blocks = 1
  config.optim.cooldown_steps = 10  # needs the run's length in a trainer, not here
  return config


def test_synthetic_batch_is_valid():
  batch = efficiency.synthetic_batch(3, 64, seed=1)
  expected = {
      'image': (3, 64, 64, 3), 'target_uvd_29': (3, 29, 3),
      'target_uvd_weight_29': (3, 29, 3), 'target_xyz_24': (3, 24, 3),
      'target_xyz_weight_24': (3, 24, 3), 'target_theta': (3, 24, 4),
      'target_theta_weight': (3, 24, 4), 'target_beta': (3, 10),
      'target_smpl_weight': (3, 1), 'target_twist': (3, 23, 2),
      'target_twist_weight': (3, 23, 2), 'trans_inv': (3, 2, 3),
      'intrinsics': (3, 3, 3), 'joint_root': (3, 3), 'depth_factor': (3, 1),
      'joints17_cam': (3, 17, 3), 'joints17_valid': (3, 17), 'dataset_id': (3,),
      'bbox': (3, 4), 'mask': (3,)}
  assert set(batch) == set(expected)
  chex.assert_tree_all_finite(batch)
  for k, shape in expected.items():
    assert batch[k].shape == shape, k
    assert np.all(np.isfinite(batch[k])), k
  assert batch['dataset_id'].dtype == np.int32
  assert batch['image'].dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(batch['target_theta'], axis=-1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(batch['target_twist'], axis=-1), 1.0, rtol=1e-5)
  assert np.all(np.abs(batch['target_uvd_29']) <= 0.5)
  assert np.all(batch['joint_root'][:, 2] > 0)


def test_load_config_errors_name_the_file(tmp_path):
  with pytest.raises(FileNotFoundError, match='nope.py'):
    efficiency.load_config(str(tmp_path / 'nope.py'))
  bad = tmp_path / 'bad.py'
  bad.write_text('x = 1\n')
  with pytest.raises(ValueError, match='get_config'):
    efficiency.load_config(str(bad))


def _check_memory(mem):
  for key in ('argument', 'output', 'alias', 'temp', 'total', 'peak'):
    assert isinstance(mem[key], int) and mem[key] >= 0, key
  assert mem['argument'] > 0 and mem['total'] > 0
  assert mem['total'] == mem['argument'] + mem['output'] - mem['alias'] + mem['temp']


def _write_tiny_config(tmp_path):
  config_file = tmp_path / 'tiny.py'
  config_file.write_text(
      'import importlib.util\n'
      'def get_config():\n'
      f'  spec = importlib.util.spec_from_file_location("t", {TEST_CONFIG!r})\n'
      '  m = importlib.util.module_from_spec(spec)\n'
      '  spec.loader.exec_module(m)\n'
      '  c = m.get_config()\n'
      '  c.loss.theta = 0.0\n'
      '  c.model.num_blocks = 1\n'
      '  c.optim.cooldown_steps = 10\n'
      '  return c\n')
  return str(config_file)


@pytest.mark.slow
def test_efficiency_cli_end_to_end(tmp_path, capsys):
  out = tmp_path / 'sub' / 'eff.json'
  efficiency.main(['--config', _write_tiny_config(tmp_path), '--batch-size', '2',
                   '--steps', '2', '--warmup', '0', '--out', str(out)])
  printed = capsys.readouterr().out
  assert 'ratio t/d' in printed and 'memory total' in printed and 'step time' in printed
  report = json.loads(out.read_text())
  assert set(report) >= {'config', 'machine', 'results', 'ratios', 'paper', 'goals'}
  assert report['config']['batch_size_per_device'] == 2
  assert report['config']['backbone_remat'] is False
  assert report['machine']['cpu_cores'] >= 1
  for head in efficiency.HEADS:
    r = report['results'][head]
    _check_memory(r['memory'])
    assert r['flops'] > 0 and r['params'] > 0 and r['compile_s'] > 0
    t = r['timing']
    assert t['steps'] == 2 and len(t['times_s']) == 2
    assert all(x > 0 for x in t['times_s'])
    assert t['p25_s'] <= t['median_s'] <= t['p75_s']
    assert math.isfinite(r['final_loss'])
  # The deconv head has the heatmap decoder, the transformer one does not.
  assert report['results']['deconv']['params'] != report['results']['transformer']['params']
  for key in ('memory_total', 'memory_temp', 'flops', 'params', 'step_time'):
    ratio = report['ratios'][key]
    assert ratio is not None and 0 < ratio < 100, key
  assert isinstance(report['goals']['memory_met'], bool)
  assert isinstance(report['goals']['time_met'], bool)

  # Without timings (--skip-timing): no step-time ratio, no step-time row.
  for head in efficiency.HEADS:
    del report['results'][head]['timing']
  report['ratios'] = efficiency.ratios(report['results'])
  assert report['ratios']['step_time'] is None
  table = efficiency.format_table(report)
  assert 'memory total' in table and 'step time' not in table

  # One head (--heads transformer, e.g. the HRNet configs): a one-column table.
  single = {k: v for k, v in report.items() if k != 'ratios'}
  single['results'] = {'transformer': report['results']['transformer']}
  table = efficiency.format_table(single)
  assert 'transformer' in table and 'deconv' not in table and 'parameters' in table
  with pytest.raises(SystemExit):
    efficiency.main(['--config', _write_tiny_config(tmp_path), '--heads', 'transformer,mlp'])


@pytest.mark.slow
def test_components_end_to_end(tmp_path, smpl_model):
  report = components.run(_tiny_config(), batch_size=2, steps=1, warmup=0,
                          only=('backbone', 'transformer_head', 'loss', 'adam'),
                          include_step=False, smpl_model=smpl_model, progress=False)
  report = json.loads(json.dumps(report))
  keys = [r['key'] for r in report['components']]
  assert keys == ['backbone', 'transformer_head', 'loss', 'adam']
  for r in report['components']:
    _check_memory(r['memory'])
    assert r['flops'] > 0, r['key']
    assert r['timing']['median_s'] > 0
    assert r['mode'] in ('fwd+bwd', 'fwd')
  by_key = {r['key']: r for r in report['components']}
  assert by_key['backbone']['params'] > 0 and by_key['loss']['params'] == 0
  # Adam over the whole model has every parameter: backbone + transformer head.
  assert by_key['adam']['params'] == (by_key['backbone']['params']
                                      + by_key['transformer_head']['params'])
  assert 'backbone' in components.format_table(report)
  with pytest.raises(ValueError, match='unknown components'):
    components.run(_tiny_config(), batch_size=2, only=('nope',), smpl_model=smpl_model)


@pytest.mark.slow
def test_vs_reference_project_only_end_to_end(tmp_path, capsys):
  # Worker subprocesses, the alternation protocol, RSS and the report; no PyTorch needed.
  out = tmp_path / 'vs.json'
  vs_reference.main(['--project-only', '--config', TEST_CONFIG, '--batch-size', '2',
                     '--input-size', '64', '--parts', 'backbone,ik', '--ik-batches', '2',
                     '--rounds', '2', '--steps', '1', '--warmup', '0', '--out', str(out)])
  printed = capsys.readouterr().out
  assert 'resnet_tiny forward+backward alone' in printed and 'IK + skinning, batch 2' in printed
  report = json.loads(out.read_text())
  assert report['sides'] == ['project']
  for part, cases in (('backbone', ['backbone']), ('ik', ['ik_2'])):
    res = report['parts'][part]
    assert list(res['cases']) == cases
    for row in res['cases'].values():
      assert len(row['times_s']['project']) == 2 and row['median_s']['project'] > 0
      assert row['model_flops'] == row['flops']['project'] > 0
      assert 'ratio' not in row
    assert res['matmul_flops_per_s']['project'] > 0
    rss = res['rss']['project']
    assert rss['rss_process_kib'] >= rss['rss_steps_kib'] > 0


def test_vs_reference_table_and_user_errors(tmp_path, capsys):
  row = lambda p, r: {'median_s': {'project': p, 'reference': r}, 'ratio': p / r,
                      'model_flops': 4e9, 'flops': {'project': 5e9, 'reference': 4e9}}
  rss = lambda gib: {'rss_process_kib': int(gib * 2**20), 'rss_steps_kib': int(gib * 2**19)}
  report = {'sides': ['project', 'reference'], 'backbone': 'resnet34', 'parts': {
      'transformer': {'cases': {'transformer': row(2.0, 4.0)},
                      'matmul_flops_per_s': {'project': 8e9, 'reference': 4e9},
                      'rss': {'project': rss(3.0), 'reference': rss(2.0)}}}}
  table = vs_reference.format_table(report)
  line = table.splitlines()[2]
  assert '| whole train step, transformer head | 2 | 4 | **0.50** |' in line
  assert '2 (25 %)' in line and '1 (25 %)' in line   # 4 GFLOP / 2 s of 8; / 4 s of 4
  assert '3.00 (1.50)' in line and '| 1.50 |' in line
  for argv, message in (([], '--reference-repo PATH is required'),
                        (['--reference-repo', str(tmp_path)], 'no hybrik/models package'),
                        (['--project-only', '--config', str(tmp_path / 'x.py')], 'no such file')):
    with pytest.raises(SystemExit) as e:
      vs_reference.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_ik_smplx_benchmark_smoke(capsys):
  # benchmarks/ik_smplx.py end to end at batch 1, one timed run, no released code.
  assert ik_smplx.main(['--batch-sizes', '1', '--repeats', '1', '--mode', 'naive']) == 0
  printed = capsys.readouterr().out
  rows = [line for line in printed.splitlines() if line.startswith('| IK')]
  assert [r.split('|')[1].strip() for r in rows] == ['IK', 'IK + skinning'], printed
  for r in rows:
    cells = [c.strip() for c in r.split('|')[2:-1]]
    assert cells[0] == '1' and len(cells) == 4, r  # batch, compile, ms, samples/s
    assert all(float(c.replace(',', '')) > 0 for c in cells[1:]), r
  assert 'released' not in printed
  # With the released side: a speed-up column (released time / ours).
  table = ik_smplx.format_table([dict(batch=64, case='IK', compile_s=1.0, ours_s=0.002,
                                      ref_s=0.008, vertex_diff_m=None)])
  assert '| IK | 64 | 1.00 | 2.000 | 32,000 | 8.000 | 8,000 | **4.00x** |' in table
  assert ik_smplx.main(['--reference-dir', '/nonexistent', '--batch-sizes', '1']) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and 'Jeff-sjtu/HybrIK' in err, err
  for argv in (['--batch-sizes', 'x'], ['--reference-dir', '/x', '--mode', 'train']):
    with pytest.raises(SystemExit) as e:
      ik_smplx.main(argv)
    assert e.value.code == 2


def test_export_speed_smoke(tmp_path, capsys):
  # benchmarks/export_speed.py end to end on the test model: StableHLO only,
  # batch 1, one timed call (it had broken unnoticed when models.float32_outputs
  # moved to models.inference).
  out = tmp_path / 'speed.json'
  assert export_speed.main(['--model', 'tiny', '--batches', '1', '--formats', 'stablehlo',
                            '--steps', '1', '--out', str(out)]) == 0
  rows = json.loads(out.read_text())['rows']
  assert {(r['runtime'], r['part']) for r in rows} == {
      (rt, part) for rt in ('JAX jit', 'stablehlo')
      for part in ('network', 'network + IK + mesh')}
  assert all(r['batch'] == 1 and r['images_per_s'] > 0 for r in rows), rows
  printed = capsys.readouterr().out
  assert '| stablehlo | network + IK + mesh | 1 |' in printed
  assert 'released PyTorch: not timed (give --released_repo DIR' in printed


def test_export_speed_refuses_a_released_repo_without_the_package(tmp_path, capsys):
  # Checked before anything is timed: one line, status 2.
  assert export_speed.main(['--model', 'paper', '--released_repo', str(tmp_path)]) == 2
  err = capsys.readouterr().err
  assert err.startswith('error: --released_repo') and len(err.strip().splitlines()) == 1, err
