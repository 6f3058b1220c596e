"""3D pose and mesh metrics: MPJPE, PA-MPJPE, PVE, PCK and AUC.

Inputs are in **metres** (as everywhere in hybrik_jax); every result is in
**millimetres** (MPJPE, PA-MPJPE, PVE) or **percent** (PCK, AUC). All functions
are plain jnp, batched over a leading axis B, jit-able, and run in float32 or
float64.

Conventions follow HybrIK's evaluation code (Jeff-sjtu/HybrIK,
hybrik/datasets/{h36m_smpl,pw3d,hp3d}.py and hybrik/utils/pose_utils.py):

- The error of a joint is its Euclidean distance to the target; MPJPE is the
  mean over joints and samples (every valid joint counts once).
- PA-MPJPE first aligns the prediction to the target with the similarity
  transform (rotation, uniform scale, translation) that minimises the squared
  error (orthogonal Procrustes with scale, as `compute_similarity_transform`).
- PCK counts joints whose error is strictly below 150 mm; AUC is the mean PCK
  over the thresholds 0, 5, ..., 150 mm (MPI-INF-3DHP's protocol, `hp3d.py`:
  `pck_thres = 150`, `auc_thres = range(0, 155, 5)`).

Joint masks (B, J) in {0, 1} (or bool) drop joints from every metric; a sample
without valid joints contributes nothing.

Non-finite inputs are never scored as good (a NaN must not look like 0 mm),
and one rule decides what a failure is, in every metric and both forms:

- A joint whose **prediction** is not finite (NaN or inf) while its target is
  finite is a failed prediction: `joint_errors` gives it +inf. A **sample**
  with any failed (valid) joint is a *failed sample*: it has no MPJPE,
  PA-MPJPE, PVE, PCK or AUC at all (none of its joints is scored), and is
  counted as one failure. Leaving out only its bad joints would bias what
  remains (the hard joints fail first).
- A joint whose **target** is not finite is *bad ground truth*: `joint_errors`
  gives it NaN, and it is treated as an invalid joint (no alignment weight).
- The per-sample functions return +inf (`mpjpe`, `pa_mpjpe`, `pve`) or NaN
  (`pck`, `auc`: no percentage) for a failed sample and ignore bad-ground-
  truth joints.
- The (sum, count) forms leave failed samples out of the mean and **count**
  them: `SumCount.non_finite_pred` (failed samples) and
  `SumCount.non_finite_target` (valid items, e.g. joints, with NaN ground
  truth). Every report (trainer logs, `evaluate`'s table and JSON) prints
  those counts beside each metric. `pck_values` / `auc_values` carry a joint's
  non-finite error through, so `SumCount.from_values(pck_values(err), mask)`
  fails the same samples as `pck`.
- An average over nothing (every sample failed, or none valid) is undefined:
  `SumCount.compute` returns NaN, reports print 'undefined' (JSON null),
  never a number (`format_value`).

To average over many batches or devices, use the (sum, count) form
`SumCount` (`protocols.batch_metrics` returns a dict of them), which adds up
with `merge` / `merge_sums` (or `jax.tree.map(jnp.add, a, b)`, or a `psum`);
`compute` divides once at the end, so a final short batch or padded samples
weigh exactly right.
"""

from typing import Mapping, Sequence

import flax
import jax
import jax.numpy as jnp
import numpy as np

from hybrik_jax.utils import check_shape

MM_PER_METRE = 1000.0
# MPI-INF-3DHP's PCK threshold and AUC thresholds, millimetres.
PCK_THRESHOLD_MM = 150.0
AUC_THRESHOLDS_MM = tuple(float(t) for t in range(0, 155, 5))


# ----------------------------------------------------------------------------
# Small numerically safe helpers.
# ----------------------------------------------------------------------------


def _safe_norm(x: jnp.ndarray, axis: int = -1) -> jnp.ndarray:
  """Euclidean norm whose gradient is 0 (not NaN) at x = 0."""
  sq = jnp.sum(jnp.square(x), axis=axis)
  positive = sq > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def _safe_divide(num: jnp.ndarray, den: jnp.ndarray) -> jnp.ndarray:
  """num / den, 0 where den == 0 (value and gradient)."""
  nonzero = den != 0
  return jnp.where(nonzero, num / jnp.where(nonzero, den, 1.0), 0.0)


def _joint_mask(mask, batch: int, num_joints: int, dtype) -> jnp.ndarray:
  """The (B, J) mask as `dtype` (all ones if None)."""
  if mask is None:
    return jnp.ones((batch, num_joints), dtype)
  check_shape('mask', mask, (batch, num_joints))
  return jnp.asarray(mask).astype(dtype)


