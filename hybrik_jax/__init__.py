"""hybrik_jax: HybrIK-Transformer (Oreshkin, arXiv:2302.04774) in JAX/Flax.

Packages by layer, each importing only those below it:
  utils, errors, cli, cli_flags   shape checks, the library's exceptions, the
                                  CLIs' exit path and flag library (absl)
  body/        SMPL in jnp, HybrIK's IK and its convention (ik.IKConvention),
               rotations, kinematics, the file loader, the synthetic body
  models/, data/   networks, decode and the one prediction path; examples, boxes,
                   input pipeline, augmentation, rendering, synthetic data
  checkpoints/ the exported model, training checkpoints, loading, averaging, integrity
  evaluation/  metrics and each benchmark's protocol
  training/    train step, losses, config fields, workdir lock, metric writer
  demos/       the demo core (crop, predict, place, draw), the image and video
               demos, the person detector, video files, smoothing, the results file
and the command-line programs at the top (`python -m hybrik_jax.train`, evaluate,
demo, demo_inputs, convert, prepare_data, average_checkpoints). The module map,
the layers and the contracts between modules: docs/ARCHITECTURE.md.
"""

__version__ = "0.1.0"
