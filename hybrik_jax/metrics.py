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
  aligned = scale[:, None, None] * jnp.einsum('bik,bjk->bji', r, pred - mu_pred)
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
    (B, J) millimetres.
  """
  _check_points(pred, target)
  pred = jnp.asarray(pred)
  return _safe_norm(pred - jnp.asarray(target).astype(pred.dtype)) * MM_PER_METRE


def _masked_mean(values: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
  return _safe_divide(jnp.sum(values * mask, axis=-1), jnp.sum(mask, axis=-1))


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
    (B,) millimetres (0 for a sample without valid joints).
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
    (B,) millimetres.
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


def pck_from_errors(errors_mm: jnp.ndarray, mask: jnp.ndarray | None = None,
                    threshold_mm: float = PCK_THRESHOLD_MM) -> jnp.ndarray:
  """Percentage of valid joints with error strictly below `threshold_mm`.

  Args:
    errors_mm: (B, J) per-joint errors, mm.
    mask: optional (B, J).
    threshold_mm: the threshold, mm.

  Returns:
    (B,) percent.
  """
  check_shape('errors_mm', errors_mm, (None, None))
  m = _joint_mask(mask, *errors_mm.shape, errors_mm.dtype)
  hit = (errors_mm < threshold_mm).astype(errors_mm.dtype)
  return 100.0 * _masked_mean(hit, m)


def auc_from_errors(errors_mm: jnp.ndarray, mask: jnp.ndarray | None = None,
                    thresholds_mm: Sequence[float] = AUC_THRESHOLDS_MM
                    ) -> jnp.ndarray:
  """Area under the PCK curve: mean PCK over `thresholds_mm`, percent.

  Args:
    errors_mm: (B, J) per-joint errors, mm.
    mask: optional (B, J).
    thresholds_mm: the thresholds, mm (3DHP: 0, 5, ..., 150).

  Returns:
    (B,) percent.
  """
  check_shape('errors_mm', errors_mm, (None, None))
  m = _joint_mask(mask, *errors_mm.shape, errors_mm.dtype)
  t = jnp.asarray(thresholds_mm, errors_mm.dtype)
  below = (errors_mm[..., None] < t).astype(errors_mm.dtype)  # (B, J, T)
  return 100.0 * _masked_mean(jnp.mean(below, axis=-1), m)


def pck(pred: jnp.ndarray, target: jnp.ndarray, mask: jnp.ndarray | None = None,
        threshold_mm: float = PCK_THRESHOLD_MM) -> jnp.ndarray:
  """3D PCK: percent of joints within `threshold_mm` (default 150 mm).

  Args:
    pred: (B, J, 3) metres (root-aligned as the protocol says).
    target: (B, J, 3) metres.
    mask: optional (B, J).
    threshold_mm: mm.

  Returns:
    (B,) percent.
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
    (B,) percent.
  """
  return auc_from_errors(joint_errors(pred, target), mask, thresholds_mm)


# ----------------------------------------------------------------------------
# (sum, count) forms that average correctly across batches and devices.
# ----------------------------------------------------------------------------


@flax.struct.dataclass
class SumCount:
  """A running sum and its count; the average is total / count.

  Attributes:
    total: () the sum of the per-item values (mm or percent).
    count: () how many items (valid joints, vertices) were summed.
  """
  total: jnp.ndarray
  count: jnp.ndarray

  @classmethod
  def from_values(cls, values: jnp.ndarray,
                  mask: jnp.ndarray | None = None) -> 'SumCount':
    """Sums `values` (any shape) over the entries where `mask` is 1."""
    values = jnp.asarray(values)
    if mask is None:
      return cls(jnp.sum(values), jnp.asarray(values.size, values.dtype))
    m = jnp.broadcast_to(jnp.asarray(mask).astype(values.dtype), values.shape)
    return cls(jnp.sum(values * m), jnp.sum(m))

  def merge(self, other: 'SumCount') -> 'SumCount':
    return SumCount(self.total + other.total, self.count + other.count)

  def compute(self) -> jnp.ndarray:
    """The average, 0 if nothing was counted."""
    return _safe_divide(self.total, self.count)


def merge_sums(a: Mapping[str, SumCount] | None,
               b: Mapping[str, SumCount]) -> dict[str, SumCount]:
  """Adds two {name: SumCount} dicts key by key (`a` may be None to start)."""
  if a is None:
    return dict(b)
  if set(a) != set(b):
    raise ValueError(f'merge_sums: different metrics {sorted(a)} vs {sorted(b)}')
  return {k: a[k].merge(b[k]) for k in a}


def compute_averages(sums: Mapping[str, SumCount]) -> dict[str, float]:
  """{'mpjpe': SumCount, ...} -> {'mpjpe': float mm, ...} as Python floats."""
  return {k: float(v.compute()) for k, v in sums.items()}
