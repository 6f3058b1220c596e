"""3DPW (HybrIK's parsed annotations) TFDS builder."""

from tfds_builders.pw3d.pw3d_dataset_builder import Builder
