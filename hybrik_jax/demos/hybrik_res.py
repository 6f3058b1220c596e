"""HybrIK's `res.pk`: the demos' results in the layout its scripts/demo_video.py pickles.

Jeff-sjtu/HybrIK's video demo (`--save-pk`) keeps, per frame it found a person in,
one row of each of RES_KEYS, then pickles a dict of those keys, each the rows
stacked (`np.stack`: a numpy array with the frames first). Its Blender add-on
reads `pred_thetas` (24 rotation matrices, flat), `pred_betas` (averaged over
the frames) and `transl_camsys`. docs/DEMO.md ("HybrIK's res.pk") says what each
field holds, units and how this project fills it for a model without a camera
(the 2D fit's placement).

`person_row` makes one row from one person's prediction (the demos' fields),
`stack_rows` the dict, `write` pickles it atomically (a temporary file beside,
then renamed).

HybrIK-X (SMPL-X models): its scripts/demo_video_x.py declares its own keys,
RES_KEYS_X (with 'f' and 'scale_mult', without 'transl_camsys'); its saving
block is commented out in the release and names outputs HRNetSMPLXCamKid does
not return, so `smplx_person_row` fills each key with the HybrIK-X output it
stands for (docs/DEMO.md, "HybrIK-X's res.pk"), shapes as that block's
reshapes give them where they apply.
"""

import os
import pickle
import tempfile
from typing import Any, Mapping, Sequence

import numpy as np

from hybrik_jax.body import constants

# HybrIK-X's crop: the box grown x1.25 (SimpleTransform3DSMPLX's scale_mult).
SCALE_MULT = 1.25
_J71 = 71
# HybrIK's transl_camsys = transl x 256 / the crop's width (its input size, px).
CAMSYS_SIDE = 256.0
_J29 = constants.NUM_JOINTS_29
_F32 = np.float32


def _layout(body: str, camera_dim: int = 1) -> dict[str, tuple[tuple[int, ...], Any]]:
  """A res.pk's keys in the released order, each with its per-row shape and dtype.

  body: 'smpl' (HybrIK's scripts/demo_video.py; camera_dim: pred_camera's
  width) or 'smplx' (the keys HybrIK-X's scripts/demo_video_x.py declares).
  """
  if body == 'smpl':
    return {'pred_uvd': ((_J29, 3), _F32), 'pred_xyz_17': ((17, 3), _F32),
            'pred_xyz_29': ((_J29, 3), _F32), 'pred_xyz_24_struct': ((24, 3), _F32),
            'pred_scores': ((_J29,), _F32), 'pred_camera': ((camera_dim,), _F32),
            'pred_betas': ((10,), _F32), 'pred_thetas': ((24 * 9,), _F32),
            'pred_phi': ((23, 2), _F32), 'pred_cam_root': ((3,), _F32),
            'transl': ((3,), _F32), 'transl_camsys': ((3,), _F32),
            'bbox': ((4,), np.float64), 'height': ((), np.int64), 'width': ((), np.int64),
            'img_path': ((), np.str_)}
  if body == 'smplx':
    return {'pred_uvd': ((_J71, 3), _F32), 'pred_xyz_17': ((17, 3), _F32),
            'pred_xyz_29': ((_J71, 3), _F32), 'pred_xyz_24_struct': ((_J71, 3), _F32),
            'pred_scores': ((_J29,), _F32), 'pred_camera': ((1,), _F32),
            'f': ((), np.float64), 'pred_betas': ((11,), _F32),
            'pred_thetas': ((55 * 9,), _F32), 'pred_phi': ((54, 2), _F32),
            'scale_mult': ((), np.float64), 'pred_cam_root': ((3,), _F32),
            'transl': ((3,), _F32), 'bbox': ((4,), np.float64), 'height': ((), np.int64),
            'width': ((), np.int64), 'img_path': ((), np.str_)}
  raise ValueError(f"body must be 'smpl' or 'smplx', got {body!r}")


# The keys of the released res_db (HybrIK's) and of HybrIK-X's, in their order.
RES_KEYS = tuple(_layout('smpl'))
RES_KEYS_X = tuple(_layout('smplx'))


def _shaped(row: Mapping[str, Any], layout: Mapping[str, tuple[tuple[int, ...], Any]]
            ) -> dict[str, Any]:
  """row's values cast and reshaped to the layout, in its order."""
  return {k: np.asarray(row[k], dtype).reshape(shape) for k, (shape, dtype) in layout.items()}


