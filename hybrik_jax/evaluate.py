r"""Benchmark evaluation with HybrIK's protocols.

  python -m hybrik_jax.evaluate --checkpoint DIR --dataset pw3d \
      [--config configs/x.py] [--smpl SMPL_NEUTRAL.pkl] [--rootnet_json FILE]

DIR is an exported model (`checkpointing.save_model`: a trained, averaged or
converted PyTorch model) or a training workdir (its latest checkpoint). The
dataset is a prepared TFDS dataset (`python -m hybrik_jax.prepare_data`).
Prints a table and writes it as JSON beside the checkpoint
(`<DIR>_eval_<dataset>_<split>.json`, or --output).

The protocols, read from Jeff-sjtu/HybrIK's evaluation code
(hybrik/datasets/{h36m_smpl,pw3d,hp3d}.py, scripts/validate_smpl.py):

* Every 3D error is root-relative: prediction and ground truth are translated
  so that their pelvis is at the origin. The predicted joints are the 17
  Human3.6M joints regressed from the predicted mesh (`pred_xyz_17`).
* h36m (protocol 2, test subjects S9 and S11; the builder's 'test' split):
  14 of the 17 joints (`H36M_EVAL_14`: no pelvis, torso, nose); PA-MPJPE
  aligns all 17 joints, then takes the 14 (`evaluate_xyz_17`).
* pw3d: the same 14 joints, aligned after selecting them; also the 24 SMPL
  joints of the skinned body (MPJPE-24, PA-MPJPE-24, `evaluate_xyz_24`) and
  PVE, the mean vertex error of the meshes relative to their H36M pelvis
  (the ground-truth mesh from its SMPL parameters with the same neutral body
  model, as HybrIK's forward_gt_theta; no alignment).
* mpi_inf_3dhp: all 17 joints for MPJPE and PA-MPJPE; 3D PCK at 150 mm and
  AUC over 0..150 mm in 5 mm steps on the 14 joints of 3DHP's groups (head,
  neck, shoulders, elbows, wrists, hips, knees, ankles: `HP3D_PCK_JOINTS`,
  given in the H36M order of `joints17_cam`). HybrIK's evaluate_xyz_17 indexes
  those groups in the 3DHP order after reordering the joints to H36M's, which
  picks different joints; we use the groups' joints themselves.
  Per-sequence (TS1..TS6) MPJPE, PCK and AUC are reported, and their means
  over sequences (HybrIK's 'Avg' lines) beside the all-frame averages.
* synthetic_humans: as pw3d (exact labels, the synthetic body model).

Averages count every valid joint once (HybrIK: np.mean over samples x joints).
Flip test is on by default (--noflip_test turns it off).

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

import argparse
import collections
import dataclasses
import importlib.util
import json
import os
import re
import sys
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from hybrik_jax import checkpointing
from hybrik_jax import geometry
from hybrik_jax import metrics
from hybrik_jax import models

# 14 of the 17 H36M joints used on Human3.6M and 3DPW (HybrIK EVAL_JOINTS):
# every joint but pelvis (0), torso (7) and nose (9).
H36M_EVAL_14 = (6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10)
ALL_17 = tuple(range(17))
# 3DHP's PCK joint groups, as indices of the H36M-17 order: head (top) 10,
# neck 8, shoulders 11 14, elbows 12 15, wrists 13 16, hips 1 4, knees 2 5,
# ankles 3 6.
HP3D_PCK_JOINTS = (10, 8, 11, 14, 12, 15, 13, 16, 1, 4, 2, 5, 3, 6)
# Human3.6M protocol 2 test subjects.
H36M_TEST_SUBJECTS = (9, 11)
# Human3.6M actions 2..16 (file names `s_XX_act_YY_...`; HybrIK action_name).
H36M_ACTIONS = ('Directions', 'Discussion', 'Eating', 'Greeting', 'Phoning',
                'Posing', 'Purchases', 'Sitting', 'SittingDown', 'Smoking',
                'Photo', 'Waiting', 'Walking', 'WalkDog', 'WalkTogether')


@dataclasses.dataclass(frozen=True)
class Protocol:
  """What a benchmark measures (see the module docstring).

  Attributes:
    eval_joints: indices into the 17 H36M joints that the errors use.
    align_all_17: Procrustes on all 17 joints before selecting (Human3.6M),
      else on the selected joints only.
    smpl_24: also MPJPE/PA-MPJPE on the 24 SMPL joints.
    pve: also the per-vertex error.
    pck: also 3D PCK / AUC on `pck_joints`.
    pck_joints: indices into the 17 H36M joints.
    group_pattern: regex on image_file whose first group names the
      per-group breakdown (action, sequence), or None.
    group_name: what a group is.
  """
  eval_joints: tuple[int, ...]
  align_all_17: bool = False
  smpl_24: bool = False
  pve: bool = False
  pck: bool = False
  pck_joints: tuple[int, ...] = HP3D_PCK_JOINTS
  group_pattern: str | None = None
  group_name: str = ''


PROTOCOLS = {
    'h36m': Protocol(H36M_EVAL_14, align_all_17=True,
                     group_pattern=r'_act_(\d+)_', group_name='action'),
    'pw3d': Protocol(H36M_EVAL_14, smpl_24=True, pve=True,
                     group_pattern=r'([^/\\]+)[/\\][^/\\]+$',
                     group_name='sequence'),
    'mpi_inf_3dhp': Protocol(ALL_17, pck=True, group_pattern=r'(TS\d+)',
                             group_name='sequence'),
    'synthetic_humans': Protocol(H36M_EVAL_14, smpl_24=True, pve=True),
}

# Fields of the preprocessed batch the evaluation step reads.
_STEP_KEYS = ('image', 'trans_inv', 'intrinsics', 'joint_root', 'depth_factor',
              'joints17_cam', 'joints17_valid', 'target_xyz_24',
              'target_xyz_weight_24', 'target_theta', 'target_beta',
              'target_smpl_weight', 'mask')


def group_of(protocol: Protocol, image_file: str) -> str | None:
  """The breakdown group of an example (H36M action, 3DPW/3DHP sequence)."""
  if not protocol.group_pattern:
    return None
  match = re.search(protocol.group_pattern, image_file)
  if match is None:
    return None
  group = match.group(1)
  if protocol.group_name == 'action' and group.isdigit():
    index = int(group) - 2
    if 0 <= index < len(H36M_ACTIONS):
      return H36M_ACTIONS[index]
  return group


def base_name(dataset: str) -> str:
  """'synthetic_humans/tiny' -> 'synthetic_humans'; 'pw3d:1.0.0' -> 'pw3d'."""
  return dataset.split('/')[0].split(':')[0]


def protocol_for(dataset: str) -> Protocol:
  name = base_name(dataset)
  if name not in PROTOCOLS:
    raise ValueError(f'unknown dataset {dataset!r}: evaluation protocols exist '
                     f'for {sorted(PROTOCOLS)}')
  return PROTOCOLS[name]


# ----------------------------------------------------------------------------
# Checkpoints and configs.
# ----------------------------------------------------------------------------


def load_checkpoint(path: str | os.PathLike[str]
                    ) -> tuple[dict[str, Any], ml_collections.ConfigDict, str]:
  """Variables and model config of an exported model or a training workdir.

  Returns:
    (variables, model_config, description) where description says what was
    read (for the results table).

  Raises:
    FileNotFoundError: `path` is neither, with what to do.
  """
  path = os.fspath(path)
  if not os.path.isdir(path):
    raise FileNotFoundError(
        f'checkpoint {path!r} does not exist. Give an exported model directory '
        '(train on synthetic_humans with `python -m hybrik_jax.train`, or convert '
        'the published PyTorch weights with `python -m hybrik_jax.convert`) or a '
        'training workdir.')
  if checkpointing.is_exported_model(path):
    variables, model_config = checkpointing.load_model(path)
    checkpointing.check_variables_match(variables, model_config, path)
    return variables, model_config, f'exported model {path}'
  if os.path.isdir(os.path.join(path, checkpointing.CHECKPOINTS_DIR)):
    manager = checkpointing.create_checkpoint_manager(
        path, steps_per_epoch=1, keep_epochs=None, async_save=False,
        read_only=True)
    step = checkpointing.latest_step(manager)
    if step is None:
      raise FileNotFoundError(f'training workdir {path!r} has no committed '
                              'checkpoint yet.')
    meta = checkpointing.restore_meta(manager, step)
    model_dict = meta.get('model') or meta.get('model_config')
    if not model_dict:
      raise ValueError(f'checkpoint {path!r} step {step}: its metadata has no '
                       f'model config (keys {sorted(meta)}).')
    variables = checkpointing.restore_variables(manager, step)
    manager.close()
    checkpointing.check_variables_match(
        variables, model_dict, f'{path} step {step}')
    return (variables, checkpointing.dict_to_config(model_dict),
            f'training workdir {path}, step {step}')
  raise FileNotFoundError(
      f'{path!r} is neither an exported model (no {checkpointing.MODEL_CONFIG_FILE}'
      f' and {checkpointing.VARIABLES_DIR}/) nor a training workdir (no '
      f'{checkpointing.CHECKPOINTS_DIR}/).')


def load_config_file(spec: str) -> ml_collections.ConfigDict:
  """'configs/x.py' or 'configs/x.py:arg' -> get_config([arg])."""
  path, _, arg = spec.partition(':')
  if not os.path.isfile(path):
    raise FileNotFoundError(f'config file {path!r} not found')
  module_spec = importlib.util.spec_from_file_location('_eval_config', path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()


def load_body_model(smpl_path: str | None, dataset: str | None,
                    h36m_regressor: str | None = None):
  """(SMPLModel, description): the given SMPL file, else the synthetic body.

  The synthetic body model is only right for synthetic_humans (and for models
  trained on it); the real benchmarks need the real neutral SMPL model, so for
  them a missing file is an error (`dataset` None: the demo, which falls back).

  Raises:
    ValueError: no SMPL file for a real benchmark, saying where to get one.
  """
  from hybrik_jax import smpl  # pylint: disable=g-import-not-at-top
  if smpl_path:
    if not os.path.exists(smpl_path):
      raise FileNotFoundError(f'SMPL model file {smpl_path!r} not found')
    return (smpl.load_smpl(smpl_path, h36m_regressor or None),
            f'SMPL {os.path.basename(smpl_path)}')
  if dataset is None or base_name(dataset) == 'synthetic_humans':
    return smpl.synthetic_smpl_model(), 'synthetic body model'
  raise ValueError(
      f'evaluating on {dataset!r} needs the real SMPL body model: download '
      'basicModel_neutral_lbs_10_207_0_v1.0.0.pkl (smpl.is.tue.mpg.de) and '
      "HybrIK's J_regressor_h36m.npy and pass --smpl PATH --h36m_regressor PATH "
      '(or set config.smpl.model_path / h36m_regressor_path).')


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


def make_eval_step(model, smpl_model, *, input_size: int, protocol: Protocol,
                   flip_test: bool = True) -> Callable:
  """A jitted (variables, batch) -> (sums, per_example).

  sums: {name: metrics.SumCount} (plus 'non_finite_outputs', the examples whose
  network outputs were not finite; they are scored with decode's zeros);
  per_example: {'mpjpe'[, 'pck', 'auc']: (total (B,), count (B,))} over each
  example's valid eval joints (for the per-action / per-sequence tables).
  """
  from hybrik_jax import smpl as smpl_lib  # pylint: disable=g-import-not-at-top

  def step(variables, batch):
    images = batch['image']
    apply = lambda x: model.apply(variables, x, train=False)
    raw = models.flip_test(apply, images) if flip_test else apply(images)
    raw = {k: (None if v is None else v.astype(jnp.float32))
           for k, v in dict(raw).items()}
    out = models.decode(
        raw, smpl_model=smpl_model, trans_inv=batch['trans_inv'],
        intrinsics=batch['intrinsics'], joint_root=batch['joint_root'],
        depth_factor=batch['depth_factor'], input_size=input_size)
    # Padding rows do not count. Non-finite network outputs do count: decode
    # zeroes them, so they score as (large) errors instead of vanishing.
    sample = batch['mask'].astype(jnp.float32)
    sums_invalid = metrics.SumCount.from_values(
        (~out.valid).astype(jnp.float32), sample)

    pred17 = metrics.root_align(out.pred_xyz_17)
    gt17 = metrics.root_align(batch['joints17_cam'].astype(jnp.float32))
    valid17 = batch['joints17_valid'].astype(jnp.float32)
    mask17 = valid17 * valid17[:, :1] * sample[:, None]  # needs the pelvis
    sel = jnp.asarray(protocol.eval_joints)
    if protocol.align_all_17:
      aligned = metrics.procrustes_align(pred17, gt17, mask17)[:, sel]
    else:
      aligned = metrics.procrustes_align(pred17[:, sel], gt17[:, sel],
                                         mask17[:, sel])
    err = metrics.joint_errors(pred17[:, sel], gt17[:, sel])
    err_pa = metrics.joint_errors(aligned, gt17[:, sel])
    m = mask17[:, sel]
    sums = {'mpjpe': metrics.SumCount.from_values(err, m),
            'pa_mpjpe': metrics.SumCount.from_values(err_pa, m)}
    # Per-example (sum, count) pairs for the per-action / per-sequence tables.
    per_example = {'mpjpe': metrics.finite_sum_count(err, m)}
    if protocol.pck:
      err17 = metrics.joint_errors(pred17, gt17)
      psel = jnp.asarray(protocol.pck_joints)
      e, pm = err17[:, psel], mask17[:, psel]
      pck_values = metrics.pck_values(e)
      auc_values = metrics.auc_values(e)
      sums['pck'] = metrics.SumCount.from_values(pck_values, pm)
      sums['auc'] = metrics.SumCount.from_values(auc_values, pm)
      per_example['pck'] = metrics.finite_sum_count(pck_values, pm)
      per_example['auc'] = metrics.finite_sum_count(auc_values, pm)
    if protocol.smpl_24:
      pred24 = metrics.root_align(out.pred_xyz_24_struct)
      gt24 = batch['target_xyz_24'].astype(jnp.float32)  # root-relative
      m24 = batch['target_xyz_weight_24'][..., 0].astype(jnp.float32) * sample[:, None]
      sums['mpjpe_24'] = metrics.SumCount.from_values(
          metrics.joint_errors(pred24, gt24), m24)
      sums['pa_mpjpe_24'] = metrics.SumCount.from_values(
          metrics.joint_errors(metrics.procrustes_align(pred24, gt24, m24), gt24),
          m24)
    if protocol.pve:
      rot = geometry.quaternion_to_matrix(batch['target_theta'].astype(jnp.float32))
      gt_body = smpl_lib.forward(smpl_model, batch['target_beta'].astype(jnp.float32),
                                 rot)
      # Both meshes relative to their H36M pelvis (regressed from the mesh),
      # as HybrIK's SMPL layer returns them (validate_smpl.py, test_vertice).
      gt_verts = gt_body.vertices - gt_body.joints_h36m[:, :1]
      pred_verts = out.pred_vertices - out.pred_xyz_17[:, :1]
      vmask = batch['target_smpl_weight'].reshape(-1).astype(jnp.float32) * sample
      sums['pve'] = metrics.SumCount.from_values(
          metrics.joint_errors(pred_verts, gt_verts), vmask[:, None])
    sums['non_finite_outputs'] = sums_invalid
    return sums, per_example

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
  from hybrik_jax import input_pipeline  # pylint: disable=g-import-not-at-top

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

METRIC_LABELS = {
    'mpjpe': ('MPJPE', 'mm'), 'pa_mpjpe': ('PA-MPJPE', 'mm'),
    'mpjpe_24': ('MPJPE (24 SMPL joints)', 'mm'),
    'pa_mpjpe_24': ('PA-MPJPE (24 SMPL joints)', 'mm'),
    'pve': ('PVE', 'mm'), 'pck': ('PCK@150mm', '%'), 'auc': ('AUC', '%'),
}


def evaluate(checkpoint: str, dataset: str, *, split: str = 'test',
             config: ml_collections.ConfigDict | None = None,
             data_dir: str | None = None, data_source=None,
             smpl_path: str | None = None, h36m_regressor: str | None = None,
             smpl_model=None,
             batch_size: int = 32, flip_test: bool = True,
             rootnet_json: str | None = None,
             rootnet_annotations: str | None = None,
             num_examples: int | None = None, output: str | None = None,
             progress: bool = True) -> dict[str, Any]:
  """Evaluates a checkpoint on a benchmark; returns and writes the results.

  Args:
    checkpoint: exported model directory or training workdir.
    dataset: 'h36m' | 'pw3d' | 'mpi_inf_3dhp' | 'synthetic_humans[/config]'.
    split: TFDS split.
    config: the experiment config (optional): config.data.data_dir,
      scale_mult, read_threads and config.smpl are read if present.
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
  from hybrik_jax import input_pipeline  # pylint: disable=g-import-not-at-top

  protocol = protocol_for(dataset)
  data_config = (config.get('data') if config is not None else None) or {}
  get = lambda c, k, d=None: (c.get(k, d) if hasattr(c, 'get') else d)
  data_dir = data_dir or get(data_config, 'data_dir')
  variables, model_config, ckpt_desc = load_checkpoint(checkpoint)
  if smpl_model is not None:
    body_desc = 'given body model'
  else:
    smpl_config = get(config, 'smpl', {}) if config is not None else {}
    smpl_path = smpl_path or get(smpl_config, 'model_path')
    h36m_regressor = h36m_regressor or get(smpl_config, 'h36m_regressor_path')
    smpl_model, body_desc = load_body_model(smpl_path, dataset, h36m_regressor)
  if batch_size < 1:
    raise ValueError(f'batch_size must be >= 1, got {batch_size}')
  roots = load_rootnet(rootnet_json, rootnet_annotations) if rootnet_json else None

  model = models.create_model(model_config)
  input_size = int(model_config.input_size)
  step = make_eval_step(model, smpl_model, input_size=input_size,
                        protocol=protocol, flip_test=flip_test)

  if data_source is None:
    data_source = input_pipeline.open_data_source(dataset, split, data_dir)
  total = len(data_source) if num_examples is None else min(num_examples, len(data_source))
  batches = iterate_batches(
      data_source, batch_size=batch_size, input_size=input_size,
      scale_mult=input_pipeline.scale_mult_for(data_config, dataset),
      dataset_id=input_pipeline.dataset_id(dataset), num_examples=num_examples,
      read_threads=int(get(data_config, 'read_threads', 4)))

  sums = None
  groups = collections.defaultdict(lambda: collections.defaultdict(lambda: [0.0, 0.0]))
  n_rootnet = n_examples = 0
  wrong_subjects = set()
  start = time.time()
  bar = tqdm.tqdm(total=total, desc=f'eval {dataset}/{split}', unit='img',
                  disable=not progress, dynamic_ncols=True)
  for batch, files in batches:
    real = len(files)
    if roots is not None:
      joint_root = batch['joint_root'].copy()
      for i, f in enumerate(files):
        root = roots.lookup(f)
        if root is not None:
          joint_root[i] = root
          n_rootnet += 1
      batch['joint_root'] = joint_root
    if base_name(dataset) == 'h36m':
      for f in files:
        match = re.search(r's_(\d+)_act', f)
        if match and int(match.group(1)) not in H36M_TEST_SUBJECTS:
          wrong_subjects.add(int(match.group(1)))
    batch_sums, per_example = jax.device_get(step(variables, batch))
    sums = metrics.merge_sums(sums, batch_sums)
    if protocol.group_pattern:
      for i, f in enumerate(files):
        group = group_of(protocol, f)
        if group is None:
          continue
        for name, (total, count) in per_example.items():
          groups[group][name][0] += float(total[i])
          groups[group][name][1] += float(count[i])
    n_examples += real
    bar.update(real)
  bar.close()
  if wrong_subjects:
    print(f'WARNING: {dataset}/{split} holds subjects {sorted(wrong_subjects)}; '
          f'protocol 2 tests on S9 and S11 only.', file=sys.stderr)

  non_finite = int(round(float(sums.pop('non_finite_outputs').total)))
  averages = metrics.compute_averages(sums)
  values = {k: averages[k] for k in METRIC_LABELS if k in averages}
  counts = {k: int(round(float(sums[k].count))) for k in values}
  left_out = metrics.non_finite_counts({k: sums[k] for k in values})
  if roots is None:
    root_source = 'ground truth'
  elif n_rootnet == n_examples:
    root_source = f'RootNet ({roots.source})'
  else:
    root_source = (f'RootNet ({roots.source}) for {n_rootnet} of {n_examples}, '
                   'ground truth for the rest')
  results = {
      'dataset': dataset, 'split': split, 'checkpoint': os.path.abspath(checkpoint),
      'checkpoint_kind': ckpt_desc, 'body_model': body_desc,
      'num_examples': n_examples, 'flip_test': bool(flip_test),
      'non_finite_outputs': non_finite,
      'root_depth': root_source, 'root_depth_rootnet_examples': n_rootnet,
      'eval_joints': list(protocol.eval_joints),
      'metrics': values, 'counts': counts,
      # Items (joints / vertices) each average left out: non-finite
      # prediction (a failure) or non-finite ground truth (metrics.py).
      'non_finite_pred': {k: v['non_finite_pred'] for k, v in left_out.items()},
      'non_finite_target': {k: v['non_finite_target']
                            for k, v in left_out.items()},
      'units': {k: METRIC_LABELS[k][1] for k in values},
      'seconds': round(time.time() - start, 2),
  }
  if protocol.pck:
    results['pck_joints'] = list(protocol.pck_joints)
  if groups:
    per_group = {
        g: {name: per[name][0] / per[name][1] for name in METRIC_LABELS
            if name in per and per[name][1] > 0}
        for g, per in sorted(groups.items())}
    results[f'per_{protocol.group_name}'] = per_group
    # HybrIK's 'Avg' lines: the mean over groups, each group weighing the same.
    for name in ('mpjpe', 'pck', 'auc'):
      vals = [v[name] for v in per_group.values() if name in v]
      if vals and protocol.group_name == 'sequence' and protocol.pck:
        results[f'{name}_mean_over_{protocol.group_name}s'] = float(np.mean(vals))
  if output is None:
    output = default_output_path(checkpoint, dataset, split)
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  with open(output, 'w') as f:
    json.dump(results, f, indent=2)
  results['output'] = output
  return results


def default_output_path(checkpoint: str, dataset: str, split: str) -> str:
  """<checkpoint>_eval_<dataset>_<split>.json beside the checkpoint directory."""
  ckpt = os.path.abspath(checkpoint).rstrip(os.sep)
  name = base_name(dataset) + ('_' + dataset.split('/')[1] if '/' in dataset else '')
  return f'{ckpt}_eval_{name}_{split}.json'


def format_table(results: Mapping[str, Any]) -> str:
  """The console table of `evaluate`'s results."""
  rows = [('dataset', f"{results['dataset']} ({results['split']}, "
                      f"{results['num_examples']} examples)"),
          ('checkpoint', results['checkpoint_kind']),
          ('body model', results['body_model']),
          ('flip test', 'on' if results['flip_test'] else 'off'),
          ('root depth', results['root_depth'])]
  if results.get('non_finite_outputs'):
    rows.append(('non-finite outputs', f"{results['non_finite_outputs']} examples "
                 '(scored as zeros)'))
  for key, value in results['metrics'].items():
    label, unit = METRIC_LABELS[key]
    bad_pred = results.get('non_finite_pred', {}).get(key, 0)
    bad_target = results.get('non_finite_target', {}).get(key, 0)
    rows.append((label, f'{value:8.2f} {unit}  ({results["counts"][key]} '
                 f'averaged; left out: {bad_pred} non-finite predictions, '
                 f'{bad_target} non-finite ground truths)'))
  for key, value in results.items():
    if key.endswith('_mean_over_sequences'):
      label, unit = METRIC_LABELS[key.split('_mean_over_')[0]]
      rows.append((f'{label}, mean over sequences', f'{value:8.2f} {unit}'))
  for key, per in results.items():
    if key.startswith('per_'):
      what = key[len('per_'):]
      for g, v in per.items():
        text = ', '.join(f'{METRIC_LABELS[k][0]} {x:.2f} {METRIC_LABELS[k][1]}'
                         for k, x in v.items())
        rows.append((f'  {what} {g}', text))
  width = max(len(r[0]) for r in rows)
  line = '-' * (width + 3 + max(len(r[1]) for r in rows))
  body = '\n'.join(f'{k.ljust(width)} | {v}' for k, v in rows)
  return f'{line}\n{body}\n{line}'


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog='python -m hybrik_jax.evaluate', description=__doc__.split('\n\n')[0],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--checkpoint', required=True,
                      help='exported model directory or training workdir')
  parser.add_argument('--dataset', required=True,
                      help="h36m | pw3d | mpi_inf_3dhp | synthetic_humans[/tiny|small]")
  parser.add_argument('--config', default=None,
                      help='experiment config file (configs/x.py[:arg]) for data_dir etc.')
  parser.add_argument('--split', default=None,
                      help="TFDS split (default 'test'; 'validation' for synthetic_humans)")
  parser.add_argument('--data_dir', default=None, help='TFDS data_dir')
  parser.add_argument('--smpl', default=None, help='SMPL neutral .pkl')
  parser.add_argument('--h36m_regressor', default=None,
                      help="HybrIK's J_regressor_h36m.npy")
  parser.add_argument('--batch_size', type=int, default=32)
  parser.add_argument('--flip_test', dest='flip_test', action='store_true', default=True)
  parser.add_argument('--noflip_test', dest='flip_test', action='store_false')
  parser.add_argument('--rootnet_json', default=None,
                      help="RootNet's bbox_root_*_output.json (root_cam, mm)")
  parser.add_argument('--rootnet_annotations', default=None,
                      help='COCO-style json mapping image_id to file_name')
  parser.add_argument('--num_examples', type=int, default=None,
                      help='only the first N examples')
  parser.add_argument('--output', default=None, help='results JSON path')
  args = parser.parse_args(argv)
  split = args.split or ('validation' if base_name(args.dataset) == 'synthetic_humans'
                         else 'test')
  try:
    config = load_config_file(args.config) if args.config else None
    results = evaluate(
        args.checkpoint, args.dataset, split=split, config=config,
        data_dir=args.data_dir, smpl_path=args.smpl,
        h36m_regressor=args.h36m_regressor, batch_size=args.batch_size,
        flip_test=args.flip_test, rootnet_json=args.rootnet_json,
        rootnet_annotations=args.rootnet_annotations,
        num_examples=args.num_examples, output=args.output)
  except (FileNotFoundError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(format_table(results))
  print(f"results written to {results['output']}")
  return 0


if __name__ == '__main__':
  from hybrik_jax import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)  # UserError -> one line, status 2; Ctrl-C -> one line, 130
