r"""The image demo: one photo in, the body drawn over it and its SMPL fit out.

  python -m hybrik_jax.demo --image PATH --checkpoint DIR --out out.png \
      [--bbox x,y,w,h] [--smpl SMPL_NEUTRAL.pkl] [--noflip_test] \
      [--placement auto|camera|fit] [--hybrik_res_pk res.pk]

Where the person is: --bbox, else the largest person the detector finds
(`demos.detect`), else the whole image; `run` says which ('box_source').
The person is cropped, predicted and placed by `demos.core` (HybrIK's x1.25
crop, the flip test; a model that predicts a camera places the body with it,
as HybrIK's demo, its focal length its config's per crop; otherwise the
virtual focal 1000 px per 256 px of crop and the translation fitted to the
predicted 2D joints), and `run` writes

  out.png  the shaded mesh over the image, and a side view beside it
           (the mesh turned 90 degrees about the vertical axis,
           `render.side_view`);
  out.npz  the SMPL parameters (betas, axis-angle pose, rotation matrices,
           twists), the camera (K, focal, translation), the 24 SMPL and 17
           H36M joints in the camera frame, 2D joints, vertices and faces
           (a camera model's camera too: CAMERA_KEYS);
  res.pk   with --hybrik_res_pk, the person in the layout of HybrIK's res.pk
           (`hybrik_res`, docs/DEMO.md).

An SMPL-X model (HybrIK-X, model_config.body 'smplx') draws the SMPL-X mesh,
with a third panel, the crop magnified (hands and face at the crop's scale);
its .npz holds SMPL-X's parameters (betas, kid_blend, expression, the pose by
part: global_orient, body_pose, jaw_pose, leye_pose, reye_pose, left_hand_pose,
right_hand_pose; the full pose_axis_angle / rotmats, 55 joints), its 71 joints
(55 SMPL-X joints + 16 leaf vertices) and its camera; res.pk is HybrIK-X's
layout. --smpl is then SMPLX_NEUTRAL.npz (--kid_template, default the
smplx_kid_template.npy beside it); without it the synthetic SMPL-X body.

The absolute depth is only as right as the assumed focal length; the overlay
does not depend on it (`depth_source` in the .npz says how it was found).

The body model: --smpl gives the real SMPL model (required for a model
converted from the published PyTorch weights to look right); without it the
synthetic body model is used (right for models trained on synthetic_humans).
"""

import os
from typing import Any, Sequence

import cv2
import numpy as np

from hybrik_jax.data import boxes as boxes_lib
from hybrik_jax.demos import core
from hybrik_jax.demos import detect
from hybrik_jax.demos import hybrik_res

DemoError = core.DemoError

# Small images are drawn larger (the mesh rendered at that resolution).
MIN_DISPLAY_SIDE = 480
# Larger images are drawn with this longer side (the prediction still reads
# the full-resolution crop): bounded memory and a PNG of reasonable size.
# `run(..., full_resolution=True)` (demo --full_resolution) draws at full size.
MAX_DISPLAY_SIDE = 2048
BOX_COLOR = (255, 200, 0)
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
  """--bbox 'x,y,w,h' (pixels) -> (4,) xyxy clipped to the image; None: the whole image.

  Raises:
    DemoError: malformed, empty, or entirely outside the image.
  """
  h, w = int(image_shape[0]), int(image_shape[1])
  if text is None:
    return boxes_lib.whole_image(w, h)
  try:
    return boxes_lib.parse_xywh(text, w, h, what='--bbox', image='image')
  except boxes_lib.BoxError as e:
    raise DemoError(str(e)) from e


def person_box(image: np.ndarray, bbox: str | None = None, *,
               detector: detect.PersonDetector | None = None) -> tuple[np.ndarray, str]:
  """The person's box (4,) xyxy and where it came from (one line).

  --bbox wins; else the largest person the detector finds; else the whole image.
  """
  if bbox is not None:
    return parse_bbox(bbox, image.shape), 'box: --bbox'
  try:
    detector = detector or detect.default_detector()
  except detect.DetectorUnavailable as e:
    return parse_bbox(None, image.shape), f'box: whole image ({e})'
  found = detector(image)
  if found:
    best = found[0]
    return best.box, (f'box: detected ({detector.name}: {best.source}, '
                      f'score {best.score:.2f}, the largest of {len(found)})')
  return parse_bbox(None, image.shape), 'box: whole image (no person detected)'


