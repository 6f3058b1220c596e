"""Run a released camera class as is; save state dict (.pth), inputs and outputs.

  HYBRIK_SRC=DIR python ref.py --project WT --cls simple|hrnet [--small]
      [--clean_shift] [--exact_softmax] [--double] [--head_gain G]
      [--override fitted.npz] [--features] [--dump] --out OUT [--cases ...]

Weights: `camera_weight_recipe` (tests/test_released_parity.py), then the
entries of --override (fit.py's output). Shims on the instance: the ResNet
class's flip branch feeds decsigma the fc2 output (its evident intent) and gets
HRNetSMPLCam.flip_sigma; --clean_shift: the flipped heatmaps' one-pixel shift out
of place; --exact_softmax: norm_heatmap computed in float64, cast back to float32;
--double: the whole model, its SMPL layer and IK in float64 (the reference).
Writes OUT/model.pth (for `python -m hybrik_jax.convert`), OUT/released.npz
(inputs and outputs per case) and with --features OUT/features.npz.
"""
import argparse
import os
import sys
import time

import numpy as np

import common

p = argparse.ArgumentParser()
p.add_argument('--project', required=True)
p.add_argument('--cls', choices=['simple', 'hrnet'], required=True)
p.add_argument('--small', action='store_true')
p.add_argument('--clean_shift', action='store_true')
p.add_argument('--head_gain', type=float, default=1.0)
p.add_argument('--override', default='')
p.add_argument('--out', required=True)
p.add_argument('--cases', default='noflip_nobbox,noflip_bbox,flip_nobbox,flip_bbox')
p.add_argument('--exact_softmax', action='store_true', help='norm_heatmap in float64, cast back')
p.add_argument('--features', action='store_true', help='save final_layer and decphi inputs')
p.add_argument('--double', action='store_true', help='the whole released model in float64 (reference)')
p.add_argument('--dump', action='store_true', help='save logits / normalised heatmaps')
p.add_argument('--images_seed', type=int, default=5)
p.add_argument('--batch', type=int, default=2)
args = p.parse_args()

common.install_shims()
common.write_body(args.project)
sys.path.insert(0, os.path.join(args.project, 'tests'))
import torch  # noqa: E402
import yaml  # noqa: E402
from easydict import EasyDict as edict  # noqa: E402
from test_released_parity import camera_weight_recipe  # noqa: E402

torch.set_num_threads(1)
os.chdir(common.SRC)
from hybrik.models.simple3dposeSMPLWithCam import Simple3DPoseBaseSMPLCam  # noqa: E402
from hybrik.models.HRNetWithCam import HRNetSMPLCam  # noqa: E402

yml = {'simple': 'configs/256x192_adam_lr1e-3-res34_smpl_3d_cam_2x_mix_w_pw3d.yaml',
       'hrnet': 'configs/256x192_adam_lr1e-3-hrw48_cam_2x_wo_pw3d.yaml'}[args.cls]
cfg = edict(yaml.safe_load(open(yml)))['MODEL']
if args.small:
  if args.cls == 'simple':
    cfg['NUM_LAYERS'] = 18
  else:
    cfg['HRNET_TYPE'] = 'tiny'
cls = Simple3DPoseBaseSMPLCam if args.cls == 'simple' else HRNetSMPLCam
model = cls(**cfg).eval()

HEAD_KERNELS = ('preact.final_layer.weight', 'final_layer.weight', 'decphi.weight',
                'decshape.weight', 'deccam.weight', 'decsigma.weight')
rng = np.random.default_rng(0 if args.cls == 'simple' else 1)
sd = model.state_dict()
new, keys, shapes, sums = {}, [], [], []
for k, v in sd.items():
  if k.startswith('smpl.'):
    continue
  w = camera_weight_recipe(k, list(v.shape), rng)
  if args.head_gain != 1.0 and k in HEAD_KERNELS:
    w = (w * args.head_gain).astype(np.float32)
  keys.append(k); shapes.append(','.join(str(s) for s in v.shape))
  sums.append(np.abs(w).astype(np.float64).sum())
  new[k] = w
if args.override:
  with np.load(args.override) as f:
    for k in f.files:
      assert k in new and new[k].shape == f[k].shape, k
      new[k] = f[k].astype(new[k].dtype)
model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in new.items()}, strict=False)
os.makedirs(args.out, exist_ok=True)
torch.save({k: v for k, v in model.state_dict().items()}, os.path.join(args.out, 'model.pth'))

# Shims on the instance.
if args.cls == 'simple':  # evident intent of the flip branch (README)
  last = {}
  model.fc2.register_forward_hook(lambda m, i, o: last.__setitem__('fc2', o))

  def pre(m, inp):
    if inp[0].shape[1] != m.in_features:
      return (last['fc2'],)
  model.decsigma.register_forward_pre_hook(pre)
  model.flip_sigma = HRNetSMPLCam.flip_sigma.__get__(model)
