"""The flags of every command-line program: absl flags, one set of names.

Each program builds a fresh `FlagSet` per call of its `main(argv)` (so `main`
can run many times in one process, and several programs can be imported
together: nothing is defined on absl's global `flags.FLAGS`), defines its
flags with the shared definers below, and parses:

    def parse(argv: Sequence[str] | None = None) -> flags.FlagValues:
      fs = cli_flags.FlagSet('python -m hybrik_jax.evaluate', __doc__)
      fs.checkpoint(required=True)
      fs.integer('num_examples', None, 'only the first N examples')
      return fs.parse(argv)

The shared flags (the same name, meaning and help text in every program):
--checkpoint, --workdir, --out, --overwrite, --smpl, --h36m_regressor,
--dataset, --data_dir, --batch_size, --flip_test. Names use underscores, as
absl's. `parse` turns every problem (an unknown flag, a missing or bad value,
a stray argument) into ONE line (`cli.UserError`: `cli.run` prints
`error: ...` and exits 2); `--help` prints the program's flags and exits 0.
Old spellings a documented command used (e.g. `--torch-checkpoint`) are
accepted as deprecated aliases with a one-line note.
"""

from __future__ import annotations

import difflib
import re
import sys
import textwrap
from typing import Iterable, Mapping, Sequence

from absl import flags

from hybrik_jax import cli

HELP_FLAGS = ('-h', '-help', '--help', '--helpshort', '-helpfull', '--helpfull')

# Help texts of the shared flags (a definer's `help` argument adds to them).
CHECKPOINT_HELP = 'exported model directory, or training workdir (its latest checkpoint)'
SMPL_HELP = 'SMPL neutral model file (SMPL_NEUTRAL.pkl, basicModel_neutral_lbs_10_207_0_v1.0.0.pkl)'
KID_TEMPLATE_HELP = ("an SMPL-X model's smplx_kid_template.npy, for HybrIK-X models "
                     '(default: the one beside --smpl)')
H36M_REGRESSOR_HELP = "HybrIK's J_regressor_h36m.npy (the 17 Human3.6M joints from the mesh)"
DATA_DIR_HELP = 'TFDS data_dir (default: TFDS default, ~/tensorflow_datasets)'
FLIP_TEST_HELP = ('flip test: average the predictions on the image and its mirror '
                  '(--noflip_test: off)')


