"""Each benchmark's evaluation protocol, defined once.

The trainer's validation and `python -m hybrik_jax.evaluate` both run the
one evaluation loop (`evaluation.loop`), which scores a batch with
`batch_metrics(protocol, ...)`,
so the same checkpoint on the same images gives the same numbers in both, and
both name the protocol they used (`Protocol.name`, e.g. TensorBoard's
`val/h36m_p2/mpjpe_mm`).

The protocols, read from Jeff-sjtu/HybrIK's evaluation code
(hybrik/datasets/{h36m_smpl,pw3d,hp3d}.py, scripts/validate_smpl.py):

* Every 3D error is root-relative: prediction and ground truth are translated
  so that their pelvis is at the origin. The predicted joints are the 17
  Human3.6M joints regressed from the predicted mesh (`pred_xyz_17`).
* h36m_p2 (protocol 2, test subjects S9 and S11; the builder's 'test' split):
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
* synthetic_humans: as pw3d (exact labels, the synthetic body model).
* synthetic_whole_body (SMPL-X models, HybrIK-X; `batch_metrics_smplx`): MPJPE and
  PA-MPJPE on SMPL-X's 22 body joints (pelvis to wrists) of the skinned body,
  root-relative, against the labelled joints; the hands' MPJPE on the 30 finger
  joints, each hand relative to its wrist (`mpjpe_hands`); MVE, the mean vertex
  error of the 10,475 vertices relative to the pelvis, against the mesh of the
  labelled parameters with the same SMPL-X body (no alignment).

Averages count every valid joint once (HybrIK: np.mean over samples x
joints). Every protocol uses the flip test and the ground-truth root depth
(`evaluate --rootnet_json` replaces the latter where it has a root).
"""

import dataclasses
import re
from typing import Any, Mapping

import jax.numpy as jnp

from hybrik_jax.body import geometry
from hybrik_jax.evaluation import metrics

# 14 of the 17 H36M joints used on Human3.6M and 3DPW (HybrIK EVAL_JOINTS):
# every joint but pelvis (0), torso (7) and nose (9).
H36M_EVAL_14 = (6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10)
ALL_17 = tuple(range(17))
# 3DHP's PCK joint groups, as indices of the H36M-17 order: head (top) 10,
# neck 8, shoulders 11 14, elbows 12 15, wrists 13 16, hips 1 4, knees 2 5,
# ankles 3 6.
HP3D_PCK_JOINTS = (10, 8, 11, 14, 12, 15, 13, 16, 1, 4, 2, 5, 3, 6)
# SMPL-X's body joints (pelvis .. wrists) and each hand's 15 finger joints and wrist.
SMPLX_BODY_22 = tuple(range(22))
SMPLX_HANDS = ((tuple(range(25, 40)), 20), (tuple(range(40, 55)), 21))
# Human3.6M protocol 2 test subjects.
H36M_TEST_SUBJECTS = (9, 11)
# Human3.6M actions 2..16 (file names `s_XX_act_YY_...`; HybrIK action_name).
H36M_ACTIONS = ('Directions', 'Discussion', 'Eating', 'Greeting', 'Phoning',
                'Posing', 'Purchases', 'Sitting', 'SittingDown', 'Smoking',
                'Photo', 'Waiting', 'Walking', 'WalkDog', 'WalkTogether')

# Metric key -> (printed label, unit, tag suffix).
METRIC_LABELS = {
    'mpjpe': ('MPJPE', 'mm'), 'pa_mpjpe': ('PA-MPJPE', 'mm'),
    'mpjpe_24': ('MPJPE (24 SMPL joints)', 'mm'),
    'pa_mpjpe_24': ('PA-MPJPE (24 SMPL joints)', 'mm'),
    'pve': ('PVE', 'mm'), 'pck': ('PCK@150mm', '%'), 'auc': ('AUC', '%'),
    'mpjpe_hands': ('MPJPE hands (wrist-relative)', 'mm'), 'mve': ('MVE', 'mm'),
}
_TAG_UNITS = {'mm': 'mm', '%': 'pct'}


