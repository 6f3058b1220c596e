"""A short synthetic video of one person walking across the frame, with its truth.

For the video demo's tests and notebook: the synthetic body (synthetic.py's
generator) with known shape, a pose blended between two drawn poses, a slowly
turning body and a root moving left to right, rendered by data/render.py
under a known camera (principal point at the frame centre, as the demo assumes).
"""

from typing import Any

import numpy as np
from scipy.spatial import transform

from hybrik_jax.data import features
from hybrik_jax.data import render
from hybrik_jax.data import synthetic


def moving_person_clip(num_frames: int = 16, width: int = 192, height: int = 160, *,
                       seed: int = 0, backgrounds: np.ndarray | None = None,
                       person_height: float = 0.62, travel: float = 0.3,
                       generator: synthetic.SyntheticGenerator | None = None
                       ) -> tuple[np.ndarray, dict[str, Any]]:
  """Renders the clip.

  Args:
    num_frames: T.
    width, height: frame size, px.
    seed: draws the shape and the two poses.
    backgrounds: (T, H, W, 3) uint8 per-frame backgrounds, or None for one
      synthetic background.
    person_height: the standing body's height / frame height (about).
    travel: the root moves from -travel/2 to +travel/2 of the frame width
      about the centre.
    generator: a SyntheticGenerator to pose the bodies (batch_size >= T).

  Returns:
    frames: (T, H, W, 3) uint8 RGB.
    truth: K (3, 3) px; betas (10,); pose (T, 24, 3) axis-angle and rot_mats
      (T, 24, 3, 3) (joint 0 in the camera frame); joints29_cam (T, 29, 3)
      metres, camera frame; joints29_img (T, 29, 2) px; twist (T, 23, 2); bbox
      (T, 4) box of the projected mesh, xyxy px; vertices (T, V, 3) camera frame.
  """
  gen = generator or synthetic.SyntheticGenerator(batch_size=num_frames)
  rng = np.random.default_rng(seed)
  betas = np.clip(rng.standard_normal(10), -1.5, 1.5).astype(np.float32)
  pose_a = synthetic.sample_pose(rng, 0.4)
  pose_b = synthetic.sample_pose(rng, 0.4)
  s = np.linspace(0.0, 1.0, num_frames)
  rot = transform.Rotation
  blend = np.stack([transform.Slerp([0.0, 1.0], rot.from_rotvec([a, b]))(s).as_rotvec()
                    for a, b in zip(pose_a, pose_b)], 1)  # (T, 24, 3)
  scenes, poses = [], []
  for k in range(num_frames):
    pose = blend[k].copy()
    yaw = -0.5 + 1.0 * s[k]
    pose[0] = (rot.from_euler('x', np.pi) * rot.from_euler('y', yaw)).as_rotvec()
    poses.append(pose.astype(np.float32))
    scenes.append(synthetic.Scene(betas=betas, pose=poses[-1], focal=0.0, fill=0.0,
                                  jitter=np.zeros(2), light_dir=np.zeros(3),
                                  background_seed=0))
  body = gen.pose_bodies(scenes)
  focal = 1.5 * max(width, height)
  K = np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])
  extent = np.ptp(body['vertices'][0][:, 1])
  depth = focal * extent / (person_height * height)
  if backgrounds is None:
    side = max(width, height)
    backgrounds = np.broadcast_to(synthetic.make_background(seed, side)[:height, :width],
                                  (num_frames, height, width, 3))
  colors = synthetic.body_colors(gen.model)
  faces = np.asarray(gen.model.faces)
  light = np.array([0.3, -0.5, -1.0])
  frames, j29_cam, verts_cam, boxes = [], [], [], []
  for k in range(num_frames):
    root = np.array([(s[k] - 0.5) * travel * width * depth / focal, 0.0, depth])
    shift = root - body['joints29'][k][0]
    verts = body['vertices'][k] + shift
    rgb, _, _ = render.render_mesh(verts, faces, K, (height, width), colors=colors,
                                   background=np.ascontiguousarray(backgrounds[k]),
                                   light_dir=light)
    frames.append(rgb)
    j29_cam.append(body['joints29'][k] + shift)
    verts_cam.append(verts)
    boxes.append(features.bbox_from_points(features.project(verts, K)))
  j29_cam = np.stack(j29_cam)
  return np.stack(frames), {
      'K': K, 'betas': betas, 'pose': np.stack(poses),
      'rot_mats': body['rot_mats'], 'joints29_cam': j29_cam,
      'joints29_img': features.project(j29_cam, K), 'twist': body['twist'],
      'bbox': np.stack(boxes), 'vertices': np.stack(verts_cam)}
