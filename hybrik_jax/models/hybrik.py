"""The full network (backbone + head) and the geometry that decodes it.

`HybrIKNet` is a pure Flax network: images -> the raw head dict
{'pred_uvd' (B,24,3), 'pred_phi' (B,23,2), 'pred_shape' (B,10)[, 'pred_leaf' (B,5,4)]}.
The geometry is plain jnp: `uvd_to_xyz` / `xyz_to_uvd` (HybrIK's uvd_to_cam and
its inverse), `decode` (uvd -> camera xyz -> the body model's `hybrik`), and the
flip test (`flip_image`, `flip_outputs`, `flip_test`).
"""

from typing import Any, Callable, Optional

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from hybrik_jax.body import constants
from hybrik_jax.body import geometry
from hybrik_jax.body import ik
from hybrik_jax.models import backbones
from hybrik_jax.models import camera as camera_lib
from hybrik_jax.models import config as model_config_lib
from hybrik_jax.models import deconv_head
from hybrik_jax.models import heatmap_cam_head
from hybrik_jax.models import transformer
from hybrik_jax.utils import check_shape

HEADS = ('transformer', 'deconv', 'heatmap', 'regression')
# The body a network predicts: 'smpl' (29/24 joints) or 'smplx' (HybrIK-X, 71 joints;
# decoded by models.hybrik_x).
BODIES = ('smpl', 'smplx')
_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16, 'float16': jnp.float16,
           'float64': jnp.float64}


