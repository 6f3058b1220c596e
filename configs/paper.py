r"""The paper's setting: HybrIK-Transformer, ResNet-34, 256x256 (Table 1).

Adam, inverse-square-root learning rate (peak 5e-4 after 4000 linear warmup
steps), global batch 256 (4 GPUs x 64 in the released code), 200 epochs;
transformer head L=6 blocks, h=8 heads, d=512, dropout 0.1, residual FFN of 3
layers of width 512, retained patches uniform in [0.2, 1.0]; H36M + COCO +
MPI-INF-3DHP mix (0.4 / 0.5 / 0.1); ImageNet-initialised ResNet-34.

Before training:
  python -m hybrik_jax.prepare_data --dataset h36m --manual_dir ...      (etc.)
  python -m hybrik_jax.convert --arch backbone \
      --torch_checkpoint resnet34-b627a593.pth --out pretrained/resnet34_imagenet

Run (8 accelerators; on fewer, keep batch_size: it is global):
  python -m hybrik_jax.train --config configs/paper.py --workdir /tmp/hybrik_paper \
      --config.data.data_dir=$HOME/tensorflow_datasets
Then average the last 10 epochs as the paper reports:
  python -m hybrik_jax.average_checkpoints --workdir /tmp/hybrik_paper --last 10 \
      --out /tmp/hybrik_paper_avg10
"""

import ml_collections

from hybrik_jax.training import train_config


def get_config() -> ml_collections.ConfigDict:
  """The paper's ResNet-34 HybrIK-Transformer training config.

  `train_config.base_config()` is the paper's setting (model, batch 256, 200
  epochs, the H36M/COCO/3DHP mix, validation on h36m test, the loss weights,
  Adam with peak 5e-4 after 4000 warmup steps, evals each epoch, 10 epoch
  checkpoints kept); only what differs from it is set here.
  """
  config = train_config.base_config()
  # The released model's SMPL layer: its train-mode IK in the train step (the
  # theta loss, with the released quaternion sign), eval mode at evaluation;
  # depth unit 2.0 m (docs/FIDELITY.md, "The IK convention").
  config.model.ik_convention = 'released'
  # The released HybrikTransformerSMPL24 always has the 5 leaf-rotation tokens
  # (53 target tokens, not the paper's 48): under 'released' IK, joints 10, 11,
  # 15 and 22 take their rotations from them (identity without them).
  config.model.predict_leaf = True
  config.data.worker_count = 8
  config.smpl.model_path = 'model_files/basicModel_neutral_lbs_10_207_0_v1.0.0.pkl'
  config.smpl.h36m_regressor_path = 'model_files/J_regressor_h36m.npy'
  config.init.backbone_checkpoint = 'pretrained/resnet34_imagenet'
  config.log_every_steps = 100
  return config