# A camera model's outputs the demo keeps (`core.make_predict_fn`), per person
# (uvd29, xyz29: HybrIK's SMPL camera models; xyz71: HybrIK-X's).
CAMERA_KEYS = ('pred_camera', 'cam_scale', 'cam_root', 'cam_transl', 'pred_sigma',
               'maxvals', 'uvd29', 'xyz29', 'xyz71')


def predict_image(model: core.DemoModel, image: np.ndarray, bbox: np.ndarray, *,
                  flip_test: bool = True, predict_fn=None,
                  placement: str = 'auto') -> dict[str, Any]:
  """Runs the model on one person; everything in the camera frame.

  Args:
    model: the model and the body model (`core.load_model`).
    image: (H, W, 3) uint8 RGB.
    bbox: (4,) [x_min, y_min, x_max, y_max] pixels.
    flip_test: average with the mirrored crop.
    predict_fn: a `core.make_predict_fn` result to reuse (else one is made).
    placement: 'auto', 'camera' or 'fit' (`core.resolve_placement`).

  Returns:
    dict of numpy arrays: betas (10,), pose_axis_angle (24, 3), rotmats
    (24, 3, 3), phi (23, 2), uvd (24, 3), intrinsics (3, 3), focal (),
    transl (3,) (camera frame = model frame + transl), vertices (6890, 3),
    joints (24, 3), joints29 (29, 3), joints_h36m (17, 3) (camera frame,
    metres), joints_2d (24, 2) predicted 2D joints and joints_2d_projected
    (24, 2) the projected 3D joints (pixels), bbox (4,), crop_box (4,) the
    crop, valid (), placement () str 'camera' or 'fit', depth_source () str:
    how the translation was found (core.DEPTH_FROM_CAMERA, DEPTH_FITTED or
    DEPTH_FROM_BOX); a camera model's CAMERA_KEYS (cam_scale as ()).
    An SMPL-X model's: betas (10,), kid_blend (), expression (10,),
    pose_axis_angle (55, 3), rotmats (55, 3, 3) and the pose by part
    (`core.SMPLX_POSE_PARTS`), phi (54, 2), uvd (71, 3), vertices (10475, 3),
    joints (71, 3) (55 SMPL-X joints + 16 leaves, camera frame), joints_2d /
    joints_2d_projected (71, 2), its camera (pred_sigma, maxvals (71,), xyz71
    (71, 3) m root-relative); no joints29 / joints_h36m.
  """
  cfg = model.model_config
  placement = core.resolve_placement(cfg, placement)
  if predict_fn is None:
    predict_fn = core.make_predict_fn(cfg, model.smpl_model, flip_test=flip_test)
  pred = core.predict_people(
      predict_fn, model.variables, [image], np.asarray(bbox)[None],
      input_size=int(cfg.input_size), depth_unit=core.depth_factor(cfg), batch_size=1,
      placement=placement,
      camera_focal_length=float(cfg.focal_length) if core.has_camera(cfg) else None)
  pred = {k: v[0] for k, v in pred.items()}
  transl, K = pred['transl'], pred['intrinsics']
  cam = lambda p: (p + transl).astype(np.float32)
  joints_cam = cam(pred['joints'])
  proj = joints_cam @ K.T
  if placement == 'camera':
    depth_source = core.DEPTH_FROM_CAMERA
  else:
    depth_source = core.DEPTH_FITTED if pred['depth_fitted'] else core.DEPTH_FROM_BOX
  out = {
      'betas': pred['betas'], 'pose_axis_angle': pred['pose_axis_angle'],
      'rotmats': pred['rotmats'], 'phi': pred['phi'], 'uvd': pred['uvd'],
      'intrinsics': K, 'focal': np.float32(K[0, 0]), 'transl': transl,
      'vertices': cam(pred['vertices']), 'joints': joints_cam,
      'joints_2d': pred['joints_2d'],
      'joints_2d_projected': (proj[:, :2] / np.maximum(proj[:, 2:], 1e-6)).astype(np.float32),
      'bbox': np.asarray(bbox, np.float32), 'crop_box': pred['crop_box'],
      'valid': np.asarray(pred['valid']), 'placement': np.array(placement),
      'depth_source': np.array(depth_source),
  }
  if core.is_smplx(cfg):
    out.update(kid_blend=pred['kid_blend'], expression=pred['expression'],
               **core.smplx_pose_parts(pred['pose_axis_angle']))
  else:
    out.update(joints29=cam(pred['joints29']), joints_h36m=cam(pred['joints_h36m']))
  for key in CAMERA_KEYS:
    if key in pred:
      out[key] = pred[key].reshape(()) if key == 'cam_scale' else pred[key]
  return out


