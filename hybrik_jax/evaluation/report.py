"""`evaluate`'s results: the results dict, its table, its JSON file.

`summarise` turns an evaluation.loop.EvalRun into the results dict (metrics
in mm / %, counts, per-group, root source); `format_table` is the console
table; `write` the JSON. A previous run's JSON is never overwritten
silently: `output_path` picks the next free name beside the checkpoint, and
refuses an explicit path that exists unless asked to overwrite.
"""

import json
import os
from typing import Any, Mapping

import numpy as np

from hybrik_jax import errors
from hybrik_jax.evaluation import loop
from hybrik_jax.evaluation import metrics
from hybrik_jax.evaluation import protocols
from hybrik_jax.evaluation import rootnet


class OutputExistsError(errors.InputError):
  """The results file asked for exists (and overwriting was not asked)."""


def summarise(result: loop.EvalRun, *, protocol: protocols.Protocol,
              flip_test: bool, roots: rootnet.RootTable | None = None,
              **info) -> dict[str, Any]:
  """EvalRun -> the results dict (metrics mm / %, counts, per-group, root).

  `info` (dataset, split, checkpoint, ...) is copied in first.
  """
  averages = protocols.averages(result.sums)
  # An average over nothing (every sample failed) is undefined: JSON null.
  values = {k: (averages[k] if np.isfinite(averages[k]) else None)
            for k in protocols.METRIC_LABELS if k in averages}
  counts = {k: int(round(float(result.sums[k].count))) for k in values}
  left_out = metrics.non_finite_counts({k: result.sums[k] for k in values})
  n, n_rootnet = result.num_examples, result.num_rootnet
  if roots is None:
    root_source = protocol.root
  elif n_rootnet == n:
    root_source = f'RootNet ({roots.source})'
  else:
    root_source = (f'RootNet ({roots.source}) for {n_rootnet} of {n}, '
                   'ground truth for the rest')
  results = dict(info)
  results.update({
      'protocol': protocol.name,
      'protocol_description': protocol.describe(flip_test),
      'num_examples': n, 'flip_test': bool(flip_test),
      'non_finite_outputs': int(round(averages['non_finite_outputs'])),
      'root_depth': root_source, 'root_depth_rootnet_examples': n_rootnet,
      'eval_joints': list(protocol.eval_joints),
      'metrics': values, 'counts': counts,
      # What each average left out: failed samples (a non-finite predicted
      # joint: the whole sample) and items (joints / vertices) with
      # non-finite ground truth (metrics.py).
      'non_finite_pred': {k: v['non_finite_pred'] for k, v in left_out.items()},
      'non_finite_target': {k: v['non_finite_target']
                            for k, v in left_out.items()},
      'units': {k: protocols.METRIC_LABELS[k][1] for k in values},
      'seconds': round(result.seconds, 2),
  })
  if protocol.pck:
    results['pck_joints'] = list(protocol.pck_joints)
  if result.groups:
    per_group = {
        g: {name: per[name][0] / per[name][1] for name in protocols.METRIC_LABELS
            if name in per and per[name][1] > 0}
        for g, per in sorted(result.groups.items())}
    results[f'per_{protocol.group_name}'] = per_group
    # HybrIK's 'Avg' lines: the mean over groups, each group weighing the same.
    for name in ('mpjpe', 'pck', 'auc'):
      vals = [v[name] for v in per_group.values() if name in v]
      if vals and protocol.group_name == 'sequence' and protocol.pck:
        results[f'{name}_mean_over_{protocol.group_name}s'] = float(np.mean(vals))
  return results


def format_table(results: Mapping[str, Any]) -> str:
  """The console table of `evaluate`'s results."""
  rows = [('dataset', f"{results['dataset']} ({results['split']}, "
                      f"{results['num_examples']} examples)"),
          ('protocol', results.get('protocol_description',
                                   results.get('protocol', '?'))),
          ('checkpoint', results['checkpoint_kind']),
          ('body model', results['body_model']),
          ('flip test', 'on' if results['flip_test'] else 'off'),
          ('root depth', results['root_depth'])]
  if results.get('non_finite_outputs'):
    rows.append(('non-finite outputs', f"{results['non_finite_outputs']} examples "
                 '(scored as zeros)'))
  for key, value in results['metrics'].items():
    label, unit = protocols.METRIC_LABELS[key]
    bad_pred = results.get('non_finite_pred', {}).get(key, 0)
    bad_target = results.get('non_finite_target', {}).get(key, 0)
    shown = metrics.format_value(value, unit, width=8)
    if value is None:
      shown += ' (no sample scored)'
    rows.append((label, f'{shown}  ({results["counts"][key]} '
                 f'averaged; left out: {bad_pred} failed samples (non-finite '
                 f'prediction), {bad_target} non-finite ground truths)'))
  for key, value in results.items():
    if key.endswith('_mean_over_sequences'):
      label, unit = protocols.METRIC_LABELS[key.split('_mean_over_')[0]]
      rows.append((f'{label}, mean over sequences', f'{value:8.2f} {unit}'))
  for key, per in results.items():
    if key.startswith('per_'):
      what = key[len('per_'):]
      for g, v in per.items():
        text = ', '.join(f'{protocols.METRIC_LABELS[k][0]} {x:.2f} {protocols.METRIC_LABELS[k][1]}'
                         for k, x in v.items())
        rows.append((f'  {what} {g}', text))
  width = max(len(r[0]) for r in rows)
  line = '-' * (width + 3 + max(len(r[1]) for r in rows))
  body = '\n'.join(f'{k.ljust(width)} | {v}' for k, v in rows)
  return f'{line}\n{body}\n{line}'


def default_output_path(checkpoint: str, dataset: str, split: str) -> str:
  """<checkpoint>_eval_<dataset>_<split>.json beside the checkpoint directory."""
  ckpt = os.path.abspath(checkpoint).rstrip(os.sep)
  name = protocols.base_name(dataset) + ('_' + dataset.split('/')[1] if '/' in dataset else '')
  return f'{ckpt}_eval_{name}_{split}.json'


def output_path(checkpoint: str, dataset: str, split: str, *,
                output: str | None = None,
                overwrite: bool = False) -> tuple[str, str | None]:
  """(path to write, earlier results kept there or None); checked up front.

  Default: `default_output_path`, or, if a previous run's results are there,
  the first free '<name>-2.json', '<name>-3.json', ... (the earlier file is
  kept and returned). An explicit `output` that exists is refused unless
  `overwrite`; with `overwrite` the default name is reused too.

  Raises:
    OutputExistsError: `output` exists and `overwrite` is False.
  """
  if output is not None:
    if os.path.exists(output) and not overwrite:
      raise OutputExistsError(
          f'{output} exists (results of an earlier run?): choose another '
          '--out or pass --overwrite.')
    return output, None
  path = default_output_path(checkpoint, dataset, split)
  if overwrite or not os.path.exists(path):
    return path, None
  stem, n = path[:-len('.json')], 2
  while os.path.exists(f'{stem}-{n}.json'):
    n += 1
  return f'{stem}-{n}.json', path


def write(results: Mapping[str, Any], output: str) -> str:
  """Writes the results as JSON (directories made); returns the path."""
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  tmp = output + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(results, f, indent=2)
  os.replace(tmp, output)
  return output
