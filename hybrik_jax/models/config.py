"""Model configuration: every network field with the paper's defaults.

`get_model_config()` gives the HybrIK-Transformer of the paper (ResNet-34,
L=6 blocks, h=8 heads, d=512, FFN 3 layers of width 512, dropout 0.1, patch
retention uniform in [0.2, 1.0]); `get_tiny_model_config()` a few-thousand
parameter variant for tests. Both accept keyword overrides. The IK fields
(`IK_FIELDS`: how the outputs are decoded) are read into one `ik.IKConvention` by
`ik_convention(model_config)` and written from one by `ik_fields(convention)`.
"""

import ml_collections

from hybrik_jax import errors
from hybrik_jax.body import ik

# Fields that hold sequences; stored as tuples so the config maps 1:1 onto
# hashable Flax module attributes.
_TUPLE_FIELDS = ('deconv_channels', 'mean_shape', 'init_cam', 'leaf_joints', 'leaf_flip_pairs')
# Fields that say how the network's outputs are read (decode, flip test), not
# what the network is: they travel with a checkpoint (model_config.json) but are
# not HybrIKNet fields. `ik_convention` reads them into an `ik.IKConvention`,
# `ik_fields` writes one back.
IK_FIELDS = ('ik_convention', 'leaf_joints', 'joint23_to_pelvis', 'leaf_flip_pairs',
             'depth_factor')
# Fields of the camera decoding (models.camera), not HybrIKNet fields.
CAMERA_FIELDS = ('focal_length',)


def ik_convention(model_config) -> ik.IKConvention:
  """The model's IK convention: the one reader of a model config's IK fields.

  `ik_convention` names the convention ('released' or 'corrected',
  `ik.IKConvention.named`); each of the other four IK_FIELDS that is not None
  overrides the convention's value. Build it once where the model config is
  read and pass it down (decode, flip test, train step).

  Args:
    model_config: a models.config ConfigDict or a mapping (model_config.json).

  Raises:
    errors.InputError: an IK field is absent (a config from before these fields:
      load it with `checkpoints.model_dir.load_model`, which fills them
      in), the
      convention is unknown, or a field is malformed; the message names the
      field (`model.leaf_joints ...`) and what it may hold.
  """
  missing = [k for k in IK_FIELDS if k not in model_config]
  if missing:
    raise errors.InputError(f'model config lacks the IK fields {missing}; set '
                            'ik_convention (models.config.get_model_config has them all)')
  name = model_config['ik_convention']
  if not isinstance(name, str) or name not in ik.CONVENTIONS:
    raise errors.InputError(f'model.ik_convention must be one of {ik.CONVENTIONS}, '
                            f'got {name!r}')
  overrides = {k: model_config[k] for k in IK_FIELDS[1:] if model_config[k] is not None}
  try:
    return ik.IKConvention.named(name).replace(**overrides)
  except errors.InputError as e:
    raise errors.InputError(f'model.{e}') from None


def ik_fields(convention: ik.IKConvention) -> dict:
  """The IK_FIELDS of a model config that records `convention` (all resolved).

  `ik_fields(ik.IKConvention.released())` is what `convert` gives the released
  HybrIK-Transformer and HybrIK Simple3DPoseBaseSMPL24 models; `save_model`
  writes `ik_fields(ik_convention(model_config))`.
  `ik_convention(get_model_config(**ik_fields(c)))` gives back `c` for either
  named convention (the IK-only fields, root_fit etc., are the name's).
  """
  return dict(ik_convention=convention.name, leaf_joints=convention.leaf_joints,
              joint23_to_pelvis=convention.joint23_to_pelvis,
              leaf_flip_pairs=convention.leaf_flip_pairs,
              depth_factor=convention.depth_factor)


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
  # Lifting head: 'transformer' (the paper) | 'deconv' (original HybrIK) | 'heatmap'
  # (HRNetSMPLCam; with body 'smplx' HRNetSMPLXCamKid) | 'regression' (body 'smplx':
  # HRNetSMPLXCamKidReg).
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
  # HybrIK's camera models (Jeff-sjtu/HybrIK; models/heatmap_cam_head.py): the
  # network also predicts a weak-perspective camera and per-joint sigma, with
  # 29 joints. head 'deconv' is Simple3DPoseBaseSMPLCam (ResNet, camera (s, tx,
  # ty)), head 'heatmap' HRNetSMPLCam (HRNet, camera (s,), refined at
  # evaluation by models.camera.update_scale). Their configs use
  # ik_convention 'hybrik' (depth_factor 2.2 m). With head 'transformer' (this
  # project's, beyond both releases): a camera token, the 49th target token,
  # gives the camera (s, tx, ty) and per-joint sigma of the 24 keypoint tokens,
  # decoded and refined as HRNetSMPLCam's (models.transformer.TransformerHead).
  c.predict_camera = False
  # Added to the camera output; None = the class's released value (the
  # Transformer's camera token: (0.9, 0, 0), the ResNet class's).
  c.init_cam = None
  c.focal_length = 1000.0  # px of the input crop's virtual camera (FOCAL_LENGTH)
  # The body model the network predicts: 'smpl' or 'smplx' (HybrIK-X's
  # HRNetSMPLXCamKid: head 'heatmap', predict_camera, 71 joints' 2.5D heatmaps,
  # 54 twists, 10 betas + kid blend + 10 expression; decoded by models.hybrik_x
  # through body.ik_smplx, depth_factor 2.2 m; ik_convention 'hybrik' records
  # that depth unit, the SMPL-X IK being HybrIK-X's own).
  c.body = 'smpl'
  # Compute dtype ('float32' | 'bfloat16'); parameters stay float32.
  c.dtype = 'float32'
  # SMPL mean shape added to the predicted shape offset (HybrIK uses
  # h36m_mean_beta.npy, not shipped here; configs or converters may set it).
  c.mean_shape = (0.0,) * 10
  # How the outputs are read (IK_FIELDS, read by ik_convention into one
  # ik.IKConvention for decode, the flip test and the trainer); docs/FIDELITY.md
  # "The IK convention". ik_convention selects them all: 'corrected' (this project's) or
  # 'released' (the released models'; its train-mode IK runs in the train step).
  # The other four are None = the convention's, or set to override;
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
    # (A string or None is kept as given, for the IK fields' reader to judge.)
    is_sequence = value is not None and not isinstance(value, (str, bytes))
    c[key] = _as_tuple(value) if key in _TUPLE_FIELDS and is_sequence else value
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
