r"""Images per second of the exported artefacts, side by side on this machine.

  python -m benchmarks.export_speed [--model paper|tiny] [--batches 1,8] \
      [--formats stablehlo,savedmodel,onnx] [--steps 5] [--out FILE.json]

For each batch size, the model (random weights; `--model paper`: the paper's
HT ResNet-34, 256 px; `tiny`: the test model) is exported twice per format by
`hybrik_jax.export` (fixed batch, uint8 crops, no flip test): the network
alone (raw head outputs) and the whole path (network, IK, skinning, 6890
vertices). Each is timed in this process, after one warm-up call, by its own
runtime (jax.export.deserialize for StableHLO, tf.saved_model.load for the
SavedModel, onnxruntime for ONNX) against `jax.jit` of the same function: the
median of --steps calls, reported as images/s. The runtimes share this
process's CPUs; each is timed alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from hybrik_jax import models
from hybrik_jax.models import inference
from hybrik_jax.body import synthetic_body
from hybrik_jax.export import formats
from hybrik_jax.export import run_artefact
from hybrik_jax.export import serving


def random_variables(model, input_size: int, seed: int = 0):
  """Random variables of the model's structure (traced, not compiled)."""
  rngs = {k: jax.random.key(i) for i, k in enumerate(('params', 'dropout', 'patches'))}
  shapes = jax.eval_shape(lambda: model.init(
      rngs, jnp.zeros((1, input_size, input_size, 3)), train=False))
  rng = np.random.default_rng(seed)

  def fill(path, s):
    name = str(getattr(path[-1], 'key', path[-1]))
    if name in ('var', 'scale'):
      return np.ones(s.shape, s.dtype)
    if name in ('mean', 'bias'):
      return np.zeros(s.shape, s.dtype)
    return (rng.normal(size=s.shape) / np.sqrt(max(1, int(np.prod(s.shape[:-1]))))
            ).astype(s.dtype)

  return jax.tree_util.tree_map_with_path(fill, dict(shapes))


def _median_seconds(fn, steps: int) -> float:
  fn()
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def run(model_name: str, batches, fmts, steps: int) -> list[dict]:
  cfg = (models.get_tiny_model_config(input_size=64) if model_name == 'tiny'
         else models.get_model_config())
  model = models.create_model(cfg)
  variables = random_variables(model, int(cfg.input_size))
  smpl = synthetic_body.synthetic_smpl_model()
  size = int(cfg.input_size)
  rows = []
  for batch in batches:
    options = serving.ServingOptions(batch=batch, flip_test=False)
    full = serving.make_serving_fn(model, variables, cfg, smpl, options)

    def network(images, trans_inv, intrinsics, joint_root):
      del trans_inv, intrinsics, joint_root
      raw = model.apply(variables, serving.normalize_images(images), train=False)
      return {k: v for k, v in inference.float32_outputs(raw).items() if v is not None}

    rng = np.random.default_rng(0)
    inputs = {
        'images': rng.integers(0, 256, (batch, size, size, 3)).astype(np.uint8),
        'trans_inv': np.tile(np.array([[1, 0, 0], [0, 1, 0]], np.float32), (batch, 1, 1)),
        'intrinsics': np.tile(np.array([[500, 0, size / 2], [0, 500, size / 2], [0, 0, 1]],
                                       np.float32), (batch, 1, 1)),
        'joint_root': np.tile(np.array([0, 0, 4], np.float32), (batch, 1))}
    args = [inputs[n] for n in serving.input_names()]
    for part, fn in (('network', network), ('network + IK + mesh', full)):
      jitted = jax.jit(fn)
      seconds = _median_seconds(lambda: jax.block_until_ready(jitted(*args)), steps)
      rows.append({'runtime': 'JAX jit', 'part': part, 'batch': batch,
                   'images_per_s': batch / seconds})
      print(rows[-1], flush=True)
      for fmt in fmts:
        with tempfile.TemporaryDirectory() as out:
          start = time.perf_counter()
          formats.write(fmt, fn, size, options, out)
          export_s = time.perf_counter() - start
          call, _ = run_artefact.load(out)
          seconds = _median_seconds(lambda: call(inputs), steps)
        rows.append({'runtime': fmt, 'part': part, 'batch': batch,
                     'images_per_s': batch / seconds, 'export_s': export_s})
        print(rows[-1], flush=True)
  return rows


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--model', choices=('paper', 'tiny'), default='paper')
  parser.add_argument('--batches', default='1,8')
  parser.add_argument('--formats', default=','.join(formats.FORMATS))
  parser.add_argument('--steps', type=int, default=5)
  parser.add_argument('--out', default=None)
  args = parser.parse_args(argv)
  rows = run(args.model, [int(b) for b in args.batches.split(',')],
             args.formats.split(','), args.steps)
  print('| runtime | part | batch | images/s |\n|---|---|---|---|')
  for r in rows:
    print(f"| {r['runtime']} | {r['part']} | {r['batch']} | {r['images_per_s']:.2f} |")
  if args.out:
    with open(args.out, 'w') as f:
      json.dump({'model': args.model, 'cpus': os.cpu_count(), 'rows': rows}, f, indent=1)
  return 0


if __name__ == '__main__':
  sys.exit(main())
