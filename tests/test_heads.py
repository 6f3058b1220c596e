"""Tests for the Transformer and deconvolution heads."""

import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrik_jax.models import config as config_lib
from hybrik_jax.models import deconv_head
from hybrik_jax.models import transformer

RNGS = lambda seed: {'params': jax.random.key(seed), 'dropout': jax.random.key(seed + 1),
                     'patches': jax.random.key(seed + 2)}


def _transformer_head(cfg, **kw):
  return transformer.TransformerHead(
      d_model=cfg.d_model, num_heads=cfg.num_heads, num_blocks=cfg.num_blocks,
      ffn_layers=cfg.ffn_layers, ffn_width=cfg.ffn_width, dropout=cfg.dropout,
      retain_low=cfg.retain_low, retain_high=cfg.retain_high, **kw)


def _deconv_head(cfg, **kw):
  return deconv_head.DeconvHead(deconv_channels=cfg.deconv_channels, depth_dim=cfg.depth_dim,
                                fc_width=cfg.fc_width, **kw)


def _expected_shapes(batch, leaf):
  shapes = {'pred_uvd': (batch, 24, 3), 'pred_phi': (batch, 23, 2), 'pred_shape': (batch, 10)}
  if leaf:
    shapes['pred_leaf'] = (batch, 5, 4)
  return shapes


@pytest.mark.parametrize('head_name', ['transformer', 'deconv'])
@pytest.mark.parametrize('leaf', [False, True])
def test_paper_config_shapes_train_and_eval(head_name, leaf):
  cfg = config_lib.get_model_config()
  make = _transformer_head if head_name == 'transformer' else _deconv_head
  head = make(cfg, predict_leaf=leaf)
  feats = jax.ShapeDtypeStruct((2, 8, 8, 512), jnp.float32)  # ResNet-34 at 256 px
  variables = jax.eval_shape(lambda f: head.init(RNGS(0), f, train=False), feats)
  for train in (False, True):
    fn = functools.partial(head.apply, train=train, rngs=RNGS(3), mutable=['batch_stats'])
    out, _ = jax.eval_shape(fn, variables, feats)
    assert {k: v.shape for k, v in out.items()} == _expected_shapes(2, leaf)
  params = variables['params']
  if head_name == 'transformer':
    assert params['joint_embeddings'].shape == (29, 512)
    assert params['type_embeddings'].shape == (10, 512)
    assert params['pos_embedding']['row_embed'].shape == (8, 256)
    assert len([k for k in params['transformer'] if k.startswith('mha_cross_')]) == 6
    assert len([k for k in params['transformer']['ffn_src_0']
                if k.startswith('fc_layers_')]) == 3
  else:
    assert params['final_layer']['kernel'].shape == (1, 1, 256, 24 * 64)
    assert params['deconv_layers_0']['kernel'].shape == (4, 4, 256, 512)


def _tiny_setup(head_name, leaf, batch=2):
  cfg = config_lib.get_tiny_model_config(num_blocks=1)
  make = _transformer_head if head_name == 'transformer' else _deconv_head
  head = make(cfg, predict_leaf=leaf, mean_shape=tuple(np.linspace(-1, 1, 10)))
  feats = jax.random.normal(jax.random.key(7), (batch, 4, 4, 64))
  variables = jax.jit(functools.partial(head.init, train=False))(RNGS(0), feats)
  return head, feats, variables


