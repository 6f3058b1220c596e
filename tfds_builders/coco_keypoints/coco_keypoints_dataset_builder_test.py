"""DatasetBuilderTestCase for coco on its dummy_data (COCO 2017 keypoint json format)."""

import tensorflow_datasets as tfds

from tfds_builders.coco_keypoints import coco_keypoints_dataset_builder


class CocoTest(tfds.testing.DatasetBuilderTestCase):
  """Builds train / validation from dummy_data/coco and reads them back."""

  DATASET_CLASS = coco_keypoints_dataset_builder.Builder
  # train: 5 people, of which one crowd and one without keypoints are left out;
  # validation: 3 people.
  SPLITS = {'train': 3, 'validation': 3}
  SKIP_CHECKSUMS = True

  def _make_builder(self, config=None):
    # TFDS's test case reads back with as_dataset (tf.data), which needs
    # TFRecord; the builders' own default is ArrayRecord (tests/test_tfds_build.py).
    return self.dataset_class(data_dir=self.tmp_dir, config=config,
                              version=self.VERSION, file_format='tfrecord')


if __name__ == '__main__':
  tfds.testing.test_main()
