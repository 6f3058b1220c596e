"""Temporal smoothing of per-frame estimates: the One Euro filter.

Casiez, Roussel and Vogel, "1 Euro Filter: A Simple Speed-based Low-pass Filter
for Noisy Input in Interactive Systems", CHI 2012. A first-order low-pass
filter whose cutoff rises with the signal's speed: cutoff = min_cutoff + beta
x |speed| (Hz). Slow motion is smoothed hard (jitter goes), fast motion little
(no lag). min_cutoff (Hz) sets the smoothing at rest, beta (s/unit) how fast
the cutoff opens with speed; d_cutoff (Hz) filters the speed estimate.

`OneEuroFilter` smooths vectors (joints, translation, shape); `RotationOneEuro`
smooths rotations on the rotation group: each step moves the previous estimate
towards the new measurement along the geodesic (in the tangent space at the
previous estimate), by the same alpha, and measures speed as angular speed
(rad/s). No Euler angles, no sign ambiguity of quaternions, always a rotation.

Frames whose measurement is invalid are skipped (the state is kept, and the
next valid frame sees the real time gap).
"""

import numpy as np
from scipy.spatial import transform


def _alpha(cutoff: np.ndarray, dt: float) -> np.ndarray:
  """Smoothing factor of an exponential filter with this cutoff (Hz) and step (s)."""
  tau = 1.0 / (2.0 * np.pi * cutoff)
  return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
  """One Euro filter on arrays of a fixed shape; each element filtered alone.

  The speed that opens the cutoff is the norm over the last axis (e.g. a
  joint's 3D speed), so the three coordinates of a point share one cutoff.
  """

  def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0):
    if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
      raise ValueError(f'One Euro filter needs min_cutoff > 0, d_cutoff > 0, beta >= 0; got '
                       f'{min_cutoff}, {d_cutoff}, {beta}')
    self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
    self._x = None
    self._dx = None
    self._t = None

  def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
    """Filters the measurement x (any shape, fixed) taken at time t (s)."""
    x = np.asarray(x, np.float64)
    if self._x is None:
      self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t)
      return x.copy()
    dt = float(t) - self._t
    if dt <= 0:
      raise ValueError(f'times must increase, got {t} after {self._t}')
    dx = (x - self._x) / dt
    self._dx = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
    speed = np.linalg.norm(self._dx, axis=-1, keepdims=True) if x.ndim else np.abs(self._dx)
    a = _alpha(self.min_cutoff + self.beta * speed, dt)
    self._x = self._x + a * (x - self._x)
    self._t = float(t)
    return self._x.copy()


class RotationOneEuro:
  """One Euro filter on (..., 3, 3) rotation matrices, on the rotation group.

  x_hat = x_hat_prev * exp(alpha * log(x_hat_prev^T x)): the geodesic step from
  the previous estimate towards the measurement; speed = |log(...)| / dt rad/s.
  """

  def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0):
    OneEuroFilter(min_cutoff, beta, d_cutoff)  # validates the parameters
    self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
    self._r = None
    self._w = None  # filtered angular velocity (..., 3), rad/s
    self._t = None

  def __call__(self, rotmats: np.ndarray, t: float) -> np.ndarray:
    """Filters (..., 3, 3) rotations measured at time t (s)."""
    r = np.asarray(rotmats, np.float64)
    shape = r.shape
    rot = transform.Rotation.from_matrix(r.reshape(-1, 3, 3))
    if self._r is None:
      self._r, self._w, self._t = rot, np.zeros((len(rot), 3)), float(t)
      return rot.as_matrix().reshape(shape)
    dt = float(t) - self._t
    if dt <= 0:
      raise ValueError(f'times must increase, got {t} after {self._t}')
    delta = (self._r.inv() * rot).as_rotvec()  # tangent at the previous estimate
    self._w = self._w + _alpha(self.d_cutoff, dt) * (delta / dt - self._w)
    speed = np.linalg.norm(self._w, axis=-1, keepdims=True)
    a = _alpha(self.min_cutoff + self.beta * speed, dt)
    self._r = self._r * transform.Rotation.from_rotvec(a * delta)
    self._t = float(t)
    return self._r.as_matrix().reshape(shape)