@pytest.mark.parametrize('head_name', ['transformer', 'deconv'])
def test_tiny_gradient_reaches_every_parameter_and_rng_determinism(head_name):
  head, feats, variables = _tiny_setup(head_name, leaf=True)

  def loss_fn(params, rng):
    out, _ = head.apply({**variables, 'params': params}, feats, train=True,
                        rngs={'dropout': rng, 'patches': jax.random.fold_in(rng, 1)},
                        mutable=['batch_stats'])
    return sum(jnp.sum(jnp.sin(3.0 * v)) for v in out.values()), out

  grad_fn = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
  (_, out1), grads = grad_fn(variables['params'], jax.random.key(5))
  assert {k: v.shape for k, v in out1.items()} == _expected_shapes(2, True)
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    assert np.all(np.isfinite(g)), path
    assert np.abs(g).max() > 0, f'no gradient reaches {jax.tree_util.keystr(path)}'
  (_, out2), _ = grad_fn(variables['params'], jax.random.key(5))
  chex.assert_trees_all_close(out1, out2)  # same rng, same output
  (_, out3), _ = grad_fn(variables['params'], jax.random.key(6))
  assert not np.allclose(out1['pred_phi'], out3['pred_phi'])  # dropout / patches act
  # Eval is deterministic and needs no rng.
  eval_fn = jax.jit(lambda v: head.apply(v, feats, train=False))
  chex.assert_trees_all_close(eval_fn(variables), eval_fn(variables))
  assert {k: v.shape for k, v in eval_fn(variables).items()} == _expected_shapes(2, True)


def test_sample_patch_mask_counts_and_randomness():
  n = 64
  mask = transformer.sample_patch_mask(jax.random.key(0), 16, n, 0.2, 1.0)
  counts = np.asarray(mask.sum(-1))
  assert mask.shape == (16, n) and mask.dtype == jnp.bool_
  assert np.all(counts == counts[0])  # one k per batch
  assert int(0.2 * n) <= counts[0] <= n
  assert len({tuple(r) for r in np.asarray(mask)}) > 1  # subsets differ per example
  ks = [int(transformer.sample_patch_mask(jax.random.key(s), 1, n, 0.2, 1.0).sum())
        for s in range(40)]
  assert min(ks) >= 12 and max(ks) <= 64 and len(set(ks)) > 10
  # Tiny maps keep at least one patch.
  assert int(transformer.sample_patch_mask(jax.random.key(1), 2, 2, 0.2, 0.2).sum()) == 2


