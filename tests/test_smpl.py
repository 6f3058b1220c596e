"""Tests of hybrik_jax.body.smpl: the synthetic body, forward / skin / rest_joints29 / hybrik."""

import time

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrik_jax.body import constants
from hybrik_jax.body import geometry
from hybrik_jax.body import ik
from hybrik_jax.body import kinematics
from hybrik_jax.body import smpl
from hybrik_jax.body import synthetic_body


# Jitted once per module: eager op-by-op dispatch of FK/IK is slow on small CPUs.
_forward = jax.jit(smpl.forward)
_hybrik = jax.jit(smpl.hybrik)
_rest_joints29 = jax.jit(smpl.rest_joints29)
_fk = jax.jit(kinematics.forward_kinematics)
_twists = jax.jit(ik.twist_angles)


@pytest.fixture(scope='module')
def model():
  return synthetic_body.synthetic_smpl_model()


def _posed_skeleton(model, betas, pose):
  out = _forward(model, betas, pose)
  rest = _rest_joints29(model, betas)
  joints29, _ = _fk(out.rot_mats, rest)
  return out, joints29, _twists(out.rot_mats, rest)


def _random_inputs(batch, seed=0, scale=0.4):
  rng = np.random.default_rng(seed)
  betas = jnp.asarray(rng.normal(size=(batch, 10)), jnp.float32)
  pose = jnp.asarray(rng.normal(size=(batch, 24, 3)) * scale, jnp.float32)
  return betas, pose


# ---------------------------------------------------------------- synthetic model


def test_synthetic_build_time_and_determinism():
  start = time.perf_counter()
  fresh = synthetic_body.build_synthetic_smpl_model(0)
  elapsed = time.perf_counter() - start
  print(f'synthetic_smpl_model built in {elapsed:.2f} s (target < 2 s)')
  cached = synthetic_body.synthetic_smpl_model(0)
  assert synthetic_body.synthetic_smpl_model() is cached
  assert synthetic_body.synthetic_smpl_model(seed=0) is cached
  chex.assert_trees_all_equal(fresh, cached)
  other = synthetic_body.synthetic_smpl_model(1)
  assert not np.allclose(other.v_template, cached.v_template)
  assert not np.allclose(other.posedirs, cached.posedirs)


def test_synthetic_shapes_and_dtypes(model):
  nv = constants.NUM_VERTICES
  expected = {
      'v_template': (nv, 3), 'shapedirs': (nv, 3, 10), 'posedirs': (207, nv * 3),
      'J_regressor': (24, nv), 'J_regressor_h36m': (17, nv), 'lbs_weights': (nv, 24),
  }
  for name, shape in expected.items():
    arr = getattr(model, name)
    assert arr.shape == shape, name
    assert arr.dtype == jnp.float32, name
    assert np.all(np.isfinite(arr)), name
  assert model.faces.shape == (constants.NUM_FACES, 3)
  assert model.faces.dtype == jnp.int32
  assert model.parents == constants.SMPL_PARENTS
  assert model.leaf_vertex_ids == constants.LEAF_VERTEX_IDS
  # parents and leaf ids are static: not leaves of the pytree.
  assert len(jax.tree.leaves(model)) == 7


