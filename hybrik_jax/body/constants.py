"""Joint sets, kinematic trees and flip pairs used across the project.

Facts from SMPL (Loper et al. 2015) and HybrIK (Li et al. 2021); no code here.
"""

# SMPL's 24 joints followed by HybrIK's 5 leaf joints (29 in all).
SMPL_JOINT_NAMES = (
    'pelvis', 'left_hip', 'right_hip',
    'spine1', 'left_knee', 'right_knee',
    'spine2', 'left_ankle', 'right_ankle',
    'spine3', 'left_foot', 'right_foot',
    'neck', 'left_collar', 'right_collar',
    'jaw',
    'left_shoulder', 'right_shoulder',
    'left_elbow', 'right_elbow',
    'left_wrist', 'right_wrist',
    'left_thumb', 'right_thumb',
)
LEAF_JOINT_NAMES = ('head', 'left_middle', 'right_middle', 'left_bigtoe', 'right_bigtoe')
SMPL29_JOINT_NAMES = SMPL_JOINT_NAMES + LEAF_JOINT_NAMES

NUM_JOINTS = 24
NUM_JOINTS_29 = 29
NUM_TWISTS = 23  # one per non-root joint, joints 1..23
NUM_BETAS = 10
NUM_VERTICES = 6890
NUM_FACES = 13776

# Parent of each joint; -1 for the root. SMPL's kintree_table[0].
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
# HybrIK's extended tree: head -> jaw(15), hand middles -> thumbs(22, 23), big toes -> feet(10, 11).
SMPL29_PARENTS = SMPL_PARENTS + (15, 22, 23, 10, 11)

# Joints of the 24 whose child in the 29-joint tree is a leaf joint, in LEAF_JOINT_NAMES order.
# The released HybrIK-Transformer predicts a rotation (quaternion) for each of these.
LEAF_PARENT_JOINTS = (15, 22, 23, 10, 11)
# SMPL vertex ids that give the five leaf joints' rest positions (HybrIK).
LEAF_VERTEX_IDS = (411, 2445, 5905, 3216, 6617)

# Left/right pairs for horizontal flips.
FLIP_PAIRS_24 = ((1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21), (22, 23))
FLIP_PAIRS_29 = FLIP_PAIRS_24 + ((25, 26), (27, 28))
# Pairs among the 5 leaf rotations (indices into LEAF_JOINT_NAMES order).
FLIP_PAIRS_LEAF = ((1, 2), (3, 4))

# The released HybrIK / HybrIK-Transformer SMPL layer with a 24-joint skeleton hands its
# 5 leaf-rotation slots, in order, to the joints whose child is -1 in its children map:
# slot k -> RELEASED_LEAF_SLOT_JOINTS[k]; slot 4 is never read, and joint 23 (whose child
# there is the pelvis, 0) is solved by swing-twist instead
# (tests/data/released_hybrik_layer.md, "Released conventions").
RELEASED_LEAF_SLOT_JOINTS = (10, 11, 15, 22)
# The released models' leaf flip pairs, over those slots (hybrikTransformerSMPL24.py:458,
# HybrIK's simple3dposeBaseSMPL24.py:93).
RELEASED_FLIP_PAIRS_LEAF = ((0, 1), (3, 4))
# Metres per unit of a network's relative depth d. The project's (= hybrik_jax.data.features.
# DEFAULT_DEPTH_FACTOR, HybrIK's SMPL configs' BBOX_3D_SHAPE 2200 mm) and the released
# models' (bbox_3d_shape 2000 mm of their datasets, h36m_smpl.py, hp3d.py, mix_dataset.py;
# also the x2 of their SMPL-layer call).
CORRECTED_DEPTH_FACTOR = 2.2
RELEASED_DEPTH_FACTOR = 2.0

# Human3.6M's 17 joints, as regressed from the SMPL mesh by J_regressor_h36m.
H36M_JOINT_NAMES = (
    'pelvis', 'right_hip', 'right_knee', 'right_ankle',
    'left_hip', 'left_knee', 'left_ankle',
    'torso', 'neck', 'nose', 'head',
    'left_shoulder', 'left_elbow', 'left_wrist',
    'right_shoulder', 'right_elbow', 'right_wrist',
)
FLIP_PAIRS_H36M = ((1, 4), (2, 5), (3, 6), (11, 14), (12, 15), (13, 16))


def flip_permutation(num_joints: int, pairs) -> tuple[int, ...]:
  """Index permutation that swaps each (left, right) pair."""
  perm = list(range(num_joints))
  for a, b in pairs:
    perm[a], perm[b] = b, a
  return tuple(perm)


FLIP_PERM_24 = flip_permutation(24, FLIP_PAIRS_24)
FLIP_PERM_29 = flip_permutation(29, FLIP_PAIRS_29)
FLIP_PERM_H36M = flip_permutation(17, FLIP_PAIRS_H36M)
