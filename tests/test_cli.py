"""The command-line programs' flags (hybrik_jax.cli_flags): one style, one line per error.

Every program: `python -m hybrik_jax.X --help` lists its flags and exits 0; a
wrong flag is one line (`error: ...` naming it) and exit 2, no traceback. The
subprocesses run in parallel (each imports JAX). In process: each program's
`parse` runs many times (a fresh FlagValues each), old spellings still work
with a one-line note, missing and bad values are one-line `cli.UserError`s.
"""

import os
import subprocess
import sys

import pytest

from hybrik_jax import average_checkpoints
from hybrik_jax import cli
from hybrik_jax import cli_flags
from hybrik_jax import convert
from hybrik_jax import demo
from hybrik_jax import evaluate
from hybrik_jax import export_model
from hybrik_jax import prepare_data
from hybrik_jax import train

REPO = os.path.join(os.path.dirname(__file__), '..')

# Each program and flags its --help must list (the shared names included).
HELP_LISTS = {
    'train': ['--config', '--workdir', '--distributed', '--heartbeat_timeout_s',
              '--config.FIELD'],
    'evaluate': ['--checkpoint', '--dataset', '--data_dir', '--smpl', '--h36m_regressor',
                 '--batch_size', '--[no]flip_test', '--out', '--num_examples'],
    'demo': ['--image', '--video', '--checkpoint', '--out', '--bbox', '--smpl',
             '--h36m_regressor', '--batch_size', '--detections', '--[no]smooth',
             '--placement', '--hybrik_res_pk'],
    'convert': ['--torch_checkpoint', '--out', '--arch', '--num_heads', '--input_size',
                '--[no]overwrite', '--[no]allow_non_finite'],
    'prepare_data': ['--dataset', '--data_dir', '--manual_dir', '--file_format',
                     '--num_workers', '--[no]overwrite'],
    'average_checkpoints': ['--workdir', '--last', '--out', '--[no]overwrite'],
    'export_model': ['--checkpoint', '--out', '--format', '--batch', '--[no]dynamic_batch',
                     '--[no]flip_test', '--[no]with_mesh', '--[no]joints_only', '--smpl'],
    'demo_inputs images': ['--dataset', '--n', '--out', '--split', '--first', '--data_dir'],
    'demo_inputs clip': ['--out', '--frames', '--size', '--fps', '--seed'],
}
# A wrong flag for each program (demo in both modes).
WRONG_FLAGS = {
    'train': ['--config', 'configs/test.py', '--workdir', '/nonexistent/w', '--chekpoint=x'],
    'evaluate': ['--checkpoint', '/nonexistent', '--chekpoint=x'],
    'demo': ['--image', 'x.png', '--chekpoint=x'],
    'demo --video': ['--video', 'x.mp4', '--chekpoint=x'],
    'convert': ['--torch_checkpoint', 'x.pth', '--out', '/nonexistent', '--chekpoint=x'],
    'prepare_data': ['--chekpoint=x'],
    'average_checkpoints': ['--chekpoint=x'],
    'export_model': ['--checkpoint', '/nonexistent', '--out', '/nonexistent',
                     '--format', 'onnx', '--chekpoint=x'],
    'demo_inputs': ['images', '--chekpoint=x'],
}


def _start(tool, args):
  return subprocess.Popen(
      [sys.executable, '-m', f'hybrik_jax.{tool.split()[0]}', *args],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
      env=dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS='cpu'))


@pytest.fixture(scope='module')
def runs():
  """(tool, kind) -> (returncode, stdout, stderr), all run in parallel."""
  procs = {(tool, 'help'): _start(tool, tool.split()[1:] + ['--help'])
           for tool in HELP_LISTS}
  procs.update({(tool, 'wrong'): _start(tool, args) for tool, args in WRONG_FLAGS.items()})
  out = {}
  for key, proc in procs.items():
    stdout, stderr = proc.communicate(timeout=600)
    out[key] = (proc.returncode, stdout, stderr)
  return out


