r"""A tiny config for tests: 64 px images, an 8-channel ResNet, d_model 32.

Reads synthetic_humans/tiny (or in-memory examples the tests pass in):
  python -m hybrik_jax.train --config configs/test.py --workdir /tmp/hybrik_test
"""

import ml_collections

from hybrik_jax.models import config as model_config_lib
from hybrik_jax.training import train_config


def get_config() -> ml_collections.ConfigDict:
  config = train_config.base_config()
  config.seed = 0
  # The project's own IK convention (the synthetic data's leaf order and 2.2 m depth
  # unit); tests/test_train.py also trains with 'released'.
  config.model = model_config_lib.get_tiny_model_config(
      input_size=64, ik_convention='corrected')
  config.batch_size = 4
  config.num_epochs = 1
  config.num_train_steps = 2
  config.steps_per_epoch = 2
  config.data.train_datasets = (('synthetic_humans/tiny', 1.0),)
  config.data.train_split = 'train'
  config.data.eval_dataset = 'synthetic_humans/tiny'
  config.data.eval_split = 'validation'
  config.data.occlusion = False
  config.data.read_threads = 1
  config.optim.peak_lr = 1e-3
  config.optim.warmup_steps = 1
  config.evals.every_steps = 0  # only at the end
  config.evals.batch_size = 4
  config.evals.mean_pose_batches = 2
  config.log_every_steps = 1
  config.checkpoint_every_steps = 1
  config.keep_epochs = 2
  config.progress_bar = False
  return config
