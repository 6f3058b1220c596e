r"""configs/test.py with the Transformer head's camera token (model.predict_camera).

The tiny HybrIK-Transformer, its 49th target token giving a camera (s, tx, ty)
and per-joint sigma, trained with the Transformer's loss plus the camera
token's terms (camera_losses.camera_token_loss) on the camera preset's
targets (data.camera_targets); tests/test_camera_token.py trains it:
  python -m hybrik_jax.train --config configs/test_cam_token.py --workdir /tmp/hybrik_test_cam_token
"""

import ml_collections

from hybrik_jax.training import train_config


def get_config() -> ml_collections.ConfigDict:
  return train_config.with_camera_token(train_config.sibling_config(__file__, 'test'))
