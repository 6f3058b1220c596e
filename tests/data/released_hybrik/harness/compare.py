"""Convert the released run's state dict with our CLI, run predict, compare.

  python compare.py --project WT --run out/X [--small] [--cls simple|hrnet]
"""
import argparse
import os
import subprocess
import sys

import numpy as np

p = argparse.ArgumentParser()
p.add_argument('--project', required=True)
p.add_argument('--run', required=True)
p.add_argument('--json', default='')
args = p.parse_args()
sys.path.insert(0, args.project)
sys.path.insert(0, os.path.join(args.project, 'tests'))
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

jax.config.update('jax_default_matmul_precision', 'highest')
from hybrik_jax.body import synthetic_body  # noqa: E402
from hybrik_jax.checkpoints import model_dir  # noqa: E402
from hybrik_jax.models import hybrik, inference  # noqa: E402

conv = os.path.join(args.run, 'jax')
if not os.path.exists(conv):
  env = dict(os.environ, PYTHONPATH=args.project)
  subprocess.run([sys.executable, '-m', 'hybrik_jax.convert', '--torch_checkpoint',
                  os.path.join(args.run, 'model.pth'), '--out', conv], check=True, env=env)
variables, cfg = model_dir.load_model(conv)
model = hybrik.create_model(cfg)
smpl = synthetic_body.synthetic_smpl_model(0)
fx = dict(np.load(os.path.join(args.run, 'released.npz')))
cases = sorted({k.split('/')[0] for k in fx if '/' in k})
b = fx['bboxes'].shape[0]
images = np.random.default_rng(int(fx['images_seed'])).normal(0, 1, (b, 3, 256, 256)).astype(np.float32)
images = jnp.asarray(images.transpose(0, 2, 3, 1))
df = cfg.depth_factor
fn = jax.jit(lambda v, x, flip, bb, ic: inference.predict(
    model, v, x, smpl_model=smpl, flip_test=flip, model_config=cfg, bboxes=bb, img_center=ic),
    static_argnums=2)
rows = {}
for case in cases:
  flip, bbox = case.startswith('flip'), case.endswith('_bbox')
  bb = (jnp.asarray(fx['bboxes']), jnp.asarray(fx['img_center'])) if bbox else (None, None)
  out = jax.tree.map(np.asarray, fn(variables, images, flip, *bb))
  cam = out.camera
  g = lambda k: fx[f'{case}/{k}']
  pairs = [
      ('pred_uvd', cam.pred_uvd_29.reshape(b, -1), g('pred_uvd_jts'), 1),
      ('phi', out.pred_phi, g('pred_phi'), 1),
      ('shape', out.pred_shape, g('pred_shape'), 1),
      ('sigma', cam.pred_sigma, g('pred_sigma')[..., 0], 1),
      ('maxvals', cam.maxvals, g('maxvals')[..., 0], 1),
      ('cam_scale', cam.cam_scale, g('cam_scale').reshape(b, 1), 1),
      ('cam_root', cam.cam_root, g('cam_root'), 1),
      ('transl', cam.transl, g('transl'), 1),
      ('xyz29', cam.pred_xyz_29.reshape(b, -1), g('pred_xyz_jts_29') * df, 1),
      ('xyz24', out.pred_xyz_24_struct.reshape(b, -1), g('pred_xyz_jts_24_struct') * df, 1),
      ('xyz17', out.pred_xyz_17.reshape(b, -1), g('pred_xyz_jts_17') * df, 1),
      ('rotmats', out.pred_rotmats.reshape(b, -1), g('pred_theta_mats'), 1),
      ('verts', out.pred_vertices[:, ::50], g('pred_vertices'), 1),
  ]
  if f'{case}/cam_trans' in fx:
    pairs.append(('cam_trans', cam.pred_camera[:, 1:], g('cam_trans'), 1))
  else:
    pairs.append(('pred_camera', cam.pred_camera[:, :1], g('pred_camera'), 1))
  rot = np.abs(np.asarray(out.pred_rotmats, np.float64).reshape(b, 24, 9) - g('pred_theta_mats').reshape(b, 24, 9)).max(-1).max(0)
  print(case, 'rotation error per joint (1e-5):', np.round(rot * 1e5).astype(int).tolist())
  for name, ours, want, _ in pairs:
    ours, want = np.asarray(ours, np.float64), np.asarray(want, np.float64)
    assert ours.shape == want.shape, (name, ours.shape, want.shape)
    d = np.abs(ours - want).max()
    rows.setdefault(name, {})[case] = (d, d / max(np.abs(want).max(), 1e-12))
print(f"{'output':12s}" + ''.join(f'{c:>22s}' for c in cases))
worst = 0
for name, r in rows.items():
  print(f'{name:12s}' + ''.join(f'{r[c][0]:10.1e} /{r[c][1]:8.1e}   ' for c in cases))
  worst = max(worst, max(v[1] for v in r.values()))
print('worst relative', f'{worst:.2e}')
if args.json:
  import json
  json.dump({n: {c: list(map(float, v)) for c, v in r.items()} for n, r in rows.items()},
            open(args.json, 'w'), indent=1)
