"""Fit the heatmap head's last 1x1 conv (and decphi) on cached features so that
the predicted uvd is a plausible body (well-conditioned IK), in JAX, by Adam.

  python fit.py --project WT --feat RUN/features.npz --out FIT.npz [--steps N] [--lr LR]
      [--init FIT0.npz] [--noise S] [--joint_weights] [--no_feature_norm]

docs/FIDELITY.md's fits (features of `ref.py ... --clean_shift --exact_softmax
--features --cases flip_nobbox`; HRNet with `--head_gain 1.5e-4`):
  ResNet-34: --steps 200 --lr 2e-2 --no_feature_norm   (RMS 1.52 px)
  HRNet-W48: --steps 200 --lr 2e-2                     (RMS 2.75 px)
Targets: the synthetic body (joints 0-23 and the five leaf vertices), posed
N(0, 0.2) rad (root N(0, 0.15)), y and z flipped into the camera, u, v = 0.35 x
metres, d = z / 2.2 m, root offset N(0, 0.03), + N(0, noise); rows 2-3 (the
mirrored images) get the mirror (u negated, pairs swapped).
"""
import argparse, sys, time
import numpy as np
p = argparse.ArgumentParser()
p.add_argument('--project', required=True)
p.add_argument('--feat', required=True)
p.add_argument('--out', required=True)
p.add_argument('--steps', type=int, default=300)
p.add_argument('--lr', type=float, default=3e-3)
p.add_argument('--seed', type=int, default=0)
p.add_argument('--init', default='', help='warm start from a fitted.npz')
p.add_argument('--rank', type=int, default=0, help='fit a rank-r update W0 + A @ B instead of W (0: all of W)')
p.add_argument('--noise', type=float, default=0.003, help='uvd noise on the targets (crop units)')
p.add_argument('--joint_weights', action='store_true', help='weight joints by 1 / (bone to parent)^2')
p.add_argument('--no_feature_norm', action='store_true', help='Adam on W itself, not on W x std(features)')
args = p.parse_args()
sys.path.insert(0, args.project)
import jax, jax.numpy as jnp, optax
from hybrik_jax.body import constants, smpl, synthetic_body
from hybrik_jax.models import heatmap_cam_head

f = dict(np.load(args.feat))
prefix = 'preact.' if 'preact.final_layer.weight' in f else ''
W0 = f[prefix + 'final_layer.weight'][:, :, 0, 0]  # (29*64, C)
b0 = f[prefix + 'final_layer.bias']
fs = 1.0 if args.no_feature_norm else float(f['hm_in'].std())  # fit in normalised feature units: W' = W * fs
feats = jnp.asarray(f['hm_in'].transpose(0, 2, 3, 1) / fs)  # (N, 64, 64, C)
n = feats.shape[0]; b = n // 2
rng = np.random.default_rng(args.seed)

# Targets: the synthetic body, slightly posed, in the crop (u, v ~ 0.35 / m, d = z / 2.2 m).
body = synthetic_body.synthetic_smpl_model(0)
pose = rng.normal(0, 0.2, (b, 24, 3)); pose[:, 0] = rng.normal(0, 0.15, (b, 3))
out = smpl.forward(body, jnp.zeros((b, 10)), jnp.asarray(pose, jnp.float32))
j29 = np.concatenate([np.asarray(out.joints), np.asarray(out.vertices)[:, list(constants.LEAF_VERTEX_IDS)]], 1)
j29 = j29 - j29[:, :1]
cam = j29 * np.array([1, -1, -1])  # body y up, facing +z -> camera y down
uvd = np.stack([0.35 * cam[..., 0], 0.35 * cam[..., 1], cam[..., 2] / 2.2], -1)
uvd = uvd + np.concatenate([rng.normal(0, 0.03, (b, 1, 2)), np.zeros((b, 1, 1))], -1)
uvd = uvd + rng.normal(0, args.noise, uvd.shape)
mirror = uvd[:, list(constants.FLIP_PERM_29)] * np.array([-1, 1, 1])
target = jnp.asarray(np.concatenate([uvd, mirror]), jnp.float32)  # (N, 29, 3)
print('target uvd range', float(target.min()), float(target.max()))