def test_synthetic_mesh_is_closed_oriented_genus0(model):
  v = np.asarray(model.v_template, np.float64)
  f = np.asarray(model.faces)
  assert f.min() == 0 and f.max() == len(v) - 1
  assert np.all(f[:, 0] != f[:, 1]) and np.all(f[:, 1] != f[:, 2])
  assert np.all(f[:, 0] != f[:, 2])
  # Every undirected edge in exactly two faces, every directed edge in exactly one
  # (consistent orientation).
  directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
  _, dcount = np.unique(directed, axis=0, return_counts=True)
  assert np.all(dcount == 1)
  undirected, count = np.unique(np.sort(directed, 1), axis=0, return_counts=True)
  assert np.all(count == 2)
  euler = len(v) - len(undirected) + len(f)
  assert euler == 2
  # Outward orientation: positive signed volume, of a plausible body (40-90 litres).
  a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
  volume = np.sum(np.einsum('ij,ij->i', a, np.cross(b, c))) / 6
  assert 0.04 < volume < 0.09, volume
  area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
  assert area.min() > 1e-7
  # One connected component.
  parent = np.arange(len(v))

  def find(x):
    while parent[x] != x:
      parent[x] = parent[parent[x]]
      x = parent[x]
    return x

  for i, j in undirected:
    parent[find(i)] = find(j)
  assert len({find(i) for i in range(len(v))}) == 1


def test_synthetic_proportions(model):
  v = np.asarray(model.v_template)
  height = v[:, 1].max() - v[:, 1].min()
  assert 1.6 < height < 1.9, height
  joints = np.asarray(model.J_regressor) @ v
  np.testing.assert_allclose(joints[0], 0.0, atol=0.02)  # pelvis near the origin
  # T-pose-like: wrists level with the shoulders, left side at +x.
  assert joints[20, 0] > 0.5 and joints[21, 0] < -0.5
  assert abs(joints[20, 1] - joints[16, 1]) < 0.05
  assert joints[15, 1] > joints[12, 1] > joints[9, 1] > joints[0, 1] > joints[4, 1]


def test_synthetic_weights_and_regressors(model):
  w = np.asarray(model.lbs_weights, np.float64)
  assert w.min() >= 0
  np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-5)
  assert np.all(w.max(0) > 0.4)  # every joint drives some vertices
  for name in ('J_regressor', 'J_regressor_h36m'):
    reg = np.asarray(getattr(model, name), np.float64)
    assert reg.min() >= 0, name
    np.testing.assert_allclose(reg.sum(1), 1.0, atol=1e-5)
  v = np.asarray(model.v_template, np.float64)
  joints = np.asarray(model.J_regressor, np.float64) @ v
  np.testing.assert_allclose(joints, synthetic_body.synthetic_joints29()[:24], atol=1e-5)
  h36m = np.asarray(model.J_regressor_h36m, np.float64) @ v
  names = constants.H36M_JOINT_NAMES
  # H36M joints sit where their names say.
  np.testing.assert_allclose(h36m[names.index('left_knee')], joints[4], atol=1e-5)
  np.testing.assert_allclose(h36m[names.index('right_wrist')], joints[21], atol=1e-5)
  assert h36m[names.index('head')][1] > h36m[names.index('nose')][1] > joints[12][1]
  assert h36m[names.index('nose')][2] > joints[15][2] + 0.03  # on the face, in front
  assert h36m[names.index('left_hip')][0] > 0 > h36m[names.index('right_hip')][0]


def test_synthetic_skinning_weights_follow_bones(model):
  w = np.asarray(model.lbs_weights)
  v = np.asarray(model.v_template)
  hand_tip = model.leaf_vertex_ids[1]
  assert np.argmax(w[hand_tip]) == 22  # left hand
  assert np.argmax(w[model.leaf_vertex_ids[0]]) == 15  # head
  assert np.argmax(w[model.leaf_vertex_ids[3]]) == 10  # left foot
  # Vertices of the left forearm (x between elbow and wrist) follow the left elbow.
  forearm = (v[:, 0] > 0.5) & (v[:, 0] < 0.62)
  assert np.all(np.argmax(w[forearm], 1) == 18)


