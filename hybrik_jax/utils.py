"""Small shared helpers: trace-time shape checks."""

from typing import Sequence

import numpy as np


def check_shape(name: str, x, expected: Sequence[int | None]) -> None:
  """Raises ValueError if `x` does not have shape `expected`.

  `None` in `expected` matches any size. Works on concrete arrays and on tracers
  (shapes are static), so it runs once at trace time under jit.

  Args:
    name: the argument's name, used in the message.
    x: an array (or anything with `.shape`).
    expected: the expected shape, e.g. `(None, 24, 3)` for (B, 24, 3).
  """
  shape = tuple(np.shape(x))
  ok = len(shape) == len(expected) and all(
      e is None or e == s for e, s in zip(expected, shape))
  if not ok:
    want = '(' + ', '.join('B' if e is None else str(e) for e in expected) + ')'
    raise ValueError(f'{name} must have shape {want}, got {shape}')
