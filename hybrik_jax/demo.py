r"""Run a model on one image (or a video) and draw the predicted body.

  python -m hybrik_jax.demo --image PATH --checkpoint DIR --out out.png \
      [--bbox x,y,w,h] [--smpl SMPL_NEUTRAL.pkl] [--noflip_test]
  python -m hybrik_jax.demo --video in.mp4 --checkpoint DIR --out out.mp4 \
      [--detections FILE | --bbox x,y,w,h] [--json] [--smooth]   (video_demo.py)

Crops the person (the given box, else the whole image) as HybrIK's test
transform does (box x 1.25, `input_pipeline.preprocess_image`), runs the model
with the flip test, and writes

  out.png  the shaded mesh over the image, and a side view beside it
           (the mesh turned 90 degrees about the vertical axis);
  out.npz  the SMPL parameters (betas, axis-angle pose, rotation matrices,
           twists), the camera (K, focal, translation), the 24 SMPL and 17
           H36M joints in the camera frame, 2D joints, vertices and faces.

The camera. An arbitrary image has no intrinsics, so, as HybrIK's
scripts/demo_image.py, a virtual focal length of 1000 px per 256 px of crop is
assumed (f = 1000 / 256 x the crop side in image pixels), with the principal
point at the image centre. HybrIK's demo model regresses the root depth with a
camera head; the HybrIK-Transformer predicts root-relative joints only, so the
translation is estimated instead: the body's 24 joints (metric, from the
predicted shape and rotations) are placed where their projections best match
the predicted 2D joints (linear least squares on the translation, two rounds
with the uvd lifting at the new depth). The absolute depth is therefore only
as right as the assumed focal length; the overlay does not depend on it. When
the fit is degenerate or more than 3x off the depth at which the body would
fill the crop (an untrained model), the root is put on the ray through the box
centre at that depth instead (`depth_source` in the .npz says which).

The body model: --smpl gives the real SMPL model (required for a model
converted from the published PyTorch weights to look right); without it the
synthetic body model is used (right for models trained on synthetic_humans).
"""

import argparse
import os
import sys
from typing import Any, Sequence

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from hybrik_jax import cli
from hybrik_jax import errors
from hybrik_jax import models
from hybrik_jax.body import geometry
from hybrik_jax.checkpoints import loading
from hybrik_jax.data import augment
from hybrik_jax.data import features
from hybrik_jax.data import input_pipeline
from hybrik_jax.data import render

# HybrIK's demo: focal length 1000 px for a 256 px crop.
FOCAL_PER_CROP = 1000.0 / 256.0
# Mesh colour (light blue-grey) and the overlay's opacity (HybrIK: 0.9).
MESH_COLOR = (0.70, 0.78, 0.92)
OVERLAY_ALPHA = 0.9
SIDE_BACKGROUND = (245, 245, 245)
# The fitted root depth is trusted within this factor of the box-size guess.
MAX_DEPTH_RATIO = 3.0
# Small images are drawn larger (the mesh rendered at that resolution).
MIN_DISPLAY_SIDE = 480
BOX_COLOR = (255, 200, 0)

HOW_TO_GET_A_CHECKPOINT = """\
no checkpoint given (--checkpoint DIR). Get one of:
  * train on synthetic humans (CPU is enough for a first model):
      python -m hybrik_jax.prepare_data --dataset synthetic_humans --config small
      python -m hybrik_jax.train --config configs/synthetic.py --workdir /tmp/synthetic
    then pass --checkpoint /tmp/synthetic (a training workdir works) or an
    averaged export (python -m hybrik_jax.average_checkpoints);
  * convert the published PyTorch weights (boreshkinai/hybrik-transformer or
    Jeff-sjtu/HybrIK):
      python -m hybrik_jax.convert --torch-checkpoint model.pth --out /tmp/converted
    and pass --checkpoint /tmp/converted --smpl basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"""


class DemoError(cli.UserError, ValueError):
  """Bad demo input (unreadable image, box outside the image, no checkpoint)."""


