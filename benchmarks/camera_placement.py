r"""Where a camera model puts the body: its predicted camera against the demo's 2D fit.

  python -m benchmarks.camera_placement --checkpoint /tmp/hybrik_synthetic_cam \
      [--dataset synthetic_humans/small] [--split validation] [--data_dir DIR] \
      [--max_examples N] [--batch_size 50] [--no-flip_test] [--out results.json]

For a camera model (model.predict_camera: HybrIK's camera heads or the
Transformer head's camera token) on a dataset with ground-truth roots
(synthetic_humans), each example is cropped as the demo crops a person
(`input_pipeline.preprocess_image` of its box, x1.25) and predicted once
(`models.predict`'s network and flip test); the root joint (pelvis) is then
placed in the camera frame in two ways from that one prediction:

  camera   the model's own camera (`models.hybrik.decode_camera` with bboxes =
           the square crop's box and img_center = the principal point, the
           focal length in crop px = f x input_size / crop side): cam_root,
           scale refined where the model refines it (`camera.refines_scale`),
           and also without the refinement ('camera, unrefined').
  2D fit   the demo's placement today (`demos.core.place`: the body's 24
           joints moved to best reproject onto the predicted 2D joints,
           `estimate_translation`, else the box-centre ray at `depth_guess`).

Both with the same intrinsics K, in two settings: 'true K' (the example's own
camera: the placement methods' error) and 'virtual K' (the demo's assumed
camera, `demos.core.virtual_intrinsics`: focal 1000 px per 256 px of crop,
principal point at the image centre, as on an uncalibrated image; the ground
truth is in the true camera, so this adds the focal mismatch to both). Printed:
mean / median root error (mm, 3D) and mean |depth error| (mm) against the
ground-truth pelvis (`joints29_cam[0]`), and how often the 2D fit fell back.
docs/EXPERIMENTS.md has the numbers of configs/synthetic_cam.py.
"""

import argparse
import json
import os
import sys
from typing import Any, Sequence

os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from hybrik_jax import models  # pylint: disable=g-import-not-at-top,wrong-import-position
from hybrik_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top,wrong-import-position
from hybrik_jax.demos import core  # pylint: disable=g-import-not-at-top,wrong-import-position
from hybrik_jax.models import camera as camera_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from hybrik_jax.models import config as model_config_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from hybrik_jax.models import hybrik  # pylint: disable=g-import-not-at-top,wrong-import-position
from hybrik_jax.models import inference  # pylint: disable=g-import-not-at-top,wrong-import-position

METHODS = ('camera', 'camera, unrefined', '2D fit')
SETTINGS = ('true K', 'virtual K')


def make_functions(model_config, smpl_model, flip_test: bool):
  """(network, decode): jitted raw outputs of a batch of crops, and the camera
  decoding of a batch with a per-row focal length (crop px)."""
  model = models.create_model(model_config)
  convention = model_config_lib.ik_convention(model_config)
  input_size = int(model_config['input_size'])
  head = model_config['head']

  @jax.jit
  def network(variables, images):
    if head == 'transformer':
      apply = lambda x: model.apply(variables, x, train=False)
      raw = (hybrik.flip_test(apply, images, convention.leaf_flip_pairs) if flip_test
             else apply(images))
    else:
      raw = model.apply(variables, images, train=False, flip_test=flip_test)
    return inference.float32_outputs(raw)

  def decode_row(raw, focal, bbox, img_center, refine):
    row = jax.tree.map(lambda x: x[None], raw)
    out = hybrik.decode_camera(row, smpl_model=smpl_model, convention=convention,
                               focal_length=focal, input_size=input_size,
                               refine_scale=refine, bboxes=bbox[None],
                               img_center=img_center[None])
    return {'cam_root': out.camera.cam_root[0], 'joints': out.pred_xyz_24_struct[0],
            'uvd': out.pred_uvd[0]}

  @jax.jit
  def decode(raw, focal, bboxes, img_center):
    refine = camera_lib.refines_scale(head)
    per_row = lambda r: jax.vmap(lambda *a: decode_row(*a, r))(raw, focal, bboxes, img_center)
    refined = per_row(refine)
    unrefined = per_row(False) if refine else refined
    return refined, unrefined

  return network, decode


def crop_box(trans_inv: np.ndarray, input_size: int) -> np.ndarray:
  """The square crop's box (4,) xyxy image px from its (2, 3) input -> image affine."""
  corners = np.array([[0.0, 0.0, 1.0], [input_size, input_size, 1.0]])
  (x0, y0), (x1, y1) = corners @ np.asarray(trans_inv, np.float64).T
  return np.array([x0, y0, x1, y1], np.float32)


