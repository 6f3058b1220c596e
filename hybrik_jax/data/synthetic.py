"""synthetic_humans: random SMPL bodies rendered with exact labels.

Each example is a posed, shaped body of the synthetic SMPL model
(`hybrik_jax.body.synthetic_body.synthetic_smpl_model()`, or any SMPLModel) seen by a random
pinhole camera over a random background, rendered with `data.render` (Lambert +
ambient; `body_colors`: left and right parts alike, front and back apart, so a
mirrored render is a valid render of the mirrored body, as flip augmentation
assumes). The labels are the common fields of `data.features` and are exact:
the 29 joints are the posed HybrIK skeleton (forward kinematics of
`smpl.rest_joints29`), the 17 H36M joints are
`joints_h36m` of the same mesh, the twist angles are `ik.twist_angles` of the
local rotations. The whole rendered image is the stored crop (the person fills
`fill_range` of its larger side), so `crop_offset` is 0 and `bbox` is the tight
box of the projected vertices.

Every example is a pure function of (seed, split stream, index): generation
can be split across processes and is reproducible.

Usage:
  gen = SyntheticGenerator(SyntheticConfig(image_size=128))
  for index, example in gen.generate(range(100), stream=0):
    ...  # example: dict of the features spec, 'image' as (H, W, 3) uint8
"""

import concurrent.futures
import ctypes
import dataclasses
import functools
import multiprocessing
import os
import signal
from typing import Any, Iterable, Iterator

import numpy as np
from scipy.spatial import transform
import tqdm

from hybrik_jax.body import constants
from hybrik_jax.data import features
from hybrik_jax.data import render

# Streams keep the splits disjoint: example i of 'train' and of 'validation'
# come from different random states.
STREAMS = {'train': 0, 'validation': 1, 'test': 2}
NATIVE_JOINTS = 29  # native_joints_* hold the 29 HybrIK joints

# Per-joint Euler limits (intrinsic 'XYZ', radians) of the SMPL local rotations.
# SMPL's rest frame: x to the body's left, y up, z forward (the body faces +z);
# the local rotations act in that frame. Signs worked out from it: hip flexion
# (leg forward) is -x, knee flexion +x, left-arm down -z, left elbow flexion -y
# (mirrored on the right side). Joint 15 is the head.
_D = np.pi / 180.0
POSE_LIMITS = np.array([
    # (x_lo, x_hi), (y_lo, y_hi), (z_lo, z_hi)   joint
    [(0, 0), (0, 0), (0, 0)],                 # 0 pelvis (global, sampled apart)
    [(-100, 30), (-30, 30), (-15, 45)],       # 1 left hip
    [(-100, 30), (-30, 30), (-45, 15)],       # 2 right hip
    [(-15, 30), (-20, 20), (-15, 15)],        # 3 spine1
    [(0, 130), (-5, 5), (-5, 5)],             # 4 left knee
    [(0, 130), (-5, 5), (-5, 5)],             # 5 right knee
    [(-10, 20), (-20, 20), (-10, 10)],        # 6 spine2
    [(-25, 40), (-10, 10), (-15, 15)],        # 7 left ankle
    [(-25, 40), (-10, 10), (-15, 15)],        # 8 right ankle
    [(-10, 20), (-20, 20), (-10, 10)],        # 9 spine3
    [(-10, 10), (-5, 5), (-5, 5)],            # 10 left foot
    [(-10, 10), (-5, 5), (-5, 5)],            # 11 right foot
    [(-20, 35), (-30, 30), (-20, 20)],        # 12 neck
    [(-10, 10), (-15, 15), (-10, 20)],        # 13 left collar
    [(-10, 10), (-15, 15), (-20, 10)],        # 14 right collar
    [(-20, 30), (-35, 35), (-20, 20)],        # 15 head
    [(-45, 45), (-90, 30), (-80, 60)],        # 16 left shoulder
    [(-45, 45), (-30, 90), (-60, 80)],        # 17 right shoulder
    [(-40, 40), (-140, 0), (-5, 5)],          # 18 left elbow
    [(-40, 40), (0, 140), (-5, 5)],           # 19 right elbow
    [(-30, 30), (-15, 15), (-40, 40)],        # 20 left wrist
    [(-30, 30), (-15, 15), (-40, 40)],        # 21 right wrist
    [(-10, 10), (-10, 10), (-15, 15)],        # 22 left hand
    [(-10, 10), (-10, 10), (-15, 15)],        # 23 right hand
], np.float64) * _D

