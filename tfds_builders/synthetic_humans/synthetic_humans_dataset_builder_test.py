"""DatasetBuilderTestCase for synthetic_humans (tiny config: 8 train, 4 validation)."""

import tensorflow_datasets as tfds

from tfds_builders.synthetic_humans import synthetic_humans_dataset_builder


class SyntheticHumansTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = synthetic_humans_dataset_builder.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = ['tiny']
  SPLITS = {'train': 8, 'validation': 4}
  SKIP_CHECKSUMS = True

  def _make_builder(self, config=None):
    # TFDS's test case reads back with as_dataset (tf.data), which needs
    # TFRecord; the builders' own default is ArrayRecord (tests/test_tfds_build.py).
    return self.dataset_class(data_dir=self.tmp_dir, config=config,
                              version=self.VERSION, file_format='tfrecord')


if __name__ == '__main__':
  tfds.testing.test_main()
