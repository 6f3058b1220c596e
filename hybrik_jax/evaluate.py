r"""Benchmark evaluation with HybrIK's protocols.

  python -m hybrik_jax.evaluate --checkpoint DIR [--dataset pw3d] \
      [--config configs/x.py] [--smpl SMPL_NEUTRAL.pkl] [--rootnet_json FILE]

DIR is an exported model (`checkpoints.model_dir.save_model`: a trained, averaged or
converted PyTorch model) or a training workdir (its latest checkpoint). The
dataset is a prepared TFDS dataset (`python -m hybrik_jax.prepare_data`);
by default the one, with the builder config, split and data settings, that the
checkpoint was validated on in training (`resolve_dataset`).
Prints a table and writes it as JSON beside the checkpoint
(`<DIR>_eval_<dataset>_<split>.json`, or --out).

The protocols (joints, alignment, flip test, root) are `hybrik_jax.evaluation.protocols`,
the same the trainer's validation uses: a checkpoint gets the same numbers
from both. Flip test is on by default (--noflip_test turns it off).

Root depth. The uvd -> camera-space lifting needs the absolute depth of the
root. HybrIK's evaluation uses the ground-truth root; with --rootnet_json the
roots published by RootNet (3DMPPE_ROOTNET_RELEASE, `bbox_root_*_output.json`:
a list of {'image_id', 'root_cam' (mm), ...}) are used where an example
matches, and the ground truth elsewhere; the table says which was used and
for how many examples. Entries are matched to examples by file name (keys
'file_name', 'img_name', 'image_file' or 'img_path' in the entry), or by
'image_id' through a COCO-style annotation file (--rootnet_annotations, e.g.
HybrIK's Sample_20_test_Human36M_smpl_protocol_2.json: images[{id, file_name}]).
"""

import collections
import dataclasses
import json
import os
import re
import sys
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

from absl import flags
import jax
import ml_collections
import numpy as np
import tqdm

from hybrik_jax import cli_flags
from hybrik_jax import models
from hybrik_jax.checkpoints import loading
from hybrik_jax.evaluation import metrics
from hybrik_jax.evaluation import protocols
from hybrik_jax.training import train_config

# Fields of the preprocessed batch the evaluation step reads.
_STEP_KEYS = ('image', 'trans_inv', 'intrinsics', 'joint_root', 'depth_factor',
              'joints17_cam', 'joints17_valid', 'target_xyz_24',
              'target_xyz_weight_24', 'target_theta', 'target_beta',
              'target_smpl_weight', 'mask')


# ----------------------------------------------------------------------------
# Checkpoints and configs.
# ----------------------------------------------------------------------------


def resolve_dataset(dataset: str | None, split: str | None,
                    train_config: ml_collections.ConfigDict | None
                    ) -> tuple[str, str]:
  """(dataset, split) to evaluate: what was asked, completed from the
  checkpoint's training config.

  No dataset: the one the checkpoint was validated on. A plain name of that
  dataset ('synthetic_humans'): its builder config ('synthetic_humans/small').
  No split: the validated split for that dataset, else 'validation' for
  synthetic_humans and 'test' for the benchmarks.

  Raises:
    ValueError: no dataset given and the checkpoint does not record one.
  """
  data = train_config.get('data') if train_config is not None else None
  trained_on = data.get('eval_dataset') if data is not None else None
  if dataset is None:
    if not trained_on:
      raise ValueError('--dataset is needed: the checkpoint does not record the '
                       'dataset it was validated on (h36m | pw3d | mpi_inf_3dhp '
                       '| synthetic_humans[/config])')
    dataset = trained_on
  elif (trained_on and dataset == protocols.base_name(dataset) and
        protocols.base_name(trained_on) == dataset):
    dataset = trained_on
  if split is None:
    if trained_on and dataset == trained_on and data.get('eval_split'):
      split = data.get('eval_split')
    else:
      split = ('validation' if protocols.base_name(dataset) == 'synthetic_humans'
               else 'test')
  return dataset, split


# ----------------------------------------------------------------------------
# RootNet roots.
# ----------------------------------------------------------------------------


def _path_keys(path: str) -> list[str]:
  """Lookup keys of a file path: its last two components, then its base name."""
  parts = re.split(r'[/\\]+', str(path).strip())
  parts = [p for p in parts if p and p != '.']
  keys = []
  if len(parts) >= 2:
    keys.append('/'.join(parts[-2:]))
  if parts:
    keys.append(parts[-1])
  return keys


