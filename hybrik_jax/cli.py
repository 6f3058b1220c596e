"""One way for every command-line tool to fail: one line, nonzero exit.

Library code raises plain exceptions (`errors.InputError` and its
subclasses: a missing or corrupt file, a bad value, a busy workdir); a
`UserError` is the command line's own (a bad flag). The `run` wrapper around
each CLI's `main` prints either as ONE line on stderr (`error: ...`) and
exits with status 2 (or the error's `exit_code`), never with a traceback;
Ctrl-C exits with status 130 and one line. Other exceptions (bugs) keep their
traceback.

    def main(argv) -> int: ...
    if __name__ == '__main__':
      cli.run(main)

Also the checks several CLIs share (writable output directories, ...).
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, NoReturn

from hybrik_jax import errors

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class UserError(errors.InputError):
  """A problem with the command line's input; its message is the one line shown.

  Attributes:
    exit_code: the process exit status `run` uses (default 2).
    prefix: printed before the message ('error: '; '' for a planned stop).
  """
  prefix = 'error: '

  def __init__(self, message: str, exit_code: int = EXIT_USER_ERROR):
    super().__init__(message)
    self.exit_code = exit_code


def one_line(message: Any) -> str:
  """`message` with its lines joined (a user error is one line)."""
  return ' '.join(str(message).split())


def fail(error: errors.InputError) -> NoReturn:
  """Prints `error` as one line on stderr and exits with its status.

  The status is the error's `exit_code` attribute if it has one, else 2; the
  line starts with its `prefix` attribute if it has one, else 'error: '.
  """
  prefix = getattr(error, 'prefix', 'error: ')
  print(f'{prefix}{one_line(error)}', file=sys.stderr, flush=True)
  sys.exit(getattr(error, 'exit_code', EXIT_USER_ERROR))


def run(main: Callable[..., int | None], *args, **kwargs) -> NoReturn:
  """Calls `main(*args, **kwargs)` and exits with its status.

  errors.InputError (UserError too) -> one line, its exit code (default 2);
  KeyboardInterrupt -> one line, 130.
  """
  try:
    status = main(*args, **kwargs)
  except errors.InputError as e:
    fail(e)
  except KeyboardInterrupt:
    print('interrupted', file=sys.stderr, flush=True)
    sys.exit(EXIT_INTERRUPTED)
  except BrokenPipeError:  # output piped into a reader that quit (| head)
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(0)
  sys.exit(status or 0)


def check_writable_dir(path: str | os.PathLike[str], what: str) -> None:
  """Raises UserError unless `path` is (or can be made as) a writable folder.

  Creates nothing: checks the nearest existing ancestor. Remote paths
  (gs://..., any 'scheme://') are not checked here.
  """
  if '://' in os.fspath(path):
    return
  path = os.path.abspath(os.fspath(path))
  if os.path.exists(path):
    if not os.path.isdir(path):
      raise UserError(f'{what} {path} is a file, not a folder: choose a folder.')
    if not os.access(path, os.W_OK | os.X_OK):
      raise UserError(f'{what} {path} is not writable: choose a folder you '
                      'can write to.')
    return
  parent = os.path.dirname(path)
  while parent and not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if parent and (not os.path.isdir(parent) or
                 not os.access(parent, os.W_OK | os.X_OK)):
    raise UserError(f'{what} {path} cannot be created ({parent} is not a '
                    'writable folder): choose another path.')
