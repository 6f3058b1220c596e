"""The library's exceptions: plain exceptions, each with one clear message.

Library code raises these and never prints or exits; the command-line programs
turn them into one line on stderr and an exit status at their edge
(`cli.run`). Each names the input at fault and what to do.

    InputError            a problem with what the user gave: a file, a value,
                          a dataset, a busy workdir (exit status 2 at the CLI)
"""


class InputError(ValueError):
  """A problem with the user's input; its message is the one line to show."""
