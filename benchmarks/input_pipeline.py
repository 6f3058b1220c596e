"""Benchmark of HybrIK's training preprocessing: images/s per CPU core and with all.

  python -m benchmarks.input_pipeline [--data_dir DIR]     # synthetic_humans if prepared
  python -m benchmarks.input_pipeline --dataset synthetic_humans/small --data_dir DIR
  python -m benchmarks.input_pipeline --dataset memory      # in-memory examples

Without --dataset it reads synthetic_humans/default, else synthetic_humans/small,
from the TFDS data_dir when prepared, else in-memory examples; it says which.

In-memory examples imitate the stored ones: a JPEG crop 2.2x the person box
(data/features.DEFAULT_MARGIN) around a box that fills the 256x256 input at
HybrIK's 1.25 margin, decoded in the source's __getitem__ as tfds.data_source
does. "Per core" runs the grain pipeline in this process with one preprocessing
thread; "all cores" runs it with one grain worker process per core.

What the paper needs: HybrIK-Transformer trains at 63 min per epoch with batch
256 (4 M40 GPUs). HybrIK's mixed epoch is 2x the largest training set; with
Human3.6M (every 5th frame, 312,188 crops) that is ~624k images, i.e.
624376 / (63 * 60) = 165 images/s for one accelerator at the paper's step time
(256 / 165 = 1.55 s per step). --epoch_size changes that assumption.
"""

import argparse
import os
import sys
import time

import cv2
import numpy as np

from hybrik_jax.data import features
from hybrik_jax.data import input_pipeline

PAPER_MINUTES_PER_EPOCH = 63.0
PAPER_BATCH = 256
H36M_TRAIN_SAMPLE5 = 312_188