class FlagSet:
  """The flags of one run of one command-line program.

  Attributes:
    prog: the command, e.g. 'python -m hybrik_jax.demo' (help and messages).
    flag_values: a fresh absl `flags.FlagValues` holding this program's flags;
      pass it as `flag_values=` to define other kinds of flag on it
      (e.g. ml_collections' config_flags).
  """

  def __init__(self, prog: str, doc: str | None = None, *,
               aliases: Mapping[str, str] | None = None,
               absl_flags: bool = False, epilog: str = ''):
    """A program's flag set.

    Args:
      prog: the command, e.g. 'python -m hybrik_jax.demo'.
      doc: the program's module docstring: --help prints its title and its
        usage block (the paragraphs up to the first indented command line).
      aliases: deprecated spelling -> flag name (no dashes), e.g.
        {'torch-checkpoint': 'torch_checkpoint'}: accepted with a one-line
        note on stderr.
      absl_flags: also accept the flags absl and the libraries define on
        absl's global FLAGS (--verbosity, --pdb, ...; listed by --helpfull),
        and mark those parsed (for a program under `absl.app.run`).
      epilog: printed after the flags by --help.
    """
    self.prog = prog
    self.flag_values = flags.FlagValues()
    self.flag_values.set_gnu_getopt(True)  # flags after a stray argument too
    self._doc = doc or ''
    self._aliases = dict(aliases or {})
    self._absl_flags = absl_flags
    self._epilog = epilog
    self._required: list[str] = []
    self._one_of: list[tuple[str, ...]] = []

  # -- Generic definers (absl's, on this set's FlagValues). --------------------

  def string(self, name: str, default: str | None, help: str, *,  # pylint: disable=redefined-builtin
             required: bool = False) -> None:
    flags.DEFINE_string(name, default, help, flag_values=self.flag_values)
    self._mark(name, required)

  def integer(self, name: str, default: int | None, help: str, *,  # pylint: disable=redefined-builtin
              lower_bound: int | None = None, required: bool = False) -> None:
    flags.DEFINE_integer(name, default, help, lower_bound=lower_bound,
                         flag_values=self.flag_values)
    self._mark(name, required)

  def number(self, name: str, default: float | None, help: str, *,  # pylint: disable=redefined-builtin
            lower_bound: float | None = None) -> None:
    flags.DEFINE_float(name, default, help, lower_bound=lower_bound,
                       flag_values=self.flag_values)

  def boolean(self, name: str, default: bool, help: str) -> None:  # pylint: disable=redefined-builtin
    flags.DEFINE_bool(name, default, help, flag_values=self.flag_values)

  def enum(self, name: str, default: str, values: Iterable[str], help: str) -> None:  # pylint: disable=redefined-builtin
    flags.DEFINE_enum(name, default, list(values), help, flag_values=self.flag_values)

  def string_list(self, name: str, default: Sequence[str] | None, help: str) -> None:  # pylint: disable=redefined-builtin
    flags.DEFINE_list(name, default, help, flag_values=self.flag_values)

  def require(self, *names: str) -> None:
    """Each of `names` must be given (checked by `parse`, one line)."""
    self._required.extend(names)

  def one_of(self, *names: str) -> None:
    """Exactly one of `names` must be given (checked by `parse`)."""
    self._one_of.append(names)

  def _mark(self, name: str, required: bool) -> None:
    if required:
      self._required.append(name)

  # -- The shared flags. -------------------------------------------------------

  def checkpoint(self, help: str = CHECKPOINT_HELP, *, required: bool = False) -> None:  # pylint: disable=redefined-builtin
    """--checkpoint: the model a program reads."""
    self.string('checkpoint', None, help, required=required)

  def workdir(self, help: str, *, required: bool = True) -> None:  # pylint: disable=redefined-builtin
    """--workdir: a training run's folder (checkpoints, logs)."""
    self.string('workdir', None, help, required=required)

  def out(self, help: str, *, default: str | None = None,  # pylint: disable=redefined-builtin
          required: bool = False) -> None:
    """--out: what a program writes (a file or a folder: `help` says which)."""
    self.string('out', default, help, required=required)

  def overwrite(self, help: str) -> None:  # pylint: disable=redefined-builtin
    """--overwrite: replace what --out (or the dataset) already holds."""
    self.boolean('overwrite', False, help)

  def smpl(self, help: str = SMPL_HELP) -> None:  # pylint: disable=redefined-builtin
    """--smpl: the SMPL model file."""
    self.string('smpl', None, help)

  def kid_template(self, help: str = KID_TEMPLATE_HELP) -> None:  # pylint: disable=redefined-builtin
    """--kid_template: an SMPL-X model's kid template (HybrIK-X)."""
    self.string('kid_template', None, help)

  def h36m_regressor(self, help: str = H36M_REGRESSOR_HELP) -> None:  # pylint: disable=redefined-builtin
    """--h36m_regressor: the mesh -> 17 H36M joints regressor."""
    self.string('h36m_regressor', None, help)

  def dataset(self, help: str, *, default: str | None = None) -> None:  # pylint: disable=redefined-builtin
    """--dataset: a TFDS dataset name (name[/config])."""
    self.string('dataset', default, help)

  def dataset_list(self, help: str, *, default: Sequence[str] | None = None) -> None:  # pylint: disable=redefined-builtin
    """--dataset as a comma-separated list (programs that take several)."""
    self.string_list('dataset', default, help)

  def data_dir(self, help: str = DATA_DIR_HELP) -> None:  # pylint: disable=redefined-builtin
    """--data_dir: the TFDS data_dir."""
    self.string('data_dir', None, help)

  def batch_size(self, default: int, help: str) -> None:  # pylint: disable=redefined-builtin
    """--batch_size: examples (or people) per network call, >= 1."""
    self.integer('batch_size', default, help, lower_bound=1)

  def flip_test(self, help: str = FLIP_TEST_HELP) -> None:  # pylint: disable=redefined-builtin
    """--[no]flip_test, on by default."""
    self.boolean('flip_test', True, help)

  # -- Parsing. ----------------------------------------------------------------

  def parse(self, argv: Sequence[str] | None = None) -> flags.FlagValues:
    """Parses `argv` (without the program name; default sys.argv[1:]).

    Returns:
      The FlagValues: `fv.checkpoint`, `fv['checkpoint'].present`, ...
    Raises:
      cli.UserError: one line naming the flag (a bad flag or value, a missing
        flag, a stray argument).
      SystemExit(0): --help (the flags were printed on stdout).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    own = list(self.flag_values)
    if self._absl_flags:
      for name in list(flags.FLAGS):
        flag = flags.FLAGS[name]
        if name == flag.name and name not in self.flag_values:
          self.flag_values[name] = flag
    flag_args = argv[:argv.index('--')] if '--' in argv else argv
    wants_help = [a for a in flag_args if a in HELP_FLAGS]
    if wants_help:
      full = any('helpfull' in a for a in wants_help)
      print(self.help(own if not full else list(self.flag_values)))
      raise SystemExit(0)
    argv = self._resolve_aliases(argv)
    try:
      rest = self.flag_values([self.prog] + argv)
    except flags.UnrecognizedFlagError as e:
      raise self._error(self._unknown(e.flagname, own)) from None
    except flags.Error as e:
      raise self._error(_absl_message(str(e))) from None
    if self._absl_flags:
      flags.FLAGS.mark_as_parsed()
    if len(rest) > 1:
      raise self._error(f'unexpected argument {rest[1]!r}: every input is a '
                        f'--flag (see {self.prog} --help)')
    missing = [n for n in self._required if self.flag_values[n].value is None]
    if missing:
      raise self._error('missing ' + ' and '.join(
          f'--{n} ({_first_clause(self.flag_values[n].help)})' for n in missing))
    for names in self._one_of:
      given = [n for n in names if self.flag_values[n].value is not None]
      if len(given) != 1:
        choices = ' or '.join('--' + n for n in names)
        raise self._error(f'give one of {choices}' if not given else
                          f'give only one of {choices}, not both')
    return self.flag_values

  def help(self, names: Sequence[str] | None = None) -> str:
    """The --help text: the program's title and usage, then its flags."""
    names = list(self.flag_values) if names is None else names
    lines = [_usage(self._doc, self.prog), '', 'flags:']
    for name in names:
      flag = self.flag_values[name]
      if name != flag.name:  # a short name
        continue
      head = f'  --[no]{name}' if flag.boolean else f'  --{name}'
      text = flag.help or ''
      if name in self._required:
        text += ' (required)'
      elif flag.default not in (None, '', []):
        text += f' (default: {_format_default(flag.default)})'
      lines.append(textwrap.fill(f'{head}: {text}', width=80,
                                 subsequent_indent='      ',
                                 break_on_hyphens=False))
    for alias, name in self._aliases.items():
      lines.append(f'  --{alias}: deprecated spelling of --{name}')
    if self._epilog:
      lines += ['', self._epilog]
    return '\n'.join(lines)

  # -- Helpers. ----------------------------------------------------------------

  def _resolve_aliases(self, argv: list[str]) -> list[str]:
    """Rewrites the deprecated spellings, with a one-line note for each."""
    out = []
    for i, arg in enumerate(argv):
      if arg == '--':
        return out + argv[i:]
      m = re.fullmatch(r'--?([^=]+)(=.*)?', arg, re.DOTALL)
      if m and m.group(1) in self._aliases:
        new = self._aliases[m.group(1)]
        print(f'warning: --{m.group(1)} is deprecated: use --{new}',
              file=sys.stderr, flush=True)
        arg = f'--{new}{m.group(2) or ""}'
      out.append(arg)
    return out

  def _unknown(self, name: str, own: Sequence[str]) -> str:
    close = difflib.get_close_matches(name.replace('-', '_'), own, n=1)
    if not close and name.startswith('no'):
      close = difflib.get_close_matches(name[2:], own, n=1)
    guess = f'; did you mean --{close[0]}?' if close else ''
    return f'unknown flag --{name}{guess} ({self.prog} --help lists the flags)'

  def _error(self, message: str) -> cli.UserError:
    return cli.UserError(cli.one_line(message))


