"""Decoding HybrIK's camera models: raw dict -> body placed in the camera frame.

Plain jnp, after Jeff-sjtu/HybrIK @ 9b8681d (Simple3DPoseBaseSMPLCam,
HRNetSMPLCam). The crop's virtual camera has focal length f px (1000 released)
for an S px input (256). A weak-perspective scale s gives the root depth
z_c = f / (S s + 1e-9) metres. Normalised uv (u = px / S - 0.5) are
back-projected at each joint's depth z = d * depth_factor + z_c:
  x = (u + c_u) S / f * z  [- t_x for the ResNet class without bboxes]
where (c_u, c_v) is the crop centre relative to the image centre in crop
sizes (`bbox_offset`, from bboxes (B, 4) xyxy px and img_center (B, 2) px) or 0.

At evaluation HRNetSMPLCam refines s (`update_scale`): the body of the naive IK
(`ik.IKConvention.naive()`) placed at the back-projected root, then the s that
best reprojects its 24 joints onto the predicted uv, in weighted least squares
with weights max(1 - 10 sigma, 0); the initial s where the system is singular
(every weight 0). The released code falls back for the whole batch when any row
is singular (torch.inverse raises); here each such row falls back on its own.
"""

from typing import Optional

import flax
import jax.numpy as jnp

from hybrik_jax.body import constants
from hybrik_jax.body import ik
from hybrik_jax.utils import check_shape


@flax.struct.dataclass
class CameraOutput:
  """The camera and the body it places (metres, camera axes).

  pred_camera: (B, 3) (s, tx, ty) or (B, 1) (s,), the network's (flip-averaged).
  pred_sigma: (B, J) in (0, 1); maxvals (B, 29): heatmap peaks, None for the
    Transformer head's camera token (no heatmaps). J = 29 for HybrIK's camera
    heads, 24 for the Transformer head.
  cam_scale: (B, 1) the scale used (refined where the model refines it).
  cam_root: (B, 3) metres, the root joint (pelvis) in the camera frame.
  transl: (B, 3) metres, SMPL translation: cam_root minus the body's own root,
    so vertices + transl is the mesh in the camera frame.
  pred_uvd_29: (B, J, 3) normalised uvd; pred_xyz_29: (B, J, 3) metres,
    root-relative back-projection (J as pred_sigma's).
  """
  pred_camera: jnp.ndarray
  pred_sigma: jnp.ndarray
  maxvals: Optional[jnp.ndarray]
  cam_scale: jnp.ndarray
  cam_root: jnp.ndarray
  transl: jnp.ndarray
  pred_uvd_29: jnp.ndarray
  pred_xyz_29: jnp.ndarray


# Heads whose camera scale is refined at evaluation (`update_scale`): HybrIK's
# HRNetSMPLCam ('heatmap') and this project's Transformer camera token.
REFINING_HEADS = ('heatmap', 'transformer')


def refines_scale(head: str) -> bool:
  """Whether a camera model with this head refines its scale at evaluation."""
  return head in REFINING_HEADS


def bbox_offset(bboxes: jnp.ndarray, img_center: jnp.ndarray) -> jnp.ndarray:
  """bboxes (B, 4) xyxy px, img_center (B, 2) px -> (B, 1, 2) crop centre
  minus image centre, in crop widths / heights."""
  check_shape('bboxes', bboxes, (None, 4))
  check_shape('img_center', img_center, (bboxes.shape[0], 2))
  centre = 0.5 * (bboxes[:, :2] + bboxes[:, 2:])
  size = bboxes[:, 2:] - bboxes[:, :2]
  return ((centre - img_center) / size)[:, None, :]


def root_depth(scale: jnp.ndarray, focal_length: float, input_size: float) -> jnp.ndarray:
  """Weak-perspective scale (B, 1) -> root depth (B, 1) metres, f / (S s + 1e-9)."""
  return focal_length / (input_size * scale + 1e-9)


