r"""Video in, overlay video and per-frame SMPL results out.

  python -m hybrik_jax.demo --video in.mp4 --checkpoint DIR --out out.mp4 \
      [--detections dets.json | --bbox x,y,w,h] [--tracks 1,2] [--json] \
      [--smooth [--smooth_min_cutoff HZ] [--smooth_beta B]] [--focal PX]

Where the people are, in this order: a detections file (COCO results JSON or
`frame,x,y,w,h[,track_id]` lines, see video_io.load_detections), one result per
track; else a first-frame --bbox, then each frame's box is the box of the
previous frame's projected joints (video_io.box_from_joints; the previous box is
kept when a prediction is invalid); else the person detector (demos.detect) on
every frame: the largest person in the first frame it finds one, then in each
frame the detection that overlaps the previous box most (a frame without one
keeps the previous box; a person found in under a quarter of the frames is not
trusted); else the whole frame.

Each person is cropped, predicted and placed by the demos' core (demos/core.py,
as the image demo: HybrIK's x1.25 crop, flip test; a camera model places the
body with its camera, others get the focal 1000 px per 256 px crop unless
--focal and the body's translation fitted to the predicted 2D joints;
--placement chooses). Frames go through the network
in batches of a fixed size (the last one padded: one compilation); with
tracking the box of a frame depends on the previous prediction, so frames go
one at a time.

Writes (each under a temporary name first, renamed when the whole run
succeeded, so an error never leaves a partial file):
  out.mp4   the meshes over the frames (one colour per track; a person whose
            prediction is invalid is drawn as a box without a mesh), H.264 at
            the input's size and frame rate;
  out.npz   the results (results_lib.FIELDS, a camera model's CAMERA_FIELDS), and
            with --json out.json as well;
  res.pk    with hybrik_res_pk: HybrIK's res.pk layout, one file per track
            (demos/hybrik_res.py).
"""

import functools
import itertools
import sys
import time
from typing import Any, Callable, Sequence

import jax
import numpy as np
import tqdm

from hybrik_jax.body import geometry
from hybrik_jax.data import boxes as boxes_lib
from hybrik_jax.data import features
from hybrik_jax.demos import core
from hybrik_jax.demos import detect
from hybrik_jax.demos import hybrik_res
from hybrik_jax.demos import results as results_lib
from hybrik_jax.demos import smoothing
from hybrik_jax.demos import video_io

DEFAULT_BATCH_SIZE = 8
INVALID_COLOR = (255, 60, 60)


# ----------------------------------------------------------------------------
# The bodies (re-posed after smoothing).
# ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _body_fn():
  """jit of (model, betas (B,10), rotmats (B,24,3,3)) -> vertices (B,V,3), joints29
  (B,29,3), joints_h36m (B,17,3) (model frame), axis-angle pose (B,24,3)."""
  from hybrik_jax.body import kinematics  # pylint: disable=g-import-not-at-top
  from hybrik_jax.body import smpl  # pylint: disable=g-import-not-at-top

  @jax.jit
  def fn(model, betas, rotmats):
    body = smpl.skin(model, betas, rotmats)
    joints29, _ = kinematics.forward_kinematics(rotmats, smpl.rest_joints29(model, betas))
    return (body.vertices, joints29, body.joints_h36m,
            geometry.matrix_to_axis_angle(rotmats))
  return fn


def pose_bodies(smpl_model, betas: np.ndarray, rotmats: np.ndarray,
                batch_size: int) -> tuple[np.ndarray, ...]:
  """(N, 10), (N, 24, 3, 3) -> vertices (N, V, 3), joints29 (N, 29, 3),
  joints_h36m (N, 17, 3) (model frame), pose (N, 24, 3) axis-angle; in padded
  batches (one compilation)."""
  n = len(betas)
  outs = []
  for start in range(0, n, batch_size):
    b = np.zeros((batch_size, 10), np.float32)
    r = np.tile(np.eye(3, dtype=np.float32), (batch_size, 24, 1, 1))
    m = min(batch_size, n - start)
    b[:m], r[:m] = betas[start:start + m], rotmats[start:start + m]
    outs.append([np.asarray(x)[:m] for x in jax.device_get(_body_fn()(smpl_model, b, r))])
  return tuple(np.concatenate(parts) for parts in zip(*outs))


