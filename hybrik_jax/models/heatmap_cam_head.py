"""HybrIK's camera-predicting heads (Jeff-sjtu/HybrIK @ 9b8681d).

Two released classes, one module each sharing the same read-out:
  `DeconvCamHead` (Simple3DPoseBaseSMPLCam): ResNet features -> 3 x (4x4 stride-2
    deconvolution, BatchNorm, ReLU) -> 1x1 conv to 29 * depth_dim channels;
    global average pool -> fc1 -> dropout -> fc2 -> dropout -> the linear outputs.
  `HRNetCamHead` (HRNetSMPLCam): the HRNet's stride-4 branch -> 1x1 conv
    (`final_layer`) to 29 * depth_dim channels; the HRNet's 2048-channel feature map,
    average pooled, straight into the linear outputs.
The linear outputs: decshape (+ mean shape), decphi (23 (cos, sin)), deccam
(+ init_cam: (s, tx, ty) for the ResNet class, (s,) for the HRNet one), decsigma
(sigmoid). The heatmaps (29, depth_dim, H, W) are softmax-normalised over each
joint's whole volume and read by the integral (soft-argmax) as released:
index / size - 0.5; `maxvals` is each joint's largest normalised voxel.

Flip test inside the head (it averages heatmaps, not coordinates): the head gets
the features of [images; mirrored images] (2B rows) and returns B rows. The
mirror's logits are flipped along W, their left/right joints swapped and shifted
one pixel right (column 0 kept), both softmax'ed and averaged; phi of the mirror
flipped (sin negated, pairs swapped); shape averaged; the camera averaged as
each class does (ResNet: arithmetic with tx negated; HRNet: harmonic); sigma of
the mirror with its pairs swapped, averaged. Deviation (docs/FIDELITY.md): the
released ResNet class's flip branch feeds the pooled backbone features to
decsigma (it raises) and has no flip_sigma; this head uses the fc2 output and
the HRNet class's pair swap, the evident intent. The released one-pixel shift is
an in-place copy between overlapping slices, whose result torch does not define
(torch 2.13 CPU copies in 16-wide chunks); this head shifts cleanly.

Raw dict: 'pred_uvd' (B,29,3), 'pred_phi' (B,23,2), 'pred_shape' (B,10),
'pred_camera' (B,3) or (B,1), 'pred_sigma' (B,29) in (0,1), 'maxvals' (B,29).
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from hybrik_jax.body import constants
from hybrik_jax.body import smplx_constants
from hybrik_jax.models import deconv_head
from hybrik_jax.models.transformer import torch_linear_init

NUM_JOINTS = constants.NUM_JOINTS_29
# Released init_cam buffers.
RESNET_INIT_CAM = (0.9, 0.0, 0.0)
HRNET_INIT_CAM = (0.9,)


def flip_heatmap_logits(logits: jnp.ndarray) -> jnp.ndarray:
  """Logits (B, H, W, 29, D) of a mirrored image -> those of the original.

  Mirror along W, swap left/right joints (FLIP_PAIRS_29), shift one pixel
  towards +W (column 0 kept, as the released shift=True intends).
  """
  x = logits[:, :, ::-1][:, :, :, jnp.array(constants.FLIP_PERM_29)]
  return jnp.concatenate([x[:, :, :1], x[:, :, :-1]], axis=2)


integral = deconv_head.integral  # The one heatmap integral (kept for callers).


def heatmaps_to_uvd(logits: jnp.ndarray, flip_test: bool,
                    renormalise: bool = False) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Logits (N, H, W, 29, D) -> uvd (B, 29, 3) and maxvals (B, 29).

  N = B, or 2B with flip_test (second half: the mirrored images).
  renormalise: divide the softmax by its sum again (the ResNet class's no-flip
  branch does; a rounding-level change).
  """
  logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
  softmax = lambda x: jax.nn.softmax(x, axis=(1, 2, 4))
  if flip_test:
    b = logits.shape[0] // 2
    probs = 0.5 * (softmax(logits[:b]) + softmax(flip_heatmap_logits(logits[b:])))
  else:
    probs = softmax(logits)
    if renormalise:
      probs = probs / probs.sum(axis=(1, 2, 4), keepdims=True)
  return integral(probs), probs.max(axis=(1, 2, 4))