def back_project(uvd: jnp.ndarray, cam_depth: jnp.ndarray, *, focal_length: float,
                 input_size: float, depth_factor: float,
                 offset: Optional[jnp.ndarray] = None,
                 cam_trans: Optional[jnp.ndarray] = None) -> jnp.ndarray:
  """uvd (B, J, 3) -> (B, J, 3): x, y metres in the camera frame, z = d * depth_factor
  (relative to the root depth cam_depth (B, 1), which scales x, y).

  offset: (B, 1, 2) `bbox_offset` added to uv; cam_trans: (B, 2) subtracted
  from x, y (the ResNet class without bboxes).
  """
  uv = uvd[..., :2] if offset is None else uvd[..., :2] + offset
  z = uvd[..., 2:] * depth_factor
  xy = uv * (input_size / focal_length) * (z + cam_depth[:, :, None])
  if cam_trans is not None:
    xy = xy - cam_trans[:, None, :]
  return jnp.concatenate([xy, z], axis=-1)


def update_scale(uvd: jnp.ndarray, weight: jnp.ndarray, init_scale: jnp.ndarray,
                 shape: jnp.ndarray, phi: jnp.ndarray, *, smpl_model,
                 convention: ik.IKConvention, focal_length: float, input_size: float,
                 offset: Optional[jnp.ndarray] = None) -> jnp.ndarray:
  """HRNetSMPLCam's evaluation-time scale refinement -> (B, 1).

  Args:
    uvd: (B, 29, 3) normalised. weight: (B, 29) max(1 - 10 sigma, 0).
    init_scale: (B, 1) the network's scale. shape (B, 10), phi (B, 23, 2).
    smpl_model: body model; convention: the model's (its `naive()` IK is used,
      and its depth_factor).
    offset: (B, 1, 2) `bbox_offset` or None.
  """
  from hybrik_jax.body import smpl as smpl_lib  # pylint: disable=g-import-not-at-top
  df = convention.depth_factor
  xyz = back_project(uvd, root_depth(init_scale, focal_length, input_size),
                     focal_length=focal_length, input_size=input_size, depth_factor=df,
                     offset=offset)
  root = xyz[:, 0]
  body = smpl_lib.hybrik(smpl_model, shape, xyz - xyz[:, :1], phi, convention=convention.naive())
  joints = body.joints - body.joints[:, :1] + root[:, None, :]           # (B, 24, 3)
  uv = uvd[:, :constants.NUM_JOINTS, :2]
  if offset is not None:
    uv = uv + offset
  return fit_scale(uv, joints, weight[:, :constants.NUM_JOINTS], init_scale,
                   focal_length=focal_length, input_size=input_size)


def fit_scale(uv: jnp.ndarray, joints: jnp.ndarray, weight: jnp.ndarray,
              init_scale: jnp.ndarray, *, focal_length: float, input_size: float
              ) -> jnp.ndarray:
  """The weighted least-squares scale of `update_scale` -> (B, 1).

  Finds r minimising sum_k w_k^2 |u_k r - (X_k - S u_k Z_k / f)|^2 (x and y
  rows), i.e. the root depth r f / S that puts joints (B, K, 3) metres (their
  root at depth 0 plus d) where uv (B, K, 2) (crop units, offset included) see
  them; returns 1 / r, or init_scale (B, 1) where every weighted u is 0
  (the released code's singular fallback, per row here). weight: (B, K).
  """
  w = weight[..., None]
  a = uv * w
  rhs = (joints[..., :2] - input_size / focal_length * uv * joints[..., 2:]) * w
  ata = (a * a).sum((1, 2))
  atb = (a * rhs).sum((1, 2))
  singular = ata == 0
  res = atb / jnp.where(singular, 1.0, ata)
  return jnp.where(singular[:, None], init_scale, 1.0 / res[:, None])