@functools.lru_cache(maxsize=None)
def _smplx_body_fn():
  """jit of (model, shape (B,11), expression (B,10), rotmats (B,55,3,3)) ->
  vertices (B,10475,3), joints71 (B,71,3) (model frame: the pelvis at the origin,
  as HybrIK-X's), axis-angle pose (B,55,3)."""
  from hybrik_jax.body import smplx  # pylint: disable=g-import-not-at-top

  @jax.jit
  def fn(model, shape, expression, rotmats):
    body = smplx.skin(model, shape, rotmats, expression)
    root = body.joints[:, :1]
    joints71 = jax.numpy.concatenate(
        [body.joints, smplx.leaf_joints(model, body.vertices)], 1) - root
    return body.vertices - root, joints71, geometry.matrix_to_axis_angle(rotmats)
  return fn


def pose_bodies_smplx(smplx_model, shape: np.ndarray, expression: np.ndarray,
                      rotmats: np.ndarray, batch_size: int) -> tuple[np.ndarray, ...]:
  """SMPL-X bodies re-posed (after smoothing): (N, 11) 10 betas + kid blend,
  (N, 10), (N, 55, 3, 3) -> vertices (N, V, 3), joints71 (N, 71, 3) (model
  frame, pelvis at the origin), pose (N, 55, 3) axis-angle; padded batches."""
  n = len(shape)
  outs = []
  for start in range(0, n, batch_size):
    m = min(batch_size, n - start)
    s = np.zeros((batch_size, shape.shape[1]), np.float32)
    e = np.zeros((batch_size, expression.shape[1]), np.float32)
    r = np.tile(np.eye(3, dtype=np.float32), (batch_size, 55, 1, 1))
    s[:m], e[:m], r[:m] = (shape[start:start + m], expression[start:start + m],
                           rotmats[start:start + m])
    outs.append([np.asarray(x)[:m] for x in jax.device_get(
        _smplx_body_fn()(smplx_model, s, e, r))])
  return tuple(np.concatenate(parts) for parts in zip(*outs))


# ----------------------------------------------------------------------------
# Drawing.
# ----------------------------------------------------------------------------


def draw_frame(frame: np.ndarray, people: Sequence[dict[str, Any]], faces: np.ndarray,
               colors: np.ndarray) -> np.ndarray:
  """The meshes over the frame, nearest in front; boxes in the track colours.

  Args:
    frame: (H, W, 3) uint8 RGB.
    people: dicts with 'track' (colour index), 'bbox' (4,) or NaN, 'valid', and
      when valid 'vertices' (V, 3) camera frame, metres, and 'intrinsics'.
    faces: (F, 3).
    colors: (P, 3) float RGB per track.
  """
  h, w = frame.shape[:2]
  out = core.draw_meshes(frame, [(p['vertices'], p['intrinsics'], colors[p['track']])
                                 for p in people if p['valid']], faces)
  thickness = max(1, int(round(min(h, w) / 300)))
  for person in people:
    box = np.asarray(person['bbox'])
    if not np.all(np.isfinite(box)):
      continue
    if person['valid']:
      color = tuple(int(c) for c in np.rint(np.asarray(colors[person['track']]) * 255))
      core.draw_box(out, box, color, thickness)
    else:
      core.draw_box(out, box, INVALID_COLOR, thickness, 'no valid prediction')
  return out


# ----------------------------------------------------------------------------
# The run.
# ----------------------------------------------------------------------------


