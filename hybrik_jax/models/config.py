"""Model configuration: every network field with the paper's defaults.

`get_model_config()` gives the HybrIK-Transformer of the paper (ResNet-34,
L=6 blocks, h=8 heads, d=512, FFN 3 layers of width 512, dropout 0.1, patch
retention uniform in [0.2, 1.0]); `get_tiny_model_config()` a few-thousand
parameter variant for tests. Both accept keyword overrides.
"""

from typing import NamedTuple

import ml_collections

from hybrik_jax.body import constants

# Fields that hold sequences; stored as tuples so the config maps 1:1 onto
# hashable Flax module attributes.
_TUPLE_FIELDS = ('deconv_channels', 'mean_shape', 'leaf_joints', 'leaf_flip_pairs')
# Fields that say how the network's outputs are read (decode, flip test), not
# what the network is: they travel with a checkpoint but are not HybrIKNet fields.
IK_FIELDS = ('ik_convention', 'leaf_joints', 'joint23_to_pelvis', 'leaf_flip_pairs',
             'depth_factor')
# The project's depth unit, metres (= hybrik_jax.data.features.DEFAULT_DEPTH_FACTOR,
# HybrIK's SMPL configs' BBOX_3D_SHAPE 2200 mm).
CORRECTED_DEPTH_FACTOR = 2.2
# The released models': bbox_3d_shape 2000 mm of their datasets (h36m_smpl.py,
# hp3d.py, mix_dataset.py), also the x2 of their SMPL-layer call.
RELEASED_DEPTH_FACTOR = 2.0


def ik_fields(convention: str) -> dict:
  """The IK / decoding fields of a named convention (see `ik.convention_options`).

  'released': the released HybrIK-Transformer and HybrIK Simple3DPoseBaseSMPL24
  models: leaf slots -> joints 10, 11, 15, 22, joint 23 aimed at the pelvis, leaf
  flip pairs ((0, 1), (3, 4)) over the slots, depth factor 2.0 m, train-mode IK in
  the train step. 'corrected': this project's own: the five leaves in
  `constants.LEAF_JOINT_NAMES` order (slot k -> `LEAF_PARENT_JOINTS[k]`), flip
  pairs ((1, 2), (3, 4)), depth factor 2.2 m, one IK for training and evaluation.
  """
  if convention == 'released':
    return dict(ik_convention='released',
                leaf_joints=constants.RELEASED_LEAF_SLOT_JOINTS, joint23_to_pelvis=True,
                leaf_flip_pairs=constants.RELEASED_FLIP_PAIRS_LEAF,
                depth_factor=RELEASED_DEPTH_FACTOR)
  if convention == 'corrected':
    return dict(ik_convention='corrected',
                leaf_joints=constants.LEAF_PARENT_JOINTS, joint23_to_pelvis=False,
                leaf_flip_pairs=constants.FLIP_PAIRS_LEAF,
                depth_factor=CORRECTED_DEPTH_FACTOR)
  raise ValueError(f"Unknown IK convention {convention!r}; choose 'released' or "
                   "'corrected'")


class IKSettings(NamedTuple):
  """The IK / decoding fields of a model config, as hashable Python values."""
  convention: str
  leaf_joints: tuple[int, ...]
  joint23_to_pelvis: bool
  leaf_flip_pairs: tuple[tuple[int, int], ...]
  depth_factor: float


def resolve_ik_fields(model_config) -> dict:
  """The five IK fields of a model config, None ones from its ik_convention.

  Raises:
    ValueError: a field is absent (a config from before these fields: load it
      with `checkpoints.model_dir.load_model`, which fills them in) or the
      convention is unknown.
  """
  missing = [k for k in IK_FIELDS if k not in model_config]
  if missing:
    raise ValueError(f'model config lacks the IK fields {missing}; set ik_convention '
                     '(models.config.get_model_config has them all)')
  fields = ik_fields(model_config['ik_convention'])
  fields.update({k: model_config[k] for k in IK_FIELDS if model_config[k] is not None})
  return fields


def ik_settings(model_config) -> IKSettings:
  """The IK fields of a model config (ConfigDict or mapping), resolved and checked.

  Raises:
    ValueError: a field is absent or invalid.
  """
  get = resolve_ik_fields(model_config).__getitem__
  settings = IKSettings(
      convention=str(get('ik_convention')),
      leaf_joints=tuple(int(j) for j in get('leaf_joints')),
      joint23_to_pelvis=bool(get('joint23_to_pelvis')),
      leaf_flip_pairs=tuple((int(a), int(b)) for a, b in get('leaf_flip_pairs')),
      depth_factor=float(get('depth_factor')))
  if not settings.depth_factor > 0:
    raise ValueError(f'model.depth_factor must be > 0 metres, got {settings.depth_factor}')
  if any(not 0 <= i < 5 for pair in settings.leaf_flip_pairs for i in pair):
    raise ValueError(f'model.leaf_flip_pairs must index the 5 leaf slots, got '
                     f'{settings.leaf_flip_pairs}')
  return settings


