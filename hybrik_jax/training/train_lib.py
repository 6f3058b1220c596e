"""The pure pieces of the trainer: schedule, optimizer, state, train step.

`training.trainer` composes them into the training loop. Everything here is a pure
function of its arguments (constants bound with `functools.partial` before
compiling), so tests call them directly.

Data parallelism: `jit` over a 1-D `('data',)` device mesh spanning every
device of every process; the batch is sharded on 'data', the train state is
replicated. XLA inserts the gradient all-reduce (and the cross-device batch
statistics of BatchNorm), so N devices compute the same update as one device
on the same global batch.
"""

import ctypes
import ctypes.util
import functools
from typing import Any, Callable, Mapping, Optional

import flax
import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from hybrik_jax import parallel
from hybrik_jax.body import ik
from hybrik_jax.body import ik_smplx
from hybrik_jax.models import camera as camera_lib
from hybrik_jax.models import config as model_config_lib
from hybrik_jax.models import hybrik as hybrik_model
from hybrik_jax.models import inference
from hybrik_jax.training import camera_losses
from hybrik_jax.training import losses
from hybrik_jax.training import smplx_losses

PyTree = Any
DATA_AXIS = parallel.DATA_AXIS


# ---------------------------------------------------------------------------
# Learning rate and optimizer.
# ---------------------------------------------------------------------------


def create_learning_rate_fn(peak_lr: float, warmup_steps: int,
                            total_steps: Optional[int] = None,
                            cooldown_steps: int = 0
                            ) -> Callable[[jnp.ndarray], jnp.ndarray]:
  """fairseq's inverse_sqrt schedule (HybrIK-Transformer's InverseSquareRoot).

  lr(step) = peak_lr * step / warmup_steps         for step < warmup_steps
           = peak_lr * sqrt(warmup_steps / step)   for step >= warmup_steps
  where `step` counts updates from 1 (the first update uses lr(1)).

  With cooldown_steps > 0 (not the paper's), the last cooldown_steps updates
  of a run of total_steps scale it linearly towards 0: update total_steps -
  cooldown_steps + k gets (cooldown_steps + 1 - k) / cooldown_steps of it, k =
  1..cooldown_steps (a short run then ends at a low learning rate instead of
  the inverse-sqrt's plateau).
  """
  peak_lr = float(peak_lr)
  warmup = float(warmup_steps)
  cooldown = int(cooldown_steps)
  if cooldown < 0:
    raise ValueError(f'optim.cooldown_steps must be >= 0, got {cooldown}')
  if cooldown and (total_steps is None or not 0 < cooldown <= total_steps):
    raise ValueError(f'optim.cooldown_steps ({cooldown}) needs a run of at least as '
                     f'many steps, got total_steps={total_steps}')

  def lr_fn(step):
    step = jnp.maximum(jnp.asarray(step, jnp.float32), 1.0)
    if warmup <= 0:
      lr = jnp.full_like(step, peak_lr)
    else:
      warm = peak_lr * step / warmup
      decay = peak_lr * jnp.sqrt(warmup / step)
      lr = jnp.where(step < warmup, warm, decay)
    if cooldown:
      lr = lr * jnp.clip((total_steps - step) / cooldown + 1.0 / cooldown, 0.0, 1.0)
    return lr

  return lr_fn


def create_step_learning_rate_fn(peak_lr: float, step_epochs, factor: float,
                                 steps_per_epoch: int) -> Callable[[jnp.ndarray], jnp.ndarray]:
  """HybrIK's MultiStepLR, stepped once per epoch: peak_lr * factor ** (number
  of milestones in step_epochs <= the epoch of update `step`), with `step`
  counted from 1 and epoch e holding updates e * steps_per_epoch + 1 ...
  (e + 1) * steps_per_epoch (HybrIK's LR_STEP, LR_FACTOR; no warmup).
  """
  if steps_per_epoch is None or int(steps_per_epoch) <= 0:
    raise ValueError("optim.schedule 'step' needs the run's steps_per_epoch, got "
                     f'{steps_per_epoch!r}')
  bounds = jnp.asarray(sorted(int(e) for e in step_epochs), jnp.float32)
  spe, peak_lr, factor = float(steps_per_epoch), float(peak_lr), float(factor)

  def lr_fn(step):
    step = jnp.maximum(jnp.asarray(step, jnp.float32), 1.0)
    epoch = jnp.floor((step - 1.0) / spe)
    passed = jnp.sum(epoch[..., None] >= bounds, axis=-1) if bounds.size else 0
    return peak_lr * jnp.power(factor, passed) * jnp.ones_like(step)

  return lr_fn