# ----------------------------------------------------------------------------
# Inputs.
# ----------------------------------------------------------------------------


# The smallest image side the demo accepts, px.
MIN_IMAGE_SIDE = 8


def read_image(path: str) -> np.ndarray:
  """(H, W, 3) uint8 RGB; DemoError if missing or unreadable."""
  if not os.path.isfile(path):
    raise DemoError(f'image {path!r} does not exist')
  image = cv2.imread(path, cv2.IMREAD_COLOR)
  if image is None or image.size == 0:
    raise DemoError(f'image {path!r} could not be read as an image '
                    '(expected a JPEG/PNG/BMP file)')
  h, w = image.shape[:2]
  if min(h, w) < MIN_IMAGE_SIDE:
    raise DemoError(f'image {path!r} is {w}x{h} px: too small to hold a '
                    f'person (at least {MIN_IMAGE_SIDE} px on each side).')
  return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def parse_bbox(text: str | None, image_shape: Sequence[int]) -> np.ndarray:
  """'x,y,w,h' (pixels) -> (4,) [x_min, y_min, x_max, y_max] inside the image.

  None gives the whole image. A box partly outside is clipped to the image.

  Raises:
    DemoError: malformed, empty, or entirely outside the image.
  """
  h, w = int(image_shape[0]), int(image_shape[1])
  if text is None:
    return np.array([0.0, 0.0, w - 1.0, h - 1.0], np.float32)
  try:
    values = [float(v) for v in str(text).replace(' ', '').split(',')]
  except ValueError:
    values = []
  if len(values) != 4 or not np.all(np.isfinite(values)):
    raise DemoError(f'--bbox must be four numbers x,y,w,h (pixels), got {text!r}')
  x, y, bw, bh = values
  if bw <= 0 or bh <= 0:
    raise DemoError(f'--bbox {text!r}: width and height must be positive')
  x0, y0, x1, y1 = max(x, 0.0), max(y, 0.0), min(x + bw, w - 1.0), min(y + bh, h - 1.0)
  if x1 - x0 < 1 or y1 - y0 < 1:
    raise DemoError(f'--bbox {text!r} lies outside the {w}x{h} image')
  return np.array([x0, y0, x1, y1], np.float32)


def virtual_intrinsics(image_shape: Sequence[int], crop_side: float) -> np.ndarray:
  """(3, 3) K: focal FOCAL_PER_CROP x crop side (HybrIK's demo), centred."""
  h, w = int(image_shape[0]), int(image_shape[1])
  f = FOCAL_PER_CROP * float(crop_side)
  return np.array([[f, 0.0, w / 2.0], [0.0, f, h / 2.0], [0.0, 0.0, 1.0]],
                  np.float32)


def crop_side(bbox: np.ndarray,
              scale_mult: float = input_pipeline.DEFAULT_SCALE_MULT) -> float:
  """Side of the square crop the network sees, in image pixels."""
  _, size = augment.box_to_center_scale(bbox, 1.0, scale_mult)
  return float(np.max(size))


def estimate_translation(joints: np.ndarray, joints_2d: np.ndarray,
                         K: np.ndarray) -> np.ndarray | None:
  """Translation t with project(joints + t) ~ joints_2d (least squares).

  Linear in t: for each joint, fx tx + (cx - u) tz = (u - cx) Z - fx X and
  fy ty + (cy - v) tz = (v - cy) Z - fy Y.

  Args:
    joints: (J, 3) metres, any frame with camera axes.
    joints_2d: (J, 2) pixels.
    K: (3, 3).

  Returns:
    (3,) metres, or None if the solution is degenerate or behind the camera.
  """
  x, y, z = (np.asarray(joints, np.float64)[:, i] for i in range(3))
  u, v = (np.asarray(joints_2d, np.float64)[:, i] for i in range(2))
  fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
  n = x.shape[0]
  a = np.zeros((2 * n, 3))
  b = np.zeros(2 * n)
  a[:n, 0], a[:n, 2], b[:n] = fx, cx - u, (u - cx) * z - fx * x
  a[n:, 1], a[n:, 2], b[n:] = fy, cy - v, (v - cy) * z - fy * y
  t, _, rank, _ = np.linalg.lstsq(a, b, rcond=None)
  if rank < 3 or not np.all(np.isfinite(t)) or t[2] + z.min() <= 0.05:
    return None
  return t


