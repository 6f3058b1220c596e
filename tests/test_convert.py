"""Tests for hybrik_jax.convert.

The PyTorch side is written here from torch.nn layers with the published
parameter names (torchvision cannot be installed beside the CPU torch): a
torchvision-layout ResNet, the HybrIK-Transformer module (`preact`,
`transformer`, `joint_embeddings`, ...) and HybrIK's Simple3DPoseBaseSMPL24
(`deconv_layers`, `final_layer`, `fc1`, ...). Tiny instances run numerically
against the converted Flax model; paper-size instances check the key lists and
shapes.
"""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip('torch')
tnn = torch.nn

from hybrik_jax import convert  # pylint: disable=g-import-not-at-top
from hybrik_jax.models import hybrik

torch.set_num_threads(1)


# ----------------------------------------------------------------------------
# PyTorch reference modules (torchvision / released-code names and layouts).
# ----------------------------------------------------------------------------

class TorchBasicBlock(tnn.Module):
  expansion = 1

  def __init__(self, cin, planes, stride):
    super().__init__()
    self.conv1 = tnn.Conv2d(cin, planes, 3, stride, 1, bias=False)
    self.bn1 = tnn.BatchNorm2d(planes)
    self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
    self.bn2 = tnn.BatchNorm2d(planes)
    self.downsample = None
    if stride != 1 or cin != planes:
      self.downsample = tnn.Sequential(tnn.Conv2d(cin, planes, 1, stride, bias=False),
                                       tnn.BatchNorm2d(planes))

  def forward(self, x):
    y = torch.relu(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class TorchBottleneck(tnn.Module):
  expansion = 4

  def __init__(self, cin, planes, stride):
    super().__init__()
    self.conv1 = tnn.Conv2d(cin, planes, 1, bias=False)
    self.bn1 = tnn.BatchNorm2d(planes)
    self.conv2 = tnn.Conv2d(planes, planes, 3, stride, 1, bias=False)
    self.bn2 = tnn.BatchNorm2d(planes)
    self.conv3 = tnn.Conv2d(planes, planes * 4, 1, bias=False)
    self.bn3 = tnn.BatchNorm2d(planes * 4)
    self.downsample = None
    if stride != 1 or cin != planes * 4:
      self.downsample = tnn.Sequential(tnn.Conv2d(cin, planes * 4, 1, stride, bias=False),
                                       tnn.BatchNorm2d(planes * 4))

  def forward(self, x):
    y = torch.relu(self.bn1(self.conv1(x)))
    y = torch.relu(self.bn2(self.conv2(y)))
    y = self.bn3(self.conv3(y))
    return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class TorchResNet(tnn.Module):
  """torchvision layout: conv1, bn1, layer1..layer4[, fc]."""

  def __init__(self, stage_sizes, block, width=64, classifier=False):
    super().__init__()
    self.conv1 = tnn.Conv2d(3, width, 7, 2, 3, bias=False)
    self.bn1 = tnn.BatchNorm2d(width)
    cin = width
    for i, n in enumerate(stage_sizes):
      blocks = []
      for j in range(n):
        blocks.append(block(cin, width * 2**i, 2 if i > 0 and j == 0 else 1))
        cin = width * 2**i * block.expansion
      setattr(self, f'layer{i + 1}', tnn.Sequential(*blocks))
    self.out_channels = cin
    if classifier:
      self.fc = tnn.Linear(cin, 1000)

  def forward(self, x):
    x = torch.relu(self.bn1(self.conv1(x)))
    x = tnn.functional.max_pool2d(x, 3, 2, 1)
    for i in range(1, 5):
      x = getattr(self, f'layer{i}')(x)
    return x


class TorchLayerNorm(tnn.Module):
  def __init__(self, n):
    super().__init__()
    self.a_2 = tnn.Parameter(torch.ones(n))
    self.b_2 = tnn.Parameter(torch.zeros(n))

  def forward(self, x):
    mean = x.mean(-1, keepdim=True)
    return self.a_2 * (x - mean) / (x.std(-1, keepdim=True) + 1e-6) + self.b_2


class TorchMHA(tnn.Module):
  def __init__(self, d, heads):
    super().__init__()
    self.heads = heads
    self.linear_q, self.linear_k, self.linear_v, self.linear_o = (
        tnn.Linear(d, d) for _ in range(4))

  def forward(self, q, kv):
    b, t, d = q.shape
    split = lambda x: x.reshape(b, x.shape[1], self.heads, d // self.heads).transpose(1, 2)
    q, k, v = split(self.linear_q(q)), split(self.linear_k(kv)), split(self.linear_v(kv))
    att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.heads), -1)
    return self.linear_o((att @ v).transpose(1, 2).reshape(b, t, d))