def clip_by_norm_per_parameter(max_norm: float) -> optax.GradientTransformation:
  """Clips each parameter array's gradient to L2 norm max_norm on its own (as
  HybrIK's train loop calls clip_grad_norm_ on every parameter separately)."""
  def clip(g):
    norm = jnp.sqrt(jnp.sum(jnp.square(g.astype(jnp.float32))))
    return g * jnp.minimum(1.0, max_norm / (norm + 1e-6)).astype(g.dtype)

  return optax.stateless(lambda updates, params=None: jax.tree.map(clip, updates))


SCHEDULES = ('inverse_sqrt', 'step')


def create_optimizer(optim_config: ml_collections.ConfigDict,
                     total_steps: Optional[int] = None,
                     steps_per_epoch: Optional[int] = None
                     ) -> tuple[optax.GradientTransformation, Callable]:
  """Adam (+ optional gradient clipping) with the configured schedule.

  optim_config.schedule: 'inverse_sqrt' (default; create_learning_rate_fn) or
  'step' (HybrIK's MultiStepLR: create_step_learning_rate_fn with
  lr_step_epochs, lr_factor and steps_per_epoch).
  total_steps: the run's number of updates; needed when
  optim_config.cooldown_steps > 0 (see create_learning_rate_fn).
  steps_per_epoch: the run's epoch length in updates; needed by 'step'.

  Returns:
    (tx, lr_fn) with lr_fn(step) the learning rate of update `step` (from 1).
  """
  if optim_config.optimizer != 'adam':
    raise ValueError(f'config.optim.optimizer: only "adam" is implemented, '
                     f'got {optim_config.optimizer!r}')
  schedule_name = optim_config.get('schedule', 'inverse_sqrt')
  if schedule_name == 'inverse_sqrt':
    lr_fn = create_learning_rate_fn(optim_config.peak_lr,
                                    optim_config.warmup_steps, total_steps,
                                    optim_config.get('cooldown_steps', 0))
  elif schedule_name == 'step':
    lr_fn = create_step_learning_rate_fn(optim_config.peak_lr,
                                         optim_config.get('lr_step_epochs', ()),
                                         optim_config.get('lr_factor', 0.1), steps_per_epoch)
  else:
    raise ValueError(f'config.optim.schedule must be one of {SCHEDULES}, '
                     f'got {schedule_name!r}')
  # optax passes the number of updates done so far (0 for the first).
  schedule = lambda count: lr_fn(count + 1)
  parts = []
  if optim_config.get('grad_clip_per_parameter_norm'):
    parts.append(clip_by_norm_per_parameter(float(optim_config.grad_clip_per_parameter_norm)))
  if optim_config.get('grad_clip_norm'):
    parts.append(optax.clip_by_global_norm(optim_config.grad_clip_norm))
  parts.append(optax.scale_by_adam(b1=optim_config.b1, b2=optim_config.b2,
                                   eps=optim_config.eps))
  if optim_config.get('weight_decay'):
    parts.append(optax.add_decayed_weights(optim_config.weight_decay))
  parts.append(optax.scale_by_learning_rate(schedule))
  return optax.chain(*parts), lr_fn


# ---------------------------------------------------------------------------
# Train state.
# ---------------------------------------------------------------------------


@flax.struct.dataclass
class TrainState:
  """Everything that changes during training (saved in checkpoints).

  step:        () int32, updates attempted so far (skipped ones included).
  params, batch_stats: the model variables.
  opt_state:   the optax state.
  rng:         (2,) uint32 raw key data of the base key; step s uses
               fold_in(key, s).
  num_skipped: () int32, steps whose loss or gradient was not finite.
  """
  step: jnp.ndarray
  params: PyTree
  batch_stats: PyTree
  opt_state: PyTree
  rng: jnp.ndarray
  num_skipped: jnp.ndarray

  @property
  def variables(self) -> dict[str, PyTree]:
    return {'params': self.params, 'batch_stats': self.batch_stats}


def init_variables(model, rng: jax.Array, input_size: int) -> dict[str, PyTree]:
  """Initial {'params', 'batch_stats'} of `model` for (1, S, S, 3) images."""
  images = jnp.zeros((1, input_size, input_size, 3), jnp.float32)
  params_rng, dropout_rng, patches_rng = jax.random.split(rng, 3)
  init = jax.jit(functools.partial(model.init, train=False))
  variables = init(
      {'params': params_rng, 'dropout': dropout_rng, 'patches': patches_rng},
      images)
  variables = flax.core.unfreeze(variables)
  return {'params': variables['params'],
          'batch_stats': variables.get('batch_stats', {})}


