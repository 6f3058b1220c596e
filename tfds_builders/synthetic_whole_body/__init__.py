"""synthetic_whole_body dataset: rendered synthetic SMPL-X bodies (hands, face, kids)."""

from tfds_builders.synthetic_whole_body.synthetic_whole_body_dataset_builder import Builder
