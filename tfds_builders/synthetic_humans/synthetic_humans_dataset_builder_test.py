"""DatasetBuilderTestCase for synthetic_humans (tiny config: 8 train, 4 validation)."""

import tensorflow_datasets as tfds

from tfds_builders.synthetic_humans import synthetic_humans_dataset_builder


class SyntheticHumansTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = synthetic_humans_dataset_builder.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = ['tiny']
  SPLITS = {'train': 8, 'validation': 4}
  SKIP_CHECKSUMS = True


if __name__ == '__main__':
  tfds.testing.test_main()
