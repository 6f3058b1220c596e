"""PyTorch checkpoints -> exported hybrik_jax models.

    python -m hybrik_jax.convert --torch_checkpoint X.pth --out DIR \
        [--arch auto|transformer|deconv|deconv_cam|hrnet_cam|hrnet_smplx_cam|
              hrnet_smplx_reg|backbone]

Three sources (key names and tensor layouts are facts of the public code):
  backbone     torchvision ImageNet ResNet-18/34/50 (`conv1`, `bn1`,
               `layer{1..4}.{i}.*`, `fc.*`; the classifier is dropped), or the
               ImageNet HRNet-W32/W48 the released HRNet training starts from
               (hrnet_w48-8ef0771d.pth: `conv1`, `bn1`, `conv2`, `bn2`, `layer1.*`,
               `transition{1..3}.*`, `stage{2..4}.*`, plus a classification head
               `incre_modules.*`, `downsamp_modules.*`, `final_layer.*`,
               `classifier.*` that is dropped, as the released init_weights loads
               only PRETRAINED_LAYERS; the HRNet feature head keeps its fresh
               initialisation). Written as {'params': {'backbone': ...},
               'batch_stats': {'backbone': ...}}; `merge_variables` puts it into a
               freshly initialised model.
  transformer  boreshkinai/hybrik-transformer HybrikTransformerSMPL24
               (`preact.*` a ResNet or, with BACKBONE: HRNET, an HRNet with its
               feature head `incre_modules`, `downsamp_modules`, `final_feat_layer`;
               `transformer.*`, `joint_embeddings`, `type_embeddings`,
               `pos_embedding.*`, `dec*`, `init_shape`).
  deconv       Jeff-sjtu/HybrIK Simple3DPoseBaseSMPL24 (`preact.*`,
               `deconv_layers.*`, `final_layer.*`, `fc1`, `fc2`, `dec*`, `init_shape`).
  deconv_cam   Jeff-sjtu/HybrIK Simple3DPoseBaseSMPLCam (HybrIK's ResNet-34 model
               zoo entry): the deconv keys for 29 joints plus `deccam`, `decsigma`,
               `init_cam` (3 values).
  hrnet_cam    Jeff-sjtu/HybrIK HRNetSMPLCam (its HRNet-W48 zoo entries):
               `preact.*` an HRNet with its feature head and its heatmap layer
               `preact.final_layer`, `decshape`, `decphi`, `deccam`, `decsigma`,
               `init_cam` (1 value), `init_shape`.
  hrnet_smplx_cam  Jeff-sjtu/HybrIK HRNetSMPLXCamKid (HybrIK-X's HRNet-W48 zoo entry):
               `preact.*` an HRNet with its feature head, its 2.5D heatmap layers
               `preact.final_layer` (71 uv maps) and `preact.depth_layer` (71 x 64
               depth logits), `decshape` (21), `decphi` (54 x 2), `deccam`,
               `decsigma` (71), `init_cam` (1 value); its SMPL-X layer's buffers
               (`smplx_layer.*`) are skipped. Model config: body 'smplx', head
               'heatmap', predict_camera, focal length 1000 px, ik_convention
               'hybrik' (depth factor 2.2 m; the SMPL-X IK is body.ik_smplx's).
  hrnet_smplx_reg  Jeff-sjtu/HybrIK HRNetSMPLXCamKidReg (HybrIK-X + RLE): `preact.*`
               an HRNet with its feature head only, `fc_coord` (70 x 3),
               `fc_coord_mouthtop`, `decsigma` (70), `decsigma_mouthtop`,
               `decshape`, `decphi`, `deccam`, `init_cam`. Model config as
               hrnet_smplx_cam with head 'regression'. (The RLE flow is part of the
               released training loss, not of the network's state dict.)
transformer and deconv get the released models' IK convention
(`ik.IKConvention.released()`: leaf slots -> joints 10, 11, 15, 22, joint 23
aimed at the pelvis, leaf flip pairs ((0, 1), (3, 4)), depth factor 2.0 m);
deconv_cam and hrnet_cam `ik.IKConvention.hybrik()` (the same IK, depth factor
2.2 m), predict_camera with `init_cam` from the checkpoint and focal length
1000 px (their configs' FOCAL_LENGTH; not stored in the weights).
The SMPL buffers some checkpoints carry (`smpl.*`) are skipped on purpose;
`init_shape` becomes the model config's `mean_shape`. Everything else must map:
unknown or missing keys and shape mismatches raise ConversionError listing them.

Layouts: Conv2d OIHW -> HWIO; ConvTranspose2d (in, out, kh, kw) -> Flax
ConvTranspose(transpose_kernel=True) (kh, kw, out, in), PyTorch padding 1 ->
explicit padding 2; Linear (out, in) -> (in, out); BatchNorm weight/bias ->
scale/bias params, running_mean/var -> batch_stats mean/var.

torch is imported only to read .pth files; the written model loads without it.
"""