_TWIST_PERM_23 = tuple(constants.FLIP_PERM_24[i + 1] - 1 for i in range(constants.NUM_TWISTS))


def _flip_phi(phi: jnp.ndarray, twist_perm=_TWIST_PERM_23) -> jnp.ndarray:
  return phi[:, jnp.array(twist_perm)] * jnp.array([1.0, -1.0], phi.dtype)


def _read_out(xc: jnp.ndarray, flip_test: bool, init_cam, mean_shape, dtype, *,
              joint_perm=constants.FLIP_PERM_29,
              twist_perm=_TWIST_PERM_23) -> dict[str, jnp.ndarray]:
  """The linear outputs of pooled features xc (N, F); called inside a head's
  compact `__call__` (the Dense layers are that head's).

  len(mean_shape) shape values, len(twist_perm) twists and len(joint_perm)
  sigmas (HybrIK: 10, 23, 29; HybrIK-X: 21, 54, 71); the permutations are the
  flip test's left/right swaps.
  """
  dense = lambda n, name: nn.Dense(n, dtype=dtype, kernel_init=torch_linear_init,
                                   name=name)
  f32 = lambda x: x.astype(jnp.promote_types(dtype, jnp.float32))
  n = xc.shape[0]
  n_twists = len(twist_perm)
  shape = f32(dense(len(mean_shape), 'decshape')(xc)) + jnp.asarray(mean_shape, jnp.float32)
  phi = f32(dense(n_twists * 2, 'decphi')(xc)).reshape(n, n_twists, 2)
  cam = f32(dense(len(init_cam), 'deccam')(xc)) + jnp.asarray(init_cam, jnp.float32)
  sigma = jax.nn.sigmoid(f32(dense(len(joint_perm), 'decsigma')(xc)))
  if not flip_test:
    return dict(pred_shape=shape, pred_phi=phi, pred_camera=cam, pred_sigma=sigma)
  b = n // 2
  if len(init_cam) == 3:   # ResNet class: arithmetic mean, tx of the mirror negated.
    cam = 0.5 * (cam[:b] + cam[b:] * jnp.array([1.0, -1.0, 1.0], cam.dtype))
  else:                    # HRNet classes: harmonic mean.
    cam = 2.0 / (1.0 / cam[:b] + 1.0 / cam[b:])
  return dict(
      pred_shape=0.5 * (shape[:b] + shape[b:]),
      pred_phi=0.5 * (phi[:b] + _flip_phi(phi[b:], twist_perm)),
      pred_camera=cam,
      pred_sigma=0.5 * (sigma[:b] + sigma[b:, jnp.array(joint_perm)]))


def _check_init_cam(init_cam, size: int, cls: str) -> None:
  if len(init_cam) != size:
    raise ValueError(f'{cls}: init_cam needs {size} values, got {init_cam!r}')


class DeconvCamHead(nn.Module):
  """Simple3DPoseBaseSMPLCam's head: ResNet features (N, h, w, C) -> raw dict."""
  deconv_channels: tuple[int, ...] = (256, 256, 256)
  depth_dim: int = 64
  fc_width: int = 1024
  fc_dropout: float = 0.5
  init_cam: tuple[float, ...] = RESNET_INIT_CAM
  mean_shape: tuple[float, ...] = (0.0,) * 10
  dtype: Any = jnp.float32
  deconv_impl: str = 'subpixel'

  @nn.compact
  def __call__(self, features: jnp.ndarray, train: bool,
               flip_test: bool = False) -> dict[str, jnp.ndarray]:
    """features (N, h, w, C) (N = 2B with flip_test) -> the module docstring's dict."""
    _check_init_cam(self.init_cam, 3, 'DeconvCamHead')
    n = features.shape[0]
    x = deconv_head.deconv_stack(features, self.deconv_channels, train, dtype=self.dtype,
                                 impl=self.deconv_impl)
    x = nn.Conv(NUM_JOINTS * self.depth_dim, (1, 1), dtype=self.dtype,
                kernel_init=nn.initializers.normal(0.001), name='final_layer')(x)
    _, h, w, _ = x.shape
    uvd, maxvals = heatmaps_to_uvd(x.reshape(n, h, w, NUM_JOINTS, self.depth_dim),
                                   flip_test, renormalise=True)
    xc = deconv_head.fc_stack(features, self.fc_width, self.fc_dropout, train,
                              dtype=self.dtype)
    out = _read_out(xc, flip_test, self.init_cam, self.mean_shape, self.dtype)
    return dict(pred_uvd=uvd, maxvals=maxvals, **out)


