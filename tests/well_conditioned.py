"""A well-conditioned test model: random weights, a few layers set or refit.

Random tiny models predict ill-conditioned skeletons (short, near-antiparallel
bones, twist vectors of norm down to 0.05), through which the IK amplifies a
float32 rounding of the network's outputs ~200 times (docs/PERFORMANCE.md,
"Export"). `well_conditioned_variables` keeps the backbone and most of the
Transformer of a Transformer-head model (with or without a camera token) and
  - gives each query a one-hot input of gain QUERY_GAIN (input_projection_tgt
    solved for it) and turns the queries' self-attention and FFN outputs off,
    so the output tokens are distinct, one per joint / twist;
  - scales the cross-attention's value kernels by IMAGE_GAIN: the image still
    moves every output (by ~1 % of its range), so the network's arithmetic
    is exercised;
  - refits the output layers (decjoint, decphi, decshape, [decleaf], and with
    a camera token deccam, decsigma) by ridge least squares on the tokens of
    the given images and their mirrors, so each image gives a plausible body:
    the synthetic body's template joints posed by 0.15 rad, upright in the
    crop, twists (cos, sin) of norm 1, a small shape, a camera that frames the
    body, sigmas SIGMA.
One jitted forward pass and a few 65-column solves: 2.5-8 s on 2 cores.
"""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp

from hybrik_jax.body import constants
from hybrik_jax.body import smpl as smpl_lib
from hybrik_jax.models import config as model_config_lib
from hybrik_jax.models import hybrik
from hybrik_jax.models import transformer as transformer_lib

# The camera token's target weak-perspective scale: u = s x (x in metres),
# a 1.7 m body spans u in about [-0.4, 0.4] of the crop.
CAMERA_SCALE = 0.5
SIGMA = 0.05  # target per-joint sigma: update_scale weight 1 - 10 sigma = 0.5
RIDGE = 1e-3
# What the image adds to the output tokens: the cross-attention's value kernels
# scaled (the queries reach the image only there).
IMAGE_GAIN = 0.1
QUERY_GAIN = 10.0


def posed_skeleton(smpl_model, seed: int = 0) -> np.ndarray:
  """(24, 3) metres, camera axes (y down, z away), root-relative: the body's
  template joints with a small random pose (0.15 rad), upright."""
  rng = np.random.default_rng(seed)
  pose = rng.normal(size=(1, constants.NUM_JOINTS, 3)) * 0.15
  pose[0, 0] += (np.pi, 0.0, 0.0)  # SMPL's y-up frame -> the camera's y-down
  out = smpl_lib.forward(smpl_model, jnp.zeros((1, constants.NUM_BETAS)),
                         jnp.asarray(pose, jnp.float32))
  joints = np.asarray(out.joints[0, :constants.NUM_JOINTS], np.float64)
  return joints - joints[:1]


def target_uvd(model_config, skeleton: np.ndarray, inputs: dict) -> np.ndarray:
  """(24, 3) normalised uvd of `skeleton` (root-relative metres) as the model
  decodes it: through the first row's crop camera (models without a camera)
  or the camera token's CAMERA_SCALE (camera models)."""
  convention = model_config_lib.ik_convention(model_config)
  size = int(model_config.input_size)
  if model_config.get('predict_camera', False):
    focal = float(model_config['focal_length'])
    depth = focal / (size * CAMERA_SCALE)
    z = skeleton[:, 2:] + depth
    uv = skeleton[:, :2] * focal / (size * z)
    return np.concatenate([uv, skeleton[:, 2:] / convention.depth_factor], -1)
  uvd = hybrik.xyz_to_uvd(
      jnp.asarray(skeleton[None], jnp.float32), jnp.asarray(inputs['trans_inv'][:1]),
      jnp.asarray(inputs['intrinsics'][:1]), jnp.asarray(inputs['joint_root'][:1]),
      jnp.full((1, 1), convention.depth_factor, jnp.float32), size)
  return np.asarray(uvd[0], np.float64)


