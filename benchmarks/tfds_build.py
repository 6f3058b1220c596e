r"""Examples/s of building the TFDS datasets: process pool vs Beam DirectRunner.

  python benchmarks/tfds_build.py [--synthetic 256] [--h36m-repeat 1000] \
      [--h36m-scale 16] [--modes pool,beam1,beam2] [--out /tmp/tfds_build.json]

Needs the `build` extra (apache-beam). Builds, into a temporary data_dir:

* synthetic_humans, default config (256x256 renders), capped at --synthetic
  train examples (+ --synthetic // 8 validation);
* h36m from its dummy data scaled up: each 64x64 dummy frame upscaled
  --h36m-scale times (16: 1024x1024, about a Human3.6M frame) with its box and
  camera scaled alike, and the train rows repeated --h36m-repeat times (3 rows
  -> 3000 examples, each reading a real-sized JPEG, cropping, re-encoding).

Each with: `pool` (the plain path: prepare_data's process pool,
num_workers = the cores), `beam1` / `beam2` (the Beam path, DirectRunner in
multi_processing mode with 1 / 2 workers). examples/s = examples written /
wall time of download_and_prepare, Beam's start-up included; cpu_ms_per_example
= CPU time of this process and its worker processes / examples (what a quiet
or a bigger machine would need). The load average is printed with the numbers:
the CPU may be shared.
"""

import argparse
import json
import os
import pathlib
import resource
import shutil
import tempfile
import time

os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import cv2  # pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top,wrong-import-position

from tfds_builders.h36m import h36m_dataset_builder  # pylint: disable=g-import-not-at-top,wrong-import-position
from tfds_builders.synthetic_humans import synthetic_humans_dataset_builder as shb  # pylint: disable=g-import-not-at-top,wrong-import-position

_BUILDERS = pathlib.Path(__file__).resolve().parents[1] / 'tfds_builders'
_H36M_TRAIN = 'Sample_5_train_Human36M_smpl_leaf_twist_protocol_2.json'


def scaled_h36m(dst: pathlib.Path, repeat: int, scale: int) -> pathlib.Path:
  """A manual_dir with h36m's dummy data, frames upscaled, train rows repeated."""
  src = _BUILDERS / 'h36m' / 'dummy_data'
  shutil.copytree(src, dst)
  for path in (dst / 'h36m' / 'images').rglob('*.jpg'):
    frame = cv2.imread(str(path))
    big = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 90])
  for ann_file in (dst / 'h36m' / 'annotations').glob('*.json'):
    data = json.loads(ann_file.read_text())
    for image in data['images']:
      image['width'] *= scale
      image['height'] *= scale
      cam = image['cam_param']
      cam['f'] = [v * scale for v in cam['f']]
      cam['c'] = [(v + 0.5) * scale - 0.5 for v in cam['c']]
    for ann in data['annotations']:
      ann['bbox'] = [v * scale for v in ann['bbox']]
      cam = ann.get('cam_param')
      if cam is not None:
        cam['f'] = [v * scale for v in cam['f']]
        cam['c'] = [(v + 0.5) * scale - 0.5 for v in cam['c']]
    if ann_file.name == _H36M_TRAIN:
      data['images'] = [dict(r, id=i) for i, r in
                        enumerate(data['images'] * repeat)]
      data['annotations'] = [dict(r, id=i, image_id=i) for i, r in
                             enumerate(data['annotations'] * repeat)]
    ann_file.write_text(json.dumps(data))
  return dst


def _download_config(mode: str, manual_dir: str | None):
  if mode == 'pool':
    return tfds.download.DownloadConfig(manual_dir=manual_dir)
  import apache_beam as beam  # pylint: disable=g-import-not-at-top
  workers = int(mode.removeprefix('beam'))
  options = beam.options.pipeline_options.PipelineOptions(flags=[
      '--runner=DirectRunner', f'--direct_num_workers={workers}',
      '--direct_running_mode=multi_processing'])
  return tfds.download.DownloadConfig(manual_dir=manual_dir, beam_options=options)


def _cpu_seconds() -> float:
  """User + system CPU of this process and its finished children (the pool's
  and the DirectRunner's worker processes), s."""
  total = 0.0
  for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
    usage = resource.getrusage(who)
    total += usage.ru_utime + usage.ru_stime
  return total


def time_build(builder, mode: str, manual_dir: str | None) -> dict:
  load = os.getloadavg()[0]
  start, cpu = time.perf_counter(), _cpu_seconds()
  builder.download_and_prepare(download_config=_download_config(mode, manual_dir))
  seconds = time.perf_counter() - start
  cpu = _cpu_seconds() - cpu
  examples = sum(s.num_examples for s in builder.info.splits.values())
  return {'mode': mode, 'examples': examples, 'seconds': round(seconds, 1),
          'examples_per_s': round(examples / seconds, 2),
          'cpu_ms_per_example': round(1000 * cpu / examples, 1),
          'load_before': round(load, 2), 'load_after': round(os.getloadavg()[0], 2)}


def main():
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--synthetic', type=int, default=256,
                 help='synthetic_humans train examples (0: skip)')
  p.add_argument('--h36m-repeat', type=int, default=1000,
                 help='repeats of the 3 h36m dummy train rows (0: skip)')
  p.add_argument('--h36m-scale', type=int, default=16)
  p.add_argument('--modes', default='pool,beam1,beam2')
  p.add_argument('--out', default=None, help='JSON file for the results')
  args = p.parse_args()
  cores = len(os.sched_getaffinity(0))
  results = {'cores': cores, 'runs': []}
  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    if args.h36m_repeat:
      manual = str(scaled_h36m(tmp / 'manual', args.h36m_repeat, args.h36m_scale))
    for mode in args.modes.split(','):
      if args.synthetic:
        config = shb.SyntheticHumansConfig(
            name=f'bench{args.synthetic}', description='benchmark', image_size=256,
            num_train=args.synthetic, num_validation=max(args.synthetic // 8, 1))
        builder = shb.Builder(data_dir=str(tmp / mode), config=config,
                              num_workers=cores, file_format='array_record')
        row = {'dataset': 'synthetic_humans (256 px)', **time_build(builder, mode, None)}
        results['runs'].append(row)
        print(json.dumps(row), flush=True)
      if args.h36m_repeat:
        builder = h36m_dataset_builder.Builder(
            data_dir=str(tmp / mode), num_workers=cores, file_format='array_record')
        row = {'dataset': f'h36m dummy x{args.h36m_repeat}, '
                          f'{64 * args.h36m_scale} px frames',
               **time_build(builder, mode, manual)}
        results['runs'].append(row)
        print(json.dumps(row), flush=True)
  if args.out:
    pathlib.Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == '__main__':
  main()
