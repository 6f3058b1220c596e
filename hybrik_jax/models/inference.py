"""The one prediction path: network -> [flip test] -> float32 -> decode.

The trainer's validation (`evaluation.loop.eval_step`), `evaluate` and `demo` all
call `predict`, so a checkpoint gives the same body wherever it is run.
"""

from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp

from hybrik_jax.body import ik
from hybrik_jax.models import camera as camera_lib
from hybrik_jax.models import config as model_config_lib
from hybrik_jax.models import hybrik
from hybrik_jax.models import hybrik_x

PyTree = Any


def float32_outputs(raw: Mapping[str, Any]) -> dict[str, Any]:
  """Floating head outputs as float32 (bfloat16 / float16 models); None kept.

  Decoding and the loss always run in float32 (the trainer uses this too).
  """
  return jax.tree.map(
      lambda v: v.astype(jnp.float32) if jnp.issubdtype(v.dtype, jnp.floating)
      else v, dict(raw))


def predict(model, variables: Mapping[str, PyTree], images: jnp.ndarray, *,
            trans_inv: Optional[jnp.ndarray] = None,
            intrinsics: Optional[jnp.ndarray] = None,
            joint_root: Optional[jnp.ndarray] = None, smpl_model, flip_test: bool,
            model_config: Mapping[str, Any],
            bboxes: Optional[jnp.ndarray] = None,
            img_center: Optional[jnp.ndarray] = None,
            convention: ik.IKConvention | None = None) -> hybrik.ModelOutput:
  """Images -> decoded body (eval mode, no rng); jit-able.

  Args:
    model: a HybrIKNet (anything with `apply(variables, images, train=False)`
      returning the raw head dict).
    variables: its {'params', 'batch_stats'}.
    images: (B, S, S, 3) ImageNet-normalised, S = model_config.input_size.
    trans_inv: (B, 2, 3) input px -> stored-image px.
    intrinsics: (B, 3, 3) K of the stored image.
    joint_root: (B, 3) metres, camera frame (its z lifts uvd to metres).
    smpl_model: a hybrik_jax.body.smpl.SMPLModel.
    flip_test: average with the mirrored images (HybrIK's --flip-test).
    model_config: the model's config (models.config fields): `input_size`
      and the IK fields, read here once into the `ik.IKConvention`
      (`models.config.ik_convention`) whose IK, leaf flip pairs and depth unit
      of the network's d (`depth_factor`, metres) decoding and the flip test
      use; a batch's own depth_factor is never used for decoding.
    bboxes: camera models only (`predict_camera`), optional (B, 4) xyxy px:
      the crop's box in the full image, with img_center (B, 2) px, the image
      centre (HybrIK's demo passes both: the camera is then the full image's).
    convention: overrides the model config's convention (the exporter passes
      it with `kabsch='horn'`, the same rotations without SVD); default: read
      from `model_config`.

  trans_inv, intrinsics and joint_root are needed by models without a camera
  and ignored by camera models, which place the body with their own camera.

  Returns:
    hybrik.ModelOutput (metres, camera axes, root-relative; float32); for a
    camera model with `camera` (models.camera.CameraOutput: cam_scale (B, 1),
    cam_root (B, 3) m, transl (B, 3) m, ...). For an SMPL-X model (model.body
    'smplx', HybrIK-X; `smpl_model` then a body.smplx.SMPLXModel) a
    models.hybrik_x.SMPLXModelOutput.
  """
  if convention is None:
    convention = model_config_lib.ik_convention(model_config)
  if model_config.get('body', 'smpl') == 'smplx':  # HybrIK-X: smpl_model is an SMPLXModel
    raw = model.apply(variables, images, train=False, flip_test=flip_test)
    return hybrik_x.decode_camera_smplx(
        float32_outputs(raw), smplx_model=smpl_model,
        focal_length=float(model_config['focal_length']),
        input_size=int(model_config['input_size']), depth_factor=convention.depth_factor,
        head=model_config['head'], bboxes=bboxes, img_center=img_center,
        kabsch=convention.kabsch)
  if model_config.get('predict_camera', False):
    if model_config['head'] == 'transformer':  # its camera token: the usual flip test
      apply = lambda x: model.apply(variables, x, train=False)
      raw = (hybrik.flip_test(apply, images, convention.leaf_flip_pairs) if flip_test
             else apply(images))
    else:  # HybrIK's camera heads flip inside the network (they average heatmaps)
      raw = model.apply(variables, images, train=False, flip_test=flip_test)
    return hybrik.decode_camera(
        float32_outputs(raw), smpl_model=smpl_model, convention=convention,
        focal_length=float(model_config['focal_length']),
        input_size=int(model_config['input_size']),
        refine_scale=camera_lib.refines_scale(model_config['head']), bboxes=bboxes,
        img_center=img_center)
  if trans_inv is None or intrinsics is None or joint_root is None:
    raise ValueError('predict: a model without a camera needs trans_inv, intrinsics '
                     'and joint_root')
  apply = lambda x: model.apply(variables, x, train=False)
  raw = (hybrik.flip_test(apply, images, convention.leaf_flip_pairs) if flip_test
         else apply(images))
  return hybrik.decode(
      float32_outputs(raw), smpl_model=smpl_model, trans_inv=trans_inv,
      intrinsics=intrinsics, joint_root=joint_root,
      input_size=int(model_config['input_size']), convention=convention)


def predict_batch(model, variables: Mapping[str, PyTree],
                  batch: Mapping[str, jnp.ndarray], *, smpl_model,
                  flip_test: bool, model_config: Mapping[str, Any]
                  ) -> hybrik.ModelOutput:
  """`predict` on an input_pipeline batch (image, trans_inv, intrinsics,
  joint_root)."""
  return predict(
      model, variables, batch['image'], trans_inv=batch['trans_inv'],
      intrinsics=batch['intrinsics'], joint_root=batch['joint_root'],
      smpl_model=smpl_model,
      flip_test=flip_test, model_config=model_config)

