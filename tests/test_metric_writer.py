"""The TensorFlow-free TensorBoard writer writes event files TensorBoard reads."""

import json
import os

from tensorboard.backend.event_processing import event_accumulator

from hybrik_jax.training import metric_writer


def test_scalars_and_hparams_round_trip(tmp_path):
  with metric_writer.MetricWriter(str(tmp_path)) as w:
    w.write_hparams({'batch_size': 32, 'model.head': 'transformer', 'shape': (1, 2)})
    w.write_scalars(1, {'train/loss': 2.5, 'train/lr': 1e-3})
    w.write_scalars(2, {'train/loss': 1.5})
  acc = event_accumulator.EventAccumulator(str(tmp_path))
  acc.Reload()
  loss = acc.Scalars('train/loss')
  assert [e.step for e in loss] == [1, 2]
  assert [round(e.value, 6) for e in loss] == [2.5, 1.5]
  assert abs(acc.Scalars('train/lr')[0].value - 1e-3) < 1e-9
  hp = json.loads((tmp_path / 'hparams.json').read_text())
  assert hp == {'batch_size': 32, 'model.head': 'transformer', 'shape': '(1, 2)'}


def test_just_logging_writes_nothing(tmp_path):
  with metric_writer.MetricWriter(str(tmp_path / 'x'), just_logging=True) as w:
    w.write_hparams({'a': 1})
    w.write_scalars(0, {'loss': 1.0})
  assert not os.path.exists(tmp_path / 'x')


def test_writes_without_importing_tensorflow_and_tensorflow_reads_it(tmp_path):
  """A fresh process (TensorFlow installed, as in the test extra) writes the
  events without importing TensorFlow (6 s of a trainer's start); TensorFlow's
  own reader then reads them back."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  script = (
      'import sys\n'
      'from hybrik_jax.training import metric_writer\n'
      f'with metric_writer.MetricWriter({str(tmp_path)!r}) as w:\n'
      "  w.write_scalars(7, {'train/loss': 0.25})\n"
      "print('tensorflow' in sys.modules)\n")
  repo = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
  out = subprocess.run([sys.executable, '-c', script], capture_output=True,
                       text=True, check=True, cwd=repo,
                       env=dict(os.environ, PYTHONPATH=repo))
  assert out.stdout.split() == ['False'], out.stdout + out.stderr[-2000:]
  import glob  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  (path,) = glob.glob(str(tmp_path / 'events.out.tfevents.*'))
  values = [(e.step, v.tag, v.simple_value)
            for e in tf.compat.v1.train.summary_iterator(path)
            for v in e.summary.value]
  assert values == [(7, 'train/loss', 0.25)]