def test_masked_run_equals_run_on_gathered_subset():
  d, n, c = 32, 16, 24
  core = transformer.Transformer(num_blocks=2, num_layers=3, layer_width=32, d_model=d,
                                 num_heads=4, dropout=0.1, out_features=c)
  src = jax.random.normal(jax.random.key(0), (3, n, c))
  tgt = jax.random.normal(jax.random.key(1), (3, 48, c))
  params = jax.jit(core.init)(jax.random.key(2), src, tgt)
  mask = transformer.sample_patch_mask(jax.random.key(3), 3, n, 0.2, 0.6)
  k = int(mask[0].sum())
  assert 0 < k < n
  run = jax.jit(core.apply)
  masked = run(params, src, tgt, mask)
  order = jnp.argsort(~mask, axis=-1, stable=True)[:, :k]
  gathered = jnp.take_along_axis(src, order[..., None], axis=1)
  subset = run(params, gathered, tgt, jnp.ones((3, k), bool))
  np.testing.assert_allclose(masked, subset, rtol=1e-5, atol=1e-5)
  # The dropped patches matter when they are kept: the full run differs.
  full = run(params, src, tgt, jnp.ones((3, n), bool))
  assert not np.allclose(full, masked, atol=1e-3)
  # Changing dropped patches does not change the masked run.
  noisy = jnp.where(mask[..., None], src, 100.0 * src + 7.0)
  np.testing.assert_allclose(run(params, noisy, tgt, mask), masked, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('train', [False, True])
def test_shared_targets_equal_broadcast_targets(train):
  """A batch-1 x_tgt (computed once, then broadcast) gives the outputs and the
  gradients of the same targets broadcast to the batch, with and without
  dropout; a target batch that is neither 1 nor B is refused."""
  d, n, c, b = 32, 16, 24, 3
  core = transformer.Transformer(num_blocks=2, num_layers=3, layer_width=32, d_model=d,
                                 num_heads=4, dropout=0.1, out_features=c)
  src = jax.random.normal(jax.random.key(0), (b, n, c))
  tgt1 = jax.random.normal(jax.random.key(1), (1, 48, c))
  tgt_b = jnp.broadcast_to(tgt1, (b, 48, c))
  params = core.init(jax.random.key(2), src, tgt_b)
  rngs = {'dropout': jax.random.key(3)}

  def loss(p, tgt):
    out = core.apply(p, src, tgt, deterministic=not train, rngs=rngs)
    return jnp.sum(jnp.sin(out)), out

  (l1, out1), g1 = jax.jit(jax.value_and_grad(loss, has_aux=True))(params, tgt1)
  (lb, out_b), gb = jax.jit(jax.value_and_grad(loss, has_aux=True))(params, tgt_b)
  chex.assert_shape(out1, (b, 48, c))
  np.testing.assert_allclose(out1, out_b, rtol=1e-5, atol=1e-5)
  assert not np.allclose(out1[0], out1[1], atol=1e-3)  # examples differ by their source
  chex.assert_trees_all_close(g1, gb, rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match='x_tgt batch must be 1 or 3'):
    core.apply(params, src, jnp.concatenate([tgt_b, tgt1]))


def test_torch_layer_norm_uses_unbiased_std_and_eps_on_std():
  x = np.random.default_rng(0).normal(size=(3, 7)).astype(np.float32)
  ln = transformer.TorchLayerNorm()
  params = ln.init(jax.random.key(0), x)
  ref = (x - x.mean(-1, keepdims=True)) / (x.std(-1, ddof=1, keepdims=True) + 1e-6)
  np.testing.assert_allclose(ln.apply(params, x), ref, rtol=1e-5, atol=1e-6)


def test_target_templates_follow_the_released_code():
  joint = jnp.arange(29.0)[:, None] * jnp.ones((1, 4))
  types = 100.0 * jnp.arange(1.0, 11.0)[:, None] * jnp.ones((1, 4))
  t = transformer.target_templates(joint, types, predict_leaf=True, twist_joint_offset=0)
  assert t.shape == (53, 4)
  np.testing.assert_array_equal(t[:24, 0], np.arange(24) + 100)
  np.testing.assert_array_equal(t[24:47, 0], np.arange(23) + 200)  # joint_embeddings[:23]
  np.testing.assert_array_equal(t[47:52, 0], np.arange(24, 29) + 300)  # leaf joints
  assert t[52, 0] == 400  # shape token: type embedding only
  t48 = transformer.target_templates(joint, types, predict_leaf=False, twist_joint_offset=1)
  assert t48.shape == (48, 4)
  np.testing.assert_array_equal(t48[24:47, 0], np.arange(1, 24) + 200)


def test_target_templates_with_numpy_embeddings_under_jit():
  """convert.convert_state_dict returns numpy arrays; a jitted apply closes over
  them, so the templates must index them with static (numpy) indices."""
  joint = np.arange(29.0, dtype=np.float32)[:, None] * np.ones((1, 4), np.float32)
  types = np.ones((10, 4), np.float32)
  t = jax.jit(lambda: transformer.target_templates(
      joint, types, predict_leaf=True, twist_joint_offset=0))()
  np.testing.assert_array_equal(np.asarray(t)[47:52, 0], np.arange(24, 29) + 1)


def test_soft_argmax_of_a_peaked_heatmap():
  logits = jnp.full((1, 24, 8, 16, 16), -1e4)
  logits = logits.at[0, 5, 3, 10, 4].set(0.0)  # joint 5 at d=3, y=10, x=4
  uvd = deconv_head.soft_argmax_3d(logits)
  np.testing.assert_allclose(uvd[0, 5], [4 / 16 - 0.5, 10 / 16 - 0.5, 3 / 8 - 0.5], atol=1e-6)
  uniform = deconv_head.soft_argmax_3d(jnp.zeros((1, 2, 8, 16, 16)))
  np.testing.assert_allclose(uniform, np.broadcast_to(
      [7.5 / 16 - 0.5, 7.5 / 16 - 0.5, 3.5 / 8 - 0.5], (1, 2, 3)), atol=1e-6)


def test_deconv_head_heatmap_is_8x_the_feature_map_and_mean_shape_is_added():
  head, feats, variables = _tiny_setup('deconv', leaf=False)
  _, state = head.apply(variables, feats, train=False, capture_intermediates=True,
                        mutable=['intermediates'])
  final = state['intermediates']['final_layer']['__call__'][0]
  assert final.shape == (2, 32, 32, 24 * 8)
  zeroed = jax.tree.map(jnp.zeros_like, variables['params'])
  out = head.apply({**variables, 'params': zeroed}, feats, train=False)
  np.testing.assert_allclose(out['pred_shape'], np.broadcast_to(np.linspace(-1, 1, 10), (2, 10)),
                             atol=1e-6)


@pytest.mark.parametrize('h,w,c_in,c_out', [(4, 4, 8, 8), (3, 5, 6, 4), (1, 1, 3, 2)])
def test_subpixel_conv_transpose_equals_flax_conv_transpose_with_gradients(h, w, c_in, c_out):
  # The layer as it was: Flax's ConvTranspose with PyTorch's k=4, s=2, p=1.
  flax_layer = nn.ConvTranspose(c_out, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)),
                                use_bias=False, transpose_kernel=True)
  layer = deconv_head.ConvTranspose4x4S2(c_out)
  kx, kk, kc = jax.random.split(jax.random.key(h * 100 + w), 3)
  x = jax.random.normal(kx, (2, h, w, c_in))
  ref_vars = flax_layer.init(jax.random.key(0), x)
  new_vars = layer.init(jax.random.key(0), x)
  assert jax.tree.map(jnp.shape, ref_vars) == jax.tree.map(jnp.shape, new_vars)
  kernel = jax.random.normal(kk, (4, 4, c_out, c_in))
  cot = jax.random.normal(kc, (2, 2 * h, 2 * w, c_out))

  def value_and_grads(apply):
    out, vjp = jax.vjp(lambda k, x: apply({'params': {'kernel': k}}, x), kernel, x)
    return (out,) + vjp(cot)

  ref = value_and_grads(flax_layer.apply)
  for impl in ('subpixel', 'lax'):
    got = value_and_grads(deconv_head.ConvTranspose4x4S2(c_out, impl=impl).apply)
    assert got[0].shape == (2, 2 * h, 2 * w, c_out)
    for g, r in zip(got, ref):   # output, d kernel, d input
      np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(r))))


