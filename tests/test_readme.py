"""The README and docs/ against the code, so they cannot drift apart.

Every `python -m hybrik_jax.X ...` command in the README's and docs/' code blocks
and inline code names a module that exists, and every `--flag` it uses is one
that tool's help lists (one help subprocess per tool, all started at once);
every docs/ link of the README exists; docs/VIDEO_RESULTS.md names exactly the
fields hybrik_jax/demos/results.py writes, with their shapes; docs/DEMO.md names
exactly the keys of HybrIK's and HybrIK-X's res.pk (demos/hybrik_res.py).
"""

import functools
import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / 'README.md'
DOCS = sorted((ROOT / 'docs').glob('*.md'))

_FENCE = re.compile(r'^```[^\n]*\n(.*?)^```', re.M | re.S)
_INLINE = re.compile(r'`(python -m hybrik_jax\.[^`]+)`')
_MODULE = re.compile(r'python -m (hybrik_jax(?:\.\w+)+)')
_FLAG = re.compile(r'(?<![\w-])--(\[no\])?([A-Za-z][\w-]*(?:\.[\w.]+)?)')


def _logical_lines(block: str) -> list[str]:
  """Lines with backslash continuations joined and # comments dropped."""
  text = re.sub(r'\\\n\s*', ' ', block)
  return [line.split(' #')[0] if not line.lstrip().startswith('#') else ''
          for line in text.split('\n')]


def commands(text: str) -> list[tuple[str, list[str], str]]:
  """(module, flags, command text) of every `python -m hybrik_jax.X` command."""
  found = []
  pieces = []
  for block in _FENCE.findall(text):
    pieces.extend(_logical_lines(block))
  prose = _FENCE.sub('', text)
  pieces.extend(_INLINE.findall(re.sub(r'\s*\n\s*', ' ', prose)))
  for piece in pieces:
    for segment in re.split(r'&&|;', piece):
      match = _MODULE.search(segment)
      if not match:
        continue
      rest = segment[match.end():]
      flags = [m.group(2) for m in _FLAG.finditer(rest)]
      found.append((match.group(1), flags, segment.strip()))
  return found


def _all_commands():
  out = []
  for path in [README] + DOCS:
    for module, flags, command in commands(path.read_text(encoding='utf-8')):
      out.append((path.relative_to(ROOT).as_posix(), module, flags, command))
  return out


def help_flags(text: str) -> set[str]:
  """Flag names a help text lists (argparse `--x X`, absl `--x:` and `--[no]x:`)."""
  names = set()
  for m in _FLAG.finditer(text):
    name = m.group(2)
    names.add(name)
    if m.group(1):  # absl boolean: --[no]x
      names.add('no' + name)
  return names