class RootTable:
  """Published root positions, looked up by an example's image_file.

  Attributes:
    source: the json file name (for the table).
  """

  def __init__(self, roots_by_file: Mapping[str, np.ndarray], source: str):
    self.source = source
    self._by_key: dict[str, np.ndarray] = {}
    ambiguous = set()
    for file_name, root in roots_by_file.items():
      for i, key in enumerate(_path_keys(file_name)):
        if key in self._by_key and i > 0:
          ambiguous.add(key)  # a base name shared by several files
        self._by_key.setdefault(key, root)
    for key in ambiguous:
      self._by_key.pop(key, None)

  def __len__(self) -> int:
    return len(self._by_key)

  def lookup(self, image_file: str) -> np.ndarray | None:
    """(3,) metres, camera frame, or None if the file is not in the table."""
    for key in _path_keys(image_file):
      if key in self._by_key:
        return self._by_key[key]
    return None


_FILE_KEYS = ('file_name', 'img_name', 'image_file', 'img_path', 'imgname')


def load_rootnet(json_path: str, annotations_path: str | None = None) -> RootTable:
  """Reads RootNet's output json (root_cam in millimetres) into a RootTable.

  Args:
    json_path: a list of entries with 'root_cam' [x, y, z] mm and either a
      file name key (see module docstring) or 'image_id'.
    annotations_path: a COCO-style json with 'images': [{'id', 'file_name'}]
      to resolve image ids.

  Raises:
    FileNotFoundError, ValueError: naming the file and what is wrong.
  """
  if not os.path.isfile(json_path):
    raise FileNotFoundError(f'RootNet json {json_path!r} not found')
  with open(json_path) as f:
    entries = json.load(f)
  if isinstance(entries, dict):  # {image_id: {...}} variants
    entries = [dict(v, image_id=k) for k, v in entries.items()]
  if not isinstance(entries, list) or not entries:
    raise ValueError(f'{json_path}: expected a non-empty list of entries with '
                     "'root_cam' (RootNet's bbox_root_*_output.json)")
  id_to_file = {}
  if annotations_path:
    if not os.path.isfile(annotations_path):
      raise FileNotFoundError(f'annotation json {annotations_path!r} not found')
    with open(annotations_path) as f:
      ann = json.load(f)
    images = ann.get('images', []) if isinstance(ann, dict) else []
    id_to_file = {str(im['id']): im['file_name'] for im in images
                  if 'id' in im and 'file_name' in im}
    if not id_to_file:
      raise ValueError(f"{annotations_path}: no 'images' with 'id' and "
                       "'file_name' (a COCO-style annotation file)")
  roots = {}
  for i, entry in enumerate(entries):
    if 'root_cam' not in entry:
      raise ValueError(f"{json_path}: entry {i} has no 'root_cam' "
                       f'(keys {sorted(entry)})')
    root = np.asarray(entry['root_cam'], np.float64).reshape(-1)
    if root.shape != (3,) or not np.all(np.isfinite(root)):
      raise ValueError(f"{json_path}: entry {i} 'root_cam' must be 3 finite "
                       f'numbers, got {entry["root_cam"]!r}')
    name = next((entry[k] for k in _FILE_KEYS if k in entry), None)
    if name is None and 'image_id' in entry:
      if not id_to_file:
        raise ValueError(
            f'{json_path} identifies images by image_id only: pass the '
            'annotation file that lists them (--rootnet_annotations, e.g. '
            "HybrIK's Sample_20_test_Human36M_smpl_protocol_2.json)")
      name = id_to_file.get(str(entry['image_id']))
    if name is not None:
      roots[str(name)] = (root / metrics.MM_PER_METRE).astype(np.float32)
  if not roots:
    raise ValueError(f'{json_path}: no entry could be tied to an image file')
  return RootTable(roots, os.path.basename(json_path))


# ----------------------------------------------------------------------------
# The jitted evaluation step.
# ----------------------------------------------------------------------------


def make_eval_step(model, smpl_model, *, model_config,
                   protocol: protocols.Protocol,
                   flip_test: bool = True) -> Callable:
  """A jitted (variables, batch) -> protocols.batch_metrics (sums, per_example).

  The prediction is `models.predict_batch`; non-finite network outputs count
  (decode scores them as zeros) and are counted in 'non_finite_outputs'.
  """

  def step(variables, batch):
    out = models.predict_batch(model, variables, batch, smpl_model=smpl_model,
                               flip_test=flip_test, model_config=model_config)
    return protocols.batch_metrics(
        protocol, batch, pred_xyz_17=out.pred_xyz_17,
        pred_xyz_24=out.pred_xyz_24_struct, pred_vertices=out.pred_vertices,
        valid=out.valid, smpl_model=smpl_model)

  return jax.jit(step)


