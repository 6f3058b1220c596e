"""What a run reports: interval averages, hyperparameters, the final table."""

import math
import shlex
from typing import Any, Mapping

from hybrik_jax import parallel
from hybrik_jax.checkpoints import config_json
from hybrik_jax.evaluation import metrics


class Averager:
  """Averages scalar metrics over a logging interval (on the host).

  `add` keeps device arrays (no host sync on every step); `result` reads
  them once.
  """

  def __init__(self):
    self._sums, self._n = {}, 0

  def add(self, metrics: Mapping[str, Any]) -> None:
    for k, v in metrics.items():
      self._sums[k] = self._sums[k] + v if k in self._sums else v
    self._n += 1

  def result(self) -> dict[str, float]:
    out = {k: float(parallel.host_value(v)) / max(self._n, 1)
           for k, v in self._sums.items()}
    self._sums, self._n = {}, 0
    return out


def flat_hparams(config) -> dict[str, Any]:
  """The config as {'a.b.c': scalar or str} (TensorBoard's hparams)."""
  flat = {}

  def walk(d, prefix):
    for k, v in d.items():
      if isinstance(v, Mapping):
        walk(v, f'{prefix}{k}.')
      else:
        flat[f'{prefix}{k}'] = v if isinstance(v, (int, float, str, bool)) \
            else str(v)

  walk(config_json.config_to_dict(config), '')
  return flat


def left_out(m: Mapping[str, float]) -> str:
  """' [left out: N joint(s) with a non-finite prediction ...]' or ''."""
  parts = []
  if m.get('non_finite_pred'):
    parts.append(f'{int(m["non_finite_pred"])} failed sample(s) (a non-finite '
                 'predicted joint)')
  if m.get('non_finite_target'):
    parts.append(f'{int(m["non_finite_target"])} with non-finite ground truth')
  return f' [left out: {"; ".join(parts)}]' if parts else ''


def validation_line(step: int, protocol_name: str,
                    m: Mapping[str, float]) -> str:
  """'step N: validation P MPJPE x mm, PA-MPJPE y mm over n examples'."""
  return (f'step {step}: validation {protocol_name} MPJPE '
          f'{metrics.format_value(m["mpjpe"], "mm", precision=1)}, PA-MPJPE '
          f'{metrics.format_value(m["pa_mpjpe"], "mm", precision=1)} over '
          f'{int(m["num_examples"])} examples{left_out(m)}')


def format_summary(summary: Mapping[str, Any]) -> str:
  """The human-readable end-of-training report."""
  lines = ['', '=' * 64, f'Training finished at step {summary["step"]}.']
  rows = []
  for name, label in (('untrained', 'untrained model'),
                      ('mean_pose', 'constant: mean training pose')):
    if name in summary.get('baselines', {}):
      rows.append((label, summary['baselines'][name]))
  if 'eval' in summary:
    rows.append(('trained model', summary['eval']))
  if rows:
    if summary.get('protocol'):
      lines.append(f'Validation protocol: {summary["protocol"]}')
    lines.append(f'{"validation":32s} {"MPJPE mm":>10s} {"PA-MPJPE mm":>12s}')
    for label, m in rows:
      lines.append(f'{label:32s} '
                   f'{metrics.format_value(m["mpjpe"], width=10, precision=1)} '
                   f'{metrics.format_value(m["pa_mpjpe"], width=12, precision=1)}'
                   f'{left_out(m)}')
  if ('baselines' in summary and 'eval' in summary and
      math.isfinite(summary['eval']['mpjpe'])):
    const = summary['baselines']['mean_pose']['mpjpe']
    gain = 100.0 * (1.0 - summary['eval']['mpjpe'] / max(const, 1e-9))
    side = 'below' if gain >= 0 else 'ABOVE (train longer)'
    lines.append(f'The trained model is {abs(gain):.1f}% {side} the constant '
                 'predictor\'s MPJPE.')
  if summary.get('num_skipped'):
    lines.append(f'{summary["num_skipped"]} non-finite step(s) were skipped.')
  lines.append(f'Checkpoints: {summary["checkpoint_dir"]}')
  lines.append('Export the last epochs\' average: python -m '
               'hybrik_jax.average_checkpoints --workdir '
               f'{shlex.quote(str(summary["workdir"]))} --last 10 --out DIR')
  lines.append('=' * 64)
  return '\n'.join(lines)