@dataclasses.dataclass(frozen=True)
class Protocol:
  """What a benchmark measures (see the module docstring).

  Attributes:
    name: names the protocol in tables and TensorBoard tags ('h36m_p2').
    eval_joints: indices into the 17 H36M joints that the errors use.
    align_all_17: Procrustes on all 17 joints before selecting (Human3.6M),
      else on the selected joints only.
    smpl_24: also MPJPE/PA-MPJPE on the 24 SMPL joints.
    pve: also the per-vertex error.
    pck: also 3D PCK / AUC on `pck_joints`.
    pck_joints: indices into the 17 H36M joints.
    flip_test: average with the mirrored input.
    root: where the absolute root depth comes from.
    group_pattern: regex on image_file whose first group names the
      per-group breakdown (action, sequence), or None.
    group_name: what a group is.
    body: 'smpl', or 'smplx' (HybrIK-X's models; `batch_metrics_smplx`, and
      eval_joints index SMPL-X's joints).
  """
  name: str
  eval_joints: tuple[int, ...]
  align_all_17: bool = False
  smpl_24: bool = False
  pve: bool = False
  pck: bool = False
  pck_joints: tuple[int, ...] = HP3D_PCK_JOINTS
  flip_test: bool = True
  root: str = 'ground truth'
  group_pattern: str | None = None
  group_name: str = ''
  body: str = 'smpl'

  def describe(self, flip_test: bool | None = None) -> str:
    """One line for tables: name, joints, alignment, flip test, root."""
    flip = self.flip_test if flip_test is None else flip_test
    joints = ('14 H36M joints' if self.eval_joints == H36M_EVAL_14 else
              f'{len(self.eval_joints)} H36M joints')
    if self.body == 'smplx':
      joints = f'{len(self.eval_joints)} SMPL-X body joints, hands, mesh'
    align = 'PA on 17' if self.align_all_17 else 'PA on the same joints'
    return (f'{self.name} ({joints}, {align}, flip test '
            f'{"on" if flip else "off"}, {self.root} root)')


PROTOCOLS = {
    'h36m': Protocol('h36m_p2', H36M_EVAL_14, align_all_17=True,
                     group_pattern=r'_act_(\d+)_', group_name='action'),
    'pw3d': Protocol('pw3d', H36M_EVAL_14, smpl_24=True, pve=True,
                     group_pattern=r'([^/\\]+)[/\\][^/\\]+$',
                     group_name='sequence'),
    'mpi_inf_3dhp': Protocol('mpi_inf_3dhp', ALL_17, pck=True,
                             group_pattern=r'(TS\d+)', group_name='sequence'),
    'synthetic_humans': Protocol('synthetic_humans', H36M_EVAL_14,
                                 smpl_24=True, pve=True),
    'synthetic_whole_body': Protocol('synthetic_whole_body', SMPLX_BODY_22, body='smplx'),
}


def base_name(dataset: str) -> str:
  """'synthetic_humans/tiny' -> 'synthetic_humans'; 'pw3d:1.0.0' -> 'pw3d'."""
  return dataset.split('/')[0].split(':')[0]


def protocol_for(dataset: str) -> Protocol:
  """The protocol of a TFDS dataset name; ValueError naming the known ones."""
  name = base_name(dataset)
  if name not in PROTOCOLS:
    raise ValueError(f'unknown dataset {dataset!r}: evaluation protocols exist '
                     f'for {sorted(PROTOCOLS)}')
  return PROTOCOLS[name]


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


def tag(protocol: Protocol, metric: str) -> str:
  """TensorBoard-style name of a metric: 'h36m_p2/mpjpe_mm'."""
  if metric in METRIC_LABELS:
    return f'{protocol.name}/{metric}_{_TAG_UNITS[METRIC_LABELS[metric][1]]}'
  return f'{protocol.name}/{metric}'


