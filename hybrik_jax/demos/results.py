"""Per-frame, per-person results of a video run: one .npz (or .json) file.

T frames, P tracks (people). Every 3D quantity is in the camera frame of the
video (OpenCV axes: x right, y down, z forward, metres); 2D in pixels of the
frame (x right, y down, pixel centres at integers). Rows with valid=false hold
NaN in every float field (JSON: null), never a made-up pose.
docs/VIDEO_RESULTS.md documents each field; FIELDS below is the list, and
CAMERA_FIELDS those added for a model that predicts a camera.
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
# A camera model's outputs (models.camera.CameraOutput), as the network gave
# them (before --smooth), whatever the placement. 'C' in a shape: the camera's
# width, 1 (HRNetSMPLCam: s) or 3 (Simple3DPoseBaseSMPLCam: s, tx, ty).
CAMERA_FIELDS = {
    'pred_camera': (('C',), np.float32, "the network's camera: weak-perspective scale s (and tx, ty)"),
    'cam_scale': ((), np.float32, 'the scale used (HRNet: refined at evaluation), root depth = '
                  'focal_length / (input_size x cam_scale) in the crop camera'),
    'cam_root': ((3,), np.float32, "the root joint (pelvis) placed by the model's camera, m"),
    'cam_transl': ((3,), np.float32,
                   "the model's transl, m: HybrIK's vertices (relative to the H36M pelvis) + cam_transl"),
    'pred_sigma': ((29,), np.float32, "the 29 joints' predicted uncertainty, in (0, 1)"),
}
# Per-run fields.
META = ('fps', 'image_size', 'frame_index', 'time', 'track_id', 'body_model',
        'flip_test', 'smoothing', 'placement', 'camera_focal_length')
FORMAT = 'hybrik_jax video results v1'


def field_specs(camera_dim: int | None = None) -> dict[str, tuple[tuple[int, ...], Any]]:
  """{name: (shape after (T, P), dtype)}: FIELDS, and CAMERA_FIELDS with 'C' =
  camera_dim when the model predicts a camera (camera_dim 1 or 3)."""
  specs = {name: (shape, dtype) for name, (shape, dtype, _) in FIELDS.items()}
  if camera_dim is not None:
    for name, (shape, dtype, _) in CAMERA_FIELDS.items():
      specs[name] = (tuple(camera_dim if n == 'C' else n for n in shape), dtype)
  return specs


def camera_dim(results: dict[str, Any]) -> int | None:
  """The camera's width of results with CAMERA_FIELDS, else None."""
  return results['pred_camera'].shape[-1] if 'pred_camera' in results else None


def empty_results(num_frames: int, track_ids, fps: float, image_size,
                  camera_dim: int | None = None) -> dict[str, Any]:  # pylint: disable=redefined-outer-name
  """Arrays for T frames and the tracks, all rows invalid (NaN / false); with
  the CAMERA_FIELDS when camera_dim (the model's camera width) is given."""
  p = len(track_ids)
  out = {}
  for name, (shape, dtype) in field_specs(camera_dim).items():
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
  for name in list(field_specs(camera_dim(results))) + ['frame_index', 'time']:
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
  for name, (shape, _) in field_specs(camera_dim(results)).items():
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
      for name in field_specs(camera_dim(results)):
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
  specs = dict(field_specs())
  first = [person for fr in frames for person in fr['people']][:1]
  if first and 'pred_camera' in first[0]:
    specs = field_specs(len(first[0]['pred_camera']))
  for name, (shape, dtype) in specs.items():
    rows = [[person[name] for person in fr['people']] for fr in frames]
    if dtype == np.bool_:
      out[name] = np.asarray(rows, np.bool_).reshape((len(frames), -1) + shape)
    else:
      arr = np.asarray(rows, object).reshape((len(frames), -1) + shape) if rows else (
          np.zeros((0, 0) + shape))
      out[name] = np.where(arr == None, np.nan, arr).astype(dtype)  # pylint: disable=singleton-comparison
  return out