def res_row(pred: dict[str, Any], image_size, img_path: str,
            depth_unit: float, focal_length: float | None = None) -> dict[str, Any]:
  """`predict_image`'s person as a row of HybrIK's res.pk (`hybrik_res`); an
  SMPL-X person (its 'kid_blend') as a row of HybrIK-X's (focal_length: the
  model's, px per input_size px of crop)."""
  transl = pred['transl']
  if 'kid_blend' in pred:
    return hybrik_res.smplx_person_row_of(
        pred, pred['joints'] - transl, image_size=image_size, img_path=img_path,
        depth_unit=depth_unit, focal_length=focal_length)
  camera = ({k: pred[k] for k in ('pred_camera', 'maxvals', 'xyz29')}
            if 'pred_camera' in pred else None)
  return hybrik_res.person_row(
      uvd=pred.get('uvd29', pred['uvd']), phi=pred['phi'], betas=pred['betas'],
      rotmats=pred['rotmats'], joints29=pred['joints29'] - transl,
      joints_h36m=pred['joints_h36m'] - transl, transl=transl, crop_box=pred['crop_box'],
      intrinsics=pred['intrinsics'], image_size=image_size, img_path=img_path,
      depth_unit=depth_unit, camera=camera)


def _display_scale(image: np.ndarray, K: np.ndarray,
                   bbox: np.ndarray | None, size: tuple[int, int]):
  """(image, K, bbox) resized to `size` (w, h), pixel centres kept aligned."""
  h, w = image.shape[:2]
  sx, sy = size[0] / w, size[1] / h
  interpolation = cv2.INTER_AREA if sx < 1 else cv2.INTER_CUBIC
  image = cv2.resize(image, size, interpolation=interpolation)
  K = np.diag([sx, sy, 1.0]) @ np.asarray(K, np.float64)
  K[:2, 2] += 0.5 * (np.array([sx, sy]) - 1)  # x' = s x + (s - 1) / 2
  if bbox is not None:
    s4 = np.array([sx, sy, sx, sy])
    bbox = np.asarray(bbox, np.float64) * s4 + 0.5 * (s4 - 1)
  return image, K, bbox


def render_closeup(image: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
                   K: np.ndarray, box: np.ndarray, side: int,
                   color=core.MESH_COLOR) -> np.ndarray:
  """(side, side, 3) uint8: the square `box` (xyxy px, e.g. the network's crop)
  of the image magnified to `side` px, the mesh rendered at that resolution
  (HybrIK-X's hands and face at the crop's scale, whatever the image's size).

  vertices (V, 3) camera frame, metres; K (3, 3) the image's.
  """
  box = np.asarray(box, np.float64)
  s = side / max(box[2] - box[0], box[3] - box[1], 1e-6)
  # Image px -> panel px, pixel centres kept aligned: x' = s (x - x0) + (s - 1) / 2.
  m = np.array([[s, 0.0, -s * box[0] + 0.5 * (s - 1)],
                [0.0, s, -s * box[1] + 0.5 * (s - 1)], [0.0, 0.0, 1.0]])
  interpolation = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
  panel = cv2.warpAffine(image, m[:2], (side, side), flags=interpolation,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=core.SIDE_BACKGROUND)
  return core.draw_meshes(panel, [(vertices, m @ np.asarray(K, np.float64), color)], faces)