class HybrIKNet(nn.Module):
  """Backbone + lifting head. Fields are those of models.config (see there)."""
  backbone: str = 'resnet34'
  backbone_remat: bool = False
  backbone_stride: int = 32
  head: str = 'transformer'
  head_remat: bool = False
  input_size: int = 256
  d_model: int = 512
  num_heads: int = 8
  num_blocks: int = 6
  ffn_layers: int = 3
  ffn_width: int = 512
  dropout: float = 0.1
  retain_low: float = 0.2
  retain_high: float = 1.0
  predict_leaf: bool = False
  twist_joint_offset: int = 0
  attention_impl: Optional[str] = None
  deconv_channels: tuple[int, ...] = (256, 256, 256)
  depth_dim: int = 64
  fc_width: int = 1024
  fc_dropout: float = 0.5
  mean_shape: tuple[float, ...] = (0.0,) * 10
  predict_camera: bool = False
  init_cam: Optional[tuple[float, ...]] = None
  body: str = 'smpl'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images: jnp.ndarray, train: bool,
               flip_test: bool = False) -> dict[str, jnp.ndarray]:
    """images (B, S, S, 3) ImageNet-normalised, S = input_size -> raw dict.

    Train mode uses batch statistics (mutable 'batch_stats') and the rng
    streams 'dropout' and, for the transformer head, 'patches'.
    flip_test: camera models only (HybrIK's camera classes average heatmaps,
    so their flip test runs inside the network; others use `flip_test` below).
    """
    check_shape('images', images, (None, self.input_size, self.input_size, 3))
    if self.body not in BODIES:
      raise ValueError(f'model.body must be one of {BODIES}, got {self.body!r}')
    if self.body == 'smplx':
      if not (self.predict_camera and self.head in ('heatmap', 'regression')):
        raise ValueError("model.body 'smplx' (HybrIK-X's HRNetSMPLXCamKid[Reg]) needs "
                         "head 'heatmap' or 'regression' and predict_camera=True")
    elif self.head == 'regression':
      raise ValueError("model.head 'regression' (HRNetSMPLXCamKidReg) needs body 'smplx'")
    else:
      check_shape('mean_shape', jnp.asarray(self.mean_shape), (constants.NUM_BETAS,))
    if self.predict_camera and self.head != 'transformer':
      return self._camera_model(images, train, flip_test)
    if flip_test:
      raise ValueError("HybrIKNet(flip_test=True) is for HybrIK's camera models; others "
                       'use models.hybrik.flip_test')
    if self.head == 'heatmap':
      raise ValueError("model.head 'heatmap' (HRNetSMPLCam) needs predict_camera=True")
    stride = {} if self.backbone_stride == 32 else {
        'output_stride': self.backbone_stride}
    features = backbones.create_backbone(self.backbone, dtype=self.dtype,
                                         remat=self.backbone_remat,
                                         name='backbone', **stride)(images, train)
    if self.head == 'transformer':
      head = transformer.TransformerHead(
          d_model=self.d_model, num_heads=self.num_heads, num_blocks=self.num_blocks,
          ffn_layers=self.ffn_layers, ffn_width=self.ffn_width, dropout=self.dropout,
          retain_low=self.retain_low, retain_high=self.retain_high,
          predict_leaf=self.predict_leaf, twist_joint_offset=self.twist_joint_offset,
          mean_shape=tuple(self.mean_shape), attention_impl=self.attention_impl,
          remat=self.head_remat, dtype=self.dtype, predict_camera=self.predict_camera,
          init_cam=tuple(self.init_cam or transformer.INIT_CAM), name='head')
    elif self.head == 'deconv':
      head = deconv_head.DeconvHead(
          deconv_channels=tuple(self.deconv_channels), depth_dim=self.depth_dim,
          fc_width=self.fc_width, fc_dropout=self.fc_dropout,
          predict_leaf=self.predict_leaf, mean_shape=tuple(self.mean_shape),
          dtype=self.dtype, name='head')
    else:
      raise ValueError(f'Unknown head {self.head!r}; choose one of {HEADS}')
    return head(features, train)

  def _camera_model(self, images, train, flip_test):
    """HybrIK's Simple3DPoseBaseSMPLCam (head 'deconv') or HRNetSMPLCam (head
    'heatmap'); raw dict of models.heatmap_cam_head."""
    if flip_test:
      images = jnp.concatenate([images, flip_image(images)], axis=0)
    if self.head == 'deconv':
      stride = {} if self.backbone_stride == 32 else {'output_stride': self.backbone_stride}
      features = backbones.create_backbone(self.backbone, dtype=self.dtype,
                                           remat=self.backbone_remat,
                                           name='backbone', **stride)(images, train)
      return heatmap_cam_head.DeconvCamHead(
          deconv_channels=tuple(self.deconv_channels), depth_dim=self.depth_dim,
          fc_width=self.fc_width, fc_dropout=self.fc_dropout,
          init_cam=tuple(self.init_cam or heatmap_cam_head.RESNET_INIT_CAM),
          mean_shape=tuple(self.mean_shape), dtype=self.dtype,
          name='head')(features, train, flip_test)
    if self.head == 'regression':
      features = backbones.create_backbone(self.backbone, dtype=self.dtype,
                                           remat=self.backbone_remat,
                                           name='backbone')(images, train)
      return heatmap_cam_head.SMPLXRegressionHead(
          init_cam=tuple(self.init_cam or heatmap_cam_head.HRNET_INIT_CAM),
          dtype=self.dtype, name='head')(features, train, flip_test)
    if self.head == 'heatmap':
      if not self.backbone.startswith('hrnet'):
        raise ValueError(f"model.head 'heatmap' needs an HRNet backbone, got {self.backbone!r}")
      branch0, features = backbones.create_backbone(
          self.backbone, dtype=self.dtype, remat=self.backbone_remat,
          name='backbone')(images, train, return_branch0=True)
      if self.body == 'smplx':
        return heatmap_cam_head.HRNetSMPLXCamHead(
            depth_dim=self.depth_dim,
            init_cam=tuple(self.init_cam or heatmap_cam_head.HRNET_INIT_CAM),
            dtype=self.dtype, name='head')(branch0, features, train, flip_test)
      return heatmap_cam_head.HRNetCamHead(
          depth_dim=self.depth_dim,
          init_cam=tuple(self.init_cam or heatmap_cam_head.HRNET_INIT_CAM),
          mean_shape=tuple(self.mean_shape), dtype=self.dtype,
          name='head')(branch0, features, train, flip_test)
    raise ValueError(f"model.predict_camera needs head 'deconv' (Simple3DPoseBaseSMPLCam), "
                     f"'heatmap' (HRNetSMPLCam) or 'transformer' (its camera token), "
                     f"got {self.head!r}")


def create_model(model_config: ml_collections.ConfigDict) -> HybrIKNet:
  """The HybrIKNet described by a models.config ConfigDict (or a plain dict)."""
  fields = {k: v for k, v in dict(model_config).items()
            if k not in model_config_lib.IK_FIELDS + model_config_lib.CAMERA_FIELDS}
  unknown = set(fields) - set(HybrIKNet.__dataclass_fields__) - {'parent', 'name'}
  if unknown:
    raise ValueError(f'create_model: unknown model config fields {sorted(unknown)}')
  if fields.get('dtype', 'float32') not in _DTYPES:
    raise ValueError(f"model.dtype must be one of {sorted(_DTYPES)}, got {fields['dtype']!r}")
  fields['dtype'] = _DTYPES[fields.get('dtype', 'float32')]
  for key in ('deconv_channels', 'mean_shape', 'init_cam'):
    if fields.get(key) is not None:
      fields[key] = tuple(fields[key])
  return HybrIKNet(**fields)


