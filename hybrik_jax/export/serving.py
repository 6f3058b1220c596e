"""The function every exported artefact computes: crops (+ camera) -> body.

`make_serving_fn` closes `models.inference.predict` over a model's variables
(baked in as constants) and the body model, with the IK's Kabsch root fit
solved without SVD (`ik.IKConvention(kabsch='horn')`: the same rotations to
float precision, and an operation set every runtime has). Its inputs and
outputs are plain arrays, named, in a fixed order (`input_names`,
`output_names`), so the StableHLO, SavedModel and ONNX artefacts all have one
signature per kind of model:

  inputs   images      (B, S, S, 3) uint8 RGB crops, or float32 already
                       ImageNet-normalised (`data.augment.normalize_image`)
    models without a camera (HybrIK-Transformer, Simple3DPoseBaseSMPL24):
           trans_inv   (B, 2, 3) float32, crop px -> image px
           intrinsics  (B, 3, 3) float32, K of the image
           joint_root  (B, 3) float32 metres, camera frame (its z: root depth)
    camera models (HybrIK's, HybrIK-X's, the Transformer's camera token),
    which place the body with their own camera as HybrIK's demo does:
           bboxes      (B, 4) float32 xyxy px, the crop's box in the image
           img_center  (B, 2) float32 px, the image centre
  outputs  the fields of `models.hybrik.ModelOutput` that are not None (in
           field order; pred_vertices dropped with `with_mesh=False`) and, for
           camera models, those of its `camera` (`models.camera.CameraOutput`:
           pred_camera, pred_sigma, [maxvals,] cam_scale, cam_root, transl,
           pred_uvd_29, pred_xyz_29); for SMPL-X models (HybrIK-X) the fields of
           `models.hybrik_x.SMPLXModelOutput`. float32 except `valid` (B,) bool.

Outputs equal `predict`'s for finite inputs. Malformed inputs: a row whose
camera inputs (trans_inv, intrinsics, joint_root) are not finite, or whose
network outputs are not (a NaN image), gets valid=False and zeros, never a
silent wrong body; wrong shapes and dtypes are refused by each runtime.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from hybrik_jax import errors
from hybrik_jax.data import augment
from hybrik_jax.models import config as model_config_lib
from hybrik_jax.models import hybrik
from hybrik_jax.models import inference

IMAGE_DTYPES = ('uint8', 'float32')
# Inputs after `images`, with their shapes after the batch dimension: models
# without a camera, and camera models (placed by their own camera).
CAMERA_INPUTS = (('trans_inv', (2, 3)), ('intrinsics', (3, 3)), ('joint_root', (3,)))
PLACEMENT_INPUTS = (('bboxes', (4,)), ('img_center', (2,)))
MESH_FIELD = 'pred_vertices'


@dataclasses.dataclass(frozen=True)
class ServingOptions:
  """What an artefact computes.

  Attributes:
    batch: fixed batch size, or None for a dynamic (symbolic) batch.
    flip_test: average with the mirrored crops (HybrIK's --flip-test).
    with_mesh: output pred_vertices (B, 6890, 3); False: joints only.
    image_dtype: 'uint8' (RGB 0..255, normalised inside) or 'float32'
      (already normalised).
    camera: the model places the body with its own camera (inputs bboxes,
      img_center instead of trans_inv, intrinsics, joint_root); set from the
      model config by `for_model`.
  """
  batch: int | None = 1
  flip_test: bool = False
  with_mesh: bool = True
  image_dtype: str = 'uint8'
  camera: bool = False

  def __post_init__(self):
    if self.batch is not None and (not isinstance(self.batch, int) or self.batch < 1):
      raise errors.InputError(f'batch must be a positive integer or None (dynamic), '
                              f'got {self.batch!r}')
    if self.image_dtype not in IMAGE_DTYPES:
      raise errors.InputError(f'image_dtype must be one of {IMAGE_DTYPES}, '
                              f'got {self.image_dtype!r}')


def has_camera(model_config) -> bool:
  """Whether the model places the body with its own camera (HybrIK's and
  HybrIK-X's camera models, the Transformer's camera token)."""
  return bool(model_config.get('predict_camera', False)) or (
      model_config.get('body', 'smpl') == 'smplx')


def for_model(options: ServingOptions, model_config) -> ServingOptions:
  """`options` with `camera` set from the model config."""
  return dataclasses.replace(options, camera=has_camera(model_config))


def _extra_inputs(options: ServingOptions):
  return PLACEMENT_INPUTS if options.camera else CAMERA_INPUTS


def input_names(options: ServingOptions = ServingOptions()) -> tuple[str, ...]:
  """The artefacts' input names, in call order."""
  return ('images',) + tuple(name for name, _ in _extra_inputs(options))


def input_specs(input_size: int, options: ServingOptions,
                batch_dim: Any = None) -> list[jax.ShapeDtypeStruct]:
  """ShapeDtypeStructs of the inputs; `batch_dim` overrides options.batch
  (e.g. a jax.export symbolic dimension)."""
  b = options.batch if batch_dim is None else batch_dim
  specs = [jax.ShapeDtypeStruct((b, input_size, input_size, 3),
                                np.dtype(options.image_dtype))]
  specs += [jax.ShapeDtypeStruct((b,) + shape, np.float32)
            for _, shape in _extra_inputs(options)]
  return specs


def output_fields(output, with_mesh: bool) -> dict[str, Any]:
  """The exported fields of a ModelOutput (its `camera`'s fields flattened
  in after them) or an SMPLXModelOutput, in field order (None dropped)."""
  out = {}
  for field in dataclasses.fields(output):
    value = getattr(output, field.name)
    if value is None or (field.name == MESH_FIELD and not with_mesh):
      continue
    if dataclasses.is_dataclass(value):  # ModelOutput.camera
      out.update(output_fields(value, with_mesh))
    else:
      out[field.name] = value
  return out


def _rows_finite(x: jnp.ndarray) -> jnp.ndarray:
  return jnp.isfinite(x.reshape(x.shape[0], -1)).all(-1)


def normalize_images(images: jnp.ndarray) -> jnp.ndarray:
  """(B, S, S, 3) uint8 RGB -> float32 ImageNet-normalised (as
  `data.augment.normalize_image`)."""
  mean = jnp.asarray(255.0 * augment.IMAGE_MEAN, jnp.float32)
  inv_std = jnp.asarray(1.0 / (255.0 * augment.IMAGE_STD), jnp.float32)
  return (images.astype(jnp.float32) - mean) * inv_std


def make_serving_fn(model, variables: Mapping[str, Any], model_config,
                    smpl_model, options: ServingOptions, *,
                    kabsch: str = 'horn') -> Callable[..., dict[str, jnp.ndarray]]:
  """(images, trans_inv, intrinsics, joint_root) -> {output name: array}.

  Args:
    model: the HybrIKNet (`models.create_model(model_config)`).
    variables: its {'params', 'batch_stats'} (closed over: constants).
    model_config: its config.
    smpl_model: the body model (closed over).
    options: ServingOptions.
    kabsch: the IK's Kabsch solver ('horn': no SVD; 'svd': predict's own).

  Returns:
    A jit-able function of the inputs (`input_names(options)`; see the module
    docstring).

  Raises:
    errors.InputError: options.camera does not match the model (`for_model`).
  """
  convention = model_config_lib.ik_convention(model_config).replace(kabsch=kabsch)
  if options.camera != has_camera(model_config):
    raise errors.InputError(
        f'ServingOptions.camera={options.camera} but the model '
        f"{'has' if has_camera(model_config) else 'has no'} camera: use "
        'serving.for_model(options, model_config)')

  def serve(images, *camera_inputs):
    x = normalize_images(images) if options.image_dtype == 'uint8' else images
    if options.camera:
      bboxes, img_center = camera_inputs
      out = inference.predict(
          model, variables, x, bboxes=bboxes, img_center=img_center,
          smpl_model=smpl_model, flip_test=options.flip_test,
          model_config=model_config, convention=convention)
    else:
      trans_inv, intrinsics, joint_root = camera_inputs
      out = inference.predict(
          model, variables, x, trans_inv=trans_inv, intrinsics=intrinsics,
          joint_root=joint_root, smpl_model=smpl_model, flip_test=options.flip_test,
          model_config=model_config, convention=convention)
    valid = out.valid
    for camera_input in camera_inputs:
      valid = valid & _rows_finite(camera_input)
    fields = output_fields(out, options.with_mesh)
    result = {}
    for name, value in fields.items():
      if name == 'valid':
        result[name] = valid
      else:
        mask = valid.reshape((-1,) + (1,) * (value.ndim - 1))
        result[name] = jnp.where(mask, value, jnp.zeros((), value.dtype))
    return result

  return serve


def output_names(serve: Callable, input_size: int, options: ServingOptions) -> tuple[str, ...]:
  """The output names `serve` returns, in order (traced, not compiled)."""
  shapes = jax.eval_shape(serve, *input_specs(input_size, options, batch_dim=1))
  return tuple(shapes)
