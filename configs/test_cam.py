r"""A tiny HybrIK camera model for tests: configs/test.py with a camera-predicting
deconv head (Simple3DPoseBaseSMPLCam's shape, 64 px, 8 depth bins) trained with
HybrIK's camera loss and camera-preset targets (configs/hybrik_res34_cam.py).

  python -m hybrik_jax.train --config configs/test_cam.py --workdir /tmp/hybrik_test_cam
"""

import ml_collections

from hybrik_jax.training import camera_losses
from hybrik_jax.training import train_config


def get_config() -> ml_collections.ConfigDict:
  config = train_config.sibling_config(__file__, 'test')
  model = config.model
  model.head = 'deconv'
  model.ik_convention = 'hybrik'
  model.fc_dropout = 0.0
  # The camera models' fields (models/config.py).
  model.predict_camera = True
  model.focal_length = 1000.0
  config.data.camera_targets = True
  config.data.focal_length = 1000.0
  config.loss = ml_collections.ConfigDict(dict(camera_losses.CAMERA_LOSS_WEIGHTS))
  config.optim.schedule = 'step'
  config.optim.lr_step_epochs = (1,)
  config.optim.warmup_steps = 0
  config.optim.grad_clip_per_parameter_norm = 5.0
  return config