def test_synthetic_leaf_vertices_at_extremities(model):
  v = np.asarray(model.v_template)
  head, lmid, rmid, ltoe, rtoe = model.leaf_vertex_ids
  assert np.argmax(v[:, 1]) == head   # highest point
  assert np.argmax(v[:, 0]) == lmid   # left (+x) finger tip outermost
  assert np.argmin(v[:, 0]) == rmid
  joints29 = synthetic_body.synthetic_joints29()
  np.testing.assert_allclose(v[list(model.leaf_vertex_ids)], joints29[24:], atol=1e-6)
  for toe, leaf, foot, ankle in ((ltoe, 27, 10, 7), (rtoe, 28, 11, 8)):
    side = np.sign(v[toe, 0])
    same_side = v[:, 0] * side > 0
    assert v[toe, 2] > v[same_side, 2].max() - 0.002  # (nearly) most forward
    assert v[toe, 1] < joints29[ankle, 1]      # below the ankle
    assert np.quantile(v[:, 1], 0.02) > v[toe, 1] - 0.05  # among the lowest
    assert np.argmax(v @ (joints29[leaf] - joints29[foot])) == toe  # foot's tip


def test_synthetic_betas_change_bone_lengths(model):
  def rest(b):
    return np.asarray(smpl.rest_joints29(model, jnp.asarray(b, jnp.float32)))

  steps = np.linspace(-2, 2, 5)
  betas = np.zeros((5, 10))
  betas[:, 0] = steps
  r = rest(betas)
  height = r[:, 24, 1] - r[:, 27, 1]   # head top to big toe
  assert np.all(np.diff(height) > 0.01), height
  # Leg length component: longer shins and thighs, upper body unchanged.
  betas = np.zeros((2, 10))
  betas[1, 2] = 2.0
  r = rest(betas)
  shin = np.linalg.norm(r[:, 7] - r[:, 4], axis=-1)
  thigh = np.linalg.norm(r[:, 4] - r[:, 1], axis=-1)
  upper_arm = np.linalg.norm(r[:, 18] - r[:, 16], axis=-1)
  assert shin[1] > shin[0] + 0.03 and thigh[1] > thigh[0] + 0.03
  assert abs(upper_arm[1] - upper_arm[0]) < 1e-3
  # Arm length component.
  betas = np.zeros((2, 10))
  betas[1, 3] = 2.0
  r = rest(betas)
  forearm = np.linalg.norm(r[:, 20] - r[:, 18], axis=-1)
  assert forearm[1] > forearm[0] + 0.02
  # Girth component: vertices move away from the bones, skeleton nearly unchanged.
  v0 = np.asarray(model.v_template)
  v1 = v0 + np.asarray(model.shapedirs)[:, :, 1]
  waist = np.abs(v0[:, 1] - 0.15) < 0.02
  assert np.abs(v1[waist, 0]).max() > np.abs(v0[waist, 0]).max() + 0.01
  # Every component changes the mesh.
  assert np.all(np.abs(np.asarray(model.shapedirs)).max((0, 1)) > 0.005)


# ---------------------------------------------------------------- forward


def test_forward_zero_pose_is_template(model):
  out = _forward(model, jnp.zeros((2, 10)), jnp.zeros((2, 24, 3)))
  chex.assert_shape(out.vertices, (2, 6890, 3))
  chex.assert_shape(out.joints, (2, 24, 3))
  chex.assert_shape(out.joints_h36m, (2, 17, 3))
  chex.assert_shape(out.rot_mats, (2, 24, 3, 3))
  np.testing.assert_allclose(out.vertices[1], model.v_template, atol=1e-6)
  np.testing.assert_allclose(out.joints[0], model.J_regressor @ model.v_template,
                             atol=1e-6)
  np.testing.assert_allclose(out.joints_h36m[0],
                             model.J_regressor_h36m @ model.v_template, atol=1e-6)
  # Matrices give the same as axis-angle; transl shifts everything.
  betas, pose = _random_inputs(2)
  a = _forward(model, betas, pose)
  b = _forward(model, betas, geometry.axis_angle_to_matrix(pose),
                   transl=jnp.asarray([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]))
  np.testing.assert_allclose(b.vertices[0], a.vertices[0] + jnp.asarray([1., 2., 3.]),
                             atol=1e-5)
  np.testing.assert_allclose(b.joints[1], a.joints[1], atol=1e-6)
  np.testing.assert_allclose(b.joints_h36m[0] - b.joints_h36m[0, :1],
                             a.joints_h36m[0] - a.joints_h36m[0, :1], atol=1e-5)


