r"""The demos' core: crop, predict, place, draw (one person or many, any source).

Both demos (`demos.image`, `demos.video`) run every person through here:

  crop     HybrIK's test crop of the box (x1.25, `input_pipeline.preprocess_image`)
           and the assumed camera: an arbitrary image has no intrinsics, so, as
           HybrIK's scripts/demo_image.py, a virtual focal length of 1000 px per
           256 px of crop (f = FOCAL_PER_CROP x the crop side, image px), the
           principal point at the image centre; or a given focal length.
  predict  the network with the flip test, decoded, the body re-skinned
           (`make_predict_fn`, one jit for any batch of people).
  place    the body's translation, one of two ways (`resolve_placement`):
           'camera': a model that predicts a camera (model_config.predict_camera,
           HybrIK's camera models) is given the crop's box and the image centre
           and places the body itself (`models.predict`: cam_root, transl), as
           HybrIK's demo renders it: the image's focal length is the model's
           (focal_length px per input_size px of crop), the principal point the
           image centre, and the mesh (its H36M pelvis, as HybrIK's vertices)
           at the model's `transl`.
           'fit': the HybrIK-Transformer predicts root-relative joints only, so
           the body's 24 joints (metric, from the predicted shape and rotations)
           are placed where their projections best match the predicted 2D
           joints (linear least squares, `estimate_translation`), in two rounds
           (the uvd lifting depends on the root depth). When the fit is
           degenerate or more than MAX_DEPTH_RATIO off the crop's depth
           (`depth_guess`: where the network's depth unit, the model's
           depth_factor metres, spans the crop; an untrained model), the root is
           put on the ray through the box centre at that depth instead.
  draw     the meshes over the image (nearest in front, `draw_meshes`), and a
           side view (`render.side_view`).
"""

import dataclasses
from typing import Any, Callable, Sequence

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from hybrik_jax import errors
from hybrik_jax import models
from hybrik_jax.body import geometry
from hybrik_jax.data import augment
from hybrik_jax.data import input_pipeline
from hybrik_jax.data import render
from hybrik_jax.demos import PLACEMENTS
from hybrik_jax.models import config as model_config_lib

# HybrIK's demo: focal length 1000 px for a 256 px crop.
FOCAL_PER_CROP = 1000.0 / 256.0
# The fitted root depth is trusted within this factor of the crop's depth.
MAX_DEPTH_RATIO = 3.0
# Mesh colour (light blue-grey) and the overlay's opacity (HybrIK: 0.9).
MESH_COLOR = (0.70, 0.78, 0.92)
OVERLAY_ALPHA = 0.9
SIDE_BACKGROUND = (245, 245, 245)

DEPTH_FITTED = 'fitted to the 2D joints'
DEPTH_FROM_BOX = 'from the box size (the 2D fit was implausible)'
DEPTH_FROM_CAMERA = "the model's predicted camera"


HOW_TO_GET_A_CHECKPOINT = """\
no checkpoint given (--checkpoint DIR). Get one of:
  * train on synthetic humans (CPU is enough for a first model):
      python -m hybrik_jax.prepare_data --dataset synthetic_humans --config small
      python -m hybrik_jax.train --config configs/synthetic.py --workdir /tmp/synthetic
    then pass --checkpoint /tmp/synthetic (a training workdir works) or an
    averaged export (python -m hybrik_jax.average_checkpoints);
  * convert the published PyTorch weights (boreshkinai/hybrik-transformer or
    Jeff-sjtu/HybrIK):
      python -m hybrik_jax.convert --torch_checkpoint model.pth --out /tmp/converted
    and pass --checkpoint /tmp/converted --smpl basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"""


class DemoError(errors.InputError):
  """Bad demo input (unreadable image, box outside the image, no checkpoint)."""


# ----------------------------------------------------------------------------
# The model.
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DemoModel:
  """What the demos run: the network's variables and config, the body model
  (a body.smpl.SMPLModel, or a body.smplx.SMPLXModel for an SMPL-X model)."""
  variables: Any
  model_config: Any
  smpl_model: Any
  body_model: str  # a description ('synthetic body model', the SMPL file)


def is_smplx(model_config) -> bool:
  """Whether the model predicts the SMPL-X body (HybrIK-X; model_config.body)."""
  return model_config.get('body', 'smpl') == 'smplx'