class TorchResidualFFN(tnn.Module):
  def __init__(self, layers, width, d):
    super().__init__()
    sizes = [d] + [width] * (layers - 1) + [d]
    self.fc_layers = tnn.ModuleList(tnn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
    self.layer_norm = TorchLayerNorm(d)

  def forward(self, x):
    h = x
    for fc in self.fc_layers:
      h = tnn.functional.leaky_relu(fc(h))
    return self.layer_norm(h + x)


class TorchTransformer(tnn.Module):
  def __init__(self, blocks, layers, width, d, heads, c):
    super().__init__()
    lst = lambda f: tnn.ModuleList(f() for _ in range(blocks))
    self.ffn_src = lst(lambda: TorchResidualFFN(layers, width, d))
    self.ffn_tgt = lst(lambda: TorchResidualFFN(layers, width, d))
    self.mha_src = lst(lambda: TorchMHA(d, heads))
    self.mha_tgt = lst(lambda: TorchMHA(d, heads))
    self.mha_cross = lst(lambda: TorchMHA(d, heads))
    self.layer_norm_src = lst(lambda: TorchLayerNorm(d))
    self.layer_norm_tgt = lst(lambda: TorchLayerNorm(d))
    self.layer_norm_cross = lst(lambda: TorchLayerNorm(d))
    self.input_projection_src = tnn.Linear(c, d)
    self.input_projection_tgt = tnn.Linear(c, d)
    self.output_projection = tnn.Linear(d, c)

  def forward(self, src, tgt):
    src, tgt = self.input_projection_src(src), self.input_projection_tgt(tgt)
    for i in range(len(self.mha_src)):
      src = torch.relu(self.layer_norm_src[i](self.mha_src[i](src, src) + src))
      src = self.ffn_src[i](src)
      tgt = torch.relu(self.layer_norm_tgt[i](self.mha_tgt[i](tgt, tgt) + tgt))
      tgt = torch.relu(self.layer_norm_cross[i](self.mha_cross[i](tgt, src) + tgt))
      tgt = self.ffn_tgt[i](tgt)
    return self.output_projection(tgt)


class FakeSMPLBuffers(tnn.Module):
  """The body-model buffers the published checkpoints carry (skipped on import)."""

  def __init__(self):
    super().__init__()
    for name, shape in [('faces_tensor', (4, 3)), ('v_template', (5, 3)),
                        ('shapedirs', (5, 3, 10)), ('posedirs', (207, 15)),
                        ('J_regressor', (24, 5)), ('J_regressor_h36m', (17, 5)),
                        ('children_map', (24,)), ('parents', (24,)),
                        ('lbs_weights', (5, 24))]:
      self.register_buffer(name, torch.zeros(shape))


def _backbone(name):
  return {'resnet_tiny': lambda: TorchResNet((1, 1, 1, 1), TorchBasicBlock, 8),
          'resnet18': lambda: TorchResNet((2, 2, 2, 2), TorchBasicBlock),
          'resnet34': lambda: TorchResNet((3, 4, 6, 3), TorchBasicBlock),
          'resnet50': lambda: TorchResNet((3, 4, 6, 3), TorchBottleneck)}[name]()


class TorchHybrikTransformer(tnn.Module):
  """HybrikTransformerSMPL24's parameters and eval-mode forward."""

  def __init__(self, backbone='resnet34', blocks=6, layers=3, width=512, d=512, heads=8,
               feat=8):
    super().__init__()
    self.preact = _backbone(backbone)
    c = self.preact.out_channels
    self.smpl = FakeSMPLBuffers()
    self.register_buffer('init_shape', torch.randn(10))
    self.joint_embeddings = tnn.Parameter(torch.randn(29, c))
    self.type_embeddings = tnn.Parameter(torch.randn(10, c))
    self.decjoint, self.decshape = tnn.Linear(c, 3), tnn.Linear(c, 10)
    self.decphi, self.decleaf = tnn.Linear(c, 2), tnn.Linear(c, 4)
    self.transformer = TorchTransformer(blocks, layers, width, d, heads, c)
    self.pos_embedding = tnn.Module()
    self.pos_embedding.row_embed = tnn.Embedding(feat, c // 2)
    self.pos_embedding.col_embed = tnn.Embedding(feat, c // 2)

  def forward(self, x):
    f = self.preact(x)
    b, c, h, w = f.shape
    je, te = self.joint_embeddings, self.type_embeddings
    tgt = torch.cat([je[:24] + te[0], je[:23] + te[1], je[24:29] + te[2], te[3:4]], 0)
    pos = torch.cat([self.pos_embedding.col_embed.weight[None, :w].expand(h, w, -1),
                     self.pos_embedding.row_embed.weight[:h, None].expand(h, w, -1)], -1)
    src = (f + pos.permute(2, 0, 1)[None]).reshape(b, c, h * w).transpose(1, 2)
    out = self.transformer(src, tgt[None].expand(b, -1, -1))
    return {'pred_uvd': self.decjoint(out[:, :24]), 'pred_phi': self.decphi(out[:, 24:47]),
            'pred_leaf': self.decleaf(out[:, 47:52]),
            'pred_shape': self.decshape(out[:, -1]) + self.init_shape}


class TorchSimple3DPose(tnn.Module):
  """Simple3DPoseBaseSMPL24's parameters and eval-mode forward."""

  def __init__(self, backbone='resnet34', channels=(256, 256, 256), depth=64, fc=1024):
    super().__init__()
    self.preact = _backbone(backbone)
    c = self.preact.out_channels
    self.depth = depth
    layers, cin = [], c
    for ch in channels:
      layers += [tnn.ConvTranspose2d(cin, ch, 4, 2, 1, bias=False), tnn.BatchNorm2d(ch),
                 tnn.ReLU()]
      cin = ch
    self.deconv_layers = tnn.Sequential(*layers)
    self.final_layer = tnn.Conv2d(cin, 24 * depth, 1)
    self.smpl = FakeSMPLBuffers()
    self.register_buffer('init_shape', torch.randn(10))
    self.fc1, self.fc2 = tnn.Linear(c, fc), tnn.Linear(fc, fc)
    self.decshape, self.decphi, self.decleaf = (tnn.Linear(fc, 10), tnn.Linear(fc, 46),
                                                tnn.Linear(fc, 20))

  def forward(self, x):
    f = self.preact(x)
    hm = self.final_layer(self.deconv_layers(f))
    b, _, h, w = hm.shape
    p = torch.softmax(hm.reshape(b, 24, -1), -1).reshape(b, 24, self.depth, h, w)
    coord = lambda m, n: (m * torch.arange(n, dtype=m.dtype)).sum(-1, keepdim=True) / n - 0.5
    uvd = torch.cat([coord(p.sum((2, 3)), w), coord(p.sum((2, 4)), h),
                     coord(p.sum((3, 4)), self.depth)], -1)
    xc = self.fc2(self.fc1(f.mean((2, 3))))
    return {'pred_uvd': uvd, 'pred_phi': self.decphi(xc).reshape(b, 23, 2),
            'pred_leaf': self.decleaf(xc).reshape(b, 5, 4),
            'pred_shape': self.decshape(xc) + self.init_shape}


class TorchSimple3DPoseCam(TorchSimple3DPose):
  """Simple3DPoseBaseSMPLCam's parameters (29 joints, deccam, decsigma, init_cam) and
  its eval-mode network outputs without the flip test."""

  def __init__(self, backbone='resnet34', channels=(256, 256, 256), depth=64, fc=1024):
    super().__init__(backbone, channels, depth, fc)
    del self.decleaf
    self.final_layer = tnn.Conv2d(channels[-1], 29 * depth, 1)
    self.register_buffer('init_cam', torch.tensor([0.9, 0.0, 0.0]))
    self.deccam, self.decsigma = tnn.Linear(fc, 3), tnn.Linear(fc, 29)

  def forward(self, x):
    f = self.preact(x)
    hm = self.final_layer(self.deconv_layers(f))
    b, _, h, w = hm.shape
    p = torch.softmax(hm.reshape(b, 29, -1), -1)
    maxvals = p.max(-1).values
    p = p.reshape(b, 29, self.depth, h, w)
    coord = lambda m, n: (m * torch.arange(n, dtype=m.dtype)).sum(-1, keepdim=True) / n - 0.5
    uvd = torch.cat([coord(p.sum((2, 3)), w), coord(p.sum((2, 4)), h),
                     coord(p.sum((3, 4)), self.depth)], -1)
    xc = self.fc2(self.fc1(f.mean((2, 3))))
    return {'pred_uvd': uvd, 'pred_phi': self.decphi(xc).reshape(b, 23, 2),
            'pred_shape': self.decshape(xc) + self.init_shape,
            'pred_camera': self.deccam(xc) + self.init_cam,
            'pred_sigma': torch.sigmoid(self.decsigma(xc)), 'maxvals': maxvals}


def _randomise_batch_norm(module, seed=0):
  g = torch.Generator().manual_seed(seed)
  for m in module.modules():
    if isinstance(m, tnn.BatchNorm2d):
      m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
      m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
      m.weight.data.copy_(0.5 + torch.rand(m.num_features, generator=g))
      m.bias.data.copy_(0.1 * torch.randn(m.num_features, generator=g))
  return module.eval()


def _images(size, seed=0):
  return np.random.default_rng(seed).normal(size=(2, size, size, 3)).astype(np.float32)


def _assert_close_rel(actual, desired, rel=1e-4):
  actual, desired = np.asarray(actual, np.float64), np.asarray(desired, np.float64)
  err = np.abs(actual - desired).max() / max(np.abs(desired).max(), 1e-12)
  assert err < rel, f'relative error {err:.2e}'


# ----------------------------------------------------------------------------
# Tests.
# ----------------------------------------------------------------------------

def test_conv_transpose_matches_torch():
  torch.manual_seed(0)
  layer = tnn.ConvTranspose2d(5, 7, kernel_size=4, stride=2, padding=1, bias=False)
  x = torch.randn(2, 5, 6, 9)
  ref = layer(x).detach().numpy().transpose(0, 2, 3, 1)
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  flax_layer = nn.ConvTranspose(7, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)),
                                use_bias=False, transpose_kernel=True)
  kernel = convert.convert_tensor(layer.weight.detach().numpy(), 'conv_transpose')
  out = flax_layer.apply({'params': {'kernel': kernel}}, x.numpy().transpose(0, 2, 3, 1))
  assert out.shape == (2, 12, 18, 7)  # 2x the input, as PyTorch
  np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_conv_kernel_is_transposed_oihw_to_hwio():
  w = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)  # O, I, H, W
  k = convert.convert_tensor(w, 'conv')
  assert k.shape == (4, 5, 3, 2)
  assert k[1, 2, 0, 1] == w[1, 0, 1, 2]


