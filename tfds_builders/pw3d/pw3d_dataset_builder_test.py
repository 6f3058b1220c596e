"""DatasetBuilderTestCase for pw3d on its dummy_data (HybrIK's 3DPW_*_new.json format)."""

import tensorflow_datasets as tfds

from tfds_builders.pw3d import pw3d_dataset_builder


class Pw3dTest(tfds.testing.DatasetBuilderTestCase):
  """Builds train / validation / test from dummy_data/pw3d and reads them back."""

  DATASET_CLASS = pw3d_dataset_builder.Builder
  # One example per person: train 2 frames x 2 people, validation 1 x 2, test 2 x 1.
  SPLITS = {'train': 4, 'validation': 2, 'test': 2}
  SKIP_CHECKSUMS = True

  def _make_builder(self, config=None):
    # TFDS's test case reads back with as_dataset (tf.data), which needs
    # TFRecord; the builders' own default is ArrayRecord (tests/test_tfds_build.py).
    return self.dataset_class(data_dir=self.tmp_dir, config=config,
                              version=self.VERSION, file_format='tfrecord')


if __name__ == '__main__':
  tfds.testing.test_main()
