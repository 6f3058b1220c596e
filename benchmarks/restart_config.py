"""configs/paper.py or configs/paper_hrnet.py at batch 8 on synthetic_humans/tiny,
checkpointing every step: the config `benchmarks/restart_timing.sh` times.

  python -m hybrik_jax.train --config benchmarks/restart_config.py:paper_hrnet \
      --workdir W --config.data.data_dir=D
"""
import os

from hybrik_jax.training import train_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def get_config(arg: str = 'paper'):
  c = train_config.load_config_file(os.path.join(REPO, 'configs', f'{arg}.py'))
  c.smpl.model_path = ''            # the synthetic body model
  c.smpl.h36m_regressor_path = ''
  c.init.backbone_checkpoint = ''   # random weights: the timing does not depend on them
  c.data.train_datasets = (('synthetic_humans/tiny', 1.0),)
  c.data.train_split = 'train'
  c.data.eval_dataset = 'synthetic_humans/tiny'
  c.data.eval_split = 'validation'
  c.data.worker_count = 0
  c.batch_size = 8
  c.evals.batch_size = 8
  c.num_train_steps = 1000
  c.steps_per_epoch = 1000
  c.checkpoint_every_steps = 1
  c.log_every_steps = 1
  c.progress_bar = False
  return c