def crop_offsets(pred_camera: jnp.ndarray, bboxes: Optional[jnp.ndarray] = None,
                 img_center: Optional[jnp.ndarray] = None
                 ) -> tuple[jnp.ndarray, jnp.ndarray]:
  """The released classes' two placements as per-row arrays.

  With bboxes (B, 4) xyxy px and img_center (B, 2) px: offset = `bbox_offset`,
  no translation. Without: offset 0, and the ResNet class's (tx, ty)
  (pred_camera (B, 3)) subtracted, 0 for the HRNet class ((B, 1)).

  Returns:
    offset (B, 1, 2), cam_trans (B, 2).
  """
  if (bboxes is None) != (img_center is None):
    raise ValueError('bboxes and img_center go together')
  b = pred_camera.shape[0]
  if bboxes is not None:
    return bbox_offset(bboxes, img_center), jnp.zeros((b, 2), pred_camera.dtype)
  trans = (pred_camera[:, 1:3] if pred_camera.shape[1] == 3
           else jnp.zeros((b, 2), pred_camera.dtype))
  return jnp.zeros((b, 1, 2), pred_camera.dtype), trans


def place(uvd: jnp.ndarray, phi: jnp.ndarray, shape: jnp.ndarray, sigma: jnp.ndarray,
          scale: jnp.ndarray, *, offset: jnp.ndarray, cam_trans: jnp.ndarray,
          refine, smpl_model, convention: ik.IKConvention,
          focal_length: float, input_size: float,
          leaf_thetas: Optional[jnp.ndarray] = None):
  """Network outputs -> (cam_scale, cam_root, pred_xyz_29, body), row by row.

  The skeleton is back-projected at the camera (its scale refined by
  `update_scale` in the rows where `refine`), made root-relative and lifted by
  the model's IK (`convention`, 29 joints, or 24 with the Transformer head's
  leaf rotations).

  Args:
    uvd (B, J, 3), phi (B, 23, 2), shape (B, 10), sigma (B, J): the network's;
      J = 29 (HybrIK's camera heads) or 24 (the Transformer head's camera token).
    scale: (B, 1) its camera scale.
    offset, cam_trans: `crop_offsets`.
    refine: HRNetSMPLCam's evaluation-time refinement: a bool for all rows, or
      a (B,) bool array per row (one compiled function for both classes).
    leaf_thetas: (B, 5, 4) leaf quaternions with a 24-joint uvd, or None.

  Returns:
    cam_scale (B, 1), cam_root (B, 3) m, pred_xyz_29 (B, 29, 3) m root-relative,
    and the SMPLOutput of the IK.
  """
  from hybrik_jax.body import smpl as smpl_lib  # pylint: disable=g-import-not-at-top
  if uvd.ndim != 3 or uvd.shape[1] != constants.NUM_JOINTS:
    check_shape('pred_uvd', uvd, (None, constants.NUM_JOINTS_29, 3))
  b = uvd.shape[0]
  check_shape('scale', scale, (b, 1))
  refine_rows = not isinstance(refine, bool)
  if refine_rows:
    check_shape('refine', refine, (b,))
  if refine_rows or refine:
    weight = jnp.maximum(1.0 - 10.0 * sigma, 0.0)
    refined = update_scale(uvd, weight, scale, shape, phi, smpl_model=smpl_model,
                           convention=convention, focal_length=focal_length,
                           input_size=input_size, offset=offset)
    scale = jnp.where(refine[:, None], refined, scale) if refine_rows else refined
  cam_depth = root_depth(scale, focal_length, input_size)
  xyz = back_project(uvd, cam_depth, focal_length=focal_length, input_size=input_size,
                     depth_factor=convention.depth_factor, offset=offset, cam_trans=cam_trans)
  zeros = jnp.zeros_like(cam_depth)
  cam_root = xyz[:, 0] + jnp.concatenate([zeros, zeros, cam_depth], axis=-1)
  xyz = xyz - xyz[:, :1]
  body = smpl_lib.hybrik(smpl_model, shape, xyz, phi, leaf_thetas=leaf_thetas,
                         convention=convention)
  return scale, cam_root, xyz, body
