r"""This project against the released PyTorch code, side by side on this machine.

  python -m benchmarks.vs_reference --reference-repo /path/to/hybrik-transformer
  python -m benchmarks.vs_reference --reference-repo PATH --parts transformer,backbone \
      --rounds 5 --out /tmp/vs_reference.json
  python -m benchmarks.vs_reference --project-only --config configs/test.py \
      --batch-size 2 --input-size 64 --parts backbone        # no PyTorch needed

PATH is a checkout of boreshkinai/hybrik-transformer (its python package is
HybrIK/hybrik) that you fetched yourself; nothing of it is part of this
project: it is imported at run time, from PATH only, by the PyTorch worker
processes. --deconv-reference-repo (default PATH) may point at a checkout of
Jeff-sjtu/HybrIK for the deconvolution model. torch must be installed for the
reference side (`pip install torch`); its files are never modified.

Parts (--parts), each on both sides with the same batch and input size, the
paper's model (configs/paper.py; the released side reads the released
configs hybrik_transformer_smpl24.yaml and
256x192_adam_lr1e-3-res34_smpl_24_3d_base_2x_mix.yaml):

  transformer  the whole train step, transformer head: forward, loss (HybrIK's
               L1LossDimSMPL weights), backward, Adam update. This project:
               `train_lib.train_step` as the trainer compiles it
               (benchmarks.efficiency). Released: HybrikTransformerSMPL24,
               L1LossDimSMPL, torch.optim.Adam, as train_smpl.py runs them
               (without its `inps.requires_grad_()`, whose image gradient
               is of no use; the released forward skins the full mesh, which
               the loss does not read: this project's step leaves it out).
  deconv       the same with HybrIK's deconvolution head (Simple3DPoseBaseSMPL24).
  backbone     the backbone (ResNet-34) forward + backward alone, train mode (batch
               statistics), gradient of <features, random cotangent> w.r.t. the
               parameters; no optimizer.
  ik           IK + skinning (`smpl.hybrik` / released SMPL_layer.hybrik, 24
               joints, leaf rotations, 6890 vertices, forward, eval mode) at
               each of --ik-batches.

Measurement: every part runs in its own pair of worker processes (this
project, reference) started side by side; each compiles / builds and warms up
(--warmup steps), then the parent alternates them (--rounds rounds of --steps
steps each, the side that goes first swapped every round) so both see the same
machine load, and reports the median step time of each side and the ratio
project / reference (< 1: this project is faster). Peak RSS is each worker's
own: `process` = the whole life of the process (import, compile, warm-up,
steps; VmHWM), `steps` = during the timed steps only (VmHWM reset after
warm-up). After warm-up both workers hand free heap pages back to the OS
(glibc malloc_trim), as this project's trainer does after compiling. PyTorch runs with as many threads as this process may use
(the CPUs of its affinity mask, which XLA:CPU uses too; --threads overrides).

GFLOP/s: the part's FLOPs divided by each side's median time, and that as a
fraction of the machine's measured float32 matmul rate (2048x2048 @ 2048x2048,
timed by each worker in its own framework 3 times every round, between the
part's steps, so under the same load; median). The
FLOPs of a part are the reference's (torch.utils.flop_counter: convolutions
and matmuls, a multiply-add = 2) where the reference ran, else XLA's cost
analysis of this project's program; both counts are in the JSON.

The released model reads SMPL files from ./model_files: the workers run in a
temporary directory holding this project's synthetic body (written with
`smpl_io.save_smpl_pkl(synthetic_smpl_model(0))`), its H36M regressor (.npy) and
a zero mean shape; torchvision's pretrained-weight download is replaced by
empty weights (random initialisation on both sides) and `.cuda()` by a no-op
when no GPU is present. Inputs are random but valid (ARCHITECTURE.md
"Batches"), the same on both sides for the IK.
"""

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
from typing import Any, Sequence

import numpy as np