@functools.lru_cache(maxsize=None)
def _helps() -> dict[str, str]:
  """{module: help text} of every hybrik_jax tool the docs run, in parallel.

  `--helpfull` first (absl: lists the flags of every module, not only the main
  one); a tool that refuses it (argparse) is asked for `--help`.
  """
  modules = sorted({module for _, module, _, _ in _all_commands()
                    if importlib.util.find_spec(module) is not None})
  env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS='cpu')

  def start(module, flag):
    return subprocess.Popen([sys.executable, '-m', module, flag], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

  procs = {m: start(m, '--helpfull') for m in modules}
  texts = {m: p.communicate(timeout=240)[0] for m, p in procs.items()}
  retry = {m: start(m, '--help') for m, text in texts.items()
           if 'unrecognized arguments' in text}
  texts.update({m: p.communicate(timeout=240)[0] for m, p in retry.items()})
  return texts


def test_commands_found():
  """The extraction sees the README's commands (a broken regex would pass all)."""
  found = {module for path, module, _, _ in _all_commands() if path == 'README.md'}
  for tool in ('train', 'evaluate', 'demo', 'convert', 'prepare_data',
               'average_checkpoints'):
    assert f'hybrik_jax.{tool}' in found


def test_flag_extraction():
  text = ('```bash\npython -m hybrik_jax.demo --video in.mp4 --out o.mp4 \\\n'
          '    [--smooth [--smooth_beta 0.0]] # --not_a_flag\n'
          'pip install x && python -m hybrik_jax.train --config.batch_size=64\n```\n'
          'and `python -m hybrik_jax.evaluate --checkpoint DIR --dataset pw3d|h36m`.\n')
  got = {(m, tuple(f)) for m, f, _ in commands(text)}
  assert got == {('hybrik_jax.demo', ('video', 'out', 'smooth', 'smooth_beta')),
                 ('hybrik_jax.train', ('config.batch_size',)),
                 ('hybrik_jax.evaluate', ('checkpoint', 'dataset'))}
  assert help_flags('  --checkpoint CHECKPOINT\n  --[no]flip_test: x\n  --out: y') == {
      'checkpoint', 'flip_test', 'noflip_test', 'out'}


def test_every_documented_module_exists():
  missing = [f'{path}: {command}' for path, module, _, command in _all_commands()
             if importlib.util.find_spec(module) is None]
  assert not missing, 'modules that do not exist:\n' + '\n'.join(missing)


def test_every_documented_flag_is_accepted():
  helps = _helps()
  wrong = []
  for path, module, flags, command in _all_commands():
    if module not in helps:
      continue  # reported by test_every_documented_module_exists
    accepted = help_flags(helps[module])
    for flag in flags:
      base = flag.split('.')[0] if '.' in flag else flag  # --config.x: config_flags
      if base not in accepted:
        wrong.append(f'{path}: --{flag} is not a flag of {module}: {command}')
  assert not wrong, '\n'.join(wrong)


def test_readme_docs_links_exist():
  text = README.read_text(encoding='utf-8')
  links = set(re.findall(r'\]\((docs/[^)#\s]+)', text))
  links |= set(re.findall(r'(?<![\w/])(docs/[\w./-]+\.(?:md|jpg|png))', text))
  assert 'docs/ARCHITECTURE.md' in links
  missing = sorted(link for link in links if not (ROOT / link).exists())
  assert not missing, f'README links to missing files: {missing}'


def test_video_results_page_matches_fields():
  from hybrik_jax.demos import results  # pylint: disable=g-import-not-at-top
  text = (ROOT / 'docs' / 'VIDEO_RESULTS.md').read_text(encoding='utf-8')
  smplx_heading = "## An SMPL-X model's body fields (`SMPLX_FIELDS`)"
  before, smplx_section = text.split(smplx_heading)
  smplx_section, after = (smplx_section.split('\n## ', 1) + [''])[:2]
  row = r'^\| `(\w+)` \| (\([^)]*\)) \|'
  rows = dict(re.findall(row, before + after, re.M))
  names = set(results.FIELDS) | set(results.CAMERA_FIELDS) | set(results.META)
  assert set(rows) == names, (
      'docs/VIDEO_RESULTS.md lists other fields than results.FIELDS, CAMERA_FIELDS and '
      f'META: {sorted(set(rows) ^ names)}')
  smplx_rows = dict(re.findall(row, smplx_section, re.M))
  assert set(smplx_rows) == set(results.SMPLX_FIELDS), sorted(
      set(smplx_rows) ^ set(results.SMPLX_FIELDS))
  for table, fields in ((rows, list(results.FIELDS.items()) + list(
      results.CAMERA_FIELDS.items())), (smplx_rows, results.SMPLX_FIELDS.items())):
    for name, (shape, _, _) in fields:
      expected = '(' + ', '.join(['T', 'P'] + [str(n) for n in shape]) + ')'
      assert table[name] == expected, f'{name}: page says {table[name]}, code {expected}'


def _slug(heading: str) -> str:
  """GitHub's anchor of a heading: lower case, punctuation dropped, spaces -> '-'."""
  text = re.sub(r'[^\w\- ]', '', heading.strip().lower().replace('`', ''))
  return text.replace(' ', '-')


def test_relative_links_and_anchors_exist():
  """Every relative link of the README and docs/ pages, with its #anchor."""
  wrong = []
  for page in [README] + DOCS:
    text = page.read_text(encoding='utf-8')
    for target in re.findall(r'\]\(([^)\s]+)\)', _FENCE.sub('', text)):
      if re.match(r'\w+://', target):
        continue
      path, _, anchor = target.partition('#')
      file = (page.parent / path) if path else page
      if not file.exists():
        wrong.append(f'{page.name}: {target} (no such file)')
        continue
      if anchor and file.suffix == '.md':
        headings = re.findall(r'^#+ (.+)$', _FENCE.sub('', file.read_text(encoding='utf-8')),
                              re.M)
        if anchor not in {_slug(h) for h in headings}:
          wrong.append(f'{page.name}: {target} (no such heading)')
  assert not wrong, '\n'.join(wrong)


def test_res_pk_page_matches_keys():
  from hybrik_jax.demos import hybrik_res  # pylint: disable=g-import-not-at-top
  text = (ROOT / 'docs' / 'DEMO.md').read_text(encoding='utf-8')
  for heading, expected in (("## HybrIK's res.pk", hybrik_res.RES_KEYS),
                            ("## HybrIK-X's res.pk", hybrik_res.RES_KEYS_X)):
    section = text[text.index(heading) + 3:].split('\n## ', 1)[0]
    keys = re.findall(r'^\| `(\w+)` \|', section, re.M)
    assert keys == list(expected), (heading, keys)
