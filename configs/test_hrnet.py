r"""configs/test.py with the tiny HRNet backbone (4-32 channel branches, 64 features).

Covers a train step, checkpoint and evaluation with an HRNet on synthetic_humans/tiny:
  python -m hybrik_jax.train --config configs/test_hrnet.py --workdir /tmp/hybrik_test_hrnet
"""

import importlib.util
import os

import ml_collections


def _load_sibling(name: str):
  """configs/<name>.py as a module (configs/ need not be on sys.path)."""
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name + '.py')
  spec = importlib.util.spec_from_file_location(f'hybrik_configs_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def get_config() -> ml_collections.ConfigDict:
  config = _load_sibling('test').get_config()
  config.model.backbone = 'hrnet_tiny'
  return config
