r"""Speed of HybrIK-X's SMPL-X IK and of `ik_smplx.hybrik` (IK + skinning), and the released layer.

  python -m benchmarks.ik_smplx
  python -m benchmarks.ik_smplx --batch-sizes 1,64,1024 --repeats 10 \
      --reference-dir /path/to/exported/Jeff-sjtu/HybrIK

For each batch size, on the default JAX device (CPU here):
  * IK        `ik_smplx.inverse_kinematics`: 71 target joints + 54 twists + the shaped
              rest skeleton -> 55 local rotations (--mode, default 'eval');
  * IK + skin `ik_smplx.hybrik`: shape blend, the IK, SMPL-X skinning of 10,475
              vertices, the 127 joints (what the networks' decoders call);
compile time (lowering + XLA compilation) and samples/s, medians of --repeats runs
after one warm-up.

With --reference-dir (a checkout or `git archive` of Jeff-sjtu/HybrIK, whose
`hybrik/models/layers/smplx/` is imported at run time from there; nothing of it is
part of this project), the released code runs as it is on the same inputs, in
PyTorch on the CPU (float32, torch.no_grad(), layer.eval()), timed alternately with
this project's (per case, a block of --repeats runs of each side, one right after the
other, so both see about the same machine load):
  * IK        `lbs.batch_inverse_kinematics_transform_naive` as `lbs.hybrik` calls it
              (rest skeleton given);
  * IK + skin `SMPLXLayer.hybrik`, the layer built as HRNetSMPLXCamKid builds it;
and the speed ratio (released time / this project's time: > 1 means this project is
faster). The released layer's vertices are compared with this project's as a check
that both ran the same body and inputs. Only for the reference run: torch must be
installed; `pytorch3d.transforms.rotation_conversions` (imported by the released
lbs.py; its two functions are called by the 'eval' jaw) is replaced, in this process
only, by two small torch functions written here from their definitions, and
`easydict` (which the released layer returns its output in) by a minimal attribute
dict when it is not installed.

Inputs: the synthetic SMPL-X body (or --smplx SMPLX_NEUTRAL.npz [--kid-template
.npy]); per sample random shape (10 betas N(0, 1), kid blend U(0, 1)), expression
N(0, 1), a pose (root axis-angle N(0, 1), the other 54 joints N(0, 0.35) per
component); the posed body's 55 joints and 16 leaf vertices, root-relative, are the
target skeleton and the pose's own twists the phis, so the IK solves a realistic body.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import types

import jax
import jax.numpy as jnp
import numpy as np

from hybrik_jax import errors
from hybrik_jax.body import geometry
from hybrik_jax.body import ik_smplx
from hybrik_jax.body import smplx as sx
from hybrik_jax.body import smplx_constants as xc
from hybrik_jax.body import smplx_io
from hybrik_jax.body import synthetic_smplx


def make_inputs(model: sx.SMPLXModel, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
  """Float32 numpy inputs of both sides for `batch` random bodies (module docstring).

  Returns betas (B, NB [+1]), expression (B, NE), skel71 (B, 71, 3) m root-relative,
  phis (B, 54, 2) (cos, sin), rest71 (B, 71, 3) m (the shaped rest skeleton).
  """
  rng = np.random.default_rng(seed)
  nb = model.shapedirs.shape[-1]
  betas = rng.normal(size=(batch, nb))
  if model.kid_dir is not None:
    betas = np.concatenate([betas, rng.uniform(0, 1, (batch, 1))], 1)
  expression = rng.normal(size=(batch, model.num_expression))
  aa = rng.normal(0, 0.35, (batch, xc.NUM_JOINTS, 3))
  aa[:, 0] = rng.normal(0, 1.0, (batch, 3))
  betas, expression = (jnp.asarray(x, jnp.float32) for x in (betas, expression))

  @jax.jit
  def pose(betas, expression, aa):
    rot = geometry.axis_angle_to_matrix(aa)
    out = sx.skin(model, betas, rot, expression)
    skel = jnp.concatenate([out.joints, sx.leaf_joints(model, out.vertices)], 1)
    rest = ik_smplx.rest_joints71(model, betas, expression)
    child = np.asarray([ik_smplx._CHILDREN[i][0] for i in range(1, xc.NUM_JOINTS)])  # pylint: disable=protected-access
    parent = np.arange(1, xc.NUM_JOINTS)
    phis = geometry.twist_about(rot[:, 1:], rest[:, child] - rest[:, parent])
    return skel - skel[:, :1], phis, rest

  skel, phis, rest = pose(betas, expression, jnp.asarray(aa, jnp.float32))
  f32 = lambda x: np.asarray(x, np.float32)
  return dict(betas=f32(betas), expression=f32(expression), skel71=f32(skel),
              phis=f32(phis), rest71=f32(rest))


# ----------------------------------------------------------------------------------
# The released layer (only with --reference-dir; torch imported here only).


def _rotation_conversions_standin(torch):
  """A module with pytorch3d's `axis_angle_to_matrix` and `matrix_to_axis_angle`."""

  def axis_angle_to_matrix(aa):
    angle = torch.linalg.norm(aa, dim=-1, keepdim=True)
    axis = aa / torch.clamp(angle, min=1e-12)
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(aa.shape + (3,))
    s, c = torch.sin(angle)[..., None], torch.cos(angle)[..., None]
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand(k.shape)
    return eye + s * k + (1 - c) * (k @ k)

  def matrix_to_axis_angle(m):
    # Unit quaternion by the largest of 4|w|^2, 4|x|^2, 4|y|^2, 4|z|^2 (stable),
    # w >= 0, then angle 2 atan2(|v|, w) in [0, pi] along v / |v|.
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    r21, r12 = m[..., 2, 1], m[..., 1, 2]
    r02, r20 = m[..., 0, 2], m[..., 2, 0]
    r10, r01 = m[..., 1, 0], m[..., 0, 1]
    cands = torch.stack([
        torch.stack([1 + m00 + m11 + m22, r21 - r12, r02 - r20, r10 - r01], -1),
        torch.stack([r21 - r12, 1 + m00 - m11 - m22, r01 + r10, r02 + r20], -1),
        torch.stack([r02 - r20, r01 + r10, 1 - m00 + m11 - m22, r12 + r21], -1),
        torch.stack([r10 - r01, r02 + r20, r12 + r21, 1 - m00 - m11 + m22], -1),
    ], -2)  # row k: 4 q_k q (q_k > 0)
    diag = torch.stack([cands[..., k, k] for k in range(4)], -1)
    best = torch.argmax(diag, -1)
    q = torch.gather(cands, -2, best[..., None, None].expand(best.shape + (1, 4)))[..., 0, :]
    q = q / torch.linalg.norm(q, dim=-1, keepdim=True)
    q = torch.where(q[..., :1] < 0, -q, q)
    vnorm = torch.linalg.norm(q[..., 1:], dim=-1, keepdim=True)
    angle = 2 * torch.atan2(vnorm, q[..., :1])
    return q[..., 1:] * angle / torch.clamp(vnorm, min=1e-12)

  module = types.ModuleType('pytorch3d.transforms.rotation_conversions')
  module.axis_angle_to_matrix = axis_angle_to_matrix
  module.matrix_to_axis_angle = matrix_to_axis_angle
  return module