def placement_errors(variables, model_config, smpl_model, examples: Sequence[dict], *,
                     flip_test: bool = True, batch_size: int = 50) -> dict[str, Any]:
  """Per-example root errors of both placements in both settings.

  Args:
    variables, model_config: a camera model (model_config.predict_camera).
    smpl_model: its body model.
    examples: stored examples (image, bbox, intrinsics, joints29_cam, ...).
    flip_test: the demo's default (on).
    batch_size: network batch.

  Returns:
    {setting: {method: (N, 3) root - ground truth, metres}, 'fitted':
    {setting: (N,) bool, the 2D fit not fallen back}}.
  """
  if not model_config.get('predict_camera', False):
    raise ValueError('camera_placement needs a camera model (model.predict_camera)')
  network, decode = make_functions(model_config, smpl_model, flip_test)
  size = int(model_config['input_size'])
  unit = core.depth_factor(model_config)
  errors = {s: {m: [] for m in METHODS} for s in SETTINGS}
  fitted = {s: [] for s in SETTINGS}
  for start in range(0, len(examples), batch_size):
    chunk = examples[start:start + batch_size]
    n = len(chunk)
    crops = np.zeros((batch_size, size, size, 3), np.float32)
    trans_inv = np.zeros((batch_size, 2, 3), np.float32)
    for i in range(batch_size):
      ex = chunk[min(i, n - 1)]
      crops[i], trans_inv[i] = input_pipeline.preprocess_image(
          np.asarray(ex['image']), np.asarray(ex['bbox'], np.float32), size)
    raw = network(variables, jnp.asarray(crops))
    boxes = np.stack([crop_box(t, size) for t in trans_inv])
    sides = boxes[:, 2] - boxes[:, 0]
    for setting in SETTINGS:
      ks = np.zeros((batch_size, 3, 3), np.float32)
      for i in range(batch_size):
        ex = chunk[min(i, n - 1)]
        ks[i] = (np.asarray(ex['intrinsics'], np.float32) if setting == 'true K' else
                 core.virtual_intrinsics(np.shape(ex['image']), core.crop_side(ex['bbox'])))
      focal = ks[:, 0, 0] * size / sides
      refined, unrefined = jax.device_get(decode(raw, jnp.asarray(focal), jnp.asarray(boxes),
                                                 jnp.asarray(ks[:, :2, 2])))
      for i in range(n):
        ex = chunk[i]
        truth = np.asarray(ex['joints29_cam'], np.float64)[0]
        errors[setting]['camera'].append(refined['cam_root'][i] - truth)
        errors[setting]['camera, unrefined'].append(unrefined['cam_root'][i] - truth)
        joints = np.asarray(refined['joints'][i], np.float64)
        joints_2d = core.uvd_to_image(refined['uvd'][i], trans_inv[i], size)
        side = core.crop_side(ex['bbox'])
        z_guess = core.depth_guess(ks[i, 0, 0], side, unit)
        t, ok = core.place(joints, joints_2d, ks[i].astype(np.float64),
                           np.asarray(ex['bbox'], np.float64), z_guess)
        errors[setting]['2D fit'].append(joints[0] + t - truth)
        fitted[setting].append(bool(ok))
  out = {s: {m: np.asarray(v, np.float64).reshape(-1, 3) for m, v in errors[s].items()}
         for s in SETTINGS}
  out['fitted'] = {s: np.asarray(v, bool) for s, v in fitted.items()}
  return out


def summarise(errors: dict[str, Any]) -> dict[str, Any]:
  """{setting: {method: {mean_mm, median_mm, mean_abs_depth_mm}}, fitted fraction}."""
  summary = {}
  for setting in SETTINGS:
    rows = {}
    for method, e in errors[setting].items():
      dist = np.linalg.norm(e, axis=-1) * 1000.0
      rows[method] = {'mean_mm': float(dist.mean()), 'median_mm': float(np.median(dist)),
                      'mean_abs_depth_mm': float(np.abs(e[:, 2]).mean() * 1000.0)}
    rows['2D fit']['fitted_fraction'] = float(errors['fitted'][setting].mean())
    summary[setting] = rows
  summary['num_examples'] = int(len(errors['fitted'][SETTINGS[0]]))
  return summary


def format_table(summary: dict[str, Any]) -> str:
  lines = [f"root translation error against the ground truth, {summary['num_examples']} "
           'examples (mm)',
           f"{'':12s}{'method':20s}{'mean':>9s}{'median':>9s}{'|depth|':>9s}"]
  for setting in SETTINGS:
    for method in METHODS:
      r = summary[setting][method]
      extra = (f"   (2D fit kept in {100 * r['fitted_fraction']:.1f} %)"
               if 'fitted_fraction' in r else '')
      lines.append(f'{setting:12s}{method:20s}{r["mean_mm"]:9.1f}{r["median_mm"]:9.1f}'
                   f'{r["mean_abs_depth_mm"]:9.1f}{extra}')
  return '\n'.join(lines)


def main(argv: Sequence[str] | None = None) -> int:
  from hybrik_jax.checkpoints import loading  # pylint: disable=g-import-not-at-top
  from hybrik_jax.evaluation import benchmark  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--checkpoint', required=True,
                      help='training workdir or exported model of a camera model')
  parser.add_argument('--dataset', default=None,
                      help='default: the one the checkpoint was validated on')
  parser.add_argument('--split', default=None)
  parser.add_argument('--data_dir', default=None)
  parser.add_argument('--max_examples', type=int, default=None)
  parser.add_argument('--batch_size', type=int, default=50)
  parser.add_argument('--flip_test', action=argparse.BooleanOptionalAction, default=True)
  parser.add_argument('--out', default=None, help='write the summary as JSON here')
  args = parser.parse_args(argv)
  model = loading.load_for_inference(args.checkpoint)
  bench = benchmark.prepare(model, args.dataset, split=args.split, data_dir=args.data_dir)
  n = len(bench.source) if args.max_examples is None else min(args.max_examples,
                                                                 len(bench.source))
  examples = [bench.source[i] for i in range(n)]
  errors = placement_errors(model.variables, model.model_config, bench.smpl_model, examples,
                            flip_test=args.flip_test, batch_size=min(args.batch_size, n))
  summary = summarise(errors)
  summary.update(checkpoint=str(args.checkpoint), dataset=bench.dataset, split=bench.split,
                 flip_test=args.flip_test)
  print(format_table(summary))
  if args.out:
    with open(args.out, 'w') as f:
      json.dump(summary, f, indent=2)
  return 0


if __name__ == '__main__':
  sys.exit(main())