class _Smoother:
  """One Euro filters per track on rotations, shape and translation."""

  def __init__(self, num_tracks: int, min_cutoff: float, beta: float):
    make = lambda cls: [cls(min_cutoff, beta) for _ in range(num_tracks)]
    self.rot = make(smoothing.RotationOneEuro)
    self.betas = make(smoothing.OneEuroFilter)
    self.transl = make(smoothing.OneEuroFilter)

  def __call__(self, track: int, t: float, betas, rotmats, transl):
    return (self.betas[track](betas, t).astype(np.float32),
            self.rot[track](rotmats, t).astype(np.float32),
            self.transl[track](transl, t).astype(np.float32))


def check_arguments(out_path: str, *, detections=None, bbox=None, tracks=None,
                    batch_size: int = DEFAULT_BATCH_SIZE, focal=None, smooth=False,
                    smooth_min_cutoff: float = 1.0, smooth_beta: float = 0.0,
                    placement: str = 'auto', **unused) -> None:
  """VideoError (DemoError for --placement) for a bad combination or value of
  run_video's arguments."""
  del unused
  core.check_placement(placement)
  if not out_path.lower().endswith('.mp4'):
    raise video_io.VideoError(f'--out must be an .mp4 path for a video, got {out_path!r}')
  if detections and bbox:
    raise video_io.VideoError('give either --detections or --bbox, not both')
  if tracks is not None and not detections:
    raise video_io.VideoError('--tracks selects tracks of a --detections file; none given')
  if batch_size < 1:
    raise video_io.VideoError(f'--batch_size must be positive, got {batch_size}')
  if focal is not None and not (np.isfinite(focal) and focal > 0):
    raise video_io.VideoError(f'--focal must be a positive number of pixels, got {focal}')
  if smooth and not (smooth_min_cutoff > 0 and smooth_beta >= 0):
    raise video_io.VideoError(f'--smooth_min_cutoff must be > 0 Hz and --smooth_beta >= 0, '
                           f'got {smooth_min_cutoff} and {smooth_beta}')