# ----------------------------------------------------------------------------
# Geometry: uvd <-> camera xyz (HybrIK's uvd_to_cam and its inverse).
# ----------------------------------------------------------------------------

def _affine_to_3x3(trans: jnp.ndarray) -> jnp.ndarray:
  """(B, 2, 3) affine -> (B, 3, 3) homogeneous matrix."""
  last = jnp.broadcast_to(jnp.array([0.0, 0.0, 1.0], trans.dtype), trans.shape[:-2] + (1, 3))
  return jnp.concatenate([trans, last], axis=-2)


def uvd_to_xyz(uvd: jnp.ndarray, trans_inv: jnp.ndarray, intrinsics: jnp.ndarray,
               joint_root: jnp.ndarray, depth_factor: jnp.ndarray,
               input_size: int) -> jnp.ndarray:
  """Normalised uvd -> camera-frame xyz relative to `joint_root`, metres.

  Args:
    uvd: (B, J, 3); u, v = input px / input_size - 0.5, d = (z - z_root) / depth_factor.
    trans_inv: (B, 2, 3) affine, input px -> stored-image px.
    intrinsics: (B, 3, 3) K of the stored image (HybrIK's intrinsic_param is K^-1).
    joint_root: (B, 3) metres, camera frame (its z gives the absolute depth).
    depth_factor: (B, 1) metres.
    input_size: network input side, px.

  Returns:
    (B, J, 3) metres: K^-1 [x, y, 1] * (z_root + d * depth_factor) - joint_root.
  """
  check_shape('uvd', uvd, (None, None, 3))
  b = uvd.shape[0]
  check_shape('trans_inv', trans_inv, (b, 2, 3))
  check_shape('intrinsics', intrinsics, (b, 3, 3))
  check_shape('joint_root', joint_root, (b, 3))
  check_shape('depth_factor', depth_factor, (b, 1))
  uv_input = (uvd[..., :2] + 0.5) * input_size
  uv_homo = jnp.concatenate([uv_input, jnp.ones_like(uv_input[..., :1])], axis=-1)
  uv_image = jnp.einsum('bij,bkj->bki', trans_inv, uv_homo)
  image_homo = jnp.concatenate([uv_image, jnp.ones_like(uv_image[..., :1])], axis=-1)
  # Adjugate inverse (no LU: exported graphs run on runtimes without one).
  rays = jnp.einsum('bij,bkj->bki', geometry.inv3(intrinsics), image_homo)
  abs_z = joint_root[:, None, 2:3] + uvd[..., 2:3] * depth_factor[:, None, :]
  return rays * abs_z - joint_root[:, None, :]


def xyz_to_uvd(xyz: jnp.ndarray, trans_inv: jnp.ndarray, intrinsics: jnp.ndarray,
               joint_root: jnp.ndarray, depth_factor: jnp.ndarray,
               input_size: int) -> jnp.ndarray:
  """Inverse of `uvd_to_xyz`: xyz (B, J, 3) metres relative to joint_root -> uvd."""
  check_shape('xyz', xyz, (None, None, 3))
  b = xyz.shape[0]
  check_shape('trans_inv', trans_inv, (b, 2, 3))
  check_shape('intrinsics', intrinsics, (b, 3, 3))
  check_shape('joint_root', joint_root, (b, 3))
  check_shape('depth_factor', depth_factor, (b, 1))
  cam = xyz + joint_root[:, None, :]
  proj = jnp.einsum('bij,bkj->bki', intrinsics, cam)
  image_homo = proj / proj[..., 2:3]
  trans = jnp.linalg.inv(_affine_to_3x3(trans_inv))
  uv_input = jnp.einsum('bij,bkj->bki', trans, image_homo)[..., :2]
  d = (cam[..., 2:3] - joint_root[:, None, 2:3]) / depth_factor[:, None, :]
  return jnp.concatenate([uv_input / input_size - 0.5, d], axis=-1)


# ----------------------------------------------------------------------------
# Decoding: raw head outputs -> body.
# ----------------------------------------------------------------------------