def create_train_state(model, tx: optax.GradientTransformation,
                       rng: jax.Array, input_size: int,
                       variables: Mapping[str, PyTree] | None = None
                       ) -> TrainState:
  """A fresh TrainState (variables from `init_variables` unless given)."""
  init_rng, state_rng = jax.random.split(rng)
  if variables is None:
    variables = init_variables(model, init_rng, input_size)
  return TrainState(
      step=jnp.zeros((), jnp.int32),
      params=variables['params'],
      batch_stats=variables.get('batch_stats', {}),
      opt_state=tx.init(variables['params']),
      rng=jax.random.key_data(state_rng),
      num_skipped=jnp.zeros((), jnp.int32))


# ---------------------------------------------------------------------------
# Steps.
# ---------------------------------------------------------------------------


def forward_and_loss(params, batch_stats, batch, rng, *, model, smpl_model,
                     loss_weights: Mapping[str, float],
                     convention: ik.IKConvention, input_size: int,
                     train: bool = True, focal_length: float = 1000.0):
  """Network -> (theta: decode for the rotations) -> hybrik_loss.

  The loss is chosen by the model's config (`model.body`, `model.head`,
  `model.predict_camera`, the HybrIKNet fields): body 'smplx' (HybrIK-X) goes
  to its SMPL-X criterion (`_smplx_model_loss`); a camera model of HybrIK's
  (predict_camera with a heatmap / deconv / regression head) to
  `camera_losses.camera_loss` (`_camera_model_loss`); focal_length: its virtual
  camera's, px. The Transformer head's camera token (predict_camera with head
  'transformer') adds `camera_losses.camera_token_loss` (the weights named in
  CAMERA_TOKEN_LOSS_NAMES) to hybrik_loss (the others).

  convention: the model's `ik.IKConvention` (`models.config.ik_convention`):
  decode runs its IK (with `train`: `convention.for_training()`, the released
  convention's train-mode IK); 'released' also gives the theta loss the
  released quaternion sign; the target depths, normalised by each example's
  depth_factor, are put in the model's depth unit (`convention.depth_factor`)
  first. input_size: the model's input side, px.

  Returns:
    (total loss, (components dict, new batch_stats)).
  """
  body = getattr(model, 'body', 'smpl')
  head = getattr(model, 'head', None)
  predict_camera = bool(getattr(model, 'predict_camera', False))
  if body not in ('smpl', 'smplx'):
    raise ValueError(f"model body must be 'smpl' or 'smplx', got {body!r}")
  dropout_rng, patches_rng = jax.random.split(rng)
  variables = {'params': params, 'batch_stats': batch_stats}
  if train:
    raw, new_state = model.apply(
        variables, batch['image'], train=True,
        rngs={'dropout': dropout_rng, 'patches': patches_rng},
        mutable=['batch_stats'])
    new_batch_stats = new_state.get('batch_stats', batch_stats)
  else:
    raw = model.apply(variables, batch['image'], train=False)
    new_batch_stats = batch_stats
  raw = inference.float32_outputs(raw)
  if body == 'smplx':  # HybrIK-X
    total, comps = _smplx_model_loss(raw, batch, smplx_model=smpl_model, head=head,
                                     loss_weights=loss_weights, convention=convention,
                                     input_size=input_size, focal_length=focal_length)
    return total, (comps, new_batch_stats)
  if predict_camera and head != 'transformer':  # HybrIK's camera models
    total, comps = _camera_model_loss(raw, batch, smpl_model=smpl_model,
                                      loss_weights=loss_weights, convention=convention,
                                      input_size=input_size, focal_length=focal_length,
                                      train=train)
    return total, (comps, new_batch_stats)
  outputs = dict(raw)
  if loss_weights.get('theta', 0.0):
    decoded = hybrik_model.decode(
        raw, smpl_model=smpl_model, trans_inv=batch['trans_inv'],
        intrinsics=batch['intrinsics'], joint_root=batch['joint_root'],
        input_size=input_size,
        convention=convention.for_training() if train else convention)
    outputs['pred_rotmats'] = decoded.pred_rotmats
  uvd29 = jnp.asarray(batch['target_uvd_29'], jnp.float32)
  depth_scale = (jnp.asarray(batch['depth_factor'], jnp.float32)[:, :, None] /
                 convention.depth_factor)
  batch = dict(batch, target_uvd_29=uvd29.at[..., 2:].multiply(depth_scale))
  # The released criterion compares the targets (w >= 0) with quaternions of
  # the released rotmat_to_quat's sign (losses module docstring).
  sign = 'released' if convention.name == 'released' else 'w_positive'
  camera_names = camera_losses.CAMERA_TOKEN_LOSS_NAMES if 'pred_camera' in raw else ()
  total, comps = losses.hybrik_loss(
      outputs, batch, {k: v for k, v in loss_weights.items() if k not in camera_names},
      quaternion_sign=sign)
  if camera_names:  # the Transformer head's camera token
    cam_total, cam_comps = camera_losses.camera_token_loss(
        outputs, batch, {k: v for k, v in loss_weights.items() if k in camera_names})
    total = total + cam_total
    comps = {**comps, **cam_comps, 'loss': total}
  return total, (comps, new_batch_stats)


