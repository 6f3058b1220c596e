r"""Trains HybrIK-Transformer: `python -m hybrik_jax.train`.

    python -m hybrik_jax.train --config configs/paper.py --workdir /tmp/hybrik \
        [--config.batch_size=64 ...]

Starting again with the same workdir resumes from the latest checkpoint
(params, optimizer, step, rng, input iterator). The job itself is
`hybrik_jax.training.trainer.train_and_evaluate(config, workdir)`, importable
(tests, Colab) and re-exported here as `train.train_and_evaluate`.

Several hosts (one process per host; every process runs the same command):

    python -m hybrik_jax.train --config configs/paper.py --workdir DIR \
        --coordinator_address=HOST0:1234 --num_processes=N --process_id=I

On TPU pods and SLURM, `--distributed` alone lets JAX detect the cluster.
A process lost for --heartbeat_timeout_s (killed, preempted, unreachable)
stops the others with one line naming it and status 75 (EX_TEMPFAIL); run
the same command again on every host to resume.
"""

import os
import sys
import threading
import time
from typing import NoReturn, Sequence

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from hybrik_jax import cli
from hybrik_jax import cli_flags
from hybrik_jax import errors
from hybrik_jax.training import train_config
from hybrik_jax.training import trainer

# The library, under the names this module has always offered.
train_and_evaluate = trainer.train_and_evaluate
# The config: every field and its default (train_config.base_config).
base_config = train_config.base_config
check_config = train_config.check_config


# ---------------------------------------------------------------------------
# Command line.
# ---------------------------------------------------------------------------

_PROG = 'python -m hybrik_jax.train'
_FIELDS = 'hybrik_jax/training/train_config.py and configs/'


def parse(argv: Sequence[str] | None = None) -> flags.FlagValues:
  """The flags of `python -m hybrik_jax.train` (see --help).

  Also accepts absl's own flags (--verbosity, --pdb, ...: --helpfull).
  """
  argv = list(sys.argv[1:] if argv is None else argv)
  fs = cli_flags.FlagSet(
      _PROG, __doc__, absl_flags=True,
      epilog='  --config.FIELD=VALUE: overrides a field of the config, e.g. '
      '--config.batch_size=64')
  config_flags.DEFINE_config_file(
      'config', None, 'Training config file (configs/*.py).',
      flag_values=fs.flag_values, lock_config=True, sys_argv=[_PROG] + argv)
  fs.require('config')
  fs.workdir('Checkpoints and TensorBoard logs go here.')
  fs.boolean('distributed', False, 'Call jax.distributed.initialize() '
             '(auto-detected clusters: TPU, SLURM).')
  fs.string('coordinator_address', None, 'host:port of process 0, for '
            'several processes (implies --distributed).')
  fs.integer('num_processes', None, 'Number of processes (hosts).')
  fs.integer('process_id', None, "This process's index in [0, num_processes).")
  fs.integer('heartbeat_timeout_s', 100, 'Several processes: a process that '
             'has not been heard from for this long is lost, and the others '
             'stop with one line naming it (JAX heartbeat timeout).',
             lower_bound=1)
  try:
    args = fs.parse(argv)
    args.config.get  # pylint: disable=pointless-statement
  except cli.UserError as e:
    if '--config.' not in str(e):
      raise
    raise cli.UserError(f'{e}; see the fields in {_FIELDS}') from None
  except OSError as e:  # ml_collections: the config file did not load
    reason = str(e).strip().splitlines()[-1].strip()
    raise cli.UserError(f'--config: cannot load the config file ({reason})') from None
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    # ml_collections raises these for an unknown or mistyped --config.x=...
    overrides = ' '.join(_bad_overrides(argv, e))
    raise cli.UserError(
        f'bad config override in {overrides or "the flags"} '
        f'({type(e).__name__}: {cli.one_line(e)}): not a field of the config, '
        f'or a value of the wrong type. See {_FIELDS}.') from None
  return args


def _bad_overrides(argv: Sequence[str], error: BaseException) -> list[str]:
  """The --config.x=... flags the error names (by a field of their path),
  else every --config. flag."""
  overrides = [a for a in argv if a.startswith('--config.')]
  text = str(error)
  named = [a for a in overrides
           if any(f"'{part}'" in text or f'"{part}"' in text
                  for part in a[len('--config.'):].split('=')[0].split('.'))]
  return named or overrides


