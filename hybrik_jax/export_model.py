r"""Export a model, crops to body, as a SavedModel, StableHLO or ONNX artefact.

  python -m hybrik_jax.export_model --checkpoint DIR --out OUT \
      --format savedmodel|stablehlo|onnx [--batch N | --dynamic_batch] \
      [--flip_test] [--with_mesh | --joints_only] [--image_dtype uint8|float32] \
      [--smpl SMPL_NEUTRAL.pkl --h36m_regressor J_regressor_h36m.npy]

The artefact computes `models.inference.predict` (network, flip test, IK,
skinning) and runs without hybrik_jax: `jax.export.deserialize` (StableHLO),
`tf.saved_model.load` / TF Serving (SavedModel, signature 'serving_default'),
onnxruntime (ONNX). Inputs: images (B, S, S, 3) uint8 RGB crops (or float32
ImageNet-normalised with --image_dtype float32), then trans_inv (B, 2, 3),
intrinsics (B, 3, 3), joint_root (B, 3) metres; or, for camera models
(HybrIK's, HybrIK-X's, the Transformer's camera token), bboxes (B, 4) xyxy px
and img_center (B, 2) px. Outputs: the ModelOutput fields (pred_uvd,
pred_phi, pred_shape, [pred_leaf], pred_xyz_24, pred_xyz_24_struct,
pred_xyz_17, [pred_vertices], pred_rotmats, valid), a camera model's camera
fields (pred_camera, pred_sigma, [maxvals], cam_scale, cam_root, transl,
pred_uvd_29, pred_xyz_29), or HybrIK-X's SMPL-X fields (--smpl
SMPLX_NEUTRAL.npz with its kid template beside it). OUT/export.json lists them
with shapes and dtypes. The IK's Kabsch fits are solved without SVD (Horn's
quaternion; ONNX has no SVD), equal to it to float precision. The library is
`hybrik_jax.export`.
"""

from typing import Sequence

from absl import flags

from hybrik_jax import cli_flags
from hybrik_jax.export import exporter
from hybrik_jax.export import formats
from hybrik_jax.export import serving


def parse(argv: Sequence[str] | None = None) -> flags.FlagValues:
  """The flags of `python -m hybrik_jax.export_model` (see --help)."""
  fs = cli_flags.FlagSet('python -m hybrik_jax.export_model', __doc__,
                         aliases={'dynamic-batch': 'dynamic_batch',
                                  'flip-test': 'flip_test',
                                  'with-mesh': 'with_mesh',
                                  'joints-only': 'joints_only'})
  fs.checkpoint(required=True)
  fs.out('artefact directory', required=True)
  fs.enum('format', None, formats.FORMATS, 'artefact format')
  fs.require('format')
  fs.integer('batch', 1, 'fixed batch size', lower_bound=1)
  fs.boolean('dynamic_batch', False, 'a symbolic batch size (any B at run time)')
  fs.flip_test()
  fs.boolean('with_mesh', True, 'output pred_vertices (B, 6890, 3)')
  fs.boolean('joints_only', False, 'drop pred_vertices (same as --nowith_mesh)')
  fs.enum('image_dtype', 'uint8', serving.IMAGE_DTYPES,
          'uint8 RGB crops (normalised inside) or float32 normalised crops')
  fs.smpl()
  fs.h36m_regressor()
  fs.overwrite('replace OUT if it exists and is not empty')
  return fs.parse(argv)


def main(argv: Sequence[str] | None = None) -> int:
  args = parse(argv)
  options = serving.ServingOptions(
      batch=None if args.dynamic_batch else args.batch, flip_test=args.flip_test,
      with_mesh=args.with_mesh and not args.joints_only, image_dtype=args.image_dtype)
  info = exporter.export_checkpoint(
      args.checkpoint, args.out, args.format, options, smpl_path=args.smpl,
      h36m_regressor=args.h36m_regressor, overwrite=args.overwrite)
  outputs = ', '.join(o['name'] for o in info['outputs'])
  print(f"{args.format} artefact written to {args.out} ({info['artefact']}; "
        f'outputs {outputs})')
  return 0


if __name__ == '__main__':
  from hybrik_jax import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
