r"""HybrIK's ResNet-34 camera model, w/ 3DPW (its model zoo's ResNet-34 checkpoint).

Reproduces Jeff-sjtu/HybrIK @ 9b8681d
configs/256x192_adam_lr1e-3-res34_smpl_3d_cam_2x_mix_w_pw3d.yaml (trained by
scripts/train_smpl_cam.py). Released: 3DPW 44.5 PA-MPJPE / 72.4 MPJPE, H36M
33.8 / 55.5. The yaml, line by line:

  DATASET.DATASET 'mix2_smpl_cam'       data.train_datasets = HYBRIK_MIX_W_PW3D:
                                        H36M / COCO / 3DHP / 3DPW 0.3 / 0.4 / 0.1 /
                                        0.2 (MixDataset2Cam; it loads 3DPW's
                                        3DPW_train_new though SET_LIST names three)
  SET_LIST h36m TEST_SET Sample_20      the trainer validates on one split: 3DPW
                                        test here (data.eval_dataset; the released
                                        script validates on H36M and 3DPW)
  SET_LIST TRAIN_SETs                   the prepared tfds datasets (docs/DATASETS.md)
  PROTOCOL 2                            evaluation protocol (PA on H36M), evaluate's
  FLIP True                             data.flip_prob: 0.5 for COCO and 3DHP, and
                                        0.25 for H36M and 3DPW (the camera preset's
                                        SMPL branch flips when random() > 0.75):
                                        data.flip_prob_per_dataset
  ROT_FACTOR 30                         data.rot_factor 30 (with prob 0.6: rot_prob)
  SCALE_FACTOR 0.3                      data.scale_factor 0.3
  NUM_JOINTS_HALF_BODY 8,
  PROB_HALF_BODY -1                     half-body transform off (not implemented)
  COLOR_FACTOR 0.2                      data.color_factor 0.2
  OCCLUSION True                        data.occlusion True
  MODEL.TYPE Simple3DPoseBaseSMPLCam    model: backbone resnet34, head 'deconv',
                                        predict_camera (camera (s, tx, ty))
  PRETRAINED '', TRY_LOAD ''            ImageNet ResNet-34 (the class loads
                                        torchvision's): init.backbone_checkpoint
  FOCAL_LENGTH 1000                     model.focal_length, data.focal_length 1000
  IMAGE_SIZE 256 256                    model.input_size 256 (the file name's
                                        256x192 is not the input)
  HEATMAP_SIZE 64 64                    the deconv head's 64x64 output (stride 4)
  NUM_JOINTS 29                         the camera heads' 29 joints
  NUM_DECONV_FILTERS 256 x 3            model.deconv_channels
  NUM_LAYERS 34                         model.backbone 'resnet34'
  EXTRA SIGMA 2, BACKBONE, CROP,
  AUGMENT                               unused by these classes
  EXTRA.PRESET simple_smpl_3d_cam       data.camera_targets True (data/targets.py)
  EXTRA.DEPTH_DIM 64                    model.depth_dim 64
  POST.NORM_TYPE softmax                the heads' softmax normalisation
  BBOX_3D_SHAPE 2200 x 3                depth factor 2.2 m: ik_convention 'hybrik'
                                        (the stored examples' depth_factor is 2.2)
  LOSS.TYPE LaplaceLossDimSMPLCam       training/camera_losses.camera_loss
  ELEMENTS BETA 1, THETA 0.01,
  TWIST 1, UVD24 1                      loss.beta, theta, twist, uvd
  PHI_REG 0.0001, others 0              read, never added by the criterion
  (the criterion's fixed 1 x)           loss.cam_scale 1, loss.cam_trans 1
  TEST.HEATMAP2COORD coord              the integral read-out
  TRAIN.WORLD_SIZE 8 x BATCH_SIZE 32    batch_size 256 (global)
  BEGIN_EPOCH 0, END_EPOCH 200          num_epochs 200; an epoch is 2 x the largest
                                        dataset (steps_per_epoch -1)
  OPTIMIZER adam, LR 0.001              optim: adam, peak_lr 1e-3, no warmup
  LR_FACTOR 0.1, LR_STEP 90 120         optim.schedule 'step', lr_step_epochs,
                                        lr_factor
  DPG_MILESTONE, DPG_STEP               unused (no DPG in these runs)
  (train_smpl_cam.py)                   clip_grad_norm_(param, 5) on every parameter:
                                        optim.grad_clip_per_parameter_norm 5

The box margin is 1.25 but 1.0 for H36M (its dataset class passes scale_mult=1),
the project's default (data.scale_mult_per_dataset).

Model fields `predict_camera` and `focal_length` are the camera models'
(models/config.py); `ik_convention='hybrik'` their IK convention.

  python -m hybrik_jax.convert --arch backbone \
      --torch_checkpoint resnet34-b627a593.pth --out pretrained/resnet34_imagenet
  python -m hybrik_jax.train --config configs/hybrik_res34_cam.py \
      --workdir /tmp/hybrik_res34_cam --config.data.data_dir=$HOME/tensorflow_datasets
"""

