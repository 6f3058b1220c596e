"""HRNet backbones (Sun et al. 2019) with the classification-style feature head.

What HybrIK-Transformer uses with `BACKBONE: HRNET` (its hrnet.py with
w48.yaml, generate_feat=True, generate_hm=False): a stride-4 stem (two 3x3
stride-2 convolutions), stage 1 of Bottleneck blocks, then stages 2-4 of
multi-resolution modules (parallel branches at strides 4, 8, 16, 32, each a
chain of BasicBlocks, fused after every module by summing every branch
resampled to every resolution), and finally the feature head: each branch
widened by one Bottleneck ("incre"), merged from fine to coarse with strided
3x3 convolutions ("downsamp"), and a 1x1 convolution to 2048 channels. At
256 x 256 input the output is (B, 8, 8, 2048).

NHWC. Parameter names mirror the PyTorch state dict with every index folded
into the module name, so converting is a renaming:
  conv1, bn1, conv2, bn2                 stem
  layer1_{j}/...                         stage-1 Bottlenecks (resnet.Bottleneck names)
  transition{t}_{i}_0 / _1               conv / bn widening existing branch i
  transition{t}_{i}_{k}_0 / _1           k-th strided conv / bn creating branch i
  stage{s}_{m}/branches_{b}_{j}/...      BasicBlock j of branch b in module m
  stage{s}_{m}/fuse_layers_{i}_{j}_0/_1  1x1 conv / bn bringing branch j > i to i
  stage{s}_{m}/fuse_layers_{i}_{j}_{k}_0/_1  k-th strided 3x3 conv / bn, j < i
  incre_modules_{i}_0/...                the head's Bottleneck on branch i
  downsamp_modules_{i}_0 / _1            strided 3x3 conv (with bias) / bn
  final_feat_layer_0 / _1                1x1 conv (with bias) / bn
Padding is explicit and symmetric as in PyTorch. BatchNorm: momentum 0.9 /
eps 1e-5 (PyTorch's 0.1 / 1e-5). Convolutions start from N(0, 0.001^2) as the
released `init_weights` sets them (BatchNorm renormalises in training).
"""

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from hybrik_jax.models import resnet

ModuleDef = Any
# (modules, blocks per branch, channels per branch) of one stage.
StageSpec = tuple[int, tuple[int, ...], tuple[int, ...]]

# Top-level modules of the feature head. The released training initialises
# them afresh (its ImageNet checkpoint's classification head is not loaded).
HEAD_MODULE_PREFIXES = ('incre_modules_', 'downsamp_modules_', 'final_feat_layer_')

# The released init_weights: every convolution ~ N(0, 0.001^2), biases 0.
conv_init = nn.initializers.normal(stddev=0.001)


def _pad(k: int) -> tuple[tuple[int, int], tuple[int, int]]:
  p = k // 2
  return ((p, p), (p, p))


def _upsample_nearest(x: jnp.ndarray, factor: int) -> jnp.ndarray:
  """(B, H, W, C) -> (B, factor H, factor W, C), each pixel repeated."""
  return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


