"""The synthetic whole-body (SMPL-X) dataset: generator, flips, pipeline, builder, CLI.

data/synthetic_whole_body.py renders the synthetic SMPL-X body; the input
pipeline turns its examples into HybrIK-X's targets (preprocess_example_smplx);
tfds_builders/synthetic_whole_body stores them (configs/test_smplx.py trains on
them through the CLI in tests/test_smplx_training.py).
"""

import copy

import numpy as np
import pytest

from hybrik_jax.body import smplx_constants as xc
from hybrik_jax.data import augment
from hybrik_jax.data import features
from hybrik_jax.data import input_pipeline
from hybrik_jax.data import synthetic_whole_body as whole_body



@pytest.fixture(scope='module')
def generator():
  """64 px (the test config's input), 4 bodies per jit call."""
  return whole_body.WholeBodyGenerator(whole_body.WholeBodyConfig(image_size=64),
                                       batch_size=4)


@pytest.fixture(scope='module')
def rendered(generator):
  """Validation examples 0..3 with their face-id buffers."""
  scenes = [whole_body.sample_scene(i, generator.config, 1) for i in range(4)]
  bodies = generator.pose_bodies(scenes)
  return [generator.make_example(i, s, {k: v[i] for k, v in bodies.items()}, 'validation',
                                 return_face_id=True) for i, s in enumerate(scenes)]


def test_examples_have_the_spec_and_consistent_labels(rendered):
  for ex, _ in rendered:
    features.check_smplx_example(dict(ex))
    assert ex['image'].shape == (64, 64, 3) and ex['image'].dtype == np.uint8
    for name, (shape, _) in features.SMPLX_SHAPES.items():
      assert np.asarray(ex[name]).shape == shape, name
    np.testing.assert_allclose(ex['joints71_img'],
                               features.project(ex['joints71_cam'], ex['intrinsics']),
                               atol=1e-3)
    np.testing.assert_allclose(ex['joint_root'], ex['joints71_cam'][0], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(ex['smplx_twist'], axis=-1), 1.0, atol=1e-5)
    assert np.all(ex['joints71_img'] > -0.5) and np.all(ex['joints71_img'] < 63.5)
  # Fingers, jaw, expression and shape vary between examples.
  thetas = np.stack([ex['smplx_theta'] for ex, _ in rendered])
  assert np.all(np.ptp(thetas[:, 25:55], axis=0).max(-1) > 0.05)
  assert np.ptp(thetas[:, 22, 0]) > 0.01
  assert np.ptp(np.stack([ex['smplx_expression'] for ex, _ in rendered]), axis=0).min() > 0.1


def test_hands_show_in_every_render(generator, rendered):
  """Pixels whose nearest face is a hand face (wrist or finger parts): in every crop."""
  hand = whole_body.hand_faces(generator.model)
  assert 0 < hand.sum() < len(hand)
  for _, face_id in rendered:
    hand_pixels = np.sum((face_id >= 0) & hand[np.maximum(face_id, 0)])
    assert hand_pixels >= 4, hand_pixels


def test_flip_pairs_are_left_right_by_name():
  """FLIP_PAIRS_71 (the released preset's joint_pairs_71, read there) pairs each left
  joint with the right one of the same name, and nothing else moves."""
  names = list(xc.SMPLX_JOINT_NAMES) + list(xc.LEAF_NAMES)
  def mirrored(n):
    for a, b in (('left_', 'right_'), ('L', 'R'), ('l', 'r')):
      if n.startswith(a):
        return b + n[len(a):]
    return None
  pairs = {(a, b) for a, b in xc.FLIP_PAIRS_71}
  expect = {(names.index(n), names.index(mirrored(n))) for n in names
            if mirrored(n) in names}
  assert pairs == expect
  perm = np.asarray(xc.FLIP_PERM_71)
  assert np.all(perm[perm] == np.arange(71))
  assert np.all(np.asarray(xc.FLIP_PERM_55) < 55)
  twist = np.asarray(xc.FLIP_PERM_TWIST_54)
  assert twist[19 - 1] == 18 - 1 and twist[25 - 1] == 40 - 1 and twist[22 - 1] == 22 - 1


