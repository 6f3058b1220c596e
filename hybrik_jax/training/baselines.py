"""What a trained model is compared with: the untrained model and a constant.

The constant predictor answers the mean pelvis-relative training pose for
every image; a model below it has learned something from the pixels. Both are
scored by the one evaluation loop (`evaluation.loop`) on the validation split.
"""

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from hybrik_jax import parallel
from hybrik_jax.data import input_pipeline
from hybrik_jax.evaluation import loop
from hybrik_jax.evaluation import protocols


def mean_training_pose(data: input_pipeline.DataConfig, *, batch_size: int,
                       num_batches: int, input_size,
                       data_source=None) -> np.ndarray:
  """(17, 3) metres: mean pelvis-relative H36M-17 pose of training examples.

  Read without augmentation from the first dataset of the training mix.
  """
  name = data.train_datasets[0][0]
  it = input_pipeline.create_eval_iterator(
      data, global_batch_size=batch_size, input_size=input_size, dataset=name,
      split=data.train_split, data_source=data_source)
  total, count = np.zeros((17, 3)), np.zeros((17, 1))
  for i, batch in enumerate(it):
    if i >= num_batches:
      break
    joints = np.asarray(batch['joints17_cam'], np.float64)
    joints = joints - joints[:, :1]
    valid = (np.asarray(batch['joints17_valid']) *
             np.asarray(batch['mask'])[:, None])[..., None]
    total += np.sum(joints * valid, axis=0)
    count += np.sum(valid, axis=0)
  # Every host averages its own shard; combine so all hosts agree.
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    total = np.sum(multihost_utils.process_allgather(total), axis=0)
    count = np.sum(multihost_utils.process_allgather(count), axis=0)
  return (total / np.maximum(count, 1)).astype(np.float32)


def constant_step(mean_joints17: jnp.ndarray, batch, smpl_model=None, *,
                  protocol: protocols.Protocol):
  """Joint metrics (sums, per_example) of predicting `mean_joints17` (17, 3)
  for every example."""
  del smpl_model
  b = batch['joints17_cam'].shape[0]
  pred17 = jnp.broadcast_to(mean_joints17, (b, 17, 3)).astype(jnp.float32)
  return protocols.batch_metrics(protocol, batch, pred_xyz_17=pred17)


def evaluate(config, data: input_pipeline.DataConfig, variables,
             run_eval: Callable[..., dict[str, float]], *, mesh, input_size,
             train_source: Any, protocol: protocols.Protocol
             ) -> dict[str, dict[str, float]]:
  """{'untrained': the model's validation metrics, 'mean_pose': the constant's}.

  run_eval(variables, step=...) -> protocols.averages over the validation
  split (`evaluation.loop.evaluate` with the trainer's settings bound; by
  default with the model's eval step).
  """
  untrained = run_eval(variables)
  mean_pose = mean_training_pose(
      data, batch_size=config.evals.batch_size,
      num_batches=config.evals.mean_pose_batches, input_size=input_size,
      data_source=train_source)
  step = loop.jit_step(functools.partial(constant_step, protocol=protocol),
                       mesh, None)
  constant = run_eval(parallel.replicate(mean_pose, mesh), step=step)
  return {'untrained': untrained, 'mean_pose': constant}
