"""Float64 integral of the released run's dumped logits vs ours (float32) and theirs.

  python integral64.py --project WT --run out/X
"""
import argparse, os, sys
import numpy as np
p = argparse.ArgumentParser()
p.add_argument('--project', required=True)
p.add_argument('--run', required=True)
args = p.parse_args()
sys.path.insert(0, args.project)
import jax, jax.numpy as jnp
from hybrik_jax.models import heatmap_cam_head
from hybrik_jax.body import constants

fx = dict(np.load(os.path.join(args.run, 'released.npz')))
PERM = np.array(constants.FLIP_PERM_29)

def to_ours(l):  # (B, 29*64, 64, 64) -> (B, H, W, 29, D)
  b = l.shape[0]
  return l.reshape(b, 29, 64, 64, 64).transpose(0, 3, 4, 1, 2)

def softmax64(x):  # (B, H, W, 29, D)
  x = x.astype(np.float64)
  m = x.max(axis=(1, 2, 4), keepdims=True)
  e = np.exp(x - m)
  return e / e.sum(axis=(1, 2, 4), keepdims=True)

def flip64(x):
  x = x[:, :, ::-1][:, :, :, PERM]
  return np.concatenate([x[:, :, :1], x[:, :, :-1]], axis=2)

def integral64(p):
  idx = np.arange(64, dtype=np.float64)
  u = (p.sum((1, 4)) * idx[:, None]).sum(1) / 64 - 0.5   # (B, 29)
  v = (p.sum((2, 4)) * idx[:, None]).sum(1) / 64 - 0.5
  z = (p.sum((1, 2)) * idx[None, :]).sum(-1) / 64 - 0.5
  return np.stack([u, v, z], -1)

for case in sorted({k.split('/')[0] for k in fx if k.endswith('logits0')}):
  flip = case.startswith('flip')
  l0 = to_ours(fx[f'{case}/logits0'])
  if flip:
    l1 = to_ours(fx[f'{case}/logits1'])
    p64 = 0.5 * (softmax64(l0) + softmax64(flip64(l1)))
    ours = heatmap_cam_head.heatmaps_to_uvd(jnp.concatenate([jnp.asarray(l0), jnp.asarray(l1)]), True)
  else:
    p64 = softmax64(l0)
    ours = heatmap_cam_head.heatmaps_to_uvd(jnp.asarray(l0), False, renormalise='cam_trans' in ''.join(fx))
  u64 = integral64(p64)
  mx64 = p64.max(axis=(1, 2, 4))
  theirs = fx[f'{case}/pred_uvd_jts'].reshape(u64.shape)
  o_uvd, o_mx = map(np.asarray, ours)
  sc = np.abs(u64).max()
  print(f'{case}: max|uvd64| {sc:.3f}; logits std {l0.std():.2f} max-min per joint {np.ptp(l0, axis=(1,2,4)).mean():.1f}')
  print(f'  uvd   ours-f64 {np.abs(o_uvd-u64).max():.2e} ({np.abs(o_uvd-u64).max()/sc:.1e} rel)   theirs-f64 {np.abs(theirs-u64).max():.2e} ({np.abs(theirs-u64).max()/sc:.1e} rel)')
  t_mx = fx[f'{case}/maxvals'][..., 0]
  print(f'  maxv  ours-f64 {np.abs(o_mx-mx64).max():.2e}   theirs-f64 {np.abs(t_mx-mx64).max():.2e}  (max {mx64.max():.3e})')
