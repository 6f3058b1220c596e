"""Tests for hybrik_jax.models.resnet."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrik_jax.models import backbones


def _param_count(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@pytest.mark.parametrize('name, channels, num_params', [
    # torchvision's parameter counts minus the ImageNet classifier (fc).
    ('resnet18', 512, 11_689_512 - 513_000),
    ('resnet34', 512, 21_797_672 - 513_000),
    ('resnet50', 2048, 25_557_032 - 2_049_000),
])
def test_paper_backbones_shapes_and_param_counts(name, channels, num_params):
  model = backbones.create_backbone(name)
  images = jax.ShapeDtypeStruct((2, 256, 256, 3), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), images)
  out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, images)
  assert out.shape == (2, 8, 8, channels)  # stride 32
  assert _param_count(variables['params']) == num_params
  assert model.out_channels == channels


def test_train_updates_batch_stats_eval_does_not_need_them_mutable():
  model = backbones.create_backbone('resnet_tiny')
  x = jax.random.normal(jax.random.key(1), (2, 64, 64, 3))
  variables = model.init(jax.random.key(0), x, train=False)
  out, updates = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=['batch_stats']))(
      variables, x)
  assert out.shape == (2, 2, 2, 64)
  old = variables['batch_stats']['bn1']['mean']
  new = updates['batch_stats']['bn1']['mean']
  assert not np.allclose(old, new)
  # Momentum 0.9 (PyTorch 0.1): new = 0.9 * old + 0.1 * batch mean.
  stem = jax.lax.conv_general_dilated(
      x, variables['params']['conv1']['kernel'], (2, 2), ((3, 3), (3, 3)),
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  np.testing.assert_allclose(new, 0.9 * old + 0.1 * stem.mean((0, 1, 2)), rtol=1e-4, atol=1e-5)
  out_eval = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
  assert out_eval.shape == out.shape
  assert bool(jnp.all(out_eval >= 0))  # ends in a ReLU


def test_bfloat16_compute_keeps_float32_params():
  model = backbones.create_backbone('resnet_tiny', dtype=jnp.bfloat16)
  x = jnp.ones((1, 64, 64, 3))
  variables = model.init(jax.random.key(0), x, train=False)
  chex.assert_trees_all_equal_dtypes(
      variables['params'], jax.tree.map(lambda p: jnp.zeros((), jnp.float32), variables['params']))
  out = model.apply(variables, x, train=False)
  assert out.dtype == jnp.bfloat16
  ref = backbones.create_backbone('resnet_tiny').apply(variables, x, train=False)
  np.testing.assert_allclose(np.asarray(out, np.float32), ref, rtol=0.1, atol=0.1)


def test_unknown_backbone_is_refused():
  with pytest.raises(ValueError, match='resnet34'):
    backbones.create_backbone('resnet35')


@pytest.mark.parametrize('stride, grid', [(32, 2), (16, 4), (8, 8)])
def test_output_stride_keeps_the_parameters(stride, grid):
  x = jax.random.normal(jax.random.key(1), (2, 64, 64, 3))
  base = backbones.create_backbone('resnet_tiny')
  variables = base.init(jax.random.key(0), x, train=False)
  model = backbones.create_backbone('resnet_tiny', output_stride=stride)
  chex.assert_trees_all_equal_shapes(
      model.init(jax.random.key(0), x, train=False), variables)
  out = model.apply(variables, x, train=False)
  assert out.shape == (2, grid, grid, 64)
  # Stages 1-2 are the same computation whatever the stride.
  early = lambda m: m.apply(variables, x, train=False, capture_intermediates=(
      lambda mdl, _: mdl.name == 'layer2_0'))[1]['intermediates']['layer2_0']
  np.testing.assert_allclose(early(model)['__call__'][0],
                             early(base)['__call__'][0], rtol=1e-6)
  if stride != 32:
    assert not np.allclose(np.asarray(out).mean((1, 2)),
                           np.asarray(base.apply(variables, x, train=False)).mean((1, 2)))


def test_bad_output_stride_is_refused():
  model = backbones.create_backbone('resnet_tiny', output_stride=4)
  with pytest.raises(ValueError, match=r'output_stride must be one of \(8, 16, 32\)'):
    model.init(jax.random.key(0), jnp.ones((1, 64, 64, 3)), train=False)
