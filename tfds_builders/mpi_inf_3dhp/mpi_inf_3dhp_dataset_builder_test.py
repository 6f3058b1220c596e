"""DatasetBuilderTestCase for mpi_inf_3dhp on its dummy_data (HybrIK's json format)."""

import tensorflow_datasets as tfds

from tfds_builders.mpi_inf_3dhp import mpi_inf_3dhp_dataset_builder


class MpiInf3dhpTest(tfds.testing.DatasetBuilderTestCase):
  """Builds train (28 joints) and test (17 joints) from dummy_data/3dhp."""

  DATASET_CLASS = mpi_inf_3dhp_dataset_builder.Builder
  SPLITS = {'train': 3, 'test': 2}
  SKIP_CHECKSUMS = True

  def _make_builder(self, config=None):
    # TFDS's test case reads back with as_dataset (tf.data), which needs
    # TFRecord; the builders' own default is ArrayRecord (tests/test_tfds_build.py).
    return self.dataset_class(data_dir=self.tmp_dir, config=config,
                              version=self.VERSION, file_format='tfrecord')


if __name__ == '__main__':
  tfds.testing.test_main()