PARTS = ('transformer', 'deconv', 'backbone', 'ik')
PART_NAMES = {
    'transformer': 'whole train step, transformer head',
    'deconv': 'whole train step, deconv head',
    'backbone': 'backbone forward+backward alone',
    'ik': 'IK + skinning',
}
RELEASED_CONFIGS = {
    'transformer': ('hybrik_transformer_smpl24.yaml', 'HybrikTransformerSMPL24'),
    'deconv': ('256x192_adam_lr1e-3-res34_smpl_24_3d_base_2x_mix.yaml',
               'Simple3DPoseBaseSMPL24'),
}
_SMPL_PKL = 'basicModel_neutral_lbs_10_207_0_v1.0.0.pkl'
_MATMUL_N = 2048
MATMUL = 'matmul'  # the case timing the machine's matmul rate, every round


class UserError(Exception):
  """A wrong flag or a missing file: printed as one line."""


# ---------------------------------------------------------------------------
# Shared helpers (both workers; numpy only).
# ---------------------------------------------------------------------------


def released_package_dir(repo: str) -> str:
  """The folder holding the released `hybrik` package inside a checkout."""
  for candidate in (repo, os.path.join(repo, 'HybrIK')):
    if os.path.isfile(os.path.join(candidate, 'hybrik', 'models', '__init__.py')):
      return os.path.abspath(candidate)
  raise UserError(f'--reference-repo {repo!r}: no hybrik/models package in it or in its '
                  'HybrIK/ folder; pass a checkout of boreshkinai/hybrik-transformer '
                  '(or Jeff-sjtu/HybrIK for --deconv-reference-repo)')


def usable_cpus() -> int:
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:
    return os.cpu_count() or 1


def _rss_kib(field: str) -> int:
  """VmHWM / VmRSS of this process in KiB (0 if /proc is absent)."""
  try:
    with open('/proc/self/status') as f:
      for line in f:
        if line.startswith(field + ':'):
          return int(line.split()[1])
  except OSError:
    pass
  return 0


def _release_free_host_memory() -> None:
  """glibc malloc_trim(0): free heap pages back to the OS (no-op elsewhere).

  The same call `train_lib.jit_train_step` makes after compiling (here without
  importing this project into the reference worker).
  """
  import ctypes  # pylint: disable=g-import-not-at-top
  import ctypes.util  # pylint: disable=g-import-not-at-top
  try:
    ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6').malloc_trim(0)
  except (OSError, AttributeError):
    pass


def _reset_peak_rss() -> bool:
  try:
    with open('/proc/self/clear_refs', 'w') as f:
      f.write('5')
    return True
  except OSError:
    return False


def camera_inputs(batch: int, input_size: int) -> dict[str, np.ndarray]:
  """trans_inv (B,2,3), K (B,3,3), root (B,3) m, depth factor (B,1) m: valid, fixed."""
  stored = 2 * input_size
  f32 = lambda x: np.asarray(x, np.float32)
  k = f32([[1000.0, 0.0, stored / 2], [0.0, 1000.0, stored / 2], [0.0, 0.0, 1.0]])
  return {
      'trans_inv': np.tile(f32([[1.0, 0.0, stored / 4], [0.0, 1.0, stored / 4]]), (batch, 1, 1)),
      'intrinsics': np.tile(k, (batch, 1, 1)),
      'joint_root': np.tile(f32([0.0, 0.0, 5.0]), (batch, 1)),
      'depth_factor': np.full((batch, 1), 2.2, np.float32),
  }


# ---------------------------------------------------------------------------
# Workers: build a part, then answer 'time CASE N' / 'quit' on stdin.
# ---------------------------------------------------------------------------


class _Case:
  """A timed callable of a worker and its FLOPs (0 = unknown)."""

  def __init__(self, name: str, fn, flops: float = 0.0):
    self.name, self.fn, self.flops = name, fn, flops