@flax.struct.dataclass
class ModelOutput:
  """Decoded predictions; every 3D quantity in metres, camera axes, root-relative.

  pred_uvd (B,24,3), pred_phi (B,23,2), pred_shape (B,10), pred_leaf (B,5,4) or
  None, pred_xyz_24 (B,24,3) from uvd, pred_xyz_24_struct (B,24,3) from the
  skinned body, pred_xyz_17 (B,17,3) H36M joints from the mesh, pred_vertices
  (B,6890,3), pred_rotmats (B,24,3,3) local rotations, valid (B,) bool (False
  where the network's outputs were not finite; those rows are zeros).
  camera: a camera model's `models.camera.CameraOutput` (camera, sigma,
  cam_scale, cam_root, transl, the 29-joint uvd / xyz), None for other models;
  for camera models pred_uvd and pred_xyz_24 are the first 24 of the 29 joints.
  """
  pred_uvd: jnp.ndarray
  pred_phi: jnp.ndarray
  pred_shape: jnp.ndarray
  pred_leaf: Optional[jnp.ndarray]
  pred_xyz_24: jnp.ndarray
  pred_xyz_24_struct: jnp.ndarray
  pred_xyz_17: jnp.ndarray
  pred_vertices: jnp.ndarray
  pred_rotmats: jnp.ndarray
  valid: jnp.ndarray
  camera: Optional[camera_lib.CameraOutput] = None


def finite_rows(raw: dict[str, jnp.ndarray]) -> jnp.ndarray:
  """(B,) bool: every prediction of the example is finite."""
  leaves = [v for v in raw.values() if v is not None]
  flags = [jnp.isfinite(v.reshape(v.shape[0], -1)).all(-1) for v in leaves]
  return jnp.stack(flags, 0).all(0)


def _zero_invalid(x: jnp.ndarray, valid: jnp.ndarray, fill=0.0) -> jnp.ndarray:
  mask = valid.reshape((-1,) + (1,) * (x.ndim - 1))
  return jnp.where(mask, x, jnp.asarray(fill, x.dtype))


def decode(raw: dict[str, jnp.ndarray], *, smpl_model, trans_inv: jnp.ndarray,
           intrinsics: jnp.ndarray, joint_root: jnp.ndarray, input_size: int,
           convention: ik.IKConvention) -> ModelOutput:
  """Raw head outputs -> ModelOutput (see its docstring).

  pred_uvd -> camera xyz (uvd_to_xyz, with the convention's depth_factor and
  input_size) made relative to its own root joint -> the body model's HybrIK IK
  (with `convention`) with the predicted shape, twists and (if present) leaf
  rotations -> skinned body. Examples with non-finite outputs get valid=False
  and zeros everywhere (their inputs are replaced by safe values before the IK,
  so no NaN flows on, gradients included).

  Args:
    raw: the network's dict.
    smpl_model: a hybrik_jax.body.smpl.SMPLModel.
    trans_inv, intrinsics, joint_root: see uvd_to_xyz.
    input_size: the model's square input side, px (`model_config.input_size`).
    convention: the model's `ik.IKConvention` (`models.config.ik_convention`):
      the IK and the network's depth unit (`convention.depth_factor`; a batch's
      own depth_factor is not used). The training step passes
      `convention.for_training()` (the released layer's train-mode IK).
  """
  from hybrik_jax.body import smpl as smpl_lib  # pylint: disable=g-import-not-at-top

  check_shape('pred_uvd', raw['pred_uvd'], (None, constants.NUM_JOINTS, 3))
  b = raw['pred_uvd'].shape[0]
  check_shape('pred_phi', raw['pred_phi'], (b, constants.NUM_TWISTS, 2))
  check_shape('pred_shape', raw['pred_shape'], (b, constants.NUM_BETAS))
  leaf = raw.get('pred_leaf')
  if leaf is not None:
    check_shape('pred_leaf', leaf, (b, 5, 4))
  valid = finite_rows(raw)
  uvd = _zero_invalid(raw['pred_uvd'], valid)
  phi = jnp.where(valid[:, None, None], raw['pred_phi'],
                  jnp.array([1.0, 0.0], raw['pred_phi'].dtype))
  shape = _zero_invalid(raw['pred_shape'], valid)
  if leaf is not None:
    leaf = jnp.where(valid[:, None, None], leaf, jnp.array([1.0, 0.0, 0.0, 0.0], leaf.dtype))

  depth_factor = jnp.full((b, 1), convention.depth_factor, uvd.dtype)
  xyz = uvd_to_xyz(uvd, trans_inv, intrinsics, joint_root, depth_factor, input_size)
  xyz = xyz - xyz[:, :1]
  xyz = _zero_invalid(jnp.where(jnp.isfinite(xyz), xyz, 0.0), valid)
  body = smpl_lib.hybrik(smpl_model, shape, xyz, phi, leaf_thetas=leaf,
                         convention=convention)
  return ModelOutput(
      pred_uvd=uvd, pred_phi=phi, pred_shape=shape, pred_leaf=leaf,
      pred_xyz_24=xyz,
      pred_xyz_24_struct=_zero_invalid(body.joints, valid),
      pred_xyz_17=_zero_invalid(body.joints_h36m, valid),
      pred_vertices=_zero_invalid(body.vertices, valid),
      pred_rotmats=_zero_invalid(body.rot_mats, valid),
      valid=valid)


