"""Deprecated alias of `hybrik_jax.training.train_config` (configs written
before the layer packages import it from here); it will be removed."""

import warnings

from hybrik_jax.training.train_config import *  # pylint: disable=wildcard-import,unused-wildcard-import
from hybrik_jax.training.train_config import base_config, check_config  # pylint: disable=unused-import

warnings.warn('hybrik_jax.train_config moved to hybrik_jax.training.train_config',
              DeprecationWarning, stacklevel=2)