def _jax_worker(args) -> list[_Case]:
  """This project's cases of args.part, then the matmul case."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from benchmarks import components  # pylint: disable=g-import-not-at-top
  from benchmarks import efficiency  # pylint: disable=g-import-not-at-top
  from hybrik_jax.body import ik  # pylint: disable=g-import-not-at-top
  from hybrik_jax.body import smpl as smpl_lib  # pylint: disable=g-import-not-at-top
  from hybrik_jax.training import train_lib  # pylint: disable=g-import-not-at-top
  from hybrik_jax.models import backbones  # pylint: disable=g-import-not-at-top
  from hybrik_jax.body import synthetic_body  # pylint: disable=g-import-not-at-top

  a = jnp.asarray(np.random.default_rng(0).normal(size=(_MATMUL_N, _MATMUL_N)), jnp.float32)
  mm = jax.jit(lambda x: x @ x)
  mm(a).block_until_ready()
  matmul = lambda: mm(a).block_until_ready()

  config = efficiency.load_config(args.config)
  config.model.input_size = args.input_size
  body = synthetic_body.synthetic_smpl_model(0)
  b, size = args.batch_size, args.input_size
  cases = []
  if args.part in ('transformer', 'deconv'):
    mesh = train_lib.create_mesh()
    prog = efficiency.build_head(config, args.part, b // mesh.devices.size, mesh, body)
    efficiency.materialize(prog, config, b // mesh.devices.size, mesh)
    flops = efficiency.cost_stats(prog.compiled)['flops']
    cases.append(_Case(args.part, lambda: jax.block_until_ready(efficiency.run_step(prog)),
                       flops))
  elif args.part == 'backbone':
    net = backbones.create_backbone(config.model.backbone)
    fn, abstract, _, _ = components._train_grad(  # pylint: disable=protected-access
        net, components._sds((b, size, size, 3)), wrt_input=False)  # pylint: disable=protected-access
    compiled = jax.jit(fn).lower(*abstract).compile()
    concrete = components._fill(abstract, seed=0)  # pylint: disable=protected-access
    cases.append(_Case('backbone', lambda: jax.block_until_ready(compiled(*concrete)),
                       efficiency.cost_stats(compiled)['flops']))
  elif args.part == 'ik':
    data = np.load(args.ik_inputs)
    for batch in args.ik_batches:
      ins = [jnp.asarray(data[f'{k}_{batch}']) for k in ('betas', 'joints', 'phis', 'leaf')]
      fn = lambda m, be, j, p, l: smpl_lib.hybrik(m, be, j, p, leaf_thetas=l,
                                                    convention=ik.IKConvention.released())
      compiled = jax.jit(fn).lower(body, *ins).compile()
      cases.append(_Case(f'ik_{batch}', (lambda c, i: lambda: jax.block_until_ready(c(body, *i)))(
          compiled, ins), efficiency.cost_stats(compiled)['flops']))
  return cases + [_Case(MATMUL, matmul, 2.0 * _MATMUL_N**3)]


def _install_torch_shims():
  """No downloads, no CUDA: torchvision's pretrained ResNets -> empty weights."""
  import torch  # pylint: disable=g-import-not-at-top

  class _NoWeights:
    def state_dict(self):
      return {}

  tv = types.ModuleType('torchvision')
  tm = types.ModuleType('torchvision.models')
  for name in ('resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152'):
    setattr(tm, name, lambda *a, **k: _NoWeights())
  tv.models = tm
  sys.modules['torchvision'] = tv
  sys.modules['torchvision.models'] = tm
  if not torch.cuda.is_available():
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self


def _torch_labels(batch: int, rng) -> dict[str, np.ndarray]:
  """The released dataset's label dict (train_smpl.py), random but valid."""
  f32 = lambda x: np.asarray(x, np.float32)

  def unit(shape):
    x = rng.normal(size=shape)
    return f32(x / np.linalg.norm(x, axis=-1, keepdims=True))

  return {
      'target_uvd_29': f32(rng.uniform(-0.45, 0.45, (batch, 87))),
      'target_weight_29': np.ones((batch, 87), np.float32),
      'target_xyz_24': f32(rng.uniform(-0.4, 0.4, (batch, 72))),
      'target_weight_24': np.ones((batch, 72), np.float32),
      'target_xyz_17': f32(rng.uniform(-0.4, 0.4, (batch, 51))),
      'target_weight_17': np.ones((batch, 51), np.float32),
      'target_theta': unit((batch, 24, 4)).reshape(batch, 96),
      'target_theta_weight': np.ones((batch, 96), np.float32),
      'target_beta': f32(rng.normal(size=(batch, 10))),
      'target_smpl_weight': np.ones((batch, 1), np.float32),
      'target_twist': unit((batch, 23, 2)),
      'target_twist_weight': np.ones((batch, 23, 2), np.float32),
  }