def test_forward_is_rigid_for_global_rotation(model):
  """A pure root rotation rotates the whole body about the pelvis."""
  betas, _ = _random_inputs(2)
  root = jnp.zeros((2, 24, 3)).at[0, 0].set(jnp.asarray([0.3, -1.0, 0.5]))
  rest = _forward(model, betas, jnp.zeros((2, 24, 3)))
  posed = _forward(model, betas, root)
  r = geometry.axis_angle_to_matrix(root[0, 0])
  pelvis = rest.joints[0, 0]
  np.testing.assert_allclose(posed.vertices[0],
                             (rest.vertices[0] - pelvis) @ r.T + pelvis, atol=1e-5)


def test_forward_joints_follow_kinematics(model):
  betas, pose = _random_inputs(2, seed=1)
  out = _forward(model, betas, pose)
  rest = _rest_joints29(model, betas)
  posed, _ = _fk(out.rot_mats, rest)
  np.testing.assert_allclose(out.joints, posed[:, :24], atol=1e-5)
  # The posed leaf vertices stay near the posed leaf joints (rigid ends of limbs).
  leaves = out.vertices[:, np.asarray(model.leaf_vertex_ids)]
  assert np.abs(leaves - posed[:, 24:]).max() < 0.03


def test_forward_shape_errors(model):
  betas, pose = _random_inputs(2)
  with pytest.raises(ValueError, match='betas'):
    smpl.forward(model, betas[:, :9], pose)
  with pytest.raises(ValueError, match='pose'):
    smpl.forward(model, betas, pose[:, :23])
  with pytest.raises(ValueError, match='pose'):
    smpl.forward(model, betas, pose.reshape(2, 72))
  with pytest.raises(ValueError, match='transl'):
    smpl.forward(model, betas, pose, transl=jnp.zeros((2, 2)))
  with pytest.raises(ValueError, match='rot_mats'):
    smpl.skin(model, betas, jnp.zeros((2, 24, 3)))
  with pytest.raises(ValueError, match='batch'):
    smpl.forward(model, betas, pose[:1])
  with pytest.raises(ValueError, match='betas'):
    smpl.rest_joints29(model, betas[0])
  with pytest.raises(ValueError, match='phis'):
    smpl.hybrik(model, betas, jnp.zeros((2, 29, 3)), jnp.zeros((2, 24, 2)))
  with pytest.raises(ValueError, match='pose_skeleton'):
    smpl.hybrik(model, betas, jnp.zeros((2, 17, 3)), jnp.zeros((2, 23, 2)))
  with pytest.raises(ValueError, match='leaf_thetas'):
    smpl.hybrik(model, betas, jnp.zeros((2, 24, 3)), jnp.zeros((2, 23, 2)),
                leaf_thetas=jnp.zeros((2, 5, 3)))


def test_forward_jit_grad_vmap_float64(model):
  betas, pose = _random_inputs(2, seed=2)
  fn = jax.jit(smpl.forward)
  eager = smpl.forward(model, betas, pose)
  jitted = fn(model, betas, pose)
  chex.assert_trees_all_close(eager, jitted, atol=1e-5)

  def loss(b, p):
    out = smpl.forward(model, b, p)
    return jnp.sum(out.vertices**2) + jnp.sum(out.joints_h36m**2)

  gb, gp = jax.jit(jax.grad(loss, argnums=(0, 1)))(betas, jnp.zeros_like(pose))
  assert np.all(np.isfinite(gb)) and np.all(np.isfinite(gp))
  assert np.abs(gb).max() > 0
  vm = jax.jit(jax.vmap(
      lambda b, p: smpl.forward(model, b[None], p[None]).vertices[0]))(betas, pose)
  np.testing.assert_allclose(vm, eager.vertices, atol=1e-5)
  with jax.enable_x64(True):
    m64 = model.astype(jnp.float64)
    out64 = jax.jit(smpl.forward)(m64, jnp.asarray(betas, jnp.float64),
                         jnp.asarray(pose, jnp.float64))
    assert out64.vertices.dtype == jnp.float64
    np.testing.assert_allclose(out64.vertices, eager.vertices, atol=1e-5)


