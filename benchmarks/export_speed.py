r"""Images per second of the exported artefacts, side by side on this machine.

  python -m benchmarks.export_speed [--model paper|tiny] [--batches 1,8] \
      [--formats stablehlo,savedmodel,onnx] [--steps 5] [--out FILE.json] \
      [--released_repo DIR]

For each batch size, the model (random weights; `--model paper`: the paper's
HT ResNet-34, 256 px; `tiny`: the test model) is exported twice per format by
`hybrik_jax.export` (fixed batch, uint8 crops, no flip test): the network
alone (raw head outputs) and the whole path (network, IK, skinning, 6890
vertices). Each is timed in this process, after one warm-up call, by its own
runtime (jax.export.deserialize for StableHLO, tf.saved_model.load for the
SavedModel, onnxruntime for ONNX) against `jax.jit` of the same function: the
median of --steps calls, reported as images/s. The runtimes share this
process's CPUs; each is timed alone.

"released PyTorch" (--model paper with --released_repo DIR, a checkout of
boreshkinai/hybrik-transformer you fetched yourself; imported at run time from
DIR only, never modified; torch needed): its HybrikTransformerSMPL24
(hybrik_transformer_smpl24.yaml: ResNet-34, 256 px) with random weights, eval
mode, torch.no_grad, on CPU with as many threads as this process may use, its
SMPL files this project's synthetic body (benchmarks.vs_reference writes them);
crops and the same camera as the other rows. "network + IK + mesh" is its
forward as it is; "network" is the same forward with its SMPL layer's `hybrik`
(IK and skinning) replaced by zeros of the right shapes. Without
--released_repo the row is left out and the benchmark says so.
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


def released_pytorch_rows(repo: str, batches, steps: int, size: int) -> list[dict]:
  """Images/s of the released HybrikTransformerSMPL24 (see the module docstring)."""
  import types  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from benchmarks import vs_reference  # pylint: disable=g-import-not-at-top
  pkg = vs_reference.released_package_dir(repo)
  torch.set_num_threads(vs_reference.usable_cpus())
  vs_reference._install_torch_shims()  # pylint: disable=protected-access
  try:  # imported by its HRNet module (not used by the ResNet-34 model)
    import easydict  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    class EasyDict(dict):
      __getattr__ = dict.__getitem__
    sys.modules['easydict'] = types.ModuleType('easydict')
    sys.modules['easydict'].EasyDict = EasyDict
  yaml_name, cls_name = vs_reference.RELEASED_CONFIGS['transformer']
  rows = []
  cwd = os.getcwd()
  with tempfile.TemporaryDirectory() as work:
    vs_reference.write_workdir(work, ())  # ./model_files: the synthetic body
    sys.path.insert(0, pkg)
    os.chdir(work)
    try:
      from hybrik import models as released  # pylint: disable=g-import-not-at-top
      from hybrik.utils.config import update_config  # pylint: disable=g-import-not-at-top
      cfg = update_config(os.path.join(pkg, 'configs', yaml_name))
      model_cfg = dict(cfg.MODEL)
      model_cfg['IMAGE_SIZE'] = [size, size]
      model_cfg['HEATMAP_SIZE'] = [size // 4, size // 4]
      torch.manual_seed(0)
      model = getattr(released, cls_name)(**model_cfg).eval()
      full_ik = model.smpl.hybrik

      def no_ik(pose_skeleton, **unused):
        b = pose_skeleton.shape[0]
        z = lambda *shape: torch.zeros((b,) + shape, dtype=pose_skeleton.dtype)
        return types.SimpleNamespace(vertices=z(6890, 3), joints=z(24, 3),
                                     joints_from_verts=z(17, 3), rot_mats=z(24, 4))

      rng = np.random.default_rng(0)
      for batch in batches:
        cam = vs_reference.camera_inputs(batch, size)
        t = lambda x: torch.from_numpy(np.ascontiguousarray(x))
        images = t(rng.normal(size=(batch, 3, size, size)).astype(np.float32))
        # The released code's units: mm, and K^-1 as `intrinsic_param`.
        geo = dict(trans_inv=t(cam['trans_inv']),
                   intrinsic_param=t(np.linalg.inv(cam['intrinsics'])),
                   joint_root=t(cam['joint_root'] * 1000),
                   depth_factor=t(cam['depth_factor'] * 1000))
        for part, ik in (('network', no_ik), ('network + IK + mesh', full_ik)):
          model.smpl.hybrik = ik
          with torch.no_grad():
            seconds = _median_seconds(lambda: model(images, **geo), steps)
          rows.append({'runtime': 'released PyTorch', 'part': part, 'batch': batch,
                       'images_per_s': batch / seconds,
                       'torch': torch.__version__, 'threads': torch.get_num_threads()})
          print(rows[-1], flush=True)
      model.smpl.hybrik = full_ik
    finally:
      os.chdir(cwd)
      sys.path.remove(pkg)
  return rows


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
  parser.add_argument('--released_repo', default=None,
                      help='a checkout of boreshkinai/hybrik-transformer: adds the '
                      '"released PyTorch" row (--model paper only)')
  args = parser.parse_args(argv)
  batches = [int(b) for b in args.batches.split(',')]
  if args.released_repo and args.model != 'paper':
    parser.error('--released_repo times the released paper model: use --model paper')
  if args.released_repo:  # checked before anything is timed
    from benchmarks import vs_reference  # pylint: disable=g-import-not-at-top
    try:
      vs_reference.released_package_dir(args.released_repo)
    except vs_reference.UserError as e:
      print(f'error: {e}'.replace('--reference-repo', '--released_repo'), file=sys.stderr)
      return 2
  rows = run(args.model, batches, [f for f in args.formats.split(',') if f], args.steps)
  if args.released_repo:
    rows += released_pytorch_rows(args.released_repo, batches, args.steps,
                                  int(models.get_model_config().input_size))
  else:
    print('released PyTorch: not timed (give --released_repo DIR, a checkout of '
          'boreshkinai/hybrik-transformer)', flush=True)
  print('| runtime | part | batch | images/s |\n|---|---|---|---|')
  for r in rows:
    print(f"| {r['runtime']} | {r['part']} | {r['batch']} | {r['images_per_s']:.2f} |")
  if args.out:
    with open(args.out, 'w') as f:
      json.dump({'model': args.model, 'cpus': os.cpu_count(),
                 'load_average': os.getloadavg(), 'rows': rows}, f, indent=1)
  return 0


if __name__ == '__main__':
  sys.exit(main())
