"""The paper's Transformer lifting head (HybrIK-Transformer, Oreshkin 2022).

Block l of L (paper, section 1; released HybrikTransformerSMPL24):
  2D: e2d = FFN(relu(LN(dropout(MHA(e2d, e2d, e2d)) + e2d)))
  3D: t   = relu(LN(dropout(MHA(e3d, e3d, e3d)) + e3d))
  x:  e3d = FFN(relu(LN(dropout(MHA(t, e2d, e2d)) + t)))
FFN is the released residual MLP: `ffn_layers` Linear+LeakyReLU layers, dropout,
residual add, LayerNorm. LayerNorm is the released one: unbiased std, eps 1e-6
added to the std. Parameter names follow the PyTorch module (`mha_src_{i}/linear_q`,
`ffn_tgt_{i}/fc_layers_{j}`, `layer_norm_cross_{i}`, ...) so checkpoints convert 1:1.

Patch subset sampling (train only): a random subset of the source tokens is
kept by an attention key mask (static shapes). Masked tokens are never attended
to, so kept tokens see exactly what they would see on the gathered subset.
"""

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from hybrik_jax.body import constants

# torch.nn.Linear's default weight init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
torch_linear_init = nn.initializers.variance_scaling(1.0 / 3.0, 'fan_in', 'uniform')

NUM_TYPE_EMBEDDINGS = 10  # released code: type_embeddings (10, C); uses rows 0..3
TYPE_UVD, TYPE_PHI, TYPE_LEAF, TYPE_SHAPE = 0, 1, 2, 3
# This project's camera token (predict_camera): row 4, unused by the released code,
# so the camera model has no new embedding parameter.
TYPE_CAMERA = 4
# The camera token's initial camera (s, tx, ty), as HybrIK's ResNet camera class.
INIT_CAM = (0.9, 0.0, 0.0)
# Leaf joints' rows in the 29 joint embeddings (SMPL_layer.LEAF_IDX).
LEAF_EMBEDDING_ROWS = tuple(range(constants.NUM_JOINTS, constants.NUM_JOINTS_29))


def _dense(features: int, name: str, dtype: Any) -> nn.Dense:
  return nn.Dense(features, dtype=dtype, kernel_init=torch_linear_init, name=name)


class TorchLayerNorm(nn.Module):
  """The released LayerNorm: scale * (x - mean) / (std + eps) + bias, unbiased std.

  Statistics in float32 whatever the compute dtype; output in the input dtype.
  """
  eps: float = 1e-6

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    features = x.shape[-1]
    scale = self.param('scale', nn.initializers.ones, (features,))
    bias = self.param('bias', nn.initializers.zeros, (features,))
    xf = x.astype(jnp.promote_types(jnp.float32, x.dtype))
    mean = xf.mean(-1, keepdims=True)
    std = jnp.sqrt(jnp.sum(jnp.square(xf - mean), -1, keepdims=True) / (features - 1))
    y = scale * (xf - mean) / (std + self.eps) + bias
    return y.astype(x.dtype)