# A relaxed standing pose inside POSE_LIMITS (Euler 'XYZ', radians): arms down
# at the sides with slightly bent elbows, knees and hips slightly flexed.
NEUTRAL_POSE = np.zeros((24, 3))
NEUTRAL_POSE[[1, 2], 0] = -5 * _D      # hips
NEUTRAL_POSE[[4, 5], 0] = 8 * _D       # knees
NEUTRAL_POSE[16, 2] = -65 * _D         # left shoulder: arm down
NEUTRAL_POSE[17, 2] = 65 * _D          # right shoulder: arm down
NEUTRAL_POSE[18, 1] = -15 * _D         # left elbow
NEUTRAL_POSE[19, 1] = 15 * _D          # right elbow


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
  """What varies across synthetic examples, and by how much.

  Attributes:
    image_size: side of the square image (= the stored crop), px.
    seed: base seed; example i of a split uses np.random.default_rng((seed,
      stream, i)).
    focal_range: focal length / image_size (about 60 to 24 degrees of view).
    fill_range: larger side of the person's box / image_size.
    center_jitter: max offset of the box centre from the image centre / size.
    beta_clip: betas ~ N(0, 1) clipped to [-beta_clip, beta_clip].
    yaw_range, pitch_range, roll_range: global orientation of the body relative
      to upright-facing-the-camera, radians (yaw about the body's vertical axis,
      pitch about the camera x axis, roll about its z axis).
    pose_scale_range: each example's joint angles are NEUTRAL_POSE + a * (u -
      NEUTRAL_POSE), u uniform within POSE_LIMITS and a drawn from this range
      (so some poses are near a relaxed stance, some extreme).
    depth_factor: stored depth_factor, metres (HybrIK's 2.2 m BBOX_3D_SHAPE).
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


@dataclasses.dataclass
class Scene:
  """The random draws for one example (all numpy)."""
  betas: np.ndarray       # (10,)
  pose: np.ndarray        # (24, 3) axis-angle, pose[0] global orientation (camera frame)
  focal: float            # px
  fill: float             # target larger box side / image size
  jitter: np.ndarray      # (2,) box-centre offset, px
  light_dir: np.ndarray   # (3,) towards the light, camera frame
  background_seed: int


def sample_pose(rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
  """(24, 3) axis-angle body pose within POSE_LIMITS (joint 0 left at zero).

  Euler angles NEUTRAL_POSE + scale * (u - NEUTRAL_POSE), u uniform within the
  limits: a convex combination for scale in [0, 1], so inside the limits.
  """
  lo, hi = POSE_LIMITS[..., 0], POSE_LIMITS[..., 1]
  u = lo + (hi - lo) * rng.random((24, 3))
  euler = NEUTRAL_POSE + scale * (u - NEUTRAL_POSE)
  euler[0] = 0.0
  return transform.Rotation.from_euler('XYZ', euler).as_rotvec()


def sample_global_orient(rng: np.random.Generator, config: SyntheticConfig) -> np.ndarray:
  """(3,) axis-angle: the body's rest frame (y up, facing +z) -> camera frame.

  Upright facing the camera is a half turn about x (camera y points down, z
  away); then yaw about the body's own vertical axis, pitch and roll of the
  camera.
  """
  yaw = rng.uniform(*config.yaw_range)
  pitch = rng.uniform(*config.pitch_range)
  roll = rng.uniform(*config.roll_range)
  rot = transform.Rotation
  r = (rot.from_euler('x', pitch) * rot.from_euler('z', roll)
       * rot.from_euler('x', np.pi) * rot.from_euler('y', yaw))
  return r.as_rotvec()


def sample_scene(index: int, config: SyntheticConfig, stream: int = 0) -> Scene:
  """The random draws of example `index` in `stream` (deterministic)."""
  rng = np.random.default_rng((config.seed, stream, int(index)))
  betas = np.clip(rng.standard_normal(10), -config.beta_clip, config.beta_clip)
  pose = sample_pose(rng, rng.uniform(*config.pose_scale_range))
  pose[0] = sample_global_orient(rng, config)
  size = config.image_size
  focal = rng.uniform(*config.focal_range) * size
  fill = rng.uniform(*config.fill_range)
  jitter = rng.uniform(-1, 1, 2) * config.center_jitter * size
  light = np.array([rng.uniform(-1, 1), rng.uniform(-1, 0.3), -1.0])
  return Scene(betas=betas.astype(np.float32), pose=pose.astype(np.float32),
               focal=float(focal), fill=float(fill), jitter=jitter,
               light_dir=light / np.linalg.norm(light),
               background_seed=int(rng.integers(2**31)))


def make_background(seed: int, size: int) -> np.ndarray:
  """(size, size, 3) uint8: a solid colour, a gradient, smooth noise or stripes."""
  rng = np.random.default_rng(seed)
  kind = rng.integers(4)
  c0, c1 = rng.random(3), rng.random(3)
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
  if kind == 0:  # solid
    img = np.broadcast_to(c0, (size, size, 3))
  elif kind == 1:  # linear gradient at a random angle
    a = rng.uniform(0, 2 * np.pi)
    t = np.cos(a) * (xx - 0.5) + np.sin(a) * (yy - 0.5) + 0.5
    t = np.clip(t, 0, 1)[..., None]
    img = (1 - t) * c0 + t * c1
  elif kind == 2:  # smooth value noise (bilinear upsampling of a coarse grid)
    import cv2  # pylint: disable=g-import-not-at-top
    g = int(rng.integers(3, 12))
    coarse = rng.random((g, g, 3)).astype(np.float32)
    img = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    img = np.clip(img, 0, 1)
    img = img + 0.08 * rng.standard_normal((size, size, 3)).astype(np.float32)
  else:  # stripes
    period = rng.uniform(0.05, 0.3)
    a = rng.uniform(0, np.pi)
    t = np.cos(a) * xx + np.sin(a) * yy
    t = (np.floor(t / period) % 2)[..., None]
    img = (1 - t) * c0 + t * c1
  return np.clip(np.rint(np.asarray(img) * 255), 0, 255).astype(np.uint8)


def place_camera(verts_rel: np.ndarray, scene: Scene, size: int):
  """Root translation and K so the body's box has the drawn size and centre.

  Args:
    verts_rel: (V, 3) root-relative vertices in the camera orientation.
    scene: the draws (focal, fill, jitter).
    size: image side, px.

  Returns:
    root: (3,) pelvis position in the camera frame, metres.
    K: (3, 3) intrinsics, px.
  """
  f = scene.focal
  target = scene.fill * size
  ext = np.ptp(verts_rel[:, :2], axis=0).max()
  z = f * ext / target + 0.5 * np.ptp(verts_rel[:, 2])
  root = np.array([0.0, 0.0, z])
  K = np.array([[f, 0, size / 2 - 0.5], [0, f, size / 2 - 0.5], [0, 0, 1.0]])
  centre = np.array([size / 2 - 0.5, size / 2 - 0.5]) + scene.jitter
  for _ in range(3):
    uv = features.project(verts_rel + root, K)
    lo, hi = uv.min(0), uv.max(0)
    scale = (hi - lo).max() / target  # box size is ~ 1 / depth
    # Move the body sideways so its box centre lands on the target centre,
    # and along z so that its box has the target size.
    root[:2] += (centre - 0.5 * (lo + hi)) * root[2] / f
    root *= scale  # keeps the root's projection, scales the box by 1 / scale
  # Exact final centring by the principal point (a crop of a larger frame).
  uv = features.project(verts_rel + root, K)
  K[:2, 2] += centre - 0.5 * (uv.min(0) + uv.max(0))
  return root, K


@functools.lru_cache(maxsize=None)
def _default_model():
  from hybrik_jax.body import synthetic_body  # pylint: disable=g-import-not-at-top
  return synthetic_body.synthetic_smpl_model()


@functools.lru_cache(maxsize=None)
def _pose_batch_fn():
  """jit of (model, betas (B,10), pose (B,24,3)) -> body and labels (B, ...)."""
  import jax  # pylint: disable=g-import-not-at-top
  from hybrik_jax.body import ik  # pylint: disable=g-import-not-at-top
  from hybrik_jax.body import kinematics  # pylint: disable=g-import-not-at-top
  from hybrik_jax.body import smpl  # pylint: disable=g-import-not-at-top

  @jax.jit
  def fn(model, betas, pose):
    out = smpl.forward(model, betas, pose)
    rest29 = smpl.rest_joints29(model, betas)
    joints29, _ = kinematics.forward_kinematics(out.rot_mats, rest29)
    twist = ik.twist_angles(out.rot_mats, rest29)
    return {'vertices': out.vertices, 'joints24': out.joints,
            'joints29': joints29, 'joints17': out.joints_h36m, 'twist': twist,
            'rot_mats': out.rot_mats}
  return fn


def body_colors(model) -> np.ndarray:
  """(V, 3) the renders' per-vertex colours: `render.mirror_consistent_colors`."""
  return render.mirror_consistent_colors(
      np.asarray(model.lbs_weights), np.asarray(model.v_template),
      np.asarray(model.faces), constants.FLIP_PERM_24)