import os
import pickle
import re
import zipfile
from typing import Any, Mapping, Optional, Sequence

from absl import flags
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from hybrik_jax import cli
from hybrik_jax import cli_flags
from hybrik_jax import errors
from hybrik_jax.body import constants
from hybrik_jax.body import ik
from hybrik_jax.models import config as config_lib
from hybrik_jax.models import hrnet
from hybrik_jax.models import hybrik
from hybrik_jax.models import resnet
from hybrik_jax.models import variables as variables_lib

ARCHS = ('transformer', 'deconv', 'deconv_cam', 'hrnet_cam', 'hrnet_smplx_cam',
         'hrnet_smplx_reg', 'backbone')
CAMERA_ARCHS = ('deconv_cam', 'hrnet_cam', 'hrnet_smplx_cam', 'hrnet_smplx_reg')
# HybrIK's camera models' FOCAL_LENGTH (every released config), px.
HYBRIK_FOCAL_LENGTH = 1000.0
# State-dict prefixes that are deliberately not converted.
SKIPPED_PREFIXES = ('smpl.', 'smplx_layer.')
# torchvision's ImageNet classifier: not part of the backbone.
SKIPPED_BACKBONE_KEYS = ('fc.weight', 'fc.bias')
# The ImageNet HRNet's classification head (--arch backbone): the released
# init_weights does not load it (not in PRETRAINED_LAYERS).
SKIPPED_HRNET_IMAGENET_PREFIXES = ('incre_modules.', 'downsamp_modules.', 'final_layer.',
                                   'classifier.')

Path = variables_lib.Path


class ConversionError(errors.InputError):
  """A checkpoint does not match the architecture it is converted to, or
  cannot be read."""


def _format_keys(keys, limit: int = 40) -> str:
  keys = sorted(keys)
  text = ', '.join(keys[:limit])
  return text + (f', ... ({len(keys) - limit} more)' if len(keys) > limit else '')


# ----------------------------------------------------------------------------
# Reading.
# ----------------------------------------------------------------------------

def load_torch_state_dict(path: str) -> dict[str, np.ndarray]:
  """A .pth file -> {key: float32/int numpy array}.

  Accepts a bare state dict or one wrapped under 'state_dict' / 'model', and
  strips DataParallel's 'module.' prefix.
  """
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError('Reading PyTorch checkpoints needs torch (pip install torch); '
                      'the converted model loads without it.') from e
  if not os.path.isfile(path):
    raise ConversionError(f'{path} does not exist (or is not a file): give the '
                          '.pth checkpoint to convert.')
  if os.path.getsize(path) == 0:
    raise ConversionError(f'{path} is empty: download it again.')
  with open(path, 'rb') as f:
    head = f.read(2)
  if not head.startswith((b'PK', b'\x80')):  # zip (torch >= 1.6) or pickle
    raise ConversionError(f'{path} is not a PyTorch checkpoint (neither a zip '
                          'archive nor a pickle): give the .pth file.')
  try:
    obj = torch.load(path, map_location='cpu', weights_only=True)
  except pickle.UnpicklingError as e:
    # weights_only=True refuses pickles that would import or call code.
    unsupported = re.search(r'Unsupported global: GLOBAL [\w.]+', str(e))
    raise ConversionError(
        f'{path} was refused: it is not a plain tensor checkpoint (loading it '
        'would run code' + (f': {unsupported.group(0)}' if unsupported else '')
        + '). Only state-dict .pth files can be converted; re-save the '
        'state_dict of a trusted model.') from None
  except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as e:
    raise ConversionError(
        f'{path} is not a readable PyTorch checkpoint (truncated, corrupt or '
        f'another format: {cli.one_line(e)[:200]}). Download it again.'
    ) from None
  for wrapper in ('state_dict', 'model'):
    if isinstance(obj, Mapping) and wrapper in obj and isinstance(obj[wrapper], Mapping):
      obj = obj[wrapper]
  if not isinstance(obj, Mapping):
    raise ConversionError(f'{path}: expected a state dict, got {type(obj).__name__}')
  return state_dict_to_numpy(obj)