def test_rest_joints29(model):
  betas, _ = _random_inputs(2, seed=3)
  r = smpl.rest_joints29(model, betas)
  chex.assert_shape(r, (2, 29, 3))
  v_shaped = model.v_template + jnp.einsum('bl,vcl->bvc', betas, model.shapedirs)
  np.testing.assert_allclose(r[:, :24], jnp.einsum('jv,bvc->bjc', model.J_regressor,
                                                  v_shaped), atol=1e-5)
  np.testing.assert_allclose(r[:, 24:], v_shaped[:, np.asarray(model.leaf_vertex_ids)],
                             atol=1e-6)
  np.testing.assert_allclose(smpl.rest_joints29(model, jnp.zeros((1, 10)))[0],
                             synthetic_body.synthetic_joints29(), atol=1e-5)


# ---------------------------------------------------------------- hybrik


def test_hybrik_recovers_forward(model):
  """Posed skeleton + true twists -> the same rotations and body as forward."""
  betas, pose = _random_inputs(2, seed=4, scale=0.3)
  out, joints29, phis = _posed_skeleton(model, betas, pose)
  skeleton = joints29 - joints29[:, :1]
  body = _hybrik(model, betas, skeleton, phis)
  chex.assert_shape(body.vertices, (2, 6890, 3))
  chex.assert_shape(body.rot_mats, (2, 24, 3, 3))
  # Root-relative as HybrIK: joints about the pelvis, mesh about the H36M pelvis.
  np.testing.assert_allclose(body.joints[:, 0], 0.0, atol=1e-6)
  np.testing.assert_allclose(body.joints_h36m[:, 0], 0.0, atol=1e-6)
  np.testing.assert_allclose(body.joints, out.joints - out.joints[:, :1], atol=2e-4)
  np.testing.assert_allclose(
      body.vertices, out.vertices - out.joints_h36m[:, :1], atol=5e-4)
  np.testing.assert_allclose(body.rot_mats, out.rot_mats, atol=1e-3)


def test_hybrik_leaf_thetas_and_transl(model):
  """HybrIK-Transformer's path: 24 joints + leaf rotations; with transl, no centring."""
  betas, pose = _random_inputs(2, seed=5, scale=0.3)
  out, joints29, phis = _posed_skeleton(model, betas, pose)
  leaf_rot = out.rot_mats[:, np.asarray(constants.LEAF_PARENT_JOINTS)]
  quat = geometry.matrix_to_quaternion(leaf_rot) * 3.0  # not unit: normalised inside
  transl = jnp.asarray([[0.1, -0.2, 3.0], [0.0, 0.0, 0.0]])
  body = _hybrik(model, betas, joints29[:, :24] - joints29[:, :1], phis,
                 leaf_thetas=quat, transl=transl)
  np.testing.assert_allclose(body.rot_mats[:, np.asarray(constants.LEAF_PARENT_JOINTS)],
                             leaf_rot, atol=1e-4)
  np.testing.assert_allclose(body.rot_mats, out.rot_mats, atol=1e-3)
  np.testing.assert_allclose(body.vertices, out.vertices + transl[:, None], atol=5e-4)
  np.testing.assert_allclose(body.joints, out.joints + transl[:, None], atol=2e-4)
  np.testing.assert_allclose(body.joints_h36m, out.joints_h36m + transl[:, None],
                             atol=5e-4)