def _check_points(pred, target, name='pred'):
  check_shape(name, pred, (None, None, 3))
  check_shape('target', target, tuple(np.shape(pred)))


# ----------------------------------------------------------------------------
# Alignment.
# ----------------------------------------------------------------------------


def root_align(points: jnp.ndarray, root_index: int = 0) -> jnp.ndarray:
  """Subtracts the root joint: (B, J, 3) -> (B, J, 3), root at the origin."""
  check_shape('points', points, (None, None, 3))
  return points - points[:, root_index:root_index + 1, :]


def procrustes_align(pred: jnp.ndarray, target: jnp.ndarray,
                     mask: jnp.ndarray | None = None) -> jnp.ndarray:
  """Aligns `pred` to `target` with the best similarity transform.

  Finds s, R (a proper rotation, det +1) and t minimising
  sum_j mask_j |s R pred_j + t - target_j|^2, the orthogonal Procrustes problem
  with scale (Umeyama; HybrIK's `compute_similarity_transform`), over the valid
  joints only, and applies it to every joint.

  Degenerate inputs are safe: if the valid prediction points coincide (or
  fewer than one joint is valid) the scale is 0 and the result is the target's
  centroid, never NaN. The rotation comes from an SVD whose gradient is
  undefined for repeated singular values, so it is treated as a constant in
  the backward pass (`stop_gradient`); scale and translation are
  differentiated. As R is optimal, this is the exact gradient of the aligned
  squared error (envelope theorem) and finite for every input.

  Args:
    pred: (B, J, 3) points, any unit (metres in this project).
    target: (B, J, 3) points, same unit.
    mask: optional (B, J) joint validity; invalid joints do not influence the
      transform (they are still transformed).

  Returns:
    (B, J, 3) the aligned prediction, in the unit of `target`.
  """
  _check_points(pred, target)
  pred = jnp.asarray(pred)
  target = jnp.asarray(target).astype(pred.dtype)
  b, j, _ = pred.shape
  w = _joint_mask(mask, b, j, pred.dtype)[..., None]  # (B, J, 1)
  # Bad ground truth is an invalid joint; a masked-out joint's values (maybe
  # NaN) must not leak into the sums. A valid non-finite prediction does
  # leak: the whole sample then aligns to NaN (a failed prediction).
  w = w * _finite_points(target)[..., None].astype(pred.dtype)
  target = jnp.where(w > 0, target, 0)
  pred_all = pred
  pred = jnp.where(w > 0, pred, 0)
  w_sum = jnp.sum(w, axis=1, keepdims=True)  # (B, 1, 1)
  mu_pred = _safe_divide(jnp.sum(w * pred, axis=1, keepdims=True), w_sum)
  mu_target = _safe_divide(jnp.sum(w * target, axis=1, keepdims=True), w_sum)
  x = (pred - mu_pred) * w  # (B, J, 3), zero on invalid joints
  y = (target - mu_target) * w
  var_pred = jnp.sum(jnp.square(x), axis=(1, 2))  # (B,)
  # Cross-covariance K = X^T Y, (B, 3, 3); maximise trace(R K).
  k = jnp.einsum('bji,bjk->bik', x, y)
  u, _, vh = jnp.linalg.svd(jax.lax.stop_gradient(k))
  v = jnp.swapaxes(vh, -1, -2)
  ut = jnp.swapaxes(u, -1, -2)
  # Reflection fix: det(V U^T) = -1 flips the smallest singular direction.
  det = jnp.linalg.det(v @ ut)
  sign = jnp.where(det < 0, -1.0, 1.0).astype(pred.dtype)
  z = jnp.ones((b, 3), pred.dtype).at[:, 2].set(sign)
  r = jax.lax.stop_gradient(v @ (z[:, :, None] * ut))  # (B, 3, 3)
  scale = _safe_divide(jnp.einsum('bij,bji->b', r, k), var_pred)  # trace(R K)
  aligned = scale[:, None, None] * jnp.einsum('bik,bjk->bji', r,
                                              pred_all - mu_pred)
  return aligned + mu_target


# ----------------------------------------------------------------------------
# Per-sample metrics, (B,) each.
# ----------------------------------------------------------------------------


