"""Loading the released code's numeric fixtures (tests/data/released*/).

Every parity test reads its .npz through `load_npz`, so a missing file, a missing
key or a key of another shape fails the same way, with a message naming the file
and the README that says how it was made (never a skip). `regenerate_weights`
rebuilds a fixture's random state dict from its seed and checks it against the
stored per-tensor sums.
"""

import os
from typing import Callable, Iterable, Mapping, Union

import numpy as np

Expected = Union[Mapping[str, tuple], Iterable[str]]


def load_npz(path, expected: Expected = (), readme: str = '') -> dict[str, np.ndarray]:
  """The arrays of `path`; AssertionError naming what is missing or misshapen.

  expected: the keys it must hold, or key -> shape.
  """
  where = f' ({readme} says how it was made)' if readme else ''
  assert os.path.isfile(path), (
      f'fixture {path} is missing: it is part of the repository{where}')
  with np.load(path, allow_pickle=False) as data:
    arrays = {k: data[k] for k in data.files}
  shapes = dict(expected) if isinstance(expected, Mapping) else {}
  missing = sorted(set(shapes or expected) - set(arrays))
  assert not missing, f'{path} lacks the keys {missing}'
  wrong = {k: arrays[k].shape for k, s in shapes.items() if arrays[k].shape != tuple(s)}
  assert not wrong, (f'{path}: keys with unexpected shapes {wrong}; expected '
                     f'{ {k: tuple(shapes[k]) for k in wrong} }')
  return arrays


def expect_shape(data: Mapping[str, np.ndarray], key: str, shape) -> np.ndarray:
  """data[key], asserting its shape."""
  assert tuple(data[key].shape) == tuple(shape), (
      f'fixture array {key!r} has shape {data[key].shape}, expected {tuple(shape)}')
  return data[key]


def regenerate_weights(fx: Mapping[str, np.ndarray],
                       recipe: Callable[[str, list, np.random.Generator], np.ndarray],
                       rtol: float = 1e-9) -> dict[str, np.ndarray]:
  """The state dict a fixture was made with: `recipe(key, shape, rng)` in the
  stored key order from fx['weight_seed'], each tensor's sum of |x| checked
  against fx['weight_abs_sums'] (the failure names the key)."""
  rng = np.random.default_rng(int(fx['weight_seed']))
  state_dict = {}
  for key, shape, total in zip(fx['keys'], fx['shapes'], fx['weight_abs_sums']):
    value = recipe(str(key), [int(s) for s in str(shape).split(',') if s], rng)
    np.testing.assert_allclose(np.abs(value).astype(np.float64).sum(), total, rtol=rtol,
                               err_msg=f'regenerated {key} differs from the fixture')
    state_dict[str(key)] = value
  return state_dict


# How many times its float32 spread (`float32_spread`) a parity test allows an output
# to differ beside its fixed tolerance (docs/TESTING.md, "Tolerances against the
# released code").
SPREAD_FACTOR = 4


def float32_spread(fn: Callable, *args, n: int = 8, seed: int = 0):
  """How far float32 rounding can move `fn(*args)`: per output element, the
  largest change over `n` calls with every float input element scaled by
  (1 + N(0, 1) ulp) (None and integer inputs kept).

  A parity test allows a multiple of this beside its fixed tolerance: where a
  random input is ill-conditioned (IK on a near-degenerate random skeleton
  amplifies one ulp of its input to 1e-4 of a rotation), two float32
  implementations differ by about this much, whichever CPU rounds them.
  fn: a jitted function of arrays (called n + 1 times with the same shapes).
  """
  rng = np.random.default_rng(seed)
  ulp = float(np.finfo(np.float32).eps)

  def perturb(a):
    if a is None or not np.issubdtype(np.asarray(a).dtype, np.floating):
      return a
    a = np.asarray(a, np.float32)
    return (a * (1.0 + ulp * rng.normal(size=a.shape))).astype(np.float32)

  import jax  # pylint: disable=g-import-not-at-top
  base = jax.tree.map(np.asarray, fn(*args))
  spread = jax.tree.map(np.zeros_like, base)
  for _ in range(n):
    args_n = [jax.tree.map(perturb, a) if a is not None else None for a in args]
    out = jax.tree.map(np.asarray, fn(*args_n))
    spread = jax.tree.map(lambda s, o, b: np.maximum(s, np.abs(o - b)), spread, out, base)
  return spread
