"""hybrik_jax: HybrIK-Transformer (Oreshkin, arXiv:2302.04774) in JAX/Flax.

Packages by layer, each importing only those below it:
  body/        SMPL in jnp, HybrIK's IK, rotations, the file loader, the synthetic body
  models/, data/   networks and the one prediction path; examples, input pipeline, rendering
  evaluation/  metrics and each benchmark's protocol
  training/    train step, losses, config fields, checkpoints
  demos/       the video demo, video files, smoothing, the results file
and the command-line programs at the top (`python -m hybrik_jax.train`, evaluate,
demo, convert, prepare_data, average_checkpoints). The module map, the layers and
the contracts between modules: docs/ARCHITECTURE.md.
"""

__version__ = "0.1.0"