class HRNetCamHead(nn.Module):
  """HRNetSMPLCam's head: (high-resolution branch (N, H, W, C0), features
  (N, h, w, 2048)) -> raw dict."""
  depth_dim: int = 64
  init_cam: tuple[float, ...] = HRNET_INIT_CAM
  mean_shape: tuple[float, ...] = (0.0,) * 10
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, branch0: jnp.ndarray, features: jnp.ndarray, train: bool,
               flip_test: bool = False) -> dict[str, jnp.ndarray]:
    """See the class docstring; N = 2B with flip_test."""
    del train  # No dropout or BatchNorm of its own.
    _check_init_cam(self.init_cam, 1, 'HRNetCamHead')
    n, h, w, _ = branch0.shape
    x = nn.Conv(NUM_JOINTS * self.depth_dim, (1, 1), dtype=self.dtype,
                kernel_init=nn.initializers.normal(0.001), name='final_layer')(
                    branch0.astype(self.dtype))
    uvd, maxvals = heatmaps_to_uvd(x.reshape(n, h, w, NUM_JOINTS, self.depth_dim), flip_test)
    xc = features.astype(self.dtype).mean(axis=(1, 2))
    out = _read_out(xc, flip_test, self.init_cam, self.mean_shape, self.dtype)
    return dict(pred_uvd=uvd, maxvals=maxvals, **out)


# ----------------------------------------------------------------------------
# HybrIK-X (Li et al. 2023): HRNetSMPLXCamKid's head, 71 joints on SMPL-X.
# ----------------------------------------------------------------------------

NUM_JOINTS_X = smplx_constants.NUM_JOINTS_71
NUM_TWISTS_X = smplx_constants.NUM_TWISTS_X
# 10 betas + the kid blend, then 10 expression coefficients (decshape's 21).
NUM_SHAPE_X = smplx_constants.NUM_BETAS + 1
NUM_SHAPE_FULL_X = NUM_SHAPE_X + smplx_constants.NUM_EXPRESSION
FLIP_PERM_71 = smplx_constants.FLIP_PERM_71
# Twist k (joint k + 1) of the mirror is twist FLIP_PERM_71[k + 1] - 1 (joints 1..54).
TWIST_FLIP_PERM_54 = tuple(FLIP_PERM_71[i + 1] - 1 for i in range(NUM_TWISTS_X))


def flip_uv_logits(logits: jnp.ndarray, perm=FLIP_PERM_71) -> jnp.ndarray:
  """2D logits (B, H, W, J) of a mirrored image -> those of the original: mirror
  along W, swap left/right joints, shift one pixel towards +W (column 0 kept)."""
  x = logits[:, :, ::-1][..., jnp.array(perm)]
  return jnp.concatenate([x[:, :, :1], x[:, :, :-1]], axis=2)


