"""Per-frame, per-person results of a video run: one .npz (or .json) file.

T frames, P tracks (people). Every 3D quantity is in the camera frame of the
video (OpenCV axes: x right, y down, z forward, metres); 2D in pixels of the
frame (x right, y down, pixel centres at integers). Rows with valid=false hold
NaN in every float field (JSON: null), never a made-up pose.
docs/VIDEO_RESULTS.md documents each field; FIELDS below is the list, and
CAMERA_FIELDS those added for a model that predicts a camera. An SMPL-X model's
results (HybrIK-X; META 'body' = 'smplx') hold SMPLX_FIELDS instead of FIELDS'
SMPL body fields (SMPL_BODY_FIELDS).
"""

import json
import os
from typing import Any

import numpy as np

# name: (shape after (T, P), dtype, meaning). Per-frame-and-track fields.
FIELDS = {
    'valid': ((), np.bool_, 'the model gave a finite prediction for this person'),
    'has_box': ((), np.bool_, 'a box was known (detections file: a box for this track in this frame)'),
    'bbox': ((4,), np.float32, 'person box [x_min, y_min, x_max, y_max], px'),
    'betas': ((10,), np.float32, 'SMPL shape coefficients'),
    'pose_axis_angle': ((24, 3), np.float32,
                        'SMPL pose, axis-angle (radians); joint 0 = global orientation in the camera frame'),
    'rotmats': ((24, 3, 3), np.float32, 'the same pose as local rotation matrices'),
    'transl': ((3,), np.float32,
               'SMPL translation, metres: camera-frame body = SMPL(betas, pose) + transl'),
    'focal': ((), np.float32, 'assumed focal length, px'),
    'principal_point': ((2,), np.float32, 'assumed principal point (cx, cy), px'),
    'depth_fitted': ((), np.bool_,
                     'transl fitted to the 2D joints (false: root put at the box-size depth)'),
    'joints3d_24': ((24, 3), np.float32, 'SMPL joints, camera frame, metres'),
    'joints3d_29': ((29, 3), np.float32, "HybrIK's 29 joints (24 + head top, finger tips, big toes)"),
    'joints2d_24': ((24, 2), np.float32, 'joints3d_24 projected with the assumed camera, px'),
    'joints2d_29': ((29, 2), np.float32, 'joints3d_29 projected, px'),
    'joints2d_net': ((24, 2), np.float32, "the network's own 2D joints (its uv output), px"),
}
# FIELDS of the SMPL body, replaced by SMPLX_FIELDS in an SMPL-X model's results.
SMPL_BODY_FIELDS = ('betas', 'pose_axis_angle', 'rotmats', 'joints3d_24', 'joints3d_29',
                    'joints2d_24', 'joints2d_29', 'joints2d_net')
# An SMPL-X model's body (HybrIK-X): smplx.SMPLX(betas, expression, the pose
# parts, transl) is the camera-frame mesh; its kid blend needs the kid template.
SMPLX_FIELDS = {
    'betas': ((10,), np.float32, 'SMPL-X shape coefficients'),
    'kid_blend': ((), np.float32, "the kid template's weight (HybrIK-X's 11th shape value)"),
    'expression': ((10,), np.float32, 'SMPL-X expression coefficients'),
    'global_orient': ((3,), np.float32, 'axis-angle, radians: the pelvis in the camera frame'),
    'body_pose': ((21, 3), np.float32, 'axis-angle of body joints 1..21'),
    'jaw_pose': ((3,), np.float32, 'axis-angle of the jaw (joint 22)'),
    'leye_pose': ((3,), np.float32, 'axis-angle of the left eye (joint 23)'),
    'reye_pose': ((3,), np.float32, 'axis-angle of the right eye (joint 24)'),
    'left_hand_pose': ((15, 3), np.float32, 'axis-angle of the left hand joints 25..39'),
    'right_hand_pose': ((15, 3), np.float32, 'axis-angle of the right hand joints 40..54'),
    'pose_axis_angle': ((55, 3), np.float32, 'the full pose, 55 joints, axis-angle'),
    'rotmats': ((55, 3, 3), np.float32, 'the full pose as local rotation matrices'),
    'joints3d_71': ((71, 3), np.float32,
                    "HybrIK-X's 71 joints (55 SMPL-X joints + 16 leaf vertices), camera frame, m"),
    'joints2d_71': ((71, 2), np.float32, 'joints3d_71 projected, px'),
    'joints2d_net': ((71, 2), np.float32, "the network's own 2D joints (its uv output), px"),
}
BODIES = ('smpl', 'smplx')
# A camera model's outputs (models.camera.CameraOutput), as the network gave
# them (before --smooth), whatever the placement. 'C' in a shape: the camera's
# width, 1 (HRNetSMPLCam, HybrIK-X: s) or 3 (Simple3DPoseBaseSMPLCam: s, tx, ty);
# 'J': the model's joints, 29 (SMPL) or 71 (SMPL-X).
CAMERA_FIELDS = {
    'pred_camera': (('C',), np.float32, "the network's camera: weak-perspective scale s (and tx, ty)"),
    'cam_scale': ((), np.float32, 'the scale used (HRNet: refined at evaluation), root depth = '
                  'focal_length / (input_size x cam_scale) in the crop camera'),
    'cam_root': ((3,), np.float32, "the root joint (pelvis) placed by the model's camera, m"),
    'cam_transl': ((3,), np.float32,
                   "the model's transl, m: HybrIK's vertices (relative to the H36M pelvis) + cam_transl"),
    'pred_sigma': (('J',), np.float32, "the J joints' predicted uncertainty, in (0, 1)"),
}
# Per-run fields.
META = ('fps', 'image_size', 'frame_index', 'time', 'track_id', 'body', 'body_model',
        'flip_test', 'smoothing', 'placement', 'camera_focal_length')
