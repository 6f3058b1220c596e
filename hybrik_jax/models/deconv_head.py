"""HybrIK's original lifting head (Li et al. 2021; Simple3DPoseBaseSMPL24).

Keypoints: 3 x (ConvTranspose 4x4 stride 2 [PyTorch padding 1: output 2x the
input], BatchNorm, ReLU) -> 1x1 conv to 24 * depth_dim channels -> per-joint
3D heatmaps (depth_dim, 8h, 8w) -> softmax over all voxels -> soft-argmax to
(u, v, d) = index / size - 0.5.
Twist, shape and leaf: global average pool -> fc1 (1024) -> dropout -> fc2
(1024) -> dropout -> decshape / decphi / decleaf linears (no nonlinearity, as
released). Parameter names mirror the PyTorch module: `deconv_layers_{0,1,3,4,6,7}`
(the nn.Sequential indices), `final_layer`, `fc1`, `fc2`, `dec*`.

The transposed convolutions run sub-pixel (`conv_transpose_4x4_s2`): each of
the four output phases is a 2x2 convolution with a re-indexed slice of the same
4x4 kernel, all four computed as one matmul on 2x2 patches. XLA:CPU runs
`lax.conv_transpose` with stride 2 (and its gradients) at a few GFLOP/s; the
matmul runs near the machine's matmul rate (docs/PERFORMANCE.md, "Changes
behind it").
"""

from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from hybrik_jax.body import constants
from hybrik_jax.models.transformer import torch_linear_init


def soft_argmax_3d(logits: jnp.ndarray) -> jnp.ndarray:
  """Heatmap logits (B, J, D, H, W) -> (B, J, 3) (u, v, d) in [-0.5, 0.5).

  Softmax over all D*H*W voxels of each joint (HybrIK's norm_type 'softmax'),
  then the expected voxel index divided by the axis size, minus 0.5.
  """
  return soft_argmax_3d_channels_last(logits.transpose(0, 3, 4, 1, 2))


def soft_argmax_3d_channels_last(logits: jnp.ndarray) -> jnp.ndarray:
  """`soft_argmax_3d` of logits laid out (B, H, W, J, D) -> (B, J, 3).

  The layout the final 1x1 convolution produces (channel = joint * D + depth),
  so the head never transposes its (B, 24, 64, 64, 64) heatmaps.
  """
  probs = jax.nn.softmax(logits.astype(jnp.promote_types(logits.dtype, jnp.float32)),
                         axis=(1, 2, 4))
  return integral(probs)


def expected_index(marginal: jnp.ndarray) -> jnp.ndarray:
  """(..., N) probabilities -> (...) expected index / N - 0.5 (the released
  integral's coordinate, in [-0.5, 0.5))."""
  size = marginal.shape[-1]
  return (marginal * jnp.arange(size, dtype=marginal.dtype)).sum(-1) / size - 0.5


def integral(probs: jnp.ndarray) -> jnp.ndarray:
  """Normalised heatmaps (B, H, W, J, D) -> (B, J, 3) uvd, index / size - 0.5.

  The heatmap integral of every HybrIK head (soft-argmax once normalised).
  """
  u = expected_index(probs.sum((1, 4)).transpose(0, 2, 1))    # (B, J, W) marginal
  v = expected_index(probs.sum((2, 4)).transpose(0, 2, 1))    # (B, J, H)
  z = expected_index(probs.sum((1, 2)))                       # (B, J, D)
  return jnp.stack([u, v, z], axis=-1)


def _subpixel_kernel(kernel: jnp.ndarray) -> jnp.ndarray:
  """(4, 4, O, I) transposed-conv kernel -> (2, 2, I, 2, 2, O) phase kernels.

  Output row 2m + r (r in {0, 1}) of a stride-2, PyTorch-padding-1 transposed
  convolution reads input rows m - 1 + r + t (t in {0, 1}) with kernel row
  3 - r - 2t; the same for columns. So the spatially flipped kernel, its axis
  of 4 split as (t, r), holds tap t of phase r.
  """
  kh, kw, o, i = kernel.shape
  flipped = kernel[::-1, ::-1].reshape(2, 2, 2, 2, o, i)  # (ty, ry, tx, rx, O, I)
  return flipped.transpose(0, 2, 5, 1, 3, 4)