# ----------------------------------------------------------------------------
# Data.
# ----------------------------------------------------------------------------


def _as_str(x) -> str:
  if isinstance(x, bytes):
    return x.decode('utf-8', 'replace')
  if isinstance(x, np.ndarray):
    return _as_str(x.item())
  return str(x)


def _stack(elements: Sequence[Mapping[str, np.ndarray]], batch_size: int
           ) -> dict[str, np.ndarray]:
  """Stacks elements into a batch padded to batch_size (padding: mask 0)."""
  batch = {k: np.stack([np.asarray(e[k]) for e in elements]) for k in _STEP_KEYS}
  pad = batch_size - len(elements)
  if pad:
    for k, v in batch.items():
      batch[k] = np.concatenate([v, np.repeat(v[:1], pad, axis=0)])
    batch['mask'][-pad:] = 0.0
  return batch


def iterate_batches(source, *, batch_size: int, input_size: int,
                    scale_mult: float, dataset_id: int,
                    num_examples: int | None = None, read_threads: int = 4
                    ) -> Iterable[tuple[dict[str, np.ndarray], list[str]]]:
  """(batch, image_files) over a random-access source, in order, padded.

  Uses input_pipeline.preprocess_eval (HybrIK's test crop) on grain threads.
  """
  import grain  # pylint: disable=g-import-not-at-top
  from hybrik_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top

  n = len(source) if num_examples is None else min(num_examples, len(source))
  if n == 0:
    raise ValueError('the evaluation dataset is empty')

  def prepare(i):
    example = source[int(i)]
    element = input_pipeline.preprocess_eval(
        example, input_size=input_size, scale_mult=scale_mult,
        dataset_id=dataset_id)
    element['mask'] = np.float32(1.0)
    return element, _as_str(example.get('image_file', ''))

  ds = grain.MapDataset.range(n).map(prepare).to_iter_dataset(
      grain.ReadOptions(num_threads=read_threads,
                        prefetch_buffer_size=2 * batch_size))
  elements, files = [], []
  for element, image_file in ds:
    elements.append(element)
    files.append(image_file)
    if len(elements) == batch_size:
      yield _stack(elements, batch_size), files
      elements, files = [], []
  if elements:
    yield _stack(elements, batch_size), files


# ----------------------------------------------------------------------------
# Evaluation.
# ----------------------------------------------------------------------------

@dataclasses.dataclass
class EvalRun:
  """What `run` accumulated over a split (before any averaging).

  Attributes:
    sums: summed protocols.batch_metrics sums.
    groups: {group: {metric: [total, count]}} per action / sequence.
    num_examples: real examples seen.
    num_rootnet: examples whose root came from the RootNet table.
    wrong_subjects: Human3.6M subjects outside protocol 2's test set.
    seconds: wall time.
  """
  sums: dict[str, metrics.SumCount]
  groups: dict[str, dict[str, list[float]]]
  num_examples: int = 0
  num_rootnet: int = 0
  wrong_subjects: set[int] = dataclasses.field(default_factory=set)
  seconds: float = 0.0


def run(step: Callable, variables, batches: Iterable, *,
        protocol: protocols.Protocol, roots: RootTable | None = None,
        check_h36m_subjects: bool = False, progress=None) -> EvalRun:
  """Runs `step` over (batch, image_files) pairs; sums the metrics.

  Args:
    step: make_eval_step's function.
    variables: the model variables.
    batches: iterate_batches' output.
    protocol: for the per-group breakdown.
    roots: RootNet roots replacing the batch's joint_root where found.
    check_h36m_subjects: note subjects outside S9/S11 (file names s_XX_act).
    progress: a tqdm bar to update, or None.
  """
  start = time.time()
  result = EvalRun(sums=None, groups=collections.defaultdict(
      lambda: collections.defaultdict(lambda: [0.0, 0.0])))
  for batch, files in batches:
    if roots is not None:
      joint_root = batch['joint_root'].copy()
      for i, f in enumerate(files):
        root = roots.lookup(f)
        if root is not None:
          joint_root[i] = root
          result.num_rootnet += 1
      batch['joint_root'] = joint_root
    if check_h36m_subjects:
      for f in files:
        match = re.search(r's_(\d+)_act', f)
        if match and int(match.group(1)) not in protocols.H36M_TEST_SUBJECTS:
          result.wrong_subjects.add(int(match.group(1)))
    batch_sums, per_example = jax.device_get(step(variables, batch))
    result.sums = metrics.merge_sums(result.sums, batch_sums)
    for i, f in enumerate(files):
      group = protocols.group_of(protocol, f)
      if group is None:
        continue
      for name, (total, count) in per_example.items():
        result.groups[group][name][0] += float(total[i])
        result.groups[group][name][1] += float(count[i])
    result.num_examples += len(files)
    if progress is not None:
      progress.update(len(files))
  if result.sums is None:
    raise ValueError('the evaluation dataset is empty')
  result.seconds = time.time() - start
  return result