FORMAT = 'hybrik_jax video results v1'


def field_specs(camera_dim: int | None = None,
                body: str = 'smpl') -> dict[str, tuple[tuple[int, ...], Any]]:
  """{name: (shape after (T, P), dtype)}: FIELDS (body 'smplx': with SMPLX_FIELDS
  for the SMPL body's), and CAMERA_FIELDS with 'C' = camera_dim when the model
  predicts a camera (camera_dim 1 or 3)."""
  if body not in BODIES:
    raise ValueError(f'body must be one of {BODIES}, got {body!r}')
  fields = dict(FIELDS)
  if body == 'smplx':
    fields = {n: f for n, f in FIELDS.items() if n not in SMPL_BODY_FIELDS}
    fields.update(SMPLX_FIELDS)
  specs = {name: (shape, dtype) for name, (shape, dtype, _) in fields.items()}
  if camera_dim is not None:
    joints = 71 if body == 'smplx' else 29
    for name, (shape, dtype, _) in CAMERA_FIELDS.items():
      specs[name] = (tuple({'C': camera_dim, 'J': joints}.get(n, n) for n in shape), dtype)
  return specs


def camera_dim(results: dict[str, Any]) -> int | None:
  """The camera's width of results with CAMERA_FIELDS, else None."""
  return results['pred_camera'].shape[-1] if 'pred_camera' in results else None


def body_of(results: dict[str, Any]) -> str:
  """'smpl' or 'smplx': the body of the results (META 'body'; 'smpl' if absent)."""
  return str(results.get('body', 'smpl'))


def specs_of(results: dict[str, Any]) -> dict[str, tuple[tuple[int, ...], Any]]:
  """`field_specs` of these results (their camera width and body)."""
  return field_specs(camera_dim(results), body_of(results))


def joints2d_key(results: dict[str, Any]) -> str:
  """The projected joints of the whole body: joints2d_29 (SMPL), joints2d_71 (SMPL-X)."""
  return 'joints2d_71' if body_of(results) == 'smplx' else 'joints2d_29'


def empty_results(num_frames: int, track_ids, fps: float, image_size,
                  camera_dim: int | None = None, body: str = 'smpl') -> dict[str, Any]:  # pylint: disable=redefined-outer-name
  """Arrays for T frames and the tracks, all rows invalid (NaN / false); with
  the CAMERA_FIELDS when camera_dim (the model's camera width) is given; body
  'smpl' or 'smplx' (`field_specs`)."""
  p = len(track_ids)
  out = {'body': np.array(body)}
  for name, (shape, dtype) in field_specs(camera_dim, body).items():
    fill = False if dtype == np.bool_ else np.nan
    out[name] = np.full((num_frames, p) + shape, fill, dtype)
  out.update(fps=np.float64(fps), image_size=np.asarray(image_size, np.int32),
             frame_index=np.arange(num_frames, dtype=np.int32),
             time=np.arange(num_frames, dtype=np.float64) / float(fps),
             track_id=np.asarray(track_ids, np.int64))
  return out