class HighResolutionModule(nn.Module):
  """Parallel BasicBlock branches, then a full fusion across resolutions.

  Branch b has `channels[b]` channels at stride 4 * 2**b. Output branch i is
  relu(sum_j resample_{j->i}(branch_j)): j > i by 1x1 conv + bn + nearest
  upsampling, j < i by i - j strided 3x3 conv + bn steps (ReLU between them).
  """
  num_blocks: tuple[int, ...]
  channels: tuple[int, ...]
  conv: ModuleDef
  norm: ModuleDef
  block_cls: Any = resnet.BasicBlock

  @nn.compact
  def __call__(self, xs: Sequence[jnp.ndarray]) -> list[jnp.ndarray]:
    n = len(self.channels)
    if len(xs) != n or len(self.num_blocks) != n:
      raise ValueError(f'HighResolutionModule: {len(xs)} inputs, {len(self.num_blocks)} '
                       f'block counts, {n} channel counts; they must agree')
    xs = list(xs)
    for b in range(n):
      for j in range(self.num_blocks[b]):
        xs[b] = self.block_cls(self.channels[b], conv=self.conv, norm=self.norm,
                               name=f'branches_{b}_{j}')(xs[b])
    if n == 1:
      return xs
    fused = []
    for i in range(n):
      y = None
      for j in range(n):
        if j == i:
          t = xs[j]
        elif j > i:
          t = self.conv(self.channels[i], (1, 1), padding='VALID',
                        name=f'fuse_layers_{i}_{j}_0')(xs[j])
          t = self.norm(name=f'fuse_layers_{i}_{j}_1')(t)
          t = _upsample_nearest(t, 2**(j - i))
        else:
          t = xs[j]
          for k in range(i - j):
            last = k == i - j - 1
            t = self.conv(self.channels[i] if last else self.channels[j], (3, 3), (2, 2),
                          padding=_pad(3), name=f'fuse_layers_{i}_{j}_{k}_0')(t)
            t = self.norm(name=f'fuse_layers_{i}_{j}_{k}_1')(t)
            if not last:
              t = nn.relu(t)
        y = t if y is None else y + t
      fused.append(nn.relu(y))
    return fused