def decode_camera(raw: dict[str, jnp.ndarray], *, smpl_model, convention: ik.IKConvention,
                  focal_length: float, input_size: int, refine_scale: bool,
                  bboxes: Optional[jnp.ndarray] = None,
                  img_center: Optional[jnp.ndarray] = None) -> ModelOutput:
  """A camera model's raw dict -> ModelOutput with `camera`.

  The raw dict of HybrIK's camera heads (models.heatmap_cam_head: 29 joints) or
  of the Transformer head's camera token (models.transformer, predict_camera:
  24 joints, pred_camera (B, 3), pred_sigma (B, 24), pred_leaf if the model
  has it). Placement as the released classes (`models.camera`): focal_length
  px, input_size px, the convention's depth_factor and IK; refine_scale:
  HRNetSMPLCam's update_scale (`camera.refines_scale(head)` says which heads
  use it); bboxes (B, 4) xyxy px with img_center (B, 2) px place the crop in
  the full image, or neither. Rows with non-finite outputs get valid=False and
  zeros (their inputs are replaced by safe values first).
  """
  offset, cam_trans = camera_lib.crop_offsets(raw['pred_camera'], bboxes, img_center)
  return decode_camera_rows(raw, offset=offset, cam_trans=cam_trans, refine=refine_scale,
                            smpl_model=smpl_model, convention=convention,
                            focal_length=focal_length, input_size=input_size)


def decode_camera_rows(raw: dict[str, jnp.ndarray], *, offset: jnp.ndarray,
                       cam_trans: jnp.ndarray, refine, smpl_model,
                       convention: ik.IKConvention, focal_length: float,
                       input_size: int) -> ModelOutput:
  """`decode_camera` with the placement given per row (`camera.crop_offsets`:
  offset (B, 1, 2), cam_trans (B, 2); refine a bool or (B,) bool)."""
  joints = raw['pred_uvd'].shape[1] if raw['pred_uvd'].ndim == 3 else -1
  if joints not in (constants.NUM_JOINTS, constants.NUM_JOINTS_29):
    check_shape('pred_uvd', raw['pred_uvd'], (None, constants.NUM_JOINTS_29, 3))
  b = raw['pred_uvd'].shape[0]
  check_shape('pred_sigma', raw['pred_sigma'], (b, joints))
  valid = finite_rows(raw)
  phi = jnp.where(valid[:, None, None], raw['pred_phi'],
                  jnp.array([1.0, 0.0], raw['pred_phi'].dtype))
  leaf = raw.get('pred_leaf')
  if leaf is not None:
    if joints != constants.NUM_JOINTS:
      raise ValueError('pred_leaf goes with a 24-joint pred_uvd (the Transformer head)')
    check_shape('pred_leaf', leaf, (b, 5, 4))
    leaf = jnp.where(valid[:, None, None], leaf, jnp.array([1.0, 0.0, 0.0, 0.0], leaf.dtype))
  uvd = _zero_invalid(raw['pred_uvd'], valid)
  shape = _zero_invalid(raw['pred_shape'], valid)
  scale = _zero_invalid(raw['pred_camera'][:, :1], valid, 1.0)
  sigma = _zero_invalid(raw['pred_sigma'], valid, 1.0)
  offset = _zero_invalid(jnp.where(jnp.isfinite(offset), offset, 0.0), valid)
  cam_trans = _zero_invalid(jnp.where(jnp.isfinite(cam_trans), cam_trans, 0.0), valid)
  cam_scale, cam_root, xyz, body = camera_lib.place(
      uvd, phi, shape, sigma, scale, offset=offset, cam_trans=cam_trans, refine=refine,
      smpl_model=smpl_model, convention=convention, focal_length=focal_length,
      input_size=input_size, leaf_thetas=leaf)
  z = lambda x: _zero_invalid(x, valid)
  maxvals = raw.get('maxvals')
  cam = camera_lib.CameraOutput(
      pred_camera=z(raw['pred_camera']), pred_sigma=z(raw['pred_sigma']),
      maxvals=None if maxvals is None else z(maxvals),
      cam_scale=z(cam_scale), cam_root=z(cam_root),
      transl=z(cam_root - body.joints[:, 0]), pred_uvd_29=uvd, pred_xyz_29=z(xyz))
  n = constants.NUM_JOINTS
  return ModelOutput(
      pred_uvd=uvd[:, :n], pred_phi=phi, pred_shape=shape, pred_leaf=leaf,
      pred_xyz_24=cam.pred_xyz_29[:, :n],
      pred_xyz_24_struct=z(body.joints), pred_xyz_17=z(body.joints_h36m),
      pred_vertices=z(body.vertices), pred_rotmats=z(body.rot_mats),
      valid=valid, camera=cam)


