"""The trainer's config: every field with its default, and the field check.

`configs/*.py` start from `base_config()` and set their values; the trainer
refuses any field that is not here (`check_config`). Kept apart from
`train.py` so that configs import it without defining absl flags.
"""

import dataclasses
import importlib.util
import os

import ml_collections

from hybrik_jax.data import augment
from hybrik_jax.data import input_pipeline
from hybrik_jax.models import config as model_config_lib
from hybrik_jax.training import camera_losses
from hybrik_jax.training import losses
from hybrik_jax.training import smplx_losses


def base_config() -> ml_collections.ConfigDict:
  """Every field the trainer reads, with defaults (configs/ override them).

  An unknown field anywhere is an error (see `check_config`).
  """
  c = ml_collections.ConfigDict()
  c.seed = 0
  # The network (hybrik_jax.models.config.get_model_config fields).
  # Mixed precision: model.dtype = 'bfloat16' (params and loss stay float32).
  c.model = model_config_lib.get_model_config()
  c.batch_size = 256  # global, over every device of every host
  c.num_epochs = 200
  c.num_train_steps = -1  # > 0: train exactly this many steps instead
  # -1: HybrIK's epoch: 2 x the largest dataset of a mix (the dataset size
  # for a single dataset) // batch_size.
  c.steps_per_epoch = -1

  defaults = input_pipeline.DataConfig()
  c.data = ml_collections.ConfigDict()
  c.data.data_dir = ml_collections.FieldReference(None, field_type=str)
  c.data.train_datasets = input_pipeline.HYBRIK_MIX  # ((tfds name, weight), ...)
  c.data.train_split = defaults.train_split
  c.data.eval_dataset = defaults.eval_dataset
  c.data.eval_split = defaults.eval_split
  # HybrIK's augmentation: the defaults of data.augment.AugmentConfig (the
  # one place they are written): scale_factor, rot_factor, rot_prob,
  # flip_prob, color_factor, occlusion.
  for field in dataclasses.fields(augment.AugmentConfig):
    setattr(c.data, field.name, getattr(defaults.augmentation, field.name))
  # Box margin, worker processes / buffers per host, preprocessing threads
  # (input_pipeline.DataConfig).
  c.data.scale_mult = defaults.scale_mult
  c.data.scale_mult_per_dataset = dict(defaults.scale_mult_per_dataset)
  # {dataset: flip probability} replacing flip_prob for those datasets.
  c.data.flip_prob_per_dataset = dict(defaults.flip_prob_per_dataset)
  c.data.worker_count = defaults.worker_count
  c.data.worker_buffer_size = defaults.worker_buffer_size
  c.data.read_threads = defaults.read_threads
  # Keep decoded training examples in memory (input_pipeline.DecodedCache);
  # for datasets that fit (the CPU main job's).
  c.data.cache_decoded = defaults.cache_decoded
  # HybrIK's camera preset (simple_smpl_3d_cam): the camera models' targets
  # (data/targets.py camera_targets) with this virtual focal length, px.
  c.data.camera_targets = defaults.camera_targets
  c.data.focal_length = defaults.focal_length
  # Build missing no-download datasets (synthetic_humans) on first use.
  c.data.build_if_missing = False

  # Loss weights (losses.hybrik_loss). phi_norm is 0 as in the released
  # criteria (HybrIK and HybrIK-Transformer read PHI_REG_WEIGHT but never use it).
  c.loss = ml_collections.ConfigDict(dict(
      uvd=1.0, beta=1.0, theta=0.01, twist=0.01, phi_norm=0.0, leaf_norm=0.0))

  c.optim = ml_collections.ConfigDict()
  c.optim.optimizer = 'adam'
  c.optim.peak_lr = 5e-4
  c.optim.warmup_steps = 4000
  # > 0: the last cooldown_steps updates decay the lr linearly to 0 (not the
  # paper's; the short CPU run uses it).
  c.optim.cooldown_steps = 0
  c.optim.b1 = 0.9
  c.optim.b2 = 0.999
  c.optim.eps = 1e-8
  c.optim.weight_decay = 0.0
  c.optim.grad_clip_norm = 0.0  # 0: no clipping
  # > 0: clip each parameter array's gradient to this L2 norm on its own
  # (HybrIK's camera-model training loop: 5).
  c.optim.grad_clip_per_parameter_norm = 0.0
  # 'inverse_sqrt' (HybrIK-Transformer: peak_lr, warmup_steps, cooldown_steps)
  # or 'step' (HybrIK's MultiStepLR: peak_lr times lr_factor at each epoch of
  # lr_step_epochs, no warmup).
  c.optim.schedule = 'inverse_sqrt'
  c.optim.lr_step_epochs = ()
  c.optim.lr_factor = 0.1

  # Body model: '' -> the synthetic body model (hybrik_jax.body.smpl).
  c.smpl = ml_collections.ConfigDict()
  c.smpl.model_path = ''
  c.smpl.h36m_regressor_path = ''
  # model.body 'smplx': model_path is SMPL-X's .npz / .pkl ('' -> the synthetic
  # SMPL-X body) and this its kid template (.npy; '' -> none / the synthetic one's).
  c.smpl.kid_template_path = ''

  # Initialisation: an exported backbone (python -m hybrik_jax.convert
  # --arch backbone) and/or an exported full model; '' for none.
  c.init = ml_collections.ConfigDict()
  c.init.backbone_checkpoint = ''
  c.init.model_checkpoint = ''

  c.evals = ml_collections.ConfigDict()
  c.evals.every_steps = -1  # -1: at each epoch end; 0: only at the end
  c.evals.batch_size = 64  # global
  c.evals.max_batches = -1  # -1: the whole split
  # Also evaluate the untrained model and the mean training pose (a constant
  # predictor) before training, and print the three in the final summary.
  c.evals.baselines = False
  c.evals.mean_pose_batches = 16  # training batches averaged for the mean pose

  c.log_every_steps = 50
  c.checkpoint_every_steps = 1000
  c.keep_epochs = 10  # epoch-end checkpoints kept (for average_checkpoints)
  c.async_checkpoints = True
  # Preemption (SIGTERM, Ctrl-C): with several processes the stop flag is
  # agreed on (an all-gather) every this many steps; the run stops at the
  # first such step after a signal, saves and exits.
  c.preemption_sync_every_steps = 1
  # JAX's persistent compilation cache (training.compilation_cache), so a
  # restart loads its compiled steps instead of compiling again: 'auto'
  # (JAX's own cache if JAX_COMPILATION_CACHE_DIR sets one, else
  # WORKDIR/xla_cache), a path relative to the workdir, an absolute one
  # (shared between workdirs), or '' (JAX's own settings only). Compiles
  # shorter than compilation_cache_min_compile_s are not cached.
  c.compilation_cache_dir = 'auto'
  c.compilation_cache_min_compile_s = 1.0
  # Stop (after saving) when more than this fraction of the steps so far was
  # skipped (non-finite loss or gradient), checked from step
  # skipped_check_after_steps on; 1.0 disables the check.
  c.max_skipped_fraction = 0.25
  c.skipped_check_after_steps = 20
  c.progress_bar = True
  return c


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming any field that `base_config` does not have."""
  reference = base_config()

  def walk(cfg, ref, prefix):
    for key in cfg.keys():
      name = f'{prefix}{key}'
      if key not in ref:
        # The model is checked against the model config's own fields.
        raise ValueError(f'unknown config field {name!r}: not a field of the '
                         'trainer config (see hybrik_jax.training.train_config.base_config)')
      value, ref_value = cfg[key], ref[key]
      if (isinstance(ref_value, ml_collections.ConfigDict) and
          key not in ('scale_mult_per_dataset', 'flip_prob_per_dataset', 'loss')):
        if not isinstance(value, ml_collections.ConfigDict):
          raise ValueError(f'config field {name!r} must be a section, got '
                           f'{type(value).__name__}')
        walk(value, ref_value, name + '.')

  walk(config, reference, 'config.')
  # config.loss: the weights of losses.hybrik_loss or, for the camera models,
  # camera_losses.camera_loss, or for SMPL-X models smplx_losses.smplx_loss.
  known = (set(losses.LOSS_NAMES) | set(camera_losses.CAMERA_LOSS_NAMES)
           | set(camera_losses.CAMERA_TOKEN_LOSS_NAMES) | set(smplx_losses.SMPLX_LOSS_NAMES))
  unknown = sorted(set(config.get('loss', {}).keys()) - known)
  if unknown:
    raise ValueError(f'unknown config field(s) {["config.loss." + k for k in unknown]}: '
                     f'loss weights are {sorted(known)}')


def load_config_file(spec: str) -> ml_collections.ConfigDict:
  """'configs/x.py' or 'configs/x.py:arg' -> its get_config([arg]).

  Raises:
    FileNotFoundError: no such file.
  """
  path, _, arg = spec.partition(':')
  if not os.path.isfile(path):
    raise FileNotFoundError(f'config file {path!r} not found')
  name = 'hybrik_config_' + os.path.splitext(os.path.basename(path))[0]
  module_spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()


def with_camera_token(config: ml_collections.ConfigDict,
                      focal_length: float = 1000.0) -> ml_collections.ConfigDict:
  """`config` (a Transformer-head config) with the camera token: model.predict_camera,
  the camera preset's targets at `focal_length` px per 256 px crop, and the
  token's loss weights (camera_losses.CAMERA_TOKEN_LOSS_WEIGHTS). Edits in place."""
  config.model.predict_camera = True
  config.model.focal_length = focal_length
  config.data.camera_targets = True
  config.data.focal_length = focal_length
  config.loss.update(camera_losses.CAMERA_TOKEN_LOSS_WEIGHTS)
  return config


def sibling_config(config_file: str, name: str) -> ml_collections.ConfigDict:
  """get_config() of configs/<name>.py beside `config_file` (pass __file__):
  how a config that extends another one starts."""
  return load_config_file(os.path.join(
      os.path.dirname(os.path.abspath(config_file)), name + '.py'))