class SyntheticGenerator:
  """Makes synthetic_humans examples; see the module docstring.

  Attributes:
    config: the SyntheticConfig.
    batch_size: bodies posed per jit call (fixed: the last batch is padded so
      that every example goes through the same compiled computation).
  """

  def __init__(self, config: SyntheticConfig = SyntheticConfig(), model=None,
               batch_size: int = 16):
    self.config = config
    self.batch_size = int(batch_size)
    self._model = model
    self._fn = None
    self._colors = None

  @property
  def model(self):
    if self._model is None:
      self._model = _default_model()
    return self._model

  def pose_bodies(self, scenes: list[Scene]) -> dict[str, np.ndarray]:
    """SMPL + labels for up to batch_size scenes: dict of (n, ...) float64 arrays."""
    if self._fn is None:
      self._fn = _pose_batch_fn()
    n = len(scenes)
    b = self.batch_size
    if n > b:
      raise ValueError(f'at most batch_size={b} scenes per call, got {n}')
    betas = np.zeros((b, 10), np.float32)
    pose = np.zeros((b, 24, 3), np.float32)
    for i, s in enumerate(scenes):
      betas[i], pose[i] = s.betas, s.pose
    out = self._fn(self.model, betas, pose)
    return {k: np.asarray(v, np.float64)[:n] for k, v in out.items()}

  def _render(self, vertices_cam, K, scene):
    if self._colors is None:
      self._colors = body_colors(self.model)
    size = self.config.image_size
    bg = make_background(scene.background_seed, size)
    return render.render_mesh(vertices_cam, np.asarray(self.model.faces), K,
                              (size, size), colors=self._colors, background=bg,
                              light_dir=scene.light_dir)

  def make_example(self, index: int, scene: Scene, body: dict[str, np.ndarray],
                   split: str = 'train', return_face_id: bool = False):
    """One example from its scene and posed body (one row of pose_bodies)."""
    size = self.config.image_size
    root_rest = body['joints29'][0]
    verts_rel = body['vertices'] - root_rest
    root, K = place_camera(verts_rel, scene, size)
    shift = root - root_rest
    verts = body['vertices'] + shift
    j29 = body['joints29'] + shift
    j17 = body['joints17'] + shift
    rgb, _, face_id = self._render(verts, K, scene)
    j29_img = features.project(j29, K)
    ex = features.empty_example(NATIVE_JOINTS)
    ex.update(
        image=rgb,
        image_file=f'synthetic_humans/{split}/{int(index):08d}',
        bbox=features.bbox_from_points(features.project(verts, K)),
        intrinsics=K,
        joint_root=j29[0],
        depth_factor=np.float32(self.config.depth_factor),
        joints29_cam=j29, joints29_img=j29_img, joints29_valid=np.ones(29),
        joints17_cam=j17, joints17_valid=np.ones(17),
        smpl_theta=scene.pose, smpl_beta=scene.betas,
        smpl_twist=body['twist'], smpl_valid=np.float32(1.0),
        twist_valid=np.ones(23),
        gender=np.int32(features.GENDER_NEUTRAL),
        native_joints_img=j29_img, native_joints_cam=j29,
        native_joints_valid=np.ones(29),
    )
    ex = features.check_example(ex, NATIVE_JOINTS)
    if return_face_id:
      return ex, face_id
    return ex

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
        body = {name: v[k] for name, v in bodies.items()}
        ex = self.make_example(i, s, body, split)
        if encode:
          ex['image'] = features.encode_jpeg(ex['image'])
        yield i, ex