def check_finite_weights(state_dict: Mapping[str, np.ndarray], path: str) -> None:
  """ConversionError listing the float tensors with NaN or inf values."""
  bad = [k for k, v in state_dict.items()
         if np.issubdtype(np.asarray(v).dtype, np.floating) and
         not np.all(np.isfinite(v))]
  if bad:
    raise ConversionError(
        f'{path}: {len(bad)} tensor(s) hold NaN or inf values '
        f'({_format_keys(bad, 5)}); the converted model would predict '
        'nothing. Pass --allow_non_finite to convert it anyway.')


def state_dict_to_numpy(state_dict: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """torch tensors (or arrays) -> numpy, 'module.' prefixes removed."""
  out = {}
  for key, value in state_dict.items():
    if key.startswith('module.'):
      key = key[len('module.'):]
    if hasattr(value, 'detach'):
      value = value.detach().cpu().numpy()
    out[key] = np.asarray(value)
  return out


def detect_arch(state_dict: Mapping[str, np.ndarray]) -> str:
  """One of ARCHS from the key names."""
  keys = set(state_dict)
  if any(k.startswith('transformer.') for k in keys) and 'joint_embeddings' in keys:
    return 'transformer'
  camera = any(k.startswith(('deccam.', 'decsigma.')) for k in keys) or 'init_cam' in keys
  if camera and any(k.startswith('preact.depth_layer.') for k in keys):
    return 'hrnet_smplx_cam'
  if camera and 'fc_coord.weight' in keys:
    return 'hrnet_smplx_reg'
  if camera and any(k.startswith('preact.final_layer.') for k in keys):
    return 'hrnet_cam'
  if camera and any(k.startswith('deconv_layers.') for k in keys):
    return 'deconv_cam'
  if any(k.startswith('deconv_layers.') for k in keys) and any(
      k.startswith('final_layer.') for k in keys):
    return 'deconv'
  if 'conv1.weight' in keys and any(k.startswith('layer1.') for k in keys):
    return 'backbone'
  raise ConversionError(
      'Unknown architecture: the checkpoint is neither a torchvision ResNet '
      '(conv1.*, layer1.*), a HybrIK-Transformer (transformer.*, joint_embeddings), '
      'a HybrIK Simple3DPoseBaseSMPL24 (deconv_layers.*, final_layer.*), '
      'Simple3DPoseBaseSMPLCam (those with deccam.*, decsigma.*, init_cam) nor '
      'HRNetSMPLCam (preact.final_layer.*, deccam.*, decsigma.*, init_cam) nor '
      'HRNetSMPLXCamKid (those with preact.depth_layer.*) nor HRNetSMPLXCamKidReg '
      '(fc_coord.*, deccam.*, init_cam). '
      f'Its keys: {_format_keys(keys, 20)}')


# ----------------------------------------------------------------------------
# The model config a checkpoint implies.
# ----------------------------------------------------------------------------

def _indices(keys, pattern: str) -> list[int]:
  found = {int(m.group(1)) for k in keys if (m := re.match(pattern, k))}
  return sorted(found)


def hrnet_layout(state_dict: Mapping[str, np.ndarray], prefix: str = '') -> dict[str, Any]:
  """The hrnet.HRNet fields an HRNet state dict implies (stages, stem, head widths).

  head_channels / feature_channels only where the feature head's keys are present.
  """
  sd = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
  stages = []
  for s in (2, 3, 4):
    modules = _indices(sd, rf'stage{s}\.(\d+)\.')
    branches = _indices(sd, rf'stage{s}\.0\.branches\.(\d+)\.')
    blocks = tuple(len(_indices(sd, rf'stage{s}\.0\.branches\.{b}\.(\d+)\.')) for b in branches)
    channels = tuple(int(sd[f'stage{s}.0.branches.{b}.0.conv1.weight'].shape[0])
                     for b in branches)
    stages.append((len(modules), blocks, channels))
  layout = dict(stages=tuple(stages), stem_channels=int(sd['conv1.weight'].shape[0]),
                stem_blocks=len(_indices(sd, r'layer1\.(\d+)\.')))
  if 'final_feat_layer.0.weight' in sd:
    layout['head_channels'] = tuple(
        int(sd[f'incre_modules.{i}.0.conv1.weight'].shape[0])
        for i in _indices(sd, r'incre_modules\.(\d+)\.'))
    layout['feature_channels'] = int(sd['final_feat_layer.0.weight'].shape[0])
  return layout


def _hrnet_arch(state_dict: Mapping[str, np.ndarray], prefix: str) -> str:
  layout = hrnet_layout(state_dict, prefix)
  for name, ctor in hrnet.BACKBONES.items():
    defaults = {f: hrnet.HRNet.__dataclass_fields__[f].default for f in layout}
    defaults.update(ctor.keywords)
    if all(defaults[f] == v for f, v in layout.items()):
      return name
  raise ConversionError(f'Unknown HRNet layout {layout}; supported: {sorted(hrnet.BACKBONES)}')


def backbone_arch(state_dict: Mapping[str, np.ndarray], prefix: str = '') -> str:
  """A key of backbones.BACKBONES ('resnet34', 'hrnet_w48', ...) from the block layout."""
  keys = [k[len(prefix):] for k in state_dict if k.startswith(prefix)]
  if any(k.startswith('stage2.') for k in keys):
    return _hrnet_arch(state_dict, prefix)
  stage_sizes = tuple(len(_indices(keys, rf'layer{s}\.(\d+)\.')) for s in range(1, 5))
  bottleneck = any(re.match(r'layer1\.0\.conv3\.', k) for k in keys)
  num_filters = state_dict[prefix + 'conv1.weight'].shape[0]
  for name, ctor in resnet.BACKBONES.items():
    kw = ctor.keywords
    if (tuple(kw['stage_sizes']) == stage_sizes
        and (kw['block_cls'] is resnet.Bottleneck) == bottleneck
        and kw.get('num_filters', 64) == num_filters):
      return name
  raise ConversionError(
      f'Unknown backbone layout: stages {stage_sizes}, '
      f'{"bottleneck" if bottleneck else "basic"} blocks, {num_filters} stem channels; '
      f'supported: {sorted(resnet.BACKBONES)}')


def model_config_from_state_dict(state_dict: Mapping[str, np.ndarray], arch: str,
                                 **overrides) -> ml_collections.ConfigDict:
  """The model config matching a checkpoint: the paper's defaults, with every
  field the tensors determine (backbone, widths, depths, leaf tokens, mean shape)
  read from them. `overrides` (e.g. num_heads, input_size) win."""
  sd = state_dict
  fields: dict[str, Any] = {}
  if arch == 'backbone':
    fields['backbone'] = backbone_arch(sd)
  elif arch == 'transformer':
    fields['head'] = 'transformer'
    fields['backbone'] = backbone_arch(sd, 'preact.')
    fields['d_model'] = sd['transformer.input_projection_src.weight'].shape[0]
    fields['num_blocks'] = len(_indices(sd, r'transformer\.mha_src\.(\d+)\.'))
    fields['ffn_layers'] = len(_indices(sd, r'transformer\.ffn_src\.0\.fc_layers\.(\d+)\.'))
    fields['ffn_width'] = sd['transformer.ffn_src.0.fc_layers.0.weight'].shape[0]
    fields['predict_leaf'] = 'decleaf.weight' in sd
    fields['twist_joint_offset'] = 0  # the released code's joint_embeddings[:23]
    fields['input_size'] = 32 * sd['pos_embedding.row_embed.weight'].shape[0]
  elif arch in ('deconv', 'deconv_cam'):  # 24 heatmaps (+ leaf) or 29 (+ camera)
    joints = constants.NUM_JOINTS if arch == 'deconv' else constants.NUM_JOINTS_29
    fields['head'] = 'deconv'
    fields['backbone'] = backbone_arch(sd, 'preact.')
    fields['deconv_channels'] = tuple(
        sd[f'deconv_layers.{i}.weight'].shape[1] for i in (0, 3, 6))
    fields['depth_dim'] = sd['final_layer.weight'].shape[0] // joints
    fields['fc_width'] = sd['fc1.weight'].shape[0]
    if arch == 'deconv':
      fields['predict_leaf'] = 'decleaf.weight' in sd
  elif arch == 'hrnet_cam':
    fields['head'] = 'heatmap'
    fields['backbone'] = backbone_arch(sd, 'preact.')
    fields['depth_dim'] = sd['preact.final_layer.weight'].shape[0] // constants.NUM_JOINTS_29
  elif arch == 'hrnet_smplx_cam':
    fields['head'] = 'heatmap'
    fields['body'] = 'smplx'
    fields['backbone'] = backbone_arch(sd, 'preact.')
    fields['depth_dim'] = (sd['preact.depth_layer.weight'].shape[0]
                           // sd['preact.final_layer.weight'].shape[0])
  elif arch == 'hrnet_smplx_reg':
    fields['head'] = 'regression'
    fields['body'] = 'smplx'
    fields['backbone'] = backbone_arch(sd, 'preact.')
  else:
    raise ConversionError(f'Unknown architecture {arch!r}; choose one of {ARCHS}')
  if arch in ('transformer', 'deconv'):
    # Both released models call the same SMPL layer (24 joints + leaf quaternions,
    # `batch_inverse_kinematics_transform` at test time), flip leaf slots
    # ((0, 1), (3, 4)) and scale depth by their datasets' bbox_3d_shape, 2000 mm
    # (hybrikTransformerSMPL24.py / simple3dposeBaseSMPL24.py: `* 2` into the layer).
    # (HybrIK's own train-mode IK is the 'hybrik' convention's naive(), below.)
    fields.update(config_lib.ik_fields(ik.IKConvention.released()))
  if arch in CAMERA_ARCHS:
    # HybrIK's camera models: the released eval-mode IK on 29 joints with their
    # configs' BBOX_3D_SHAPE 2200 mm, and the crop camera of FOCAL_LENGTH 1000.
    fields.update(config_lib.ik_fields(ik.IKConvention.hybrik()))
    fields['predict_camera'] = True
    fields['focal_length'] = HYBRIK_FOCAL_LENGTH
    fields['init_cam'] = tuple(float(v) for v in np.asarray(sd['init_cam']).reshape(-1))
  if 'init_shape' in sd:
    fields['mean_shape'] = tuple(float(v) for v in np.asarray(sd['init_shape']).reshape(-1))
  fields.update(overrides)
  return config_lib.get_model_config(**fields)


# ----------------------------------------------------------------------------
# Key translation: torch name -> (collection, flax path, layout).
# ----------------------------------------------------------------------------

_BN = {'weight': ('params', 'scale'), 'bias': ('params', 'bias'),
       'running_mean': ('batch_stats', 'mean'), 'running_var': ('batch_stats', 'var')}
_LN = {'a_2': 'scale', 'b_2': 'bias'}
_SKIP = 'skip'


def _conv(key: str, path: Path, leaf: str):
  if leaf == 'weight':
    return ('params', path + ('kernel',), 'conv')
  if leaf == 'bias':
    return ('params', path + ('bias',), 'plain')
  return None


def _linear(path: Path, leaf: str):
  if leaf == 'weight':
    return ('params', path + ('kernel',), 'linear')
  if leaf == 'bias':
    return ('params', path + ('bias',), 'plain')
  return None


def _batch_norm(path: Path, leaf: str):
  if leaf == 'num_batches_tracked':
    return _SKIP
  if leaf in _BN:
    collection, name = _BN[leaf]
    return (collection, path + (name,), 'plain')
  return None


def _translate_block(key: str, block: Path, part: str, leaf: str):
  """A resnet.BasicBlock / Bottleneck's layer `part` (conv1, bn2, downsample.0, ...)."""
  if part.startswith('conv'):
    return _conv(key, block + (part,), leaf)
  if part.startswith('bn'):
    return _batch_norm(block + (part,), leaf)
  if part == 'downsample.0':
    return _conv(key, block + ('downsample_conv',), leaf)
  if part == 'downsample.1':
    return _batch_norm(block + ('downsample_bn',), leaf)
  return None


_BLOCK_PART = r'(conv\d|bn\d|downsample\.0|downsample\.1)'


def _translate_backbone(key: str, root: Path):
  """torchvision ResNet / HRNet names (without the 'preact.' prefix).

  The two share conv1, bn1 and layer1; HRNet folds each index into the Flax
  module name (hrnet.py's docstring lists them). In its Sequentials index 0 is
  the convolution and 1 the BatchNorm.
  """
  module, _, leaf = key.rpartition('.')
  if module in ('conv1', 'conv2'):
    return _conv(key, root + (module,), leaf)
  if module in ('bn1', 'bn2'):
    return _batch_norm(root + (module,), leaf)
  m = re.fullmatch(rf'layer(\d)\.(\d+)\.{_BLOCK_PART}', module)
  if m:
    return _translate_block(key, root + (f'layer{m.group(1)}_{m.group(2)}',), m.group(3), leaf)
  m = re.fullmatch(rf'stage(\d)\.(\d+)\.branches\.(\d+)\.(\d+)\.{_BLOCK_PART}', module)
  if m:
    s, mod, b, j, part = m.groups()
    return _translate_block(key, root + (f'stage{s}_{mod}', f'branches_{b}_{j}'), part, leaf)
  m = re.fullmatch(rf'incre_modules\.(\d+)\.0\.{_BLOCK_PART}', module)
  if m:
    return _translate_block(key, root + (f'incre_modules_{m.group(1)}_0',), m.group(2), leaf)
  m = (re.fullmatch(r'(stage\d\.\d+)\.(fuse_layers(?:\.\d+){3,4})', module)
       or re.fullmatch(r'()(transition\d(?:\.\d+){2,3}|downsamp_modules\.\d+\.\d|'
                       r'final_feat_layer\.\d)', module))
  if m:
    path = root + ((m.group(1).replace('.', '_'),) if m.group(1) else ())
    path += (m.group(2).replace('.', '_'),)
    if module.endswith('.0'):
      return _conv(key, path, leaf)
    if module.endswith('.1'):
      return _batch_norm(path, leaf)
  return None


def _translate_transformer_head(key: str):
  head = ('head',)
  if key in ('joint_embeddings', 'type_embeddings'):
    return ('params', head + (key,), 'plain')
  m = re.fullmatch(r'pos_embedding\.(row_embed|col_embed)\.weight', key)
  if m:
    return ('params', head + ('pos_embedding', m.group(1)), 'plain')
  module, _, leaf = key.rpartition('.')
  if module in ('decjoint', 'decphi', 'decshape', 'decleaf'):
    return _linear(head + (module,), leaf)
  if not module.startswith('transformer.'):
    return None
  module = module[len('transformer.'):]
  tr = head + ('transformer',)
  if module in ('input_projection_src', 'input_projection_tgt', 'output_projection'):
    return _linear(tr + (module,), leaf)
  m = re.fullmatch(r'(mha_src|mha_tgt|mha_cross)\.(\d+)\.(linear_[qkvo])', module)
  if m:
    return _linear(tr + (f'{m.group(1)}_{m.group(2)}', m.group(3)), leaf)
  m = re.fullmatch(r'(ffn_src|ffn_tgt)\.(\d+)\.fc_layers\.(\d+)', module)
  if m:
    return _linear(tr + (f'{m.group(1)}_{m.group(2)}', f'fc_layers_{m.group(3)}'), leaf)
  m = re.fullmatch(r'(ffn_src|ffn_tgt)\.(\d+)\.layer_norm', module)
  if m and leaf in _LN:
    return ('params', tr + (f'{m.group(1)}_{m.group(2)}', 'layer_norm', _LN[leaf]), 'plain')
  m = re.fullmatch(r'layer_norm_(src|tgt|cross)\.(\d+)', module)
  if m and leaf in _LN:
    return ('params', tr + (f'layer_norm_{m.group(1)}_{m.group(2)}', _LN[leaf]), 'plain')
  return None


def _translate_deconv_head(key: str):
  head = ('head',)
  module, _, leaf = key.rpartition('.')
  m = re.fullmatch(r'deconv_layers\.(\d+)', module)
  if m:
    index = int(m.group(1))
    path = head + (f'deconv_layers_{index}',)
    if index % 3 == 0 and leaf == 'weight':
      return ('params', path + ('kernel',), 'conv_transpose')
    if index % 3 == 1:
      return _batch_norm(path, leaf)
    return None
  if module == 'final_layer':
    return _conv(key, head + ('final_layer',), leaf)
  if module in ('fc1', 'fc2', 'decshape', 'decphi', 'decleaf', 'deccam', 'decsigma'):
    return _linear(head + (module,), leaf)
  return None


def _translate_hrnet_cam_head(key: str):
  module, _, leaf = key.rpartition('.')
  if module == 'preact.final_layer':
    return _conv(key, ('head', 'final_layer'), leaf)
  if module == 'preact.depth_layer':  # HRNetSMPLXCamKid only
    return _linear(('head', 'depth_layer'), leaf)
  if module in ('decshape', 'decphi', 'deccam', 'decsigma', 'fc_coord', 'fc_coord_mouthtop',
                'decsigma_mouthtop'):
    return _linear(('head', module), leaf)
  return None


def translate_key(key: str, arch: str):
  """(collection, flax path, layout) for a torch key, 'skip', or None (unknown)."""
  if key.startswith(SKIPPED_PREFIXES):
    return _SKIP
  if arch == 'backbone':
    if key in SKIPPED_BACKBONE_KEYS or key.startswith(SKIPPED_HRNET_IMAGENET_PREFIXES):
      return _SKIP
    return _translate_backbone(key, ('backbone',))
  if key == 'init_shape' or (key == 'init_cam' and arch in CAMERA_ARCHS):
    return _SKIP  # -> model_config.mean_shape / init_cam
  if arch in ('hrnet_cam', 'hrnet_smplx_cam') and key.startswith(
      ('preact.final_layer.', 'preact.depth_layer.')):
    return _translate_hrnet_cam_head(key)
  if key.startswith('preact.'):
    return _translate_backbone(key[len('preact.'):], ('backbone',))
  if arch == 'transformer':
    return _translate_transformer_head(key)
  if arch in ('deconv', 'deconv_cam'):
    return _translate_deconv_head(key)
  if arch in ('hrnet_cam', 'hrnet_smplx_cam', 'hrnet_smplx_reg'):
    return _translate_hrnet_cam_head(key)
  raise ConversionError(f'Unknown architecture {arch!r}; choose one of {ARCHS}')


def convert_tensor(value: np.ndarray, layout: str) -> np.ndarray:
  """Reorders a torch tensor into the Flax layout."""
  value = np.asarray(value, np.float32)
  if layout == 'conv':  # (O, I, kh, kw) -> (kh, kw, I, O)
    return value.transpose(2, 3, 1, 0)
  if layout == 'conv_transpose':  # (I, O, kh, kw) -> (kh, kw, O, I)
    return value.transpose(2, 3, 1, 0)
  if layout == 'linear':  # (out, in) -> (in, out)
    return value.T
  return value


# ----------------------------------------------------------------------------
# Conversion.
# ----------------------------------------------------------------------------

# Re-exported: the merge lives with the variable-tree helpers (the trainer's
# init loading uses it too).
merge_variables = variables_lib.merge_variables


def expected_variables(model_config: ml_collections.ConfigDict, arch: str) -> dict:
  """Shapes (jax.ShapeDtypeStruct tree) of {'params', 'batch_stats'} for `arch`.

  For 'backbone' only the backbone subtree (for an HRNet without its feature
  head, which ImageNet checkpoints do not initialise).
  """
  model = hybrik.create_model(model_config)
  size = model_config.input_size
  images = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
  shapes = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), images)
  shapes = {c: dict(shapes.get(c, {})) for c in ('params', 'batch_stats')}
  if arch == 'backbone':
    shapes = {c: {'backbone': t['backbone']} for c, t in shapes.items()}
    if model_config.backbone in hrnet.BACKBONES:  # the feature head stays fresh
      shapes = {c: {'backbone': {k: v for k, v in t['backbone'].items()
                                 if not k.startswith(hrnet.HEAD_MODULE_PREFIXES)}}
                for c, t in shapes.items()}
  return shapes