def test_torchvision_backbone_gives_the_same_features():
  torch.manual_seed(0)
  tmodel = _randomise_batch_norm(TorchResNet((2, 2, 2, 2), TorchBasicBlock, classifier=True))
  x = _images(64)
  ref = tmodel(torch.from_numpy(x.transpose(0, 3, 1, 2))).detach().numpy().transpose(0, 2, 3, 1)
  variables, cfg = convert.convert_state_dict(tmodel.state_dict(), input_size=64)
  assert cfg.backbone == 'resnet18'
  assert set(variables['params']) == {'backbone'}
  backbone = hybrik.backbones.create_backbone('resnet18')
  out = jax.jit(lambda v, x: backbone.apply(v, x, train=False))(
      {'params': variables['params']['backbone'],
       'batch_stats': variables['batch_stats']['backbone']}, x)
  assert out.shape == ref.shape == (2, 2, 2, 512)
  _assert_close_rel(out, ref)
  # merge_variables drops it into a full model.
  model = hybrik.create_model(cfg)
  fresh = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 64, 64, 3)),
                                            train=False))
  fresh = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), fresh)
  merged = convert.merge_variables(fresh, variables)
  np.testing.assert_array_equal(merged['params']['backbone']['conv1']['kernel'],
                                variables['params']['backbone']['conv1']['kernel'])
  assert 'head' in merged['params']