def _torch_worker(args) -> list[_Case]:
  """The released code's cases of args.part, then the matmul case."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch.utils import flop_counter  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(args.threads)
  _install_torch_shims()
  repo = args.deconv_reference_repo if args.part == 'deconv' else args.reference_repo
  pkg = released_package_dir(repo)
  sys.path.insert(0, pkg)
  os.chdir(args.workdir)  # ./model_files/ as the released code expects
  torch.manual_seed(0)
  rng = np.random.default_rng(0)

  a = torch.from_numpy(rng.normal(size=(_MATMUL_N, _MATMUL_N)).astype(np.float32))
  torch.mm(a, a)
  matmul = lambda: torch.mm(a, a)

  def count_flops(step):
    counter = flop_counter.FlopCounterMode(display=False)
    with counter:
      step()
    return float(counter.get_total_flops())

  b, size = args.batch_size, args.input_size
  cases = []
  if args.part in ('transformer', 'deconv'):
    from hybrik import models  # pylint: disable=g-import-not-at-top
    from hybrik.utils.config import update_config  # pylint: disable=g-import-not-at-top
    yaml_name, cls_name = RELEASED_CONFIGS[args.part]
    cfg = update_config(os.path.join(pkg, 'configs', yaml_name))
    model_cfg = dict(cfg.MODEL)
    model_cfg['IMAGE_SIZE'] = [size, size]
    model_cfg['HEATMAP_SIZE'] = [size // 4, size // 4]
    model = getattr(models, cls_name)(**model_cfg)
    model.train()
    criterion = models.L1LossDimSMPL(ELEMENTS=cfg.LOSS.ELEMENTS)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.TRAIN.LR)
    cam = camera_inputs(b, size)
    t = lambda x: torch.from_numpy(np.ascontiguousarray(x))
    images = t(rng.normal(size=(b, 3, size, size)).astype(np.float32))
    # The released data are in mm and its `intrinsic_param` is K^-1.
    geo = dict(trans_inv=t(cam['trans_inv']), intrinsic_param=t(np.linalg.inv(cam['intrinsics'])),
               joint_root=t(cam['joint_root'] * 1000), depth_factor=t(cam['depth_factor'] * 1000))
    labels = {k: t(v) for k, v in _torch_labels(b, rng).items()}

    def step():
      output = model(images, **geo)
      loss, _ = criterion(output, labels)
      optimizer.zero_grad()
      loss.backward()
      optimizer.step()

    def fwd_bwd():
      loss, _ = criterion(model(images, **geo), labels)
      loss.backward()

    flops = count_flops(fwd_bwd)
    optimizer.zero_grad()
    cases.append(_Case(args.part, step, flops))
  elif args.part == 'backbone':
    from hybrik.models.layers.Resnet import ResNet  # pylint: disable=g-import-not-at-top
    net = ResNet(args.backbone)
    net.train()
    images = torch.from_numpy(rng.normal(size=(b, 3, size, size)).astype(np.float32))
    out_shape = net(images).shape
    cot = torch.from_numpy(rng.normal(0, 0.05, tuple(out_shape)).astype(np.float32))

    def step():
      net.zero_grad(set_to_none=True)
      (net(images) * cot).sum().backward()

    cases.append(_Case('backbone', step, count_flops(step)))
  elif args.part == 'ik':
    from hybrik.models.layers.smpl.SMPL import SMPL_layer  # pylint: disable=g-import-not-at-top
    layer = SMPL_layer(os.path.join('model_files', _SMPL_PKL),
                       h36m_jregressor=np.load(os.path.join('model_files', 'J_regressor_h36m.npy')),
                       dtype=torch.float32, num_joints=24)
    layer.eval()
    data = np.load(args.ik_inputs)
    for batch in args.ik_batches:
      betas, joints, phis, leaf = (torch.from_numpy(data[f'{k}_{batch}'])
                                   for k in ('betas', 'joints', 'phis', 'leaf'))

      def step(betas=betas, joints=joints, phis=phis, leaf=leaf):
        with torch.no_grad():
          return layer.hybrik(pose_skeleton=joints, betas=betas, phis=phis,
                              global_orient=None, leaf_thetas=leaf)

      cases.append(_Case(f'ik_{batch}', step, count_flops(step)))
  return cases + [_Case(MATMUL, matmul, 2.0 * _MATMUL_N**3)]


def worker_main(args) -> None:
  """Builds the part, warms up, then serves the parent's commands (JSON lines)."""
  proto = os.fdopen(os.dup(1), 'w')
  os.dup2(2, 1)  # anything the libraries print goes to stderr, not the protocol

  def send(obj):
    proto.write(json.dumps(obj) + '\n')
    proto.flush()

  try:
    cases = (_jax_worker if args.worker == 'project' else _torch_worker)(args)
    for case in cases:
      for _ in range(args.warmup):
        case.fn()
    _release_free_host_memory()  # as the trainer does after compiling; both sides
  except Exception as e:  # pylint: disable=broad-except
    send({'error': f'{type(e).__name__}: {e}'})
    raise
  by_name = {c.name: c for c in cases}
  build_peak = _rss_kib('VmHWM')
  steady = _reset_peak_rss()
  send({'ready': True, 'cases': [c.name for c in cases],
        'flops': {c.name: c.flops for c in cases}})
  for line in sys.stdin:
    cmd = line.split()
    if cmd and cmd[0] == 'time':
      case, n = by_name[cmd[1]], int(cmd[2])
      times = []
      for _ in range(n):
        t0 = time.perf_counter()
        case.fn()
        times.append(time.perf_counter() - t0)
      send({'times': times})
    elif cmd and cmd[0] == 'quit':
      # VmHWM, not getrusage: ru_maxrss carries the parent's peak over fork + exec.
      steps_peak = _rss_kib('VmHWM') if steady else None
      send({'rss_process_kib': max(build_peak, steps_peak or 0) or
                               resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            'rss_steps_kib': steps_peak})
      return


