r"""Parameter counts and XLA FLOPs of the networks at 256 x 256.

  python -m benchmarks.model_numbers [--input-size 256] [--backbone resnet34|hrnet_w48|...]

Prints, per image (batch 1, eval mode, all patches), the parameter count and
the XLA cost-analysis FLOPs (a multiply-add counts 2) of the backbone, of each
lifting head on the backbone's feature map, and of the whole network, beside
what the paper reports. FLOPs come from the lowered HLO (no compilation), so
the numbers do not depend on the machine.
"""

import argparse
import os

os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from hybrik_jax import models  # pylint: disable=g-import-not-at-top,wrong-import-position
from hybrik_jax.models import backbones  # pylint: disable=g-import-not-at-top,wrong-import-position
from hybrik_jax.models import deconv_head  # pylint: disable=g-import-not-at-top,wrong-import-position
from hybrik_jax.models import transformer  # pylint: disable=g-import-not-at-top,wrong-import-position

# What the paper (Oreshkin 2022, section 2) says about cost (ResNet-34): no
# parameter or FLOP counts, only training memory and speed on 4x M40, batch 256.
PAPER_NOTES = {
    'transformer': '28 GB total GPU memory, 63 min/epoch (paper)',
    'deconv': '60 GB total GPU memory, 82 min/epoch (paper)',
}


def param_count(tree) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))


def flops(fn, *args) -> float:
  """XLA cost-analysis FLOPs of fn(*args) (abstract args allowed)."""
  lowered = jax.jit(fn).lower(*args)
  cost = lowered.cost_analysis()
  if not cost or 'flops' not in cost:
    cost = lowered.compile().cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0]
  return float(cost['flops'])


def measure(module, inputs, **apply_kw):
  """(parameters, FLOPs) of module on abstract inputs, eval mode."""
  variables = jax.eval_shape(lambda x: module.init(jax.random.key(0), x, train=False), inputs)
  n = param_count(variables['params'])
  f = flops(lambda v, x: module.apply(v, x, train=False, **apply_kw), variables, inputs)
  return n, f


def main(argv=None):
  parser = argparse.ArgumentParser(prog='python -m benchmarks.model_numbers')
  parser.add_argument('--input-size', type=int, default=256)
  parser.add_argument('--backbone', default='resnet34')
  args = parser.parse_args(argv)
  size = args.input_size
  cfg = models.get_model_config(input_size=size, backbone=args.backbone)
  images = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)

  backbone = backbones.create_backbone(cfg.backbone)
  c = backbone.out_channels
  feats = jax.ShapeDtypeStruct((1, size // 32, size // 32, c), jnp.float32)
  rows = [(f'backbone {cfg.backbone}', *measure(backbone, images), '')]

  head_kw = dict(d_model=cfg.d_model, num_heads=cfg.num_heads, num_blocks=cfg.num_blocks,
                 ffn_layers=cfg.ffn_layers, ffn_width=cfg.ffn_width, dropout=cfg.dropout)
  rows.append(('transformer head (48 tokens, paper)',
               *measure(transformer.TransformerHead(**head_kw), feats),
               f'L={cfg.num_blocks}, h={cfg.num_heads}, d={cfg.d_model}'))
  rows.append(('transformer head (+5 leaf tokens, released)',
               *measure(transformer.TransformerHead(predict_leaf=True, **head_kw), feats), ''))
  deconv_kw = dict(deconv_channels=tuple(cfg.deconv_channels), depth_dim=cfg.depth_dim,
                   fc_width=cfg.fc_width)
  rows.append(('deconv head (HybrIK, + leaf fc)',
               *measure(deconv_head.DeconvHead(predict_leaf=True, **deconv_kw), feats),
               f'{cfg.depth_dim}x{size // 4}x{size // 4} heatmaps'))
  for head in ('transformer', 'deconv'):
    model = models.create_model(models.get_model_config(
        input_size=size, backbone=cfg.backbone, head=head, predict_leaf=head == 'deconv'))
    rows.append((f'whole model: {cfg.backbone} + {head}', *measure(model, images),
                 PAPER_NOTES[head] if cfg.backbone == 'resnet34' else ''))

  print(f'Per image, {size}x{size} input, eval mode (XLA cost analysis; multiply-add = 2 FLOPs)')
  print(f'| {"network":<46} | {"parameters":>12} | {"GFLOPs":>8} | notes')
  print(f'|{"-" * 48}|{"-" * 14}|{"-" * 10}|------')
  for name, n, f, note in rows:
    print(f'| {name:<46} | {n:>12,} | {f / 1e9:>8.2f} | {note}')


if __name__ == '__main__':
  main()