def summarise(result: EvalRun, *, protocol: protocols.Protocol,
              flip_test: bool, roots: RootTable | None = None,
              **info) -> dict[str, Any]:
  """EvalRun -> the results dict (metrics mm / %, counts, per-group, root).

  `info` (dataset, split, checkpoint, ...) is copied in first.
  """
  averages = protocols.averages(result.sums)
  values = {k: averages[k] for k in protocols.METRIC_LABELS if k in averages}
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
      # Items (joints / vertices) each average left out: non-finite
      # prediction (a failure) or non-finite ground truth (metrics.py).
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


def write(results: Mapping[str, Any], output: str) -> str:
  """Writes the results as JSON (directories made); returns the path."""
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  tmp = output + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(results, f, indent=2)
  os.replace(tmp, output)
  return output


def evaluate(checkpoint: str, dataset: str | None = None, *,
             split: str | None = None,
             config: ml_collections.ConfigDict | None = None,
             data_dir: str | None = None, data_source=None,
             smpl_path: str | None = None, h36m_regressor: str | None = None,
             smpl_model=None,
             batch_size: int = 32, flip_test: bool = True,
             rootnet_json: str | None = None,
             rootnet_annotations: str | None = None,
             num_examples: int | None = None, output: str | None = None,
             progress: bool = True) -> dict[str, Any]:
  """Evaluates a checkpoint on a benchmark: load, `run`, `summarise`, `write`.

  Args:
    checkpoint: exported model directory or training workdir.
    dataset: 'h36m' | 'pw3d' | 'mpi_inf_3dhp' | 'synthetic_humans[/config]';
      default and builder config: see `resolve_dataset`.
    split: TFDS split (default: see `resolve_dataset`).
    config: the experiment config: config.data.data_dir, scale_mult,
      read_threads and config.smpl are read if present. Default: the config
      that trained the checkpoint, when recorded.
    data_dir: TFDS data_dir (overrides the config's).
    data_source: a random-access source of examples (tests) instead of TFDS.
    smpl_path: SMPL .pkl; default config.smpl.model_path, else the synthetic
      body for synthetic_humans.
    h36m_regressor: J_regressor_h36m.npy; default config.smpl.h36m_regressor_path.
    smpl_model: an SMPLModel to use directly (overrides smpl_path).
    batch_size: examples per step (the last batch is padded).
    flip_test: average with the mirrored input (HybrIK's --flip-test).
    rootnet_json, rootnet_annotations: see the module docstring.
    num_examples: evaluate only the first N examples (smoke tests).
    output: the JSON path (default beside the checkpoint).
    progress: show a tqdm bar.

  Returns:
    The results dict (also written as JSON): metrics (mm / %), per-group
    MPJPE, counts, root source, checkpoint, protocol details.
  """
  from hybrik_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  from hybrik_jax.body import smpl_io  # pylint: disable=g-import-not-at-top

  loaded = loading.load_for_inference(checkpoint)
  variables, model_config = loaded.variables, loaded.model_config
  if config is None:
    config = loaded.train_config
  dataset, split = resolve_dataset(dataset, split, loaded.train_config)
  protocol = protocols.protocol_for(dataset)
  # The config is read here, once.
  data = input_pipeline.DataConfig.from_config(
      config.get('data') if config is not None else None)
  data_dir = data_dir or data.data_dir
  if smpl_model is not None:
    body_desc = 'given body model'
  else:
    smpl_config = (config.get('smpl') if config is not None else None) or {}
    smpl_path = smpl_path or smpl_config.get('model_path')
    h36m_regressor = h36m_regressor or smpl_config.get('h36m_regressor_path')
    smpl_model, body_desc = smpl_io.load_body_model(smpl_path, h36m_regressor,
                                                    dataset=dataset)
  if batch_size < 1:
    raise ValueError(f'batch_size must be >= 1, got {batch_size}')
  roots = load_rootnet(rootnet_json, rootnet_annotations) if rootnet_json else None

  step = make_eval_step(models.create_model(model_config), smpl_model,
                        model_config=model_config, protocol=protocol,
                        flip_test=flip_test)
  if data_source is None:
    data_source = input_pipeline.open_data_source(dataset, split, data_dir)
  total = len(data_source) if num_examples is None else min(num_examples, len(data_source))
  batches = iterate_batches(
      data_source, batch_size=batch_size,
      input_size=int(model_config.input_size),
      scale_mult=data.scale_mult_for(dataset),
      dataset_id=input_pipeline.dataset_id(dataset), num_examples=num_examples,
      read_threads=data.read_threads)
  with tqdm.tqdm(total=total, desc=f'eval {dataset}/{split}', unit='img',
                 disable=not progress, dynamic_ncols=True) as bar:
    result = run(step, variables, batches, protocol=protocol, roots=roots,
                 check_h36m_subjects=protocols.base_name(dataset) == 'h36m',
                 progress=bar)
  if result.wrong_subjects:
    print(f'WARNING: {dataset}/{split} holds subjects '
          f'{sorted(result.wrong_subjects)}; protocol 2 tests on S9 and S11 '
          'only.', file=sys.stderr)
  results = summarise(
      result, protocol=protocol, flip_test=flip_test, roots=roots,
      dataset=dataset, split=split, checkpoint=os.path.abspath(checkpoint),
      checkpoint_kind=loaded.description, body_model=body_desc)
  results['output'] = write(
      results, output or default_output_path(checkpoint, dataset, split))
  return results


