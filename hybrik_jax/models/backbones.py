"""Every backbone by name: the ResNets (resnet.py) and the HRNets (hrnet.py).

Each maps images (B, S, S, 3) to stride-32 features (B, S/32, S/32, C) and has
an `out_channels` property giving C.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from hybrik_jax.models import hrnet
from hybrik_jax.models import resnet

BACKBONES = {**resnet.BACKBONES, **hrnet.BACKBONES}


def create_backbone(arch: str, dtype: Any = jnp.float32, **kwargs) -> nn.Module:
  """The backbone called `arch` (a key of BACKBONES); kwargs (remat, name,
  output_stride for ResNets) go to it."""
  if arch not in BACKBONES:
    raise ValueError(f'Unknown backbone {arch!r}; choose one of {sorted(BACKBONES)}')
  if 'output_stride' in kwargs and arch not in resnet.BACKBONES:
    raise ValueError(f'model.backbone_stride: only the ResNets have a choice of '
                     f'output stride; {arch} is stride 32')
  return BACKBONES[arch](dtype=dtype, **kwargs)
