r"""The paper's setting with 3DPW added to the training mix (Table 2, "w/ 3DPW").

Mix H36M / COCO / MPI-INF-3DHP / 3DPW = 0.3 / 0.4 / 0.1 / 0.2 (HybrIK's
mix2_smpl_cam); evaluated on the 3DPW test split. Everything else as paper.py.

  python -m hybrik_jax.train --config configs/paper_w_pw3d.py \
      --workdir /tmp/hybrik_paper_w_pw3d
"""

import importlib.util
import os

import ml_collections

from hybrik_jax import input_pipeline


def _load_sibling(name: str):
  """configs/<name>.py as a module (configs/ need not be on sys.path)."""
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name + '.py')
  spec = importlib.util.spec_from_file_location(f'hybrik_configs_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def get_config() -> ml_collections.ConfigDict:
  config = _load_sibling('paper').get_config()
  config.data.train_datasets = input_pipeline.HYBRIK_MIX_W_PW3D
  config.data.eval_dataset = 'pw3d'
  config.data.eval_split = 'test'
  return config