# ----------------------------------------------------------------------------
# Flip test.
# ----------------------------------------------------------------------------

_TWIST_FLIP_PERM = tuple(constants.FLIP_PERM_24[i + 1] - 1 for i in range(constants.NUM_TWISTS))


def flip_image(images: jnp.ndarray) -> jnp.ndarray:
  """Mirror images (B, H, W, C) left-right."""
  return images[:, :, ::-1, :]


def flip_outputs(raw: dict[str, jnp.ndarray],
                 leaf_flip_pairs=constants.FLIP_PAIRS_LEAF) -> dict[str, jnp.ndarray]:
  """Raw outputs of a mirrored image -> outputs of the original (an involution).

  u -> -u (mirror about the crop centre, the released shift=True) and
  left/right joints swapped; twists: sin phi negated, pairs swapped; leaf
  quaternions (w, x, y, z) -> (w, x, -y, -z), `leaf_flip_pairs` (slot pairs; the
  model's `ik.IKConvention.leaf_flip_pairs`) swapped; shape unchanged. The
  Transformer head's camera token (predict_camera): pred_camera (s, tx, ty)
  -> (s, -tx, ty) (so the average is HybrIK's ResNet camera class's), and
  pred_sigma (B, 24) swapped left/right.
  """
  out = dict(raw)
  uvd = raw['pred_uvd'][:, jnp.array(constants.FLIP_PERM_24)]
  out['pred_uvd'] = uvd * jnp.array([-1.0, 1.0, 1.0], uvd.dtype)
  phi = raw['pred_phi'][:, jnp.array(_TWIST_FLIP_PERM)]
  out['pred_phi'] = phi * jnp.array([1.0, -1.0], phi.dtype)
  if raw.get('pred_leaf') is not None:
    perm = constants.flip_permutation(5, leaf_flip_pairs)
    leaf = raw['pred_leaf'][:, jnp.array(perm)]
    out['pred_leaf'] = leaf * jnp.array([1.0, 1.0, -1.0, -1.0], leaf.dtype)
  if raw.get('pred_camera') is not None:
    cam = raw['pred_camera']
    check_shape('pred_camera', cam, (None, 3))
    out['pred_camera'] = cam * jnp.array([1.0, -1.0, 1.0], cam.dtype)
  if raw.get('pred_sigma') is not None:
    check_shape('pred_sigma', raw['pred_sigma'], (None, constants.NUM_JOINTS))
    out['pred_sigma'] = raw['pred_sigma'][:, jnp.array(constants.FLIP_PERM_24)]
  return out


def flip_test(apply_fn: Callable[[jnp.ndarray], dict[str, jnp.ndarray]],
              images: jnp.ndarray,
              leaf_flip_pairs: tuple[tuple[int, int], ...]) -> dict[str, jnp.ndarray]:
  """Average of the outputs on the images and (flipped back) on their mirror.

  apply_fn: images (B, H, W, 3) -> raw dict, e.g.
  `lambda x: model.apply(variables, x, train=False)`. leaf_flip_pairs: the leaf
  slots that swap, the model's (`convention.leaf_flip_pairs`, see `flip_outputs`).
  """
  raw = apply_fn(images)
  mirrored = flip_outputs(apply_fn(flip_image(images)), leaf_flip_pairs)
  return jax.tree.map(lambda a, b: 0.5 * (a + b), raw, mirrored)