def _sums(errors: jnp.ndarray, mask: jnp.ndarray, failed: jnp.ndarray):
  """(B, N) per-item values, (B, N) mask, (B,) failed samples -> (SumCount,
  per-example (total (B,), count (B,))).

  A failed sample (any non-finite predicted joint or vertex, in any output) is
  left out whole of every metric and counted once in the SumCount; items with
  bad ground truth (NaN) are left out and counted (metrics.py).
  """
  errors = jnp.where(failed[:, None], jnp.inf, errors)
  return (metrics.SumCount.from_values(errors, mask),
          metrics.finite_sum_count(errors, mask))


def _non_finite(points: jnp.ndarray | None, mask: jnp.ndarray) -> jnp.ndarray:
  """(B, N, 3) points, (B, N) mask -> (B,) bool: a valid point not finite."""
  if points is None:
    return jnp.zeros(mask.shape[:1], bool)
  bad = ~jnp.all(jnp.isfinite(points), axis=-1)
  return jnp.any(bad & (mask > 0), axis=-1)


def batch_metrics(protocol: Protocol, batch: Mapping[str, jnp.ndarray], *,
                  pred_xyz_17: jnp.ndarray,
                  pred_xyz_24: jnp.ndarray | None = None,
                  pred_vertices: jnp.ndarray | None = None,
                  valid: jnp.ndarray | None = None,
                  smpl_model=None) -> tuple[dict[str, Any], dict[str, Any]]:
  """The protocol's metrics of one batch, with the metrics.py functions.

  Args:
    protocol: what to measure.
    batch: an input_pipeline batch (joints17_cam, joints17_valid, mask; for
      smpl_24 / pve also target_xyz_24, target_xyz_weight_24, target_theta,
      target_beta, target_smpl_weight).
    pred_xyz_17: (B, 17, 3) metres, H36M joints of the predicted mesh.
    pred_xyz_24: (B, 24, 3) metres, SMPL joints of the skinned body; the
      24-joint metrics only if given.
    pred_vertices: (B, 6890, 3) metres; PVE only if given (needs smpl_model).
    valid: (B,) bool, False where the network's outputs were not finite
      (decode scored them as zeros: they count, as large errors).
    smpl_model: the body model that makes the ground-truth mesh for PVE.

  Returns:
    (sums, per_example): sums {metric: metrics.SumCount} over the batch's
    real examples (mask 1) and valid joints, plus 'non_finite_outputs'
    (total: examples with non-finite outputs, count: real examples);
    per_example {'mpjpe'[, 'pck', 'auc']: (total (B,), count (B,))} for the
    per-action / per-sequence tables.
  """
  sample = batch['mask'].astype(jnp.float32)
  if valid is None:
    valid = jnp.ones(sample.shape, bool)
  sums = {'non_finite_outputs': metrics.SumCount(
      jnp.sum((~valid).astype(jnp.float32) * sample), jnp.sum(sample))}
  per_example = {}

  pred17 = metrics.root_align(pred_xyz_17.astype(jnp.float32))
  gt17 = metrics.root_align(batch['joints17_cam'].astype(jnp.float32))
  valid17 = batch['joints17_valid'].astype(jnp.float32)
  mask17 = valid17 * valid17[:, :1] * sample[:, None]  # needs the pelvis
  sel = jnp.asarray(protocol.eval_joints)
  m = mask17[:, sel]
  # One rule for every metric: a sample with any non-finite predicted joint
  # (of the 17, the 24 or the mesh) is one failed sample, scored nowhere.
  sample_mask = jnp.broadcast_to(sample[:, None], pred_xyz_17.shape[:2])
  failed = _non_finite(pred_xyz_17, sample_mask)
  if protocol.smpl_24 and pred_xyz_24 is not None:
    failed |= _non_finite(pred_xyz_24, jnp.broadcast_to(
        sample[:, None], pred_xyz_24.shape[:2]))
  if protocol.pve and pred_vertices is not None:
    failed |= _non_finite(pred_vertices, jnp.broadcast_to(
        sample[:, None], pred_vertices.shape[:2]))
  sums['mpjpe'], per_example['mpjpe'] = _sums(
      metrics.joint_errors(pred17[:, sel], gt17[:, sel]), m, failed)
  if protocol.align_all_17:
    aligned = metrics.procrustes_align(pred17, gt17, mask17)[:, sel]
  else:
    aligned = metrics.procrustes_align(pred17[:, sel], gt17[:, sel], m)
  sums['pa_mpjpe'], _ = _sums(metrics.joint_errors(aligned, gt17[:, sel]), m,
                              failed)
  if protocol.pck:
    psel = jnp.asarray(protocol.pck_joints)
    err = metrics.joint_errors(pred17[:, psel], gt17[:, psel])
    pm = mask17[:, psel]
    sums['pck'], per_example['pck'] = _sums(metrics.pck_values(err), pm, failed)
    sums['auc'], per_example['auc'] = _sums(metrics.auc_values(err), pm, failed)
  if protocol.smpl_24 and pred_xyz_24 is not None:
    pred24 = metrics.root_align(pred_xyz_24.astype(jnp.float32))
    gt24 = batch['target_xyz_24'].astype(jnp.float32)  # root-relative
    m24 = (batch['target_xyz_weight_24'][..., 0].astype(jnp.float32) *
           sample[:, None])
    sums['mpjpe_24'], _ = _sums(metrics.joint_errors(pred24, gt24), m24, failed)
    sums['pa_mpjpe_24'], _ = _sums(metrics.joint_errors(
        metrics.procrustes_align(pred24, gt24, m24), gt24), m24, failed)
  if protocol.pve and pred_vertices is not None:
    from hybrik_jax.body import smpl as smpl_lib  # pylint: disable=g-import-not-at-top
    rot = geometry.quaternion_to_matrix(batch['target_theta'].astype(jnp.float32))
    gt_body = smpl_lib.forward(
        smpl_model, batch['target_beta'].astype(jnp.float32), rot)
    # Both meshes relative to their H36M pelvis (regressed from the mesh),
    # as HybrIK's SMPL layer returns them (validate_smpl.py, test_vertice).
    gt_verts = gt_body.vertices - gt_body.joints_h36m[:, :1]
    pred_verts = pred_vertices - pred_xyz_17[:, :1]
    vmask = batch['target_smpl_weight'].reshape(-1).astype(jnp.float32) * sample
    sums['pve'], _ = _sums(metrics.joint_errors(pred_verts, gt_verts),
                           jnp.broadcast_to(vmask[:, None], pred_verts.shape[:2]),
                           failed)
  return sums, per_example