# ---------------------------------------------------------------------------
# Parallel generation (processes; each builds its own model and jit).

_WORKER: SyntheticGenerator | None = None


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(parent_pid: int) -> None:
  """Makes the kernel SIGKILL this worker when its parent dies (Linux).

  A build killed with SIGKILL (or dying otherwise) must not leave its
  workers, hundreds of MB each, running as orphans. Elsewhere: nothing.
  """
  try:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
  except (OSError, AttributeError):
    return
  if os.getppid() != parent_pid:  # the parent died before prctl
    os._exit(1)  # pylint: disable=protected-access


def _worker_init(config: SyntheticConfig, parent_pid: int | None = None):
  global _WORKER
  if parent_pid is not None:
    _die_with_parent(parent_pid)
  # Ctrl-C reaches the whole process group: the parent stops the workers.
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  os.environ.setdefault('JAX_PLATFORMS', 'cpu')
  _WORKER = SyntheticGenerator(config)


def _stop_workers(pool: concurrent.futures.ProcessPoolExecutor) -> None:
  """Ends the workers now (not after their chunk) and cancels what is queued."""
  # Taken first: shutdown() forgets the processes.
  processes = list((getattr(pool, '_processes', None) or {}).values())
  for process in processes:
    try:
      process.kill()
    except (OSError, ValueError, AttributeError):
      pass
  pool.shutdown(wait=False, cancel_futures=True)
  for process in processes:
    try:
      process.join(5)
    except (OSError, ValueError, AttributeError, AssertionError):
      pass