def load_smplx_body(path: str | None, kid_template: str | None = None):
  """(SMPLXModel with its kid template, description) for an SMPL-X model:
  `body.bodies.load_smplx_body` with the demos' flags (--smpl: SMPLX_NEUTRAL.npz,
  None for the synthetic SMPL-X body; --kid_template, None for the file beside it).

  Raises:
    DemoError: a missing file (naming the flag to give).
  """
  from hybrik_jax.body import bodies  # pylint: disable=g-import-not-at-top
  try:
    return bodies.load_smplx_body(path, kid_template, names=('--smpl', '--kid_template'))
  except bodies.SMPLXFileError as e:
    raise DemoError(str(e)) from e


def load_model(checkpoint: str | None, smpl_path: str | None = None,
               h36m_regressor: str | None = None, smpl_model=None,
               kid_template: str | None = None) -> DemoModel:
  """The model of a checkpoint and the body model (a given one, or loaded:
  SMPL, or SMPL-X for a model with body 'smplx', `load_smplx_body`).

  Raises:
    DemoError: no checkpoint given, or none there (with how to get one); a
      body-model option that does not fit the model.
  """
  from hybrik_jax.body import smpl_io  # pylint: disable=g-import-not-at-top
  from hybrik_jax.checkpoints import loading  # pylint: disable=g-import-not-at-top
  if not checkpoint:
    raise DemoError(HOW_TO_GET_A_CHECKPOINT)
  try:
    loaded = loading.load_for_inference(checkpoint)
  except FileNotFoundError as e:
    raise DemoError(f'{e}\n\n{HOW_TO_GET_A_CHECKPOINT}') from e
  smplx = is_smplx(loaded.model_config)
  if smplx and h36m_regressor:
    raise DemoError('--h36m_regressor is for SMPL models; this model predicts SMPL-X '
                    '(HybrIK-X): give --smpl SMPLX_NEUTRAL.npz only')
  if not smplx and kid_template:
    raise DemoError('--kid_template is for SMPL-X models (HybrIK-X); this model predicts SMPL')
  if smpl_model is not None:
    body_desc = 'given body model'
  elif smplx:
    smpl_model, body_desc = load_smplx_body(smpl_path, kid_template)
  else:
    smpl_model, body_desc = smpl_io.load_body_model(smpl_path, h36m_regressor)
  return DemoModel(loaded.variables, loaded.model_config, smpl_model, body_desc)


def depth_factor(model_config) -> float:
  """The model's depth unit, metres per unit of its relative depth d."""
  return model_config_lib.ik_convention(model_config).depth_factor


def has_camera(model_config) -> bool:
  """Whether the model predicts a camera (HybrIK's camera models)."""
  return bool(model_config.get('predict_camera', False))


def check_placement(placement: str) -> None:
  """DemoError unless placement is one of PLACEMENTS."""
  if placement not in PLACEMENTS:
    raise DemoError(f'--placement must be one of {", ".join(PLACEMENTS)}, got {placement!r}')


def resolve_placement(model_config, placement: str = 'auto',
                      focal: float | None = None) -> str:
  """--placement -> 'camera' or 'fit' for this model.

  'auto': 'camera' for a model that predicts a camera, else 'fit'.

  Raises:
    DemoError: an unknown placement, 'camera' for a model without a camera, or
      a focal length given with the camera placement (the model's camera has
      its own, focal_length px per input_size px of crop).
  """
  check_placement(placement)
  camera = has_camera(model_config)
  if placement == 'camera' and not camera:
    raise DemoError('--placement camera: this model predicts no camera '
                    '(its config has predict_camera false); use --placement fit')
  resolved = placement if placement != 'auto' else ('camera' if camera else 'fit')
  if resolved == 'camera' and focal is not None:
    raise DemoError('--focal sets the camera of the 2D fit; this model places the body '
                    'with its own camera (focal length '
                    f'{float(model_config.focal_length):g} px per {int(model_config.input_size)} px '
                    'of crop): give --placement fit to use --focal')
  return resolved