def convert_state_dict(state_dict: Mapping[str, Any], arch: str = 'auto',
                       model_config: Optional[ml_collections.ConfigDict] = None,
                       progress: bool = False, **config_overrides
                       ) -> tuple[dict, ml_collections.ConfigDict]:
  """A torch state dict -> (variables {'params', 'batch_stats'}, model_config).

  Args:
    state_dict: key -> tensor/array (torch tensors are accepted).
    arch: 'auto' (from the key names) or one of ARCHS.
    model_config: the target model's config; by default derived from the
      tensors (model_config_from_state_dict) with `config_overrides`.
    progress: show a tqdm bar.

  Raises:
    ConversionError: unknown architecture, keys that map nowhere, model
      variables no key provides, or shape mismatches (each listed).
  """
  sd = state_dict_to_numpy(state_dict)
  if arch == 'auto':
    arch = detect_arch(sd)
  if arch not in ARCHS:
    raise ConversionError(f'Unknown architecture {arch!r}; choose one of {ARCHS} or auto')
  if model_config is None:
    try:
      model_config = model_config_from_state_dict(sd, arch, **config_overrides)
    except KeyError as e:
      raise ConversionError(f'The checkpoint lacks {e} needed to read the {arch} '
                            'architecture from it.') from e
  expected = {(c,) + p: v for c, t in expected_variables(model_config, arch).items()
              for p, v in variables_lib.flatten(t).items()}
  converted: dict[Path, np.ndarray] = {}
  unknown, mismatched, duplicated = [], [], []
  for key in tqdm.tqdm(sorted(sd), desc=f'convert {arch}', disable=not progress):
    target = translate_key(key, arch)
    if target == _SKIP:
      continue
    if target is None:
      unknown.append(key)
      continue
    collection, path, layout = target
    full = (collection,) + path
    if full not in expected:
      unknown.append(f'{key} (-> {"/".join(full)})')
      continue
    value = convert_tensor(sd[key], layout)
    if tuple(value.shape) != tuple(expected[full].shape):
      mismatched.append(f'{key} {tuple(sd[key].shape)} -> {"/".join(full)} '
                        f'{tuple(value.shape)} != expected {tuple(expected[full].shape)}')
      continue
    if full in converted:
      duplicated.append(key)
    converted[full] = value
  missing = ['/'.join(p) for p in expected if p not in converted]
  problems = []
  if unknown:
    problems.append(f'{len(unknown)} checkpoint keys the {arch} model has no place for: '
                    + _format_keys(unknown))
  if missing:
    problems.append(f'{len(missing)} model variables missing from the checkpoint: '
                    + _format_keys(missing))
  if mismatched:
    problems.append(f'{len(mismatched)} shape mismatches: ' + '; '.join(mismatched[:40]))
  if duplicated:
    problems.append('keys mapped twice: ' + _format_keys(duplicated))
  if problems:
    raise ConversionError(f'Cannot convert the checkpoint to the {arch} model:\n  '
                          + '\n  '.join(problems))
  variables = variables_lib.unflatten(converted)
  variables.setdefault('batch_stats', {})
  return variables, model_config


