"""HybrIK's original lifting head (Li et al. 2021; Simple3DPoseBaseSMPL24).

Keypoints: 3 x (ConvTranspose 4x4 stride 2 [PyTorch padding 1: output 2x the
input], BatchNorm, ReLU) -> 1x1 conv to 24 * depth_dim channels -> per-joint
3D heatmaps (depth_dim, 8h, 8w) -> softmax over all voxels -> soft-argmax to
(u, v, d) = index / size - 0.5.
Twist, shape and leaf: global average pool -> fc1 (1024) -> dropout -> fc2
(1024) -> dropout -> decshape / decphi / decleaf linears (no nonlinearity, as
released). Parameter names mirror the PyTorch module: `deconv_layers_{0,1,3,4,6,7}`
(the nn.Sequential indices), `final_layer`, `fc1`, `fc2`, `dec*`.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from hybrik_jax import constants
from hybrik_jax.models.transformer import torch_linear_init


def soft_argmax_3d(logits: jnp.ndarray) -> jnp.ndarray:
  """Heatmap logits (B, J, D, H, W) -> (B, J, 3) (u, v, d) in [-0.5, 0.5).

  Softmax over all D*H*W voxels of each joint (HybrIK's norm_type 'softmax'),
  then the expected voxel index divided by the axis size, minus 0.5.
  """
  b, j, d, h, w = logits.shape
  probs = jax.nn.softmax(logits.reshape(b, j, -1).astype(jnp.promote_types(
      logits.dtype, jnp.float32)), axis=-1).reshape(b, j, d, h, w)
  coord = lambda marginal, size: (marginal * jnp.arange(size, dtype=marginal.dtype)).sum(-1)
  u = coord(probs.sum((2, 3)), w) / w - 0.5
  v = coord(probs.sum((2, 4)), h) / h - 0.5
  z = coord(probs.sum((3, 4)), d) / d - 0.5
  return jnp.stack([u, v, z], axis=-1)


class DeconvHead(nn.Module):
  """Backbone features (B, h, w, C) -> the same dict as TransformerHead."""
  deconv_channels: tuple[int, ...] = (256, 256, 256)
  depth_dim: int = 64
  fc_width: int = 1024
  fc_dropout: float = 0.5
  predict_leaf: bool = False
  mean_shape: tuple[float, ...] = (0.0,) * 10
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, features: jnp.ndarray, train: bool) -> dict[str, jnp.ndarray]:
    """features (B, h, w, C) -> {'pred_uvd': (B,24,3), 'pred_phi': (B,23,2),
    'pred_shape': (B,10), 'pred_leaf': (B,5,4) if predict_leaf}.

    The heatmaps are (24, depth_dim, 8h, 8w) (64^3 for a 256 px input).
    """
    b = features.shape[0]
    n_j = constants.NUM_JOINTS
    x = features.astype(self.dtype)
    for i, channels in enumerate(self.deconv_channels):
      x = nn.ConvTranspose(
          channels, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)), use_bias=False,
          transpose_kernel=True, dtype=self.dtype,
          kernel_init=nn.initializers.normal(0.001), name=f'deconv_layers_{3 * i}')(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                       dtype=self.dtype, name=f'deconv_layers_{3 * i + 1}')(x)
      x = nn.relu(x)
    x = nn.Conv(n_j * self.depth_dim, (1, 1), dtype=self.dtype,
                kernel_init=nn.initializers.normal(0.001), name='final_layer')(x)
    _, h, w, _ = x.shape
    # Channel c = joint * depth_dim + depth, as PyTorch's reshape of NCHW.
    logits = x.reshape(b, h, w, n_j, self.depth_dim).transpose(0, 3, 4, 1, 2)
    out_dtype = jnp.promote_types(self.dtype, jnp.float32)
    result = {'pred_uvd': soft_argmax_3d(logits).astype(out_dtype)}

    dense = lambda n, name: nn.Dense(n, dtype=self.dtype, kernel_init=torch_linear_init,
                                     name=name)
    xc = features.astype(self.dtype).mean(axis=(1, 2))
    xc = nn.Dropout(self.fc_dropout)(dense(self.fc_width, 'fc1')(xc), deterministic=not train)
    xc = nn.Dropout(self.fc_dropout)(dense(self.fc_width, 'fc2')(xc), deterministic=not train)
    mean_shape = jnp.asarray(self.mean_shape, jnp.float32)
    result['pred_shape'] = (dense(constants.NUM_BETAS, 'decshape')(xc)
                            + mean_shape).astype(out_dtype)
    result['pred_phi'] = dense(constants.NUM_TWISTS * 2, 'decphi')(xc).reshape(
        b, constants.NUM_TWISTS, 2).astype(out_dtype)
    if self.predict_leaf:
      result['pred_leaf'] = dense(20, 'decleaf')(xc).reshape(b, 5, 4).astype(out_dtype)
    return result
