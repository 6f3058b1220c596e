"""Tests for hybrik_jax.body.geometry: rotation conversions, swing/twist, Kabsch."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.spatial.transform import Rotation

from hybrik_jax.body import geometry


def _axis_angles(rng, n, angles):
  axes = rng.normal(size=(n, 3))
  axes /= np.linalg.norm(axes, axis=-1, keepdims=True)
  return axes * np.asarray(angles)[:, None]


def _test_angles(rng):
  """Random angles plus the hard cases: near 0 and near pi."""
  return np.concatenate([
      rng.uniform(0, np.pi, 40),
      [0.0, 1e-9, 1e-6, 1e-4, 1e-2, np.pi - 1e-2, np.pi - 1e-4, np.pi - 1e-6, np.pi]])


def _assert_all_finite(tree):
  for leaf in jax.tree.leaves(tree):
    assert np.all(np.isfinite(np.asarray(leaf))), leaf


def test_matrix_to_quaternion_matches_scipy():
  rng = np.random.default_rng(0)
  aa = _axis_angles(rng, 49, _test_angles(rng))
  with jax.enable_x64(True):
    rot = Rotation.from_rotvec(aa)
    q = np.asarray(geometry.matrix_to_quaternion(jnp.asarray(rot.as_matrix())))
  xyzw = rot.as_quat()
  expected = np.concatenate([xyzw[:, 3:], xyzw[:, :3]], axis=1)
  expected *= np.where(expected[:, :1] < 0, -1.0, 1.0)
  # At exactly pi, q and -q both have w = 0: compare up to sign.
  err = np.minimum(np.abs(q - expected).max(-1), np.abs(q + expected).max(-1))
  assert err.max() < 1e-12
  assert np.all(q[:, 0] >= 0)


@pytest.mark.parametrize('dtype, tol', [(jnp.float32, 2e-6), (jnp.float64, 1e-12)])
def test_round_trips(dtype, tol):
  rng = np.random.default_rng(1)
  aa = _axis_angles(rng, 49, _test_angles(rng))
  with jax.enable_x64(dtype == jnp.float64):
    aa_j = jnp.asarray(aa, dtype)
    rot = geometry.axis_angle_to_matrix(aa_j)
    q = geometry.matrix_to_quaternion(rot)
    aa_back = geometry.matrix_to_axis_angle(rot)
    chex.assert_trees_all_close(geometry.quaternion_to_matrix(q), rot, atol=tol)
    chex.assert_trees_all_close(geometry.axis_angle_to_matrix(aa_back), rot, atol=tol)
    # q and -q are the same rotation (w = 0 at pi): align signs before comparing.
    q_aa = geometry.axis_angle_to_quaternion(aa_j)
    sign = jnp.where(jnp.sum(q_aa * q, axis=-1, keepdims=True) < 0, -1.0, 1.0)
    chex.assert_trees_all_close(q_aa * sign, q, atol=tol)
    assert aa_back.dtype == dtype
  # Away from pi (where the axis sign is ambiguous) the axis-angle itself comes back;
  # near pi, float32 loses the angle's last digits (d angle ~ eps / sin(angle)).
  away = np.abs(np.linalg.norm(aa, axis=-1) - np.pi) > 1e-3
  np.testing.assert_allclose(np.asarray(aa_back)[away], aa[away], atol=10 * tol)


def test_zero_quaternion_is_identity():
  np.testing.assert_allclose(geometry.quaternion_to_axis_angle(jnp.zeros((2, 4))), 0.0)
  np.testing.assert_allclose(geometry.quaternion_to_matrix(jnp.zeros(4)), np.eye(3))


def test_conversion_grads_are_finite_at_hard_points():
  special = jnp.stack([
      jnp.eye(3), jnp.diag(jnp.array([1.0, -1.0, -1.0])),
      jnp.diag(jnp.array([-1.0, 1.0, -1.0])), jnp.diag(jnp.array([-1.0, -1.0, 1.0])),
      geometry.axis_angle_to_matrix(jnp.array([1e-7, 0.0, 0.0]))])
  w = jnp.asarray(np.random.default_rng(2).normal(size=(5, 3)), jnp.float32)
  for fn in (geometry.matrix_to_axis_angle, lambda m: geometry.matrix_to_quaternion(m)[..., 1:]):
    _assert_all_finite(jax.jit(jax.grad(lambda m, fn=fn: jnp.sum(fn(m) * w)))(special))
  jac = lambda f: jax.jit(jax.vmap(jax.jacobian(f)))
  aa = jnp.array([[0.0, 0.0, 0.0], [1e-9, 0.0, 0.0], [np.pi, 0.0, 0.0]])
  _assert_all_finite(jac(geometry.axis_angle_to_quaternion)(aa))
  _assert_all_finite(jac(geometry.axis_angle_to_matrix)(aa))
  quats = jnp.array([[0.0, 0, 0, 0], [1.0, 0, 0, 0], [0.0, 1, 0, 0]])
  _assert_all_finite(jac(geometry.quaternion_to_axis_angle)(quats))


def test_conversion_check_grads_float64():
  rng = np.random.default_rng(3)
  with jax.enable_x64(True):
    aa = jnp.asarray(_axis_angles(rng, 4, [0.3, 1.0, 2.0, 3.0]))
    rot = geometry.axis_angle_to_matrix(aa)
    check_grads(jax.jit(geometry.matrix_to_quaternion), (rot,), order=1, modes=['fwd', 'rev'])
    check_grads(jax.jit(geometry.matrix_to_axis_angle), (rot,), order=1, modes=['fwd', 'rev'])
    check_grads(jax.jit(geometry.axis_angle_to_quaternion), (aa,), order=1, modes=['fwd', 'rev'])
    quats = jnp.asarray(rng.normal(size=(4, 4)))
    check_grads(jax.jit(geometry.quaternion_to_axis_angle), (quats,),
                order=1, modes=['fwd', 'rev'])


def test_rotation_between():
  rng = np.random.default_rng(4)
  a = rng.normal(size=(20, 3))
  b = rng.normal(size=(20, 3)) * 3.0
  b[0] = 2.0 * a[0]    # parallel
  b[1] = -0.5 * a[1]   # opposite
  b[2] = -a[2] + 1e-4  # nearly opposite
  with jax.enable_x64(True):
    rot = np.asarray(geometry.rotation_between(jnp.asarray(a), jnp.asarray(b)))
  ua = a / np.linalg.norm(a, axis=-1, keepdims=True)
  ub = b / np.linalg.norm(b, axis=-1, keepdims=True)
  np.testing.assert_allclose(np.einsum('nij,nj->ni', rot, ua), ub, atol=1e-10)
  np.testing.assert_allclose(rot @ np.swapaxes(rot, 1, 2), np.broadcast_to(np.eye(3), rot.shape),
                             atol=1e-12)
  np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-12)
  np.testing.assert_allclose(rot[0], np.eye(3), atol=1e-12)
  # Shortest arc: the rotation axis is perpendicular to both vectors.
  axis = Rotation.from_matrix(rot[3:]).as_rotvec()
  np.testing.assert_allclose(np.sum(axis * ua[3:], -1), 0.0, atol=1e-10)
  np.testing.assert_allclose(np.linalg.norm(axis, axis=-1),
                             np.arccos(np.clip(np.sum(ua[3:] * ub[3:], -1), -1, 1)), atol=1e-8)


def test_rotation_between_degenerate_is_finite():
  a = jnp.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
  b = jnp.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
  rot = geometry.rotation_between(a, b)
  _assert_all_finite(rot)
  np.testing.assert_allclose(rot[1], np.eye(3), atol=1e-6)       # zero target: identity
  np.testing.assert_allclose(rot[2] @ np.array([1.0, 0, 0]), [-1.0, 0, 0], atol=1e-6)
  np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-5)
  grads = jax.jit(jax.grad(lambda a, b: jnp.sum(geometry.rotation_between(a, b)**3),
                           (0, 1)))(a, b)
  _assert_all_finite(grads)


def test_twist_about_recovers_constructed_twist():
  rng = np.random.default_rng(5)
  n = 30
  axis = rng.normal(size=(n, 3))
  phi = rng.uniform(-np.pi, np.pi, n)
  # A swing about a direction perpendicular to the twist axis, angle < pi.
  perp = np.cross(axis, rng.normal(size=(n, 3)))
  perp /= np.linalg.norm(perp, axis=-1, keepdims=True)
  swing = Rotation.from_rotvec(perp * rng.uniform(0, 3.0, n)[:, None]).as_matrix()
  twist = Rotation.from_rotvec(
      axis / np.linalg.norm(axis, axis=-1, keepdims=True) * phi[:, None]).as_matrix()
  with jax.enable_x64(True):
    cs = np.asarray(geometry.twist_about(jnp.asarray(swing @ twist), jnp.asarray(axis)))
  np.testing.assert_allclose(cs, np.stack([np.cos(phi), np.sin(phi)], -1), atol=1e-10)
  # Undefined (swing by pi) or zero axis: (1, 0), finite gradients.
  flip = jnp.asarray(Rotation.from_rotvec(perp[:1] * np.pi).as_matrix(), jnp.float32)
  np.testing.assert_allclose(geometry.twist_about(flip, jnp.asarray(axis[:1], jnp.float32)),
                             [[1.0, 0.0]], atol=1e-3)
  _assert_all_finite(jax.jit(jax.grad(lambda r, a: jnp.sum(geometry.twist_about(r, a)),
                                      (0, 1)))(flip, jnp.zeros((1, 3))))


def test_closest_rotation_fits_vectors():
  rng = np.random.default_rng(6)
  rot = Rotation.random(8, random_state=7).as_matrix()
  rest = rng.normal(size=(8, 3, 3))  # 3 vectors per fit
  target = np.einsum('bij,bkj->bki', rot, rest)
  m = np.einsum('bki,bkj->bij', target, rest)
  with jax.enable_x64(True):
    fit = np.asarray(geometry.closest_rotation(jnp.asarray(m)))
    # A reflection-like m (det < 0) still gives a proper rotation, the best one.
    refl = np.asarray(geometry.closest_rotation(jnp.asarray(-m)))
  np.testing.assert_allclose(fit, rot, atol=1e-10)
  np.testing.assert_allclose(np.linalg.det(refl), 1.0, atol=1e-10)
  best = np.einsum('bij,bij->b', refl, -m)
  others = Rotation.random(2000, random_state=8).as_matrix()
  assert np.all(best[:, None] >= np.einsum('rij,bij->br', others, -m) - 1e-9)


def test_closest_rotation_grads():
  with jax.enable_x64(True):
    m = jnp.asarray(np.random.default_rng(9).normal(size=(4, 3, 3)))
    check_grads(jax.jit(geometry.closest_rotation), (m,), order=1, modes=['fwd', 'rev'])
  # Repeated, zero and rank-deficient singular values: SVD's own gradient is NaN or
  # inf here; the custom JVP stays finite.
  hard = jnp.stack([jnp.eye(3), jnp.zeros((3, 3)), jnp.diag(jnp.array([1.0, 0.0, 0.0])),
                    jnp.diag(jnp.array([1.0, 1.0, 0.0])), jnp.diag(jnp.array([1.0, 1.0, -1.0]))])
  w = jnp.asarray(np.random.default_rng(10).normal(size=(5, 3, 3)), jnp.float32)
  out, grad = jax.jit(jax.value_and_grad(
      lambda m: jnp.sum(geometry.closest_rotation(m) * w)))(hard)
  _assert_all_finite((out, grad))
  np.testing.assert_allclose(geometry.closest_rotation(hard)[:2], np.stack([np.eye(3)] * 2))
  # Where the rotation is smooth (m = I), the gradient is the exact one: d R = skew part.
  d = jnp.asarray([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
  _, tangent = jax.jvp(geometry.closest_rotation, (jnp.eye(3),), (d,))
  np.testing.assert_allclose(tangent, (d - d.T) / 2, atol=1e-6)


def _kabsch_cases(rng, n=200):
  """m = sum target rest^T for generic, reflected and near-degenerate fits:
  three rest vectors nearly in a plane or nearly on a line (spread eps)."""
  rot = Rotation.random(n, random_state=11).as_matrix()
  cases = {'generic': rng.normal(size=(n, 3, 3))}
  cases['reflected'] = -cases['generic']
  for eps in (1e-1, 1e-2):
    rest = rng.normal(size=(n, 3, 3))
    planar = rest.copy()
    planar[:, 2] = 0.7 * rest[:, 0] + eps * rng.normal(size=(n, 3))
    line = rest.copy()
    line[:, 1] = 1.3 * rest[:, 0] + eps * rng.normal(size=(n, 3))
    line[:, 2] = 0.5 * rest[:, 0] + eps * rng.normal(size=(n, 3))
    for name, r in (('planar', planar), ('collinear', line)):
      target = np.einsum('bij,bkj->bki', rot, r) + 1e-3 * eps * rng.normal(size=r.shape)
      cases[f'{name} {eps}'] = np.einsum('bki,bkj->bij', target, r)
  return cases


def _numpy_kabsch(m):
  u, _, vt = np.linalg.svd(m)
  vt = vt.copy()
  vt[:, 2] *= np.sign(np.linalg.det(u) * np.linalg.det(vt))[:, None]
  return u @ vt


def test_closest_rotation_horn_equals_svd():
  """Horn's quaternion fit (no SVD) is the SVD fit: to 1e-6 in float64 on
  generic, reflected and near-degenerate fits; in float32 as close to the
  float64 answer as the SVD's own float32 result (both are float32 rounding
  amplified by the fit's conditioning)."""
  cases = _kabsch_cases(np.random.default_rng(12))
  horn = jax.jit(geometry.closest_rotation_horn)
  svd = jax.jit(geometry.closest_rotation)
  for name, m in cases.items():
    ref = _numpy_kabsch(m)
    with jax.enable_x64(True):
      np.testing.assert_allclose(horn(jnp.asarray(m)), ref, atol=1e-6, err_msg=name)
      np.testing.assert_allclose(horn(jnp.asarray(m)), svd(jnp.asarray(m)), atol=1e-6,
                                 err_msg=name)
    m32 = jnp.asarray(m, jnp.float32)
    err_horn = np.abs(np.asarray(horn(m32)) - ref).max()
    err_svd = np.abs(np.asarray(svd(m32)) - ref).max()
    assert err_horn <= 5.0 * err_svd + 1e-6, (name, err_horn, err_svd)
    r = np.asarray(horn(m32), np.float64)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-5, err_msg=name)
  # A zero m gives the identity, as closest_rotation's.
  np.testing.assert_array_equal(horn(jnp.zeros((2, 3, 3))), np.stack([np.eye(3)] * 2))


