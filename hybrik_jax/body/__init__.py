"""Body models and their geometry, in jnp: rotations, kinematics, HybrIK IK, SMPL."""
