r"""The paper's setting with 3DPW added to the training mix (Table 2, "w/ 3DPW").

Mix H36M / COCO / MPI-INF-3DHP / 3DPW = 0.3 / 0.4 / 0.1 / 0.2 (HybrIK's
mix2_smpl_cam); evaluated on the 3DPW test split. Everything else as paper.py.

  python -m hybrik_jax.train --config configs/paper_w_pw3d.py \
      --workdir /tmp/hybrik_paper_w_pw3d
"""

import ml_collections

from hybrik_jax.data import input_pipeline
from hybrik_jax.training import train_config


def get_config() -> ml_collections.ConfigDict:
  config = train_config.sibling_config(__file__, 'paper')
  config.data.train_datasets = input_pipeline.HYBRIK_MIX_W_PW3D
  config.data.eval_dataset = 'pw3d'
  config.data.eval_split = 'test'
  return config