def get_model_config(**overrides) -> ml_collections.ConfigDict:
  """The paper's model. Keyword arguments override single fields."""
  c = ml_collections.ConfigDict()
  # Backbone: 'resnet18' | 'resnet34' | 'resnet50' | 'hrnet_w32' | 'hrnet_w48'
  # (2048 feature channels, the released BACKBONE: HRNET) | 'resnet_tiny' (the
  # CPU main job, tests) / 'hrnet_tiny' (tests).
  c.backbone = 'resnet34'
  # Recompute the backbone's block activations in the backward pass
  # (nn.remat): less training memory for ~1/3 more backbone FLOPs; same
  # parameters and results (benchmarks/efficiency.py --remat).
  c.backbone_remat = False
  # ResNets only: output stride 32 (the paper's), 16 or 8. The token grid is
  # input_size // backbone_stride (the paper: 256 // 32 = 8x8).
  c.backbone_stride = 32
  # Lifting head: 'transformer' (the paper) | 'deconv' (original HybrIK).
  c.head = 'transformer'
  # Transformer head only: recompute its attention / FFN sub-layers in the
  # backward pass (nn.remat); less memory, same results.
  c.head_remat = False
  # Square input crop side, px. The feature map is input_size // backbone_stride.
  c.input_size = 256
  # Transformer head (boreshkinai/hybrik-transformer, configs/hybrik_transformer_smpl24.yaml).
  c.d_model = 512
  c.num_heads = 8
  c.num_blocks = 6
  c.ffn_layers = 3  # layers of each residual FFN
  c.ffn_width = 512  # their width (LAYER_WIDTH)
  c.dropout = 0.1
  # Patch subset sampling at train time: retained fraction uniform in [low, high].
  c.retain_low = 0.2
  c.retain_high = 1.0
  # Add the released code's 5 leaf-rotation tokens (quaternions) to the
  # 48 of the paper (24 keypoints, 23 twists, 1 shape).
  c.predict_leaf = False
  # Twist token i (0..22) uses joint embedding i + twist_joint_offset. The
  # released code uses joint_embeddings[:23], i.e. offset 0 (kept so its
  # checkpoints convert exactly); 1 would use the twist's own joint 1..23.
  c.twist_joint_offset = 0
  # Attention core implementation for jax.nn.dot_product_attention:
  # None (XLA), 'xla' or 'cudnn' (fused; GPU, bfloat16/float16 only).
  c.attention_impl = None
  # Deconvolution head (Jeff-sjtu/HybrIK Simple3DPoseBaseSMPL24).
  c.deconv_channels = (256, 256, 256)
  c.depth_dim = 64
  c.fc_width = 1024  # fc1/fc2 of the twist/shape branch
  c.fc_dropout = 0.5
  # Compute dtype ('float32' | 'bfloat16'); parameters stay float32.
  c.dtype = 'float32'
  # SMPL mean shape added to the predicted shape offset (HybrIK uses
  # h36m_mean_beta.npy, not shipped here; configs or converters may set it).
  c.mean_shape = (0.0,) * 10
  # How the outputs are read (IK_FIELDS; decode, flip test, trainer); README
  # "Fidelity". ik_convention selects them all: 'corrected' (this project's) or
  # 'released' (the released models'; its train-mode IK runs in the train step).
  # The other four are None = the convention's (ik_fields), or set to override;
  # save_model writes the resolved values, so an exported model records them.
  c.ik_convention = 'corrected'
  c.leaf_joints = None  # joint given leaf slot k (24-joint skeleton)
  c.joint23_to_pelvis = None  # joint 23 swing-twisted towards the pelvis
  c.leaf_flip_pairs = None  # leaf-slot pairs swapped by the flip test
  c.depth_factor = None  # metres per unit of the network's relative depth d
  for key, value in overrides.items():
    if key not in c:
      raise KeyError(f'get_model_config: unknown model field {key!r}; '
                     f'known fields: {sorted(c.keys())}')
    c[key] = _as_tuple(value) if key in _TUPLE_FIELDS else value
  return c


def _as_tuple(value):
  return tuple(_as_tuple(v) if isinstance(v, (list, tuple)) else v for v in value)


def get_tiny_model_config(**overrides) -> ml_collections.ConfigDict:
  """A tiny model for tests: 8-channel ResNet, d_model 32, 2 blocks, 64 px input."""
  tiny = dict(
      backbone='resnet_tiny', input_size=64, d_model=32, num_heads=4,
      num_blocks=2, ffn_layers=3, ffn_width=32, deconv_channels=(16, 16, 16),
      depth_dim=8, fc_width=32)
  tiny.update(overrides)
  return get_model_config(**tiny)
