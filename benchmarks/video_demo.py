r"""Speed of the video demo on a rendered clip (docs/PERFORMANCE.md, "Video demo").

  python -m benchmarks.video_demo [--size 256] [--frames 16] [--model paper|tiny]
      [--mode track|whole] [--batch_size 8] [--noflip_test]

Renders a walking synthetic person (data/synthetic_clip) at size x size,
writes it as mp4, builds a model of the given config with random weights, and
runs video_demo.run_video twice with one predictor: a 2-frame warm-up (the
compilations) and the timed clip. Prints the clip's wall time, seconds per
frame, and the part of it spent drawing (render_mesh + compositing), with the
machine's load average (the CPU may be shared).
"""

import argparse
import os
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from hybrik_jax import models
from hybrik_jax.data import synthetic_clip
from hybrik_jax.demos import core
from hybrik_jax.demos import video as video_demo
from hybrik_jax.demos import video_io


class _NoPerson:
  """--mode whole: a detector that finds no one, so every frame is the box."""
  name = 'none'

  def __call__(self, image):
    del image
    return []


def main():
  p = argparse.ArgumentParser()
  p.add_argument('--size', type=int, default=256)
  p.add_argument('--frames', type=int, default=16)
  p.add_argument('--model', choices=('paper', 'tiny'), default='paper')
  p.add_argument('--mode', choices=('track', 'whole'), default='track')
  p.add_argument('--batch_size', type=int, default=8)
  p.add_argument('--noflip_test', dest='flip_test', action='store_false', default=True)
  args = p.parse_args()

  frames, truth = synthetic_clip.moving_person_clip(args.frames, args.size, args.size)
  workdir = tempfile.mkdtemp(prefix='video_bench_')
  clip = os.path.join(workdir, 'clip.mp4')
  video_io.write_video(clip, list(frames), 25.0)
  warm = os.path.join(workdir, 'warm.mp4')
  video_io.write_video(warm, list(frames[:2]), 25.0)

  cfg = models.get_model_config() if args.model == 'paper' else models.get_tiny_model_config()
  model = models.create_model(cfg)
  rngs = {k: jax.random.key(i) for i, k in enumerate(('params', 'dropout', 'patches'))}
  variables = jax.jit(lambda: model.init(
      rngs, jnp.zeros((1, cfg.input_size, cfg.input_size, 3)), train=False))()
  from hybrik_jax.body import synthetic_body  # pylint: disable=g-import-not-at-top
  body = synthetic_body.synthetic_smpl_model()
  predict_fn = core.make_predict_fn(cfg, body, flip_test=args.flip_test)
  b = truth['bbox'][0]
  kwargs = dict(detector=_NoPerson() if args.mode == 'whole' else None,
                variables=variables, model_config=cfg, smpl_model=body,
                bbox=f'{b[0]},{b[1]},{b[2] - b[0]},{b[3] - b[1]}' if args.mode == 'track' else None,
                batch_size=args.batch_size, predict_fn=predict_fn, progress=False)

  t0 = time.perf_counter()
  video_demo.run_video(warm, os.path.join(workdir, 'warm_out.mp4'), **kwargs)
  t_warm = time.perf_counter() - t0
  draw = []
  original = video_demo.draw_frame

  def timed_draw(*a, **k):
    t = time.perf_counter()
    out = original(*a, **k)
    draw.append(time.perf_counter() - t)
    return out

  video_demo.draw_frame = timed_draw
  res = video_demo.run_video(clip, os.path.join(workdir, 'out.mp4'), **kwargs)
  video_demo.draw_frame = original
  n = args.frames
  print(f'{args.model} model (input {cfg.input_size}), {args.size}x{args.size} px, {n} frames, '
        f'mode={args.mode}, flip_test={args.flip_test}, batch={1 if args.mode == "track" else args.batch_size}')
  print(f'warm-up (2 frames, compiles): {t_warm:.1f} s')
  print(f'clip: {res["seconds"]:.1f} s = {res["seconds"] / n:.2f} s/frame '
        f'({res["frames_per_second"]:.2f} frames/s); drawing {np.mean(draw):.3f} s/frame')
  print(f'load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs')


if __name__ == '__main__':
  main()