class JpegSource:
  """In-memory examples with the common fields; images stored as JPEG bytes."""

  def __init__(self, num: int, input_size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    box_side = input_size / 1.25
    crop = int(np.ceil(features.DEFAULT_MARGIN * box_side))
    self._examples = []
    for i in range(num):
      ex = features.empty_example(num_native_joints=17)
      k = np.array([[1000.0, 0, crop / 2], [0, 1000.0, crop / 2], [0, 0, 1]], np.float32)
      root = np.array([0.0, 0.0, 5.0], np.float32)
      cam = root + rng.uniform([-0.4, -0.8, -0.3], [0.4, 0.8, 0.3], (29, 3)).astype(np.float32)
      img = features.project(cam, k)
      half = 0.5 * box_side
      bbox = np.array([crop / 2 - 0.4 * half, crop / 2 - half,
                       crop / 2 + 0.4 * half, crop / 2 + half], np.float32)
      # A smooth random image (compresses like a photo, unlike white noise).
      small = rng.integers(0, 256, size=(crop // 16 + 1, crop // 16 + 1, 3), dtype=np.uint8)
      image = cv2.resize(small, (crop, crop), interpolation=cv2.INTER_CUBIC)
      image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
      theta = rng.normal(0, 0.3, (24, 3)).astype(np.float32)
      ang = rng.uniform(-np.pi, np.pi, 23)
      ex.update(
          image=features.encode_jpeg(image), bbox=bbox, intrinsics=k, joint_root=root,
          joints29_cam=cam, joints29_img=img, joints29_valid=np.ones(29, np.float32),
          joints17_cam=cam[:17], joints17_valid=np.ones(17, np.float32), smpl_theta=theta,
          smpl_beta=rng.normal(size=10).astype(np.float32),
          smpl_twist=np.stack([np.cos(ang), np.sin(ang)], -1).astype(np.float32),
          smpl_valid=np.float32(1), twist_valid=np.ones(23, np.float32))
      self._examples.append(ex)
    self.crop_size = crop

  def __len__(self):
    return len(self._examples)

  def __getitem__(self, i):
    ex = dict(self._examples[int(i)])
    ex['image'] = features.decode_jpeg(ex['image'])
    return ex


def measure(data_config, sources, *, batch_size, input_size, workers, threads,
            num_batches, warmup) -> tuple[float, float]:
  """(images per wall-clock second, per CPU second of this process) after warmup."""
  cfg = input_pipeline.DataConfig.from_config(
      dict(data_config, read_threads=threads, worker_buffer_size=2))
  it = input_pipeline.create_train_iterator(
      cfg, global_batch_size=batch_size, seed=0, input_size=input_size,
      data_sources=sources, worker_count=workers, shard_index=0, shard_count=1)
  try:
    for _ in range(warmup):
      next(it)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(num_batches):
      next(it)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
  finally:
    it.close()
  return num_batches * batch_size / elapsed, num_batches * batch_size / max(cpu, 1e-9)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--dataset', default=None,
                      help="TFDS name, e.g. synthetic_humans/small, or 'memory' "
                      '(default: synthetic_humans if prepared, else memory)')
  parser.add_argument('--data_dir', default=None)
  parser.add_argument('--split', default='train')
  parser.add_argument('--input_size', type=int, default=256)
  parser.add_argument('--batch_size', type=int, default=32)
  parser.add_argument('--num_batches', type=int, default=8)
  parser.add_argument('--cores', type=int, default=os.cpu_count(),
                      help='worker processes for the all-cores run')
  parser.add_argument('--epoch_size', type=int, default=2 * H36M_TRAIN_SAMPLE5)
  args = parser.parse_args(argv)

  dataset, source = args.dataset, None
  if dataset is None:
    for candidate in ('synthetic_humans/default', 'synthetic_humans/small'):
      try:
        source = input_pipeline.open_data_source(candidate, args.split, args.data_dir)
        dataset = candidate
        break
      except ValueError:
        continue
  elif dataset != 'memory':
    source = input_pipeline.open_data_source(dataset, args.split, args.data_dir)
  if source is not None:
    sources = {dataset: source}
    what = (f'TFDS {dataset} ({args.split}, {len(source)} examples, '
            f'{source[0]["image"].shape[0]}x{source[0]["image"].shape[1]} stored crops)')
    data_config = {'train_datasets': ((dataset, 1.0),)}
  else:
    source = JpegSource(64, args.input_size)
    sources = {'h36m': source}
    what = (f'in-memory examples (JPEG {source.crop_size}x{source.crop_size} crops, '
            'decoded per example)')
    data_config = {'train_datasets': (('h36m', 1.0),)}
  print(f'data: {what}; input {args.input_size}x{args.input_size}, batch {args.batch_size}, '
        f'HybrIK augmentation (scale, rotation, flip, colour, occlusion)')
  threads = cv2.getNumThreads()
  cv2.setNumThreads(1)  # One core: no OpenCV threads either.
  per_core, per_cpu_second = measure(data_config, sources, batch_size=args.batch_size,
                     input_size=args.input_size, workers=0, threads=1,
                     num_batches=args.num_batches, warmup=1)
  cv2.setNumThreads(threads)
  print(f'one core (in process, 1 thread): {per_core:8.1f} images/s wall clock, '
        f'{per_cpu_second:.1f} images per CPU second')
  all_cores, _ = measure(data_config, sources, batch_size=args.batch_size,
                      input_size=args.input_size, workers=args.cores, threads=1,
                      num_batches=args.num_batches * args.cores, warmup=2 * args.cores)
  print(f'{args.cores} cores ({args.cores} grain workers): {all_cores:8.1f} images/s '
        f'({all_cores / args.cores:.1f} per core)')
  need = args.epoch_size / (PAPER_MINUTES_PER_EPOCH * 60.0)
  print(f'paper: {args.epoch_size} images / {PAPER_MINUTES_PER_EPOCH:.0f} min = {need:.0f} '
        f'images/s ({PAPER_BATCH / need:.2f} s per batch of {PAPER_BATCH})')
  rate = max(per_core, per_cpu_second)
  print(f'8 cores at the per-core rate ({rate:.1f}/s): {8 * rate:.0f} images/s = '
        f'{8 * rate / need:.1f}x the paper\'s need')
  print(f'(load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; a busy '
        'machine lowers the wall-clock numbers, not the per-CPU-second one)')
  sys.stdout.flush()


if __name__ == '__main__':
  main()
