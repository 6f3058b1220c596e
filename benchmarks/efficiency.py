r"""Training cost of the transformer head against HybrIK's deconvolution head.

  python -m benchmarks.efficiency --config configs/paper.py --batch-size 64
  python -m benchmarks.efficiency --config configs/paper.py --batch-size 64 \
      --skip-timing --out /tmp/efficiency.json        # memory / FLOPs only
  python -m benchmarks.efficiency --config configs/paper.py --batch-size 64 \
      --dtype bfloat16 --remat         # mixed precision, backbone rematerialised
  python -m benchmarks.efficiency --config configs/paper_hrnet.py --batch-size 56 \
      --heads transformer              # the released HRNet-W48 model

For each head the config's model is built with `model.head` set to
'transformer' and to 'deconv' (configs/deconv_baseline.py is exactly paper.py
with the deconv head), everything else equal. The whole train step of
`hybrik_jax.training.train_lib` (forward, HybrIK decode for the theta loss, loss,
backward, Adam update, NaN guard), jitted over train_lib's ('data',) mesh as the
trainer does, is compiled once per head with
`jax.jit(...).lower(*abstract args).compile()`; from it:

  memory: XLA's memory analysis of the compiled step, per device: arguments
    (train state + batch + body model), outputs, aliased (donated state) and
    temporaries; total = arguments + outputs - aliased + temporaries (what the
    step holds at its peak on the device: XLA's buffer assignment packs every
    temporary into one allocation of `temp` bytes), and XLA's own
    `peak_memory_in_bytes` (in the JSON; in the table only where it counts the
    temporaries: XLA:CPU's covers about the arguments only).
  FLOPs: XLA's cost analysis of the compiled step (a multiply-add = 2).
  parameters: the count of the model's trainable parameters.
  step time: steady state, median (and quartiles) of --steps timed steps after
    --warmup untimed ones, the heads alternated step by step in one process so
    both see the same machine load; synthetic batch on the device.

The batch is synthetic (random but valid: ARCHITECTURE.md "Batches") and the
body model is `synthetic_body.synthetic_smpl_model()` (same array shapes as SMPL), so no
dataset or SMPL file is needed. --batch-size is per device (the paper: 64 on
each of 4 GPUs); the global batch is batch size x local devices.

The paper (Oreshkin 2022, section 2; 4 x M40, batch 256): transformer 28 GB
against deconv 60 GB (ratio 0.47), 63 against 82 min per epoch (ratio 0.77).

Where the memory goes: XLA_FLAGS="--xla_dump_to=DIR --xla_dump_hlo_as_text"
before the command, then read DIR/*buffer-assignment.txt (or use
`python -m benchmarks.components` for per-component numbers).
"""

import argparse
import dataclasses
import functools
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable, Mapping, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from benchmarks import model_numbers
from hybrik_jax.body import synthetic_body
from hybrik_jax.models import config as model_config_lib
from hybrik_jax.models import hybrik as hybrik_model
from hybrik_jax.training import train_lib

HEADS = ('transformer', 'deconv')

# The paper's figures (section 2: 4 x M40 GPUs, global batch 256).
PAPER = {
    'transformer': {'memory_gb': 28.0, 'minutes_per_epoch': 63.0},
    'deconv': {'memory_gb': 60.0, 'minutes_per_epoch': 82.0},
    'memory_ratio': 28.0 / 60.0,
    'time_ratio': 63.0 / 82.0,
    'hardware': '4 x NVIDIA M40, batch 64 per GPU (256 in all)',
}
GOAL_MEMORY_RATIO = 0.5
GOAL_TIME_RATIO = 0.77


# ---------------------------------------------------------------------------
# Config and inputs.
# ---------------------------------------------------------------------------


