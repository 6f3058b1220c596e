"""Data on disk: the example spec (features), the mesh renderer, the synthetic dataset.

  features   the TFDS FeaturesDict every builder shares, crop/K/JPEG helpers
  render     a numpy z-buffered triangle rasterizer (Lambert + ambient shading)
  synthetic  random SMPL bodies rendered with exact labels (synthetic_humans)
"""