def _released_package_dir(reference_dir: str) -> str:
  for candidate in (reference_dir, os.path.join(reference_dir, 'HybrIK')):
    if os.path.isfile(os.path.join(candidate, 'hybrik', 'models', 'layers', 'smplx',
                                   'body_models.py')):
      return os.path.abspath(candidate)
  raise errors.InputError(
      f'--reference-dir {reference_dir!r}: no hybrik/models/layers/smplx/body_models.py in '
      'it; pass a checkout (or git archive) of Jeff-sjtu/HybrIK')


def released_smplx(reference_dir: str):
  """(torch, body_models, lbs) of the released code, its smplx layer imported alone.

  The parent packages `hybrik`, `hybrik.models`, `hybrik.models.layers` are bare
  namespace modules here (their __init__ files build the networks and import
  torchvision, cv2, ...), so only `hybrik/models/layers/smplx/` is executed.
  """
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise errors.InputError(f'--reference-dir needs PyTorch (pip install torch): {e}') from e
  root = _released_package_dir(reference_dir)
  for name, sub in (('hybrik', 'hybrik'), ('hybrik.models', 'hybrik/models'),
                    ('hybrik.models.layers', 'hybrik/models/layers'),
                    ('hybrik.models.layers.smplx', 'hybrik/models/layers/smplx')):
    if name not in sys.modules:
      pkg = types.ModuleType(name)
      pkg.__path__ = [os.path.join(root, sub)]
      sys.modules[name] = pkg
  p3d = types.ModuleType('pytorch3d')
  p3d_t = types.ModuleType('pytorch3d.transforms')
  p3d_rc = _rotation_conversions_standin(torch)
  p3d.transforms, p3d_t.rotation_conversions = p3d_t, p3d_rc
  sys.modules.setdefault('pytorch3d', p3d)
  sys.modules.setdefault('pytorch3d.transforms', p3d_t)
  sys.modules.setdefault('pytorch3d.transforms.rotation_conversions', p3d_rc)
  try:
    import easydict  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    class EasyDict(dict):
      __getattr__ = dict.__getitem__
    sys.modules['easydict'] = types.ModuleType('easydict')
    sys.modules['easydict'].EasyDict = EasyDict
  import importlib  # pylint: disable=g-import-not-at-top
  body_models = importlib.import_module('hybrik.models.layers.smplx.body_models')
  lbs = importlib.import_module('hybrik.models.layers.smplx.lbs')
  return torch, body_models, lbs