@pytest.mark.parametrize('arch', ['transformer', 'deconv'])
def test_tiny_published_model_converts_and_matches_torch(arch, tmp_path):
  torch.manual_seed(1)
  if arch == 'transformer':
    tmodel = TorchHybrikTransformer('resnet_tiny', blocks=2, layers=3, width=24, d=32,
                                    heads=4, feat=2)
  else:
    tmodel = TorchSimple3DPose('resnet_tiny', channels=(16, 8, 8), depth=8, fc=32)
  tmodel = _randomise_batch_norm(tmodel)
  x = _images(64, seed=3)
  with torch.no_grad():
    ref = {k: v.numpy() for k, v in tmodel(torch.from_numpy(x.transpose(0, 3, 1, 2))).items()}
  # Through the CLI: a DataParallel-style checkpoint file -> exported model.
  path = tmp_path / 'model.pth'
  torch.save({'state_dict': {'module.' + k: v for k, v in tmodel.state_dict().items()}}, path)
  argv = ['--torch_checkpoint', str(path), '--out', str(tmp_path / 'out'), '--num_heads', '4']
  if arch == 'deconv':
    argv += ['--input_size', '64']
  convert.main(argv)
  from hybrik_jax.checkpoints import model_dir  # pylint: disable=g-import-not-at-top
  variables, cfg = model_dir.load_model(tmp_path / 'out')
  assert cfg.head == arch and cfg.backbone == 'resnet_tiny' and cfg.predict_leaf
  np.testing.assert_allclose(cfg.mean_shape, tmodel.init_shape.numpy(), rtol=1e-6)
  out = jax.jit(lambda v, x: hybrik.create_model(cfg).apply(v, x, train=False))(variables, x)
  assert set(out) == set(ref)
  for k in ref:
    _assert_close_rel(out[k], ref[k])


