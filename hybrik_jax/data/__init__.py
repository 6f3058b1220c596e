"""Data: the example spec on disk, the mesh renderer, the synthetic dataset.

  features   the TFDS FeaturesDict every builder shares, crop/K/JPEG helpers
  render     a numpy z-buffered triangle rasterizer (Lambert + ambient shading)
  synthetic  random SMPL bodies rendered with exact labels (synthetic_humans)
  augment    HybrIK's training augmentations and affine crops (input pipeline)
  targets    uvd/xyz/theta/twist training targets from examples (input pipeline)
  build      build / check the TFDS datasets (python -m hybrik_jax.prepare_data)
"""