# ---------------------------------------------------------------------------
# Parent: inputs, the worker pairs, alternation, report.
# ---------------------------------------------------------------------------


def write_workdir(workdir: str, ik_batches: Sequence[int]) -> str:
  """model_files/ for the released code and the IK inputs (.npz); returns its path."""
  from benchmarks import ik as ik_bench  # pylint: disable=g-import-not-at-top
  from hybrik_jax.body import smpl_io  # pylint: disable=g-import-not-at-top
  from hybrik_jax.body import synthetic_body  # pylint: disable=g-import-not-at-top
  body = synthetic_body.synthetic_smpl_model(0)
  files = os.path.join(workdir, 'model_files')
  os.makedirs(files, exist_ok=True)
  smpl_io.save_smpl_pkl(body, os.path.join(files, _SMPL_PKL))
  np.save(os.path.join(files, 'J_regressor_h36m.npy'),
          np.asarray(body.J_regressor_h36m, np.float64))
  np.save(os.path.join(files, 'h36m_mean_beta.npy'), np.zeros(10, np.float32))
  arrays = {}
  rng = np.random.default_rng(1)
  for batch in ik_batches:
    betas, _, joints29, phis = ik_bench._inputs(body, batch)  # pylint: disable=protected-access
    leaf = rng.normal(size=(batch, 5, 4))
    arrays.update({f'betas_{batch}': np.asarray(betas, np.float32),
                   f'joints_{batch}': np.asarray(joints29[:, :24], np.float32),
                   f'phis_{batch}': np.asarray(phis, np.float32),
                   f'leaf_{batch}': (leaf / np.linalg.norm(leaf, axis=-1, keepdims=True)
                                     ).astype(np.float32)})
  path = os.path.join(workdir, 'ik_inputs.npz')
  np.savez(path, **arrays)
  return path