def _published_state_dict(arch):
  torch.manual_seed(0)
  module = TorchHybrikTransformer() if arch == 'transformer' else TorchSimple3DPose()
  return module.state_dict()


@pytest.mark.parametrize('arch', ['transformer', 'deconv'])
def test_paper_size_published_keys_convert_with_nothing_left_over(arch):
  sd = _published_state_dict(arch)
  # Spot checks that the torch module carries the published names.
  names = {'transformer': ['transformer.ffn_src.5.fc_layers.2.weight',
                           'transformer.mha_cross.0.linear_o.bias',
                           'transformer.layer_norm_cross.5.a_2', 'pos_embedding.row_embed.weight',
                           'joint_embeddings', 'decleaf.bias', 'init_shape'],
           'deconv': ['deconv_layers.6.weight', 'deconv_layers.7.running_var',
                      'final_layer.bias', 'fc2.weight', 'decphi.weight']}[arch]
  assert set(names + ['preact.layer4.2.bn2.running_var', 'smpl.v_template']) <= set(sd)
  assert convert.detect_arch(sd) == arch
  variables, cfg = convert.convert_state_dict(sd)
  assert cfg.backbone == 'resnet34' and cfg.head == arch and cfg.predict_leaf
  # The released models' SMPL-layer conventions travel with the converted model.
  assert (cfg.ik_convention, tuple(cfg.leaf_joints), cfg.joint23_to_pelvis,
          tuple(map(tuple, cfg.leaf_flip_pairs)), cfg.depth_factor) == (
              'released', (10, 11, 15, 22), True, ((0, 1), (3, 4)), 2.0)
  if arch == 'transformer':
    assert (cfg.d_model, cfg.num_blocks, cfg.ffn_layers, cfg.ffn_width, cfg.input_size) == (
        512, 6, 3, 512, 256)
  else:
    assert (tuple(cfg.deconv_channels), cfg.depth_dim, cfg.fc_width) == ((256, 256, 256), 64,
                                                                        1024)
  # Every non-skipped key went somewhere, every model variable came from a key.
  used = [k for k in sd if not k.startswith('smpl.') and k != 'init_shape'
          and not k.endswith('num_batches_tracked')]
  assert len(jax.tree.leaves(variables)) == len(used)
  expected = convert.expected_variables(cfg, arch)
  assert jax.tree.structure(expected) == jax.tree.structure(variables)
  np.testing.assert_array_equal(
      variables['params']['backbone']['layer1_0']['conv1']['kernel'],
      sd['preact.layer1.0.conv1.weight'].numpy().transpose(2, 3, 1, 0))


