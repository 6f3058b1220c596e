"""Unit tests of HybrIK's camera models: the integral, the flip test, the camera.

models/heatmap_cam_head.py (heads, heatmap flip, integral) and models/camera.py
(back-projection, bbox offsets, the scale fit of update_scale). Small shapes, no
IK (the IK parts are checked against the released code in
tests/test_released_hybrik_parity.py).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrik_jax.body import constants
from hybrik_jax.models import camera
from hybrik_jax.models import heatmap_cam_head as cam_head

J = constants.NUM_JOINTS_29


def _rng(seed=0):
  return np.random.default_rng(seed)


def test_integral_of_a_peaked_heatmap_is_its_voxel():
  h, w, d = 6, 8, 4
  logits = np.full((1, h, w, J, d), -1e4, np.float32)
  where = [(j % h, (3 * j) % w, j % d) for j in range(J)]
  for j, (y, x, z) in enumerate(where):
    logits[0, y, x, j, z] = 0.0
  uvd, maxvals = jax.jit(cam_head.heatmaps_to_uvd, static_argnums=1)(jnp.asarray(logits), False)
  want = np.array([[x / w - 0.5, y / h - 0.5, z / d - 0.5] for y, x, z in where])
  np.testing.assert_allclose(uvd[0], want, atol=1e-6)
  np.testing.assert_allclose(maxvals, 1.0, atol=1e-6)


def test_integral_is_the_expectation_over_each_whole_volume():
  h, w, d = 3, 4, 5
  logits = _rng(1).normal(size=(2, h, w, J, d)).astype(np.float32)
  uvd, maxvals = jax.jit(cam_head.heatmaps_to_uvd, static_argnums=1)(jnp.asarray(logits), False)
  p = np.exp(logits - logits.max(axis=(1, 2, 4), keepdims=True))
  p /= p.sum(axis=(1, 2, 4), keepdims=True)
  ys, xs, zs = np.meshgrid(np.arange(h), np.arange(w), np.arange(d), indexing='ij')
  e = lambda grid, n: np.einsum('bhwjd,hwd->bj', p, grid) / n - 0.5
  np.testing.assert_allclose(uvd, np.stack([e(xs, w), e(ys, h), e(zs, d)], -1), atol=1e-6)
  np.testing.assert_allclose(maxvals, p.max(axis=(1, 2, 4)), rtol=1e-6)


def test_integral_of_full_size_volumes_is_float64_accurate():
  """A released-size volume (64 x 64 x 64 = 262,144 voxels per joint), peaked
  diffuse logits as random heads give: uvd within 2e-6 of float64 relative
  (measured 4.6e-7). torch 2.13 CPU's float32 softmax gives 8.6e-5 on these
  logits: its probabilities sum to 1 +- 5e-5 over such a volume, and the
  released integral does not renormalise them (docs/FIDELITY.md)."""
  n = 64
  rng = _rng(5)
  logits = rng.normal(0.0, 3.0, size=(1, n, n, 3, n))
  grid = np.stack(np.meshgrid(*(np.arange(n),) * 3, indexing='ij'), -1)  # (y, x, z)
  for j in range(3):  # a broad bump per joint
    c = rng.uniform(16, 48, 3)
    logits[0, :, :, j] -= ((grid - c) ** 2).sum(-1) / (2 * 12.0 ** 2)
  logits = logits.astype(np.float32)
  uvd, maxvals = jax.jit(cam_head.heatmaps_to_uvd, static_argnums=1)(jnp.asarray(logits), False)
  x = logits.astype(np.float64)
  p = np.exp(x - x.max(axis=(1, 2, 4), keepdims=True))
  p /= p.sum(axis=(1, 2, 4), keepdims=True)
  idx = np.arange(n) / n
  want = np.stack([np.einsum('bhwjd,w->bj', p, idx), np.einsum('bhwjd,h->bj', p, idx),
                   np.einsum('bhwjd,d->bj', p, idx)], -1) - 0.5
  assert np.abs(np.asarray(uvd, np.float64) - want).max() < 2e-6 * np.abs(want).max()
  np.testing.assert_allclose(maxvals, p.max(axis=(1, 2, 4)), rtol=2e-6)


def test_heatmap_flip_mirrors_swaps_and_shifts_one_pixel():
  logits = _rng(2).normal(size=(1, 2, 5, J, 3)).astype(np.float32)
  got = np.asarray(cam_head.flip_heatmap_logits(jnp.asarray(logits)))
  mirrored = logits[:, :, ::-1][:, :, :, list(constants.FLIP_PERM_29)]
  np.testing.assert_array_equal(got[:, :, 1:], mirrored[:, :, :-1])   # shifted right
  np.testing.assert_array_equal(got[:, :, 0], mirrored[:, :, 0])      # column 0 kept
  # Joint 1 (left hip) of the result reads joint 2 (right hip) of the input.
  np.testing.assert_array_equal(got[0, :, 1:, 1], logits[0, :, ::-1, 2][:, :-1])


@pytest.fixture(scope='module')
def hrnet_head():
  head = cam_head.HRNetCamHead(depth_dim=3, init_cam=(0.9,))
  branch0 = jnp.asarray(_rng(3).normal(size=(4, 4, 4, 5)), jnp.float32)
  features = jnp.asarray(_rng(4).normal(size=(4, 2, 2, 7)), jnp.float32)
  params = jax.jit(lambda: head.init(jax.random.key(0), branch0, features, False))()
  return jax.jit(lambda p: [head.apply(p, branch0, features, False, flip)
                            for flip in (False, True)])(params)


def _flip_phi(phi):
  perm = [constants.FLIP_PERM_24[i + 1] - 1 for i in range(constants.NUM_TWISTS)]
  return phi[:, perm] * np.array([1.0, -1.0])


def test_hrnet_flip_test_averages_as_released(hrnet_head):
  """Rows 2, 3 stand for the mirrored images of rows 0, 1."""
  each, flip = jax.tree.map(np.asarray, hrnet_head)
  assert flip['pred_uvd'].shape == (2, J, 3) and flip['pred_camera'].shape == (2, 1)
  c = each['pred_camera']
  np.testing.assert_allclose(flip['pred_camera'], 2.0 / (1.0 / c[:2] + 1.0 / c[2:]),
                             rtol=1e-6)  # harmonic
  np.testing.assert_allclose(flip['pred_shape'], 0.5 * (each['pred_shape'][:2]
                                                        + each['pred_shape'][2:]), rtol=1e-6)
  np.testing.assert_allclose(flip['pred_phi'], 0.5 * (each['pred_phi'][:2]
                                                      + _flip_phi(each['pred_phi'][2:])),
                             rtol=1e-5, atol=1e-7)
  s = each['pred_sigma']
  np.testing.assert_allclose(flip['pred_sigma'],
                             0.5 * (s[:2] + s[2:][:, list(constants.FLIP_PERM_29)]), rtol=1e-6)
  assert np.all((flip['pred_sigma'] > 0) & (flip['pred_sigma'] < 1))


def test_resnet_head_camera_flip_is_arithmetic_with_tx_negated():
  head = cam_head.DeconvCamHead(deconv_channels=(4, 4, 4), depth_dim=2, fc_width=8)
  features = jnp.asarray(_rng(5).normal(size=(4, 1, 1, 6)), jnp.float32)
  params = jax.jit(lambda: head.init(jax.random.key(1), features, False))()
  each, flip = jax.jit(lambda p: [head.apply(p, features, False, f) for f in (False, True)])(
      params)
  c = np.asarray(each['pred_camera'])
  np.testing.assert_allclose(flip['pred_camera'],
                             0.5 * (c[:2] + c[2:] * np.array([1.0, -1.0, 1.0])), rtol=1e-6)
  assert flip['pred_uvd'].shape == (2, J, 3) and each['pred_uvd'].shape == (4, J, 3)
  # sigma of the mirror is swapped pairwise as in the HRNet class (the evident intent).
  s = np.asarray(each['pred_sigma'])
  np.testing.assert_allclose(flip['pred_sigma'],
                             0.5 * (s[:2] + s[2:][:, list(constants.FLIP_PERM_29)]), rtol=1e-6)


def test_bbox_offset_and_back_projection():
  boxes = jnp.array([[100.0, 50.0, 300.0, 250.0]])
  offset = camera.bbox_offset(boxes, jnp.array([[150.0, 100.0]]))
  np.testing.assert_allclose(offset, [[[0.25, 0.25]]])
  uvd = jnp.array([[[0.1, -0.2, 0.05]] * J])
  xyz = camera.back_project(uvd, jnp.array([[5.0]]), focal_length=1000.0, input_size=256.0,
                            depth_factor=2.2, offset=offset)
  z = 0.05 * 2.2
  np.testing.assert_allclose(xyz[0, 0], [(0.1 + 0.25) * 0.256 * (z + 5.0),
                                         (-0.2 + 0.25) * 0.256 * (z + 5.0), z], rtol=1e-6)
  # Root depth from the weak-perspective scale: f / (S s).
  np.testing.assert_allclose(camera.root_depth(jnp.array([[0.5]]), 1000.0, 256.0), [[7.8125]],
                             rtol=1e-6)
  # Without bboxes the ResNet class subtracts its (tx, ty); the HRNet class has none.
  off, trans = camera.crop_offsets(jnp.array([[0.9, 0.1, -0.2]]))
  np.testing.assert_array_equal(off, 0.0)
  np.testing.assert_allclose(trans, [[0.1, -0.2]])
  _, trans = camera.crop_offsets(jnp.array([[0.9]]))
  np.testing.assert_array_equal(trans, 0.0)
  with pytest.raises(ValueError, match='together'):
    camera.crop_offsets(jnp.array([[0.9]]), bboxes=boxes)


def test_scale_fit_recovers_the_projecting_scale_and_falls_back_when_singular():
  rng = _rng(6)
  f, size, scale = 1000.0, 256.0, np.array([[0.7], [1.3]])
  rel = rng.normal(0, 0.3, (2, 24, 3))
  rel[..., 2] *= 0.3
  depth = f / (size * scale)                                       # (2, 1) metres
  cam = rel + np.concatenate([np.zeros((2, 1, 2)), depth[:, :, None]], -1)
  uv = cam[..., :2] / cam[..., 2:] * f / size                      # pinhole, crop units
  joints = rel.copy()                                              # root at depth 0 + d
  weight = rng.uniform(0.0, 1.0, (2, 24))
  got = camera.fit_scale(jnp.asarray(uv), jnp.asarray(joints), jnp.asarray(weight),
                         jnp.full((2, 1), 0.9), focal_length=f, input_size=size)
  np.testing.assert_allclose(got, scale, rtol=1e-5)
  # Every weight 0 in row 1: that row keeps its initial scale, row 0 is fitted.
  weight[1] = 0.0
  got = camera.fit_scale(jnp.asarray(uv), jnp.asarray(joints), jnp.asarray(weight),
                         jnp.array([[0.9], [0.4]]), focal_length=f, input_size=size)
  np.testing.assert_allclose(got, [[0.7], [0.4]], rtol=1e-5)
