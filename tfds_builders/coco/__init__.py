"""MSCOCO 2017 person keypoints TFDS builder."""

from tfds_builders.coco.coco_dataset_builder import Builder