def test_flipped_labels_are_the_mirrored_body(generator):
  """Posing the flipped pose gives the mirrored, swapped joints and the flipped twists
  (the synthetic body is mirror-symmetric up to its fingertip vertex choice; zero
  expression: expression is not mirrored, as in the released preset)."""
  scene = whole_body.sample_scene(3, generator.config, 0)
  scene.expression[:] = 0.0
  flipped = copy.deepcopy(scene)
  flipped.pose = augment.flip_theta(scene.pose, xc.FLIP_PERM_55)
  np.testing.assert_allclose(augment.flip_theta(flipped.pose, xc.FLIP_PERM_55), scene.pose)
  body = generator.pose_bodies([scene, flipped])
  joints = body['joints71'] - body['joints71'][:, :1]
  mirrored = augment.flip_points_3d(joints[0], xc.FLIP_PERM_71)
  err = np.abs(mirrored - joints[1]).max(-1)
  assert err[:55].max() < 1e-4, err[:55].argmax()
  assert err[55:].max() < 3e-3, err[55:]
  np.testing.assert_allclose(
      augment.flip_twist(body['twist'][0], perm=xc.FLIP_PERM_TWIST_54), body['twist'][1],
      atol=1e-4)


def _mirror(ex: dict) -> dict:
  """The example of the mirrored image and camera (x -> W - 1 - x, X -> -X)."""
  w = ex['image'].shape[1]
  out = dict(ex, image=np.ascontiguousarray(ex['image'][:, ::-1]))
  out['joints71_img'] = augment.flip_points_2d(ex['joints71_img'], w, xc.FLIP_PERM_71)
  out['joints71_cam'] = augment.flip_points_3d(ex['joints71_cam'], xc.FLIP_PERM_71)
  out['joints71_valid'] = ex['joints71_valid'][list(xc.FLIP_PERM_71)]
  out['joint_root'] = ex['joint_root'] * np.array([-1, 1, 1], np.float32)
  out['intrinsics'] = augment.flip_intrinsics(ex['intrinsics'], w)
  out['bbox'] = np.array([w - 1 - ex['bbox'][2], ex['bbox'][1], w - 1 - ex['bbox'][0],
                          ex['bbox'][3]], np.float32)
  out['smplx_theta'] = augment.flip_theta(ex['smplx_theta'], xc.FLIP_PERM_55)
  out['smplx_twist'], out['twist_valid'] = augment.flip_twist(
      ex['smplx_twist'], ex['twist_valid'], xc.FLIP_PERM_TWIST_54)
  return features.check_smplx_example(out)


def test_flip_augmentation_is_the_mirrored_example_and_twice_is_identity(rendered):
  ex = rendered[0][0]
  twice = _mirror(_mirror(ex))
  for k, v in ex.items():
    if k != 'image_file':
      np.testing.assert_allclose(np.asarray(twice[k], np.float64),
                                 np.asarray(v, np.float64), atol=1e-5, err_msg=k)
  kw = dict(input_size=64, scale_mult=1.25, dataset_id=5)
  rot = augment.Augmentation(rotation=20.0, scale=1.1)
  flipped = input_pipeline.preprocess_example(
      ex, augmentation=augment.Augmentation(rotation=20.0, scale=1.1, flip=True), **kw)
  mirrored = input_pipeline.preprocess_example(_mirror(ex), augmentation=rot, **kw)
  assert set(flipped) == set(mirrored)
  # The crops: the same up to the warp's rounding at a few pixels.
  assert np.abs(flipped['image'] - mirrored['image']).mean() < 1e-3
  for k in flipped:
    if k in ('image', 'intrinsics', 'joint_root', 'trans_inv', 'bbox', 'img_center'):
      continue  # these describe the stored image, mirrored or not: checked below
    np.testing.assert_allclose(flipped[k], mirrored[k], atol=2e-4, err_msg=k)
  np.testing.assert_allclose(flipped['intrinsics'], mirrored['intrinsics'], atol=1e-4)
  np.testing.assert_allclose(flipped['joint_root'], mirrored['joint_root'], atol=1e-6)
  # And the flip did change the targets (left and right swapped).
  plain = input_pipeline.preprocess_example(ex, augmentation=rot, **kw)
  assert np.abs(plain['target_uvd_71'] - flipped['target_uvd_71']).max() > 0.05