def smplx_person_row(*, uvd: np.ndarray, xyz71: np.ndarray, joints71: np.ndarray,
                     maxvals: np.ndarray, pred_camera: np.ndarray, betas: np.ndarray,
                     kid_blend, rotmats: np.ndarray, phi: np.ndarray, transl: np.ndarray,
                     crop_box: np.ndarray, image_size: Sequence[int], img_path: str,
                     depth_unit: float, focal_length: float) -> dict[str, Any]:
  """One SMPL-X person's row of HybrIK-X's res.pk (RES_KEYS_X).

  Args:
    uvd: (71, 3) the network's normalised uvd.
    xyz71: (71, 3) the back-projected joints, metres, root-relative.
    joints71: (71, 3) the posed body's 55 joints + 16 leaves, model frame
      (pelvis at the origin), metres.
    maxvals: (71,) heatmap peaks; pred_camera: (1,) the network's scale.
    betas: (10,), kid_blend: (), rotmats: (55, 3, 3), phi: (54, 2).
    transl: (3,) metres: camera frame = model frame + transl (SMPL-X's transl).
    crop_box: (4,) xyxy px, the crop; image_size: (height, width) px.
    img_path: the frame's source; depth_unit: metres (2.2 for HybrIK-X);
    focal_length: the model's, px per input_size px of crop ('f').

  Returns:
    {key: numpy value} for every key of RES_KEYS_X.
  """
  joints71 = np.asarray(joints71, np.float64)
  transl = np.asarray(transl, np.float64)
  df = float(depth_unit)
  row = {
      'pred_uvd': uvd, 'pred_xyz_17': np.full((17, 3), np.nan),
      'pred_xyz_29': np.asarray(xyz71, np.float64) / df,
      'pred_xyz_24_struct': (joints71 - joints71[0]) / df,
      'pred_scores': np.asarray(maxvals).reshape(-1)[:_J29], 'pred_camera': pred_camera,
      'f': float(focal_length),
      'pred_betas': np.concatenate([np.asarray(betas).reshape(10),
                                    np.asarray(kid_blend).reshape(1)]),
      'pred_thetas': np.asarray(rotmats).reshape(-1), 'pred_phi': phi,
      'scale_mult': SCALE_MULT, 'pred_cam_root': joints71[0] + transl, 'transl': transl,
      'bbox': np.asarray(crop_box, np.float64), 'height': int(image_size[0]),
      'width': int(image_size[1]), 'img_path': str(img_path)}
  return _shaped(row, _layout('smplx'))


def smplx_person_row_of(person: Mapping[str, Any], joints71: np.ndarray, *,
                        image_size: Sequence[int], img_path: str, depth_unit: float,
                        focal_length: float) -> dict[str, Any]:
  """`smplx_person_row` from one person's demo fields (uvd, xyz71, maxvals,
  pred_camera, betas, kid_blend, rotmats, phi, transl, crop_box: the image
  demo's prediction or a video frame's row); joints71 (71, 3) model frame."""
  return smplx_person_row(
      uvd=person['uvd'], xyz71=person['xyz71'], joints71=joints71,
      maxvals=person['maxvals'], pred_camera=person['pred_camera'], betas=person['betas'],
      kid_blend=person['kid_blend'], rotmats=person['rotmats'], phi=person['phi'],
      transl=person['transl'], crop_box=person['crop_box'], image_size=image_size,
      img_path=img_path, depth_unit=depth_unit, focal_length=focal_length)


