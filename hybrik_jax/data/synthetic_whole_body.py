"""synthetic_whole_body: random SMPL-X bodies (hands, face, kids) rendered with exact labels.

The whole-body counterpart of `data.synthetic` (read it first: the cameras,
backgrounds, light and the crop are its own). Each example is the synthetic
SMPL-X body (`body.synthetic_smplx.synthetic_smplx_model(0)`, with its kid
template; or any SMPLXModel) with

  body pose   `synthetic.sample_pose`'s 22 body joints (SMPL's limits; SMPL-X's
              joints 0..21 are SMPL's)
  fingers     each finger curled by its own random amount (up to 80/90/60 degrees
              at its three joints, the thumb half of that) with some spread
  jaw         opened by up to 20 degrees; eyes at rest
  shape       10 betas ~ N(0, 1) clipped, 10 expression ~ N(0, 1) clipped, and a
              kid blend in [0, 1] for `kid_prob` of the bodies (else 0)
  arms        the body's shoulders raised or lowered at random so the hands are
              away from the torso in most renders

rendered with `render.mirror_consistent_colors` over SMPL-X's 55 parts (each
finger part has its own colour; left and right alike, so a mirrored render is a
valid render of the mirrored body). Labels: the 71 joints of HybrIK-X (the
skinned body's 55 joints and its 16 leaf vertices), the full pose (55 axis-angles,
root in the camera frame), betas, expression, kid blend and the 54 twists
(`ik_smplx.twist_angles`), in the whole-body spec of `data.features`
(`SMPLX_SHAPES`). Every example is a pure function of (seed, split, index).

Usage:
  gen = WholeBodyGenerator(WholeBodyConfig(image_size=128))
  for index, example in gen.generate(range(8), split='validation'):
    ...
"""

import dataclasses
import functools
from typing import Any, Iterable, Iterator

import numpy as np
from scipy.spatial import transform

from hybrik_jax.body import smplx_constants as xc
from hybrik_jax.data import features
from hybrik_jax.data import render
from hybrik_jax.data import synthetic

STREAMS = synthetic.STREAMS
_D = np.pi / 180.0
# Finger curl at full curl (degrees) of each finger's three joints, about the
# palm's normal axis (the synthetic hand: fingers along +x (left hand), palm down).
_CURL = np.array([80.0, 90.0, 60.0]) * _D
_THUMB_CURL = 0.5


@dataclasses.dataclass(frozen=True)
class WholeBodyConfig:
  """What varies across whole-body examples (synthetic.SyntheticConfig's fields, and:)

  Attributes:
    expression_clip: expression ~ N(0, 1) clipped to this.
    kid_prob: probability that a body gets a kid blend U(0, 1) (else 0).
    jaw_max: largest jaw opening, radians.
    finger_spread: finger joints' side-to-side range (radians, +-).
    arm_raise: shoulders' extra raise/lower about the body's forward axis
      (radians, +-), drawn per arm.
  """
  image_size: int = 256
  seed: int = 0
  focal_range: tuple[float, float] = (1.0, 2.5)
  fill_range: tuple[float, float] = (0.6, 0.8)
  center_jitter: float = 0.05
  beta_clip: float = 2.5
  yaw_range: tuple[float, float] = (-np.pi, np.pi)
  pitch_range: tuple[float, float] = (-0.35, 0.35)
  roll_range: tuple[float, float] = (-0.25, 0.25)
  pose_scale_range: tuple[float, float] = (0.3, 1.0)
  depth_factor: float = features.DEFAULT_DEPTH_FACTOR
  expression_clip: float = 2.0
  kid_prob: float = 0.3
  jaw_max: float = 20 * _D
  finger_spread: float = 10 * _D
  arm_raise: float = 40 * _D

  def synthetic_config(self) -> synthetic.SyntheticConfig:
    """The shared fields as a synthetic.SyntheticConfig (its samplers read them)."""
    names = {f.name for f in dataclasses.fields(synthetic.SyntheticConfig)}
    return synthetic.SyntheticConfig(**{k: v for k, v in dataclasses.asdict(self).items()
                                        if k in names})