def joint_errors(pred: jnp.ndarray, target: jnp.ndarray) -> jnp.ndarray:
  """Per-joint Euclidean errors in mm.

  Args:
    pred: (B, J, 3) metres.
    target: (B, J, 3) metres.

  Returns:
    (B, J) millimetres; +inf where the prediction is not finite (a failed
    prediction), NaN where the target is not finite (bad ground truth).
  """
  _check_points(pred, target)
  pred = jnp.asarray(pred)
  target = jnp.asarray(target).astype(pred.dtype)
  pred_ok, target_ok = _finite_points(pred), _finite_points(target)
  diff = jnp.where((pred_ok & target_ok)[..., None], pred - target, 0)
  err = _safe_norm(diff) * MM_PER_METRE
  err = jnp.where(pred_ok, err, jnp.inf)
  return jnp.where(target_ok, err, jnp.nan)


def _masked_mean(values: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
  """Mean over the last axis of the finite, valid entries; +inf if any valid
  entry is +inf (a failed prediction); NaN entries (bad targets) are skipped."""
  valid = mask > 0
  failed = jnp.any(valid & jnp.isposinf(values), axis=-1)
  ok = jnp.where(valid & jnp.isfinite(values), mask, 0)
  mean = _safe_divide(jnp.sum(jnp.where(ok > 0, values, 0) * ok, axis=-1),
                      jnp.sum(ok, axis=-1))
  return jnp.where(failed, jnp.inf, mean)


def _finite_points(points: jnp.ndarray) -> jnp.ndarray:
  """(B, J, 3) -> (B, J) bool: all three coordinates finite."""
  return jnp.all(jnp.isfinite(points), axis=-1)


def non_finite_marks(errors: jnp.ndarray, values: jnp.ndarray) -> jnp.ndarray:
  """`values` where `errors` is finite, else the error's +inf / NaN marker."""
  return jnp.where(jnp.isfinite(errors), values, errors)


def pck_values(errors_mm: jnp.ndarray,
               threshold_mm: float = PCK_THRESHOLD_MM) -> jnp.ndarray:
  """Per-joint PCK hits, 100 or 0 percent; non-finite errors carried through.

  Args:
    errors_mm: (B, J) from `joint_errors` (+inf failed, NaN bad target).
    threshold_mm: mm.

  Returns:
    (B, J) percent, +inf / NaN where `errors_mm` is.
  """
  hit = 100.0 * (errors_mm < threshold_mm).astype(errors_mm.dtype)
  return non_finite_marks(errors_mm, hit)


def auc_values(errors_mm: jnp.ndarray,
               thresholds_mm: Sequence[float] = AUC_THRESHOLDS_MM
               ) -> jnp.ndarray:
  """Per-joint PCK averaged over `thresholds_mm`, percent; non-finite carried.

  Args:
    errors_mm: (B, J) from `joint_errors`.
    thresholds_mm: mm.

  Returns:
    (B, J) percent, +inf / NaN where `errors_mm` is.
  """
  t = jnp.asarray(thresholds_mm, errors_mm.dtype)
  below = 100.0 * jnp.mean((errors_mm[..., None] < t).astype(errors_mm.dtype),
                           axis=-1)
  return non_finite_marks(errors_mm, below)


def mpjpe(pred: jnp.ndarray, target: jnp.ndarray,
          mask: jnp.ndarray | None = None) -> jnp.ndarray:
  """Mean per-joint position error of each sample, mm.

  No alignment is done here: root-align both first (`root_align`) for the
  usual root-relative MPJPE.

  Args:
    pred: (B, J, 3) metres.
    target: (B, J, 3) metres.
    mask: optional (B, J) joint validity.

  Returns:
    (B,) millimetres (0 for a sample without valid joints, +inf for a sample
    whose prediction is not finite at a valid joint; joints with a non-finite
    target are left out).
  """
  err = joint_errors(pred, target)
  return _masked_mean(err, _joint_mask(mask, *err.shape, err.dtype))


def pa_mpjpe(pred: jnp.ndarray, target: jnp.ndarray,
             mask: jnp.ndarray | None = None) -> jnp.ndarray:
  """MPJPE after Procrustes alignment (rotation, scale, translation), mm.

  Args:
    pred: (B, J, 3) metres.
    target: (B, J, 3) metres.
    mask: optional (B, J); only valid joints drive the alignment and count.

  Returns:
    (B,) millimetres (+inf for a non-finite prediction, as `mpjpe`).
  """
  return mpjpe(procrustes_align(pred, target, mask), target, mask)


def pve(pred_vertices: jnp.ndarray, target_vertices: jnp.ndarray,
        mask: jnp.ndarray | None = None) -> jnp.ndarray:
  """Per-vertex error (mean vertex distance) of each sample, mm.

  HybrIK computes it on root-relative meshes without further alignment
  (scripts/validate_smpl.py, `test_vertice`).

  Args:
    pred_vertices: (B, V, 3) metres.
    target_vertices: (B, V, 3) metres.
    mask: optional (B,) or (B, V) validity.

  Returns:
    (B,) millimetres.
  """
  check_shape('pred_vertices', pred_vertices, (None, None, 3))
  check_shape('target_vertices', target_vertices, tuple(np.shape(pred_vertices)))
  b, v, _ = np.shape(pred_vertices)
  if mask is not None and np.ndim(mask) == 1:
    mask = jnp.broadcast_to(jnp.asarray(mask)[:, None], (b, v))
  return mpjpe(pred_vertices, target_vertices, mask)


def _failed_samples(errors_mm: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
  """(B, ...) errors, (B, ...) mask -> (B,) bool: a valid item is +inf."""
  bad = (mask > 0) & jnp.isposinf(errors_mm)
  return jnp.any(bad.reshape(bad.shape[0], -1), axis=-1)


def pck_from_errors(errors_mm: jnp.ndarray, mask: jnp.ndarray | None = None,
                    threshold_mm: float = PCK_THRESHOLD_MM) -> jnp.ndarray:
  """Percentage of valid joints with error strictly below `threshold_mm`.

  Args:
    errors_mm: (B, J) per-joint errors, mm.
    mask: optional (B, J).
    threshold_mm: the threshold, mm.

  Returns:
    (B,) percent; NaN for a failed sample (a valid joint's error is +inf).
  """
  check_shape('errors_mm', errors_mm, (None, None))
  m = _joint_mask(mask, *errors_mm.shape, errors_mm.dtype)
  m = jnp.where(jnp.isnan(errors_mm), 0, m)  # bad ground truth: left out
  hit = (errors_mm < threshold_mm).astype(errors_mm.dtype)
  return jnp.where(_failed_samples(errors_mm, m), jnp.nan,
                   100.0 * _masked_mean(hit, m))


def auc_from_errors(errors_mm: jnp.ndarray, mask: jnp.ndarray | None = None,
                    thresholds_mm: Sequence[float] = AUC_THRESHOLDS_MM
                    ) -> jnp.ndarray:
  """Area under the PCK curve: mean PCK over `thresholds_mm`, percent.

  Args:
    errors_mm: (B, J) per-joint errors, mm.
    mask: optional (B, J).
    thresholds_mm: the thresholds, mm (3DHP: 0, 5, ..., 150).

  Returns:
    (B,) percent; NaN for a failed sample.
  """
  check_shape('errors_mm', errors_mm, (None, None))
  m = _joint_mask(mask, *errors_mm.shape, errors_mm.dtype)
  m = jnp.where(jnp.isnan(errors_mm), 0, m)  # bad ground truth: left out
  t = jnp.asarray(thresholds_mm, errors_mm.dtype)
  below = (errors_mm[..., None] < t).astype(errors_mm.dtype)  # (B, J, T)
  return jnp.where(_failed_samples(errors_mm, m), jnp.nan,
                   100.0 * _masked_mean(jnp.mean(below, axis=-1), m))


def pck(pred: jnp.ndarray, target: jnp.ndarray, mask: jnp.ndarray | None = None,
        threshold_mm: float = PCK_THRESHOLD_MM) -> jnp.ndarray:
  """3D PCK: percent of joints within `threshold_mm` (default 150 mm).

  Args:
    pred: (B, J, 3) metres (root-aligned as the protocol says).
    target: (B, J, 3) metres.
    mask: optional (B, J).
    threshold_mm: mm.

  Returns:
    (B,) percent; NaN for a failed sample.
  """
  return pck_from_errors(joint_errors(pred, target), mask, threshold_mm)


def auc(pred: jnp.ndarray, target: jnp.ndarray, mask: jnp.ndarray | None = None,
        thresholds_mm: Sequence[float] = AUC_THRESHOLDS_MM) -> jnp.ndarray:
  """3D PCK AUC over thresholds 0..150 mm in 5 mm steps, percent.

  Args:
    pred: (B, J, 3) metres.
    target: (B, J, 3) metres.
    mask: optional (B, J).
    thresholds_mm: mm.

  Returns:
    (B,) percent; NaN for a failed sample.
  """
  return auc_from_errors(joint_errors(pred, target), mask, thresholds_mm)


# ----------------------------------------------------------------------------
# (sum, count) forms that average correctly across batches and devices.
# ----------------------------------------------------------------------------


@flax.struct.dataclass
class SumCount:
  """A running sum and its count; the average is total / count.

  Non-finite values are never summed: a failed sample is left out whole and
  counted instead (see the module docstring), so a NaN can neither pull an
  average towards 0 nor drop only the joints it failed on.

  Attributes:
    total: () the sum of the values of the samples that did not fail.
    count: () how many items (valid joints, vertices) were summed.
    non_finite_pred: () failed samples: a valid item's prediction was not
      finite (value +inf); none of their items is summed.
    non_finite_target: () valid items of the other samples left out because
      the ground truth was not finite (value NaN, or -inf).
  """
  total: jnp.ndarray
  count: jnp.ndarray
  non_finite_pred: jnp.ndarray = 0.0
  non_finite_target: jnp.ndarray = 0.0

  @classmethod
  def from_values(cls, values: jnp.ndarray,
                  mask: jnp.ndarray | None = None) -> 'SumCount':
    """Sums `values` (B, ...) where `mask` is 1, leaving out failed samples.

    The leading axis is the sample. A sample with a valid +inf entry (the
    failed-prediction marker of `joint_errors`, `pck_values`, `auc_values`)
    counts once in `non_finite_pred` and adds nothing else; NaN / -inf
    entries of the other samples count in `non_finite_target`.
    """
    values = jnp.asarray(values)
    if values.ndim == 0:
      values = values[None]
    if mask is None:
      m = jnp.ones(values.shape, values.dtype)
    else:
      m = jnp.broadcast_to(jnp.asarray(mask).astype(values.dtype), values.shape)
    failed = _failed_samples(values, m)  # (B,)
    keep = jnp.where(failed.reshape((-1,) + (1,) * (values.ndim - 1)), 0, m)
    finite = jnp.isfinite(values)
    ok = jnp.where(finite, keep, 0)
    return cls(jnp.sum(jnp.where(finite, values, 0) * ok), jnp.sum(ok),
               jnp.sum(failed.astype(values.dtype)),
               jnp.sum(jnp.where(finite, 0, keep)))

  def merge(self, other: 'SumCount') -> 'SumCount':
    return SumCount(self.total + other.total, self.count + other.count,
                    self.non_finite_pred + other.non_finite_pred,
                    self.non_finite_target + other.non_finite_target)

  def compute(self) -> jnp.ndarray:
    """The average; NaN (undefined) if nothing was counted."""
    return jnp.where(self.count > 0, _safe_divide(self.total, self.count),
                     jnp.nan)


def finite_sum_count(values: jnp.ndarray, mask: jnp.ndarray, axis: int = -1
                     ) -> tuple[jnp.ndarray, jnp.ndarray]:
  """(sum (B,), count (B,)) of each sample's finite `values` (B, N) where
  `mask` is 1; (0, 0) for a failed sample (a valid +inf entry).

  The per-example form of `SumCount.from_values` (per-action tables).
  """
  values = jnp.asarray(values)
  m = jnp.asarray(mask).astype(values.dtype)
  keep = jnp.where(jnp.expand_dims(_failed_samples(values, m), axis), 0, m)
  ok = jnp.where(jnp.isfinite(values), keep, 0)
  return (jnp.sum(jnp.where(ok > 0, values, 0) * ok, axis=axis),
          jnp.sum(ok, axis=axis))


def format_value(value, unit: str = '', width: int = 0,
                 precision: int = 2) -> str:
  """'123.45 mm', or 'undefined' for an average over nothing (NaN / None)."""
  if value is None or not np.isfinite(value):
    return 'undefined'.rjust(width)
  text = f'{float(value):{width}.{precision}f}'
  return f'{text} {unit}' if unit else text


def merge_sums(a: Mapping[str, SumCount] | None,
               b: Mapping[str, SumCount]) -> dict[str, SumCount]:
  """Adds two {name: SumCount} dicts key by key (`a` may be None to start)."""
  if a is None:
    return dict(b)
  if set(a) != set(b):
    raise ValueError(f'merge_sums: different metrics {sorted(a)} vs {sorted(b)}')
  return {k: a[k].merge(b[k]) for k in a}


def compute_averages(sums: Mapping[str, SumCount]) -> dict[str, float]:
  """{'mpjpe': SumCount, ...} -> {'mpjpe': float mm, ...} as Python floats
  (NaN: undefined, nothing averaged)."""
  return {k: float(v.compute()) for k, v in sums.items()}


def non_finite_counts(sums: Mapping[str, SumCount]) -> dict[str, dict[str, int]]:
  """{'mpjpe': SumCount, ...} -> {'mpjpe': {'non_finite_pred': n,
  'non_finite_target': m}, ...}: what each average left out (n failed
  samples, m items with non-finite ground truth)."""
  return {k: {'non_finite_pred': int(round(float(v.non_finite_pred))),
              'non_finite_target': int(round(float(v.non_finite_target)))}
          for k, v in sums.items()}
