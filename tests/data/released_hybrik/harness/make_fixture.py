"""A test fixture from a ref.py run with a low-rank fitted head (fit.py --rank).

  python make_fixture.py --run RUN --fit FIT.npz --out FIXTURE.npz

Stores what a test needs to rebuild the released model's weights (the recipe's
keys, shapes, abs sums and seed; the fit's low-rank factors, biases and the
decphi gain), the inputs (seeds, boxes) and every output of every case.
"""
import argparse

import numpy as np

p = argparse.ArgumentParser()
p.add_argument('--run', required=True)
p.add_argument('--fit', required=True)
p.add_argument('--cls', choices=['simple', 'hrnet'], default='simple')
p.add_argument('--out', required=True)
args = p.parse_args()
run = dict(np.load(f'{args.run}/released.npz'))
fit = dict(np.load(args.fit))
low = dict(np.load(args.fit + '.lowrank.npz'))
prefix = 'preact.' if args.cls == 'hrnet' else ''
assert np.array_equal(low['bias'], fit[prefix + 'final_layer.bias'])
images = np.random.default_rng(int(run['images_seed'])).normal(
    0, 1, (run['bboxes'].shape[0], 3, 256, 256)).astype(np.float32)
out = dict(
    keys=run['keys'], shapes=run['shapes'], weight_abs_sums=run['weight_abs_sums'],
    weight_seed=np.int64(0 if args.cls == 'simple' else 1),
    images_seed=np.int64(run['images_seed']), images_shape=np.array(images.shape, np.int64),
    images_abs_sum=np.abs(images).astype(np.float64).sum(),
    bboxes=run['bboxes'], img_center=run['img_center'], depth_factor_m=np.float64(2.2),
    **{'fit/lowrank_a': low['a'], 'fit/lowrank_b': low['b'],
       'fit/final_layer_bias': low['bias'], 'fit/decphi_bias': fit['decphi.bias'],
       'fit/decphi_gain': np.float64(0.01)})
for k, v in run.items():
  if '/' in k and 'logits' not in k:
    case, name = k.split('/', 1)
    out[f'{case}/{"pred_vertices_every50" if name == "pred_vertices" else name}'] = v
np.savez_compressed(args.out, **out)
print('wrote', args.out, sum(v.nbytes for v in out.values()), 'bytes uncompressed')
