"""synthetic_humans: rendered synthetic SMPL bodies with exact labels (no download)."""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from hybrik_jax.data import features
from hybrik_jax.data import synthetic


@dataclasses.dataclass
class SyntheticHumansConfig(tfds.core.BuilderConfig):
  """Size of the images and of the splits.

  Attributes:
    image_size: side of the square rendered image (the stored crop), px.
    num_train, num_validation: examples per split.
    seed: base seed (example i of a split depends only on (seed, split, i)).
  """
  image_size: int = 256
  num_train: int = 10_000
  num_validation: int = 1_000
  seed: int = 0


class Builder(tfds.core.GeneratorBasedBuilder):
  """DatasetBuilder for synthetic_humans."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [
      SyntheticHumansConfig(
          name='default', description='256x256 images, 10k train, 1k validation.',
          image_size=256, num_train=10_000, num_validation=1_000),
      SyntheticHumansConfig(
          name='small', description='128x128 images, 4k train, 500 validation '
          '(the CPU training demo).',
          image_size=128, num_train=4_000, num_validation=500),
      SyntheticHumansConfig(
          name='tiny', description='64x64 images, 8 train, 4 validation (tests).',
          image_size=64, num_train=8, num_validation=4),
  ]
  DEFAULT_CONFIG_NAME = 'default'

  def __init__(self, *, num_workers: int | None = None, **kwargs):
    """Args: num_workers: generation processes (default: synthetic.default_num_workers)."""
    self._num_workers = num_workers
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=features.example_features(synthetic.NATIVE_JOINTS),
        supervised_keys=None,
        homepage='https://github.com/Jeff-sjtu/HybrIK',
        description=(
            'Synthetic SMPL bodies in random human poses, shapes, camera '
            'placements and backgrounds, rendered with one colour per body '
            'part; exact 29-joint, H36M-17, theta, beta and twist labels in '
            'the hybrik_jax common example spec. native_joints_* are the 29 '
            'HybrIK joints.'),
    )

  def _synthetic_config(self) -> synthetic.SyntheticConfig:
    cfg = self.builder_config
    return synthetic.SyntheticConfig(image_size=cfg.image_size, seed=cfg.seed)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # Nothing to download.
    cfg = self.builder_config
    return {
        'train': self._generate_examples('train', cfg.num_train),
        'validation': self._generate_examples('validation', cfg.num_validation),
    }

  def _generate_examples(self, split: str, num_examples: int):
    workers = self._num_workers
    if workers is None:
      workers = synthetic.default_num_workers(num_examples)
    for index, example in synthetic.generate_parallel(
        np.arange(num_examples), self._synthetic_config(), split=split,
        num_workers=workers):
      yield int(index), example