@pytest.mark.parametrize('tool', sorted(HELP_LISTS))
def test_help_lists_the_flags_and_exits_0(runs, tool):
  rc, stdout, stderr = runs[tool, 'help']
  assert rc == 0, stderr
  assert 'Traceback' not in stderr
  assert f'python -m hybrik_jax.{tool}' in stdout  # the usage line
  for flag in HELP_LISTS[tool]:
    assert flag in stdout, (tool, flag)


@pytest.mark.parametrize('tool', sorted(WRONG_FLAGS))
def test_wrong_flag_is_one_line_and_exit_2(runs, tool):
  rc, stdout, stderr = runs[tool, 'wrong']
  assert rc == 2, stderr
  lines = stderr.strip().splitlines()
  assert len(lines) == 1, stderr
  assert lines[0].startswith('error: unknown flag --chekpoint'), lines
  if tool.split()[0] in ('evaluate', 'demo'):
    assert 'did you mean --checkpoint?' in lines[0]
  assert stdout == ''


# -- In process: parse() is re-runnable and its errors are one line. ----------


PARSERS = {'evaluate': evaluate.parse, 'demo': demo.parse, 'convert': convert.parse,
           'prepare_data': prepare_data.parse,
           'average_checkpoints': average_checkpoints.parse,
           'export_model': export_model.parse}


def test_parse_runs_many_times_in_one_process():
  for _ in range(2):
    a = evaluate.parse(['--checkpoint', 'c', '--batch_size', '4', '--noflip_test'])
    b = evaluate.parse(['--checkpoint', 'd'])
    assert (a.checkpoint, a.batch_size, a.flip_test) == ('c', 4, False)
    assert (b.checkpoint, b.batch_size, b.flip_test, b.out) == ('d', 32, True, None)
    v = demo.parse(['--video', 'v.mp4', '--smooth', '--batch_size=2', '--focal', '500'])
    assert (v.video, v.image, v.smooth, v.batch_size, v.focal) == ('v.mp4', None, True, 2, 500.0)
    p = prepare_data.parse(['--dataset', 'synthetic_humans/tiny,pw3d'])
    assert p.dataset == ['synthetic_humans/tiny', 'pw3d']
    assert prepare_data.parse([]).dataset == ['synthetic_humans']
    t = train.parse(['--config', os.path.join(REPO, 'configs', 'test.py'),
                     '--workdir', 'w', '--config.batch_size=3'])
    assert (t.config.batch_size, t.workdir) == (3, 'w')


@pytest.mark.parametrize('argv,name,value', [
    (['--torch-checkpoint', 'x.pth', '--out', 'o', '--num-heads', '4'], 'torch_checkpoint', 'x.pth'),
    (['--torch-checkpoint=x.pth', '--out=o'], 'torch_checkpoint', 'x.pth'),
])
def test_convert_old_spellings_work_with_a_note(capsys, argv, name, value):
  args = convert.parse(argv)
  assert args[name].value == value and args.out == 'o'
  err = capsys.readouterr().err.strip().splitlines()
  assert err and all(line.startswith('warning: --') and 'is deprecated: use --' in line
                     for line in err)
  assert 'warning: --torch-checkpoint is deprecated: use --torch_checkpoint' in err


def test_old_spellings_of_prepare_data_and_evaluate(capsys):
  args = prepare_data.parse(['--datasets', 'h36m', '--manual-dir', 'm', '--data-dir', 'd',
                             '--file-format', 'tfrecord', '--num-workers', '2'])
  assert (args.dataset, args.manual_dir, args.data_dir, args.file_format,
          args.num_workers) == (['h36m'], 'm', 'd', 'tfrecord', 2)
  assert evaluate.parse(['--checkpoint', 'c', '--output', 'r.json']).out == 'r.json'
  assert len(capsys.readouterr().err.strip().splitlines()) == 6


