"""MSCOCO 2017 person keypoints TFDS builder."""

from tfds_builders.coco_keypoints.coco_keypoints_dataset_builder import Builder