# ----------------------------------------------------------------------------
# Prediction.
# ----------------------------------------------------------------------------


def make_predict_fn(model, smpl_model, *, model_config, flip_test: bool = True):
  """Jitted (variables, image (1,S,S,3), trans_inv (1,2,3), K (1,3,3), z_root (1,))
  -> dict: raw head outputs, the decoded ModelOutput fields, and the body
  re-skinned in one frame (vertices, joints 24, joints 17, model frame)."""
  from hybrik_jax.body import smpl as smpl_lib  # pylint: disable=g-import-not-at-top

  def predict(variables, image, trans_inv, intrinsics, z_root):
    joint_root = jnp.stack([jnp.zeros_like(z_root), jnp.zeros_like(z_root), z_root], -1)
    out = models.predict(model, variables, image, trans_inv=trans_inv,
                         intrinsics=intrinsics, joint_root=joint_root,
                         smpl_model=smpl_model, flip_test=flip_test,
                         model_config=model_config)
    body = smpl_lib.skin(smpl_model, out.pred_shape, out.pred_rotmats)
    return {'uvd': out.pred_uvd, 'phi': out.pred_phi, 'betas': out.pred_shape,
            'rotmats': out.pred_rotmats, 'valid': out.valid,
            'pose_axis_angle': geometry.matrix_to_axis_angle(out.pred_rotmats),
            'vertices': body.vertices, 'joints': body.joints,
            'joints_h36m': body.joints_h36m}

  return jax.jit(predict)


def uvd_to_image(uvd: np.ndarray, trans_inv: np.ndarray, input_size: int) -> np.ndarray:
  """(J, 3) normalised uvd -> (J, 2) image pixels."""
  uv = (np.asarray(uvd)[:, :2] + 0.5) * input_size
  return uv @ np.asarray(trans_inv)[:, :2].T + np.asarray(trans_inv)[:, 2]