def test_resnet50_layout_converts():
  torch.manual_seed(0)
  sd = TorchResNet((3, 4, 6, 3), TorchBottleneck, classifier=True).state_dict()
  variables, cfg = convert.convert_state_dict(sd, 'backbone')
  assert cfg.backbone == 'resnet50'
  assert variables['params']['backbone']['layer2_0']['downsample_conv']['kernel'].shape == (
      1, 1, 256, 512)


def test_bad_checkpoints_fail_with_the_offending_keys():
  torch.manual_seed(0)
  tmodel = TorchHybrikTransformer('resnet_tiny', blocks=1, layers=2, width=8, d=8, heads=2,
                                  feat=2)
  sd = dict(tmodel.state_dict())
  extra = dict(sd, **{'transformer.extra_layer.weight': torch.zeros(3)})
  with pytest.raises(convert.ConversionError, match='transformer.extra_layer.weight'):
    convert.convert_state_dict(extra, num_heads=2, input_size=64)
  missing = {k: v for k, v in sd.items() if k != 'decphi.bias'}
  with pytest.raises(convert.ConversionError, match='head/decphi/bias'):
    convert.convert_state_dict(missing, num_heads=2, input_size=64)
  wrong = dict(sd, **{'decjoint.weight': torch.zeros(3, 7)})
  with pytest.raises(convert.ConversionError, match='decjoint.weight'):
    convert.convert_state_dict(wrong, num_heads=2, input_size=64)
  with pytest.raises(convert.ConversionError, match='Unknown architecture'):
    convert.convert_state_dict({'foo.weight': torch.zeros(2)})
  with pytest.raises(convert.ConversionError, match='Unknown backbone layout'):
    convert.convert_state_dict(TorchResNet((1, 2, 1, 1), TorchBasicBlock, 8).state_dict())


class _RunsCode:
  """A pickle payload that would call a function when loaded."""

  def __reduce__(self):
    return (print, ('this ran while loading',))