def _worker_run(args):
  indices, split = args
  assert _WORKER is not None
  return list(_WORKER.generate(indices, split, encode=True))


def default_num_workers(num_examples: int) -> int:
  """Processes for a build: $HYBRIK_DATA_WORKERS, else 1 for small splits, else cores."""
  env = os.environ.get('HYBRIK_DATA_WORKERS')
  if env:
    return max(1, int(env))
  if num_examples < 1000:
    return 1
  return max(1, min(len(os.sched_getaffinity(0)), 8))


def generate_parallel(indices: Iterable[int], config: SyntheticConfig,
                      split: str = 'train', num_workers: int = 1,
                      chunk: int = 64, progress: bool = True
                      ) -> Iterator[tuple[int, dict[str, Any]]]:
  """Like SyntheticGenerator.generate(encode=True), over `num_workers` processes.

  Yields (index, example) in index order; the result does not depend on
  num_workers (each example depends only on its index). `progress` shows a
  bar with the total (TFDS's own bar does not know it).
  """
  indices = list(indices)
  bar = tqdm.tqdm(total=len(indices), desc=f'rendering {split}', unit='img',
                  disable=not progress, leave=False, dynamic_ncols=True)
  # The workers die with this process (SIGKILL included: `_die_with_parent`)
  # and are ended at once when it stops early (SIGINT, SIGTERM turned into an
  # exception, a consumer that stops reading).
  with bar:
    if num_workers <= 1:
      for item in SyntheticGenerator(config).generate(indices, split, encode=True):
        bar.update(1)
        yield item
      return
    chunks = [(indices[i:i + chunk], split) for i in range(0, len(indices), chunk)]
    ctx = multiprocessing.get_context('spawn')
    pool = concurrent.futures.ProcessPoolExecutor(
        num_workers, mp_context=ctx, initializer=_worker_init,
        initargs=(config, os.getpid()))
    try:
      for result in pool.map(_worker_run, chunks):
        for item in result:
          bar.update(1)
          yield item
    except BaseException:
      _stop_workers(pool)
      raise
    finally:
      pool.shutdown(wait=True)