def heatmaps_25d_to_uvd(uv_logits: jnp.ndarray, z_logits: jnp.ndarray, flip_test: bool,
                        perm=FLIP_PERM_71) -> tuple[jnp.ndarray, jnp.ndarray]:
  """HybrIK-X's 2.5D heatmaps -> uvd (B, J, 3) and maxvals (B, J).

  uv_logits (N, H, W, J): one 2D heatmap per joint, softmax over H x W; z_logits
  (N, J, D): one depth distribution per joint, softmax over D (N = 2B with
  flip_test: the mirror's uv logits `flip_uv_logits`, its z logits only swapped,
  each softmax'ed, then averaged with the original's). The coordinates are the
  marginals' expected index / size - 0.5 (`deconv_head.expected_index`, the
  integral of every head); maxvals the uv peak times the z peak.
  """
  f32 = lambda x: x.astype(jnp.promote_types(x.dtype, jnp.float32))
  uv_logits, z_logits = f32(uv_logits), f32(z_logits)
  uv_softmax = lambda x: jax.nn.softmax(x, axis=(1, 2))
  z_softmax = lambda x: jax.nn.softmax(x, axis=-1)
  if flip_test:
    b = uv_logits.shape[0] // 2
    uv = 0.5 * (uv_softmax(uv_logits[:b]) + uv_softmax(flip_uv_logits(uv_logits[b:], perm)))
    z = 0.5 * (z_softmax(z_logits[:b]) + z_softmax(z_logits[b:, jnp.array(perm)]))
  else:
    uv, z = uv_softmax(uv_logits), z_softmax(z_logits)
  u = deconv_head.expected_index(uv.sum(1).transpose(0, 2, 1))   # (B, J, W) marginal
  v = deconv_head.expected_index(uv.sum(2).transpose(0, 2, 1))   # (B, J, H)
  d = deconv_head.expected_index(z)                             # (B, J, D)
  return jnp.stack([u, v, d], axis=-1), uv.max(axis=(1, 2)) * z.max(axis=-1)


class HRNetSMPLXCamHead(nn.Module):
  """HRNetSMPLXCamKid's head (HybrIK-X): (high-resolution branch (N, H, W, C0),
  features (N, h, w, 2048)) -> raw dict.

  2.5D heatmaps: `final_layer` (1x1 conv, C0 -> 71) gives each joint's uv
  logits at the branch's resolution, `depth_layer` (linear, C0 -> 71 x depth_dim)
  on the branch's average its depth logits (`heatmaps_25d_to_uvd`). The pooled
  2048 features go straight into decshape (21: 10 betas, the kid blend, 10
  expression), decphi (54 (cos, sin)), deccam (+ init_cam (0.9,)) and decsigma
  (71, sigmoid). Flip test as HRNetCamHead (harmonic camera mean), with the 71
  joints' pairs (`smplx_constants.FLIP_PAIRS_71`).

  Raw dict: 'pred_uvd' (B,71,3), 'pred_phi' (B,54,2), 'pred_shape' (B,11) (10
  betas, kid blend), 'pred_expression' (B,10), 'pred_camera' (B,1), 'pred_sigma'
  (B,71) in (0,1), 'maxvals' (B,71).
  """
  depth_dim: int = 64
  init_cam: tuple[float, ...] = HRNET_INIT_CAM
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, branch0: jnp.ndarray, features: jnp.ndarray, train: bool,
               flip_test: bool = False) -> dict[str, jnp.ndarray]:
    """See the class docstring; N = 2B with flip_test."""
    del train  # No dropout or BatchNorm of its own.
    _check_init_cam(self.init_cam, 1, 'HRNetSMPLXCamHead')
    n = branch0.shape[0]
    x = branch0.astype(self.dtype)
    uv_logits = nn.Conv(NUM_JOINTS_X, (1, 1), dtype=self.dtype,
                        kernel_init=nn.initializers.normal(0.001), name='final_layer')(x)
    z_logits = nn.Dense(NUM_JOINTS_X * self.depth_dim, dtype=self.dtype,
                        kernel_init=torch_linear_init, name='depth_layer')(
                            x.mean(axis=(1, 2))).reshape(n, NUM_JOINTS_X, self.depth_dim)
    uvd, maxvals = heatmaps_25d_to_uvd(uv_logits, z_logits, flip_test)
    xc = features.astype(self.dtype).mean(axis=(1, 2))
    out = _read_out(xc, flip_test, self.init_cam, (0.0,) * NUM_SHAPE_FULL_X, self.dtype,
                    joint_perm=FLIP_PERM_71, twist_perm=TWIST_FLIP_PERM_54)
    shape = out.pop('pred_shape')
    return dict(pred_uvd=uvd, maxvals=maxvals, pred_shape=shape[:, :NUM_SHAPE_X],
                pred_expression=shape[:, NUM_SHAPE_X:], **out)