def averages(sums: Mapping[str, metrics.SumCount]) -> dict[str, float]:
  """Summed batch_metrics -> {metric: mean (mm / %), NaN if undefined} plus
  'num_examples', 'non_finite_outputs' (examples), 'non_finite_pred' (failed
  samples, left out of every metric) and 'non_finite_target' (joints with
  non-finite ground truth the MPJPE left out)."""
  sums = dict(sums)
  non_finite = sums.pop('non_finite_outputs')
  out = {k: v for k, v in metrics.compute_averages(sums).items()
         if k in METRIC_LABELS}
  out['num_examples'] = float(non_finite.count)
  out['non_finite_outputs'] = float(non_finite.total)
  # What the MPJPE left out: failed samples (a non-finite predicted joint)
  # and joints with non-finite ground truth (metrics.SumCount); never 0 mm.
  if 'mpjpe' in sums:
    out['non_finite_pred'] = float(sums['mpjpe'].non_finite_pred)
    out['non_finite_target'] = float(sums['mpjpe'].non_finite_target)
  return out


def batch_metrics_smplx(protocol: Protocol, batch: Mapping[str, jnp.ndarray], *,
                        pred_xyz_71: jnp.ndarray, pred_vertices: jnp.ndarray,
                        valid: jnp.ndarray | None = None,
                        smplx_model=None) -> tuple[dict[str, Any], dict[str, Any]]:
  """An SMPL-X protocol's metrics of one batch (module docstring), as batch_metrics.

  Args:
    protocol: body 'smplx'.
    batch: a whole-body batch (input_pipeline.preprocess_example_smplx): mask,
      target_xyz_71, target_xyz_weight_71 (root-relative metres),
      target_rotmats, target_beta, target_beta_kid, target_expression,
      target_smpl_weight.
    pred_xyz_71: (B, 71, 3) metres, the skinned body's joints relative to its pelvis
      (models.hybrik_x.SMPLXModelOutput.pred_xyz_71_struct).
    pred_vertices: (B, 10475, 3) metres, relative to the pelvis.
    valid: (B,) bool, False where the network's outputs were not finite.
    smplx_model: the SMPL-X body that makes the labelled mesh.

  Returns:
    (sums, per_example) with 'mpjpe', 'pa_mpjpe', 'mpjpe_hands', 'mve' (mm) and
    'non_finite_outputs'; per_example {'mpjpe': (total (B,), count (B,))}.
  """
  from hybrik_jax.body import smplx as smplx_lib  # pylint: disable=g-import-not-at-top
  f32 = lambda x: jnp.asarray(x, jnp.float32)
  sample = f32(batch['mask'])
  if valid is None:
    valid = jnp.ones(sample.shape, bool)
  sums = {'non_finite_outputs': metrics.SumCount(
      jnp.sum((~valid).astype(jnp.float32) * sample), jnp.sum(sample))}
  pred = metrics.root_align(f32(pred_xyz_71))
  gt = f32(batch['target_xyz_71'])
  weight = f32(batch['target_xyz_weight_71'])[..., 0] * sample[:, None]
  failed = (_non_finite(pred, jnp.broadcast_to(sample[:, None], pred.shape[:2]))
            | _non_finite(pred_vertices, jnp.broadcast_to(sample[:, None],
                                                          pred_vertices.shape[:2])))
  sel = jnp.asarray(protocol.eval_joints)
  m = weight[:, sel]
  per_example = {}
  sums['mpjpe'], per_example['mpjpe'] = _sums(
      metrics.joint_errors(pred[:, sel], gt[:, sel]), m, failed)
  aligned = metrics.procrustes_align(pred[:, sel], gt[:, sel], m)
  sums['pa_mpjpe'], _ = _sums(metrics.joint_errors(aligned, gt[:, sel]), m, failed)
  hand_err, hand_mask = [], []
  for fingers, wrist in SMPLX_HANDS:
    f = jnp.asarray(fingers)
    hand_err.append(metrics.joint_errors(pred[:, f] - pred[:, wrist:wrist + 1],
                                         gt[:, f] - gt[:, wrist:wrist + 1]))
    hand_mask.append(weight[:, f] * weight[:, wrist:wrist + 1])
  sums['mpjpe_hands'], _ = _sums(jnp.concatenate(hand_err, 1),
                                 jnp.concatenate(hand_mask, 1), failed)
  b = gt.shape[0]
  betas = jnp.concatenate([f32(batch['target_beta']).reshape(b, -1),
                           f32(batch['target_beta_kid']).reshape(b, 1)], 1)
  gt_body = smplx_lib.skin(smplx_model, betas, f32(batch['target_rotmats']),
                           f32(batch['target_expression']))
  gt_verts = gt_body.vertices - gt_body.joints[:, :1]
  vmask = f32(batch['target_smpl_weight']).reshape(-1) * sample
  sums['mve'], _ = _sums(metrics.joint_errors(pred_vertices.astype(jnp.float32), gt_verts),
                         jnp.broadcast_to(vmask[:, None], pred_vertices.shape[:2]), failed)
  return sums, per_example