def make_predict_fn(model_config, smpl_model, *, flip_test: bool = True,
                    model=None) -> Callable:
  """Jitted (variables, images (B,S,S,3), trans_inv (B,2,3), K (B,3,3), z_root (B,)
  [, bboxes=(B,4), img_center=(B,2)]) -> dict: raw head outputs (uvd, phi), the
  decoded fields (betas, rotmats, valid, pose_axis_angle), and the body
  re-skinned in the model frame (vertices, joints 24, joints_h36m 17, joints29
  HybrIK's 29). Any batch size (one compile each).

  A camera model (`has_camera`) takes bboxes (B, 4) xyxy px, the crops' boxes,
  and img_center (B, 2) px (None: the crop's own camera) and adds its camera
  (`models.camera.CameraOutput`): pred_camera (B, C), cam_scale (B, 1),
  cam_root (B, 3) m, cam_transl (B, 3) m (its `transl`, for the H36M-pelvis-
  relative vertices of HybrIK), pred_sigma (B, 29), maxvals (B, 29), uvd29
  (B, 29, 3), xyz29 (B, 29, 3) m root-relative.

  Args:
    model_config: the model's config.
    smpl_model: the body model.
    flip_test: average with the mirrored crop.
    model: the network (default: `models.create_model(model_config)`; tests
      pass a stand-in with an `apply`).
  """
  from hybrik_jax.body import kinematics  # pylint: disable=g-import-not-at-top
  from hybrik_jax.body import smpl as smpl_lib  # pylint: disable=g-import-not-at-top
  if model is None:
    model = models.create_model(model_config)
  if is_smplx(model_config):
    return _make_predict_fn_smplx(model, model_config, smpl_model, flip_test)

  def predict(variables, image, trans_inv, intrinsics, z_root, bboxes=None,
              img_center=None):
    joint_root = jnp.stack([jnp.zeros_like(z_root), jnp.zeros_like(z_root), z_root], -1)
    out = models.predict(model, variables, image, trans_inv=trans_inv,
                         intrinsics=intrinsics, joint_root=joint_root,
                         smpl_model=smpl_model, flip_test=flip_test,
                         model_config=model_config, bboxes=bboxes, img_center=img_center)
    body = smpl_lib.skin(smpl_model, out.pred_shape, out.pred_rotmats)
    joints29, _ = kinematics.forward_kinematics(
        out.pred_rotmats, smpl_lib.rest_joints29(smpl_model, out.pred_shape))
    pred = {'uvd': out.pred_uvd, 'phi': out.pred_phi, 'betas': out.pred_shape,
            'rotmats': out.pred_rotmats, 'valid': out.valid,
            'pose_axis_angle': geometry.matrix_to_axis_angle(out.pred_rotmats),
            'vertices': body.vertices, 'joints': body.joints,
            'joints_h36m': body.joints_h36m, 'joints29': joints29}
    cam = out.camera
    if cam is not None:
      pred.update(pred_camera=cam.pred_camera, cam_scale=cam.cam_scale,
                  cam_root=cam.cam_root, cam_transl=cam.transl, pred_sigma=cam.pred_sigma,
                  maxvals=cam.maxvals, uvd29=cam.pred_uvd_29, xyz29=cam.pred_xyz_29)
    return pred

  return jax.jit(predict)


# SMPL-X's full pose (55 joints) by part: name -> (first joint, end). A part of
# one joint is (3,) in the outputs, the others (n, 3).
SMPLX_POSE_PARTS = {'global_orient': (0, 1), 'body_pose': (1, 22), 'jaw_pose': (22, 23),
                    'leye_pose': (23, 24), 'reye_pose': (24, 25),
                    'left_hand_pose': (25, 40), 'right_hand_pose': (40, 55)}


def smplx_pose_parts(pose_axis_angle: np.ndarray) -> dict[str, np.ndarray]:
  """(..., 55, 3) axis-angle full pose -> SMPL-X's (smplx.SMPLX's arguments)
  global_orient, body_pose (21), jaw_pose, leye_pose, reye_pose, left / right
  _hand_pose (15 each): (..., 3) for one joint, (..., n, 3) else."""
  out = {}
  for name, (a, b) in SMPLX_POSE_PARTS.items():
    part = pose_axis_angle[..., a:b, :]
    out[name] = part[..., 0, :] if b - a == 1 else part
  return out