def predict_image(variables, model_config, smpl_model, image: np.ndarray,
                  bbox: np.ndarray, *, flip_test: bool = True,
                  predict_fn=None) -> dict[str, Any]:
  """Runs the model on one person; everything in the camera frame.

  Args:
    variables: the model's variables.
    model_config: its config (input_size).
    smpl_model: the body model.
    image: (H, W, 3) uint8 RGB.
    bbox: (4,) [x_min, y_min, x_max, y_max] pixels.
    flip_test: average with the mirrored crop.
    predict_fn: a `make_predict_fn` result to reuse (else one is made).

  Returns:
    dict of numpy arrays: betas (10,), pose_axis_angle (24, 3), rotmats
    (24, 3, 3), phi (23, 2), uvd (24, 3), intrinsics (3, 3), focal (),
    transl (3,) (camera frame = model frame + transl), vertices (6890, 3),
    joints (24, 3), joints_h36m (17, 3) (camera frame, metres), joints_2d
    (24, 2) predicted 2D joints and joints_2d_projected (24, 2) the projected
    3D joints (pixels), bbox (4,), valid (), depth_source () str: how the
    translation was found (fitted, or from the box size when the fit is
    degenerate or more than MAX_DEPTH_RATIO off the box-size depth).
  """
  input_size = int(model_config.input_size)
  if predict_fn is None:
    predict_fn = make_predict_fn(models.create_model(model_config), smpl_model,
                                 model_config=model_config, flip_test=flip_test)
  inp, trans_inv = input_pipeline.preprocess_image(image, bbox, input_size)
  K = virtual_intrinsics(image.shape, crop_side(bbox))
  # First guess: the crop spans depth_factor (2.2 m) at this focal length.
  z_guess = K[0, 0] * features.DEFAULT_DEPTH_FACTOR / crop_side(bbox)
  z_root = z_guess
  for _ in range(2):
    pred = jax.device_get(predict_fn(
        variables, inp[None], trans_inv[None], K[None],
        np.array([z_root], np.float32)))
    pred = {k: np.asarray(v)[0] for k, v in pred.items()}
    joints_2d = uvd_to_image(pred['uvd'], trans_inv, input_size)
    t = estimate_translation(pred['joints'], joints_2d, K)
    depth_source = 'fitted to the 2D joints'
    if t is None or not (z_guess / MAX_DEPTH_RATIO
                         < pred['joints'][0, 2] + t[2] < z_guess * MAX_DEPTH_RATIO):
      # Degenerate or implausible 2D joints (e.g. an untrained model): put the
      # root on the ray through the box centre at the box-size depth.
      centre = np.array([(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2, 1.0])
      root = np.linalg.solve(K.astype(np.float64), centre) * z_guess
      t = root - pred['joints'][0]
      depth_source = 'from the box size (the 2D fit was implausible)'
    transl = t
    z_root = float(pred['joints'][0, 2] + t[2])
  cam = lambda p: (p + transl).astype(np.float32)
  joints_cam = cam(pred['joints'])
  proj = joints_cam @ K.T
  return {
      'betas': pred['betas'], 'pose_axis_angle': pred['pose_axis_angle'],
      'rotmats': pred['rotmats'], 'phi': pred['phi'], 'uvd': pred['uvd'],
      'intrinsics': K, 'focal': np.float32(K[0, 0]),
      'transl': transl.astype(np.float32), 'vertices': cam(pred['vertices']),
      'joints': joints_cam, 'joints_h36m': cam(pred['joints_h36m']),
      'joints_2d': joints_2d.astype(np.float32),
      'joints_2d_projected': (proj[:, :2] / np.maximum(proj[:, 2:], 1e-6)).astype(np.float32),
      'bbox': np.asarray(bbox, np.float32), 'valid': np.asarray(pred['valid']),
      'depth_source': np.array(depth_source),
  }


# ----------------------------------------------------------------------------
# Drawing.
# ----------------------------------------------------------------------------


def _rotate_about_vertical(vertices: np.ndarray, degrees: float) -> np.ndarray:
  """Turns the mesh about the camera's vertical (y) axis through its centre."""
  a = np.deg2rad(degrees)
  r = np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0],
                [-np.sin(a), 0.0, np.cos(a)]])
  centre = 0.5 * (vertices.min(0) + vertices.max(0))
  return (vertices - centre) @ r.T + centre


def render_views(image: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
                 K: np.ndarray, bbox: np.ndarray | None = None,
                 color=MESH_COLOR) -> np.ndarray:
  """[overlay | side view] as one (sH, 2sW, 3) uint8 image.

  Images with a side under MIN_DISPLAY_SIDE are drawn s times larger (integer
  s), the mesh rendered at that resolution.

  Args:
    image: (H, W, 3) uint8 RGB.
    vertices: (V, 3) camera frame, metres.
    faces: (F, 3).
    K: (3, 3).
    bbox: optional (4,) box drawn on the overlay.
    color: mesh colour, float RGB.
  """
  scale = max(1, int(np.ceil(MIN_DISPLAY_SIDE / min(image.shape[:2]))))
  if scale > 1:  # render at the display resolution, not upsampled pixels
    image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    K = np.diag([scale, scale, 1.0]) @ np.asarray(K, np.float64)
    K[:2, 2] += 0.5 * (scale - 1)  # pixel centres: x' = s x + (s - 1) / 2
    bbox = None if bbox is None else np.asarray(bbox, np.float64) * scale + 0.5 * (scale - 1)
  h, w = image.shape[:2]
  rgb, _, face_id = render.render_mesh(vertices, faces, K, (h, w), colors=color,
                                       background=image)
  covered = (face_id >= 0)[..., None]
  overlay = np.where(covered, OVERLAY_ALPHA * rgb + (1 - OVERLAY_ALPHA) * image,
                     image).astype(np.uint8)
  if bbox is not None:
    x0, y0, x1, y1 = (int(round(float(v))) for v in bbox)
    thickness = max(1, int(round(min(h, w) / 200)))
    cv2.rectangle(overlay, (x0, y0), (x1, y1), BOX_COLOR, thickness)
  side, _, _ = render.render_mesh(
      _rotate_about_vertical(np.asarray(vertices, np.float64), 90.0), faces, K,
      (h, w), colors=color, background=np.array(SIDE_BACKGROUND, np.uint8))
  for panel, label in ((overlay, 'mesh over image'), (side, 'side view')):
    _put_label(panel, label)
  return np.concatenate([overlay, side], axis=1)