def _absl_message(message: str) -> str:
  """absl's error text, one line: 'flag --x=v: why' -> '--x=v: why'."""
  message = cli.one_line(message)
  message = re.sub(r'^flags? ', '', message)
  m = re.fullmatch(r'Missing value for flag (--\S+)', message)
  if m:
    return f'{m.group(1)} needs a value'
  m = re.fullmatch(r"--(\w+)=(.*): \('Non-boolean argument to boolean flag', .*\)",
                   message)
  if m:
    return (f'--{m.group(1)}={m.group(2)}: not true or false (or give '
            f'--{m.group(1)} / --no{m.group(1)})')
  return message


def _format_default(value) -> str:
  if isinstance(value, bool):
    return 'true' if value else 'false'
  if isinstance(value, (list, tuple)):
    return ','.join(map(str, value))
  return str(value)


def _first_clause(text: str) -> str:
  return text.split('(')[0].strip().rstrip(',;:.') or text


def _usage(doc: str, prog: str) -> str:
  """The docstring's title and usage block (up to its first command line)."""
  paragraphs = [p for p in (doc or '').strip().split('\n\n') if p.strip()]
  taken = []
  for p in paragraphs:
    taken.append(textwrap.dedent(p).rstrip() if taken else p.strip())
    if p.startswith(' ') and prog in p:
      break
  else:
    taken = taken[:1]
  return '\n\n'.join(taken) if taken else prog

