r"""Speed of the mesh renderer and of synthetic example generation, one CPU core.

  taskset -c 0 python benchmarks/render.py [--size 256] [--n 50]

Prints images/s for (1) render_mesh alone on posed synthetic SMPL bodies,
(2) complete synthetic_humans examples (pose sampling, SMPL forward, camera
placement, background, render, labels, JPEG encoding) and the mean JPEG size.
Pin it to one core (taskset) for the per-core number; XLA and numpy are also
limited to one thread below.
"""

import argparse
import os

os.environ.setdefault('XLA_FLAGS', '--xla_cpu_multi_thread_eigen=false '
                      'intra_op_parallelism_threads=1')
os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import time  # pylint: disable=g-import-not-at-top,wrong-import-position

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from hybrik_jax.data import features  # pylint: disable=g-import-not-at-top,wrong-import-position
from hybrik_jax.data import render  # pylint: disable=g-import-not-at-top,wrong-import-position
from hybrik_jax.data import synthetic  # pylint: disable=g-import-not-at-top,wrong-import-position


def main():
  p = argparse.ArgumentParser()
  p.add_argument('--size', type=int, default=256)
  p.add_argument('--n', type=int, default=50)
  args = p.parse_args()
  cfg = synthetic.SyntheticConfig(image_size=args.size)
  gen = synthetic.SyntheticGenerator(cfg)
  faces = np.asarray(gen.model.faces)
  colors = synthetic.body_colors(gen.model)

  # Warm-up (jit compile) and the bodies to render.
  list(gen.generate(range(gen.batch_size), 'train'))
  scenes, bodies = [], []
  for start in range(0, args.n, gen.batch_size):
    sc = [synthetic.sample_scene(i, cfg) for i in range(start, min(start + gen.batch_size, args.n))]
    out = gen.pose_bodies(sc)
    for k, s in enumerate(sc):
      scenes.append(s)
      bodies.append({name: v[k] for name, v in out.items()})
  placed = []
  for s, b in zip(scenes, bodies):
    rel = b['vertices'] - b['joints29'][0]
    root, K = synthetic.place_camera(rel, s, args.size)
    placed.append((rel + root, K))

  t0, c0 = time.perf_counter(), time.process_time()
  cover = 0.0
  for v, K in placed:
    _, _, fid = render.render_mesh(v, faces, K, (args.size, args.size), colors=colors)
    cover += (fid >= 0).mean()
  t_render, c_render = time.perf_counter() - t0, time.process_time() - c0

  t0, c0 = time.perf_counter(), time.process_time()
  sizes = []
  for _, ex in gen.generate(range(1000, 1000 + args.n), 'train', encode=True):
    sizes.append(len(ex['image']))
  t_full, c_full = time.perf_counter() - t0, time.process_time() - c0
  n = len(placed)

  print(f'image {args.size}x{args.size}, {len(faces)} faces, body covers '
        f'{100 * cover / len(placed):.0f}% of pixels')
  # CPU time is what one core spends; wall time also counts waiting for a
  # busy machine.
  print(f'render_mesh:        {n / c_render:6.1f} images/s per core '
        f'({1000 * c_render / n:.1f} ms CPU each; wall {1000 * t_render / n:.1f} ms)')
  print(f'synthetic examples: {args.n / c_full:6.1f} examples/s per core '
        f'({1000 * c_full / args.n:.1f} ms CPU each; wall {1000 * t_full / args.n:.1f} ms),'
        f' JPEG mean {np.mean(sizes) / 1024:.1f} KiB (quality {features.JPEG_QUALITY})')


if __name__ == '__main__':
  main()