def main(argv: Sequence[str] | None = None) -> int:
  """`python -m hybrik_jax.train` with `argv` (its flags, no program name)."""
  return _main(parse(argv))


def _main(args: flags.FlagValues) -> int:
  if not args['verbosity'].present:
    # Keep the console to the progress bar and results (Orbax logs a lot at
    # INFO); --verbosity=0 brings the INFO logs back. TensorBoard gets all.
    logging.set_verbosity(logging.WARNING)
  if args.coordinator_address or args.distributed:
    _initialize_distributed(args)
    _PeerWatchdog(args).start()
  logging.info('JAX process %d of %d, local devices %s', jax.process_index(),
               jax.process_count(), jax.local_devices())
  try:
    train_and_evaluate(args.config, args.workdir)
  except errors.InputError as e:  # a Stopped run too: its line and status
    _exit_together(args, e)
    cli.fail(e)
  except KeyboardInterrupt:  # before the training loop's handlers are set
    print('Interrupted before training started; nothing was saved.',
          file=sys.stderr, flush=True)
    sys.exit(cli.EXIT_INTERRUPTED)
  except Exception as e:  # pylint: disable=broad-exception-caught
    if jax.process_count() > 1 and _is_lost_peer_error(e):
      _lost_peer_exit(args, e)
    raise
  _exit_together(args)
  return 0


# ---------------------------------------------------------------------------
# Several processes: a lost peer is one line and EXIT_LOST_PROCESS.
# ---------------------------------------------------------------------------

# Exit status when another process of a multi-process run was lost (killed,
# preempted, unreachable). Run the same command again on every host.
EXIT_LOST_PROCESS = 75  # sysexits' EX_TEMPFAIL: try again

# What a collective (gloo / the coordination service) says when a peer died.
_LOST_PEER_WORDS = ('gloo', 'connection reset', 'connection closed',
                    'connection refused', 'broken pipe', 'unavailable',
                    'heartbeat', 'socket closed', 'barrier')


def _is_lost_peer_error(error: BaseException) -> bool:
  text = str(error).lower()
  return any(w in text for w in _LOST_PEER_WORDS)


def _lost_peer_line(args, lost: str, reason: str) -> str:
  who = (f'process {lost}' if lost and ',' not in lost else
         f'processes {lost}' if lost else 'another process')
  return (f'error: lost {who} of this {jax.process_count()}-process run '
          f'({reason}); process {jax.process_index()} stops too. The '
          f'checkpoints up to the last committed one are in {args.workdir}: '
          'run the same command again on every host to resume from it.')


def _live_processes(timeout_s: float) -> tuple[set[int], bool]:
  """(processes the coordination service still sees, whether it answered),
  polled until one is missing or `timeout_s` has passed."""
  from jax._src import distributed as jax_distributed  # pylint: disable=g-import-not-at-top
  client = jax_distributed.global_state.client
  everyone = list(range(jax.process_count()))
  deadline = time.monotonic() + timeout_s
  live = set(everyone)
  while True:
    try:
      live = set(client.get_live_nodes(everyone))
    except Exception:  # pylint: disable=broad-exception-caught
      return live, False  # the coordinator (process 0) is gone
    if len(live) < len(everyone) or time.monotonic() > deadline:
      return live, True
    time.sleep(0.1)


# Held by the thread that ends the process (`_lost_peer_exit`), never released:
# the main thread (a failed collective) and the watchdog never both print.
_EXITING = threading.Lock()


def _lost_peer_exit(args, error: BaseException | None) -> NoReturn:
  """A collective failed, or the watchdog saw a process missing: names the
  lost process(es) once the coordination service has noticed (at most
  --heartbeat_timeout_s, plus a margin), prints one line and exits with
  EXIT_LOST_PROCESS (os._exit: the atexit shutdown would wait for the lost
  process)."""
  _EXITING.acquire()  # a second caller waits here until the first has exited
  live, answered = _live_processes(args.heartbeat_timeout_s + 5)
  lost = sorted(set(range(jax.process_count())) - live)
  if not answered:
    who, reason = '0', 'the coordinator stopped answering'
  elif lost:
    who = ', '.join(map(str, lost))
    reason = (f'no heartbeat for {args.heartbeat_timeout_s} s: killed, '
              'preempted or unreachable')
  else:
    who, reason = '', cli.one_line(str(error or 'a collective failed'))[:300]
  print(_lost_peer_line(args, who, reason), file=sys.stderr, flush=True)
  os._exit(EXIT_LOST_PROCESS)  # pylint: disable=protected-access


