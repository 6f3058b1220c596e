"""DatasetBuilderTestCase for h36m on its dummy_data (HybrIK's file formats)."""

import tensorflow_datasets as tfds

from tfds_builders.h36m import h36m_dataset_builder


class H36mTest(tfds.testing.DatasetBuilderTestCase):
  """Builds both splits from dummy_data/h36m and reads them back."""

  DATASET_CLASS = h36m_dataset_builder.Builder
  # train: 3 rows (S1, S5, S8); test: S9 + S11 rows, one S9 row on HybrIK's block list.
  SPLITS = {'train': 3, 'test': 2}
  SKIP_CHECKSUMS = True

  def _make_builder(self, config=None):
    # TFDS's test case reads back with as_dataset (tf.data), which needs
    # TFRecord; the builders' own default is ArrayRecord (tests/test_tfds_build.py).
    return self.dataset_class(data_dir=self.tmp_dir, config=config,
                              version=self.VERSION, file_format='tfrecord')


if __name__ == '__main__':
  tfds.testing.test_main()
