"""Rotation conversions in jnp: axis-angle, unit quaternions (w, x, y, z), matrices.

All functions take any leading batch shape and are safe under jit, vmap and grad:
no NaN in values or gradients at the zero rotation or for a zero quaternion.
"""

import jax
import jax.numpy as jnp

_EPS = 1e-8


def skew(v: jnp.ndarray) -> jnp.ndarray:
  """(..., 3) vectors -> (..., 3, 3) cross-product matrices [v]_x."""
  x, y, z = v[..., 0], v[..., 1], v[..., 2]
  zero = jnp.zeros_like(x)
  return jnp.stack([
      jnp.stack([zero, -z, y], axis=-1),
      jnp.stack([z, zero, -x], axis=-1),
      jnp.stack([-y, x, zero], axis=-1),
  ], axis=-2)


def axis_angle_to_matrix(axis_angle: jnp.ndarray) -> jnp.ndarray:
  """Rodrigues' formula: (..., 3) axis-angle (radians) -> (..., 3, 3) rotations.

  Uses the Taylor series of sin(t)/t and (1-cos t)/t^2 near t=0, so the value and
  gradient are exact and finite at the zero rotation.
  """
  theta2 = jnp.sum(axis_angle**2, axis=-1)
  small = theta2 < 1e-6
  safe_theta2 = jnp.where(small, 1.0, theta2)
  safe_theta = jnp.sqrt(safe_theta2)
  a = jnp.where(small, 1.0 - theta2 / 6.0, jnp.sin(safe_theta) / safe_theta)
  b = jnp.where(small, 0.5 - theta2 / 24.0, (1.0 - jnp.cos(safe_theta)) / safe_theta2)
  k = skew(axis_angle)
  eye = jnp.eye(3, dtype=axis_angle.dtype)
  return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


def quaternion_to_matrix(quat: jnp.ndarray) -> jnp.ndarray:
  """(..., 4) quaternions (w, x, y, z), normalised here -> (..., 3, 3) rotations.

  A zero quaternion maps to the identity.
  """
  norm2 = jnp.sum(quat**2, axis=-1, keepdims=True)
  zero = norm2 < _EPS
  identity = jnp.zeros_like(quat).at[..., 0].set(1.0)
  q = jnp.where(zero, identity, quat)
  q = q / jnp.sqrt(jnp.where(zero, 1.0, norm2))
  w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
  return jnp.stack([
      jnp.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
      jnp.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
      jnp.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
  ], axis=-2)


