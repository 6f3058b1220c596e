r"""A tiny HybrIK-X (SMPL-X) model for tests: configs/test.py with the tiny HRNet,
body 'smplx', head 'heatmap' (HRNetSMPLXCamKid's shape: 71 joints' 2.5D heatmaps,
8 depth bins, 64 px), the SMPL-X criterion of training/smplx_losses.py and
HybrIK-X's optimiser settings (configs/hybrik_x_hrw48_smplx_kid.py).

Trains and validates on synthetic_whole_body/tiny (8 + 4 renders of the synthetic
SMPL-X body, built on first use) with the synthetic SMPL-X body:
  python -m hybrik_jax.train --config configs/test_smplx.py --workdir /tmp/hybrik_x_test
  python -m hybrik_jax.evaluate --checkpoint /tmp/hybrik_x_test
"""

import ml_collections

from hybrik_jax.training import smplx_losses
from hybrik_jax.training import train_config


def get_config() -> ml_collections.ConfigDict:
  config = train_config.sibling_config(__file__, 'test')
  model = config.model
  model.backbone = 'hrnet_tiny'
  model.head = 'heatmap'
  model.body = 'smplx'
  model.depth_dim = 8
  model.ik_convention = 'hybrik'
  model.predict_camera = True
  model.init_cam = (0.9,)
  model.focal_length = 1000.0
  config.data.camera_targets = True
  config.data.focal_length = 1000.0
  config.batch_size = 2
  config.data.train_datasets = (('synthetic_whole_body/tiny', 1.0),)
  config.data.eval_dataset = 'synthetic_whole_body/tiny'
  config.data.eval_split = 'validation'
  config.data.build_if_missing = True
  config.evals.batch_size = 2
  config.loss = ml_collections.ConfigDict(dict(smplx_losses.SMPLX_LOSS_WEIGHTS))
  config.optim.schedule = 'step'
  config.optim.lr_step_epochs = (1,)
  config.optim.warmup_steps = 0
  config.optim.grad_clip_per_parameter_norm = 5.0
  return config
