r"""configs/test.py with the Transformer head's camera token (model.predict_camera).

The tiny HybrIK-Transformer, its 49th target token giving a camera (s, tx, ty)
and per-joint sigma, trained with the Transformer's loss plus the camera
token's terms (camera_losses.camera_token_loss) on the camera preset's
targets (data.camera_targets); tests/test_camera_token.py trains it:
  python -m hybrik_jax.train --config configs/test_cam_token.py --workdir /tmp/hybrik_test_cam_token
"""

import ml_collections

from hybrik_jax.training import camera_losses
from hybrik_jax.training import train_config


def get_config() -> ml_collections.ConfigDict:
  config = train_config.sibling_config(__file__, 'test')
  config.model.predict_camera = True
  config.model.focal_length = 1000.0
  config.data.camera_targets = True
  config.data.focal_length = 1000.0
  config.loss.update(camera_losses.CAMERA_TOKEN_LOSS_WEIGHTS)
  return config