def _smplx_model_loss(raw, batch, *, smplx_model, head, loss_weights, convention,
                      input_size, focal_length):
  """A HybrIK-X raw dict (pred_uvd (B, 71, 3), pred_sigma, pred_shape (B, 11),
  pred_expression, pred_phi (B, 54, 2), pred_camera (B, 1)) -> the SMPL-X
  criterion of its head (`smplx_losses.criterion_for_head`).

  The rotations for the theta term: the 71 joints back-projected with the
  predicted scale (no bboxes, no refinement), root-relative, through
  HybrIK-X's train-mode IK (`ik_smplx.inverse_kinematics(..., mode='train')` on
  the predicted shape's rest skeleton; no skinning). smplx_model:
  the SMPL-X body. Target depths, normalised by each example's depth_factor
  (batch 'depth_factor' (B, 1), when present), go to the model's depth unit.
  """
  outputs = dict(raw)
  if loss_weights.get('theta', 0.0):
    cam_depth = camera_lib.root_depth(raw['pred_camera'][:, :1], focal_length, input_size)
    xyz = camera_lib.back_project(raw['pred_uvd'], cam_depth, focal_length=focal_length,
                                  input_size=input_size, depth_factor=convention.depth_factor)
    rest = ik_smplx.rest_joints71(smplx_model, raw['pred_shape'], raw['pred_expression'])
    outputs['pred_rotmats'] = ik_smplx.inverse_kinematics(xyz - xyz[:, :1], raw['pred_phi'],
                                                          rest, mode='train')
  if 'depth_factor' in batch:
    uvd = jnp.asarray(batch['target_uvd_71'], jnp.float32)
    scale = jnp.asarray(batch['depth_factor'], jnp.float32)[:, :, None] / convention.depth_factor
    batch = dict(batch, target_uvd_71=uvd.at[..., 2:].multiply(scale))
  return smplx_losses.criterion_for_head(head, loss_weights)(outputs, batch)


def _camera_model_loss(raw, batch, *, smpl_model, loss_weights, convention, input_size,
                       focal_length, train):
  """A camera model's raw dict (pred_uvd (B, 29, 3), pred_sigma (B, 29),
  pred_shape, pred_phi, pred_camera (B, 3) or (B, 1)) -> camera_loss.

  The rotations for the theta term come from the camera decoding as the
  released classes train: the skeleton back-projected with the predicted
  camera (no bboxes; the ResNet class's translation subtracted; no scale
  refinement, which is evaluation-only) and lifted by the train-mode IK
  (`convention.for_training()`). The targets' depths, normalised by each
  example's depth_factor, are put in the model's depth unit first.
  """
  outputs = dict(raw)
  if loss_weights.get('theta', 0.0):
    decoded = hybrik_model.decode_camera(
        raw, smpl_model=smpl_model,
        convention=convention.for_training() if train else convention,
        focal_length=focal_length, input_size=input_size, refine_scale=False)
    outputs['pred_rotmats'] = decoded.pred_rotmats
  uvd29 = jnp.asarray(batch['target_uvd_29'], jnp.float32)
  depth_scale = (jnp.asarray(batch['depth_factor'], jnp.float32)[:, :, None] /
                 convention.depth_factor)
  batch = dict(batch, target_uvd_29=uvd29.at[..., 2:].multiply(depth_scale))
  return camera_losses.camera_loss(outputs, batch, loss_weights)