def test_conv_transpose_4x4_s2_matches_pytorch_indexing_and_checks_shapes():
  # One input pixel, one kernel tap: PyTorch puts x[i] * W[k] at output 2i + k - 1.
  x = jnp.zeros((1, 3, 3, 1)).at[0, 1, 1, 0].set(1.0)
  for ky, kx in [(0, 0), (1, 3), (3, 2)]:
    kernel = jnp.zeros((4, 4, 1, 1)).at[ky, kx].set(1.0)
    out = np.asarray(deconv_head.conv_transpose_4x4_s2(x, kernel))[0, :, :, 0]
    expected = np.zeros((6, 6))
    expected[2 + ky - 1, 2 + kx - 1] = 1.0
    np.testing.assert_array_equal(out, expected)
  with pytest.raises(ValueError, match='kernel'):
    deconv_head.conv_transpose_4x4_s2(x, jnp.zeros((3, 3, 1, 1)))
  with pytest.raises(ValueError, match='impl'):
    deconv_head.ConvTranspose4x4S2(1, impl='fft').init(jax.random.key(0), x)


def test_deconv_head_subpixel_equals_lax_head_in_train_mode():
  head, feats, variables = _tiny_setup('deconv', leaf=True)
  variables = jax.tree.map(lambda v: v * 30.0, variables)  # non-trivial heatmaps

  def run(impl):
    h = head.clone(deconv_impl=impl)

    def loss(params):
      out, _ = h.apply({**variables, 'params': params}, feats, train=True,
                       rngs=RNGS(5), mutable=['batch_stats'])
      return sum(jnp.sum(jnp.sin(3.0 * v)) for v in out.values()), out
    return jax.grad(loss, has_aux=True)(variables['params'])

  (g_new, out_new), (g_ref, out_ref) = run('subpixel'), run('lax')
  chex.assert_trees_all_close(out_new, out_ref, rtol=1e-5, atol=1e-6)
  scale = max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(g_ref))
  chex.assert_trees_all_close(g_new, g_ref, rtol=1e-4, atol=1e-5 * scale)
