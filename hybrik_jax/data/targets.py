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

The camera models' preset (HybrIK's `simple_smpl_3d_cam`,
`SimpleTransform3DSMPLCam`) differs: the in-plane rotation also turns the root
orientation and the 3D joints (`rotate_xy`, `rotate_root_orientation`), the uvd
weights are not zeroed outside [-0.5, 0.5], the rotations are also targets as
matrices (target_rotmats), and each example gets the camera (scale, translation)
that places its 3D joints on its uvd (`fit_camera`, `camera_targets`).
"""

import math

import cv2
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
                input_size: tuple[int, int], zero_outside: bool = True
                ) -> tuple[np.ndarray, np.ndarray]:
  """Normalised uvd targets and their weights.

  Args:
    joints_in_px: (J, 2) joints in input-image px.
    joints_z: (J,) camera-frame depth, metres.
    valid_2d: (J,) 1 where the 2D position is labelled.
    valid_3d: (J,) 1 where the depth is labelled.
    z_root: root depth, metres.
    depth_factor: metres.
    input_size: (in_h, in_w).
    zero_outside: zero a joint's weights when any of its u, v, d is outside
      [-0.5, 0.5] (HybrIK's SMPL preset; its camera preset keeps them).

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
  if zero_outside:
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


def smpl_targets(example: dict, flip: bool, rotation: float = 0.0,
                 rotmats: bool = False) -> dict[str, np.ndarray]:
  """Theta quaternions, beta, twist and their weights (flipped if asked).

  Args:
    example: the stored example.
    flip: mirror the pose.
    rotation: in-plane rotation (degrees, the augmentation's) applied to the
      root orientation after the flip (`rotate_root_orientation`; the camera
      preset's; 0 leaves theta as is).
    rotmats: also return the rotations as matrices (the camera loss's theta).

  Returns a dict with target_theta (24, 4), target_theta_weight (24, 4),
  target_beta (10,), target_smpl_weight (1,), target_twist (23, 2),
  target_twist_weight (23, 2) and, with rotmats, target_rotmats (24, 3, 3) and
  target_rotmats_weight (24, 3, 3), all float32 and zero where unlabelled.
  """
  smpl_valid = float(example['smpl_valid'] > 0)
  theta = np.asarray(example['smpl_theta'], np.float32)
  twist = np.asarray(example['smpl_twist'], np.float32)
  twist_valid = (np.asarray(example['twist_valid'], np.float32) > 0).astype(np.float32)
  if flip:
    theta = augment.flip_theta(theta)
    twist, twist_valid = augment.flip_twist(twist, twist_valid)
  if rotation:
    theta = rotate_root_orientation(theta, rotation)
  twist_weight = np.repeat(twist_valid[:, None] * smpl_valid, 2, axis=1)
  quat = axis_angle_to_quaternion(theta) * smpl_valid
  out = {}
  if rotmats:
    out['target_rotmats'] = (axis_angle_to_matrix(theta) * smpl_valid).astype(np.float32)
    out['target_rotmats_weight'] = np.full((24, 3, 3), smpl_valid, np.float32)
  return out | {
      'target_theta': quat.astype(np.float32),
      'target_theta_weight': np.full((24, 4), smpl_valid, np.float32),
      'target_beta': (np.asarray(example['smpl_beta'], np.float32) * smpl_valid),
      'target_smpl_weight': np.full((1,), smpl_valid, np.float32),
      'target_twist': (twist * twist_weight).astype(np.float32),
      'target_twist_weight': twist_weight.astype(np.float32),
  }


# ----------------------------------------------------------------------------
# The camera preset (HybrIK's simple_smpl_3d_cam).
# ----------------------------------------------------------------------------

# HybrIK's camera models: the input crop is seen by a virtual pinhole camera of
# this focal length (px) centred on the crop (their configs' FOCAL_LENGTH).
DEFAULT_FOCAL_LENGTH = 1000.0
# A fitted camera whose back-projection of the labelled joints misses them by
# this much on average (mm) or more is marked invalid (target_camera_valid 0).
CAMERA_VALID_ERROR_MM = 70.0


def axis_angle_to_matrix(axis_angle: np.ndarray) -> np.ndarray:
  """(..., 3) axis-angle (radians) -> (..., 3, 3) rotation matrices (Rodrigues), float64."""
  aa = np.asarray(axis_angle, np.float64)
  angle = np.linalg.norm(aa, axis=-1, keepdims=True)
  axis = aa / np.where(angle > 0, angle, 1.0)
  x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
  zero = np.zeros_like(x)
  k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(aa.shape[:-1] + (3, 3))
  s = np.sin(angle)[..., None]
  c = np.cos(angle)[..., None]
  return np.eye(3) + s * k + (1.0 - c) * (k @ k)


def _rotation_z(rotation: float) -> np.ndarray:
  """The camera-frame rotation of an in-plane image rotation by `rotation` degrees.

  The crop turns the image by +rotation (counter-clockwise, augment.crop_affine),
  so points turn by -rotation about the optical axis (x right, y down).
  """
  r = -math.radians(rotation)
  c, s = math.cos(r), math.sin(r)
  return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rotate_xy(points: np.ndarray, rotation: float) -> np.ndarray:
  """(J, 3) camera-frame points turned with the image by `rotation` degrees (about z)."""
  p = np.asarray(points, np.float64)
  return p @ _rotation_z(rotation).T


def rotate_root_orientation(theta: np.ndarray, rotation: float) -> np.ndarray:
  """(24, 3) axis-angle pose with its root orientation turned with the image."""
  t = np.array(theta, np.float64, copy=True)
  root = _rotation_z(rotation) @ axis_angle_to_matrix(t[0])
  t[0] = cv2.Rodrigues(root)[0][:, 0]
  return t.astype(np.asarray(theta).dtype)


def fit_camera(xyz: np.ndarray, uvd: np.ndarray, uvd_weight: np.ndarray, *,
               focal_length: float, input_size: tuple[int, int],
               depth_factor: float) -> dict[str, np.ndarray]:
  """The camera (scale s, translation t) that places root-relative joints on their uvd.

  The camera models read a joint's metric position from its uvd as
      x + tx = u * in_w / f * (z + f / (in_w * s)),  y + ty = v * in_h / f * (...)
  (the crop's virtual camera of focal length f at depth f / (in_w s) from the
  root). Linear in (1/s, tx, ty): solved by least squares (normal equations)
  over the joints whose three uvd weights are all set. As HybrIK: fewer than 2
  such joints give s = 0, t = 0, invalid, error -1; otherwise the joints'
  back-projection with the fitted camera (their uvd's d x depth_factor as z)
  is compared with xyz and the camera is valid when the mean distance is below
  CAMERA_VALID_ERROR_MM.

  Args:
    xyz: (J, 3) root-relative camera-frame joints, metres.
    uvd: (J, 3) their normalised uvd targets (d = relative depth / depth_factor).
    uvd_weight: (J, 3) the uvd weights.
    focal_length: px.
    input_size: (in_h, in_w) px (HybrIK: square, 256).
    depth_factor: metres per unit of d.

  Returns:
    {'scale': (1,), 'trans': (2,) metres, 'valid': (1,), 'error_mm': (1,)}, float32.
  """
  in_h, in_w = input_size
  f = float(focal_length)
  xyz = np.asarray(xyz, np.float64)
  uvd = np.asarray(uvd, np.float64)
  w = (np.sum(uvd_weight, axis=-1) >= 3.0).astype(np.float64)
  if w.sum() < 2:
    return {'scale': np.zeros(1, np.float32), 'trans': np.zeros(2, np.float32),
            'valid': np.zeros(1, np.float32), 'error_mm': np.full(1, -1.0, np.float32)}
  # Unknowns p = (1/s, tx, ty): u / s - tx = x - u * in_w / f * z and
  # v * in_h / in_w / s - ty = y - v * in_h / f * z.
  n = len(w)
  a = np.zeros((2 * n, 3))
  a[:n, 0], a[:n, 1] = uvd[:, 0], -1.0
  a[n:, 0], a[n:, 2] = uvd[:, 1] * in_h / in_w, -1.0
  b = np.concatenate([xyz[:, 0] - uvd[:, 0] * in_w / f * xyz[:, 2],
                      xyz[:, 1] - uvd[:, 1] * in_h / f * xyz[:, 2]])
  ww = np.concatenate([w, w])
  a, b = a * ww[:, None], b * ww
  p = np.linalg.solve(a.T @ a, a.T @ b)
  scale, trans = 1.0 / p[0], p[1:]
  cam_depth = f / (in_w * scale)
  z = uvd[:, 2] * depth_factor
  back = np.stack([uvd[:, 0] * in_w / f * (z + cam_depth) - trans[0],
                   uvd[:, 1] * in_h / f * (z + cam_depth) - trans[1], z], axis=-1)
  dist = np.sqrt(np.sum(np.square(back - xyz), axis=-1) * w)
  error_mm = dist.sum() / (w.sum() + 1e-6) * 1000.0
  return {'scale': np.array([scale], np.float32), 'trans': trans.astype(np.float32),
          'valid': np.array([float(error_mm < CAMERA_VALID_ERROR_MM)], np.float32),
          'error_mm': np.array([error_mm], np.float32)}


def camera_targets(xyz_24: np.ndarray, uvd_29: np.ndarray, uvd_weight_29: np.ndarray, *,
                   focal_length: float, input_size: tuple[int, int],
                   depth_factor: float) -> dict[str, np.ndarray]:
  """The camera preset's camera targets of one example (fit_camera on the 24 SMPL joints).

  Returns target_camera_scale (1,), target_camera_trans (2,) metres,
  target_camera_valid (1,) and target_camera_error (1,) mm (float32).
  """
  cam = fit_camera(xyz_24, np.asarray(uvd_29)[:24], np.asarray(uvd_weight_29)[:24],
                   focal_length=focal_length, input_size=input_size,
                   depth_factor=depth_factor)
  return {'target_camera_scale': cam['scale'], 'target_camera_trans': cam['trans'],
          'target_camera_valid': cam['valid'], 'target_camera_error': cam['error_mm']}