class Released:
  """The released SMPLXLayer and its IK on one model file, float32, eval mode."""

  def __init__(self, reference_dir: str, npz: str, kid: str | None, threads: int | None):
    self.torch, body_models, self.lbs = released_smplx(reference_dir)
    if threads:
      self.torch.set_num_threads(threads)
    kw = dict(age='kid', kid_template_path=kid) if kid else {}
    self.layer = body_models.SMPLXLayer(model_path=npz, num_betas=10, use_pca=False,
                                        gender='neutral', ext='npz', **kw)
    self.layer.eval()

  def tensors(self, inputs):
    return {k: self.torch.from_numpy(np.array(v)) for k, v in inputs.items()}

  def hybrik(self, t, naive):
    with self.torch.no_grad():
      return self.layer.hybrik(betas=t['betas'], expression=t['expression'],
                               pose_skeleton=t['skel71'], phis=t['phis'], naive=naive)

  def ik(self, t, naive):
    layer = self.layer
    with self.torch.no_grad():
      return self.lbs.batch_inverse_kinematics_transform_naive(
          t['skel71'].clone(), t['phis'].clone(), t['rest71'].clone(),
          layer.children_map.clone(), layer.extended_parents.clone(),
          dtype=self.torch.float32, train=False, leaf_thetas=None, naive=naive)


# ----------------------------------------------------------------------------------


def _compile(fn, args):
  start = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  return compiled, time.perf_counter() - start


def _timed(fn) -> float:
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def run(model, batch_sizes, repeats, mode='eval', released=None, seed=0, log=print):
  """Times every case; returns rows of dicts (batch, case, compile_s, ours_s, ref_s, ...)."""
  rows = []
  for batch in batch_sizes:
    inputs = make_inputs(model, batch, seed)
    j = {k: jnp.asarray(v) for k, v in inputs.items()}
    ik_fn, ik_compile = _compile(
        lambda s, p, r: ik_smplx.inverse_kinematics(s, p, r, mode),
        (j['skel71'], j['phis'], j['rest71']))
    full_fn, full_compile = _compile(
        lambda b, e, s, p: ik_smplx.hybrik(model, b, s, p, e, mode=mode),
        (j['betas'], j['expression'], j['skel71'], j['phis']))
    ours = {
        'IK': (ik_compile, lambda: jax.block_until_ready(
            ik_fn(j['skel71'], j['phis'], j['rest71']))),
        'IK + skinning': (full_compile, lambda: jax.block_until_ready(
            full_fn(j['betas'], j['expression'], j['skel71'], j['phis']))),
    }
    ref = {}
    check = None
    if released is not None:
      t = released.tensors(inputs)
      if mode == 'train':
        raise errors.InputError("mode 'train' is not timed against the released layer")
      naive = mode == 'naive'
      ref = {'IK': lambda: released.ik(t, naive),
             'IK + skinning': lambda: released.hybrik(t, naive)}
      out_ref = released.hybrik(t, naive)
      out = full_fn(j['betas'], j['expression'], j['skel71'], j['phis'])
      check = float(np.abs(np.asarray(out.vertices) - out_ref['vertices'].numpy()).max())
      log(f'batch {batch}: released vs this project, vertices max abs diff {check:.2e} m')
    # Per case, a block of runs of each side, one right after the other (a warm-up
    # first): alternating single runs would let one framework's worker threads, still
    # spinning after its run, slow the other's next one.
    times = {case: ([], []) for case in ours}
    for case, (_, fn) in ours.items():
      for side, f in ((0, fn), (1, ref.get(case))):
        if f is not None:
          f()
          times[case][side].extend(_timed(f) for _ in range(repeats))
    for case, (compile_s, _) in ours.items():
      mine, theirs = times[case]
      row = dict(batch=batch, case=case, compile_s=compile_s,
                 ours_s=statistics.median(mine),
                 ref_s=statistics.median(theirs) if theirs else None,
                 vertex_diff_m=check if case == 'IK + skinning' else None)
      rows.append(row)
      line = (f'{case:14s} batch {batch:5d}: compile {compile_s:6.2f} s, '
              f'{row["ours_s"] * 1e3:9.3f} ms, {batch / row["ours_s"]:10.0f} samples/s')
      if row['ref_s'] is not None:
        line += (f' | released {row["ref_s"] * 1e3:9.3f} ms, '
                 f'{batch / row["ref_s"]:10.0f} samples/s, x{row["ref_s"] / row["ours_s"]:.2f}')
      log(line)
  return rows


