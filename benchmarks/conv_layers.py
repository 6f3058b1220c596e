r"""ResNet-34's convolutions one by one: XLA:CPU against PyTorch, GFLOP/s per pass.

  python -m benchmarks.conv_layers                 # JAX and (if installed) PyTorch
  python -m benchmarks.conv_layers --batch-size 8 --rounds 3 --frameworks jax

For each distinct convolution of ResNet-34 at 256x256 (the 7x7 stride-2 stem,
the 3x3 convolutions of the four stages, the stride-2 3x3 and 1x1 ones that
open stages 2-4), float32 NHWC for JAX / NCHW for PyTorch, batch --batch-size:
the forward pass, the gradient w.r.t. the input (bwd-in) and w.r.t. the kernel
(bwd-w), each timed alone (median of 5 calls after one warm-up), as GFLOP/s
(2 x multiply-adds of the forward pass per call) and as a fraction of the
framework's own 2048x2048 float32 matmul rate. JAX: `lax.conv_general_dilated`
and `jax.vjp` of it, jitted (XLA:CPU picks the kernels: YNNPACK / Eigen).
PyTorch: `F.conv2d` and `torch.ops.aten.convolution_backward` with
only the wanted output (oneDNN). Each framework runs in its own subprocess,
alternated --rounds times; the table shows medians. The XLA flags in
XLA_FLAGS apply to the JAX side as usual.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

# (name, input side, in channels, out channels, kernel, stride) at 256x256.
LAYERS = (
    ('stem 7x7/2', 256, 3, 64, 7, 2),
    ('layer1 3x3', 64, 64, 64, 3, 1),
    ('layer2 3x3/2', 64, 64, 128, 3, 2),
    ('layer2 1x1/2', 64, 64, 128, 1, 2),
    ('layer2 3x3', 32, 128, 128, 3, 1),
    ('layer3 3x3', 16, 256, 256, 3, 1),
    ('layer4 3x3', 8, 512, 512, 3, 1),
)
PASSES = ('fwd', 'bwd-in', 'bwd-w')


def _median_call(fn, repeats=5):
  fn()
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def _flops(batch, side, cin, cout, k, stride):
  out = side // stride
  return 2.0 * batch * out * out * cout * cin * k * k


def _jax_rates(batch):
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  a = jnp.asarray(rng.normal(size=(2048, 2048)), jnp.float32)
  mm = jax.jit(lambda x: x @ x)
  out = {'matmul': 2 * 2048**3 / _median_call(lambda: mm(a).block_until_ready())}
  for name, side, cin, cout, k, s in LAYERS:
    x = jnp.asarray(rng.normal(size=(batch, side, side, cin)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(k, k, cin, cout)), jnp.float32)
    p = k // 2
    conv = lambda x, w, s=s, p=p: jax.lax.conv_general_dilated(
        x, w, (s, s), ((p, p), (p, p)), dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    ct = jnp.ones(conv(x, w).shape, jnp.float32)
    fns = {'fwd': jax.jit(conv),
           'bwd-in': jax.jit(lambda x, w, ct, conv=conv: jax.vjp(lambda x: conv(x, w), x)[1](ct)),
           'bwd-w': jax.jit(lambda x, w, ct, conv=conv: jax.vjp(lambda w: conv(x, w), w)[1](ct))}
    flops = _flops(batch, side, cin, cout, k, s)
    out[name] = {}
    for pass_name, fn in fns.items():
      args = (x, w) if pass_name == 'fwd' else (x, w, ct)
      out[name][pass_name] = flops / _median_call(lambda: jax.block_until_ready(fn(*args)))
  return out


def _torch_rates(batch, threads):
  import torch  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(threads)
  rng = np.random.default_rng(0)
  a = torch.from_numpy(rng.normal(size=(2048, 2048)).astype(np.float32))
  out = {'matmul': 2 * 2048**3 / _median_call(lambda: torch.mm(a, a))}
  for name, side, cin, cout, k, s in LAYERS:
    x = torch.from_numpy(rng.normal(size=(batch, cin, side, side)).astype(np.float32))
    w = torch.from_numpy(rng.normal(size=(cout, cin, k, k)).astype(np.float32))
    p = k // 2
    y = torch.nn.functional.conv2d(x, w, stride=s, padding=p)
    ct = torch.ones_like(y)

    def backward(mask, x=x, w=w, ct=ct, s=s, p=p):
      return torch.ops.aten.convolution_backward(ct, x, w, None, [s, s], [p, p], [1, 1],
                                                 False, [0, 0], 1, mask)

    fns = {'fwd': lambda x=x, w=w, s=s, p=p: torch.nn.functional.conv2d(x, w, stride=s, padding=p),
           'bwd-in': lambda: backward([True, False, False]),
           'bwd-w': lambda: backward([False, True, False])}
    flops = _flops(batch, side, cin, cout, k, s)
    with torch.no_grad():
      out[name] = {pass_name: flops / _median_call(fn) for pass_name, fn in fns.items()}
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(prog='python -m benchmarks.conv_layers',
                                   description=__doc__.split('\n\n')[0])
  parser.add_argument('--batch-size', type=int, default=8)
  parser.add_argument('--rounds', type=int, default=2)
  parser.add_argument('--frameworks', default='jax,torch')
  parser.add_argument('--threads', type=int, default=len(os.sched_getaffinity(0)),
                      help="PyTorch's threads (default: the CPUs this process may use)")
  parser.add_argument('--worker', default=None, help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.worker:
    rates = (_jax_rates(args.batch_size) if args.worker == 'jax'
             else _torch_rates(args.batch_size, args.threads))
    print(json.dumps(rates))
    return
  frameworks = [f for f in args.frameworks.split(',') if f]
  if 'torch' in frameworks:
    try:
      import torch  # pylint: disable=g-import-not-at-top,unused-import
    except ImportError:
      print('PyTorch is not installed: JAX only', file=sys.stderr)
      frameworks.remove('torch')
  runs = {f: [] for f in frameworks}
  for r in range(args.rounds):
    for f in (frameworks if r % 2 == 0 else frameworks[::-1]):
      print(f'[conv_layers] round {r + 1}/{args.rounds}: {f}', file=sys.stderr, flush=True)
      proc = subprocess.run([sys.executable, '-m', 'benchmarks.conv_layers', '--worker', f,
                             '--batch-size', str(args.batch_size), '--threads', str(args.threads)],
                            capture_output=True, text=True, check=False)
      if proc.returncode:
        print(f'error: the {f} worker failed: {proc.stderr.strip().splitlines()[-1:]}',
              file=sys.stderr)
        sys.exit(1)
      runs[f].append(json.loads(proc.stdout.strip().splitlines()[-1]))
  med = {f: {'matmul': statistics.median(r['matmul'] for r in rs),
             **{name: {p: statistics.median(r[name][p] for r in rs) for p in PASSES}
                for name, *_ in LAYERS}} for f, rs in runs.items()}
  load = ', '.join(f'{x:.1f}' for x in os.getloadavg())
  print(f'batch {args.batch_size}, float32, medians of {args.rounds} alternated rounds; '
        f'load {load}; matmul 2048^3: ' +
        ', '.join(f'{f} {m["matmul"] / 1e9:.0f} GFLOP/s' for f, m in med.items()))
  head = ['layer'] + [f'{f} {p}' for p in PASSES for f in frameworks]
  print('| ' + ' | '.join(head) + ' |\n|' + '---|' * len(head))
  for name, *_ in LAYERS:
    cells = [name]
    for p in PASSES:
      for f in frameworks:
        rate = med[f][name][p]
        cells.append(f"{rate / 1e9:.0f} ({100 * rate / med[f]['matmul']:.0f} %)")
    print('| ' + ' | '.join(cells) + ' |')
  print('GFLOP/s (% of the same framework\'s matmul rate)')


if __name__ == '__main__':
  main()