def _make_predict_fn_smplx(model, model_config, smplx_model, flip_test: bool) -> Callable:
  """`make_predict_fn` for an SMPL-X model (HybrIK-X, `models.hybrik_x`): the same
  signature (trans_inv, intrinsics, z_root unused: the model places the body with
  its camera), dict of: uvd (B, 71, 3), phi (B, 54, 2), betas (B, 10), kid_blend
  (B,), expression (B, 10), rotmats (B, 55, 3, 3), pose_axis_angle (B, 55, 3),
  valid, vertices (B, 10475, 3) and joints (B, 71, 3) (HybrIK-X's 55 SMPL-X
  joints + 16 leaf vertices, the joints uvd predicts) in the model frame (pelvis
  at the origin), xyz71 (B, 71, 3) the back-projected joints, m root-relative;
  the camera: pred_camera (B, 1), cam_scale (B, 1), cam_root (B, 3) m,
  cam_transl (B, 3) m (SMPL-X's transl: camera frame = model frame + it),
  pred_sigma (B, 71), maxvals (B, 71)."""

  def predict(variables, image, trans_inv, intrinsics, z_root, bboxes=None,
              img_center=None):
    del trans_inv, intrinsics, z_root
    out = models.predict(model, variables, image, smpl_model=smplx_model,
                         flip_test=flip_test, model_config=model_config, bboxes=bboxes,
                         img_center=img_center)
    return {'uvd': out.pred_uvd, 'phi': out.pred_phi, 'betas': out.pred_shape[:, :10],
            'kid_blend': out.pred_shape[:, 10], 'expression': out.pred_expression,
            'rotmats': out.pred_rotmats, 'valid': out.valid,
            'pose_axis_angle': geometry.matrix_to_axis_angle(out.pred_rotmats),
            'vertices': out.pred_vertices, 'joints': out.pred_xyz_71_struct,
            'xyz71': out.pred_xyz_71, 'pred_camera': out.pred_camera,
            'cam_scale': out.cam_scale, 'cam_root': out.cam_root, 'cam_transl': out.transl,
            'pred_sigma': out.pred_sigma, 'maxvals': out.maxvals}

  return jax.jit(predict)


# ----------------------------------------------------------------------------
# Crop: the box, the crop, the assumed camera.
# ----------------------------------------------------------------------------


def crop_side(bbox: np.ndarray,
              scale_mult: float = input_pipeline.DEFAULT_SCALE_MULT) -> float:
  """Side of the square crop the network sees, in image pixels."""
  _, size = augment.box_to_center_scale(bbox, 1.0, scale_mult)
  return float(np.max(size))


def virtual_intrinsics(image_shape: Sequence[int], side: float,
                       focal: float | None = None) -> np.ndarray:
  """(3, 3) K: focal FOCAL_PER_CROP x crop side (HybrIK's demo) unless given;
  principal point at the image centre."""
  h, w = int(image_shape[0]), int(image_shape[1])
  f = FOCAL_PER_CROP * float(side) if focal is None else float(focal)
  return np.array([[f, 0.0, w / 2.0], [0.0, f, h / 2.0], [0.0, 0.0, 1.0]],
                  np.float32)


def depth_guess(focal: float, side: float, depth_unit: float) -> float:
  """Root depth (m) at which `depth_unit` metres span a crop of `side` px.

  The network's u, v span its crop and its d is in units of the model's
  depth_factor; HybrIK's training crops (the box x1.25) hold about that many
  metres around the person at the root's depth, so the body fills the crop
  at focal x depth_factor / side. With HybrIK's virtual focal
  (FOCAL_PER_CROP x side) that is FOCAL_PER_CROP x depth_factor for any box
  (8.6 m for 2.2 m, 7.8 m for the released models' 2.0 m); with a given
  focal length it falls as the box grows.
  """
  return float(focal) * float(depth_unit) / float(side)


def uvd_to_image(uvd: np.ndarray, trans_inv: np.ndarray, input_size: int) -> np.ndarray:
  """(J, 3) normalised uvd -> (J, 2) image pixels."""
  uv = (np.asarray(uvd)[:, :2] + 0.5) * input_size
  return uv @ np.asarray(trans_inv)[:, :2].T + np.asarray(trans_inv)[:, 2]


# ----------------------------------------------------------------------------
# Place: the body's translation.
# ----------------------------------------------------------------------------


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