def _exit_together(args, error: errors.InputError | None = None) -> None:
  """Several processes: waits until all are done, then processes other than
  0 exit here (with `error`'s line and status, if any).

  With recoverability on, JAX's atexit shutdown no longer waits for the
  others: process 0 (which hosts the coordination service) leaving first
  would make the others abort in their own shutdown. So they leave without
  it, once everything is saved and every process has reached this point.
  """
  if jax.process_count() == 1:
    return
  from jax._src import distributed as jax_distributed  # pylint: disable=g-import-not-at-top
  try:
    jax_distributed.global_state.client.wait_at_barrier(
        'hybrik_jax_exit', timeout_in_ms=1000 * (args.heartbeat_timeout_s + 300))
  except Exception as e:  # pylint: disable=broad-exception-caught
    if _is_lost_peer_error(e) or 'deadline' in str(e).lower():
      _lost_peer_exit(args, e)
    raise
  _PeerWatchdog.disarm_all()  # the others now leave on their own
  if jax.process_index() == 0:
    return
  status = 0
  if error is not None:
    print(f'{getattr(error, "prefix", "error: ")}{cli.one_line(error)}',
          file=sys.stderr, flush=True)
    status = getattr(error, 'exit_code', cli.EXIT_USER_ERROR)
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(status)  # pylint: disable=protected-access


class _PeerWatchdog:
  """Several processes: a daemon thread that asks the coordination service
  every `poll_s` which processes are alive, and ends this one
  (`_lost_peer_exit`) once one is missing, wherever the main thread is
  waiting. A collective with a lost peer fails at once, but not every wait
  does: Orbax's checkpoint barriers wait out their deadlines (300 s; 1200 s
  for an async save), the likely wait of a process 0 seen still running 600 s
  after its peer was SIGKILLed. Disarmed once every process
  has reached the exit barrier (`_exit_together`), after which they leave one
  by one.
  """

  _armed: list['_PeerWatchdog'] = []

  def __init__(self, args, poll_s: float = 1.0):
    self._args = args
    self._poll_s = poll_s
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._watch, daemon=True,
                                    name='hybrik_jax peer watchdog')

  def start(self) -> '_PeerWatchdog':
    if jax.process_count() > 1:
      _PeerWatchdog._armed.append(self)
      self._thread.start()
    return self

  @classmethod
  def disarm_all(cls) -> None:
    for watchdog in cls._armed:
      watchdog._stop.set()  # pylint: disable=protected-access
    cls._armed.clear()

  def _watch(self) -> None:
    from jax._src import distributed as jax_distributed  # pylint: disable=g-import-not-at-top
    client = jax_distributed.global_state.client
    everyone = list(range(jax.process_count()))
    silent_since = None  # the service has not answered since then
    while not self._stop.wait(self._poll_s):
      try:
        if len(client.get_live_nodes(everyone)) == len(everyone):
          silent_since = None
          continue
      except Exception:  # pylint: disable=broad-exception-caught
        # The coordinator (process 0) is gone, or briefly unreachable.
        silent_since = silent_since or time.monotonic()
        if time.monotonic() - silent_since < self._args.heartbeat_timeout_s:
          continue
      # A process that just passed the exit barrier may already have left:
      # give this process's main thread a moment to disarm first.
      if self._stop.wait(self._poll_s):
        return
      _lost_peer_exit(self._args, None)


def _initialize_distributed(args) -> None:
  """jax.distributed.initialize, with a bounded wait for a lost process.

  By default JAX's coordination service aborts every process with a C++
  stack trace once one stops sending heartbeats; with recoverability on, the
  others go on to their next collective, which fails: `_main` then waits
  (at most --heartbeat_timeout_s) for the service to name the lost process
  and prints one line (`_lost_peer_exit`).
  """
  jax.config.update('jax_enable_recoverability', True)
  jax.distributed.initialize(
      coordinator_address=args.coordinator_address,
      num_processes=args.num_processes, process_id=args.process_id,
      heartbeat_timeout_seconds=args.heartbeat_timeout_s)


def _parse_or_fail(argv: Sequence[str]) -> flags.FlagValues:
  """absl.app's flags_parser: `parse`, a bad flag as one line (exit 2)."""
  try:
    return parse(argv[1:])
  except cli.UserError as e:
    cli.fail(e)


if __name__ == '__main__':
  app.run(_main, flags_parser=_parse_or_fail)