def test_unreadable_or_unsafe_files_are_one_line_errors(tmp_path):
  from hybrik_jax import errors  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  sd = TorchHybrikTransformer('resnet_tiny', blocks=1, layers=2, width=8, d=8,
                              heads=2, feat=2).state_dict()
  good = tmp_path / 'good.pth'
  torch.save(sd, good)
  truncated = tmp_path / 'truncated.pth'
  truncated.write_bytes(good.read_bytes()[:len(good.read_bytes()) // 2])
  empty = tmp_path / 'empty.pth'
  empty.write_bytes(b'')
  text = tmp_path / 'notes.pth'
  text.write_text('not a checkpoint')
  unsafe = tmp_path / 'unsafe.pth'
  torch.save({'w': torch.zeros(2), 'payload': _RunsCode()}, unsafe)
  nan = tmp_path / 'nan.pth'
  torch.save(dict(sd, **{'decphi.bias': torch.full_like(sd['decphi.bias'],
                                                        float('nan'))}), nan)
  (tmp_path / 'existing').mkdir()
  (tmp_path / 'existing' / 'model_config.json').write_text('{}')
  cases = [
      (tmp_path / 'missing.pth', 'out1', 'does not exist'),
      (empty, 'out2', 'is empty'),
      (truncated, 'out3', 'not a readable PyTorch checkpoint'),
      (text, 'out4', 'not a PyTorch checkpoint'),
      (unsafe, 'out5', 'refused.*would run code: Unsupported global.*print'),
      (nan, 'out6', '1 tensor.* NaN or inf .*decphi.bias.*--allow_non_finite'),
      (good, 'existing', 'already exists and is not empty.*--overwrite'),
  ]
  for path, out, expected in cases:
    with pytest.raises(errors.InputError, match=expected) as info:
      convert.main(['--torch_checkpoint', str(path), '--out',
                    str(tmp_path / out), '--num_heads', '2',
                    '--input_size', '64'])
    assert str(path) in str(info.value) or out == 'existing'
    if out != 'existing':
      assert not (tmp_path / out).exists()  # nothing written
  # The explicit flag converts the non-finite checkpoint anyway.
  convert.main(['--torch_checkpoint', str(nan), '--out', str(tmp_path / 'o7'),
                '--num_heads', '2', '--allow_non_finite'])
  assert (tmp_path / 'o7' / 'model_config.json').exists()
# ----------------------------------------------------------------------------
# HRNet: the released key layouts (names and shapes from tests/data, see its README).
# ----------------------------------------------------------------------------

def _hrnet_layout(prefix_keys='w48'):
  f = np.load(os.path.join(os.path.dirname(__file__), 'data', 'hrnet_released_tiny.npz'))
  shapes = [tuple(int(d) for d in s.split(',') if d) for s in f[f'{prefix_keys}_shapes']]
  # Zero-stride arrays: the shapes without the memory.
  return {k: np.broadcast_to(np.float32(0), s) for k, s in zip(f[f'{prefix_keys}_keys'], shapes)}


def test_released_hrnet_transformer_checkpoint_layout_converts():
  """average_model_hrnet_181_199.pth: HybrikTransformerSMPL24 with an HRNet-W48 `preact`."""
  sd = {'preact.' + k: v for k, v in _hrnet_layout('w48').items()}
  sd.update(_hrnet_layout('head'))
  assert convert.detect_arch(sd) == 'transformer'
  variables, cfg = convert.convert_state_dict(sd)
  assert (cfg.backbone, cfg.head, cfg.d_model, cfg.input_size, cfg.predict_leaf) == (
      'hrnet_w48', 'transformer', 512, 256, True)
  head = variables['params']['head']
  assert head['joint_embeddings'].shape == (29, 2048)  # feature_channel 2048
  assert head['transformer']['input_projection_src']['kernel'].shape == (2048, 512)
  used = [k for k in sd if k != 'init_shape' and not k.endswith('num_batches_tracked')]
  assert len(jax.tree.leaves(variables)) == len(used)
  # A missing, an extra and a misshapen key: one error listing all three.
  bad = dict(sd)
  del bad['preact.stage4.2.fuse_layers.3.0.2.1.running_var']
  bad['preact.stage5.0.branches.0.0.conv1.weight'] = np.zeros((48, 48, 3, 3), np.float32)
  bad['preact.downsamp_modules.1.0.bias'] = np.zeros(7, np.float32)
  with pytest.raises(convert.ConversionError) as e:
    convert.convert_state_dict(bad, model_config=cfg)
  for text in ('backbone/stage4_2/fuse_layers_3_0_2_1/var', 'stage5.0.branches.0.0.conv1.weight',
               'downsamp_modules.1.0.bias'):
    assert text in str(e.value)


def test_imagenet_hrnet_converts_without_its_classifier():
  """hrnet_w48-8ef0771d.pth: stem + stages load, the classification head does not
  (the released init_weights reads PRETRAINED_LAYERS only)."""
  sd = {k.replace('final_feat_layer.', 'final_layer.'): v for k, v in _hrnet_layout('w48').items()}
  sd['classifier.weight'] = np.zeros((1000, 2048), np.float32)
  sd['classifier.bias'] = np.zeros(1000, np.float32)
  assert convert.detect_arch(sd) == 'backbone'
  variables, cfg = convert.convert_state_dict(sd)
  assert cfg.backbone == 'hrnet_w48'
  backbone = variables['params']['backbone']
  assert {'conv2', 'layer1_3', 'transition3_3_0_0', 'stage4_2'} <= set(backbone)
  assert not any(k.startswith(('incre', 'downsamp', 'final')) for k in backbone)
  missing = {k: v for k, v in sd.items() if not k.startswith('stage4.2.branches.3.')}
  with pytest.raises(convert.ConversionError, match='stage4_2/branches_3_0'):
    convert.convert_state_dict(missing)


# ----------------------------------------------------------------------------
# HybrIK's camera models (Simple3DPoseBaseSMPLCam, HRNetSMPLCam).
# ----------------------------------------------------------------------------

def test_tiny_simple3dpose_cam_converts_through_the_cli_and_matches_torch(tmp_path):
  torch.manual_seed(2)
  tmodel = _randomise_batch_norm(TorchSimple3DPoseCam('resnet_tiny', (16, 8, 8), depth=8,
                                                      fc=32))
  with torch.no_grad():
    tmodel.init_cam.copy_(torch.tensor([0.8, 0.1, -0.2]))
  x = _images(64, seed=4)
  with torch.no_grad():
    ref = {k: v.numpy() for k, v in tmodel(torch.from_numpy(x.transpose(0, 3, 1, 2))).items()}
  path = tmp_path / 'cam.pth'
  torch.save(tmodel.state_dict(), path)
  assert convert.main(['--torch_checkpoint', str(path), '--out', str(tmp_path / 'out'),
                       '--input_size', '64']) == 0
  from hybrik_jax.checkpoints import model_dir  # pylint: disable=g-import-not-at-top
  variables, cfg = model_dir.load_model(tmp_path / 'out')
  assert (cfg.head, cfg.predict_camera, cfg.focal_length, cfg.ik_convention,
          cfg.depth_factor) == ('deconv', True, 1000.0, 'hybrik', 2.2)
  np.testing.assert_allclose(cfg.init_cam, (0.8, 0.1, -0.2), rtol=1e-6)
  out = jax.jit(lambda v, x: hybrik.create_model(cfg).apply(v, x, train=False))(variables, x)
  assert set(out) == set(ref)
  for k in ref:
    _assert_close_rel(out[k], ref[k])


def _hrnet_cam_state_dict():
  """HRNetSMPLCam's key layout at paper size (shapes only)."""
  z = lambda *s: np.broadcast_to(np.float32(0), s)
  sd = {'preact.' + k: v for k, v in _hrnet_layout('w48').items()}
  sd.update({'preact.final_layer.weight': z(29 * 64, 48, 1, 1),
             'preact.final_layer.bias': z(29 * 64), 'init_shape': z(10),
             'init_cam': np.full(1, 0.9, np.float32), 'smpl.v_template': z(5, 3)})
  for name, n in (('decshape', 10), ('decphi', 46), ('deccam', 1), ('decsigma', 29)):
    sd.update({f'{name}.weight': z(n, 2048), f'{name}.bias': z(n)})
  return sd


def test_released_camera_model_layouts_are_detected_and_convert():
  sd = _hrnet_cam_state_dict()
  assert convert.detect_arch(sd) == 'hrnet_cam'
  variables, cfg = convert.convert_state_dict(sd)
  assert (cfg.backbone, cfg.head, cfg.depth_dim, cfg.predict_camera,
          cfg.ik_convention, cfg.depth_factor, cfg.focal_length) == (
              'hrnet_w48', 'heatmap', 64, True, 'hybrik', 2.2, 1000.0)
  np.testing.assert_allclose(cfg.init_cam, (0.9,), rtol=1e-7)  # the float32 buffer
  head = variables['params']['head']
  assert head['final_layer']['kernel'].shape == (1, 1, 48, 29 * 64)
  assert head['deccam']['kernel'].shape == (2048, 1)
  used = [k for k in sd if k not in ('init_shape', 'init_cam') and not k.startswith('smpl.')
          and not k.endswith('num_batches_tracked')]
  assert len(jax.tree.leaves(variables)) == len(used)
  # A missing, an extra and a misshapen key: one error listing all three.
  bad = dict(sd)
  del bad['decsigma.bias']
  bad['decextra.weight'] = np.zeros((3, 2048), np.float32)
  bad['deccam.weight'] = np.zeros((3, 2048), np.float32)
  with pytest.raises(convert.ConversionError) as e:
    convert.convert_state_dict(bad, model_config=cfg)
  for text in ('head/decsigma/bias', 'decextra.weight', 'deccam.weight (3, 2048)'):
    assert text in str(e.value)
  # Simple3DPoseBaseSMPLCam at paper size: detected, nothing left over.
  torch.manual_seed(0)
  sd = TorchSimple3DPoseCam().state_dict()
  assert convert.detect_arch(sd) == 'deconv_cam'
  variables, cfg = convert.convert_state_dict(sd)
  assert (cfg.backbone, cfg.head, cfg.depth_dim, cfg.fc_width) == (
      'resnet34', 'deconv', 64, 1024)
  np.testing.assert_allclose(cfg.init_cam, (0.9, 0.0, 0.0), rtol=1e-7)
  used = [k for k in sd if k not in ('init_shape', 'init_cam') and not k.startswith('smpl.')
          and not k.endswith('num_batches_tracked')]
  assert len(jax.tree.leaves(variables)) == len(used)
  # As the deconv model (no camera), its camera keys are listed.
  with pytest.raises(convert.ConversionError, match='deccam.weight'):
    convert.convert_state_dict(sd, 'deconv')