def _safe_norm(x: jnp.ndarray, axis: int = -1, keepdims: bool = False,
               tiny: float = 1e-24) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Euclidean norm whose gradient is finite (zero) at x = 0.

  Returns (norm, is_zero): `norm` is 1 where |x|^2 <= tiny, so it can divide safely.
  """
  n2 = jnp.sum(x * x, axis=axis, keepdims=keepdims)
  zero = n2 <= tiny
  return jnp.sqrt(jnp.where(zero, 1.0, n2)), zero


def norm(x: jnp.ndarray, axis: int = -1, keepdims: bool = False) -> jnp.ndarray:
  """Euclidean norm along `axis`; 0 with a zero (not NaN) gradient at x = 0."""
  n, zero = _safe_norm(x, axis=axis, keepdims=keepdims)
  return jnp.where(zero, 0.0, n)


def normalize(x: jnp.ndarray, default: jnp.ndarray | None = None,
              tiny: float = 1e-24) -> jnp.ndarray:
  """(..., N) vectors scaled to unit length; `default` (broadcastable) where x ~ 0.

  Without `default`, a zero vector stays zero. Gradients are finite everywhere.
  """
  norm, zero = _safe_norm(x, keepdims=True, tiny=tiny)
  unit = x / norm
  if default is None:
    return jnp.where(zero, jnp.zeros_like(x), unit)
  return jnp.where(zero, jnp.broadcast_to(default, unit.shape).astype(unit.dtype), unit)


def det3(m: jnp.ndarray) -> jnp.ndarray:
  """(..., 3, 3) -> (...) determinants (triple product; no LU, any dtype)."""
  return jnp.sum(m[..., 0, :] * jnp.cross(m[..., 1, :], m[..., 2, :]), axis=-1)


def matrix_to_quaternion(rot: jnp.ndarray) -> jnp.ndarray:
  """(..., 3, 3) rotations -> (..., 4) unit quaternions (w, x, y, z) with w >= 0.

  Shepperd's method: of the four ways to read the quaternion off the matrix, the
  one with the largest pivot (always >= 1/4 of the trace sum, so never near zero) is
  selected with a one-hot mask, which keeps values and gradients finite everywhere,
  including rotations by pi.
  """
  m = rot
  m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
  m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
  m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
  # 4 * q_k^2 for k = w, x, y, z.
  t = jnp.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], axis=-1)
  rows = jnp.stack([
      jnp.stack([t[..., 0], m21 - m12, m02 - m20, m10 - m01], axis=-1),
      jnp.stack([m21 - m12, t[..., 1], m10 + m01, m02 + m20], axis=-1),
      jnp.stack([m02 - m20, m10 + m01, t[..., 2], m21 + m12], axis=-1),
      jnp.stack([m10 - m01, m02 + m20, m21 + m12, t[..., 3]], axis=-1),
  ], axis=-2)  # (..., 4 candidates, 4)
  onehot = (jnp.arange(4) == jnp.argmax(t, axis=-1)[..., None]).astype(m.dtype)
  pivot = jnp.sum(onehot * t, axis=-1)  # >= 1 for a rotation
  row = jnp.sum(onehot[..., None] * rows, axis=-2)
  q = row / (2.0 * jnp.sqrt(jnp.maximum(pivot, 1e-12)))[..., None]
  q = normalize(q, default=jnp.asarray([1.0, 0.0, 0.0, 0.0], m.dtype))
  return jnp.where(q[..., :1] < 0, -q, q)


def quaternion_to_axis_angle(quat: jnp.ndarray) -> jnp.ndarray:
  """(..., 4) quaternions (w, x, y, z), normalised here -> (..., 3) axis-angle.

  The angle is in [0, pi]. Exact and grad-safe at the zero rotation (series of
  atan2(s, w) / s), and a zero quaternion maps to the zero rotation.
  """
  q = normalize(quat, default=jnp.asarray([1.0, 0.0, 0.0, 0.0], quat.dtype))
  q = jnp.where(q[..., :1] < 0, -q, q)
  w, v = q[..., 0], q[..., 1:]
  s2 = jnp.sum(v * v, axis=-1)
  small = s2 < 1e-6
  s = jnp.sqrt(jnp.where(small, 1.0, s2))
  safe_w = jnp.where(small, w, 1.0)  # w ~ 1 when s is small
  # 2 atan2(s, w) / s, and its Taylor series 2/w (1 - s^2 / (3 w^2)) near s = 0.
  factor = jnp.where(small, 2.0 / safe_w * (1.0 - s2 / (3.0 * safe_w**2)),
                     2.0 * jnp.arctan2(s, w) / s)
  return v * factor[..., None]


def axis_angle_to_quaternion(axis_angle: jnp.ndarray) -> jnp.ndarray:
  """(..., 3) axis-angle (radians) -> (..., 4) unit quaternions (w, x, y, z)."""
  theta2 = jnp.sum(axis_angle**2, axis=-1)
  small = theta2 < 1e-6
  theta = jnp.sqrt(jnp.where(small, 1.0, theta2))
  half_sinc = jnp.where(small, 0.5 - theta2 / 48.0, jnp.sin(theta / 2) / theta)
  w = jnp.where(small, 1.0 - theta2 / 8.0, jnp.cos(theta / 2))
  return jnp.concatenate([w[..., None], axis_angle * half_sinc[..., None]], axis=-1)


def matrix_to_axis_angle(rot: jnp.ndarray) -> jnp.ndarray:
  """(..., 3, 3) rotations -> (..., 3) axis-angle, angle in [0, pi]. Grad-safe."""
  return quaternion_to_axis_angle(matrix_to_quaternion(rot))


def axis_cos_sin_to_matrix(axis: jnp.ndarray, cos: jnp.ndarray,
                           sin: jnp.ndarray) -> jnp.ndarray:
  """Rotation about a unit axis by the angle with the given (cos, sin).

  Args:
    axis: (..., 3) unit vectors.
    cos, sin: (...) cosine and sine of the angle (assumed cos^2 + sin^2 = 1).

  Returns:
    (..., 3, 3) rotation matrices (Rodrigues).
  """
  # c I + s [u]x + (1 - c) u u^T, written elementwise (cheap to compile, no dot).
  eye = jnp.eye(3, dtype=axis.dtype)
  c, s = cos[..., None, None], sin[..., None, None]
  outer = axis[..., :, None] * axis[..., None, :]
  return c * eye + s * skew(axis) + (1.0 - c) * outer


def _any_perpendicular(u: jnp.ndarray) -> jnp.ndarray:
  """(..., 3) unit vectors -> (..., 3) unit vectors perpendicular to them."""
  # Cross with the coordinate axis least aligned with u.
  idx = jnp.argmin(jnp.abs(u), axis=-1)
  e = (jnp.arange(3) == idx[..., None]).astype(u.dtype)
  return normalize(jnp.cross(u, e), default=jnp.asarray([1.0, 0.0, 0.0], u.dtype))


def rotation_between(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
  """Shortest-arc ("swing") rotation that turns direction a onto direction b.

  Built from the half-way vector h = (a_hat + b_hat) / |a_hat + b_hat|: the unit
  quaternion (a_hat . h, a_hat x h) rotates by the angle between a and b about
  a x b. Its error grows only as 1 / cos(angle / 2) near opposite vectors (the
  problem's own conditioning), unlike axis-angle or 1 / (1 + cos) forms. Degenerate
  inputs stay finite: a zero `b` gives the identity; a zero `a` is taken as +y;
  exactly opposite directions give the rotation by pi about an axis perpendicular
  to a.

  Args:
    a, b: (..., 3) vectors, any length.

  Returns:
    (..., 3, 3) rotation matrices with R a_hat = b_hat.
  """
  ua = normalize(a, default=jnp.asarray([0.0, 1.0, 0.0], a.dtype))
  ub = normalize(b, default=ua)
  h = normalize(ua + ub, default=_any_perpendicular(ua))
  w = jnp.sum(ua * h, axis=-1)
  return _unit_quaternion_to_matrix(w, jnp.cross(ua, h))


def _unit_quaternion_to_matrix(w: jnp.ndarray, v: jnp.ndarray) -> jnp.ndarray:
  """(...) w and (..., 3) v of a unit quaternion -> (..., 3, 3), elementwise."""
  x, y, z = v[..., 0], v[..., 1], v[..., 2]
  return jnp.stack([
      jnp.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
      jnp.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
      jnp.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
  ], axis=-2)


def twist_about(rot: jnp.ndarray, axis: jnp.ndarray) -> jnp.ndarray:
  """Swing-twist decomposition: the twist (cos, sin) of `rot` about `axis`.

  Writes rot = swing @ twist, where twist is a rotation about `axis` by phi and
  swing is the shortest-arc rotation from `axis` to `rot @ axis` (so swing equals
  `rotation_between(axis, rot @ axis)`). From the quaternion (w, v) of rot and
  p = v . axis_hat: phi = 2 atan2(p, w), so
  cos phi = (w^2 - p^2) / (w^2 + p^2), sin phi = 2 w p / (w^2 + p^2).
  Where the twist is undefined (rot turns the axis to its opposite: w = p = 0) or the
  axis is zero, returns (1, 0).

  Args:
    rot: (..., 3, 3) rotations.
    axis: (..., 3) twist axes, any length.

  Returns:
    (..., 2) (cos phi, sin phi).
  """
  u = normalize(axis)
  q = matrix_to_quaternion(rot)
  w = q[..., 0]
  p = jnp.sum(q[..., 1:] * u, axis=-1)
  d = w * w + p * p
  undefined = d < 1e-12
  inv = 1.0 / jnp.where(undefined, 1.0, d)
  cos = jnp.where(undefined, 1.0, (w * w - p * p) * inv)
  sin = jnp.where(undefined, 0.0, 2.0 * w * p * inv)
  return jnp.stack([cos, sin], axis=-1)


def _polar_rotation_parts(m):
  u, s, vt = jnp.linalg.svd(m)
  d = jnp.where(det3(u) * det3(vt) < 0, -1.0, 1.0).astype(m.dtype)
  # Flip the last singular pair so that R = U V'^T is a proper rotation (Kabsch).
  sign = jnp.concatenate([jnp.ones_like(s[..., :2]), d[..., None]], axis=-1)
  vt = vt * sign[..., :, None]
  s = s * sign
  zero = jnp.sum(m * m, axis=(-2, -1)) <= jnp.finfo(m.dtype).tiny
  return u, s, vt, zero


@jax.custom_jvp
def closest_rotation(m: jnp.ndarray) -> jnp.ndarray:
  """Rotation R maximising trace(R^T m) (Kabsch / proper polar factor of m).

  For m = sum_k target_k rest_k^T, R is the least-squares rotation taking the rest
  vectors onto the targets. Computed by SVD; a zero m gives the identity.

  Gradients: SVD's own derivative has 1 / (s_i^2 - s_j^2) terms that blow up at
  repeated singular values, although the rotation itself is smooth there. The
  custom JVP differentiates the rotation directly: with m = U diag(s') V'^T (s' the
  singular values with the last one's sign set so that det(U V'^T) = 1),
  dR = U A V'^T, A_ij = (X_ij - X_ji) / (s'_i + s'_j), X = U^T dm V'. Only sums of
  singular values appear, which vanish only where the rotation is truly undefined
  (rank <= 1, e.g. collinear children, or the reflection ambiguity); there the
  division is Tikhonov-damped, g/(g^2 + eps) with eps ~ (1e-4 s_max)^2, so the
  gradient stays finite (it drops the undetermined component).

  Args:
    m: (..., 3, 3) matrices.

  Returns:
    (..., 3, 3) rotations.
  """
  u, _, vt, zero = _polar_rotation_parts(m)
  rot = u @ vt
  return jnp.where(zero[..., None, None], jnp.eye(3, dtype=m.dtype), rot)


@closest_rotation.defjvp
def _closest_rotation_jvp(primals, tangents):
  (m,), (dm,) = primals, tangents
  u, s, vt, zero = _polar_rotation_parts(m)
  eye = jnp.eye(3, dtype=m.dtype)
  rot = jnp.where(zero[..., None, None], eye, u @ vt)
  x = jnp.swapaxes(u, -1, -2) @ dm @ jnp.swapaxes(vt, -1, -2)
  g = s[..., :, None] + s[..., None, :]
  eps = (1e-4 * jnp.abs(s[..., 0]))**2 + jnp.finfo(m.dtype).tiny
  a = (x - jnp.swapaxes(x, -1, -2)) * (g / (g * g + eps[..., None, None]))
  drot = jnp.where(zero[..., None, None], jnp.zeros_like(m), u @ a @ vt)
  return rot, drot


# ----------------------------------------------------------------------------
# The same Kabsch fit without SVD (runtimes without one, e.g. ONNX).
# ----------------------------------------------------------------------------

# Squarings of Horn's shifted 4x4 matrix: the top eigenvector's weight grows as
# ((l1 + c) / (l2 + c))^(2^k); 2^32 resolves eigenvalue gaps down to ~1e-8 of
# the spread (float32 itself resolves ~1e-7).
_HORN_SQUARINGS = 32


def _horn_matrix(m: jnp.ndarray) -> jnp.ndarray:
  """(..., 3, 3) m = sum target rest^T -> (..., 4, 4) Horn's symmetric matrix.

  Its eigenvector of the largest eigenvalue is the unit quaternion (w, x, y, z)
  of the rotation maximising trace(R^T m) (Horn 1987, with S = m^T).
  """
  s = jnp.swapaxes(m, -1, -2)
  sxx, sxy, sxz = s[..., 0, 0], s[..., 0, 1], s[..., 0, 2]
  syx, syy, syz = s[..., 1, 0], s[..., 1, 1], s[..., 1, 2]
  szx, szy, szz = s[..., 2, 0], s[..., 2, 1], s[..., 2, 2]
  rows = [
      [sxx + syy + szz, syz - szy, szx - sxz, sxy - syx],
      [syz - szy, sxx - syy - szz, sxy + syx, szx + sxz],
      [szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy],
      [sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz],
  ]
  return jnp.stack([jnp.stack(r, axis=-1) for r in rows], axis=-2)


def inv3(m: jnp.ndarray) -> jnp.ndarray:
  """(..., 3, 3) -> inverses by the adjugate (no LU); singular m -> inf/NaN."""
  adj = jnp.stack([jnp.cross(m[..., 1, :], m[..., 2, :]),
                   jnp.cross(m[..., 2, :], m[..., 0, :]),
                   jnp.cross(m[..., 0, :], m[..., 1, :])], axis=-1)
  return adj / det3(m)[..., None, None]


def _horn_rotation(m: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
  """(rotation, zero mask) of `closest_rotation_horn` (no derivative rule)."""
  n = _horn_matrix(m)
  scale = jnp.sqrt(jnp.sum(m * m, axis=(-2, -1)))  # |m|_F >= s_max
  zero = scale <= jnp.finfo(m.dtype).tiny
  # Eigenvalues of n lie in [-sqrt(3) |m|_F, sqrt(3) |m|_F]: shift them >= 0 so
  # that the largest one also has the largest magnitude, scale to O(1).
  safe = jnp.where(zero, 1.0, scale)[..., None, None]
  eye4 = jnp.eye(4, dtype=m.dtype)
  a = n / safe + 1.8 * eye4
  a = jnp.where(zero[..., None, None], eye4, a)

  for _ in range(_HORN_SQUARINGS):  # unrolled: a loop costs more on CPU
    a = jnp.sum(a[..., :, :, None] * a[..., None, :, :], axis=-2)  # a @ a, fused
    a = a / jnp.sum(jnp.abs(a), axis=(-2, -1), keepdims=True)
  # a ~ q q^T: its largest-diagonal column is the best-conditioned copy of q.
  col = jnp.argmax(jnp.diagonal(a, axis1=-2, axis2=-1), axis=-1)
  onehot = (jnp.arange(4) == col[..., None]).astype(m.dtype)
  q = jnp.sum(a * onehot[..., None, :], axis=-1)
  q = normalize(q, default=jnp.asarray([1.0, 0.0, 0.0, 0.0], m.dtype))
  rot = _unit_quaternion_to_matrix(q[..., 0], q[..., 1:])
  return jnp.where(zero[..., None, None], jnp.eye(3, dtype=m.dtype), rot), zero


@jax.custom_jvp
def closest_rotation_horn(m: jnp.ndarray) -> jnp.ndarray:
  """`closest_rotation` without SVD: Horn's quaternion eigenvector.

  The rotation maximising trace(R^T m) is the unit quaternion of the largest
  eigenvalue of Horn's symmetric 4x4 matrix of m; it is found by repeated
  squaring of that matrix (shifted positive), i.e. power iteration with
  2^32 steps, in matrix products and elementwise operations only (exported
  graphs run it on any runtime: ONNX has no SVD). Always a proper rotation
  (det +1, Kabsch's reflection case included); a zero m gives the identity.
  Equal to `closest_rotation` to float precision wherever that is determined
  (rank >= 2; tests/test_geometry.py).

  Gradients: the same as `closest_rotation`'s, from the polar relation
  m = R S (S = R^T m symmetric): dR = R [w]_x with
  (tr(S) I - S) w = vee(R^T dm - dm^T R), solved by a 3x3 adjugate with the
  same Tikhonov damping (eigenvalues s_i + s_j).

  Args:
    m: (..., 3, 3) matrices.

  Returns:
    (..., 3, 3) rotations.
  """
  return _horn_rotation(m)[0]


@closest_rotation_horn.defjvp
def _closest_rotation_horn_jvp(primals, tangents):
  (m,), (dm,) = primals, tangents
  rot, zero = _horn_rotation(m)
  rt = jnp.swapaxes(rot, -1, -2)
  s = rt @ m
  s = 0.5 * (s + jnp.swapaxes(s, -1, -2))
  eye = jnp.eye(3, dtype=m.dtype)
  a = jnp.trace(s, axis1=-2, axis2=-1)[..., None, None] * eye - s
  w = rt @ dm
  w = w - jnp.swapaxes(w, -1, -2)
  vee = jnp.stack([w[..., 2, 1], w[..., 0, 2], w[..., 1, 0]], axis=-1)
  scale = jnp.sqrt(jnp.sum(m * m, axis=(-2, -1)))
  eps = (1e-4 * scale)**2 + jnp.finfo(m.dtype).tiny
  damped = a @ a + eps[..., None, None] * eye
  damped = jnp.where(zero[..., None, None], eye, damped)  # finite cotangents at m = 0
  omega = jnp.einsum('...ij,...j->...i', inv3(damped) @ a, vee)
  drot = rot @ skew(omega)
  return rot, jnp.where(zero[..., None, None], jnp.zeros_like(m), drot)