class _Worker:
  """A worker subprocess speaking JSON lines."""

  def __init__(self, side: str, args, part: str, ik_inputs: str, workdir: str):
    self.side = side
    cmd = [sys.executable, '-m', 'benchmarks.vs_reference', '--worker', side, '--part', part,
           '--config', args.config, '--batch-size', str(args.batch_size),
           '--input-size', str(args.input_size), '--warmup', str(args.warmup),
           '--threads', str(args.threads), '--ik-batches', ','.join(map(str, args.ik_batches)),
           '--ik-inputs', ik_inputs, '--workdir', workdir, '--backbone', args.backbone]
    if args.reference_repo:
      cmd += ['--reference-repo', args.reference_repo,
              '--deconv-reference-repo', args.deconv_reference_repo or args.reference_repo]
    self.log = tempfile.TemporaryFile(mode='w+')
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env['PYTHONPATH'] = root + os.pathsep + env.get('PYTHONPATH', '')
    self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=self.log, text=True, cwd=root, env=env)

  def receive(self) -> dict[str, Any]:
    line = self.proc.stdout.readline()
    if not line:
      self.proc.wait()
      self.log.seek(0)
      tail = [l for l in self.log.read().splitlines() if l.strip()][-1:] or ['(no output)']
      raise RuntimeError(f'{self.side} worker exited with code {self.proc.returncode}: '
                         f'{tail[0]}')
    msg = json.loads(line)
    if 'error' in msg:
      raise RuntimeError(f"{self.side} worker: {msg['error']}")
    return msg

  def send(self, command: str) -> dict[str, Any]:
    self.proc.stdin.write(command + '\n')
    self.proc.stdin.flush()
    return self.receive()

  def close(self):
    with contextlib.suppress(Exception):
      self.proc.kill()
    self.proc.wait()


def run_part(args, part: str, ik_inputs: str, workdir: str, log) -> dict[str, Any]:
  """Both sides of one part, alternated; the part's JSON result."""
  sides = ['project'] + ([] if args.project_only else ['reference'])
  workers = {}
  try:
    for side in sides:  # started together: both build while the other one does
      workers[side] = _Worker(side, args, part, ik_inputs, workdir)
    ready = {side: w.receive() for side, w in workers.items()}
    log(f'[vs_reference] {part}: built and warmed up ({", ".join(sides)})')
    cases = [c for c in ready['project']['cases'] if c != MATMUL]
    times = {side: {c: [] for c in cases + [MATMUL]} for side in sides}
    for r in range(args.rounds):
      order = sides if r % 2 == 0 else sides[::-1]
      for case in cases + [MATMUL]:
        for side in order:
          n = 3 if case == MATMUL else args.steps
          times[side][case] += workers[side].send(f'time {case} {n}')['times']
      log(f'[vs_reference] {part}: round {r + 1}/{args.rounds} ' + '  '.join(
          f'{s} {statistics.median(times[s][c]):.3f} s' for c in cases[-1:] for s in sides))
    rss = {side: w.send('quit') for side, w in workers.items()}
  finally:
    for w in workers.values():
      w.close()
  out = {'cases': {}, 'rss': rss,
         'matmul_flops_per_s': {s: 2.0 * _MATMUL_N**3 / statistics.median(times[s][MATMUL])
                                for s in sides}}
  for case in cases:
    row = {'times_s': {s: times[s][case] for s in sides},
           'median_s': {s: statistics.median(times[s][case]) for s in sides},
           'flops': {s: ready[s]['flops'][case] for s in sides}}
    row['model_flops'] = (row['flops']['reference'] if 'reference' in sides
                          and row['flops']['reference'] > 0 else row['flops']['project'])
    if 'reference' in sides:
      row['ratio'] = row['median_s']['project'] / row['median_s']['reference']
    out['cases'][case] = row
  return out