import ml_collections

from hybrik_jax.data import input_pipeline
from hybrik_jax.models import config as model_config_lib
from hybrik_jax.training import camera_losses
from hybrik_jax.training import train_config

# HybrIK's camera preset flips its SMPL-branch datasets with probability 0.25.
CAMERA_PRESET_FLIP_PROB = {'h36m': 0.25, 'pw3d': 0.25}


def camera_model_config(backbone: str, head: str) -> ml_collections.ConfigDict:
  """A HybrIK camera model (256 px, 64 depth bins, 2.2 m, focal 1000)."""
  model = model_config_lib.get_model_config(
      backbone=backbone, head=head, input_size=256, depth_dim=64,
      deconv_channels=(256, 256, 256), fc_width=1024, fc_dropout=0.5,
      ik_convention='hybrik')
  # The camera models' fields (models/config.py).
  model.predict_camera = True
  model.focal_length = 1000.0
  return model


def camera_training(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """What the three camera configs share (see the module docstring)."""
  config.data.camera_targets = True
  config.data.focal_length = 1000.0
  config.data.flip_prob = 0.5
  config.data.flip_prob_per_dataset = dict(CAMERA_PRESET_FLIP_PROB)
  config.data.rot_factor = 30.0
  config.data.rot_prob = 0.6
  config.data.scale_factor = 0.3
  config.data.color_factor = 0.2
  config.data.occlusion = True
  config.loss = ml_collections.ConfigDict(dict(camera_losses.CAMERA_LOSS_WEIGHTS))
  config.optim.optimizer = 'adam'
  config.optim.schedule = 'step'
  config.optim.peak_lr = 1e-3
  config.optim.warmup_steps = 0
  config.optim.lr_factor = 0.1
  config.optim.grad_clip_per_parameter_norm = 5.0
  config.num_epochs = 200
  config.steps_per_epoch = -1
  config.data.worker_count = 8
  config.smpl.model_path = 'model_files/basicModel_neutral_lbs_10_207_0_v1.0.0.pkl'
  config.smpl.h36m_regressor_path = 'model_files/J_regressor_h36m.npy'
  config.log_every_steps = 100
  return config


def get_config() -> ml_collections.ConfigDict:
  config = camera_training(train_config.base_config())
  config.model = camera_model_config('resnet34', 'deconv')
  config.batch_size = 256  # WORLD_SIZE 8 x BATCH_SIZE 32
  config.optim.lr_step_epochs = (90, 120)
  config.data.train_datasets = input_pipeline.HYBRIK_MIX_W_PW3D
  config.data.eval_dataset = 'pw3d'
  config.data.eval_split = 'test'
  config.init.backbone_checkpoint = 'pretrained/resnet34_imagenet'
  return config
