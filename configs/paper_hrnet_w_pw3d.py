r"""HRNet-W48 HybrIK-Transformer with 3DPW in the training mix (the released best).

boreshkinai/hybrik-transformer configs/hybrik_transformer_smpl24_hrnet_w_pw3d.yaml:
configs/paper_hrnet.py with the H36M / COCO / MPI-INF-3DHP / 3DPW mix
(mix_smpl_w_pw3d), evaluated on the 3DPW test split.
Released model zoo: 3DPW 42.3 PA-MPJPE / 71.6 MPJPE, H36M 29.5 / 47.5.

  python -m hybrik_jax.convert --arch backbone \
      --torch_checkpoint hrnet_w48-8ef0771d.pth --out pretrained/hrnet_w48_imagenet
  python -m hybrik_jax.train --config configs/paper_hrnet_w_pw3d.py \
      --workdir /tmp/hybrik_hrnet_w_pw3d --config.data.data_dir=$HOME/tensorflow_datasets
"""

import ml_collections

from hybrik_jax.data import input_pipeline
from hybrik_jax.training import train_config


def get_config() -> ml_collections.ConfigDict:
  config = train_config.sibling_config(__file__, 'paper_hrnet')
  config.data.train_datasets = input_pipeline.HYBRIK_MIX_W_PW3D
  config.data.eval_dataset = 'pw3d'
  config.data.eval_split = 'test'
  return config
