"""synthetic_whole_body: rendered synthetic SMPL-X bodies with exact labels (no download)."""

import dataclasses
import functools
import os
from typing import Any

import tensorflow_datasets as tfds

from hybrik_jax.data import features
from hybrik_jax.data import synthetic_whole_body as whole_body
from tfds_builders import real_data_common as common
from tfds_builders import synthetic_common

# Indices per task (Beam element or pool task); the generator poses 8 bodies per jit call.
_CHUNK = 32


@dataclasses.dataclass
class SyntheticWholeBodyConfig(tfds.core.BuilderConfig):
  """Size of the images and of the splits.

  Attributes:
    image_size: side of the square rendered image (the stored crop), px.
    num_train, num_validation: examples per split.
    seed: base seed (example i of a split depends only on (seed, split, i)).
  """
  image_size: int = 256
  num_train: int = 2_000
  num_validation: int = 200
  seed: int = 0


class Builder(synthetic_common.SyntheticSplitsMixin, common.GenerationMixin,
              tfds.core.GeneratorBasedBuilder):
  """DatasetBuilder for synthetic_whole_body (data/synthetic_whole_body.py).

  Tasks are chunks of indices, rendered in-process (or in a pool / Beam's
  workers: common.GenerationMixin); example i depends only on (seed, split, i).
  """

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [
      SyntheticWholeBodyConfig(
          name='default', description='256x256 images (HybrIK-X input size), 2000 train, '
          '200 validation.', image_size=256, num_train=2_000, num_validation=200),
      SyntheticWholeBodyConfig(
          name='tiny', description='64x64 images, 8 train, 4 validation (tests).',
          image_size=64, num_train=8, num_validation=4),
  ]
  DEFAULT_CONFIG_NAME = 'default'

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=features.smplx_example_features(),
        supervised_keys=None,
        homepage='https://github.com/Jeff-sjtu/HybrIK',
        description=(
            'Synthetic SMPL-X bodies (the procedural synthetic SMPL-X body: hands with '
            'fingers, a face, a kid blend) in random body, finger and jaw poses, '
            'shapes, expressions, camera placements and backgrounds, rendered with a '
            'colour per body part (left and right alike); exact labels of '
            "HybrIK-X's 71 joints, 55 rotations, 54 twists, 10 betas, 10 expression "
            'values and the kid blend, in the whole-body example spec of '
            'hybrik_jax.data.features (SMPLX_SHAPES).'),
    )

  def _whole_body_config(self) -> whole_body.WholeBodyConfig:
    cfg = self.builder_config
    return whole_body.WholeBodyConfig(image_size=cfg.image_size, seed=cfg.seed)

  def _generate_examples(self, split: str, num_examples: int):
    """(index, example) iterator, or a beam.PTransform (common.GenerationMixin)."""
    tasks = synthetic_common.index_chunks(split, num_examples, self._whole_body_config(),
                                          _CHUNK)
    return self._generate(split, lambda skips: tasks, _process, stats=False)


@functools.lru_cache(maxsize=2)
def _generator(config: whole_body.WholeBodyConfig) -> whole_body.WholeBodyGenerator:
  """One generator (SMPL-X body + jit) per worker process and config."""
  os.environ.setdefault('JAX_PLATFORMS', 'cpu')
  return whole_body.WholeBodyGenerator(config)


def _process(task: dict[str, Any]) -> list[common.Outcome]:
  """Renders a chunk of indices (a task; runs in a worker)."""
  return synthetic_common.render_chunk(task, whole_body.WholeBodyConfig, _generator)