def conv_transpose_4x4_s2(x: jnp.ndarray, kernel: jnp.ndarray,
                          precision: Optional[jax.lax.PrecisionLike] = None
                          ) -> jnp.ndarray:
  """PyTorch ConvTranspose2d(k=4, s=2, p=1, bias=False), sub-pixel, NHWC.

  Equals `lax.conv_transpose(x, kernel, (2, 2), ((2, 2), (2, 2)),
  transpose_kernel=True)` (Flax's ConvTranspose with this layer's settings)
  up to float rounding: the input, padded by 1, is cut into its (h+1)(w+1)
  2x2 patches, one matmul with the (4 I, 4 O) phase kernels gives every
  phase at every patch, and phase (ry, rx) of output pixel (m, n) is read at
  patch (m + ry, n + rx) (depth-to-space with a one-patch shift).

  Args:
    x: (B, h, w, I).
    kernel: (4, 4, O, I), Flax ConvTranspose's kernel with transpose_kernel
      (PyTorch's weight (I, O, 4, 4) transposed (2, 3, 1, 0)).
    precision: of the matmul.

  Returns:
    (B, 2h, 2w, O).
  """
  if x.ndim != 4 or kernel.shape[:2] != (4, 4) or kernel.shape[3] != x.shape[3]:
    raise ValueError(f'conv_transpose_4x4_s2: need x (B, h, w, I) and kernel (4, 4, O, I); '
                     f'got {x.shape} and {kernel.shape}')
  b, h, w, i = x.shape
  o = kernel.shape[2]
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  patches = jnp.concatenate([xp[:, ty:ty + h + 1, tx:tx + w + 1]
                             for ty in range(2) for tx in range(2)], axis=-1)
  z = jnp.dot(patches, _subpixel_kernel(kernel).reshape(4 * i, 4 * o), precision=precision)
  z = z.reshape(b, h + 1, w + 1, 2, 2, o)
  rows = [jnp.stack([z[:, ry:ry + h, rx:rx + w, ry, rx] for rx in range(2)], axis=3)
          for ry in range(2)]                     # each (B, h, w, 2, O)
  return jnp.stack(rows, axis=2).reshape(b, 2 * h, 2 * w, o)


class ConvTranspose4x4S2(nn.Module):
  """HybrIK's deconvolution (ConvTranspose2d 4x4, stride 2, padding 1, no bias).

  Its one parameter, `kernel` (4, 4, features, in), is laid out as Flax's
  `nn.ConvTranspose(..., transpose_kernel=True)` one, so checkpoints and the
  converter see the same tree. impl 'subpixel' (default) runs
  `conv_transpose_4x4_s2`; 'lax' runs `lax.conv_transpose` (the reference).
  """
  features: int
  kernel_init: Callable = nn.initializers.normal(0.001)
  dtype: Any = jnp.float32
  impl: str = 'subpixel'

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    """(B, h, w, I) -> (B, 2h, 2w, features)."""
    kernel = self.param('kernel', self.kernel_init, (4, 4, self.features, x.shape[-1]),
                        jnp.float32)
    x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    if self.impl == 'subpixel':
      return conv_transpose_4x4_s2(x, kernel)
    if self.impl == 'lax':
      return jax.lax.conv_transpose(x, kernel, (2, 2), ((2, 2), (2, 2)),
                                    dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
                                    transpose_kernel=True)
    raise ValueError(f"ConvTranspose4x4S2.impl must be 'subpixel' or 'lax', got {self.impl!r}")


