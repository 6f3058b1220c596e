"""Decoding HybrIK-X's camera model (HRNetSMPLXCamKid): raw dict -> SMPL-X body.

Plain jnp, after Jeff-sjtu/HybrIK @ 9b8681d (hybrik/models/HRNetSMPLXCamKid.py).
The placement is HybrIK's (`models.camera`: focal length f px for the S px crop,
root depth f / (S s + 1e-9), back-projection at each joint's depth d x depth
factor (2.2 m), bboxes placing the crop in the full image), with the SMPL-X body
of `body.ik_smplx`:

- the camera scale is refined three times in a row (the released class's "ICE"
  loop, in training as in evaluation): each time the naive IK's ('naive' mode)
  body placed at the back-projected root and the scale that best reprojects its
  first 22 joints (the regression class: 55) onto the predicted uv, weights max(1 - 10 sigma, 0)
  (`camera.fit_scale`; a singular row keeps its scale: the released class
  raises there);
- the body: the 71 back-projected joints, root-relative, the 54 twists, the 11
  shape values (10 betas, the kid blend) and 10 expression values through the
  IK in its 'eval' mode (the released `naive=False`).
"""

from typing import Optional

import flax
import jax
import jax.numpy as jnp

from hybrik_jax.body import ik_smplx
from hybrik_jax.body import smplx as smplx_lib
from hybrik_jax.models import camera as camera_lib
from hybrik_jax.models import hybrik
from hybrik_jax.utils import check_shape

NUM_JOINTS = ik_smplx.NUM_JOINTS_71
ICE_STEPS = 3  # update_scale calls of the released forward
# Joints update_scale fits: the heatmap class's first 22 (body and jaw), the
# regression class's 55 (with eyes and fingers); keyed by model.head.
REFINE_JOINTS = {'heatmap': 22, 'regression': 55}
DEPTH_FACTOR = 2.2  # metres (BBOX_3D_SHAPE 2200 mm)


@flax.struct.dataclass
class SMPLXModelOutput:
  """HybrIK-X's decoded prediction; metres, camera axes.

  pred_uvd (B,71,3) normalised; pred_phi (B,54,2) twists (cos, sin) as
  predicted; pred_shape (B,11) 10 betas + kid blend; pred_expression (B,10);
  pred_xyz_71 (B,71,3) root-relative back-projected joints; pred_xyz_71_struct
  (B,71,3) the body's 55 joints + 16 leaf vertices, relative to its pelvis;
  pred_joints (B,127,3) smplx's joints (55, 21 vertex joints, 51 landmarks)
  relative to the pelvis; pred_vertices (B,10475,3) relative to the pelvis;
  pred_rotmats (B,55,3,3) local rotations; pred_uv_full (B,127,2) the joints
  (+ transl) projected, crop units (as pred_uvd's uv); valid (B,) bool.
  Camera: pred_camera (B,1) the network's scale; pred_sigma (B,71), maxvals
  (B,71); cam_scale (B,1) the refined scale; cam_root (B,3) the root joint in
  the camera frame; transl (B,3) SMPL-X translation (vertices + transl: the
  mesh in the camera frame).
  """
  pred_uvd: jnp.ndarray
  pred_phi: jnp.ndarray
  pred_shape: jnp.ndarray
  pred_expression: jnp.ndarray
  pred_xyz_71: jnp.ndarray
  pred_xyz_71_struct: jnp.ndarray
  pred_joints: jnp.ndarray
  pred_vertices: jnp.ndarray
  pred_rotmats: jnp.ndarray
  pred_uv_full: jnp.ndarray
  valid: jnp.ndarray
  pred_camera: jnp.ndarray
  pred_sigma: jnp.ndarray
  maxvals: jnp.ndarray
  cam_scale: jnp.ndarray
  cam_root: jnp.ndarray
  transl: jnp.ndarray


def update_scale(uvd: jnp.ndarray, weight: jnp.ndarray, init_scale: jnp.ndarray,
                 shape: jnp.ndarray, expression: jnp.ndarray, phi: jnp.ndarray, *,
                 smplx_model: smplx_lib.SMPLXModel, focal_length: float,
                 input_size: float, depth_factor: float,
                 offset: Optional[jnp.ndarray] = None, refine_joints=22,
                 kabsch: str = 'svd') -> jnp.ndarray:
  """One of HRNetSMPLXCamKid's scale refinements -> (B, 1): its first
  `refine_joints` (an int, or (B,) ints per row) joints fitted, the others'
  weights 0.

  uvd (B, 71, 3), weight (B, 71) max(1 - 10 sigma, 0), init_scale (B, 1),
  shape (B, 11), expression (B, 10), phi (B, 54, 2); offset (B, 1, 2)
  `camera.bbox_offset` or None; kabsch: the IK's fit solver ('svd' | 'horn').
  """
  xyz = camera_lib.back_project(
      uvd, camera_lib.root_depth(init_scale, focal_length, input_size),
      focal_length=focal_length, input_size=input_size, depth_factor=depth_factor,
      offset=offset)
  root = xyz[:, 0]
  body = ik_smplx.hybrik(smplx_model, shape, xyz - xyz[:, :1], phi, expression,
                         mode='naive', kabsch=kabsch)
  joints = body.joints[:, :NUM_JOINTS] + root[:, None, :]  # root-aligned body
  uv = uvd[..., :2]
  if offset is not None:
    uv = uv + offset
  fitted = jnp.arange(NUM_JOINTS) < jnp.reshape(jnp.asarray(refine_joints), (-1, 1))
  return camera_lib.fit_scale(uv, joints, jnp.where(fitted, weight, 0.0), init_scale,
                              focal_length=focal_length, input_size=input_size)


