"""Rotation conversions in jnp: axis-angle, unit quaternions (w, x, y, z), matrices.

All functions take any leading batch shape and are safe under jit, vmap and grad:
no NaN in values or gradients at the zero rotation or for a zero quaternion.
"""

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
