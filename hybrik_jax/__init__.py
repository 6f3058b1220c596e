"""hybrik_jax: HybrIK-Transformer (Oreshkin 2022) in JAX/Flax.

Modules, one concern each:
  constants   joint names, kinematic trees, flip pairs (facts, no code)
  geometry    rotation conversions (axis-angle, quaternion, matrix) in jnp
  smpl        the SMPL body model: loader, synthetic body, forward, hybrik
  ik          HybrIK's twist-and-swing analytical inverse kinematics
  models/     ResNet backbone, Transformer and deconvolution heads, full model
  losses, metrics, input_pipeline, train, evaluate, demo, convert
"""

__version__ = "0.1.0"
