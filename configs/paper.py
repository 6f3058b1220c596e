r"""The paper's setting: HybrIK-Transformer, ResNet-34, 256x256 (Table 1).

Adam, inverse-square-root learning rate (peak 5e-4 after 4000 linear warmup
steps), global batch 256 (4 GPUs x 64 in the released code), 200 epochs;
transformer head L=6 blocks, h=8 heads, d=512, dropout 0.1, residual FFN of 3
layers of width 512, retained patches uniform in [0.2, 1.0]; H36M + COCO +
MPI-INF-3DHP mix (0.4 / 0.5 / 0.1); ImageNet-initialised ResNet-34.

Before training:
  python -m hybrik_jax.prepare_data --dataset h36m --manual_dir ...      (etc.)
  python -m hybrik_jax.convert --arch backbone \
      --torch-checkpoint resnet34-b627a593.pth --out pretrained/resnet34_imagenet

Run (8 accelerators; on fewer, keep batch_size: it is global):
  python -m hybrik_jax.train --config configs/paper.py --workdir /tmp/hybrik_paper \
      --config.data.data_dir=$HOME/tensorflow_datasets
Then average the last 10 epochs as the paper reports:
  python -m hybrik_jax.average_checkpoints --workdir /tmp/hybrik_paper --last 10 \
      --out /tmp/hybrik_paper_avg10
"""

import ml_collections

from hybrik_jax import input_pipeline
from hybrik_jax import train_config
from hybrik_jax.models import config as model_config_lib


def get_config() -> ml_collections.ConfigDict:
  """The paper's ResNet-34 HybrIK-Transformer training config."""
  config = train_config.base_config()
  config.seed = 0
  config.model = model_config_lib.get_model_config(
      backbone='resnet34', head='transformer', input_size=256,
      num_blocks=6, num_heads=8, d_model=512, ffn_layers=3, ffn_width=512,
      dropout=0.1, retain_low=0.2, retain_high=1.0,
      # The released model's SMPL layer: its train-mode IK in the train step (the
      # theta loss), eval mode at evaluation; depth unit 2.0 m (README "Fidelity").
      ik_convention='released')
  config.batch_size = 256
  config.num_epochs = 200
  config.steps_per_epoch = -1  # HybrIK's mix epoch: 2 x the largest dataset

  config.data.train_datasets = input_pipeline.HYBRIK_MIX  # H36M, COCO, 3DHP
  config.data.eval_dataset = 'h36m'
  config.data.eval_split = 'test'
  config.data.worker_count = 8

  # HybrIK-Transformer's loss weights (hybrik_transformer_smpl24.yaml).
  config.loss.uvd = 1.0
  config.loss.beta = 1.0
  config.loss.theta = 0.01
  config.loss.twist = 0.01
  # The yaml's PHI_REG_WEIGHT (1e-4) is never used by the released criterion.
  config.loss.phi_norm = 0.0

  config.optim.optimizer = 'adam'
  config.optim.peak_lr = 5e-4
  config.optim.warmup_steps = 4000

  config.smpl.model_path = 'model_files/basicModel_neutral_lbs_10_207_0_v1.0.0.pkl'
  config.smpl.h36m_regressor_path = 'model_files/J_regressor_h36m.npy'
  config.init.backbone_checkpoint = 'pretrained/resnet34_imagenet'

  config.evals.every_steps = -1  # each epoch
  config.evals.batch_size = 64
  config.log_every_steps = 100
  config.checkpoint_every_steps = 1000
  config.keep_epochs = 10
  return config
