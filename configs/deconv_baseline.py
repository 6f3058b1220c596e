r"""Baseline: HybrIK's original deconvolution head, all else as paper.py.

  python -m hybrik_jax.train --config configs/deconv_baseline.py \
      --workdir /tmp/hybrik_deconv
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
  config = _load_sibling('paper').get_config()
  config.model.head = 'deconv'
  return config