@dataclasses.dataclass
class WholeBodyScene:
  """The random draws of one example (numpy)."""
  betas: np.ndarray       # (11,) 10 betas, then the kid blend
  expression: np.ndarray  # (10,)
  pose: np.ndarray        # (55, 3) axis-angle; pose[0] the root in the camera frame
  focal: float
  fill: float
  jitter: np.ndarray
  light_dir: np.ndarray
  background_seed: int


def sample_hand(rng: np.random.Generator, side: float, spread: float) -> np.ndarray:
  """(15, 3) axis-angle of one hand's finger joints (SMPL-X's order: index,
  middle, pinky, ring, thumb; three joints each). side: +1 left, -1 right (the
  right hand is the left one mirrored: y and z components negated)."""
  out = np.zeros((5, 3, 3))
  for f in range(5):
    curl = rng.uniform() * (_THUMB_CURL if f == 4 else 1.0)
    euler = np.zeros((3, 3))
    euler[:, 2] = -curl * _CURL  # curl towards the palm (-y) for the left hand
    euler[0, 1] = rng.uniform(-spread, spread)
    out[f] = transform.Rotation.from_euler('XYZ', euler).as_rotvec()
  out = out.reshape(15, 3)
  if side < 0:
    out[:, 1:] = -out[:, 1:]
  return out


def sample_scene(index: int, config: WholeBodyConfig, stream: int = 0) -> WholeBodyScene:
  """The random draws of example `index` in `stream` (deterministic)."""
  rng = np.random.default_rng((config.seed, stream, int(index), 71))
  base = synthetic.sample_scene(index, config.synthetic_config(), stream)
  pose = np.zeros((xc.NUM_JOINTS, 3))
  pose[:22] = base.pose[:22]
  for shoulder, sign in ((16, 1.0), (17, -1.0)):  # about the body's forward axis (z)
    extra = transform.Rotation.from_euler('z', sign * rng.uniform(-1, 1) * config.arm_raise)
    pose[shoulder] = (transform.Rotation.from_rotvec(pose[shoulder]) * extra).as_rotvec()
  pose[22] = [rng.uniform(0.0, config.jaw_max), 0.0, 0.0]
  pose[25:40] = sample_hand(rng, 1.0, config.finger_spread)
  pose[40:55] = sample_hand(rng, -1.0, config.finger_spread)
  kid = rng.uniform() if rng.uniform() < config.kid_prob else 0.0
  expression = np.clip(rng.standard_normal(xc.NUM_EXPRESSION), -config.expression_clip,
                       config.expression_clip)
  return WholeBodyScene(
      betas=np.concatenate([base.betas, [kid]]).astype(np.float32),
      expression=expression.astype(np.float32), pose=pose.astype(np.float32),
      focal=base.focal, fill=base.fill, jitter=base.jitter, light_dir=base.light_dir,
      background_seed=base.background_seed)


@functools.lru_cache(maxsize=None)
def _default_model():
  from hybrik_jax.body import synthetic_smplx  # pylint: disable=g-import-not-at-top
  return synthetic_smplx.synthetic_smplx_model(0, kid=True)


@functools.lru_cache(maxsize=None)
def _pose_batch_fn():
  """jit of (model, betas (B,11), expression (B,10), pose (B,55,3)) -> body, labels."""
  import jax  # pylint: disable=g-import-not-at-top
  from hybrik_jax.body import geometry  # pylint: disable=g-import-not-at-top
  from hybrik_jax.body import ik_smplx  # pylint: disable=g-import-not-at-top
  from hybrik_jax.body import smplx  # pylint: disable=g-import-not-at-top

  @jax.jit
  def fn(model, betas, expression, pose):
    rot = geometry.axis_angle_to_matrix(pose)
    out = smplx.skin(model, betas, rot, expression)
    joints71 = jax.numpy.concatenate([out.joints, smplx.leaf_joints(model, out.vertices)], 1)
    rest71 = ik_smplx.rest_joints71(model, betas, expression)
    return {'vertices': out.vertices, 'joints71': joints71,
            'twist': ik_smplx.twist_angles(rot, rest71)}
  return fn


def body_colors(model) -> np.ndarray:
  """(V, 3) the renders' colours: mirror-consistent over SMPL-X's 55 parts."""
  return render.mirror_consistent_colors(
      np.asarray(model.lbs_weights), np.asarray(model.v_template),
      np.asarray(model.faces), xc.FLIP_PERM_55)


