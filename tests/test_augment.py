"""Tests of hybrik_jax.data.augment and hybrik_jax.data.targets."""

import cv2
import jax
import numpy as np
import pytest

from hybrik_jax.body import constants
from hybrik_jax.body import geometry
from hybrik_jax.data import augment
from hybrik_jax.data import targets


def test_augmentation_parameters_within_their_ranges():
  cfg = augment.AugmentConfig()
  rng = np.random.default_rng(0)
  draws = [augment.sample_augmentation(rng, cfg) for _ in range(4000)]
  scale = np.array([d.scale for d in draws])
  rot = np.array([d.rotation for d in draws])
  flip = np.array([d.flip for d in draws])
  color = np.stack([d.color for d in draws])
  assert scale.min() >= 0.7 and scale.max() <= 1.3
  assert scale.min() < 0.72 and scale.max() > 1.28  # the clip is reached
  assert np.abs(rot).max() <= 60.0 and np.abs(rot).max() > 55.0
  assert abs(np.mean(rot != 0) - 0.6) < 0.03
  assert abs(np.std(rot[rot != 0]) - 30.0) < 2.0
  assert abs(flip.mean() - 0.5) < 0.03
  assert color.min() >= 0.8 and color.max() <= 1.2
  assert abs(color.mean() - 1.0) < 0.01


def test_no_augmentation_config():
  cfg = augment.AugmentConfig(scale_factor=0.0, rot_factor=0.0, rot_prob=0.0,
                              flip_prob=0.0, color_factor=0.0, occlusion=False)
  d = augment.sample_augmentation(np.random.default_rng(1), cfg)
  assert d.scale == 1.0 and d.rotation == 0.0 and not d.flip
  np.testing.assert_allclose(d.color, 1.0)


def test_box_to_center_scale():
  center, size = augment.box_to_center_scale([10, 20, 50, 120], aspect_ratio=1.0,
                                             scale_mult=1.25)
  np.testing.assert_allclose(center, [30, 70])
  np.testing.assert_allclose(size, [125, 125])
  center, size = augment.box_to_center_scale([0, 0, 80, 40], aspect_ratio=0.75,
                                             scale_mult=1.0)
  np.testing.assert_allclose(size, [80, 80 / 0.75])
  np.testing.assert_allclose(augment.center_scale_to_box(center, size),
                             [0, 20 - 80 / 0.75 / 2, 80, 20 + 80 / 0.75 / 2])


def test_degenerate_box_is_an_error():
  with pytest.raises(ValueError, match='bbox'):
    augment.box_to_center_scale([5, 5, 5, 5])


@pytest.mark.parametrize('rotation', [0.0, 17.0, -45.0])
def test_crop_affine_maps_box_points_as_described(rotation):
  center, width, out = np.array([40.0, 55.0]), 90.0, (64, 48)
  m = augment.crop_affine(center, width, rotation, out)
  # The centre goes to the output centre.
  np.testing.assert_allclose(augment.apply_affine(m, center[None]), [[32, 24]], atol=1e-9)
  # A point half a box width away at angle `rotation` from "up" lands straight up.
  r = np.radians(rotation)
  up = center + 0.5 * width * np.array([np.sin(r), -np.cos(r)])
  right = center + 0.5 * width * np.array([np.cos(r), np.sin(r)])
  got = augment.apply_affine(m, np.stack([up, right]))
  np.testing.assert_allclose(got, [[32, 24 - 32], [64, 24]], atol=1e-9)
  # Same as OpenCV's affine from these three correspondences.
  ref = cv2.getAffineTransform(np.float32([center, up, right]),
                               np.float32([[32, 24], [32, -8], [64, 24]]))
  np.testing.assert_allclose(m, ref, atol=1e-3)


def test_invert_and_compose_affine():
  m = augment.crop_affine([30.0, 20.0], 50.0, 33.0, (64, 64))
  inv = augment.invert_affine(m)
  pts = np.random.default_rng(0).uniform(0, 100, size=(10, 2))
  np.testing.assert_allclose(augment.apply_affine(inv, augment.apply_affine(m, pts)), pts,
                             atol=1e-9)
  f = augment.flip_affine(100)
  np.testing.assert_allclose(augment.compose_affine(f, f)[:, :2], np.eye(2))
  np.testing.assert_allclose(augment.compose_affine(f, f)[:, 2], 0.0)
  np.testing.assert_allclose(augment.apply_affine(augment.compose_affine(m, f), pts),
                             augment.apply_affine(m, augment.apply_affine(f, pts)))
  # Batched inverse.
  ms = np.stack([m, augment.compose_affine(m, f)])
  np.testing.assert_allclose(augment.invert_affine(ms)[1],
                             augment.invert_affine(ms[1]))