def parse(argv: Sequence[str] | None = None) -> flags.FlagValues:
  """The flags of `python -m hybrik_jax.convert` (see --help)."""
  fs = cli_flags.FlagSet(
      'python -m hybrik_jax.convert', __doc__,
      aliases={'torch-checkpoint': 'torch_checkpoint', 'num-heads': 'num_heads'})
  fs.string('torch_checkpoint', None, 'the PyTorch .pth file', required=True)
  fs.out('output directory (the exported model)', required=True)
  fs.enum('arch', 'auto', ('auto',) + ARCHS, 'what the checkpoint holds '
          '(auto: guessed from its keys)')
  fs.integer('num_heads', None, 'attention heads (not stored in the weights; '
             'paper: 8)', lower_bound=1)
  fs.integer('input_size', None, 'input side, px (deconv/backbone; paper: 256)',
             lower_bound=1)
  fs.overwrite('replace a model already in --out')
  fs.boolean('allow_non_finite', False,
             'convert even if some weights are NaN or inf')
  return fs.parse(argv)


def main(argv: Sequence[str] | None = None) -> int:
  args = parse(argv)

  from hybrik_jax.checkpoints import model_dir  # pylint: disable=g-import-not-at-top

  if os.path.exists(args.out) and not os.path.isdir(args.out):
    raise cli.UserError(f'--out {args.out} is a file: choose a directory.')
  if os.path.isdir(args.out) and os.listdir(args.out) and not args.overwrite:
    raise cli.UserError(f'--out {args.out} already exists and is not empty: '
                        'choose a new directory, or pass --overwrite to '
                        'replace it.')
  cli.check_writable_dir(args.out, '--out')

  overrides = {}
  if args.num_heads is not None:
    overrides['num_heads'] = args.num_heads
  if args.input_size is not None:
    overrides['input_size'] = args.input_size
  state_dict = load_torch_state_dict(args.torch_checkpoint)
  if not args.allow_non_finite:
    check_finite_weights(state_dict, args.torch_checkpoint)
  try:
    variables, model_config = convert_state_dict(state_dict, args.arch, progress=True,
                                                 **overrides)
  except ConversionError as e:
    raise ConversionError(f'{args.torch_checkpoint}: {e}') from None
  out = model_dir.save_model(args.out, variables, model_config, overwrite=args.overwrite)
  n = sum(np.size(v) for v in jax.tree.leaves(variables['params']))
  print(f'Wrote {out} ({model_config.backbone} + {model_config.head}, {n:,} parameters).')
  return 0


if __name__ == '__main__':
  cli.run(main)
