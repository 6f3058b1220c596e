"""HybrIK's training targets from one (possibly flipped) example, in numpy.

Formulas (HybrIK, `simple_transform_3d_smpl.py`, `mix_dataset.py`):
  u = x_in / in_w - 0.5, v = y_in / in_h - 0.5 (x_in, y_in: input-image px),
  d = (z - z_root) / depth_factor (z_root: the pelvis of joints29_cam when
  labelled, else joint_root's z);
a joint's three weights are its validity, and all three are zero when any of
u, v, d falls outside [-0.5, 0.5]. 2D-only joints (COCO) have a u, v weight but
a zero d weight. target_xyz_24 is root-relative metres. Thetas become unit
quaternions (w, x, y, z) with w >= 0.

A joint has 3D labels when it is valid, its camera-frame z is positive (in
front of the camera) and the example's joint_root z and depth_factor are
positive; datasets without 3D store zeros there (data/features.py).
"""

import numpy as np

from hybrik_jax.data import augment


def axis_angle_to_quaternion(axis_angle: np.ndarray) -> np.ndarray:
  """(..., 3) axis-angle (radians) -> (..., 4) unit quaternions (w, x, y, z), w >= 0.

  Same rotation as geometry.axis_angle_to_matrix followed by
  geometry.matrix_to_quaternion, computed directly in numpy (no JAX in the
  data workers).
  """
  aa = np.asarray(axis_angle, np.float64)
  angle = np.linalg.norm(aa, axis=-1, keepdims=True)
  half = 0.5 * angle
  # sin(a/2)/a with its Taylor series near 0.
  small = angle < 1e-6
  safe = np.where(small, 1.0, angle)
  k = np.where(small, 0.5 - angle**2 / 48.0, np.sin(half) / safe)
  quat = np.concatenate([np.cos(half), k * aa], axis=-1)
  quat = np.where(quat[..., :1] < 0, -quat, quat)
  return quat.astype(np.float32)


def uvd_targets(joints_in_px: np.ndarray, joints_z: np.ndarray, valid_2d: np.ndarray,
                valid_3d: np.ndarray, z_root: float, depth_factor: float,
                input_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
  """Normalised uvd targets and their weights.

  Args:
    joints_in_px: (J, 2) joints in input-image px.
    joints_z: (J,) camera-frame depth, metres.
    valid_2d: (J,) 1 where the 2D position is labelled.
    valid_3d: (J,) 1 where the depth is labelled.
    z_root: root depth, metres.
    depth_factor: metres.
    input_size: (in_h, in_w).

  Returns:
    uvd (J, 3) float32 (zero where unlabelled) and weight (J, 3) float32.
  """
  in_h, in_w = input_size
  v2 = (np.asarray(valid_2d) > 0).astype(np.float32)
  v3 = (np.asarray(valid_3d) > 0).astype(np.float32) * v2
  u = joints_in_px[:, 0] / float(in_w) - 0.5
  v = joints_in_px[:, 1] / float(in_h) - 0.5
  d = (np.asarray(joints_z, np.float64) - z_root) / depth_factor if depth_factor > 0 else 0.0 * u
  uvd = np.stack([u * v2, v * v2, d * v3], axis=-1).astype(np.float32)
  weight = np.stack([v2, v2, v3], axis=-1)
  outside = np.any(np.abs(uvd) > 0.5, axis=-1)
  weight[outside] = 0.0
  return uvd, weight.astype(np.float32)


def joints_3d_valid(example: dict) -> np.ndarray:
  """(29,) float32: 1 where joints29_cam holds a real 3D label (see module doc)."""
  valid = np.asarray(example['joints29_valid'], np.float32) > 0
  cam = np.asarray(example['joints29_cam'], np.float32)
  has_3d = (float(np.asarray(example['joint_root'])[2]) > 0
            and float(example['depth_factor']) > 0)
  return (valid & (cam[:, 2] > 0) & has_3d).astype(np.float32)


def smpl_targets(example: dict, flip: bool) -> dict[str, np.ndarray]:
  """Theta quaternions, beta, twist and their weights (flipped if asked).

  Returns a dict with target_theta (24, 4), target_theta_weight (24, 4),
  target_beta (10,), target_smpl_weight (1,), target_twist (23, 2),
  target_twist_weight (23, 2), all float32 and zero where unlabelled.
  """
  smpl_valid = float(example['smpl_valid'] > 0)
  theta = np.asarray(example['smpl_theta'], np.float32)
  twist = np.asarray(example['smpl_twist'], np.float32)
  twist_valid = (np.asarray(example['twist_valid'], np.float32) > 0).astype(np.float32)
  if flip:
    theta = augment.flip_theta(theta)
    twist, twist_valid = augment.flip_twist(twist, twist_valid)
  twist_weight = np.repeat(twist_valid[:, None] * smpl_valid, 2, axis=1)
  quat = axis_angle_to_quaternion(theta) * smpl_valid
  return {
      'target_theta': quat.astype(np.float32),
      'target_theta_weight': np.full((24, 4), smpl_valid, np.float32),
      'target_beta': (np.asarray(example['smpl_beta'], np.float32) * smpl_valid),
      'target_smpl_weight': np.full((1,), smpl_valid, np.float32),
      'target_twist': (twist * twist_weight).astype(np.float32),
      'target_twist_weight': twist_weight.astype(np.float32),
  }