def truncate(results: dict[str, Any], num_frames: int) -> dict[str, Any]:
  """The first num_frames frames of the results."""
  out = dict(results)
  for name in list(specs_of(results)) + ['frame_index', 'time']:
    out[name] = results[name][:num_frames]
  return out


def check_results(results: dict[str, Any]) -> None:
  """ValueError unless every field is there with its shape (the camera fields
  all or none)."""
  t, p = results['valid'].shape
  present = [n for n in CAMERA_FIELDS if n in results]
  if present and len(present) != len(CAMERA_FIELDS):
    raise ValueError(f'results have the camera fields {present} but not all of '
                     f'{list(CAMERA_FIELDS)}')
  for name, (shape, _) in specs_of(results).items():
    if name not in results:
      raise ValueError(f'results lack {name!r}')
    if results[name].shape != (t, p) + shape:
      raise ValueError(f'results[{name!r}] has shape {results[name].shape}, expected '
                       f'{(t, p) + shape}')


def save_npz(path: str, results: dict[str, Any]) -> None:
  check_results(results)
  with open(path, 'wb') as f:  # np.savez would append .npz to a temporary name
    np.savez(f, format=np.array(FORMAT), **{k: np.asarray(v) for k, v in results.items()})


def _json_value(x: np.ndarray):
  """Array -> nested lists with NaN as None (plain JSON has no NaN)."""
  x = np.asarray(x)
  if x.dtype.kind == 'f':
    return np.where(np.isfinite(x), x, None).tolist() if x.ndim else (
        float(x) if np.isfinite(x) else None)
  return x.tolist()


def save_json(path: str, results: dict[str, Any]) -> None:
  """{"format", per-run fields, "frames": [{"frame", "time", "people": [...]}]}."""
  check_results(results)
  t, p = results['valid'].shape
  doc = {'format': FORMAT}
  for key in META:
    if key in results:
      doc[key] = _json_value(results[key])
  frames = []
  for i in range(t):
    people = []
    for j in range(p):
      person = {'track_id': int(results['track_id'][j])}
      for name in specs_of(results):
        person[name] = _json_value(results[name][i, j])
      people.append(person)
    frames.append({'frame': int(results['frame_index'][i]),
                   'time': float(results['time'][i]), 'people': people})
  doc['frames'] = frames
  with open(path, 'w', encoding='utf-8') as f:
    json.dump(doc, f, allow_nan=False)


def load_results(path: str) -> dict[str, np.ndarray]:
  """Reads a results .npz or .json back into the arrays of `empty_results`."""
  if os.path.splitext(path)[1].lower() == '.npz':
    with np.load(path) as data:
      out = {k: data[k] for k in data.files if k != 'format'}
    return out
  with open(path, encoding='utf-8') as f:
    doc = json.load(f)
  frames = doc['frames']
  out = {}
  for key in META:
    if key in doc:
      out[key] = np.asarray(doc[key])
  out['fps'] = np.float64(doc['fps'])
  out['image_size'] = np.asarray(doc['image_size'], np.int32)
  out['frame_index'] = np.asarray([fr['frame'] for fr in frames], np.int32)
  out['time'] = np.asarray([fr['time'] for fr in frames], np.float64)
  out['track_id'] = np.asarray(doc['track_id'], np.int64)
  body = str(doc.get('body', 'smpl'))
  specs = field_specs(None, body)
  first = [person for fr in frames for person in fr['people']][:1]
  if first and 'pred_camera' in first[0]:
    specs = field_specs(len(first[0]['pred_camera']), body)
  for name, (shape, dtype) in specs.items():
    rows = [[person[name] for person in fr['people']] for fr in frames]
    if dtype == np.bool_:
      out[name] = np.asarray(rows, np.bool_).reshape((len(frames), -1) + shape)
    else:
      arr = np.asarray(rows, object).reshape((len(frames), -1) + shape) if rows else (
          np.zeros((0, 0) + shape))
      out[name] = np.where(arr == None, np.nan, arr).astype(dtype)  # pylint: disable=singleton-comparison
  return out