def render_views(image: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
                 K: np.ndarray, bbox: np.ndarray | None = None,
                 color=core.MESH_COLOR,
                 max_side: int | None = MAX_DISPLAY_SIDE,
                 closeup_box: np.ndarray | None = None) -> np.ndarray:
  """[overlay | side view (| close-up)] as one (sH, 2sW (+ sH), 3) uint8 image.

  Images with a side under MIN_DISPLAY_SIDE are drawn s times larger (integer
  s), the mesh rendered at that resolution; images with a side over
  `max_side` are drawn with that longer side (None: full resolution).

  Args:
    image: (H, W, 3) uint8 RGB.
    vertices: (V, 3) camera frame, metres.
    faces: (F, 3).
    K: (3, 3).
    bbox: optional (4,) box drawn on the overlay.
    color: mesh colour, float RGB.
    closeup_box: optional (4,) xyxy px: a third panel, this square of the image
      at the panels' height (`render_closeup`; the SMPL-X demo's crop box).
  """
  source_image, source_K = image, K  # the close-up reads the input's pixels
  h, w = image.shape[:2]
  scale = max(1, int(np.ceil(MIN_DISPLAY_SIDE / min(h, w))))
  if scale > 1:  # render at the display resolution, not upsampled pixels
    image, K, bbox = _display_scale(image, K, bbox, (w * scale, h * scale))
  elif max_side is not None and max(h, w) > max_side:
    shrink = max_side / max(h, w)
    image, K, bbox = _display_scale(
        image, K, bbox, (max(1, round(w * shrink)), max(1, round(h * shrink))))
  h, w = image.shape[:2]
  overlay = core.draw_meshes(image, [(vertices, K, color)], faces)
  if bbox is not None:
    core.draw_box(overlay, bbox, BOX_COLOR, max(1, int(round(min(h, w) / 200))))
  side = core.draw_side_view(vertices, faces, (h, w), color)
  panels = [(overlay, 'mesh over image'), (side, 'side view')]
  if closeup_box is not None:
    panels.append((render_closeup(source_image, vertices, faces, source_K, closeup_box,
                                  h, color), 'the crop'))
  for panel, label in panels:
    core.put_label(panel, label)
  return np.concatenate([p for p, _ in panels], axis=1)


def write_png(path: str, rgb: np.ndarray) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  if not cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
    raise DemoError(f'could not write {path!r}')


def run(image_path: str, checkpoint: str | None, out_path: str, *,
        bbox: str | None = None, smpl_path: str | None = None,
        h36m_regressor: str | None = None, flip_test: bool = True,
        smpl_model=None, detector: detect.PersonDetector | None = None,
        full_resolution: bool = False, placement: str = 'auto',
        hybrik_res_pk: str | None = None, kid_template: str | None = None) -> dict[str, Any]:
  """Reads, finds the person, predicts, draws.

  The PNG is drawn with its longer side at most MAX_DISPLAY_SIDE per panel
  unless `full_resolution`; the prediction and the .npz (pixels of the input
  image) do not depend on it. placement: `core.resolve_placement`;
  hybrik_res_pk: also write the person as HybrIK's res.pk (`hybrik_res`;
  HybrIK-X's layout for an SMPL-X model). kid_template: an SMPL-X model's
  (`core.load_smplx_body`).

  Returns:
    the prediction (`predict_image`) plus 'png' and 'npz' paths, 'body_model',
    'box_source' (one line: 'box: --bbox', 'box: detected (...)', or
    'box: whole image (no person detected)') and 'res_pk' (the path or None).

  Raises:
    DemoError: no checkpoint (with how to get one), unreadable image, bad box,
      a placement the model cannot give.
  """
  if not checkpoint:
    raise DemoError(core.HOW_TO_GET_A_CHECKPOINT)
  if not out_path.lower().endswith('.png'):
    raise DemoError(f'--out must be a .png path, got {out_path!r}')
  core.check_placement(placement)
  image = read_image(image_path)
  if bbox is not None:
    parse_bbox(bbox, image.shape)  # a bad box fails before the model loads
  model = core.load_model(checkpoint, smpl_path, h36m_regressor, smpl_model,
                          kid_template=kid_template)
  box, box_source = person_box(image, bbox, detector=detector)
  pred = predict_image(model, image, box, flip_test=flip_test, placement=placement)
  faces = np.asarray(model.smpl_model.faces)
  smplx = core.is_smplx(model.model_config)
  write_png(out_path, render_views(
      image, pred['vertices'], faces, pred['intrinsics'], box,
      max_side=None if full_resolution else MAX_DISPLAY_SIDE,
      closeup_box=pred['crop_box'] if smplx else None))
  npz_path = os.path.splitext(out_path)[0] + '.npz'
  np.savez(npz_path, faces=faces.astype(np.int32), flip_test=np.bool_(flip_test),
           image_size=np.array(image.shape[:2], np.int32),
           body_model=np.array(model.body_model), box_source=np.array(box_source), **pred)
  if hybrik_res_pk:
    cfg = model.model_config
    hybrik_res.write(hybrik_res_pk, hybrik_res.stack_rows([res_row(
        pred, image.shape[:2], image_path, core.depth_factor(cfg),
        float(cfg.focal_length) if smplx else None)]))
  pred.update(png=out_path, npz=npz_path, body_model=model.body_model,
              box_source=box_source, res_pk=hybrik_res_pk or None)
  return pred