def load_config(path: str) -> ml_collections.ConfigDict:
  """configs/<name>.py -> its get_config()."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'--config: no such file {path!r} (e.g. configs/paper.py)')
  name = os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(f'hybrik_bench_config_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, 'get_config'):
    raise ValueError(f'--config {path!r} has no get_config()')
  return module.get_config()


def create_optimizer(config: ml_collections.ConfigDict):
  """train_lib.create_optimizer for timing steps: (tx, lr_fn).

  The learning-rate schedule does not change what a step costs, so a cooldown
  (config.optim.cooldown_steps, which needs the run's length) is left out.
  """
  optim = ml_collections.ConfigDict(config.optim.to_dict())
  optim.cooldown_steps = 0
  return train_lib.create_optimizer(optim)


def model_config_for(config: ml_collections.ConfigDict, head: str,
                     dtype: Optional[str] = None,
                     remat: Optional[bool] = None) -> ml_collections.ConfigDict:
  """config.model with `head`, and the compute dtype / remat if given.

  remat sets model.backbone_remat and model.head_remat (the latter acts on the
  transformer head only).
  """
  if head not in HEADS:
    raise ValueError(f'head must be one of {HEADS}, got {head!r}')
  model_config = ml_collections.ConfigDict(config.model.to_dict())
  model_config.head = head
  if dtype is not None:
    model_config.dtype = dtype
  if remat is not None:
    model_config.backbone_remat = remat
    model_config.head_remat = remat
  return model_config


def synthetic_batch(batch_size: int, input_size: int, seed: int = 0
                    ) -> dict[str, np.ndarray]:
  """A random but valid training batch (ARCHITECTURE.md "Batches"), numpy.

  Images are ImageNet-normalised noise; targets lie in their ranges (uvd in
  [-0.45, 0.45], unit quaternions and twist vectors, metres for xyz); every
  weight is 1; the camera is a 1000 px pinhole 5 m in front of the person and
  trans_inv maps the input crop into a 2x larger stored image.
  """
  rng = np.random.default_rng(seed)
  b = batch_size
  f32 = lambda x: np.asarray(x, np.float32)

  def unit(shape):
    x = rng.normal(size=shape)
    return f32(x / np.linalg.norm(x, axis=-1, keepdims=True))

  stored = 2 * input_size
  scale = stored / input_size * 0.5
  trans_inv = np.tile(f32([[scale, 0.0, stored / 4], [0.0, scale, stored / 4]]), (b, 1, 1))
  intrinsics = np.tile(f32([[1000.0, 0.0, stored / 2], [0.0, 1000.0, stored / 2],
                            [0.0, 0.0, 1.0]]), (b, 1, 1))
  joint_root = np.tile(f32([0.0, 0.0, 5.0]), (b, 1)) + f32(rng.normal(0, 0.1, (b, 3)))
  xyz24 = f32(rng.uniform(-0.8, 0.8, (b, 24, 3)))
  xyz24[:, 0] = 0.0
  joints17 = joint_root[:, None] + f32(rng.uniform(-0.8, 0.8, (b, 17, 3)))
  half = input_size / 2.5
  bbox = np.tile(f32([stored / 2 - half, stored / 2 - half,
                      stored / 2 + half, stored / 2 + half]), (b, 1))
  return {
      'image': f32(rng.normal(size=(b, input_size, input_size, 3))),
      'target_uvd_29': f32(rng.uniform(-0.45, 0.45, (b, 29, 3))),
      'target_uvd_weight_29': np.ones((b, 29, 3), np.float32),
      'target_xyz_24': xyz24,
      'target_xyz_weight_24': np.ones((b, 24, 3), np.float32),
      'target_theta': unit((b, 24, 4)),
      'target_theta_weight': np.ones((b, 24, 4), np.float32),
      'target_beta': f32(rng.normal(0, 1, (b, 10))),
      'target_smpl_weight': np.ones((b, 1), np.float32),
      'target_twist': unit((b, 23, 2)),
      'target_twist_weight': np.ones((b, 23, 2), np.float32),
      'trans_inv': trans_inv,
      'intrinsics': intrinsics,
      'joint_root': joint_root,
      'depth_factor': np.full((b, 1), 2.2, np.float32),
      'joints17_cam': joints17,
      'joints17_valid': np.ones((b, 17), np.float32),
      'dataset_id': np.zeros((b,), np.int32),
      'bbox': bbox,
      'mask': np.ones((b,), np.float32),
  }


def abstract(tree, sharding=None):
  """Arrays -> ShapeDtypeStructs (optionally with a sharding)."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(np.shape(x), jnp.asarray(x).dtype
                                     if not hasattr(x, 'dtype') else x.dtype,
                                     sharding=sharding), tree)


