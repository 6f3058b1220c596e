"""prepare_data on a bad --manual_dir: one line, nothing left behind."""

import os

from hybrik_jax import prepare_data


def test_empty_or_wrong_manual_dir_leaves_nothing(tmp_path, capsys):
  manual = tmp_path / 'manual'
  manual.mkdir()
  data_dir = tmp_path / 'data'
  rc = prepare_data.main(['--dataset', 'pw3d', '--manual_dir', str(manual),
                          '--data_dir', str(data_dir)])
  err = capsys.readouterr().err.strip().splitlines()
  assert rc == 1
  assert err[0].startswith(f'error: pw3d: --manual_dir {manual} is empty')
  assert not data_dir.exists()
  # Files that are not 3DPW's: the build fails with one line and the folders
  # it created are removed again.
  (manual / 'readme.txt').write_text('not the dataset')
  rc = prepare_data.main(['--dataset', 'pw3d', '--manual_dir', str(manual),
                          '--data_dir', str(data_dir)])
  err = capsys.readouterr().err.strip().splitlines()
  assert rc == 1 and err[0].startswith('error: pw3d: ')
  assert 'Traceback' not in '\n'.join(err)
  leftovers = [r for r, d, f in os.walk(data_dir) if not d and not f]
  assert not leftovers, leftovers
