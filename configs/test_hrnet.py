r"""configs/test.py with the tiny HRNet backbone (4-32 channel branches, 64 features).

Covers a train step, checkpoint and evaluation with an HRNet on synthetic_humans/tiny:
  python -m hybrik_jax.train --config configs/test_hrnet.py --workdir /tmp/hybrik_test_hrnet
"""

import ml_collections

from hybrik_jax.training import train_config


def get_config() -> ml_collections.ConfigDict:
  config = train_config.sibling_config(__file__, 'test')
  config.model.backbone = 'hrnet_tiny'
  return config