def deconv_stack(x: jnp.ndarray, channels: tuple[int, ...], train: bool, *, dtype,
                 impl: str = 'subpixel') -> jnp.ndarray:
  """HybrIK's deconvolution stack, called inside a head's compact `__call__`
  (its layers are that head's: `deconv_layers_{0,1,3,4,6,7}`, the PyTorch
  nn.Sequential indices): per entry of `channels`, ConvTranspose 4x4 stride 2,
  BatchNorm, ReLU. (B, h, w, C) -> (B, 2^n h, 2^n w, channels[-1])."""
  x = x.astype(dtype)
  for i, c in enumerate(channels):
    x = ConvTranspose4x4S2(c, dtype=dtype, impl=impl, name=f'deconv_layers_{3 * i}')(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                     dtype=dtype, name=f'deconv_layers_{3 * i + 1}')(x)
    x = nn.relu(x)
  return x


def fc_stack(features: jnp.ndarray, width: int, dropout: float, train: bool, *,
             dtype) -> jnp.ndarray:
  """HybrIK's pooled-feature MLP, called inside a head's compact `__call__`:
  global average pool -> fc1 -> dropout -> fc2 -> dropout (no nonlinearity, as
  released). (B, h, w, C) -> (B, width)."""
  dense = lambda n, name: nn.Dense(n, dtype=dtype, kernel_init=torch_linear_init, name=name)
  xc = features.astype(dtype).mean(axis=(1, 2))
  xc = nn.Dropout(dropout)(dense(width, 'fc1')(xc), deterministic=not train)
  return nn.Dropout(dropout)(dense(width, 'fc2')(xc), deterministic=not train)


class DeconvHead(nn.Module):
  """Backbone features (B, h, w, C) -> the same dict as TransformerHead."""
  deconv_channels: tuple[int, ...] = (256, 256, 256)
  depth_dim: int = 64
  fc_width: int = 1024
  fc_dropout: float = 0.5
  predict_leaf: bool = False
  mean_shape: tuple[float, ...] = (0.0,) * 10
  dtype: Any = jnp.float32
  # 'subpixel' (fast on CPU) or 'lax' (lax.conv_transpose); same parameters.
  deconv_impl: str = 'subpixel'

  @nn.compact
  def __call__(self, features: jnp.ndarray, train: bool) -> dict[str, jnp.ndarray]:
    """features (B, h, w, C) -> {'pred_uvd': (B,24,3), 'pred_phi': (B,23,2),
    'pred_shape': (B,10), 'pred_leaf': (B,5,4) if predict_leaf}.

    The heatmaps are (24, depth_dim, 8h, 8w) (64^3 for a 256 px input).
    """
    b = features.shape[0]
    n_j = constants.NUM_JOINTS
    x = deconv_stack(features, self.deconv_channels, train, dtype=self.dtype,
                     impl=self.deconv_impl)
    x = nn.Conv(n_j * self.depth_dim, (1, 1), dtype=self.dtype,
                kernel_init=nn.initializers.normal(0.001), name='final_layer')(x)
    _, h, w, _ = x.shape
    # Channel c = joint * depth_dim + depth, as PyTorch's reshape of NCHW.
    logits = x.reshape(b, h, w, n_j, self.depth_dim)
    out_dtype = jnp.promote_types(self.dtype, jnp.float32)
    result = {'pred_uvd': soft_argmax_3d_channels_last(logits).astype(out_dtype)}

    dense = lambda n, name: nn.Dense(n, dtype=self.dtype, kernel_init=torch_linear_init,
                                     name=name)
    xc = fc_stack(features, self.fc_width, self.fc_dropout, train, dtype=self.dtype)
    mean_shape = jnp.asarray(self.mean_shape, jnp.float32)
    result['pred_shape'] = (dense(constants.NUM_BETAS, 'decshape')(xc)
                            + mean_shape).astype(out_dtype)
    result['pred_phi'] = dense(constants.NUM_TWISTS * 2, 'decphi')(xc).reshape(
        b, constants.NUM_TWISTS, 2).astype(out_dtype)
    if self.predict_leaf:
      result['pred_leaf'] = dense(20, 'decleaf')(xc).reshape(b, 5, 4).astype(out_dtype)
    return result