def default_output_path(checkpoint: str, dataset: str, split: str) -> str:
  """<checkpoint>_eval_<dataset>_<split>.json beside the checkpoint directory."""
  ckpt = os.path.abspath(checkpoint).rstrip(os.sep)
  name = protocols.base_name(dataset) + ('_' + dataset.split('/')[1] if '/' in dataset else '')
  return f'{ckpt}_eval_{name}_{split}.json'


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
    rows.append((label, f'{value:8.2f} {unit}  ({results["counts"][key]} '
                 f'averaged; left out: {bad_pred} non-finite predictions, '
                 f'{bad_target} non-finite ground truths)'))
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


def parse(argv: Sequence[str] | None = None) -> flags.FlagValues:
  """The flags of `python -m hybrik_jax.evaluate` (see --help)."""
  fs = cli_flags.FlagSet('python -m hybrik_jax.evaluate', __doc__,
                         aliases={'output': 'out'})
  fs.checkpoint(required=True)
  fs.dataset('h36m | pw3d | mpi_inf_3dhp | synthetic_humans[/tiny|small] '
             '(default: the dataset the checkpoint was validated on)')
  fs.string('config', None, 'experiment config file (configs/x.py[:arg]) for '
            'data_dir etc. (default: the config that trained the checkpoint)')
  fs.string('split', None, "TFDS split (default: the checkpoint's validation "
            "split for its dataset, else 'test'; 'validation' for "
            'synthetic_humans)')
  fs.data_dir()
  fs.smpl()
  fs.h36m_regressor()
  fs.batch_size(32, 'examples per evaluation step')
  fs.flip_test()
  fs.string('rootnet_json', None,
            "RootNet's bbox_root_*_output.json (root_cam, mm)")
  fs.string('rootnet_annotations', None,
            'COCO-style json mapping image_id to file_name')
  fs.integer('num_examples', None, 'only the first N examples', lower_bound=1)
  fs.out('results JSON path (default: <checkpoint>_eval_<dataset>_<split>.json)')
  return fs.parse(argv)


def main(argv: Sequence[str] | None = None) -> int:
  args = parse(argv)
  try:
    config = train_config.load_config_file(args.config) if args.config else None
    results = evaluate(
        args.checkpoint, args.dataset, split=args.split, config=config,
        data_dir=args.data_dir, smpl_path=args.smpl,
        h36m_regressor=args.h36m_regressor, batch_size=args.batch_size,
        flip_test=args.flip_test, rootnet_json=args.rootnet_json,
        rootnet_annotations=args.rootnet_annotations,
        num_examples=args.num_examples, output=args.out)
  except (FileNotFoundError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(format_table(results))
  print(f"results written to {results['output']}")
  return 0


if __name__ == '__main__':
  from hybrik_jax import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)  # UserError -> one line, status 2; Ctrl-C -> one line, 130