def person_row(*, uvd: np.ndarray, phi: np.ndarray, betas: np.ndarray,
               rotmats: np.ndarray, joints29: np.ndarray, joints_h36m: np.ndarray,
               transl: np.ndarray, crop_box: np.ndarray, intrinsics: np.ndarray,
               image_size: Sequence[int], img_path: str, depth_unit: float,
               camera: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
  """One person's row of res.pk.

  Args:
    uvd: the network's normalised uvd, (24, 3) (models without a camera) or
      (29, 3).
    phi (23, 2), betas (10,), rotmats (24, 3, 3): the pose and shape.
    joints29: (29, 3) the body's 29 joints in the model frame, metres (the
      first 24 SMPL's); joints_h36m: (17, 3) the same body's H36M joints.
    transl: (3,) metres, the demo's placement: camera frame = model frame +
      transl.
    crop_box: (4,) xyxy px, the crop (`core.crop_box`).
    intrinsics: (3, 3) the image's camera.
    image_size: (height, width) px.
    img_path: the frame's source (a path, or 'VIDEO#frame=N').
    depth_unit: the model's depth_factor, metres (HybrIK's xyz are in it).
    camera: a camera model's outputs for this person (pred_camera (C,),
      maxvals (29,), xyz29 (29, 3) m root-relative; uvd is then its (29, 3)),
      or None: those fields come from the placed body (docs/DEMO.md).

  Returns:
    {key: numpy value} for every key of RES_KEYS.
  """
  rotmats = np.asarray(rotmats, np.float64)
  joints29 = np.asarray(joints29, np.float64)
  h36m = np.asarray(joints_h36m, np.float64)
  transl = np.asarray(transl, np.float64)
  crop_box = np.asarray(crop_box, np.float64)
  side = float(crop_box[2] - crop_box[0])
  df = float(depth_unit)
  # HybrIK's transl is added to its vertices, which are relative to the H36M
  # pelvis; its cam_root is the same vector (its joints are root-relative).
  res_transl = transl + h36m[0]
  uvd = np.asarray(uvd, np.float64)
  if camera is not None:
    pred_uvd = uvd
    xyz29 = np.asarray(camera['xyz29'], np.float64) / df
    scores = np.asarray(camera['maxvals'], np.float64)
    pred_camera = np.asarray(camera['pred_camera'], np.float64).reshape(-1)
  else:
    # The 24 joints are the network's; the 5 leaves (head top, finger tips,
    # toes) are the placed body's, projected into the crop.
    cam29 = joints29 + transl
    px = cam29 @ np.asarray(intrinsics, np.float64).T
    px = px[:, :2] / px[:, 2:]
    centre = 0.5 * (crop_box[:2] + crop_box[2:])
    leaf = np.concatenate([(px - centre) / side, (cam29[:, 2:] - cam29[0, 2]) / df], 1)
    pred_uvd = np.concatenate([uvd[:24], leaf[24:]], 0)
    xyz29 = (joints29 - joints29[0]) / df
    scores = np.full(_J29, np.nan)
    # The weak-perspective scale whose depth f / (S s) is the root's.
    z_root = joints29[0, 2] + transl[2]
    pred_camera = np.array([float(intrinsics[0, 0]) / (side * z_root)])
  row = {
      'pred_uvd': pred_uvd, 'pred_xyz_17': (h36m - h36m[0]) / df, 'pred_xyz_29': xyz29,
      'pred_xyz_24_struct': (joints29[:24] - joints29[0]) / df, 'pred_scores': scores,
      'pred_camera': pred_camera, 'pred_betas': np.asarray(betas),
      'pred_thetas': rotmats.reshape(24 * 9), 'pred_phi': np.asarray(phi),
      'pred_cam_root': res_transl, 'transl': res_transl,
      'transl_camsys': res_transl * CAMSYS_SIDE / side, 'bbox': crop_box,
      'height': int(image_size[0]), 'width': int(image_size[1]), 'img_path': str(img_path)}
  return _shaped(row, _layout('smpl', pred_camera.shape[0]))


def stack_rows(rows: Sequence[Mapping[str, Any]], camera_dim: int = 1,
               smplx: bool = False) -> dict[str, np.ndarray]:
  """The released res_db: each key's rows stacked, (N, ...) (N = 0: empty
  arrays of the row shapes; camera_dim: pred_camera's width then; smplx:
  HybrIK-X's keys then, else told by the rows)."""
  if not rows:
    layout = _layout('smplx' if smplx else 'smpl', camera_dim)
    return {k: np.zeros((0,) + shape, dtype) for k, (shape, dtype) in layout.items()}
  keys = RES_KEYS_X if 'scale_mult' in rows[0] else RES_KEYS
  return {k: np.stack([r[k] for r in rows]) for k in keys}


def write(path: str, res_db: Mapping[str, np.ndarray]) -> None:
  """Pickles res_db to path: a temporary file in its folder, then renamed."""
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', dir=folder)
  try:
    with os.fdopen(fd, 'wb') as f:
      pickle.dump(dict(res_db), f)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def read(path: str) -> dict[str, np.ndarray]:
  """A res.pk back (trusted files only: pickle)."""
  with open(path, 'rb') as f:
    return pickle.load(f)


def track_paths(path: str, track_ids: Sequence[int]) -> list[str]:
  """One res.pk per track (HybrIK's holds one person): PATH for a single
  track; PATH's stem + '_track{id}' + its extension for several."""
  if len(track_ids) == 1:
    return [path]
  stem, ext = os.path.splitext(path)
  return [f'{stem}_track{int(t)}{ext or ".pk"}' for t in track_ids]
