"""Tests for hybrik_jax.models.hybrik (network, decode, geometry, flip test) and config."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrik_jax import errors
from hybrik_jax import models
from hybrik_jax.body import constants
from hybrik_jax.body import ik
from hybrik_jax.body import smpl
from hybrik_jax.body import synthetic_body
from hybrik_jax.body import synthetic_smplx
from hybrik_jax.models import config as config_lib
from hybrik_jax.models import hybrik
from hybrik_jax.models import hybrik_x
from hybrik_jax.models import inference


@pytest.fixture(scope='module')
def body_model():
  return synthetic_body.synthetic_smpl_model()


def _camera(batch, seed=0):
  """Random K of a 400 px stored crop, affine trans_inv (rotation, scale, shift), roots."""
  rng = np.random.default_rng(seed)
  f = rng.uniform(800, 1500, batch)
  k = np.zeros((batch, 3, 3), np.float32)
  k[:, 0, 0], k[:, 1, 1] = f, f * rng.uniform(0.95, 1.05, batch)
  k[:, :2, 2] = rng.uniform(150, 250, (batch, 2))
  k[:, 2, 2] = 1.0
  angle = rng.uniform(-0.5, 0.5, batch)
  scale = rng.uniform(1.2, 1.8, batch)
  trans_inv = np.zeros((batch, 2, 3), np.float32)
  trans_inv[:, 0, 0] = trans_inv[:, 1, 1] = scale * np.cos(angle)
  trans_inv[:, 0, 1], trans_inv[:, 1, 0] = -scale * np.sin(angle), scale * np.sin(angle)
  trans_inv[:, :, 2] = rng.uniform(-20, 40, (batch, 2))
  joint_root = np.stack([rng.uniform(-0.5, 0.5, batch), rng.uniform(-0.3, 0.3, batch),
                         rng.uniform(3.0, 7.0, batch)], -1).astype(np.float32)
  depth_factor = np.full((batch, 1), 2.2, np.float32)
  return dict(trans_inv=trans_inv, intrinsics=k, joint_root=joint_root,
              depth_factor=depth_factor)


def test_model_config_defaults_and_overrides():
  cfg = models.get_model_config()
  assert (cfg.backbone, cfg.head, cfg.input_size, cfg.d_model, cfg.num_heads, cfg.num_blocks,
          cfg.ffn_layers, cfg.ffn_width, cfg.dropout) == ('resnet34', 'transformer', 256, 512,
                                                          8, 6, 3, 512, 0.1)
  assert (cfg.retain_low, cfg.retain_high, cfg.depth_dim) == (0.2, 1.0, 64)
  assert cfg.mean_shape == (0.0,) * 10 and cfg.deconv_channels == (256, 256, 256)
  assert models.get_model_config(mean_shape=[1.0] * 10).mean_shape == (1.0,) * 10
  with pytest.raises(KeyError, match='d_modle'):
    models.get_model_config(d_modle=3)
  with pytest.raises(ValueError, match='unknown model config fields'):
    models.create_model(dict(models.get_model_config(), extra=1))
  with pytest.raises(ValueError, match='dtype'):
    models.create_model(models.get_model_config(dtype='int8'))


def test_ik_convention_is_read_from_the_model_config_and_written_back():
  read = models.config.ik_convention
  assert read(models.get_model_config()) == ik.IKConvention.corrected()
  assert read(models.get_model_config(ik_convention='released')) == ik.IKConvention.released()
  for convention in (ik.IKConvention.corrected(), ik.IKConvention.released()):
    fields = models.config.ik_fields(convention)
    assert set(fields) == set(models.config.IK_FIELDS)
    assert read(models.get_model_config(**fields)) == convention  # round trip
    assert read(fields) == convention  # a plain mapping (model_config.json) too
  # Fields that are set override the named convention's; JSON lists are fine.
  custom = read(dict(models.config.ik_fields(ik.IKConvention.released()),
                     leaf_joints=[10, 11], depth_factor=2.5))
  assert custom == ik.IKConvention.released().replace(leaf_joints=(10, 11),
                                                      depth_factor=2.5)
  assert custom.root_fit == 'svd' and custom.swing_eps == ik.RELEASED_SWING_EPS


@pytest.mark.parametrize('fields, message', [
    (dict(ik_convention='paper'),
     r"model.ik_convention must be one of \('released', 'corrected', 'hybrik'\), got 'paper'"),
    (dict(ik_convention=None), 'model.ik_convention must be one of'),
    (dict(leaf_joints='abc'),
     r"model.leaf_joints must be a list of distinct joints among \(15, 22, 23, 10, 11\) "
     r"\(at most 5\), got 'abc'"),
    (dict(leaf_joints=(15, 22, 23, 10, 11), ik_convention='released'),
     'model.joint23_to_pelvis: joint 23 cannot also take a leaf rotation'),
    (dict(joint23_to_pelvis='no'), 'model.joint23_to_pelvis must be true or false'),
    (dict(leaf_flip_pairs=((1, 2, 3),)), 'model.leaf_flip_pairs must be a list of'),
    (dict(depth_factor=-2.2), r'model.depth_factor must be a number > 0 \(metres\)'),
])
def test_invalid_ik_fields_of_a_model_config_name_the_field(fields, message):
  with pytest.raises(errors.InputError, match=message):
    models.config.ik_convention(models.get_model_config(**fields))


def test_model_config_without_the_ik_fields_is_refused():
  old = {k: v for k, v in models.get_model_config().items()
         if k not in ('leaf_flip_pairs', 'depth_factor')}
  with pytest.raises(errors.InputError,
                     match=r"lacks the IK fields \['leaf_flip_pairs', 'depth_factor'\]"):
    models.config.ik_convention(old)


@pytest.mark.parametrize('head', ['transformer', 'deconv'])
def test_paper_model_shapes(head):
  model = models.create_model(models.get_model_config(head=head))
  images = jax.ShapeDtypeStruct((2, 256, 256, 3), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), images)
  out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, images)
  assert {k: v.shape for k, v in out.items()} == {
      'pred_uvd': (2, 24, 3), 'pred_phi': (2, 23, 2), 'pred_shape': (2, 10)}
  assert set(variables['params']) == {'backbone', 'head'}
  with pytest.raises(ValueError, match=r'images must have shape \(B, 256, 256, 3\)'):
    jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables,
                   jax.ShapeDtypeStruct((2, 128, 128, 3), jnp.float32))


def test_tiny_model_train_and_eval_under_jit_bfloat16():
  cfg = models.get_tiny_model_config(dtype='bfloat16', predict_leaf=True, num_blocks=1)
  model = models.create_model(cfg)
  x = jax.random.normal(jax.random.key(0), (2, 64, 64, 3))
  variables = jax.jit(functools.partial(model.init, train=False))(jax.random.key(1), x)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables['params']))

  @jax.jit
  def train_apply(v, x, rng):
    return model.apply(v, x, train=True, mutable=['batch_stats'],
                       rngs={'dropout': rng, 'patches': jax.random.fold_in(rng, 1)})

  out, updates = train_apply(variables, x, jax.random.key(2))
  assert set(updates) == {'batch_stats'}
  assert out['pred_leaf'].shape == (2, 5, 4)
  assert all(v.dtype == jnp.float32 for v in out.values())
  assert all(np.all(np.isfinite(v)) for v in out.values())


def test_uvd_xyz_round_trip_and_hybrik_formula():
  cam = _camera(3)
  rng = np.random.default_rng(1)
  uvd = rng.uniform(-0.5, 0.5, (3, 24, 3)).astype(np.float32)
  xyz = hybrik.uvd_to_xyz(uvd, input_size=256, **cam)
  back = hybrik.xyz_to_uvd(xyz, input_size=256, **cam)
  np.testing.assert_allclose(back, uvd, atol=1e-4)
  # HybrIK's uvd_to_cam by hand for one joint (intrinsic_param = K^-1).
  b, j = 1, 5
  px = (uvd[b, j, :2] + 0.5) * 256
  img = cam['trans_inv'][b] @ np.array([px[0], px[1], 1.0])
  z = cam['joint_root'][b, 2] + uvd[b, j, 2] * cam['depth_factor'][b, 0]
  ref = np.linalg.inv(cam['intrinsics'][b]) @ np.array([img[0], img[1], 1.0]) * z
  np.testing.assert_allclose(xyz[b, j], ref - cam['joint_root'][b], rtol=1e-4, atol=1e-5)
  # The root at uvd (projection of the root, d=0) maps to the origin.
  root_uvd = hybrik.xyz_to_uvd(jnp.zeros((3, 1, 3)), input_size=256, **cam)
  np.testing.assert_allclose(hybrik.uvd_to_xyz(root_uvd, input_size=256, **cam), 0.0, atol=1e-5)
  with pytest.raises(ValueError, match='depth_factor'):
    hybrik.uvd_to_xyz(uvd, input_size=256, **dict(cam, depth_factor=np.ones((3,))))


def test_flip_outputs_twice_is_identity_and_swaps_pairs():
  rng = np.random.default_rng(0)
  raw = {'pred_uvd': rng.normal(size=(2, 24, 3)), 'pred_phi': rng.normal(size=(2, 23, 2)),
         'pred_shape': rng.normal(size=(2, 10)), 'pred_leaf': rng.normal(size=(2, 5, 4))}
  raw = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), raw)
  flipped = hybrik.flip_outputs(raw)
  chex.assert_trees_all_close(hybrik.flip_outputs(flipped), raw)
  raw, flipped = jax.tree.map(np.asarray, (raw, flipped))
  # Left hip (1) <-> right hip (2), u mirrored; twist of joint 1 is twist index 0.
  np.testing.assert_allclose(flipped['pred_uvd'][:, 1], raw['pred_uvd'][:, 2] * [-1, 1, 1])
  np.testing.assert_allclose(flipped['pred_uvd'][:, 0], raw['pred_uvd'][:, 0] * [-1, 1, 1])
  np.testing.assert_allclose(flipped['pred_phi'][:, 0], raw['pred_phi'][:, 1] * [1, -1])
  np.testing.assert_allclose(flipped['pred_phi'][:, 2], raw['pred_phi'][:, 2] * [1, -1])  # spine1
  np.testing.assert_allclose(flipped['pred_leaf'][:, 1], raw['pred_leaf'][:, 2] * [1, 1, -1, -1])
  np.testing.assert_allclose(flipped['pred_leaf'][:, 0], raw['pred_leaf'][:, 0] * [1, 1, -1, -1])
  np.testing.assert_array_equal(flipped['pred_shape'], raw['pred_shape'])
  # The released models' pairs, over their leaf slots (10, 11, 15, 22, unused).
  released = jax.tree.map(np.asarray, hybrik.flip_outputs(
      raw, constants.RELEASED_FLIP_PAIRS_LEAF))
  np.testing.assert_allclose(released['pred_leaf'][:, 0], raw['pred_leaf'][:, 1] * [1, 1, -1, -1])
  np.testing.assert_allclose(released['pred_leaf'][:, 2], raw['pred_leaf'][:, 2] * [1, 1, -1, -1])
  np.testing.assert_allclose(released['pred_leaf'][:, 3], raw['pred_leaf'][:, 4] * [1, 1, -1, -1])
  images = jnp.asarray(rng.normal(size=(2, 8, 8, 3)))
  np.testing.assert_array_equal(hybrik.flip_image(hybrik.flip_image(images)), images)
  np.testing.assert_array_equal(hybrik.flip_image(images)[:, :, 0], images[:, :, -1])


@pytest.mark.parametrize('convention', ['corrected', 'released'])
def test_flip_test_flips_the_mirrored_prediction_back(convention):
  rng = np.random.default_rng(0)
  raw = {'pred_uvd': rng.normal(size=(2, 24, 3)), 'pred_phi': rng.normal(size=(2, 23, 2)),
         'pred_shape': rng.normal(size=(2, 10)), 'pred_leaf': rng.normal(size=(2, 5, 4))}
  raw = jax.tree.map(jnp.asarray, raw)
  images = jnp.asarray(rng.normal(size=(2, 8, 8, 3)))
  pairs = ik.IKConvention.named(convention).leaf_flip_pairs

  def equivariant_net(x):  # what a perfectly flip-consistent network returns
    is_original = jnp.allclose(x, images)
    return jax.tree.map(lambda a, b: jnp.where(is_original, a, b), raw,
                        hybrik.flip_outputs(raw, pairs))

  chex.assert_trees_all_close(hybrik.flip_test(equivariant_net, images, pairs), raw,
                              atol=1e-6)
  inconsistent = hybrik.flip_test(lambda x: raw, images, pairs)
  np.testing.assert_allclose(inconsistent['pred_uvd'][:, 0, 0], 0.0, atol=1e-6)  # u averaged
  other = ik.IKConvention.named('released' if convention == 'corrected' else 'corrected')
  wrong = hybrik.flip_test(equivariant_net, images, other.leaf_flip_pairs)
  assert np.abs(np.asarray(wrong['pred_leaf']) - np.asarray(raw['pred_leaf'])).max() > 0.1


def test_decode_recovers_the_skeleton_and_isolates_non_finite_rows(body_model):
  cam = _camera(2, seed=3)
  rest = np.asarray(smpl.rest_joints29(body_model, jnp.zeros((1, 10))))[0, :24]
  xyz_true = np.stack([rest - rest[0], (rest - rest[0]) * [1.0, 1.0, -1.0]]).astype(np.float32)
  uvd = hybrik.xyz_to_uvd(xyz_true, input_size=256, **cam)
  raw = {'pred_uvd': uvd, 'pred_phi': jnp.tile(jnp.array([1.0, 0.0]), (2, 23, 1)),
         'pred_shape': jnp.zeros((2, 10))}
  convention = models.config.ik_convention(
      models.get_model_config(input_size=256, depth_factor=2.2))
  del cam['depth_factor']  # the model's, not the batch's
  decode = jax.jit(functools.partial(hybrik.decode, input_size=256, convention=convention))
  out = decode(raw, smpl_model=body_model, **cam)
  np.testing.assert_allclose(out.pred_xyz_24, xyz_true, atol=1e-4)
  assert out.pred_vertices.shape == (2, constants.NUM_VERTICES, 3)
  assert out.pred_xyz_17.shape == (2, 17, 3) and out.pred_rotmats.shape == (2, 24, 3, 3)
  assert out.pred_leaf is None
  np.testing.assert_array_equal(out.valid, [True, True])
  # The skinned skeleton reproduces the bone directions of the input (rest pose here).
  np.testing.assert_allclose(out.pred_xyz_24_struct[0], xyz_true[0], atol=2e-3)

  bad = dict(raw, pred_uvd=raw['pred_uvd'].at[1, 3, 0].set(jnp.nan))
  out_bad = decode(bad, smpl_model=body_model, **cam)
  np.testing.assert_array_equal(out_bad.valid, [True, False])
  for name in ('pred_xyz_24', 'pred_xyz_24_struct', 'pred_xyz_17', 'pred_vertices',
               'pred_rotmats', 'pred_uvd'):
    value = np.asarray(getattr(out_bad, name))
    assert np.all(np.isfinite(value)), name
    np.testing.assert_array_equal(value[1], 0.0)
    np.testing.assert_allclose(value[0], np.asarray(getattr(out, name))[0], atol=1e-6)

  def loss(uvd):
    o = hybrik.decode(dict(bad, pred_uvd=uvd), smpl_model=body_model, input_size=256,
                      convention=convention, **cam)
    return jnp.sum(o.pred_xyz_24_struct ** 2) + jnp.sum(o.pred_xyz_24 ** 2)

  grad = jax.jit(jax.grad(loss))(bad['pred_uvd'])
  assert np.all(np.isfinite(grad)) and np.abs(grad[0]).max() > 0
  np.testing.assert_array_equal(grad[1], 0.0)


def test_uvd_xyz_round_trip_in_float64():
  with jax.enable_x64(True):
    cam = {k: v.astype(np.float64) for k, v in _camera(2, seed=5).items()}
    uvd = np.random.default_rng(2).uniform(-0.5, 0.5, (2, 29, 3))
    xyz = hybrik.uvd_to_xyz(uvd, input_size=256, **cam)
    assert xyz.dtype == jnp.float64
    np.testing.assert_allclose(hybrik.xyz_to_uvd(xyz, input_size=256, **cam), uvd, atol=1e-10)


def test_backbone_stride_sets_the_token_grid():
  images = jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.float32)
  for stride, grid in ((32, 2), (8, 8)):
    model = models.create_model(models.get_tiny_model_config(
        backbone_stride=stride))
    variables = jax.eval_shape(
        lambda x, m=model: m.init(jax.random.key(0), x, train=False), images)
    pos = variables['params']['head']['pos_embedding']
    assert {leaf.shape[0] for leaf in jax.tree.leaves(pos)} >= {grid}
    out = jax.eval_shape(
        lambda v, x, m=model: m.apply(v, x, train=False), variables, images)
    assert out['pred_uvd'].shape == (2, 24, 3)
  model = models.create_model(models.get_tiny_model_config(
      backbone='hrnet_tiny', backbone_stride=16))
  with pytest.raises(ValueError, match='only the ResNets'):
    jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False),
                   images)


@pytest.mark.parametrize('head', ['heatmap', 'regression'])
def test_smplx_network_predicts_through_the_one_path(head):
  """HybrIK-X's networks (body 'smplx') through HybrIKNet and inference.predict
  (flip test, bboxes): an SMPLXModelOutput of the whole body. Traced only (the
  numbers: tests/test_released_hybrik_x_parity.py)."""
  cfg = models.get_tiny_model_config(
      backbone='hrnet_tiny', head=head, body='smplx', predict_camera=True, init_cam=(0.9,),
      focal_length=1000.0, **config_lib.ik_fields(ik.IKConvention.hybrik()))
  model = models.create_model(cfg)
  images = jax.ShapeDtypeStruct((1, cfg.input_size, cfg.input_size, 3), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), images)
  smplx = synthetic_smplx.synthetic_smplx_model(0, kid=True)
  box = jax.ShapeDtypeStruct((1, 4), jnp.float32)
  centre = jax.ShapeDtypeStruct((1, 2), jnp.float32)
  out = jax.eval_shape(lambda v, x, b, c: inference.predict(
      model, v, x, trans_inv=None, intrinsics=None, joint_root=None, smpl_model=smplx,
      flip_test=True, model_config=cfg, bboxes=b, img_center=c), variables, images, box,
      centre)
  assert isinstance(out, hybrik_x.SMPLXModelOutput)
  assert (out.pred_uvd.shape, out.pred_phi.shape, out.pred_joints.shape,
          out.pred_vertices.shape, out.pred_rotmats.shape, out.transl.shape) == (
              (1, 71, 3), (1, 54, 2), (1, 127, 3), (1, smplx.v_template.shape[0], 3),
              (1, 55, 3, 3), (1, 3))
