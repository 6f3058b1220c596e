"""Tests for hybrik_jax.models.hrnet (and its conversion from the released names).

tests/data/hrnet_released_tiny.npz holds numbers from the released
HybrIK-Transformer HRNet (see tests/data/README.md): its key names and shapes
(a tiny stage layout and W48) and the features it computed for fixed weights
and images. The weights are regenerated here from the seed with the same
recipe, converted by hybrik_jax.convert and run through the Flax HRNet.
"""

import functools
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrik_jax import convert
from hybrik_jax.models import backbones
from hybrik_jax.models import hrnet
from hybrik_jax.models import variables as variables_lib

FIXTURE = os.path.join(os.path.dirname(__file__), 'data', 'hrnet_released_tiny.npz')
# The stage layout the fixture was made with (STAGE2..4 of the released yaml:
# NUM_MODULES, NUM_BLOCKS, NUM_CHANNELS); stem, stage 1 and head as released.
RELEASED_TINY_STAGES = ((1, (1, 1), (4, 8)), (2, (1, 1, 1), (4, 8, 16)),
                        (1, (1, 1, 1, 1), (4, 8, 16, 32)))


@functools.lru_cache(None)
def _fixture():
  return dict(np.load(FIXTURE))


def _shapes(strings):
  return [tuple(int(d) for d in s.split(',') if d) for s in strings]


def weight_recipe(name, shape, rng):
  """The fixture's deterministic weights (BatchNorm stats near 0 / 1, He-scaled kernels)."""
  if name.endswith('num_batches_tracked'):
    return np.zeros(shape, np.int64)
  if name.endswith('running_var'):
    return rng.uniform(0.5, 1.5, shape).astype(np.float32)
  if name.endswith('running_mean'):
    return rng.normal(0.0, 0.1, shape).astype(np.float32)
  if len(shape) == 1:
    if name.endswith('weight'):
      return (1.0 + rng.normal(0.0, 0.1, shape)).astype(np.float32)
    return rng.normal(0.0, 0.1, shape).astype(np.float32)
  return rng.normal(0.0, 1.0 / np.sqrt(np.prod(shape[1:])), shape).astype(np.float32)


def _to_flax(state_dict):
  """Released get_hrnet names -> {'params', 'batch_stats'} through the converter's mapping."""
  flat = {}
  for key, value in state_dict.items():
    target = convert.translate_key('preact.' + key, 'transformer')
    if target == 'skip':
      continue
    assert target is not None, key
    collection, path, layout = target
    assert path[0] == 'backbone'
    flat[(collection,) + path[1:]] = convert.convert_tensor(value, layout)
  return variables_lib.unflatten(flat)


def _flat_shapes(tree):
  return {p: tuple(v.shape) for p, v in variables_lib.flatten(tree).items()}


@pytest.mark.parametrize('name, num_params', [
    # The released get_hrnet (generate_feat=True, generate_hm=False), buffers excluded.
    ('hrnet_w48', 75_420_864),
    ('hrnet_w32', 39_183_680),
])
def test_paper_hrnets_shapes_and_param_counts(name, num_params):
  model = backbones.create_backbone(name)
  images = jax.ShapeDtypeStruct((2, 256, 256, 3), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), images)
  out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, images)
  assert out.shape == (2, 8, 8, 2048) and model.out_channels == 2048
  assert sum(int(np.prod(x.shape)) for x in jax.tree.leaves(variables['params'])) == num_params


def test_matches_the_released_hrnet_on_the_fixture():
  f = _fixture()
  rng = np.random.default_rng(int(f['weight_seed']))
  sd = {k: weight_recipe(k, s, rng) for k, s in zip(f['keys'], _shapes(f['shapes']))}
  sums = [float(np.abs(sd[k]).astype(np.float64).sum()) for k in f['keys']]
  np.testing.assert_allclose(sums, f['weight_abs_sums'], rtol=1e-6)  # same weights
  variables = _to_flax(sd)
  model = hrnet.HRNet(stages=RELEASED_TINY_STAGES)
  x = jnp.asarray(f['images'].transpose(0, 2, 3, 1))
  expected = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  assert _flat_shapes(variables) == _flat_shapes(dict(expected))  # one-to-one, same shapes
  out = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
  ref = f['features'].transpose(0, 2, 3, 1)
  assert out.shape == ref.shape == (2, 2, 2, 2048)
  assert np.abs(out - ref).max() / np.abs(ref).max() < 1e-4


def test_released_w48_names_map_one_to_one():
  f = _fixture()
  sd = {k: np.broadcast_to(np.float32(0), s) for k, s in zip(f['w48_keys'], _shapes(f['w48_shapes']))}
  model = hrnet.HRNetW48()
  expected = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False),
                            jax.ShapeDtypeStruct((1, 256, 256, 3), jnp.float32))
  assert _flat_shapes(_to_flax(sd)) == _flat_shapes(dict(expected))


@pytest.fixture(scope='module')
def tiny():
  model = backbones.create_backbone('hrnet_tiny')
  x = jax.random.normal(jax.random.key(1), (2, 64, 64, 3))
  variables = jax.jit(lambda x: model.init(jax.random.key(0), x, train=False))(x)
  return model, x, variables


def test_train_mode_updates_batch_stats_and_remat_changes_nothing(tiny):
  model, x, variables = tiny
  remat = backbones.create_backbone('hrnet_tiny', remat=True)

  def loss(params, m):
    y, updates = m.apply({'params': params, 'batch_stats': variables['batch_stats']}, x,
                         train=True, mutable=['batch_stats'])
    return jnp.sum(y ** 2), (y, updates)

  @jax.jit
  def both(params):
    return (jax.grad(loss, has_aux=True)(params, model),
            jax.grad(loss, has_aux=True)(params, remat))

  (g, (out, updates)), (g_remat, _) = both(variables['params'])
  assert out.shape == (2, 2, 2, 64)
  assert bool(jnp.all(out >= 0))  # ends in a ReLU
  for name in ('bn1', 'final_feat_layer_1'):
    assert not np.allclose(updates['batch_stats'][name]['mean'],
                           variables['batch_stats'][name]['mean'])
  chex.assert_trees_all_close(g, g_remat, rtol=1e-4, atol=1e-6)


def test_bfloat16_compute_keeps_float32_params(tiny):
  model, x, variables = tiny
  model16 = backbones.create_backbone('hrnet_tiny', dtype=jnp.bfloat16)
  out, ref = jax.jit(lambda v: (model16.apply(v, x, train=False),
                                model.apply(v, x, train=False)))(variables)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables['params']))
  assert out.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(out, np.float32), ref, rtol=0.1,
                             atol=0.1 * float(np.abs(ref).max()))


def test_bad_inputs_are_refused():
  with pytest.raises(ValueError, match='hrnet_w48'):
    backbones.create_backbone('hrnet_w47')
  model = backbones.create_backbone('hrnet_tiny')
  with pytest.raises(ValueError, match='multiples of 32'):
    jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False),
                   jax.ShapeDtypeStruct((1, 48, 48, 3), jnp.float32))