# ---------------------------------------------------------------------------
# XLA analyses.
# ---------------------------------------------------------------------------


def memory_stats(compiled) -> dict[str, int]:
  """Per-device bytes of a compiled program (XLA memory analysis).

  Keys: argument, output, alias, temp, generated_code, total (= argument +
  output - alias + temp) and peak (XLA's peak_memory_in_bytes; 0 when the
  backend does not report it).
  """
  m = compiled.memory_analysis()
  if isinstance(m, (list, tuple)):
    m = m[0]
  stats = {
      'argument': int(m.argument_size_in_bytes),
      'output': int(m.output_size_in_bytes),
      'alias': int(m.alias_size_in_bytes),
      'temp': int(m.temp_size_in_bytes),
      'generated_code': int(m.generated_code_size_in_bytes),
      'peak': int(getattr(m, 'peak_memory_in_bytes', 0) or 0),
  }
  stats['total'] = stats['argument'] + stats['output'] - stats['alias'] + stats['temp']
  return stats


def cost_stats(compiled) -> dict[str, float]:
  """{'flops', 'bytes_accessed'} of a compiled program (XLA cost analysis)."""
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0]
  cost = cost or {}
  return {'flops': float(cost.get('flops', 0.0)),
          'bytes_accessed': float(cost.get('bytes accessed', 0.0))}


def analyse(compiled) -> dict[str, Any]:
  return {'memory': memory_stats(compiled), **cost_stats(compiled)}


def time_calls(fn: Callable[[], Any], steps: int, warmup: int) -> list[float]:
  """Seconds of each of `steps` calls of fn() after `warmup` (blocking)."""
  for _ in range(warmup):
    jax.block_until_ready(fn())
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
  return times


def summarize_times(times: list[float]) -> dict[str, Any]:
  q = np.percentile(times, [25, 50, 75]) if times else [0.0] * 3
  return {'median_s': float(statistics.median(times)) if times else 0.0,
          'p25_s': float(q[0]), 'p75_s': float(q[2]),
          'steps': len(times), 'times_s': [float(t) for t in times]}


# ---------------------------------------------------------------------------
# The train step of one head.
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class HeadProgram:
  """A compiled train step and what it needs to run."""
  head: str
  model: Any
  tx: Any
  compiled: Any
  abstract_state: Any
  smpl_model: Any
  num_params: int
  compile_s: float
  state: Any = None
  batch: Any = None


def build_head(config: ml_collections.ConfigDict, head: str, batch_size: int,
               mesh, smpl_model, dtype: Optional[str] = None,
               remat: Optional[bool] = None) -> HeadProgram:
  """Compiles train_lib.train_step for `head` on abstract args (no params made).

  batch_size is per device; the compiled step takes the global batch.
  dtype / remat override the config's model.dtype / model.backbone_remat and
  model.head_remat.
  """
  model_config = model_config_for(config, head, dtype, remat)
  model = hybrik_model.create_model(model_config)
  tx, lr_fn = create_optimizer(config)
  input_size = int(model_config.input_size)
  abstract_state = jax.eval_shape(
      functools.partial(train_lib.create_train_state, model, tx,
                        input_size=input_size), jax.random.key(0))
  num_params = model_numbers.param_count(abstract_state.params)

  repl = train_lib.replicated_sharding(mesh)
  data = train_lib.batch_sharding(mesh)
  global_batch = batch_size * mesh.devices.size
  batch = abstract(synthetic_batch(1, input_size), None)
  batch = {k: jax.ShapeDtypeStruct((global_batch,) + v.shape[1:], v.dtype, sharding=data)
           for k, v in batch.items()}
  state = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=repl),
                       abstract_state)
  smpl_abstract = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=repl), smpl_model)
  kwargs = dict(model=model, tx=tx, lr_fn=lr_fn, loss_weights=dict(config.loss),
                convention=model_config_lib.ik_convention(model_config),
                input_size=int(model_config.input_size))

  def step(state, batch, smpl):
    return train_lib.train_step(state, batch, smpl_model=smpl, **kwargs)

  jitted = jax.jit(step, in_shardings=(repl, data, repl), out_shardings=(repl, repl),
                   donate_argnums=(0,))
  t0 = time.perf_counter()
  compiled = jitted.lower(state, batch, smpl_abstract).compile()
  compile_s = time.perf_counter() - t0
  return HeadProgram(head=head, model=model, tx=tx, compiled=compiled,
                     abstract_state=abstract_state, smpl_model=smpl_model,
                     num_params=num_params, compile_s=compile_s)


