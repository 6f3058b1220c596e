"""ResNet-18/34/50 backbones (He et al. 2016), NHWC, torchvision layout.

The parameter tree mirrors torchvision's state dict one to one so ImageNet and
HybrIK checkpoints convert without guesswork:
`conv1, bn1, layer{1..4}_{i}/{conv1, bn1, conv2, bn2[, conv3, bn3],
downsample_conv, downsample_bn}`. Padding is explicit and symmetric as in
PyTorch (Flax 'SAME' pads stride-2 convolutions asymmetrically). BatchNorm uses
momentum 0.9 / eps 1e-5, i.e. PyTorch's momentum 0.1.
"""

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

ModuleDef = Any

# torchvision's default conv init: kaiming normal, fan_out, relu gain.
conv_init = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')


def _pad(k: int) -> tuple[tuple[int, int], tuple[int, int]]:
  p = k // 2
  return ((p, p), (p, p))


def max_pool_3x3_s2(x: jnp.ndarray) -> jnp.ndarray:
  """PyTorch's MaxPool2d(3, stride=2, padding=1) on (B, H, W, C) -> (B, H', W', C).

  The same values as `nn.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))`, as the
  elementwise maximum of the nine strided views of the -inf padded input:
  XLA:CPU differentiates that with a few fused elementwise loops, where
  reduce_window's gradient (select_and_scatter, via iota index maps) cost about
  4 % of the backbone's forward + backward. Gradients differ only where two
  window entries are exactly equal (split instead of given to the first); in
  the stem they are ReLU outputs, so ties are zeros whose gradient the ReLU
  stops anyway.
  """
  b, h, w, c = x.shape
  ho, wo = (h - 1) // 2 + 1, (w - 1) // 2 + 1
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-jnp.inf)
  out = None
  for dy in range(3):
    for dx in range(3):
      view = jax.lax.slice(xp, (0, dy, dx, 0), (b, dy + 2 * ho - 1, dx + 2 * wo - 1, c),
                           (1, 2, 2, 1))
      out = view if out is None else jnp.maximum(out, view)
  return out


class BasicBlock(nn.Module):
  """Two 3x3 convolutions (ResNet-18/34). Stride on the first."""
  filters: int
  conv: ModuleDef
  norm: ModuleDef
  strides: int = 1
  expansion = 1

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    residual = x
    y = self.conv(self.filters, (3, 3), (self.strides, self.strides),
                  padding=_pad(3), name='conv1')(x)
    y = nn.relu(self.norm(name='bn1')(y))
    y = self.conv(self.filters, (3, 3), padding=_pad(3), name='conv2')(y)
    y = self.norm(name='bn2')(y)
    if residual.shape != y.shape:
      residual = self.conv(self.filters, (1, 1), (self.strides, self.strides),
                           padding='VALID', name='downsample_conv')(x)
      residual = self.norm(name='downsample_bn')(residual)
    return nn.relu(y + residual)


class Bottleneck(nn.Module):
  """1x1 -> 3x3 (strided, torchvision v1.5) -> 1x1 x4 (ResNet-50)."""
  filters: int
  conv: ModuleDef
  norm: ModuleDef
  strides: int = 1
  expansion = 4

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    residual = x
    y = self.conv(self.filters, (1, 1), padding='VALID', name='conv1')(x)
    y = nn.relu(self.norm(name='bn1')(y))
    y = self.conv(self.filters, (3, 3), (self.strides, self.strides),
                  padding=_pad(3), name='conv2')(y)
    y = nn.relu(self.norm(name='bn2')(y))
    y = self.conv(self.filters * 4, (1, 1), padding='VALID', name='conv3')(y)
    y = self.norm(name='bn3')(y)
    if residual.shape != y.shape:
      residual = self.conv(self.filters * 4, (1, 1), (self.strides, self.strides),
                           padding='VALID', name='downsample_conv')(x)
      residual = self.norm(name='downsample_bn')(residual)
    return nn.relu(y + residual)


class ResNet(nn.Module):
  """ResNet trunk without the classifier.

  Attributes:
    stage_sizes: blocks per stage, e.g. (3, 4, 6, 3).
    block_cls: BasicBlock or Bottleneck.
    num_filters: channels of the stem and the first stage (64 in the paper).
    dtype: compute dtype; parameters are float32.
    remat: recompute each residual block's activations in the backward pass
      (nn.remat) instead of keeping them: less training memory, ~1/3 more
      backbone FLOPs. Same parameters and outputs.
    output_stride: 32 (the paper's), 16 or 8: the last one or two stages keep
      their input resolution (stride 1 in their first block), so a small input
      still gives a fine token grid (64 px at stride 8: the paper's 8x8).
      Same parameters.
  """
  stage_sizes: Sequence[int]
  block_cls: Callable[..., nn.Module]
  num_filters: int = 64
  dtype: Any = jnp.float32
  remat: bool = False
  output_stride: int = 32

  @property
  def out_channels(self) -> int:
    return self.num_filters * 8 * self.block_cls.expansion

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    """Images (B, H, W, 3) -> features (B, H/s, W/s, C), s = output_stride.

    C = 512 for ResNet-18/34 and 2048 for ResNet-50 (8 * num_filters * expansion).
    """
    if self.output_stride not in OUTPUT_STRIDES:
      raise ValueError(f'ResNet output_stride must be one of {OUTPUT_STRIDES}, '
                       f'got {self.output_stride}')
    conv = functools.partial(nn.Conv, use_bias=False, dtype=self.dtype,
                             kernel_init=conv_init)
    norm = functools.partial(nn.BatchNorm, use_running_average=not train,
                             momentum=0.9, epsilon=1e-5, dtype=self.dtype)
    x = x.astype(self.dtype)
    x = conv(self.num_filters, (7, 7), (2, 2), padding=_pad(7), name='conv1')(x)
    x = nn.relu(norm(name='bn1')(x))
    x = max_pool_3x3_s2(x)
    block_cls = nn.remat(self.block_cls) if self.remat else self.block_cls
    stride = 4  # after the stem
    for i, num_blocks in enumerate(self.stage_sizes):
      downsample = i > 0 and stride < self.output_stride
      stride *= 2 if downsample else 1
      for j in range(num_blocks):
        strides = 2 if downsample and j == 0 else 1
        x = block_cls(self.num_filters * 2**i, conv=conv, norm=norm,
                           strides=strides, name=f'layer{i + 1}_{j}')(x)
    return x


OUTPUT_STRIDES = (8, 16, 32)

ResNet18 = functools.partial(ResNet, stage_sizes=(2, 2, 2, 2), block_cls=BasicBlock)
ResNet34 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block_cls=BasicBlock)
ResNet50 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block_cls=Bottleneck)
# Tests only: one basic block per stage, 8 stem channels (64 output channels).
ResNetTiny = functools.partial(ResNet, stage_sizes=(1, 1, 1, 1), block_cls=BasicBlock,
                               num_filters=8)

BACKBONES = {
    'resnet18': ResNet18,
    'resnet34': ResNet34,
    'resnet50': ResNet50,
    'resnet_tiny': ResNetTiny,
}