class MultiHeadAttention(nn.Module):
  """q/k/v/o linears around scaled dot-product attention (scale 1/sqrt(head dim)).

  Attributes:
    num_heads: h.
    dtype: compute dtype.
    implementation: passed to jax.nn.dot_product_attention (None, 'xla', 'cudnn').
  """
  num_heads: int
  dtype: Any = jnp.float32
  implementation: Optional[str] = None

  @nn.compact
  def __call__(self, q: jnp.ndarray, kv: jnp.ndarray,
               key_mask: Optional[jnp.ndarray] = None) -> jnp.ndarray:
    """q (B, T, d), kv (B, S, d), key_mask (B, S) bool (True = attend) -> (B, T, d)."""
    d = q.shape[-1]
    if d % self.num_heads:
      raise ValueError(f'd_model ({d}) must be divisible by num_heads ({self.num_heads})')
    split = lambda x: x.reshape(x.shape[:2] + (self.num_heads, d // self.num_heads))
    query = split(_dense(d, 'linear_q', self.dtype)(q))
    key = split(_dense(d, 'linear_k', self.dtype)(kv))
    value = split(_dense(d, 'linear_v', self.dtype)(kv))
    mask = None if key_mask is None else key_mask[:, None, None, :]
    y = jax.nn.dot_product_attention(query, key, value, mask=mask,
                                     implementation=self.implementation)
    y = y.reshape(y.shape[:2] + (d,))
    return _dense(d, 'linear_o', self.dtype)(y)


class ResidualFFN(nn.Module):
  """Released ResidualBlock: LeakyReLU(Linear) x num_layers, dropout, + x, LayerNorm."""
  num_layers: int
  width: int
  dropout: float
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, deterministic: bool) -> jnp.ndarray:
    if self.num_layers < 2:
      raise ValueError(f'ffn_layers must be >= 2, got {self.num_layers}')
    widths = [self.width] * (self.num_layers - 1) + [x.shape[-1]]
    h = x
    for j, w in enumerate(widths):
      h = nn.leaky_relu(_dense(w, f'fc_layers_{j}', self.dtype)(h), negative_slope=0.01)
    h = nn.Dropout(self.dropout)(h, deterministic=deterministic)
    return TorchLayerNorm(name='layer_norm')(h + x)


class Transformer(nn.Module):
  """The released `Transformer`: input projections, L blocks, output projection.

  Attributes:
    out_features: width of the output projection (the backbone's channels C).
    remat: recompute each attention and FFN sub-layer in the backward pass
      (nn.remat) instead of keeping its activations: less training memory,
      about 1/3 more head FLOPs; same parameters and outputs.
  """
  num_blocks: int
  num_layers: int
  layer_width: int
  d_model: int
  num_heads: int
  dropout: float
  out_features: int
  dtype: Any = jnp.float32
  attention_impl: Optional[str] = None
  remat: bool = False

  @nn.compact
  def __call__(self, x_src: jnp.ndarray, x_tgt: jnp.ndarray,
               src_mask: Optional[jnp.ndarray] = None,
               deterministic: bool = True) -> jnp.ndarray:
    """x_src (B, S, C_src), x_tgt (B or 1, T, C_tgt), src_mask (B, S) bool -> (B, T, out).

    A batch-1 x_tgt (the head's target templates, the same for every example)
    goes through its projection and the first self-attention once and is
    broadcast to B where the source (or a per-example dropout draw) first
    enters: the same outputs as a broadcast input, for a fraction of the work.
    """
    batch = x_src.shape[0]
    if x_tgt.shape[0] not in (1, batch):
      raise ValueError(f'x_tgt batch must be 1 or {batch} (x_src), got {x_tgt.shape[0]}')
    drop = lambda x: nn.Dropout(self.dropout)(x, deterministic=deterministic)
    per_example_dropout = not deterministic and self.dropout > 0.0
    expand = lambda x: jnp.broadcast_to(x, (batch,) + x.shape[1:])
    mha_cls, ffn_cls = MultiHeadAttention, ResidualFFN
    if self.remat:  # argument 2 of ResidualFFN.__call__ (self = 0): deterministic
      mha_cls, ffn_cls = nn.remat(mha_cls), nn.remat(ffn_cls, static_argnums=(2,))
    mha = lambda name: mha_cls(self.num_heads, self.dtype, self.attention_impl, name=name)
    ffn = lambda name: ffn_cls(self.num_layers, self.layer_width, self.dropout,
                               self.dtype, name=name)
    x_src = _dense(self.d_model, 'input_projection_src', self.dtype)(x_src)
    x_tgt = _dense(self.d_model, 'input_projection_tgt', self.dtype)(x_tgt)
    for i in range(self.num_blocks):
      y = mha(f'mha_src_{i}')(x_src, x_src, src_mask)
      x_src = nn.relu(TorchLayerNorm(name=f'layer_norm_src_{i}')(drop(y) + x_src))
      x_src = ffn(f'ffn_src_{i}')(x_src, deterministic)

      y = mha(f'mha_tgt_{i}')(x_tgt, x_tgt)
      if per_example_dropout:
        x_tgt, y = expand(x_tgt), expand(y)
      x_tgt = expand(nn.relu(TorchLayerNorm(name=f'layer_norm_tgt_{i}')(drop(y) + x_tgt)))

      y = mha(f'mha_cross_{i}')(x_tgt, x_src, src_mask)
      x_tgt = nn.relu(TorchLayerNorm(name=f'layer_norm_cross_{i}')(drop(y) + x_tgt))
      x_tgt = ffn(f'ffn_tgt_{i}')(x_tgt, deterministic)
    return _dense(self.out_features, 'output_projection', self.dtype)(x_tgt)


def sample_patch_mask(rng: jax.Array, batch_size: int, num_patches: int,
                      retain_low: float, retain_high: float) -> jnp.ndarray:
  """Random subsets of the source patches, as a (B, N) bool keep-mask.

  As the released code: one count k per batch, uniform over the integers
  [int(N * low), int(N * high)] (at least 1), then for each example k patches
  drawn uniformly without replacement (the first k of a random permutation).
  """
  k_rng, perm_rng = jax.random.split(rng)
  low = max(int(num_patches * retain_low), 1)
  high = max(min(int(num_patches * retain_high), num_patches), low)
  k = jax.random.randint(k_rng, (), low, high + 1)
  noise = jax.random.uniform(perm_rng, (batch_size, num_patches))
  rank = jnp.argsort(jnp.argsort(noise, axis=-1), axis=-1)
  return rank < k


class PositionEmbeddingLearned(nn.Module):
  """DETR's learned position embedding: row and column tables, concatenated.

  Parameters `row_embed` (H, C/2) and `col_embed` (W, C/2), uniform [0, 1).
  """
  num_pos_feats: int

  @nn.compact
  def __call__(self, height: int, width: int) -> jnp.ndarray:
    """-> (H, W, 2 * num_pos_feats): [col_embed[x], row_embed[y]] at (y, x)."""
    row = self.param('row_embed', nn.initializers.uniform(1.0), (height, self.num_pos_feats))
    col = self.param('col_embed', nn.initializers.uniform(1.0), (width, self.num_pos_feats))
    return jnp.concatenate([
        jnp.broadcast_to(col[None, :, :], (height, width, self.num_pos_feats)),
        jnp.broadcast_to(row[:, None, :], (height, width, self.num_pos_feats)),
    ], axis=-1)


def target_templates(joint_embeddings: jnp.ndarray, type_embeddings: jnp.ndarray,
                     predict_leaf: bool, twist_joint_offset: int,
                     predict_camera: bool = False) -> jnp.ndarray:
  """Target tokens (T, C): 24 keypoint, 23 twist, [5 leaf,] 1 shape[, 1 camera] templates."""
  parts = [joint_embeddings[:constants.NUM_JOINTS] + type_embeddings[TYPE_UVD],
           joint_embeddings[twist_joint_offset:twist_joint_offset + constants.NUM_TWISTS]
           + type_embeddings[TYPE_PHI]]
  if predict_leaf:
    parts.append(joint_embeddings[np.asarray(LEAF_EMBEDDING_ROWS)] + type_embeddings[TYPE_LEAF])
  parts.append(type_embeddings[TYPE_SHAPE][None])
  if predict_camera:
    parts.append(type_embeddings[TYPE_CAMERA][None])
  return jnp.concatenate(parts, axis=0)


class TransformerHead(nn.Module):
  """Backbone features -> pred_uvd, pred_phi, pred_shape[, pred_leaf][, camera].

  Attributes mirror the model config (hybrik_jax.models.config). mean_shape
  (10 floats) is a constant added to the decoded shape offset.

  predict_camera (this project's, beyond both releases): one more target token
  (type embedding row TYPE_CAMERA) read by `deccam` into a weak-perspective
  camera (s, tx, ty) + init_cam, as HybrIK's camera heads, and a per-joint
  sigma (0, 1) read by `decsigma` (one output) from each of the 24 keypoint
  tokens: the weights of the scale refinement (`models.camera.update_scale`).
  Off, the tokens, parameters and outputs are the 48-token model's.
  """
  d_model: int = 512
  num_heads: int = 8
  num_blocks: int = 6
  ffn_layers: int = 3
  ffn_width: int = 512
  dropout: float = 0.1
  retain_low: float = 0.2
  retain_high: float = 1.0
  predict_leaf: bool = False
  twist_joint_offset: int = 0
  mean_shape: tuple[float, ...] = (0.0,) * 10
  attention_impl: Optional[str] = None
  dtype: Any = jnp.float32
  remat: bool = False  # Transformer.remat
  predict_camera: bool = False
  init_cam: tuple[float, ...] = INIT_CAM

  @nn.compact
  def __call__(self, features: jnp.ndarray, train: bool,
               patch_mask: Optional[jnp.ndarray] = None) -> dict[str, jnp.ndarray]:
    """features (B, h, w, C) -> {'pred_uvd': (B,24,3) in [-0.5, 0.5] nominal,
    'pred_phi': (B,23,2) (cos, sin) unnormalised, 'pred_shape': (B,10),
    'pred_leaf': (B,5,4) quaternions (w,x,y,z), only if predict_leaf,
    'pred_camera': (B,3) (s, tx, ty) and 'pred_sigma': (B,24) in (0,1), only if
    predict_camera}.

    At train time a patch subset is drawn from the 'patches' rng stream unless
    `patch_mask` (B, h*w) bool is given; at eval all patches are used.
    """
    if not 0.0 < self.retain_low <= self.retain_high <= 1.0:
      raise ValueError('need 0 < retain_low <= retain_high <= 1, got '
                       f'{self.retain_low}, {self.retain_high}')
    if not 0 <= self.twist_joint_offset <= 1:
      raise ValueError(f'twist_joint_offset must be 0 or 1, got {self.twist_joint_offset}')
    batch, height, width, channels = features.shape
    if channels % 2:
      raise ValueError(f'backbone channels must be even, got {channels}')
    joint_embeddings = self.param('joint_embeddings', nn.initializers.normal(1.0),
                                  (constants.NUM_JOINTS_29, channels))
    type_embeddings = self.param('type_embeddings', nn.initializers.normal(1.0),
                                 (NUM_TYPE_EMBEDDINGS, channels))
    pos = PositionEmbeddingLearned(channels // 2, name='pos_embedding')(height, width)
    src = (features + pos.astype(features.dtype)).reshape(batch, height * width, channels)
    if self.predict_camera and len(self.init_cam) != 3:
      raise ValueError(f'TransformerHead: init_cam needs 3 values (s, tx, ty), '
                       f'got {self.init_cam!r}')
    tgt = target_templates(joint_embeddings, type_embeddings, self.predict_leaf,
                           self.twist_joint_offset, self.predict_camera)
    tgt = tgt[None].astype(self.dtype)  # (1, T, C): Transformer broadcasts it

    if patch_mask is None and train and self.retain_low < 1.0:
      patch_mask = sample_patch_mask(self.make_rng('patches'), batch, height * width,
                                     self.retain_low, self.retain_high)
    out = Transformer(self.num_blocks, self.ffn_layers, self.ffn_width, self.d_model,
                      self.num_heads, self.dropout, out_features=channels,
                      dtype=self.dtype, attention_impl=self.attention_impl,
                      remat=self.remat, name='transformer')(src, tgt, patch_mask, deterministic=not train)

    n, t = constants.NUM_JOINTS, constants.NUM_TWISTS
    dec = lambda features, name: _dense(features, name, self.dtype)
    result = {
        'pred_uvd': dec(3, 'decjoint')(out[:, :n]),
        'pred_phi': dec(2, 'decphi')(out[:, n:n + t]),
    }
    if self.predict_leaf:
      result['pred_leaf'] = dec(4, 'decleaf')(out[:, n + t:n + t + 5])
    shape_token = n + t + (5 if self.predict_leaf else 0)
    mean_shape = jnp.asarray(self.mean_shape, jnp.float32)
    result['pred_shape'] = (dec(constants.NUM_BETAS, 'decshape')(out[:, shape_token])
                            + mean_shape)
    if self.predict_camera:
      result['pred_camera'] = (dec(3, 'deccam')(out[:, shape_token + 1])
                               + jnp.asarray(self.init_cam, jnp.float32))
      result['pred_sigma'] = jax.nn.sigmoid(
          dec(1, 'decsigma')(out[:, :n])[..., 0].astype(jnp.float32))
    out_dtype = jnp.promote_types(self.dtype, jnp.float32)
    return {k: v.astype(out_dtype) for k, v in result.items()}