def _case_label(part: str, case: str, backbone: str) -> str:
  if part == 'backbone':
    return f'{backbone} forward+backward alone'
  if part == 'ik':
    return f"{PART_NAMES['ik']}, batch {case.split('_')[1]}"
  return PART_NAMES[part]


def format_table(report: dict[str, Any]) -> str:
  """Markdown: time, ratio, GFLOP/s (% of matmul) and peak RSS of both sides."""
  sides = report['sides']
  two = len(sides) == 2
  gib = lambda kib: '-' if not kib else f'{kib / 2**20:.2f}'
  head = ['part', 'project s'] + (['reference s', 'ratio'] if two else [])
  head += ['project GFLOP/s (% mm)'] + (['reference GFLOP/s (% mm)'] if two else [])
  head += ['project peak RSS GiB (steps)'] + (['reference peak RSS GiB (steps)',
                                               'RSS ratio'] if two else [])
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for part, res in report['parts'].items():
    mm = res['matmul_flops_per_s']
    for i, (case, row) in enumerate(res['cases'].items()):
      cells = [_case_label(part, case, report['backbone']), f"{row['median_s']['project']:.4g}"]
      if two:
        cells += [f"{row['median_s']['reference']:.4g}", f"**{row['ratio']:.2f}**"]
      for s in sides:
        rate = row['model_flops'] / row['median_s'][s]
        cells.append('-' if part == 'ik' else
                     f'{rate / 1e9:.0f} ({100 * rate / mm[s]:.0f} %)')
      for s in sides:
        r = res['rss'][s]
        cells.append(f"{gib(r['rss_process_kib'])} ({gib(r['rss_steps_kib'])})" if i == 0 else '')
      if two:
        rp, rr = res['rss']['project'], res['rss']['reference']
        cells.append(f"{rp['rss_process_kib'] / rr['rss_process_kib']:.2f}" if i == 0 else '')
      lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def _parse_args(argv):
  parser = argparse.ArgumentParser(prog='python -m benchmarks.vs_reference',
                                   description=__doc__.split('\n\n')[0])
  parser.add_argument('--reference-repo', default=None,
                      help='checkout of boreshkinai/hybrik-transformer (its root or HybrIK/)')
  parser.add_argument('--deconv-reference-repo', default=None,
                      help='checkout holding Simple3DPoseBaseSMPL24 (default: --reference-repo)')
  parser.add_argument('--project-only', action='store_true',
                      help='time this project only (no reference, no torch)')
  parser.add_argument('--config', default='configs/paper.py', help="this project's config")
  parser.add_argument('--parts', default=','.join(PARTS), help=f'subset of {",".join(PARTS)}')
  parser.add_argument('--batch-size', type=int, default=8)
  parser.add_argument('--input-size', type=int, default=256)
  parser.add_argument('--ik-batches', default='1,64,1024')
  parser.add_argument('--rounds', type=int, default=3, help='alternations of the two sides')
  parser.add_argument('--steps', type=int, default=3, help='timed steps per side and round')
  parser.add_argument('--warmup', type=int, default=2, help='untimed steps after building')
  parser.add_argument('--threads', type=int, default=usable_cpus(),
                      help="torch's threads (default: the CPUs this process may use)")
  parser.add_argument('--out', default=None, help='write the JSON report here')
  # Worker-side flags (internal).
  parser.add_argument('--backbone', default='resnet34', help=argparse.SUPPRESS)
  parser.add_argument('--worker', choices=['project', 'reference'], help=argparse.SUPPRESS)
  parser.add_argument('--part', choices=PARTS, help=argparse.SUPPRESS)
  parser.add_argument('--ik-inputs', help=argparse.SUPPRESS)
  parser.add_argument('--workdir', help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  args.ik_batches = [int(x) for x in str(args.ik_batches).split(',') if x]
  if args.worker:
    return args
  args.parts = [p for p in args.parts.split(',') if p]
  if set(args.parts) - set(PARTS) or not args.parts:
    parser.error(f'--parts: choose from {",".join(PARTS)}, got {",".join(args.parts)}')
  if min(args.batch_size, args.input_size, args.rounds, args.steps, args.threads,
         *args.ik_batches) < 1 or args.warmup < 0 or args.input_size % 32:
    parser.error('need --batch-size, --rounds, --steps, --threads, --ik-batches >= 1, '
                 '--warmup >= 0 and --input-size a multiple of 32')
  if not os.path.isfile(args.config):
    raise UserError(f'--config {args.config!r}: no such file (e.g. configs/paper.py)')
  if args.project_only:
    args.reference_repo = None
  elif not args.reference_repo:
    raise UserError('--reference-repo PATH is required (a checkout of '
                    'boreshkinai/hybrik-transformer), or pass --project-only')
  else:
    released_package_dir(args.reference_repo)
    if args.deconv_reference_repo:
      released_package_dir(args.deconv_reference_repo)
    try:
      import torch  # pylint: disable=g-import-not-at-top,unused-import
    except ImportError as e:
      raise UserError(f'the reference side needs PyTorch ({e}); pip install torch') from e
  args.config = os.path.abspath(args.config)
  from benchmarks import efficiency  # pylint: disable=g-import-not-at-top
  args.backbone = efficiency.load_config(args.config).model.backbone
  if not args.project_only and 'backbone' in args.parts and args.backbone not in (
      'resnet18', 'resnet34', 'resnet50'):
    raise UserError(f'--config {args.config!r}: the released code has no {args.backbone!r} '
                    'backbone to compare with; use configs/paper.py or --project-only')
  return args


def main(argv=None):
  try:
    args = _parse_args(argv)
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  if args.worker:
    worker_main(args)
    return
  log = lambda *a: print(*a, file=sys.stderr, flush=True)
  workdir = tempfile.mkdtemp(prefix='hybrik_vs_reference_')
  try:
    ik_inputs = write_workdir(workdir, args.ik_batches if 'ik' in args.parts else [])
    parts = {}
    for part in args.parts:
      log(f'[vs_reference] {part}: building both sides (compiling takes a while)...')
      try:
        parts[part] = run_part(args, part, ik_inputs, workdir, log)
      except RuntimeError as e:
        print(f'error: {part}: {e}', file=sys.stderr)
        sys.exit(1)
  finally:
    shutil.rmtree(workdir, ignore_errors=True)
  load = list(os.getloadavg()) if hasattr(os, 'getloadavg') else []
  report = {'sides': ['project'] + ([] if args.project_only else ['reference']),
            'config': args.config, 'batch_size': args.batch_size,
            'input_size': args.input_size, 'backbone': args.backbone, 'rounds': args.rounds, 'steps': args.steps,
            'warmup': args.warmup, 'torch_threads': args.threads,
            'reference_repo': args.reference_repo, 'load_average_after': load, 'parts': parts}
  from benchmarks import efficiency  # pylint: disable=g-import-not-at-top
  report['machine'] = efficiency.machine_info()
  mm = {s: statistics.median(p['matmul_flops_per_s'][s] for p in parts.values())
        for s in report['sides']}
  print(f"batch {args.batch_size}, {args.input_size}x{args.input_size}, float32; "
        f"{efficiency.machine_line(report['machine'])}; torch threads {args.threads}; "
        f"medians of {args.rounds} alternated rounds x {args.steps} steps")
  print('2048x2048 f32 matmul: ' + ', '.join(f'{s} {v / 1e9:.0f} GFLOP/s' for s, v in mm.items()))
  print(format_table(report))
  print('ratio = project time / reference time (< 1: this project is faster); '
        'RSS: whole process (timed steps only)')
  if args.out:
    efficiency.write_json(report, args.out)


if __name__ == '__main__':
  main()
