r"""HybrIK's HRNet-W48 camera model, w/o 3DPW (its model zoo's HRNet-W48 checkpoint).

Reproduces Jeff-sjtu/HybrIK @ 9b8681d
configs/256x192_adam_lr1e-3-hrw48_cam_2x_wo_pw3d.yaml (scripts/train_smpl_cam.py).
Released: 3DPW 48.6 PA-MPJPE / 88.0 MPJPE, H36M 29.5 / 50.4. Line by line,
where it differs from configs/hybrik_res34_cam.py (whose docstring covers the
shared lines: augmentation, FOCAL_LENGTH, IMAGE_SIZE, HEATMAP_SIZE,
NUM_JOINTS, PRESET, DEPTH_DIM, NORM_TYPE, BBOX_3D_SHAPE, LOSS, optimizer,
epochs, clipping):

  DATASET.DATASET 'mix_smpl_cam'        data.train_datasets = HYBRIK_MIX: H36M /
                                        COCO / 3DHP 0.4 / 0.5 / 0.1 (MixDatasetCam)
  SET_LIST h36m TEST_SET Sample_20      data.eval_dataset h36m, test split
  MODEL.TYPE HRNetSMPLCam               model: backbone hrnet_w48, head 'heatmap',
                                        predict_camera (camera (s,) only, refined
                                        at evaluation; no translation loss)
  HR_PRETRAINED pose_hrnet_w48_256x192  init.backbone_checkpoint: the HRNet-W48
                                        backbone converted with convert --arch
                                        backbone (the release starts from the COCO
                                        pose-estimation HRNet; an ImageNet one is a
                                        different start)
  HRNET_TYPE 48                         model.backbone 'hrnet_w48'
  LOSS.ELEMENTS USE_LAPLACE True        the Laplace uvd term (always, in this loss)
  TRAIN.WORLD_SIZE 4 x BATCH_SIZE 36    batch_size 144 (global)
  LR_STEP 60 80                         optim.lr_step_epochs (60, 80)

  python -m hybrik_jax.train --config configs/hybrik_hrw48_cam_wo_pw3d.py \
      --workdir /tmp/hybrik_hrw48_cam --config.data.data_dir=$HOME/tensorflow_datasets
"""

import ml_collections

from hybrik_jax.data import input_pipeline
from hybrik_jax.training import train_config


def get_config() -> ml_collections.ConfigDict:
  module = _res34_module()
  config = module.camera_training(train_config.base_config())
  config.model = module.camera_model_config('hrnet_w48', 'heatmap')
  config.batch_size = 144  # WORLD_SIZE 4 x BATCH_SIZE 36
  config.optim.lr_step_epochs = (60, 80)
  config.data.train_datasets = input_pipeline.HYBRIK_MIX
  config.data.eval_dataset = 'h36m'
  config.data.eval_split = 'test'
  config.init.backbone_checkpoint = 'pretrained/hrnet_w48_pose'
  return config


def _res34_module():
  """configs/hybrik_res34_cam.py as a module (its shared helpers)."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'hybrik_res34_cam.py')
  spec = importlib.util.spec_from_file_location('hybrik_config_hybrik_res34_cam', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module