def test_uv_to_image():
  m = augment.crop_affine([30.0, 20.0], 50.0, 10.0, (64, 32))
  px = np.array([[10.0, 5.0], [60.0, 30.0]])
  uv = px / np.array([64, 32]) - 0.5
  np.testing.assert_allclose(augment.uv_to_image(uv, augment.invert_affine(m), (32, 64)),
                             augment.apply_affine(augment.invert_affine(m), px))


def test_flipped_warp_equals_warp_of_flipped_image():
  # A smooth image (at most ~20 grey levels per pixel): OpenCV 4's bilinear
  # warp rounds sampling positions to 1/32 px, so the two paths may differ by
  # gradient / 32 < 1 level, while a flip off by one pixel differs by ~20.
  y, x = np.mgrid[0:50, 0:70].astype(np.float64)
  phase = np.random.default_rng(0).uniform(0, 2 * np.pi, size=3)
  image = np.stack([128 + 100 * np.sin(x / 5 + p) * np.cos(y / 7 - p)
                    for p in phase], -1).round().astype(np.uint8)
  m = augment.crop_affine([30.0, 22.0], 40.0, 12.0, (32, 32))
  a = augment.warp(image, augment.compose_affine(m, augment.flip_affine(70)), (32, 32))
  b = augment.warp(np.ascontiguousarray(image[:, ::-1]), m, (32, 32))
  assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
  # The check can fail: the same crop one pixel off differs by many levels.
  off_by_one = augment.crop_affine([31.0, 22.0], 40.0, 12.0, (32, 32))
  c = augment.warp(np.ascontiguousarray(image[:, ::-1]), off_by_one, (32, 32))
  assert np.abs(a.astype(int) - c.astype(int)).max() > 5


def test_normalize_matches_hybrik_constants():
  img = np.full((2, 2, 3), 255, np.uint8)
  x = augment.normalize_image(img)
  np.testing.assert_allclose(x[0, 0], (1.0 - np.array([0.406, 0.457, 0.480]))
                             / np.array([0.225, 0.224, 0.229]), rtol=1e-6)
  img = np.random.default_rng(0).integers(0, 256, size=(5, 5, 3), dtype=np.uint8)
  np.testing.assert_array_equal(augment.denormalize_image(augment.normalize_image(img)), img)


def test_color_jitter_clips():
  img = np.array([[[100, 200, 250]]], np.uint8)
  out = augment.color_jitter(img, np.array([1.2, 0.8, 1.2], np.float32))
  np.testing.assert_allclose(out[0, 0], [120, 160, 255])


def test_occlusion_inside_box_and_image():
  rng = np.random.default_rng(0)
  for area, ratio in (augment.OCCLUSION_3D, augment.OCCLUSION_2D):
    for _ in range(50):
      image = np.zeros((120, 100, 3), np.uint8)
      box = np.array([20.0, 30.0, 80.0, 110.0])
      image, rect = augment.random_occlusion(rng, image, box, area, ratio)
      assert rect is not None
      x0, y0, x1, y1 = rect
      # Inside the image, overlapping the box (HybrIK lets a long occluder
      # stick out of the box on its short side).
      assert 0 <= x0 and x1 < 100 and 0 <= y0 and y1 < 120
      assert x0 < box[2] and x1 > box[0] and y0 < box[3] and y1 > box[1]
      assert (x1 - x0) * (y1 - y0) <= area[1] * 60 * 80 + 1
      outside = image.copy()
      outside[y0:y1, x0:x1] = 0
      assert not outside.any()
  # A box the occluder cannot fit into the image: no occlusion.
  image = np.zeros((10, 10, 3), np.uint8)
  _, rect = augment.random_occlusion(rng, image, [-50, -50, -10, -10])
  assert rect is None and not image.any()