def train_step(state: TrainState, batch: Mapping[str, jnp.ndarray], *,
               model, smpl_model, tx: optax.GradientTransformation,
               lr_fn: Callable, loss_weights: Mapping[str, float],
               convention: ik.IKConvention, input_size: int,
               focal_length: float = 1000.0
               ) -> tuple[TrainState, dict[str, jnp.ndarray]]:
  """One Adam update on a (global) batch; pure.

  convention, input_size, focal_length: the model's (see `forward_and_loss`).

  A non-finite loss or gradient norm leaves params, batch stats and optimizer
  state unchanged (the step counter still advances and `num_skipped` counts
  it).

  Returns:
    (new_state, metrics): metrics holds the loss components, 'lr',
    'grad_norm', 'param_norm' and 'skipped' (0 or 1), all scalars.
  """
  rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
  loss_fn = functools.partial(
      forward_and_loss, model=model, smpl_model=smpl_model,
      loss_weights=loss_weights, convention=convention, input_size=input_size,
      train=True, focal_length=focal_length)
  (loss, (comps, new_batch_stats)), grads = jax.value_and_grad(
      loss_fn, has_aux=True)(state.params, state.batch_stats, batch, rng)
  grad_norm = optax.tree.norm(grads)
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)

  def update(operand):
    grads, opt_state, params = operand
    updates, new_opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), new_opt_state

  # A skipped step never runs the optimizer (no NaN enters its math). A
  # conditional rather than jnp.where over the results: XLA updates the
  # donated parameters and moments in place, where the selects cost two extra
  # copies of them and ~4x the update's time on CPU (docs/PERFORMANCE.md,
  # "Changes behind it").
  new_params, new_opt_state = jax.lax.cond(
      finite, update, lambda operand: (operand[2], operand[1]),
      (grads, state.opt_state, state.params))
  new_state = state.replace(
      step=state.step + 1,
      params=new_params,
      batch_stats=jax.tree.map(lambda n, o: jnp.where(finite, n, o), new_batch_stats,
                               state.batch_stats),
      opt_state=new_opt_state,
      num_skipped=state.num_skipped + (~finite).astype(jnp.int32))
  metrics = dict(comps)
  metrics.update(
      lr=lr_fn(state.step + 1),
      grad_norm=grad_norm,
      param_norm=optax.tree.norm(state.params),
      skipped=(~finite).astype(jnp.float32))
  return new_state, metrics


# ---------------------------------------------------------------------------
# Mesh, sharding and the compiled train step.
# ---------------------------------------------------------------------------


# The mesh helpers live in `hybrik_jax.parallel` (the evaluation loop uses
# them too); these names stay for the trainer's callers.
create_mesh = parallel.create_mesh
batch_sharding = parallel.batch_sharding
replicated_sharding = parallel.replicated_sharding
global_batch = parallel.global_batch
replicate = parallel.replicate


def jit_train_step(mesh, *, smpl_model, model_config, **kwargs) -> Callable:
  """`train_step` bound to kwargs, jitted over the mesh, state donated.

  model_config: the model's config, read here once: its IK convention
  (`models.config.ik_convention`), input_size and (camera models)
  focal_length go to `train_step`.
  The body model is passed as a (replicated) argument rather than baked into
  the program as constants. Returns step(state, batch) -> (state, metrics).

  Raises:
    errors.InputError: the model config's IK fields are invalid.
  """
  convention = model_config_lib.ik_convention(model_config)
  input_size = int(model_config['input_size'])
  focal_length = float(model_config.get('focal_length', 1000.0))
  repl = replicated_sharding(mesh)

  def hybrik_train_step(state, batch, smpl):  # named: 'jit_hybrik_train_step'
    return train_step(state, batch, smpl_model=smpl, convention=convention,
                      input_size=input_size, focal_length=focal_length, **kwargs)

  step = jax.jit(
      hybrik_train_step,
      in_shardings=(repl, batch_sharding(mesh), repl),
      out_shardings=(repl, repl),
      donate_argnums=(0,))
  smpl_replicated = replicate(smpl_model, mesh)
  compiled = []

  def run(state, batch):
    out = step(state, batch, smpl_replicated)
    if not compiled:  # the first call compiled the step
      compiled.append(True)
      release_free_host_memory()
    return out

  return run


def release_free_host_memory() -> bool:
  """Hands the process's free heap pages back to the OS (glibc malloc_trim).

  Compiling the paper's train step with XLA:CPU frees about 1 GB that glibc
  keeps mapped; without this, that GB stays in the process's resident memory
  for the whole run (docs/PERFORMANCE.md, "Changes behind it"). Returns False
  where there is no glibc (then nothing is done).
  """
  try:
    libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
    return bool(libc.malloc_trim(0))
  except (OSError, AttributeError):
    return False