@pytest.mark.parametrize('parse,argv,match', [
    (evaluate.parse, [], r'^missing --checkpoint \(exported model directory'),
    (convert.parse, [], r'^missing --torch_checkpoint \(.*\) and --out \('),
    (average_checkpoints.parse, ['--out', 'o'], r'^missing --workdir'),
    (demo.parse, ['--checkpoint', 'c'], r'^give one of --image or --video$'),
    (demo.parse, ['--image', 'a', '--video', 'b'], r'^give only one of --image or --video'),
    (demo.parse, ['--image'], r'^--image needs a value$'),
    (demo.parse, ['--image', 'a', '--placement', 'box'],
     r'^--placement=box: value should be one of <auto\|camera\|fit>'),
    (evaluate.parse, ['--checkpoint', 'c', '--batch_size', '0'], r'^--batch_size=0: .*positive'),
    (evaluate.parse, ['--checkpoint', 'c', '--batch_size=many'], r'^--batch_size=many: '),
    (evaluate.parse, ['--checkpoint', 'c', '--flip_test=maybe'], r'^--flip_test=maybe: not true or false'),
    (convert.parse, ['--torch_checkpoint', 'x', '--out', 'o', '--arch', 'vit'],
     r'^--arch=vit: value should be one of <auto\|transformer\|deconv\|deconv_cam\|hrnet_cam\|hrnet_smplx_cam\|hrnet_smplx_reg\|backbone>'),
    (prepare_data.parse, ['--file_format', 'zip'], r'^--file_format=zip'),
    (evaluate.parse, ['--checkpoint', 'c', 'stray'], r"^unexpected argument 'stray'"),
    (evaluate.parse, ['stray', '--checkpoint', 'c'], r"^unexpected argument 'stray'"),
    (average_checkpoints.parse, ['--workdir', 'w', '--out', 'o', '--noverwrite'],
     r'^unknown flag --noverwrite; did you mean --overwrite\?'),
    (train.parse, ['--config', os.path.join(REPO, 'configs', 'test.py'), '--workdir', 'w',
                   '--config.no_such_field=1'],
     r'^bad config override in --config.no_such_field=1 '),
    (train.parse, ['--config', 'no_such_config.py', '--workdir', 'w'],
     r'^--config: cannot load the config file \(.*No such file'),
])
def test_bad_command_lines_are_one_line_user_errors(parse, argv, match):
  with pytest.raises(cli.UserError, match=match) as info:
    parse(argv)
  assert '\n' not in str(info.value)


def test_help_in_process_exits_0(capsys):
  for parse in PARSERS.values():
    with pytest.raises(SystemExit) as info:
      parse(['--help'])
    assert info.value.code == 0
  out = capsys.readouterr().out
  assert out.count('\nflags:\n') == len(PARSERS)
  assert '--torch-checkpoint: deprecated spelling of --torch_checkpoint' in out


def test_the_shared_flags_have_one_name_and_help_text():
  help_of = {}
  for parse, argv in ((evaluate.parse, ['--checkpoint', 'c']), (demo.parse, ['--image', 'i'])):
    fv = parse(argv)
    for flag in ('checkpoint', 'h36m_regressor', 'flip_test'):
      help_of.setdefault(flag, set()).add(fv[flag].help)
  assert help_of == {'checkpoint': {cli_flags.CHECKPOINT_HELP},
                     'h36m_regressor': {cli_flags.H36M_REGRESSOR_HELP},
                     'flip_test': {cli_flags.FLIP_TEST_HELP}}
  valid = {'evaluate': ['--checkpoint', 'c'], 'demo': ['--image', 'i'],
           'convert': ['--torch_checkpoint', 'x', '--out', 'o'], 'prepare_data': [],
           'average_checkpoints': ['--workdir', 'w', '--out', 'o'],
           'export_model': ['--checkpoint', 'c', '--out', 'o', '--format', 'onnx']}
  for name, parse in PARSERS.items():  # absl's style: no hyphenated names
    assert not [flag for flag in parse(valid[name]) if '-' in flag], name