def format_table(rows) -> str:
  """Markdown table of `run`'s rows."""
  ref = any(r['ref_s'] is not None for r in rows)
  head = '| case | batch | compile (s) | ms / batch | samples/s |'
  sep = '|---|---:|---:|---:|---:|'
  if ref:
    head += ' released ms / batch | released samples/s | speed-up |'
    sep += '---:|---:|---:|'
  lines = [head, sep]
  for r in rows:
    line = (f'| {r["case"]} | {r["batch"]} | {r["compile_s"]:.2f} | {r["ours_s"] * 1e3:.3f} '
            f'| {r["batch"] / r["ours_s"]:,.0f} |')
    if ref:
      line += (f' {r["ref_s"] * 1e3:.3f} | {r["batch"] / r["ref_s"]:,.0f} '
               f'| **{r["ref_s"] / r["ours_s"]:.2f}x** |')
    lines.append(line)
  return '\n'.join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch-sizes', default='1,64,1024')
  parser.add_argument('--repeats', type=int, default=10)
  parser.add_argument('--mode', default='eval', choices=ik_smplx.MODES)
  parser.add_argument('--reference-dir', help='an exported Jeff-sjtu/HybrIK tree')
  parser.add_argument('--smplx', help='SMPLX_NEUTRAL.npz (default: the synthetic body)')
  parser.add_argument('--kid-template', help='smplx_kid_template.npy for --smplx')
  parser.add_argument('--threads', type=int, help='torch threads (default: torch\'s)')
  args = parser.parse_args(argv)
  try:
    batch_sizes = [int(b) for b in args.batch_sizes.split(',')]
  except ValueError:
    parser.error(f'--batch-sizes: comma-separated integers, got {args.batch_sizes!r}')
  if min(batch_sizes) < 1 or args.repeats < 1:
    parser.error('need --batch-sizes and --repeats >= 1')
  if args.reference_dir and args.mode == 'train':
    parser.error("--mode train is not timed against the released layer (its train mode "
                 "is layer.train()); use eval or naive")
  try:
    if args.reference_dir:
      _released_package_dir(args.reference_dir)  # a wrong path fails before any work
    with tempfile.TemporaryDirectory() as tmp:
      if args.smplx:
        model = smplx_io.load_smplx(args.smplx, kid_template=args.kid_template)
        npz, kid = args.smplx, args.kid_template
      else:
        model = synthetic_smplx.synthetic_smplx_model(0)
        npz = kid = None
        if args.reference_dir:
          paths = synthetic_smplx.write_synthetic_smplx(tmp, 0, kinds=('npz',))
          npz, kid = paths['npz'], paths['kid']
      released = None
      if args.reference_dir:
        if not npz.endswith('.npz'):
          raise errors.InputError(f'--smplx {npz!r}: the released layer reads .npz here')
        released = Released(args.reference_dir, npz, kid, args.threads)
      print(f'device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax '
            f'{jax.__version__}' + (f'; torch {released.torch.__version__}, '
                                   f'{released.torch.get_num_threads()} threads'
                                   if released else '') + f'; mode {args.mode}', flush=True)
      rows = run(model, batch_sizes, args.repeats, args.mode, released,
                 log=lambda s: print(s, flush=True))
  except errors.InputError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print()
  print(format_table(rows))
  return 0


if __name__ == '__main__':
  sys.exit(main())