class HRNet(nn.Module):
  """HRNet trunk + the released feature head.

  Attributes:
    stages: StageSpec of stages 2, 3, 4, e.g. W48:
      ((1, (4, 4), (48, 96)), (4, (4,) * 3, (48, 96, 192)),
       (3, (4,) * 4, (48, 96, 192, 384))).
    stem_channels: stem width and stage-1 Bottleneck planes (64 released).
    stem_blocks: stage-1 Bottlenecks (4 released).
    head_channels: Bottleneck planes of the incre modules per branch (the
      branch then has 4x that many channels); (32, 64, 128, 256) released.
    feature_channels: output channels (2048 released).
    dtype: compute dtype; parameters are float32.
    remat: recompute each residual block's activations in the backward pass
      (nn.remat), as resnet.ResNet does. Same parameters and outputs.
  """
  stages: tuple[StageSpec, ...]
  stem_channels: int = 64
  stem_blocks: int = 4
  head_channels: tuple[int, ...] = (32, 64, 128, 256)
  feature_channels: int = 2048
  dtype: Any = jnp.float32
  remat: bool = False

  @property
  def out_channels(self) -> int:
    return self.feature_channels

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool, return_branch0: bool = False):
    """Images (B, H, W, 3), H and W multiples of 32 -> (B, H/32, W/32, feature_channels).

    With return_branch0: (branch 0 of stage 4 (B, H/4, W/4, stages[-1][2][0]),
    the features), for the heatmap layer of HybrIK's HRNetSMPLCam.
    """
    if x.ndim != 4 or x.shape[1] % 32 or x.shape[2] % 32:
      raise ValueError(f'HRNet needs (B, H, W, C) images with H, W multiples of 32; '
                       f'got {x.shape}')
    num_branches = len(self.stages[-1][2])
    if len(self.head_channels) != num_branches:
      raise ValueError(f'HRNet: {len(self.head_channels)} head_channels for '
                       f'{num_branches} final branches')
    conv = functools.partial(nn.Conv, use_bias=False, dtype=self.dtype, kernel_init=conv_init)
    norm = functools.partial(nn.BatchNorm, use_running_average=not train,
                             momentum=0.9, epsilon=1e-5, dtype=self.dtype)
    basic = nn.remat(resnet.BasicBlock) if self.remat else resnet.BasicBlock
    bottleneck = nn.remat(resnet.Bottleneck) if self.remat else resnet.Bottleneck

    x = x.astype(self.dtype)
    for i in (1, 2):
      x = conv(self.stem_channels, (3, 3), (2, 2), padding=_pad(3), name=f'conv{i}')(x)
      x = nn.relu(norm(name=f'bn{i}')(x))
    for j in range(self.stem_blocks):
      x = bottleneck(self.stem_channels, conv=conv, norm=norm, name=f'layer1_{j}')(x)

    xs = [x]
    previous = (self.stem_channels * resnet.Bottleneck.expansion,)
    for s, (num_modules, num_blocks, channels) in enumerate(self.stages, start=2):
      xs = self._transition(xs, previous, channels, conv, norm, f'transition{s - 1}')
      for m in range(num_modules):
        xs = HighResolutionModule(tuple(num_blocks), tuple(channels), conv=conv, norm=norm,
                                  block_cls=basic, name=f'stage{s}_{m}')(xs)
      previous = tuple(channels)

    # Feature head: widen each branch, merge fine -> coarse, project.
    y = None
    for i, planes in enumerate(self.head_channels):
      t = bottleneck(planes, conv=conv, norm=norm, name=f'incre_modules_{i}_0')(xs[i])
      if y is not None:
        y = nn.Conv(planes * resnet.Bottleneck.expansion, (3, 3), (2, 2), padding=_pad(3),
                    dtype=self.dtype, kernel_init=conv_init,
                    name=f'downsamp_modules_{i - 1}_0')(y)
        y = nn.relu(norm(name=f'downsamp_modules_{i - 1}_1')(y))
        t = t + y
      y = t
    y = nn.Conv(self.feature_channels, (1, 1), padding='VALID', dtype=self.dtype,
                kernel_init=conv_init, name='final_feat_layer_0')(y)
    y = nn.relu(norm(name='final_feat_layer_1')(y))
    return (xs[0], y) if return_branch0 else y

  def _transition(self, xs, previous, channels, conv, norm, prefix):
    """Branches of the next stage from those of the last one."""
    out = []
    for i, c in enumerate(channels):
      if i < len(previous):
        if c == previous[i]:
          out.append(xs[i])
          continue
        if len(previous) > 1:
          # The released forward feeds the lowest-resolution branch here, which
          # only type-checks when widths agree; its configs never change an
          # existing branch's width after stage 2.
          raise ValueError(f'HRNet {prefix}: branch {i} changes width {previous[i]} -> {c}; '
                           'only the first transition may widen an existing branch')
        t = conv(c, (3, 3), padding=_pad(3), name=f'{prefix}_{i}_0')(xs[i])
        out.append(nn.relu(norm(name=f'{prefix}_{i}_1')(t)))
      else:
        t = xs[-1]
        steps = i + 1 - len(previous)
        for k in range(steps):
          width = c if k == steps - 1 else previous[-1]
          t = conv(width, (3, 3), (2, 2), padding=_pad(3), name=f'{prefix}_{i}_{k}_0')(t)
          t = nn.relu(norm(name=f'{prefix}_{i}_{k}_1')(t))
        out.append(t)
    return out


def hrnet_stages(width: int, modules=(1, 4, 3), blocks: int = 4) -> tuple[StageSpec, ...]:
  """StageSpecs of HRNet-W{width}: branch b has width * 2**b channels."""
  return tuple((m, (blocks,) * (s + 2), tuple(width * 2**b for b in range(s + 2)))
               for s, m in enumerate(modules))


HRNetW32 = functools.partial(HRNet, stages=hrnet_stages(32))
HRNetW48 = functools.partial(HRNet, stages=hrnet_stages(48))
# Tests only: every module kind (both transition kinds, up- and multi-step
# down-fusion, two modules in a stage, the feature head) at a few channels.
HRNetTiny = functools.partial(
    HRNet, stages=((1, (1, 1), (4, 8)), (2, (1, 1, 1), (4, 8, 16)),
                   (1, (1, 1, 1, 1), (4, 8, 16, 32))),
    stem_channels=8, stem_blocks=1, head_channels=(4, 8, 16, 32), feature_channels=64)

BACKBONES = {
    'hrnet_w32': HRNetW32,
    'hrnet_w48': HRNetW48,
    'hrnet_tiny': HRNetTiny,
}
