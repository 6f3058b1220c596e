"""Human3.6M (protocol 2, HybrIK's SMPL annotations) TFDS builder."""

from tfds_builders.h36m.h36m_dataset_builder import Builder
