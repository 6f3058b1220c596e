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

