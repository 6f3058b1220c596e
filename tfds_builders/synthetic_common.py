"""What the synthetic builders (synthetic_humans, synthetic_whole_body) share.

Both render example i of a split from (seed, split, i) alone, so a split is a
list of tasks, each a chunk of indices with the generator's config (JSON-able:
it travels to pool and Beam workers), and a worker renders a chunk with one
generator per process (its body model and jit kept between tasks).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import tensorflow_datasets as tfds

from tfds_builders import real_data_common as common


def index_chunks(split: str, num_examples: int, config: Any, chunk: int) -> list[dict]:
  """The split's tasks: {'indices', 'split', 'config' (asdict of the dataclass)}
  for each run of `chunk` indices in range(num_examples)."""
  config = dataclasses.asdict(config)
  return [{'indices': list(range(start, min(start + chunk, num_examples))),
           'split': split, 'config': config}
          for start in range(0, num_examples, chunk)]


def render_chunk(task: dict[str, Any], config_cls: type,
                 generator: Callable[[Any], Any]) -> list[common.Outcome]:
  """Renders one task in a worker: `generator(config_cls(**task['config']))`
  (the builder's cached one) `.generate(indices, split, encode=True)`."""
  config = config_cls(**{k: tuple(v) if isinstance(v, list) else v
                         for k, v in task['config'].items()})
  return [common.Outcome(key=int(index), example=example)
          for index, example in generator(config).generate(
              task['indices'], task['split'], encode=True)]


class SyntheticSplitsMixin:
  """train and validation splits of `builder_config.num_train` /
  `num_validation` examples, nothing to download; the builder defines
  `_generate_examples(split, num_examples)`."""

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # Nothing to download.
    cfg = self.builder_config
    return {
        'train': self._generate_examples('train', cfg.num_train),
        'validation': self._generate_examples('validation', cfg.num_validation),
    }