def materialize(program: HeadProgram, config, batch_size: int, mesh, seed: int = 0):
  """Real initial state and a synthetic batch on the mesh, for timing."""
  input_size = int(config.model.input_size)
  state = train_lib.create_train_state(program.model, program.tx, jax.random.key(seed),
                                       input_size)
  program.state = jax.device_put(state, train_lib.replicated_sharding(mesh))
  local = synthetic_batch(batch_size * jax.local_device_count(), input_size, seed)
  program.batch = train_lib.global_batch(local, mesh)
  program.smpl_model = train_lib.replicate(program.smpl_model, mesh)


def run_step(program: HeadProgram):
  program.state, metrics = program.compiled(program.state, program.batch,
                                            program.smpl_model)
  return metrics


# ---------------------------------------------------------------------------
# Report.
# ---------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
  """CPU model, cores, load, and the JAX devices."""
  cpu = platform.processor() or platform.machine()
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          cpu = line.split(':', 1)[1].strip()
          break
  except OSError:
    pass
  try:
    load = list(os.getloadavg())
  except OSError:
    load = []
  devices = jax.devices()
  return {'cpu': cpu, 'cpu_cores': os.cpu_count(), 'load_average': load,
          'backend': jax.default_backend(), 'device_count': len(devices),
          'device_kind': devices[0].device_kind,
          'jax_version': jax.__version__, 'python': sys.version.split()[0]}


def machine_line(machine: Mapping[str, Any]) -> str:
  """'CPU <model> x<cores>, load a, b, c' from machine_info()."""
  load = ', '.join(f'{x:.1f}' for x in machine['load_average'])
  return f"CPU {machine['cpu']} x{machine['cpu_cores']}, load {load}"