def weight(params):
  if args.rank:
    return jnp.asarray(W0 * fs, jnp.float32) + params['a'] @ params['bb']
  return params['w']


def predict(params):
  logits = jnp.einsum('nhwc,oc->nhwo', feats, weight(params)) + params['b']
  logits = logits.reshape(n, 64, 64, 29, 64)
  return heatmap_cam_head.heatmaps_to_uvd(logits, False)

# Joint weights ~ 1 / (bone to parent)^2: short bones (hands, feet, leaves) set the IK's conditioning.
parents29 = constants.SMPL29_PARENTS
rest = np.asarray(j29[0])
bone = np.array([np.linalg.norm(rest[j] - rest[parents29[j]]) if j else 0.1 for j in range(29)])
jw = jnp.asarray(np.minimum((np.median(bone) / bone) ** 2, 25.0) if args.joint_weights else np.ones(29),
                 jnp.float32)[None, :, None]
print('joint weights', np.round(np.asarray(jw).ravel(), 1))

def loss_fn(params):
  u, mx = predict(params)
  return jnp.mean(jw * jnp.square((u - target) * 64.0)) / jnp.mean(jw)

params = {'w': jnp.asarray(W0 * fs), 'b': jnp.asarray(b0)}
if args.rank:
  params = {'a': jnp.zeros((W0.shape[0], args.rank), jnp.float32),
            'bb': jnp.asarray(rng.normal(0, 1 / np.sqrt(W0.shape[1]), (args.rank, W0.shape[1])), jnp.float32),
            'b': jnp.asarray(b0)}
if args.init:
  with np.load(args.init) as g:
    params = {'w': jnp.asarray(g[prefix + 'final_layer.weight'][:, :, 0, 0].astype(np.float64) * fs, jnp.float32),
              'b': jnp.asarray(g[prefix + 'final_layer.bias'])}
opt = optax.adam(args.lr)
state = opt.init(params)
@jax.jit
def step(params, state):
  l, g = jax.value_and_grad(loss_fn)(params)
  upd, state = opt.update(g, state, params)
  return optax.apply_updates(params, upd), state, l
t = time.time()
for i in range(args.steps):
  params, state, l = step(params, state)
  if i % 50 == 0 or i == args.steps - 1:
    print(i, f'rmse {float(l) ** 0.5:.3f} px', f'{time.time() - t:.0f}s', flush=True)
u, mx = predict(params)
print('final max |uvd - target| (crop units)', float(jnp.abs(u - target).max()), 'maxvals', float(mx.min()), float(mx.max()))

# decphi: weight x 0.01, bias unit vectors at angles U(-1, 1) rad (twists of norm ~1).
ang = rng.uniform(-1, 1, 23)
phi_w = (f['decphi.weight'] * 0.01).astype(np.float32)
phi_b = np.stack([np.cos(ang), np.sin(ang)], -1).reshape(-1).astype(np.float32)
phi = f['xc'] @ phi_w.T + phi_b
print('phi norms', np.linalg.norm(phi.reshape(n, 23, 2), axis=-1).min(), np.linalg.norm(phi.reshape(n, 23, 2), axis=-1).max())
if args.rank:  # W = W0 + A @ B, computed in float64 and cast (a test can redo it exactly)
  lr_a = np.asarray(params['a'], np.float32)
  lr_b = (np.asarray(params['bb'], np.float64) / fs).astype(np.float32)
  w_fit = (W0.astype(np.float64) + lr_a.astype(np.float64) @ lr_b.astype(np.float64)).astype(np.float32)
  np.savez(args.out + '.lowrank.npz', a=lr_a, b=lr_b, bias=np.asarray(params['b'], np.float32))
else:
  w_fit = (np.asarray(params['w'], np.float64) / fs).astype(np.float32)
np.savez(args.out, **{prefix + 'final_layer.weight': w_fit[:, :, None, None],
                      prefix + 'final_layer.bias': np.asarray(params['b'], np.float32),
                      'decphi.weight': phi_w, 'decphi.bias': phi_b})
print('wrote', args.out)
