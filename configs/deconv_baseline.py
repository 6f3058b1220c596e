r"""Baseline: HybrIK's original deconvolution head, all else as paper.py.

  python -m hybrik_jax.train --config configs/deconv_baseline.py \
      --workdir /tmp/hybrik_deconv
"""

import ml_collections

from hybrik_jax.training import train_config


def get_config() -> ml_collections.ConfigDict:
  config = train_config.sibling_config(__file__, 'paper')
  config.model.head = 'deconv'
  return config