def test_closest_rotation_horn_grads_match_svd():
  with jax.enable_x64(True):
    rng = np.random.default_rng(13)
    m = jnp.asarray(rng.normal(size=(4, 3, 3)))
    d = jnp.asarray(rng.normal(size=(4, 3, 3)))
    jvp = lambda f: jax.jit(lambda m, d: jax.jvp(f, (m,), (d,))[1])
    t_horn = jvp(geometry.closest_rotation_horn)(m, d)
    t_svd = jvp(geometry.closest_rotation)(m, d)
    # The same derivative; only the damping scale differs (|m|_F for s_max).
    np.testing.assert_allclose(t_horn, t_svd, rtol=1e-5, atol=1e-8)
  hard = jnp.stack([jnp.eye(3), jnp.zeros((3, 3)), jnp.diag(jnp.array([1.0, 0.0, 0.0]))])
  _assert_all_finite(jax.jit(jax.grad(
      lambda m: jnp.sum(geometry.closest_rotation_horn(m))))(hard))


def test_inv3_is_the_inverse():
  m = np.random.default_rng(14).normal(size=(8, 3, 3))
  with jax.enable_x64(True):
    np.testing.assert_allclose(geometry.inv3(jnp.asarray(m)), np.linalg.inv(m), rtol=1e-9,
                               atol=1e-9)