def run_video(video_path: str, out_path: str, *, variables, model_config, smpl_model,
              detections: str | None = None, bbox: str | None = None,
              tracks: Sequence[int] | None = None, results_path: str | None = None,
              json_path: str | None = None, flip_test: bool = True,
              batch_size: int = DEFAULT_BATCH_SIZE, focal: float | None = None,
              smooth: bool = False, smooth_min_cutoff: float = 1.0,
              smooth_beta: float = 0.0, body_model: str = '',
              predict_fn: Callable | None = None, progress: bool = True,
              detector: detect.PersonDetector | None = None, placement: str = 'auto',
              hybrik_res_pk: str | None = None) -> dict[str, Any]:
  """Reads the video, predicts every frame's people, writes the video and results.

  Args:
    video_path: input video_io.
    out_path: output .mp4.
    variables, model_config, smpl_model: the model and the body model.
    detections: a detections file (video_io.load_detections), or None.
    bbox: 'x,y,w,h' of the person in frame 0, then tracked (without detections).
    tracks: with detections, keep only these track ids.
    results_path: the .npz (default: out_path with .npz).
    json_path: also write the results as JSON here.
    flip_test: average with the mirrored crop.
    batch_size: people per network call (compiled once).
    focal: assumed focal length (px) for every frame; None: HybrIK's 1000 px
      per 256 px crop (changes with the box).
    smooth, smooth_min_cutoff, smooth_beta: One Euro filter on rotations, shape
      and translation (the joints follow from them), off by default.
    body_model: description stored in the results.
    predict_fn: a `make_predict_fn` result to reuse (tests pass a stand-in).
    progress: show a tqdm bar.
    detector: finds the person without detections or --bbox (default
      `detect.default_detector()`).
    placement: 'auto', 'camera' or 'fit' (`core.resolve_placement`).
    hybrik_res_pk: also write HybrIK's res.pk (`hybrik_res`): one file per
      track (`hybrik_res.track_paths`), each track's valid frames.

  Returns:
    the results dict (results_lib.FIELDS, CAMERA_FIELDS for a camera model,
    and meta), plus 'out', 'results', 'json', 'res_pk' (the res.pk paths),
    'seconds' (wall time), 'frames_per_second', 'box_source' (one line).

  Raises:
    video_io.VideoError: bad video, detections, box; ValueError: bad arguments;
    core.DemoError: a placement the model cannot give.
  """
  check_arguments(out_path, detections=detections, bbox=bbox, tracks=tracks,
                  batch_size=batch_size, focal=focal, smooth=smooth,
                  smooth_min_cutoff=smooth_min_cutoff, smooth_beta=smooth_beta,
                  placement=placement)
  placement = core.resolve_placement(model_config, placement, focal)
  camera = core.has_camera(model_config)
  smplx = core.is_smplx(model_config)
  info = video_io.probe_video(video_path)
  note = video_io.missing_frames_note(info)
  if note:
    print(note, file=sys.stderr, flush=True)
  dets, tracking, box_source = people_boxes(info, detections, bbox, tracks, detector)
  num_tracks = len(dets.track_ids)
  results = results_lib.empty_results(
      info.num_frames, dets.track_ids, info.fps, (info.height, info.width),
      camera_dim=_camera_dim(model_config) if camera else None,
      body='smplx' if smplx else 'smpl')
  results.update(body_model=np.array(body_model), flip_test=np.bool_(flip_test),
                 smoothing=np.array(f'one_euro min_cutoff={smooth_min_cutoff} '
                                    f'beta={smooth_beta}' if smooth else 'none'),
                 placement=np.array(placement))
  if camera:
    results['camera_focal_length'] = np.float64(model_config.focal_length)
  # Tracking: one frame (its tracked people) per network call, as each box
  # depends on the previous frame's prediction; else batch_size people.
  batch = num_tracks if tracking else batch_size
  if predict_fn is None:
    predict_fn = core.make_predict_fn(model_config, smpl_model, flip_test=flip_test)
  predict = functools.partial(
      core.predict_people, predict_fn, variables, input_size=int(model_config.input_size),
      depth_unit=core.depth_factor(model_config), batch_size=batch, focal=focal,
      placement=placement,
      camera_focal_length=float(model_config.focal_length) if camera else None)
  smoother = _Smoother(num_tracks, smooth_min_cutoff, smooth_beta) if smooth else None
  colors = video_io.track_colors(num_tracks)
  faces = np.asarray(smpl_model.faces)
  results_path = results_path or out_path[:-4] + '.npz'
  res_paths = (hybrik_res.track_paths(hybrik_res_pk, dets.track_ids) if hybrik_res_pk
               else [])
  res_rows = ([[] for _ in range(num_tracks)] if hybrik_res_pk else None)
  res_info = dict(image_size=(info.height, info.width), video=video_path,
                  depth_unit=core.depth_factor(model_config),
                  focal_length=float(model_config.focal_length) if camera else None)
  outputs = [out_path, results_path] + ([json_path] if json_path else []) + res_paths
  start = time.perf_counter()
  with video_io.atomic_output(outputs) as tmp:
    with video_io.VideoWriter(tmp[0], info.width, info.height, info.fps) as writer, tqdm.tqdm(
        total=info.num_frames, unit='frame', disable=not progress, desc='video') as bar:
      done = 0
      for first, frames in _chunks(info, 1 if tracking else max(1, batch // num_tracks)):
        # Predict every person with a box in these frames, batch by batch.
        keys = [(first + k, p) for k in range(len(frames)) for p in range(num_tracks)
                if np.all(np.isfinite(dets.boxes[first + k, p]))]
        vertices = {}  # (frame, track) -> (V, 3) camera frame
        for g in range(0, len(keys), batch):
          group = keys[g:g + batch]
          pred = predict([frames[f - first] for f, _ in group],
                         np.stack([dets.boxes[f, p] for f, p in group]))
          vertices.update(_store(results, smoother, smpl_model, group, pred, dets.boxes,
                                 batch, info.fps, res_rows, res_info))
        for k, frame in enumerate(frames):
          f = first + k
          if tracking and f + 1 < info.num_frames:
            dets.boxes[f + 1] = _next_boxes(results, dets.boxes[f], f, info)
          people = [{'track': p, 'bbox': dets.boxes[f, p],
                     'valid': bool(results['valid'][f, p]),
                     'vertices': vertices.get((f, p)),
                     'intrinsics': _intrinsics(results, f, p)} for p in range(num_tracks)]
          writer.write(draw_frame(frame, people, faces, colors))
        bar.update(len(frames))
        done = first + len(frames)
    if done == 0:
      raise video_io.VideoError(f'video {video_path!r}: no frame could be decoded')
    if done < info.num_frames:  # the container's count was more than decodes
      print(f'warning: video {video_path!r}: decoded {done} of the {info.num_frames} '
            'frames its container lists; the results have those', file=sys.stderr)
      results = results_lib.truncate(results, done)
    results_lib.save_npz(tmp[1], results)
    if json_path:
      results_lib.save_json(tmp[2], results)
    if res_rows is not None:
      first_res = 2 + bool(json_path)
      width = results_lib.camera_dim(results) or 1
      for p, rows in enumerate(res_rows):
        rows = [r for r in rows if r['_frame'] < done]
        hybrik_res.write(tmp[first_res + p], hybrik_res.stack_rows(
            [{k: v for k, v in r.items() if k != '_frame'} for r in rows], width, smplx))
  seconds = time.perf_counter() - start
  results.update(out=out_path, results=results_path, json=json_path, res_pk=res_paths,
                 seconds=seconds, frames_per_second=done / seconds, box_source=box_source)
  return results


def people_boxes(info: video_io.VideoInfo, detections: str | None, bbox: str | None,
                 tracks: Sequence[int] | None, detector: detect.PersonDetector | None = None
                 ) -> tuple[video_io.Detections, bool, str]:
  """The boxes known before the run, whether later frames are tracked, and
  where the boxes came from (one line).

  A detections file: its boxes. --bbox: that box in frame 0, the rest NaN (to
  be tracked). Neither: the detector's person in every frame
  (`detect.track_largest`) if found in at least detect.MIN_TRACK_FRACTION of
  the frames, else the whole frame everywhere.
  """
  if detections:
    return video_io.load_detections(detections, info, tracks), False, 'boxes: --detections'
  boxes = np.full((info.num_frames, 1, 4), np.nan, np.float32)
  if bbox:
    boxes[0, 0] = video_io.parse_bbox_arg(bbox, info.width, info.height)
    source = 'boxes: --bbox in frame 0, then tracked'
  else:
    try:
      detector = detector or detect.default_detector()
    except detect.DetectorUnavailable as e:
      detector, why = None, str(e)
    hits = 0
    if detector is not None:
      found, hits = detect.track_largest(
          detector, itertools.islice(video_io.read_frames(info), info.num_frames),
          info.num_frames)
      why = (f'a person detected in only {hits} of {info.num_frames} frames' if hits
             else 'no person detected')
    if hits and hits >= detect.MIN_TRACK_FRACTION * info.num_frames:
      boxes[:, 0] = found
      source = (f'boxes: detected ({detector.name}) in {hits} of {info.num_frames} '
                'frames')
    else:
      boxes[:] = boxes_lib.whole_image(info.width, info.height)
      source = f'boxes: whole frame ({why})'
  return video_io.Detections(track_ids=np.array([0]), boxes=boxes), bool(bbox), source


def _chunks(info: video_io.VideoInfo, size: int):
  """Yields (index of the first frame, list of up to `size` frames)."""
  frames, start = [], 0
  for frame in itertools.islice(video_io.read_frames(info), info.num_frames):
    frames.append(frame)
    if len(frames) == size:
      yield start, frames
      start, frames = start + size, []
  if frames:
    yield start, frames


def _next_boxes(results, boxes: np.ndarray, f: int, info: video_io.VideoInfo) -> np.ndarray:
  """(P, 4) boxes for frame f + 1: each valid person's projected joints, else kept."""
  out = boxes.copy()
  for p in range(len(boxes)):
    if results['valid'][f, p]:
      box = video_io.box_from_joints(results[results_lib.joints2d_key(results)][f, p],
                                     info.width, info.height)
      if box is not None:
        out[p] = box
  return out


def _intrinsics(results, f: int, p: int) -> np.ndarray:
  fx = float(results['focal'][f, p])
  cx, cy = (float(v) for v in results['principal_point'][f, p])
  return np.array([[fx, 0.0, cx], [0.0, fx, cy], [0.0, 0.0, 1.0]])


def _camera_dim(model_config) -> int:
  """Width of a camera model's pred_camera: 3 (s, tx, ty) for the deconv head
  (Simple3DPoseBaseSMPLCam), 1 (s) for the heatmap head (HRNetSMPLCam) and
  HybrIK-X's."""
  return 1 if model_config.head == 'heatmap' or core.is_smplx(model_config) else 3


def _store(results, smoother, smpl_model, keys, pred, boxes, batch_size,
           fps, res_rows=None, res_info=None) -> dict[tuple[int, int], np.ndarray]:
  """Writes one group's predictions (smoothed if asked) into the results arrays
  (and, with res_rows, a HybrIK res.pk row per valid person into res_rows[track]).

  Returns the valid people's vertices, (frame, track) -> (V, 3) camera frame.
  """
  if results_lib.body_of(results) == 'smplx':
    return _store_smplx(results, smoother, smpl_model, keys, pred, boxes, batch_size,
                        fps, res_rows, res_info)
  betas, rotmats, transl = pred['betas'], pred['rotmats'], pred['transl']
  for i, (f, p) in enumerate(keys):
    if smoother is not None and pred['valid'][i]:
      betas[i], rotmats[i], transl[i] = smoother(p, f / fps, betas[i], rotmats[i], transl[i])
  vertices, joints29, joints_h36m, pose = pose_bodies(smpl_model, betas, rotmats, batch_size)
  cache = {}
  for i, (f, p) in enumerate(keys):
    results['has_box'][f, p] = True
    results['bbox'][f, p] = boxes[f, p]
    if not pred['valid'][i]:
      continue  # NaN rows: no pose is made up
    K = pred['intrinsics'][i]
    _store_placement(results, f, p, pred, i, transl[i], joints29[i] + transl[i])
    results['betas'][f, p] = betas[i]
    results['rotmats'][f, p] = rotmats[i]
    results['pose_axis_angle'][f, p] = pose[i]
    results['joints3d_24'][f, p] = results['joints3d_29'][f, p][:24]
    results['joints2d_24'][f, p] = results['joints2d_29'][f, p][:24]
    if res_rows is not None:
      camera = ({k: pred[k][i] for k in ('pred_camera', 'maxvals', 'xyz29')}
                if 'pred_camera' in pred else None)
      row = hybrik_res.person_row(
          uvd=pred['uvd29' if camera else 'uvd'][i], phi=pred['phi'][i], betas=betas[i],
          rotmats=rotmats[i], joints29=joints29[i], joints_h36m=joints_h36m[i],
          transl=transl[i], crop_box=pred['crop_box'][i], intrinsics=K,
          image_size=res_info['image_size'], img_path=f"{res_info['video']}#frame={f}",
          depth_unit=res_info['depth_unit'], camera=camera)
      res_rows[p].append(dict(row, _frame=f))
    cache[(f, p)] = vertices[i] + transl[i]
  return cache


def _store_placement(results, f: int, p: int, pred, i: int, transl: np.ndarray,
                     joints: np.ndarray) -> None:
  """What both bodies store for person p of frame f (row i of `pred`): valid,
  transl (3,) m, the camera (focal, principal_point, depth_fitted), the joints
  joints3d_J (J, 3) m in the camera frame and their projections joints2d_J
  (J, 2) px (J = len(joints): 29, or 71 for SMPL-X), the network's 2D joints,
  and a camera model's CAMERA_FIELDS."""
  K = pred['intrinsics'][i]
  n = len(joints)
  results['valid'][f, p] = True
  results['transl'][f, p] = transl
  results['focal'][f, p] = K[0, 0]
  results['principal_point'][f, p] = K[:2, 2]
  results['depth_fitted'][f, p] = pred['depth_fitted'][i]
  results[f'joints3d_{n}'][f, p] = joints
  results[f'joints2d_{n}'][f, p] = features.project(joints, K)
  results['joints2d_net'][f, p] = pred['joints_2d'][i]
  if 'pred_camera' in results:
    for name in results_lib.CAMERA_FIELDS:
      results[name][f, p] = pred[name][i].reshape(results[name].shape[2:])


def _store_smplx(results, smoother, smplx_model, keys, pred, boxes, batch_size,
                 fps, res_rows=None, res_info=None) -> dict[tuple[int, int], np.ndarray]:
  """`_store` for an SMPL-X model (HybrIK-X): SMPLX_FIELDS. With smoothing the
  shape (10 betas, kid blend, expression), rotations and translation are
  filtered and the bodies re-posed (`pose_bodies_smplx`); else the network's."""
  shape = np.concatenate([pred['betas'], pred['kid_blend'][:, None], pred['expression']], 1)
  rotmats, transl = pred['rotmats'], pred['transl']
  vertices, joints71, pose = pred['vertices'], pred['joints'], pred['pose_axis_angle']
  if smoother is not None:
    for i, (f, p) in enumerate(keys):
      if pred['valid'][i]:
        shape[i], rotmats[i], transl[i] = smoother(p, f / fps, shape[i], rotmats[i], transl[i])
    vertices, joints71, pose = pose_bodies_smplx(smplx_model, shape[:, :11], shape[:, 11:],
                                                 rotmats, batch_size)
  cache = {}
  for i, (f, p) in enumerate(keys):
    results['has_box'][f, p] = True
    results['bbox'][f, p] = boxes[f, p]
    if not pred['valid'][i]:
      continue  # NaN rows: no pose is made up
    _store_placement(results, f, p, pred, i, transl[i], joints71[i] + transl[i])
    results['betas'][f, p] = shape[i, :10]
    results['kid_blend'][f, p] = shape[i, 10]
    results['expression'][f, p] = shape[i, 11:]
    results['rotmats'][f, p] = rotmats[i]
    results['pose_axis_angle'][f, p] = pose[i]
    for name, part in core.smplx_pose_parts(pose[i]).items():
      results[name][f, p] = part
    if res_rows is not None:
      row = {k: pred[k][i] for k in ('uvd', 'xyz71', 'maxvals', 'pred_camera', 'phi',
                                     'crop_box')}
      row.update(betas=shape[i, :10], kid_blend=shape[i, 10], rotmats=rotmats[i],
                 transl=transl[i])
      res = hybrik_res.smplx_person_row_of(
          row, joints71[i], image_size=res_info['image_size'],
          img_path=f"{res_info['video']}#frame={f}", depth_unit=res_info['depth_unit'],
          focal_length=res_info['focal_length'])
      res_rows[p].append(dict(res, _frame=f))
    cache[(f, p)] = vertices[i] + transl[i]
  return cache


def run_from_checkpoint(video_path: str, checkpoint: str | None, out_path: str, *,
                        smpl_path: str | None = None, h36m_regressor: str | None = None,
                        kid_template: str | None = None, **kwargs) -> dict[str, Any]:
  """`run_video` with the model and body model loaded as the image demo does."""
  check_arguments(out_path, **kwargs)  # bad arguments and videos fail before
  video_io.probe_video(video_path)       # the model loads
  model = core.load_model(checkpoint, smpl_path, h36m_regressor,
                          kid_template=kid_template)
  return run_video(video_path, out_path, variables=model.variables,
                   model_config=model.model_config, smpl_model=model.smpl_model,
                   body_model=model.body_model, **kwargs)


def parse_tracks(text: str | None) -> list[int] | None:
  """--tracks '1,3' -> [1, 3]."""
  if text is None:
    return None
  try:
    return [int(v) for v in text.replace(' ', '').split(',') if v]
  except ValueError as e:
    raise video_io.VideoError(f'--tracks must be integers separated by commas, got {text!r}') from e