def _fit(features: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Ridge least squares targets ~ features @ kernel + bias -> (kernel, bias)."""
  x = np.concatenate([features, np.ones((len(features), 1))], -1).astype(np.float64)
  a = x.T @ x + RIDGE * np.eye(x.shape[1])
  w = np.linalg.solve(a, x.T @ targets.astype(np.float64))
  return w[:-1].astype(np.float32), w[-1].astype(np.float32)


def well_conditioned_variables(model, variables, model_config, images, smpl_model,
                               inputs: dict, seed: int = 0):
  """Variables of a Transformer-head model set to predict a plausible body.

  Args:
    model: the HybrIKNet (head 'transformer'; with or without a camera token).
    variables: its {'params', 'batch_stats'} (e.g. conftest.tiny_variables).
    model_config: its config.
    images: (N, S, S, 3) ImageNet-normalised images to fit on (the test's
      crops; their mirrors are added, for the flip test).
    smpl_model: the body model whose template joints are the target.
    inputs: the test's camera inputs (trans_inv, intrinsics, joint_root), for
      models without a camera.
    seed: the target pose's.

  Returns:
    A copy of `variables` with the head's output layers replaced.
  """
  if model_config['head'] != 'transformer':
    raise ValueError('well_conditioned_variables refits Transformer heads only')
  head = dict(variables['params']['head'])
  transformer = dict(head['transformer'])
  d_model = np.asarray(transformer['input_projection_tgt']['kernel']).shape[1]
  templates = np.asarray(transformer_lib.target_templates(
      np.asarray(head['joint_embeddings']), np.asarray(head['type_embeddings']),
      bool(model_config.get('predict_leaf')), int(model_config['twist_joint_offset']),
      bool(model_config.get('predict_camera'))), np.float64)
  n, t = constants.NUM_JOINTS, constants.NUM_TWISTS
  # Each query enters as QUERY_GAIN * a one-hot of its index within its kind
  # (keypoints 0..23, twists 0..22, ...): distinct tokens whatever the rest.
  index = np.concatenate([np.arange(n), np.arange(t),
                          np.arange(len(templates) - n - t)]) % d_model
  one_hot = QUERY_GAIN * np.eye(d_model)[index]
  transformer['input_projection_tgt'] = {
      'kernel': np.linalg.lstsq(templates, one_hot, rcond=None)[0].astype(np.float32),
      'bias': np.zeros(d_model, np.float32)}

  def scaled(layer, gain):
    return {'kernel': np.asarray(layer['kernel']) * gain,
            'bias': np.asarray(layer['bias']) * (1.0 if gain else 0.0)}
  for name in list(transformer):
    if name.startswith('mha_cross_'):  # the image, scaled down
      transformer[name] = dict(transformer[name], linear_v=scaled(
          transformer[name]['linear_v'], IMAGE_GAIN))
    elif name.startswith('mha_tgt_'):  # the queries' self-attention: off
      transformer[name] = dict(transformer[name], linear_o=scaled(
          transformer[name]['linear_o'], 0.0))
    elif name.startswith('ffn_tgt_'):  # their FFN: off (the residual only)
      last = sorted(k for k in transformer[name] if k.startswith('fc_layers_'))[-1]
      transformer[name] = dict(transformer[name], **{last: scaled(
          transformer[name][last], 0.0)})
  head['transformer'] = transformer
  variables = dict(variables, params=dict(variables['params'], head=head))
  images = jnp.concatenate([images, hybrik.flip_image(images)], 0)
  capture = jax.jit(lambda v, x: model.apply(
      v, x, train=False, mutable=['intermediates'], capture_intermediates=(
          lambda mdl, method: mdl.name == 'transformer' and method == '__call__'))[1])
  tokens = np.asarray(capture(variables, images)['intermediates']['head']['transformer']
                      ['__call__'][0])
  b = tokens.shape[0]
  rng = np.random.default_rng(seed)
  skeleton = posed_skeleton(smpl_model, seed)
  uvd = target_uvd(model_config, skeleton, inputs)
  angles = rng.normal(size=t) * 0.3
  phi = np.stack([np.cos(angles), np.sin(angles)], -1)
  shape = rng.normal(size=constants.NUM_BETAS) * 0.3
  fits = {'decjoint': (tokens[:, :n], uvd), 'decphi': (tokens[:, n:n + t], phi)}
  shape_token = n + t + (5 if model_config.get('predict_leaf') else 0)
  if model_config.get('predict_leaf'):
    fits['decleaf'] = (tokens[:, n + t:shape_token],
                       np.tile([1.0, 0.0, 0.0, 0.0], (5, 1)))
  fits['decshape'] = (tokens[:, shape_token:shape_token + 1],
                      (shape - np.asarray(model_config['mean_shape']))[None])
  if model_config.get('predict_camera', False):
    init_cam = np.asarray(model_config['init_cam'] or (0.9, 0.0, 0.0))
    fits['deccam'] = (tokens[:, shape_token + 1:shape_token + 2],
                      (np.array([CAMERA_SCALE, 0.0, 0.0]) - init_cam)[None])
    fits['decsigma'] = (tokens[:, :n], np.full((n, 1), np.log(SIGMA / (1 - SIGMA))))
  for name, (feats, target) in fits.items():
    k = feats.shape[1]
    target = np.broadcast_to(target, (b, k, target.shape[-1]))
    kernel, bias = _fit(feats.reshape(b * k, -1), target.reshape(b * k, -1))
    head[name] = {'kernel': kernel, 'bias': bias}
  params = dict(variables['params'], head=head)
  return jax.tree.map(np.asarray, dict(variables, params=params))
