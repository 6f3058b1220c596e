r"""HybrIK's HRNet-W48 camera model, w/ 3DPW (its model zoo's best SMPL checkpoint).

Reproduces Jeff-sjtu/HybrIK @ 9b8681d
configs/256x192_adam_lr1e-3-hrw48_cam_2x_w_pw3d_3dhp.yaml (scripts/train_smpl_cam.py).
Released: 3DPW 41.8 PA-MPJPE / 71.3 MPJPE, H36M 29.8 / 47.1. Line by line, where
it differs from configs/hybrik_hrw48_cam_wo_pw3d.py (and, through it,
configs/hybrik_res34_cam.py):

  DATASET.DATASET 'mix2_smpl_cam'       data.train_datasets = HYBRIK_MIX_W_PW3D:
                                        H36M / COCO / 3DHP / 3DPW 0.3 / 0.4 / 0.1 / 0.2
  SET_LIST 3dhp TRAIN_SET train_v3      the prepared mpi_inf_3dhp (its annotation
                                        version is the dataset builder's)
  SET_LIST pw3d TRAIN_SET 3DPW_train_new  pw3d train split
  (validation)                          data.eval_dataset pw3d, test split
  everything else                       as hybrik_hrw48_cam_wo_pw3d.py (HRNetSMPLCam,
                                        batch 4 x 36 = 144, LR_STEP 60 80, ...)

  python -m hybrik_jax.train --config configs/hybrik_hrw48_cam_w_pw3d_3dhp.py \
      --workdir /tmp/hybrik_hrw48_cam_w_pw3d --config.data.data_dir=$HOME/tensorflow_datasets
"""

import ml_collections

from hybrik_jax.data import input_pipeline
from hybrik_jax.training import train_config


def get_config() -> ml_collections.ConfigDict:
  config = train_config.sibling_config(__file__, 'hybrik_hrw48_cam_wo_pw3d')
  config.data.train_datasets = input_pipeline.HYBRIK_MIX_W_PW3D
  config.data.eval_dataset = 'pw3d'
  config.data.eval_split = 'test'
  return config