# Finger joints of each hand (25..39 left, 40..54 right) and their wrists: the
# regression head predicts the fingers relative to the wrist (HAND_REL).
LEFT_FINGERS, RIGHT_FINGERS = tuple(range(25, 40)), tuple(range(40, 55))
LEFT_WRIST, RIGHT_WRIST = 20, 21
MOUTH_TOP = 70


class SMPLXRegressionHead(nn.Module):
  """HRNetSMPLXCamKidReg's head (HybrIK-X + RLE): HRNet features (N, h, w, 2048)
  -> raw dict.

  No heatmaps: the pooled features give the joints directly, `fc_coord`
  (70 x (u, v, d)) and `fc_coord_mouthtop` (joint 70), with `decsigma` (70) and
  `decsigma_mouthtop` (1) (sigmoid); the finger joints come relative to their
  wrist and are made absolute (the released HAND_REL). Then decshape (21),
  decphi (54 (cos, sin)), deccam (+ init_cam (0.9,)) as `HRNetSMPLXCamHead`.
  Flip test: the mirror's u negated and its left/right joints (and sigmas)
  swapped, averaged; shape, twists and camera as the heatmap head. maxvals =
  1 - sigma (as released). The RLE flow of the released training loss is not
  part of the network.

  Raw dict: as HRNetSMPLXCamHead's.
  """
  init_cam: tuple[float, ...] = HRNET_INIT_CAM
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, features: jnp.ndarray, train: bool,
               flip_test: bool = False) -> dict[str, jnp.ndarray]:
    """features (N, h, w, C) (N = 2B with flip_test) -> the class docstring's dict."""
    del train
    _check_init_cam(self.init_cam, 1, 'SMPLXRegressionHead')
    dense = lambda k, name: nn.Dense(k, dtype=self.dtype, kernel_init=torch_linear_init,
                                     name=name)
    f32 = lambda x: x.astype(jnp.promote_types(self.dtype, jnp.float32))
    xc = features.astype(self.dtype).mean(axis=(1, 2))
    n = xc.shape[0]
    body = NUM_JOINTS_X - 1
    coord = jnp.concatenate([f32(dense(body * 3, 'fc_coord')(xc)).reshape(n, body, 3),
                             f32(dense(3, 'fc_coord_mouthtop')(xc)).reshape(n, 1, 3)], 1)
    mouth_sigma = jax.nn.sigmoid(f32(dense(1, 'decsigma_mouthtop')(xc)))
    out = _read_out(xc, flip_test, self.init_cam, (0.0,) * NUM_SHAPE_FULL_X, self.dtype,
                    joint_perm=FLIP_PERM_71[:body], twist_perm=TWIST_FLIP_PERM_54)
    if flip_test:
      b = n // 2
      mirror = coord[b:, jnp.array(FLIP_PERM_71)] * jnp.array([-1.0, 1.0, 1.0], coord.dtype)
      coord = 0.5 * (coord[:b] + mirror)
      mouth_sigma = 0.5 * (mouth_sigma[:b] + mouth_sigma[b:])
    sigma = jnp.concatenate([out.pop('pred_sigma'), mouth_sigma], axis=1)
    offsets = jnp.zeros_like(coord)
    for fingers, wrist in ((LEFT_FINGERS, LEFT_WRIST), (RIGHT_FINGERS, RIGHT_WRIST)):
      offsets = offsets.at[:, jnp.array(fingers)].set(
          jnp.broadcast_to(coord[:, wrist:wrist + 1], (coord.shape[0], len(fingers), 3)))
    shape = out.pop('pred_shape')
    return dict(pred_uvd=coord + offsets, maxvals=1.0 - sigma, pred_sigma=sigma,
                pred_shape=shape[:, :NUM_SHAPE_X], pred_expression=shape[:, NUM_SHAPE_X:],
                **out)
