"""BEHAVIOR-1K's R1Pro robot: where each body part sits in the action and proprio vectors, and how B1K numbers
its episodes. The one place these numbers live; the policy transforms (`b1k_policy`), the LeRobot reader's B1K
fallback and the miniature dataset writer all read them from here. Pure constants (no imports), so a dataset
writer can use them without loading a model framework. Source: the public BEHAVIOR-1K repositories and
the dataset card of ``behavior-1k/2025-challenge-demos``; for 2026, OmniGibson's ``eval/utils/eval_utils.py``
(``PROPRIOCEPTION_INDICES["R1Pro"]``, the evaluator's proprio since tag v3.9.3).

Action vector (23 dims): base velocity 0:3, trunk 3:7, left arm 7:14, left gripper [14], right arm 15:22, right
gripper [22]; models pad it to 32 dims. Ranges are half-open ``(start, end)``, grippers lists of single dims.
"""

R1PRO_ACTION_DIM = 23
PADDED_ACTION_DIM = 32

BASE = (0, 3)
TRUNK = (3, 7)
LEFT_ARM = (7, 14)
LEFT_GRIPPER = [14]
RIGHT_ARM = (15, 22)
RIGHT_GRIPPER = [22]
PADDING = (R1PRO_ACTION_DIM, PADDED_ACTION_DIM)

# Slices of the 256-dim proprio vector (B1K's `observation.state`), the documented ones.
PROPRIO_DIM = 256
PROPRIO_JOINT_QPOS = slice(0, 28)  # the first 6 are virtual base joints
PROPRIO_JOINT_QPOS_SIN = slice(28, 56)
PROPRIO_JOINT_QPOS_COS = slice(56, 84)
PROPRIO_JOINT_QVEL = slice(84, 112)
PROPRIO_JOINT_QEFFORT = slice(112, 140)
PROPRIO_ROBOT_POS_ORI = slice(140, 152)  # global; not allowed in the standard track
PROPRIO_ROBOT_VEL = slice(152, 158)  # linear, angular
PROPRIO_ARM_LEFT_QPOS = slice(158, 165)
PROPRIO_EEF_LEFT = slice(186, 193)  # pos + quat
PROPRIO_GRIPPER_LEFT_QPOS = slice(193, 195)  # two fingers
PROPRIO_ARM_RIGHT_QPOS = slice(197, 204)
PROPRIO_EEF_RIGHT = slice(225, 232)
PROPRIO_GRIPPER_RIGHT_QPOS = slice(232, 234)
PROPRIO_TRUNK_QPOS = slice(236, 240)
PROPRIO_BASE_QPOS = slice(244, 253)  # with sin / cos; not allowed in the standard track
PROPRIO_BASE_QVEL = slice(253, 256)
MAX_GRIPPER_WIDTH = 0.1  # m, sum of the two finger positions when fully open

# The 2026 edition's 61-dim proprio (the 2026 dataset's `observation.state` and the evaluator's proprio), in order.
# base_qvel is robot-local [vx, vy, wz] (since the 07/27 dataset fix); qvel fields corrected on 08/24.
PROPRIO_2026_DIM = 61
PROPRIO_2026 = {
    "base_qvel": slice(0, 3),
    "arm_left_qpos": slice(3, 10),
    "arm_left_qvel": slice(10, 17),
    "eef_left_pos": slice(17, 20),
    "eef_left_quat": slice(20, 24),
    "gripper_left_qpos": slice(24, 26),
    "gripper_left_qvel": slice(26, 28),
    "arm_right_qpos": slice(28, 35),
    "arm_right_qvel": slice(35, 42),
    "eef_right_pos": slice(42, 45),
    "eef_right_quat": slice(45, 49),
    "gripper_right_qpos": slice(49, 51),
    "gripper_right_qvel": slice(51, 53),
    "trunk_qpos": slice(53, 57),
    "trunk_qvel": slice(57, 61),
}

# B1K numbers episodes task × 10000 + local id, and its path templates use the task as the chunk.
EPISODES_PER_TASK = 10_000
