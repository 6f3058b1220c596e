"""synthetic_humans dataset: rendered synthetic SMPL bodies with exact labels."""

from tfds_builders.synthetic_humans.synthetic_humans_dataset_builder import Builder