def test_targets_match_the_train_step_layout(rendered):
  ex = rendered[1][0]
  out = input_pipeline.preprocess_example(ex, input_size=64, scale_mult=1.25, dataset_id=5)
  shapes = {'target_uvd_71': (71, 3), 'target_uvd_weight_71': (71, 3),
            'target_xyz_71': (71, 3), 'target_xyz_weight_71': (71, 3),
            'target_rotmats': (55, 3, 3), 'target_rotmats_weight': (55, 3, 3),
            'target_beta': (10,), 'target_beta_kid': (1,), 'target_expression': (10,),
            'target_smpl_weight': (1,), 'target_twist': (54, 2),
            'target_twist_weight': (54, 2), 'target_camera_scale': (1,),
            'target_camera_valid': (1,), 'depth_factor': (1,)}
  for k, s in shapes.items():
    assert out[k].shape == s, k
  # uvd: the joints back in the crop; d relative to the pelvis in depth_factor units.
  uv_px = (out['target_uvd_71'][:, :2] + 0.5) * 64
  np.testing.assert_allclose(augment.apply_affine(out['trans_inv'], uv_px),
                             ex['joints71_img'], atol=1e-3)
  cam = ex['joints71_cam']
  np.testing.assert_allclose(out['target_uvd_71'][:, 2], (cam[:, 2] - cam[0, 2]) / 2.2,
                             atol=1e-5)
  np.testing.assert_allclose(out['target_xyz_71'], cam - cam[0], atol=1e-5)
  assert out['target_camera_valid'][0] == 1.0 and out['target_camera_scale'][0] > 0


# ----------------------------------------------------------------------------
# The builder (conftest's whole_body_tiny_data: prepare_data's tiny build). The CLI
# train + evaluate on it: tests/test_smplx_training.py.
# ----------------------------------------------------------------------------

def test_builder_tiny_reads_back_the_generator_examples(whole_body_tiny_data, rendered):
  source = input_pipeline.open_data_source('synthetic_whole_body/tiny', 'validation',
                                           whole_body_tiny_data)
  assert len(source) == 4
  name = lambda f: f.decode() if isinstance(f, bytes) else str(f)
  stored = {name(source[i]['image_file']): source[i] for i in range(4)}
  ex = rendered[2][0]
  got = stored[ex['image_file']]
  for k in features.SMPLX_SHAPES:
    np.testing.assert_allclose(np.asarray(got[k]), ex[k], atol=1e-6, err_msg=k)
  assert np.abs(got['image'].astype(int) - ex['image']).mean() < 8  # JPEG at 64 px
  assert len(input_pipeline.open_data_source('synthetic_whole_body/tiny', 'train',
                                             whole_body_tiny_data)) == 8


def test_twist_labels_give_back_the_pose_through_the_ik(generator):
  """The 71 joints and 54 twists of the labels, through HybrIK-X's IK ('naive', the
  networks' mode), give back the sampled rotations: to 1e-3 at every joint whose
  child is one of SMPL-X's 55 joints; near it where the child is a leaf vertex (the
  toes, eyes, mouth and fingertips are skinned vertices, not rigid children)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from hybrik_jax.body import geometry  # pylint: disable=g-import-not-at-top
  from hybrik_jax.body import ik_smplx  # pylint: disable=g-import-not-at-top
  scenes = [whole_body.sample_scene(i, generator.config, 2) for i in range(2)]
  body = generator.pose_bodies(scenes)
  betas = jnp.asarray(np.stack([s.betas for s in scenes]))
  rest = ik_smplx.rest_joints71(generator.model, betas,
                                jnp.asarray(np.stack([s.expression for s in scenes])))
  rot = jax.jit(lambda j, p, r: ik_smplx.inverse_kinematics(j, p, r, mode='naive'))(
      jnp.asarray(body['joints71'], jnp.float32), jnp.asarray(body['twist'], jnp.float32),
      rest)
  want = geometry.axis_angle_to_matrix(jnp.asarray(np.stack([s.pose for s in scenes])))
  err = np.abs(np.asarray(rot) - np.asarray(want)).max((0, 2, 3))
  leaf_child = np.zeros(55, bool)
  for j in range(1, 55):
    leaf_child[j] = ik_smplx.TWIST_CHILD[j - 1] >= 55
  leaf_child[0] = False
  assert err[~leaf_child].max() < 1e-3, np.flatnonzero(err > 1e-3)
  assert err[leaf_child].max() < 0.15, err[leaf_child]
