"""Networks: ResNet and HRNet backbones, the Transformer and deconvolution heads, HybrIKNet."""

from hybrik_jax.models.config import get_model_config
from hybrik_jax.models.config import get_tiny_model_config
from hybrik_jax.models.config import ik_convention
from hybrik_jax.models.hybrik import create_model
from hybrik_jax.models.hybrik import decode
from hybrik_jax.models.hybrik import flip_image
from hybrik_jax.models.hybrik import flip_outputs
from hybrik_jax.models.hybrik import flip_test
from hybrik_jax.models.hybrik import HybrIKNet
from hybrik_jax.models.hybrik import ModelOutput
from hybrik_jax.models.hybrik import uvd_to_xyz
from hybrik_jax.models.hybrik import xyz_to_uvd
from hybrik_jax.models.inference import predict
from hybrik_jax.models.inference import predict_batch