def place(joints: np.ndarray, joints_2d: np.ndarray, K: np.ndarray, bbox: np.ndarray,
          z_guess: float) -> tuple[np.ndarray, bool]:
  """The body's translation (3,) metres, and whether it was fitted.

  Fitted to the 2D joints (`estimate_translation`) when that is plausible
  (root depth within MAX_DEPTH_RATIO of z_guess); else the root goes on the
  ray through the box centre at z_guess.

  Args:
    joints: (J, 3) model frame, metres (joint 0 the root).
    joints_2d: (J, 2) the predicted 2D joints, image px.
    K: (3, 3).
    bbox: (4,) xyxy px.
    z_guess: the crop's depth (`depth_guess`), metres.
  """
  t = estimate_translation(joints, joints_2d, K)
  if t is not None and z_guess / MAX_DEPTH_RATIO < joints[0, 2] + t[2] < z_guess * MAX_DEPTH_RATIO:
    return t, True
  centre = np.array([(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2, 1.0])
  root = np.linalg.solve(np.asarray(K, np.float64), centre) * z_guess
  return root - joints[0], False


# ----------------------------------------------------------------------------
# Predict: crop, network, place, for up to a batch of people.
# ----------------------------------------------------------------------------


def crop_box(bbox: np.ndarray,
             scale_mult: float = input_pipeline.DEFAULT_SCALE_MULT) -> np.ndarray:
  """(4,) xyxy px of the square crop the network sees (the box x1.25, HybrIK's
  test_transform `bbox`, the `bboxes` a camera model is given)."""
  center, size = augment.box_to_center_scale(bbox, 1.0, scale_mult)
  return augment.center_scale_to_box(center, size)


def predict_people(predict_fn: Callable, variables, images: Sequence[np.ndarray],
                   boxes: np.ndarray, *, input_size: int, depth_unit: float,
                   batch_size: int, focal: float | None = None,
                   rounds: int = 2, placement: str = 'fit',
                   camera_focal_length: float | None = None) -> dict[str, np.ndarray]:
  """Runs the model on N people (an image and a box each), in one padded batch.

  Args:
    predict_fn: `make_predict_fn`'s result (or a stand-in with its signature).
    variables: the model's variables.
    images: N (H, W, 3) uint8 RGB images (the same one repeated for several
      people in it).
    boxes: (N, 4) xyxy px.
    input_size: network input side, px.
    depth_unit: the model's depth_factor, metres (`depth_factor`).
    batch_size: the compiled batch size (N <= batch_size; padded up to it).
    focal: focal length of the fit in px, or None for HybrIK's 1000 px per 256
      px crop.
    rounds: translation fits (the uvd lifting depends on the root depth).
    placement: 'fit' (the 2D fit) or 'camera' (the model's camera;
      `resolve_placement`).
    camera_focal_length: a camera model's focal length (px per input_size px of
      crop, its config's focal_length), None for a model without a camera. A
      camera model is given the crops' boxes and the image centres, whatever
      the placement, so its camera outputs are the full image's.

  Returns:
    dict of (N, ...) numpy arrays, the body in the model frame (camera frame =
    model frame + transl): the `make_predict_fn` fields (uvd, phi, betas,
    rotmats, valid, pose_axis_angle, vertices, joints, joints_h36m, joints29,
    and a camera model's camera fields), transl (3,) metres, intrinsics (3, 3),
    joints_2d (J, 2) the network's 2D joints (its uvd's J: 24, 29, or 71 for
    SMPL-X), px, crop_box (4,) float64 xyxy
    px (`crop_box`), depth_fitted () bool (False with the camera placement).
  """
  n = len(boxes)
  if not 0 < n <= batch_size:
    raise ValueError(f'predict_people takes 1..{batch_size} people, got {n}')
  if placement not in ('fit', 'camera'):
    raise ValueError(f"placement must be 'fit' or 'camera', got {placement!r}")
  camera = placement == 'camera'
  if camera and camera_focal_length is None:
    raise ValueError("placement 'camera' needs a camera model (camera_focal_length)")
  crops = np.zeros((batch_size, input_size, input_size, 3), np.float32)
  trans_inv = np.zeros((batch_size, 2, 3), np.float32)
  intrinsics = np.zeros((batch_size, 3, 3), np.float32)
  z_guess = np.zeros(batch_size, np.float32)
  crop_boxes = np.zeros((batch_size, 4), np.float64)
  centres = np.zeros((batch_size, 2), np.float32)
  for i in range(batch_size):
    src = min(i, n - 1)  # padding repeats the last person
    box = np.asarray(boxes[src], np.float32)
    crops[i], trans_inv[i] = input_pipeline.preprocess_image(images[src], box, input_size)
    side = crop_side(box)
    crop_boxes[i] = crop_box(box)
    h, w = images[src].shape[:2]
    centres[i] = (0.5 * w, 0.5 * h)  # HybrIK's img_center
    f = camera_focal_length / input_size * side if camera else focal
    intrinsics[i] = virtual_intrinsics(images[src].shape, side, f)
    z_guess[i] = depth_guess(intrinsics[i, 0, 0], side, depth_unit)
  extra = ({} if camera_focal_length is None
           else {'bboxes': crop_boxes.astype(np.float32), 'img_center': centres})
  z_root = z_guess.copy()
  transl = np.zeros((batch_size, 3), np.float64)
  fitted = np.zeros(batch_size, bool)
  for _ in range(1 if camera else rounds):
    pred = jax.device_get(predict_fn(variables, crops, trans_inv, intrinsics, z_root,
                                     **extra))
    pred = {k: np.asarray(v) for k, v in pred.items()}
    joints_2d = np.stack([uvd_to_image(pred['uvd'][i], trans_inv[i], input_size)
                          for i in range(batch_size)])
    if camera:
      # As HybrIK's demo renders: its vertices (relative to the H36M pelvis)
      # plus the model's transl; here the model-frame body, so less its pelvis.
      # (HybrIK-X: its vertices are the model frame's, transl is SMPL-X's.)
      transl = pred['cam_transl'].astype(np.float64)
      if 'joints_h36m' in pred:
        transl = transl - pred['joints_h36m'][:, 0]
      break
    for i in range(n):
      transl[i], fitted[i] = place(pred['joints'][i], joints_2d[i], intrinsics[i],
                                   boxes[i], float(z_guess[i]))
      z_root[i] = pred['joints'][i][0, 2] + transl[i, 2]
  out = {k: np.array(v[:n]) for k, v in pred.items()}  # writable copies
  out['valid'] = out['valid'].astype(bool)
  out.update(transl=transl[:n].astype(np.float32), intrinsics=intrinsics[:n],
             joints_2d=joints_2d[:n].astype(np.float32), depth_fitted=fitted[:n],
             crop_box=crop_boxes[:n])
  return out


# ----------------------------------------------------------------------------
# Draw.
# ----------------------------------------------------------------------------


def draw_meshes(image: np.ndarray, meshes: Sequence[tuple[np.ndarray, np.ndarray, Any]],
                faces: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
  """The shaded meshes over the image, the nearest in front.

  Args:
    image: (H, W, 3) uint8 RGB.
    meshes: (vertices (V, 3) camera frame metres, K (3, 3), colour float RGB).
    faces: (F, 3).
    alpha: the meshes' opacity.

  Returns:
    (H, W, 3) uint8.
  """
  h, w = image.shape[:2]
  depth = np.full((h, w), np.inf, np.float32)
  shaded = image.astype(np.float32)
  covered = np.zeros((h, w), bool)
  for vertices, K, color in meshes:
    rgb, d, face_id = render.render_mesh(vertices, faces, K, (h, w), colors=color,
                                         background=image)
    nearer = (face_id >= 0) & (d < depth)
    shaded[nearer] = rgb[nearer]
    depth[nearer] = d[nearer]
    covered |= nearer
  return np.where(covered[..., None], alpha * shaded + (1 - alpha) * image,
                  image).astype(np.uint8)


def draw_side_view(vertices: np.ndarray, faces: np.ndarray, image_size: tuple[int, int],
                   color=MESH_COLOR, background=SIDE_BACKGROUND) -> np.ndarray:
  """(H, W, 3) uint8: the mesh turned 90 degrees about the vertical axis, framed."""
  turned, K = render.side_view(vertices, image_size)
  rgb, _, _ = render.render_mesh(turned, faces, K, image_size, colors=color,
                                 background=np.array(background, np.uint8))
  return rgb


def draw_box(image: np.ndarray, bbox: np.ndarray, color, thickness: int,
             label: str | None = None) -> None:
  """Draws an xyxy box (and a label above it) on `image` in place."""
  x0, y0, x1, y1 = (int(round(float(v))) for v in bbox)
  cv2.rectangle(image, (x0, y0), (x1, y1), color, thickness)
  if label:
    h, w = image.shape[:2]
    cv2.putText(image, label, (x0 + 2, max(y0 - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX,
                max(0.3, min(h, w) / 800), color, thickness, cv2.LINE_AA)


def put_label(panel: np.ndarray, text: str) -> None:
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
