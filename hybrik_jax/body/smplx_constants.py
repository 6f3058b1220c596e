"""SMPL-X's joint set, kinematic tree and array sizes, and HybrIK-X's 71-joint tree.

Facts from SMPL-X (Pavlakos et al. 2019) and HybrIK-X (Li et al. 2023); no code here.
"""

SMPLX_JOINT_NAMES = (
    'pelvis', 'left_hip', 'right_hip', 'spine1', 'left_knee', 'right_knee',
    'spine2', 'left_ankle', 'right_ankle', 'spine3', 'left_foot', 'right_foot',
    'neck', 'left_collar', 'right_collar', 'head', 'left_shoulder',
    'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist',
    'jaw', 'left_eye_smplhf', 'right_eye_smplhf',
    'left_index1', 'left_index2', 'left_index3',
    'left_middle1', 'left_middle2', 'left_middle3',
    'left_pinky1', 'left_pinky2', 'left_pinky3',
    'left_ring1', 'left_ring2', 'left_ring3',
    'left_thumb1', 'left_thumb2', 'left_thumb3',
    'right_index1', 'right_index2', 'right_index3',
    'right_middle1', 'right_middle2', 'right_middle3',
    'right_pinky1', 'right_pinky2', 'right_pinky3',
    'right_ring1', 'right_ring2', 'right_ring3',
    'right_thumb1', 'right_thumb2', 'right_thumb3',
)
NUM_JOINTS = 55
NUM_BODY_JOINTS = 21  # body_pose: joints 1..21
NUM_HAND_JOINTS = 15
NUM_VERTICES = 10475
NUM_FACES = 20908
NUM_BETAS = 10
NUM_EXPRESSION = 10
NUM_POSE_FEATURES = 9 * (NUM_JOINTS - 1)  # 486
# The full shape / expression spaces of the SMPL-X v1.1 files (shapedirs (V, 3, 400)).
SHAPE_SPACE_DIM = 300
EXPRESSION_SPACE_DIM = 100

# Parent of each joint (SMPL-X's kintree_table[0]); -1 for the root.
SMPLX_PARENTS = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
    15, 15, 15,
    20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38,
    21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53)

# Vertex ids the smplx package (vertex_ids['smplx']) and HybrIK-X name.
VERTEX_IDS = {
    'nose': 9120, 'reye': 9929, 'leye': 9448, 'rear': 616, 'lear': 6,
    'rthumb': 8079, 'rindex': 7669, 'rmiddle': 7794, 'rring': 7905,
    'rpinky': 8022, 'lthumb': 5361, 'lindex': 4933, 'lmiddle': 5058,
    'lring': 5169, 'lpinky': 5286, 'LBigToe': 5770, 'LSmallToe': 5780,
    'LHeel': 8846, 'RBigToe': 8463, 'RSmallToe': 8474, 'RHeel': 8635,
}
# The smplx package's 21 extra joints (vertex_joint_selector with use_feet_keypoints
# and use_hands): face, feet, then fingertips, in this order.
EXTRA_JOINT_VERTEX_NAMES = (
    'nose', 'reye', 'leye', 'rear', 'lear',
    'LBigToe', 'LSmallToe', 'LHeel', 'RBigToe', 'RSmallToe', 'RHeel',
    'lthumb', 'lindex', 'lmiddle', 'lring', 'lpinky',
    'rthumb', 'rindex', 'rmiddle', 'rring', 'rpinky')
MOUTH_BOTTOM_VERTEX = 8947  # HybrIK-X: faces[19731, 2]
MOUTH_BOTTOM_FACE = 19731
MOUTH_TOP_VERTEX = 8990
NUM_LANDMARKS = 51
NUM_DYNAMIC_LANDMARK_ANGLES = 79
NUM_DYNAMIC_LANDMARKS = 17

# HybrIK-X's 16 leaf joints (joints 55..70) and their parents.
LEAF_NAMES = ('LBigToe', 'RBigToe', 'mouth_bottom', 'leye', 'reye',
              'lindex', 'lmiddle', 'lpinky', 'lring', 'lthumb',
              'rindex', 'rmiddle', 'rpinky', 'rring', 'rthumb', 'mouth_top')
LEAF_VERTEX_IDS = (
    VERTEX_IDS['LBigToe'], VERTEX_IDS['RBigToe'], MOUTH_BOTTOM_VERTEX,
    VERTEX_IDS['leye'], VERTEX_IDS['reye'],
    VERTEX_IDS['lindex'], VERTEX_IDS['lmiddle'], VERTEX_IDS['lpinky'],
    VERTEX_IDS['lring'], VERTEX_IDS['lthumb'],
    VERTEX_IDS['rindex'], VERTEX_IDS['rmiddle'], VERTEX_IDS['rpinky'],
    VERTEX_IDS['rring'], VERTEX_IDS['rthumb'], MOUTH_TOP_VERTEX)
LEAF_PARENTS = (10, 11, 22, 23, 24, 27, 30, 33, 36, 39, 42, 45, 48, 51, 54, 15)
SMPLX71_PARENTS = SMPLX_PARENTS + LEAF_PARENTS

NUM_JOINTS_71 = 71
NUM_TWISTS_X = 54  # joints 1..54
# HybrIK-X's left/right pairs of the 71 joints (its networks' flip test): body,
# eyes, the 15 finger joints of each hand, the leaf joints (toes, eyes, fingertips).
FLIP_PAIRS_71 = (
    ((1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21), (23, 24))
    + tuple((25 + i, 40 + i) for i in range(15))
    + ((55, 56), (58, 59)) + tuple((60 + i, 65 + i) for i in range(5)))


def _flip_perm(n: int, pairs) -> tuple[int, ...]:
  perm = list(range(n))
  for a, b in pairs:
    perm[a], perm[b] = b, a
  return tuple(perm)


FLIP_PERM_71 = _flip_perm(NUM_JOINTS_71, FLIP_PAIRS_71)
# The 55 rotations' left/right permutation (the first 55 of FLIP_PERM_71: every pair
# of SMPL-X joints maps inside 0..54) and the 54 twists' (twist i is joint i + 1's).
# As the released SMPL-X preset (simple_transform_3d_smplx.py, joint_pairs_55 /
# joint_pairs_71), checked name by name in tests/test_synthetic_whole_body.py.
FLIP_PERM_55 = FLIP_PERM_71[:NUM_JOINTS]
FLIP_PERM_TWIST_54 = tuple(j - 1 for j in FLIP_PERM_55[1:])