def test_flip_theta_mirrors_rotations():
  """Mirroring R with diag(-1, 1, 1) equals flipping the axis-angle."""
  rng = np.random.default_rng(0)
  theta = rng.normal(0, 0.8, size=(24, 3)).astype(np.float32)
  flipped = augment.flip_theta(theta)
  mirror = np.diag([-1.0, 1.0, 1.0])
  rot = np.asarray(geometry.axis_angle_to_matrix(theta))
  rot_flipped = np.asarray(geometry.axis_angle_to_matrix(flipped))
  perm = list(constants.FLIP_PERM_24)
  np.testing.assert_allclose(rot_flipped, (mirror @ rot @ mirror)[perm], atol=1e-5)
  np.testing.assert_allclose(augment.flip_theta(flipped), theta)


def test_flip_twist_permutation():
  # Twist of joint j is row j - 1: left/right elbow (18, 19) -> rows 17, 18.
  assert augment.FLIP_PERM_TWIST[17] == 18 and augment.FLIP_PERM_TWIST[18] == 17
  assert augment.FLIP_PERM_TWIST[2] == 2  # spine1 (3) has no pair
  twist = np.stack([np.cos(np.arange(23.0)), np.sin(np.arange(23.0))], -1)
  flipped = augment.flip_twist(twist)
  np.testing.assert_allclose(flipped[17], [np.cos(18.0), -np.sin(18.0)])
  np.testing.assert_allclose(flipped[2], [np.cos(2.0), -np.sin(2.0)])


def test_axis_angle_to_quaternion_matches_geometry():
  rng = np.random.default_rng(0)
  aa = np.concatenate([rng.normal(0, 1.5, size=(50, 3)), np.zeros((1, 3)),
                       [[1e-9, 0, 0], [np.pi - 1e-3, 0, 0], [0, 3.5, 0]]])
  q = targets.axis_angle_to_quaternion(aa)
  assert q.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, rtol=1e-6)
  assert np.all(q[:, 0] >= 0)
  rot = np.asarray(geometry.axis_angle_to_matrix(aa.astype(np.float32)))
  np.testing.assert_allclose(np.asarray(geometry.quaternion_to_matrix(q)), rot, atol=1e-5)
  ref = np.asarray(geometry.matrix_to_quaternion(rot))
  ref = np.where(ref[:, :1] < 0, -ref, ref)
  np.testing.assert_allclose(q, ref, atol=1e-4)


def test_uvd_targets_weights():
  px = np.array([[10.0, 10.0], [70.0, 10.0], [10.0, 10.0], [10.0, 10.0]])
  z = np.array([4.0, 4.0, 4.0 + 1.5, 4.5])
  uvd, w = targets.uvd_targets(px, z, valid_2d=np.array([1, 1, 1, 0]),
                               valid_3d=np.array([1, 1, 1, 1]), z_root=4.0,
                               depth_factor=2.0, input_size=(64, 64))
  np.testing.assert_allclose(uvd[0], [10 / 64 - 0.5, 10 / 64 - 0.5, 0.0])
  np.testing.assert_array_equal(w[0], 1.0)
  np.testing.assert_array_equal(w[1], 0.0)  # u > 0.5
  np.testing.assert_array_equal(w[2], 0.0)  # d = 0.75 > 0.5
  np.testing.assert_array_equal(w[3], 0.0)  # not labelled
  np.testing.assert_array_equal(uvd[3], 0.0)


def test_no_jax_arrays_in_targets():
  """The data workers stay numpy-only (no JAX dispatch per example)."""
  out = targets.smpl_targets({
      'smpl_valid': np.float32(1), 'smpl_theta': np.zeros((24, 3), np.float32),
      'smpl_twist': np.zeros((23, 2), np.float32), 'twist_valid': np.ones(23, np.float32),
      'smpl_beta': np.zeros(10, np.float32)}, flip=True)
  for key, value in out.items():
    assert isinstance(value, np.ndarray) and not isinstance(value, jax.Array), key
  np.testing.assert_allclose(out['target_theta'][:, 0], 1.0)


def test_normalize_lookup_table_equals_float_formula():
  rng = np.random.default_rng(1)
  img = rng.integers(0, 256, size=(9, 7, 3), dtype=np.uint8)
  color = np.array([1.2, 0.8, 1.05], np.float32)
  want = (augment.color_jitter(img, color) / 255.0 - augment.IMAGE_MEAN) / augment.IMAGE_STD
  got = augment.normalize_image(img, color)
  assert got.dtype == np.float32 and got.shape == img.shape
  np.testing.assert_allclose(got, want, atol=1e-5)
  np.testing.assert_allclose(augment.normalize_image(img),
                             augment.normalize_image(img.astype(np.float32)), atol=1e-5)
