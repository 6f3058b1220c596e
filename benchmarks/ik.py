r"""Speed of HybrIK's analytical IK and of `smpl.hybrik` (IK + skinning).

  python -m benchmarks.ik
  python -m benchmarks.ik --batch-sizes 1,64,1024 --repeats 20 --no-resnet

On the current default device, for each batch size: compile time and samples/s of
  * the IK alone (`ik.inverse_kinematics`, 29 joints), both static schedules:
    joints grouped by tree depth (the default) and one joint at a time;
  * the IK's gradient (w.r.t. skeleton, rest joints and twists; depth schedule);
  * `smpl.hybrik` (rest joints + IK + skinning of 6890 vertices, synthetic body);
and, for comparison, a ResNet-34 forward pass (inference mode) at 256x256 for the
largest batch <= 64 in the list, if `hybrik_jax.models.resnet` is importable.
Times are medians of --repeats runs after one warm-up; compile time is lowering +
XLA compilation. On a shared machine, numbers vary from run to run.
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from hybrik_jax.body import geometry
from hybrik_jax.body import ik
from hybrik_jax.body import kinematics
from hybrik_jax.body import smpl
from hybrik_jax.body import synthetic_body


def _time(fn, args, repeats):
  """(compile seconds, median run seconds) of jitted `fn` on `args`."""
  start = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  compile_s = time.perf_counter() - start
  jax.block_until_ready(compiled(*args))
  runs = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    runs.append(time.perf_counter() - start)
  return compile_s, statistics.median(runs)


def _inputs(model, batch, seed=0):
  rng = np.random.default_rng(seed)
  betas = jnp.asarray(rng.normal(size=(batch, 10)), jnp.float32)
  rot = geometry.axis_angle_to_matrix(
      jnp.asarray(rng.normal(size=(batch, 24, 3)) * 0.5, jnp.float32))
  rest = smpl.rest_joints29(model, betas)
  joints, _ = kinematics.forward_kinematics(rot, rest)
  joints = joints - joints[:, :1]
  phis = ik.twist_angles(rot, rest)
  return betas, rest, joints, phis


def _resnet34_forward(batch, repeats):
  try:
    from hybrik_jax.models import resnet  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    return None, f'hybrik_jax.models.resnet not available ({e})'
  net = resnet.ResNet34()
  images = jnp.zeros((batch, 256, 256, 3), jnp.float32)
  variables = jax.jit(lambda x: net.init(jax.random.key(0), x, train=False))(images[:1])
  fn = lambda v, x: net.apply(v, x, train=False)
  return _time(fn, (variables, images), repeats), None


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch-sizes', default='1,64,1024')
  parser.add_argument('--repeats', type=int, default=20)
  parser.add_argument('--no-resnet', action='store_true')
  args = parser.parse_args()
  batch_sizes = [int(b) for b in args.batch_sizes.split(',')]

  print(f'device: {jax.devices()[0].device_kind} ({jax.default_backend()}), '
        f'jax {jax.__version__}')
  model = synthetic_body.synthetic_smpl_model()

  def ik_grad(joints, rest, phis):
    return jax.grad(lambda *a: jnp.sum(ik.inverse_kinematics(*a)**2), (0, 1, 2))(
        joints, rest, phis)

  rows = []
  for batch in batch_sizes:
    betas, rest, joints, phis = _inputs(model, batch)
    cases = {
        'IK (depth groups)': (ik.inverse_kinematics, (joints, rest, phis)),
        'IK (joint by joint)': (
            lambda j, r, p: ik.inverse_kinematics(j, r, p, groups=ik.JOINT_GROUPS),
            (joints, rest, phis)),
        'IK gradient': (ik_grad, (joints, rest, phis)),
        'hybrik (IK + skinning)': (
            lambda b, j, p: smpl.hybrik(model, b, j, p).vertices, (betas, joints, phis)),
    }
    for name, (fn, fn_args) in cases.items():
      compile_s, run_s = _time(fn, fn_args, args.repeats)
      rows.append((name, batch, compile_s, run_s))
      print(f'{name:24s} batch {batch:5d}: compile {compile_s:6.2f} s, '
            f'{run_s * 1e3:9.3f} ms/batch, {batch / run_s:12.0f} samples/s', flush=True)

  if args.no_resnet:
    return
  ref_batch = max([b for b in batch_sizes if b <= 64] or [min(batch_sizes)])
  timing, why_not = _resnet34_forward(ref_batch, max(3, args.repeats // 4))
  if timing is None:
    print(f'ResNet-34 comparison skipped: {why_not}')
    return
  compile_s, run_s = timing
  print(f'{"ResNet-34 fwd 256x256":24s} batch {ref_batch:5d}: compile {compile_s:6.2f} s, '
        f'{run_s * 1e3:9.3f} ms/batch, {ref_batch / run_s:12.0f} samples/s')
  for name, batch, _, ik_s in rows:
    if batch == ref_batch:
      print(f'  {name} / ResNet-34 forward at batch {batch}: {ik_s / run_s:.2e}')


if __name__ == '__main__':
  main()
