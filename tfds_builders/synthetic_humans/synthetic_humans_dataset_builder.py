"""synthetic_humans: rendered synthetic SMPL bodies with exact labels (no download)."""

import dataclasses
import functools
import os
from typing import Any

import tensorflow_datasets as tfds

from hybrik_jax.data import features
from hybrik_jax.data import synthetic
from tfds_builders import real_data_common as common
from tfds_builders import synthetic_common

# Indices per task (Beam element); SyntheticGenerator poses 16 bodies per jit call.
_CHUNK = 64


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


class Builder(synthetic_common.SyntheticSplitsMixin, common.GenerationMixin,
              tfds.core.GeneratorBasedBuilder):
  """DatasetBuilder for synthetic_humans.

  Plain builds run synthetic.generate_parallel (num_workers processes, default
  synthetic.default_num_workers); with Beam (common.GenerationMixin) each task
  is a chunk of indices rendered in the runner's workers. Example i depends only
  on (seed, split, i), so both give the same examples under the same keys.
  """

  VERSION = tfds.core.Version('2.0.0')
  RELEASE_NOTES = {
      '1.0.0': 'Initial release.',
      '2.0.0': 'Mirror-consistent colours (synthetic.body_colors): left and right '
               'parts alike, front and back apart, so that flip augmentation and '
               'the flip test see valid images. Same bodies, cameras and labels.',
  }
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

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=features.example_features(synthetic.NATIVE_JOINTS),
        supervised_keys=None,
        homepage='https://github.com/Jeff-sjtu/HybrIK',
        description=(
            'Synthetic SMPL bodies in random human poses, shapes, camera '
            'placements and backgrounds, rendered with a colour per body part '
            '(left and right alike, front and back apart); exact 29-joint, H36M-17, theta, beta and twist labels in '
            'the hybrik_jax common example spec. native_joints_* are the 29 '
            'HybrIK joints.'),
    )

  def _synthetic_config(self) -> synthetic.SyntheticConfig:
    cfg = self.builder_config
    return synthetic.SyntheticConfig(image_size=cfg.image_size, seed=cfg.seed)

  def _generate_examples(self, split: str, num_examples: int):
    """(index, example) iterator, or a beam.PTransform (common.GenerationMixin)."""
    tasks = synthetic_common.index_chunks(split, num_examples, self._synthetic_config(),
                                          _CHUNK)
    return self._generate(split, lambda skips: tasks, _process, stats=False,
                          plain=functools.partial(self._plain, split, num_examples))

  def _plain(self, split: str, num_examples: int, tasks: list[dict[str, Any]]):
    del tasks  # generate_parallel makes its own chunks.
    workers = self._num_workers
    if workers is None:
      workers = synthetic.default_num_workers(num_examples)
    for index, example in synthetic.generate_parallel(
        range(num_examples), self._synthetic_config(), split=split,
        num_workers=workers):
      yield int(index), example


@functools.lru_cache(maxsize=2)
def _generator(config: synthetic.SyntheticConfig) -> synthetic.SyntheticGenerator:
  """One generator (SMPL model + jit) per worker process and config."""
  os.environ.setdefault('JAX_PLATFORMS', 'cpu')
  return synthetic.SyntheticGenerator(config)


def _process(task: dict[str, Any]) -> list[common.Outcome]:
  """Renders a chunk of indices (a Beam task; runs in a worker)."""
  return synthetic_common.render_chunk(task, synthetic.SyntheticConfig, _generator)