def hand_faces(model) -> np.ndarray:
  """(F,) bool: faces whose vertices are all hand parts (wrists and fingers)."""
  parts = render.part_ids(np.asarray(model.lbs_weights))
  hand = np.isin(parts, [20, 21] + list(range(25, 55)))
  return np.all(hand[np.asarray(model.faces)], axis=1)


class WholeBodyGenerator:
  """Makes synthetic_whole_body examples (module docstring).

  Attributes:
    config: the WholeBodyConfig.
    batch_size: bodies posed per jit call (the last batch padded: one compile).
  """

  def __init__(self, config: WholeBodyConfig = WholeBodyConfig(), model=None,
               batch_size: int = 8):
    self.config = config
    self.batch_size = int(batch_size)
    self._model = model
    self._colors = None

  @property
  def model(self):
    if self._model is None:
      self._model = _default_model()
    return self._model

  def pose_bodies(self, scenes: list[WholeBodyScene]) -> dict[str, np.ndarray]:
    """Posed SMPL-X and labels of up to batch_size scenes: dict of (n, ...) float64."""
    n, b = len(scenes), self.batch_size
    if n > b:
      raise ValueError(f'at most batch_size={b} scenes per call, got {n}')
    betas = np.zeros((b, xc.NUM_BETAS + 1), np.float32)
    expression = np.zeros((b, xc.NUM_EXPRESSION), np.float32)
    pose = np.zeros((b, xc.NUM_JOINTS, 3), np.float32)
    for i, s in enumerate(scenes):
      betas[i], expression[i], pose[i] = s.betas, s.expression, s.pose
    out = _pose_batch_fn()(self.model, betas, expression, pose)
    return {k: np.asarray(v, np.float64)[:n] for k, v in out.items()}

  def make_example(self, index: int, scene: WholeBodyScene, body: dict[str, np.ndarray],
                   split: str = 'train', return_face_id: bool = False):
    """One example from its scene and posed body (one row of pose_bodies)."""
    size = self.config.image_size
    root_rest = body['joints71'][0]
    root, K = synthetic.place_camera(body['vertices'] - root_rest, scene, size)
    shift = root - root_rest
    verts = body['vertices'] + shift
    j71 = body['joints71'] + shift
    if self._colors is None:
      self._colors = body_colors(self.model)
    rgb, _, face_id = render.render_mesh(
        verts, np.asarray(self.model.faces), K, (size, size), colors=self._colors,
        background=synthetic.make_background(scene.background_seed, size),
        light_dir=scene.light_dir)
    ex = features.empty_smplx_example()
    ex.update(
        image=rgb, image_file=f'synthetic_whole_body/{split}/{int(index):08d}',
        bbox=features.bbox_from_points(features.project(verts, K)), intrinsics=K,
        joint_root=j71[0], depth_factor=np.float32(self.config.depth_factor),
        joints71_cam=j71, joints71_img=features.project(j71, K),
        joints71_valid=np.ones(71), smplx_theta=scene.pose,
        smplx_beta=scene.betas[:xc.NUM_BETAS], smplx_kid=scene.betas[xc.NUM_BETAS:],
        smplx_expression=scene.expression, smplx_twist=body['twist'],
        smplx_valid=np.float32(1.0), twist_valid=np.ones(xc.NUM_TWISTS_X),
        gender=np.int32(features.GENDER_NEUTRAL))
    ex = features.check_smplx_example(ex)
    return (ex, face_id) if return_face_id else ex

  def generate(self, indices: Iterable[int], split: str = 'train',
               encode: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yields (index, example) in order; image as uint8 array or JPEG bytes."""
    stream = STREAMS[split]
    indices = list(indices)
    for start in range(0, len(indices), self.batch_size):
      chunk = indices[start:start + self.batch_size]
      scenes = [sample_scene(i, self.config, stream) for i in chunk]
      bodies = self.pose_bodies(scenes)
      for k, (i, s) in enumerate(zip(chunk, scenes)):
        ex = self.make_example(i, s, {name: v[k] for name, v in bodies.items()}, split)
        if encode:
          ex['image'] = features.encode_jpeg(ex['image'])
        yield i, ex