def decode_camera_smplx(raw: dict[str, jnp.ndarray], *, smplx_model: smplx_lib.SMPLXModel,
                        focal_length: float, input_size: int,
                        depth_factor: float = DEPTH_FACTOR, head: str = 'heatmap',
                        bboxes: Optional[jnp.ndarray] = None,
                        img_center: Optional[jnp.ndarray] = None,
                        kabsch: str = 'svd') -> SMPLXModelOutput:
  """HRNetSMPLXCamHead's raw dict -> SMPLXModelOutput (module docstring).

  bboxes (B, 4) xyxy px with img_center (B, 2) px place the crop in the full
  image, or neither. head: the model's ('heatmap' HRNetSMPLXCamKid,
  'regression' HRNetSMPLXCamKidReg: how many joints refine the scale). Rows with
  non-finite outputs get valid=False and zeros (their inputs are replaced by safe
  values first). kabsch: the IK's fit solver ('svd'; 'horn' has no SVD, for
  exported graphs).
  """
  offset, _ = camera_lib.crop_offsets(raw['pred_camera'], bboxes, img_center)
  return decode_camera_smplx_rows(raw, offset=offset, smplx_model=smplx_model,
                                  focal_length=focal_length, input_size=input_size,
                                  depth_factor=depth_factor, head=head, kabsch=kabsch)


def decode_camera_smplx_rows(raw: dict[str, jnp.ndarray], *, offset: jnp.ndarray,
                             smplx_model: smplx_lib.SMPLXModel, focal_length: float,
                             input_size: int, depth_factor: float = DEPTH_FACTOR,
                             head='heatmap', kabsch: str = 'svd') -> SMPLXModelOutput:
  """`decode_camera_smplx` with the crop placement given per row: offset (B, 1, 2)
  (`camera.crop_offsets`; zeros without bboxes); head a name or, per row, (B,)
  bool (True: 'regression'), so both classes' rows decode in one call."""
  check_shape('pred_uvd', raw['pred_uvd'], (None, NUM_JOINTS, 3))
  check_shape('offset', offset, (raw['pred_uvd'].shape[0], 1, 2))
  valid = hybrik.finite_rows(raw)
  z = lambda x, fill=0.0: hybrik._zero_invalid(x, valid, fill)  # pylint: disable=protected-access
  phi = jnp.where(valid[:, None, None], raw['pred_phi'],
                  jnp.array([1.0, 0.0], raw['pred_phi'].dtype))
  uvd, shape, expression = z(raw['pred_uvd']), z(raw['pred_shape']), z(raw['pred_expression'])
  scale = z(raw['pred_camera'][:, :1], 1.0)
  sigma = z(raw['pred_sigma'], 1.0)
  offset = z(jnp.where(jnp.isfinite(offset), offset, 0.0))
  geometry = dict(focal_length=focal_length, input_size=input_size)
  weight = jnp.maximum(1.0 - 10.0 * sigma, 0.0)
  refine_joints = (REFINE_JOINTS[head] if isinstance(head, str) else jnp.where(
      head, REFINE_JOINTS['regression'], REFINE_JOINTS['heatmap']))
  # One traced copy of the naive IK for the three steps (compile time). What the
  # steps read rides in the carry, unchanged, rather than being closed over: a
  # body without traced constants is what jax2onnx lowers to one ONNX Loop (the
  # IK once in the graph, not unrolled three times: conversion time).
  def refine(_, carry):
    s, (uvd_, weight_, shape_, expression_, phi_, offset_, refine_joints_) = carry
    s = update_scale(uvd_, weight_, s, shape_, expression_, phi_, smplx_model=smplx_model,
                     depth_factor=depth_factor, offset=offset_,
                     refine_joints=refine_joints_, kabsch=kabsch, **geometry)
    return s, carry[1]

  scale, _ = jax.lax.fori_loop(0, ICE_STEPS, refine, (scale, (
      uvd, weight, shape, expression, phi, offset, jnp.asarray(refine_joints))))
  cam_depth = camera_lib.root_depth(scale, focal_length, input_size)
  xyz = camera_lib.back_project(uvd, cam_depth, depth_factor=depth_factor, offset=offset,
                                **geometry)
  zeros = jnp.zeros_like(cam_depth)
  cam_root = xyz[:, 0] + jnp.concatenate([zeros, zeros, cam_depth], axis=-1)
  xyz = xyz - xyz[:, :1]
  body = ik_smplx.hybrik(smplx_model, shape, xyz, phi, expression, mode='eval',
                         kabsch=kabsch)
  transl = cam_root - body.joints[:, 0]
  placed = body.joints + transl[:, None, :]
  uv_full = placed[..., :2] / placed[..., 2:] * (focal_length / input_size) - offset
  struct = jnp.concatenate([body.joints_55, smplx_lib.leaf_joints(smplx_model,
                                                                  body.vertices)], axis=1)
  return SMPLXModelOutput(
      pred_uvd=uvd, pred_phi=phi, pred_shape=shape, pred_expression=expression,
      pred_xyz_71=z(xyz), pred_xyz_71_struct=z(struct), pred_joints=z(body.joints),
      pred_vertices=z(body.vertices), pred_rotmats=z(body.rot_mats),
      pred_uv_full=z(uv_full), valid=valid, pred_camera=z(raw['pred_camera']),
      pred_sigma=z(raw['pred_sigma']), maxvals=z(raw['maxvals']), cam_scale=z(scale),
      cam_root=z(cam_root), transl=z(transl))
