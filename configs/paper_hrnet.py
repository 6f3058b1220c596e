r"""HybrIK-Transformer with HRNet-W48, the released best model (no 3DPW in training).

boreshkinai/hybrik-transformer configs/hybrik_transformer_smpl24_hrnet.yaml:
as configs/paper.py (Adam, inverse-square-root learning rate peaking at 5e-4
after 4000 warmup steps, 200 epochs, the same loss weights and transformer head,
H36M + COCO + MPI-INF-3DHP mix) but BACKBONE: HRNET, NUM_LAYERS: 48 (2048
feature channels, projected to d_model 512 like the ResNet's 512) and 56
images per GPU on 4 GPUs: global batch 224. The backbone starts from the
ImageNet HRNet-W48 (its stem and stages; the feature head starts afresh, as the
released init_weights loads only PRETRAINED_LAYERS).
Released model zoo: 3DPW 43.4 PA-MPJPE / 73.6 MPJPE, H36M 29.8 / 48.8.

Before training:
  python -m hybrik_jax.prepare_data --dataset h36m --manual_dir ...      (etc.)
  python -m hybrik_jax.convert --arch backbone \
      --torch_checkpoint hrnet_w48-8ef0771d.pth --out pretrained/hrnet_w48_imagenet

Run (8 accelerators; on fewer, keep batch_size: it is global):
  python -m hybrik_jax.train --config configs/paper_hrnet.py --workdir /tmp/hybrik_hrnet \
      --config.data.data_dir=$HOME/tensorflow_datasets
Then average the last epochs as the released average_model_hrnet_181_199.pth:
  python -m hybrik_jax.average_checkpoints --workdir /tmp/hybrik_hrnet --last 10 \
      --out /tmp/hybrik_hrnet_avg10
"""

import ml_collections

from hybrik_jax.training import train_config


def get_config() -> ml_collections.ConfigDict:
  """paper.py with the released HRNet-W48 settings."""
  config = train_config.sibling_config(__file__, 'paper')
  config.model.backbone = 'hrnet_w48'
  config.batch_size = 224  # WORLD_SIZE 4 x BATCH_SIZE 56
  config.init.backbone_checkpoint = 'pretrained/hrnet_w48_imagenet'
  return config