def _put_label(panel: np.ndarray, text: str) -> None:
  """A small caption in the top-left corner, dark on a light patch."""
  h = panel.shape[0]
  font_scale = max(0.4, h / 900)
  thick = max(1, int(round(h / 500)))
  (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick)
  pad = max(3, int(round(h / 120)))
  sub = panel[pad:pad + th + base + pad, pad:pad + tw + 2 * pad]
  sub[:] = (0.3 * sub + 0.7 * 255).astype(np.uint8)
  cv2.putText(panel, text, (2 * pad, pad + th + pad // 2), cv2.FONT_HERSHEY_SIMPLEX,
              font_scale, (40, 40, 40), thick, cv2.LINE_AA)


def write_png(path: str, rgb: np.ndarray) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  if not cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
    raise DemoError(f'could not write {path!r}')


# ----------------------------------------------------------------------------
# The CLI.
# ----------------------------------------------------------------------------


def run(image_path: str, checkpoint: str | None, out_path: str, *,
        bbox: str | None = None, smpl_path: str | None = None,
        h36m_regressor: str | None = None, flip_test: bool = True,
        smpl_model=None) -> dict[str, Any]:
  """Reads, predicts, draws; returns the prediction plus 'png' and 'npz' paths.

  Raises:
    DemoError: no checkpoint (with how to get one), unreadable image, bad box.
  """
  from hybrik_jax.body import smpl_io  # pylint: disable=g-import-not-at-top

  if not checkpoint:
    raise DemoError(HOW_TO_GET_A_CHECKPOINT)
  if not out_path.lower().endswith('.png'):
    raise DemoError(f'--out must be a .png path, got {out_path!r}')
  image = read_image(image_path)
  box = parse_bbox(bbox, image.shape)
  try:
    loaded = loading.load_for_inference(checkpoint)
  except FileNotFoundError as e:
    raise DemoError(f'{e}\n\n{HOW_TO_GET_A_CHECKPOINT}') from e
  variables, model_config = loaded.variables, loaded.model_config
  if smpl_model is None:
    smpl_model, body_desc = smpl_io.load_body_model(smpl_path, h36m_regressor)
  else:
    body_desc = 'given body model'
  pred = predict_image(variables, model_config, smpl_model, image, box,
                       flip_test=flip_test)
  faces = np.asarray(smpl_model.faces)
  panel = render_views(image, pred['vertices'], faces, pred['intrinsics'], box)
  write_png(out_path, panel)
  npz_path = os.path.splitext(out_path)[0] + '.npz'
  np.savez(npz_path, faces=faces.astype(np.int32), flip_test=np.bool_(flip_test),
           image_size=np.array(image.shape[:2], np.int32),
           body_model=np.array(body_desc), **pred)
  pred.update(png=out_path, npz=npz_path, body_model=body_desc)
  return pred


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog='python -m hybrik_jax.demo', description=__doc__.split('\n\n')[0],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument('--image', help='input image (JPEG/PNG)')
  source.add_argument('--video', help='input video (mp4, mov, avi, ...): see video_demo.py')
  parser.add_argument('--checkpoint', default=None,
                      help='exported model directory or training workdir')
  parser.add_argument('--out', default=None,
                      help='output PNG (.npz beside it); with --video an .mp4 '
                      '(default demo_out.png / demo_out.mp4)')
  parser.add_argument('--bbox', default=None,
                      help='person box x,y,w,h in pixels (default: the whole image); '
                      'with --video the box in the first frame, then tracked')
  parser.add_argument('--smpl', default=None, help='SMPL neutral .pkl (default: synthetic body)')
  parser.add_argument('--h36m_regressor', default=None, help='J_regressor_h36m.npy')
  parser.add_argument('--flip_test', dest='flip_test', action='store_true', default=True)
  parser.add_argument('--noflip_test', dest='flip_test', action='store_false')
  video_args = parser.add_argument_group('video (--video)')
  video_args.add_argument('--detections', default=None,
                          help='person boxes: COCO results JSON, or frame,x,y,w,h[,track_id] lines')
  video_args.add_argument('--tracks', default=None, help='keep these track ids, e.g. 1,3')
  video_args.add_argument('--results', default=None, help='results .npz (default: beside --out)')
  video_args.add_argument('--json', action='store_true', help='also write the results as JSON')
  video_args.add_argument('--batch_size', type=int, default=8, help='people per network call')
  video_args.add_argument('--focal', type=float, default=None,
                          help='focal length, px (default: 1000 px per 256 px of crop, as HybrIK)')
  video_args.add_argument('--smooth', action='store_true',
                          help='One Euro filter on rotations, shape and translation')
  video_args.add_argument('--smooth_min_cutoff', type=float, default=1.0,
                          help='One Euro cutoff at rest, Hz (lower: smoother)')
  video_args.add_argument('--smooth_beta', type=float, default=0.0,
                          help='One Euro speed coefficient (higher: less lag in fast motion)')
  args = parser.parse_args(argv)
  if args.video:
    return _main_video(args)
  try:
    pred = run(args.image, args.checkpoint, args.out or 'demo_out.png', bbox=args.bbox,
               smpl_path=args.smpl, h36m_regressor=args.h36m_regressor,
               flip_test=args.flip_test)
  except (errors.InputError, FileNotFoundError) as e:  # not every ValueError: bugs
    print(f'error: {e}', file=sys.stderr)          # keep their tracebacks
    return 2
  if not bool(pred['valid']) or not np.all(np.isfinite(pred['vertices'])):
    print(f"error: the prediction is invalid (the network's outputs are not "
          f"finite: a broken or non-finite checkpoint?); {pred['png']} shows "
          'no body.', file=sys.stderr)
    return 3
  print(f"body model: {pred['body_model']}; camera: assumed focal "
        f"{float(pred['focal']):.0f} px (HybrIK's 1000 px per 256 px crop), "
        f"principal point at the image centre; root depth "
        f"{float(pred['joints'][0, 2]):.2f} m ({pred['depth_source']}).")
  print(f"wrote {pred['png']} and {pred['npz']}")
  return 0


def _main_video(args) -> int:
  """--video: dispatches to video_demo.run_from_checkpoint."""
  from hybrik_jax.demos import video as video_demo  # pylint: disable=g-import-not-at-top
  out = args.out or 'demo_out.mp4'
  try:
    res = video_demo.run_from_checkpoint(
        args.video, args.checkpoint, out, smpl_path=args.smpl,
        h36m_regressor=args.h36m_regressor, detections=args.detections, bbox=args.bbox,
        tracks=video_demo.parse_tracks(args.tracks), results_path=args.results,
        json_path=os.path.splitext(args.results or out)[0] + '.json' if args.json else None,
        flip_test=args.flip_test, batch_size=args.batch_size, focal=args.focal,
        smooth=args.smooth, smooth_min_cutoff=args.smooth_min_cutoff,
        smooth_beta=args.smooth_beta)
  except (errors.InputError, FileNotFoundError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  valid = res['valid']
  print(f"{valid.shape[0]} frames x {valid.shape[1]} track(s): {int(valid.sum())} valid "
        f"predictions; {res['seconds']:.1f} s ({res['frames_per_second']:.2f} frames/s)")
  print(f"wrote {res['out']} and {res['results']}" + (f" and {res['json']}" if res['json'] else ''))
  return 0


if __name__ == '__main__':
  cli.run(main)  # UserError -> one line, status 2; Ctrl-C -> one line, 130
