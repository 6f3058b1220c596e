"""Stopping a run cleanly: SIGTERM / SIGINT, and the error a stop raises.

The first signal asks the training loop to finish its step, save and raise
`Stopped` (exit status 128 + signal at the command line); a second Ctrl-C
aborts at once. A run stopped for too many skipped steps raises `Stopped`
too (status 3).
"""

import os
import signal
import sys
import threading
import time

import jax
import numpy as np

from hybrik_jax import cli
from hybrik_jax import errors

# Exit status of a run stopped for too many skipped steps.
EXIT_DIVERGED = 3

# Test hook: when this variable names a path, the save that a signal asks for
# first creates PATH.held and waits until PATH exists. tests/test_preemption.py
# sends its second Ctrl-C in that window, so the abort provably interrupts the
# stop (on a busy machine the save could otherwise finish first).
STOP_SAVE_GATE_ENV = 'HYBRIK_JAX_TEST_STOP_SAVE_GATE'


class Stopped(errors.InputError):
  """The run stopped early after saving (signal, too many skipped steps).

  Attributes:
    exit_code: 128 + the signal's number, or EXIT_DIVERGED.
    prefix: '' for a planned stop (a signal), 'error: ' for a divergence.
  """

  def __init__(self, message: str, *, exit_code: int, prefix: str = ''):
    super().__init__(message)
    self.exit_code = exit_code
    self.prefix = prefix


def wait_at_stop_save_gate() -> None:
  """The STOP_SAVE_GATE_ENV test hook (nothing when the variable is unset)."""
  gate = os.environ.get(STOP_SAVE_GATE_ENV)
  if not gate:
    return
  with open(gate + '.held', 'w'):
    pass
  while not os.path.exists(gate):
    time.sleep(0.05)  # a signal handler runs here (the second Ctrl-C exits)


class StopSignals:
  """SIGTERM / SIGINT -> stop at the end of the current step.

  The first signal sets a flag (the loop then saves and raises `Stopped`); a
  second SIGINT (Ctrl-C) exits at once (status 130, no checkpoint). With
  several processes the flag is OR-ed over all of them (an all-gather every
  `sync_every` steps) so they all stop, and save, at the same step; the
  signal may reach only one host.
  """

  def __init__(self, sync_every: int = 1):
    self.signum: int | None = None
    self._sync_every = max(1, int(sync_every))
    self._old = {}

  def __enter__(self) -> 'StopSignals':
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._old[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    for sig, handler in self._old.items():
      signal.signal(sig, handler)
    self._old = {}

  def _handle(self, signum, frame) -> None:
    del frame
    if self.signum is not None:
      if signum == signal.SIGINT:
        print('Second Ctrl-C: aborting now, without saving.', file=sys.stderr,
              flush=True)
        os._exit(cli.EXIT_INTERRUPTED)  # pylint: disable=protected-access
      return
    self.signum = signum
    print(f'{signal.Signals(signum).name} received: finishing this step and '
          'saving a checkpoint (Ctrl-C again aborts at once).',
          file=sys.stderr, flush=True)

  def should_stop(self, step: int) -> bool:
    """Whether every process agrees to stop after `step`."""
    if jax.process_count() == 1:
      return self.signum is not None
    if step % self._sync_every:
      return False
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    flags_ = multihost_utils.process_allgather(
        np.int32(self.signum or 0))
    signums = [int(f) for f in np.ravel(flags_) if f]
    if signums and self.signum is None:
      self.signum = signums[0]
    return bool(signums)

  def stop_message(self, step: int, num_steps: int, directory) -> str:
    """The one line of a signal's stop, after the save of `step`."""
    return (f'Stopped by {signal.Signals(self.signum).name} at step {step} '
            f'of {num_steps}; checkpoint saved in {directory}/{step}. '
            'Run the same command again to resume.')
