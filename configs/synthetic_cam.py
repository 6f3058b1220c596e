r"""configs/synthetic.py with the Transformer head's camera token (beyond both releases).

  python -m hybrik_jax.train --config configs/synthetic_cam.py --workdir /tmp/hybrik_synthetic_cam

The CPU demo's small HybrIK-Transformer (128 px, tiny ResNet, 2 blocks) with
model.predict_camera: a 49th target token gives a weak-perspective camera
(s, tx, ty) around (0.9, 0, 0) and each keypoint token a sigma, so the model
places the body in the full frame (models.inference.predict with bboxes and
img_center: cam_root, transl), the scale refined at evaluation as
HRNetSMPLCam's (models.camera.update_scale). Trained with the Transformer's
loss plus camera_losses.camera_token_loss (camera scale and translation MSE
against the camera preset's fitted camera, data.camera_targets, focal 1000 px
per 256 px crop; the Laplace NLL training the sigma). docs/EXPERIMENTS.md has
its root translation error on synthetic_humans/small validation against the
demo's 2D fit (benchmarks/camera_placement.py).
"""

import ml_collections

from hybrik_jax.training import train_config


def get_config() -> ml_collections.ConfigDict:
  return train_config.with_camera_token(train_config.sibling_config(__file__, 'synthetic'))