def write_json(report: Mapping[str, Any], path: str) -> None:
  """Writes a benchmark report as indented JSON, creating the folder."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'w') as f:
    json.dump(report, f, indent=2)
  print(f'wrote {path}')


def ratios(results: Mapping[str, Any]) -> dict[str, Optional[float]]:
  """transformer / deconv of memory totals, FLOPs, parameters and step time."""
  t, d = results['transformer'], results['deconv']
  div = lambda a, b: (a / b) if b else None
  out = {
      'memory_total': div(t['memory']['total'], d['memory']['total']),
      'memory_temp': div(t['memory']['temp'], d['memory']['temp']),
      'memory_peak': div(t['memory']['peak'], d['memory']['peak']),
      'flops': div(t['flops'], d['flops']),
      'params': div(t['params'], d['params']),
      'step_time': None,
  }
  if 'timing' in t and 'timing' in d:
    out['step_time'] = div(t['timing']['median_s'], d['timing']['median_s'])
  return out


def _gib(n: float) -> str:
  return f'{n / 2**30:.2f}'


def format_single(report: Mapping[str, Any]) -> str:
  """Markdown table of one head (a run with --heads of one head)."""
  (head, r), = report['results'].items()
  rows = [('memory total, GiB/device', _gib(r['memory']['total'])),
          ('  temporaries, GiB', _gib(r['memory']['temp'])),
          ('  arguments, GiB', _gib(r['memory']['argument'])),
          ('train step TFLOPs', f"{r['flops'] / 1e12:.3f}"),
          ('parameters, M', f"{r['params'] / 1e6:.2f}")]
  if 'timing' in r:
    rows.append(('step time (median), s', f"{r['timing']['median_s']:.3f}"))
  lines = [f"| {'quantity':<28} | {head:>12} |", f"|{'-' * 30}|{'-' * 14}|"]
  lines += [f'| {name:<28} | {a:>12} |' for name, a in rows]
  return '\n'.join(lines)


def format_table(report: Mapping[str, Any]) -> str:
  """Markdown table: one row per quantity, the two heads and their ratio."""
  if 'ratios' not in report:
    return format_single(report)
  res, rat = report['results'], report['ratios']
  t, d = res['transformer'], res['deconv']
  fmt_r = lambda r: '-' if r is None else f'{r:.2f}'
  rows = [
      ('memory total, GiB/device', _gib(t['memory']['total']), _gib(d['memory']['total']),
       fmt_r(rat['memory_total']), f"{PAPER['memory_ratio']:.2f} (28/60 GB)"),
      ('  temporaries, GiB', _gib(t['memory']['temp']), _gib(d['memory']['temp']),
       fmt_r(rat['memory_temp']), ''),
      ('  arguments, GiB', _gib(t['memory']['argument']), _gib(d['memory']['argument']),
       '', ''),
      ('  outputs (aliased), GiB',
       f"{_gib(t['memory']['output'])} ({_gib(t['memory']['alias'])})",
       f"{_gib(d['memory']['output'])} ({_gib(d['memory']['alias'])})", '', ''),
  ]
  # XLA:CPU's peak_memory_in_bytes covers about the arguments only; shown
  # where it counts the temporaries too (GPU, TPU).
  if all(r['memory']['peak'] >= max(r['memory']['temp'], 1) for r in (t, d)):
    rows.append(('XLA peak, GiB', _gib(t['memory']['peak']), _gib(d['memory']['peak']),
                 fmt_r(rat['memory_peak']), ''))
  rows += [
      ('train step TFLOPs', f"{t['flops'] / 1e12:.3f}", f"{d['flops'] / 1e12:.3f}",
       fmt_r(rat['flops']), ''),
      ('parameters, M', f"{t['params'] / 1e6:.2f}", f"{d['params'] / 1e6:.2f}",
       fmt_r(rat['params']), ''),
  ]
  if rat['step_time'] is not None:
    rows.append(('step time (median), s', f"{t['timing']['median_s']:.3f}",
                 f"{d['timing']['median_s']:.3f}", fmt_r(rat['step_time']),
                 f"{PAPER['time_ratio']:.2f} (63/82 min/epoch)"))
  lines = [f"| {'quantity':<28} | {'transformer':>12} | {'deconv':>12} | "
           f"{'ratio t/d':>9} | paper ratio",
           f"|{'-' * 30}|{'-' * 14}|{'-' * 14}|{'-' * 11}|------------"]
  for name, a, b, r, p in rows:
    lines.append(f'| {name:<28} | {a:>12} | {b:>12} | {r:>9} | {p}')
  return '\n'.join(lines)


def run(config: ml_collections.ConfigDict, *, batch_size: int, steps: int = 10,
        warmup: int = 3, dtype: Optional[str] = None, skip_timing: bool = False,
        remat: Optional[bool] = None, heads=HEADS, smpl_model=None,
        progress: bool = True) -> dict[str, Any]:
  """The whole benchmark; returns the JSON-able report."""
  mesh = train_lib.create_mesh()
  if smpl_model is None:
    smpl_model = synthetic_body.synthetic_smpl_model()
  log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if progress else (lambda *a: None)
  programs = {}
  results = {}
  for head in heads:
    log(f'[efficiency] compiling the {head} train step '
        f'(batch {batch_size}/device, dtype {dtype or config.model.dtype})...')
    prog = build_head(config, head, batch_size, mesh, smpl_model, dtype=dtype,
                      remat=remat)
    programs[head] = prog
    results[head] = {'params': prog.num_params, 'compile_s': prog.compile_s,
                     **analyse(prog.compiled)}
    log(f'[efficiency]   {head}: {prog.compile_s:.1f} s to compile, '
        f"{_gib(results[head]['memory']['total'])} GiB, "
        f"{results[head]['flops'] / 1e12:.3f} TFLOPs")
  load_before = machine_info()['load_average']
  if not skip_timing:
    for head in heads:
      materialize(programs[head], config, batch_size, mesh)
      for _ in range(warmup):
        log(f'[efficiency] warm-up step, {head}')
        jax.block_until_ready(run_step(programs[head]))
    times = {h: [] for h in heads}
    try:
      from tqdm import tqdm  # pylint: disable=g-import-not-at-top
      iterator = tqdm(range(steps), desc='timed steps (heads alternated)',
                      disable=not progress, file=sys.stderr)
    except ImportError:
      iterator = range(steps)
    for _ in iterator:
      for head in heads:
        t0 = time.perf_counter()
        metrics = run_step(programs[head])
        jax.block_until_ready(metrics)
        times[head].append(time.perf_counter() - t0)
    for head in heads:
      results[head]['timing'] = summarize_times(times[head])
      loss = float(jax.device_get(run_step(programs[head])['loss']))
      results[head]['final_loss'] = loss
  machine = machine_info()
  machine['load_average_before_timing'] = load_before
  report = {
      'config': {'model': config.model.to_dict(), 'batch_size_per_device': batch_size,
                 'global_batch_size': batch_size * mesh.devices.size,
                 'dtype': dtype or config.model.dtype,
                 'backbone_remat': bool(config.model.get('backbone_remat', False)
                                        if remat is None else remat),
                 'head_remat': bool(config.model.get('head_remat', False)
                                    if remat is None else remat),
                 'steps': 0 if skip_timing else steps,
                 'warmup': 0 if skip_timing else warmup},
      'machine': machine,
      'results': results,
      'paper': PAPER,
      'goals': {'memory_ratio_max': GOAL_MEMORY_RATIO, 'time_ratio_max': GOAL_TIME_RATIO},
  }
  if set(heads) >= set(HEADS):
    report['ratios'] = ratios(results)
    r = report['ratios']
    report['goals']['memory_met'] = (r['memory_total'] is not None
                                     and r['memory_total'] <= GOAL_MEMORY_RATIO)
    report['goals']['time_met'] = (None if r['step_time'] is None
                                   else r['step_time'] <= GOAL_TIME_RATIO)
  return report


def main(argv=None):
  parser = argparse.ArgumentParser(prog='python -m benchmarks.efficiency',
                                   description=__doc__.split('\n\n')[0])
  parser.add_argument('--config', default='configs/paper.py')
  parser.add_argument('--batch-size', type=int, default=64, help='per device')
  parser.add_argument('--steps', type=int, default=10, help='timed steps per head')
  parser.add_argument('--warmup', type=int, default=3, help='untimed steps per head')
  parser.add_argument('--dtype', default=None, choices=['float32', 'bfloat16'],
                      help="compute dtype (default: the config's model.dtype)")
  parser.add_argument('--remat', action='store_true',
                      help='model.backbone_remat and model.head_remat: recompute the '
                      'backbone blocks (both heads) and the transformer sub-layers in '
                      'the backward pass')
  parser.add_argument('--skip-timing', action='store_true', help='memory and FLOPs only')
  parser.add_argument('--heads', default=','.join(HEADS),
                      help='comma-separated heads to build (e.g. transformer alone for the '
                      'HRNet configs, whose released model has no deconv variant)')
  parser.add_argument('--out', default=None, help='write the JSON report here')
  args = parser.parse_args(argv)
  if args.steps < 1 or args.warmup < 0 or args.batch_size < 1:
    parser.error('need --steps >= 1, --warmup >= 0, --batch-size >= 1')
  heads = tuple(h for h in args.heads.split(',') if h)
  if not heads or set(heads) - set(HEADS):
    parser.error(f'--heads: a comma-separated subset of {",".join(HEADS)}')
  config = load_config(args.config)
  report = run(config, batch_size=args.batch_size, steps=args.steps, warmup=args.warmup,
               dtype=args.dtype, skip_timing=args.skip_timing,
               remat=True if args.remat else None, heads=heads)
  m = report['machine']
  print(f"{args.config}, batch {args.batch_size} per device "
        f"({report['config']['global_batch_size']} global), dtype {report['config']['dtype']}"
        f"{', remat' if report['config']['backbone_remat'] else ''}; {m['backend']} x{m['device_count']} "
        f"({m['device_kind']}), {machine_line(m)}")
  print(format_table(report))
  g = report['goals']
  if 'memory_met' in g:
    print(f"goals (transformer/deconv): memory <= {GOAL_MEMORY_RATIO}: "
          f"{'met' if g['memory_met'] else 'MISSED'}; step time <= {GOAL_TIME_RATIO}: "
          f"{'not timed' if g['time_met'] is None else 'met' if g['time_met'] else 'MISSED'}")
  if args.out:
    write_json(report, args.out)


if __name__ == '__main__':
  main()