if args.clean_shift:
  orig = type(model).flip_heatmap

  def flip_heatmap(heatmaps, shift=True):
    h = orig(model, heatmaps, shift=False)
    if shift:
      h = torch.cat([h[..., :1], h[..., :-1]], dim=-1)
    return h
  model.flip_heatmap = flip_heatmap

if args.exact_softmax:
  import hybrik.models.HRNetWithCam as _h, hybrik.models.simple3dposeSMPLWithCam as _s
  for _m in (_h, _s):
    _orig = _m.norm_heatmap
    _m.norm_heatmap = (lambda o: lambda t, h, *a, **k: o(t, h.double(), *a, **k).float())(_orig)
if args.double:
  import hybrik.models.HRNetWithCam as _h, hybrik.models.simple3dposeSMPLWithCam as _s

  import hybrik.models.layers.smpl.lbs as _l

  class _Torch64:  # a module's `torch`, with tensors created as float32 made float64
    def __getattr__(self, n):
      f = getattr(torch, n)
      if n not in ('zeros', 'ones', 'tensor', 'eye', 'arange', 'zeros_like', 'ones_like',
                   'empty', 'full', 'as_tensor'):
        return f

      def g(*a, **k):
        if k.get('dtype') == torch.float32:
          k['dtype'] = torch.float64
        return f(*a, **k)
      return g
  for _m in (_h, _s, _l):
    _m.torch = _Torch64()
  model.double()
  model.smpl_dtype = torch.float64
  model.smpl.dtype = torch.float64
  torch.set_default_dtype(torch.float64)
if args.cls == 'hrnet':  # say when update_scale raises (the released code then keeps the initial scale)
  _us = model.update_scale

  def _update_scale(*a, **k):
    try:
      return _us(*a, **k)
    except RuntimeError as e:
      print('update_scale raised:', str(e).splitlines()[0], flush=True)
      raise
  model.update_scale = _update_scale
dumps = {}
if args.dump:
  head = model.preact if args.cls == 'hrnet' else model.final_layer
  def grab(m, i, o):
    dumps.setdefault('logits', []).append((o[0] if isinstance(o, tuple) else o).detach().numpy().copy())
  head.register_forward_hook(grab)

feats = {}
if args.features:
  fl = model.preact.final_layer if args.cls == 'hrnet' else model.final_layer
  fl.register_forward_hook(lambda m, i, o: feats.setdefault('hm_in', []).append(i[0].detach().numpy().copy()))
  model.decphi.register_forward_hook(lambda m, i, o: feats.setdefault('xc', []).append(i[0].detach().numpy().copy()))
images = np.random.default_rng(args.images_seed).normal(0, 1, (args.batch, 3, 256, 256)).astype(np.float32)
bboxes = np.array([[300, 200, 556, 456], [420, 310, 620, 510]], np.float32)[:args.batch]
img_center = np.array([[500, 400]] * args.batch, np.float32)
res = dict(images_seed=args.images_seed, bboxes=bboxes, img_center=img_center,
           keys=np.array(keys), shapes=np.array(shapes), weight_abs_sums=np.array(sums))
NAMES = ('pred_uvd_jts', 'pred_phi', 'pred_shape', 'pred_camera', 'cam_trans', 'pred_sigma',
         'maxvals', 'scores', 'cam_scale', 'cam_root', 'transl', 'pred_xyz_jts_29',
         'pred_xyz_jts_24_struct', 'pred_xyz_jts_17', 'pred_theta_mats', 'pred_vertices')
for case in args.cases.split(','):
  flip, bbox = case.startswith('flip'), case.endswith('_bbox')
  kw = dict(bboxes=torch.from_numpy(bboxes), img_center=torch.from_numpy(img_center)) if bbox else {}
  dumps.pop('logits', None)
  t = time.time()
  with torch.no_grad():
    x = torch.from_numpy(images)
    if args.double:
      x = x.double(); kw = {k: v.double() for k, v in kw.items()}
    out = model(x, flip_test=flip, **kw)
  print(case, f'{time.time() - t:.1f}s', flush=True)
  for n in NAMES:
    if n in out and out[n] is not None:
      v = out[n].detach().numpy()
      res[f'{case}/{n}'] = v[:, ::50] if n == 'pred_vertices' else v
  if args.dump:
    for i, l in enumerate(dumps.get('logits', [])):
      res[f'{case}/logits{i}'] = l
np.savez(os.path.join(args.out, 'released.npz'), **res)
if args.features:
  np.savez(os.path.join(args.out, 'features.npz'), images=images, **{k: np.concatenate(v) for k, v in feats.items()},
           **{k: new[k] for k in new if 'final_layer' in k or k.startswith('dec')})
print('wrote', args.out)
