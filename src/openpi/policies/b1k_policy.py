"""BEHAVIOR-1K R1Pro: the true action layout and a check against the widely quoted wrong one.

R1Pro's 23-dim action vector is ``base 0:3, trunk 3:7, left_arm 7:14, left_gripper [14], right_arm 15:22,
right_gripper [22]``; models pad it to 32 dims, so dims 23:32 are padding. The layout often quoted in
write-ups (right arm 14:21, grippers 21:23) is the order of the 2025 baseline's *state* vector, not of the
actions; group weights built on it weight the left gripper as an arm joint and half the grippers as arm.
"""

from collections.abc import Mapping
import warnings

from openpi.shared import action_groups as _groups

R1PRO_ACTION_DIM = 23
PADDED_ACTION_DIM = 32

BASE = (0, 3)
TRUNK = (3, 7)
LEFT_ARM = (7, 14)
LEFT_GRIPPER = [14]
RIGHT_ARM = (15, 22)
RIGHT_GRIPPER = [22]
PADDING = (R1PRO_ACTION_DIM, PADDED_ACTION_DIM)

# Each gripper as its own group.
R1PRO_ACTION_GROUPS: dict[str, _groups.GroupDims] = {
    "base": BASE,
    "trunk": TRUNK,
    "left_arm": LEFT_ARM,
    "left_gripper": LEFT_GRIPPER,
    "right_arm": RIGHT_ARM,
    "right_gripper": RIGHT_GRIPPER,
    "padding": PADDING,
}

# Both grippers in one group (dims 14 and 22), the form the arm-focused configs weight.
R1PRO_ACTION_GROUPS_COMBINED_GRIPPERS: dict[str, _groups.GroupDims] = {
    "base": BASE,
    "trunk": TRUNK,
    "left_arm": LEFT_ARM,
    "right_arm": RIGHT_ARM,
    "grippers": LEFT_GRIPPER + RIGHT_GRIPPER,
    "padding": PADDING,
}

# R1Pro's semantic groups, each as a set of action dims, and the kind of body part each one drives. A user group
# may combine groups of one kind (both grippers, both arms) but must not mix kinds.
_R1PRO_SEMANTIC_GROUPS: dict[str, frozenset[int]] = {
    name: frozenset(_groups.parse_dims(name, dims)) for name, dims in R1PRO_ACTION_GROUPS.items() if name != "padding"
}
_KIND = {
    "base": "base",
    "trunk": "trunk",
    "left_arm": "arm",
    "right_arm": "arm",
    "left_gripper": "gripper",
    "right_gripper": "gripper",
}
_LAYOUT_HINT = (
    "R1Pro's action layout is base 0:3, trunk 3:7, left_arm 7:14, left_gripper [14], right_arm 15:22, "
    "right_gripper [22]; 'right_arm 14:21, grippers 21:23' is the 2025 baseline's state order, not the action order."
)


def check_r1pro_layout(
    action_groups: Mapping[str, _groups.GroupDims], *, action_dim: int = PADDED_ACTION_DIM
) -> list[str]:
    """Warns for every user group that splits R1Pro's groups by mixing dims of different kinds (base, trunk,
    arm, gripper); returns the warning texts, empty for a layout that respects R1Pro's groups.

    For example ``right_arm=(14, 21)`` takes the left gripper (14) into the right arm and leaves the right
    arm's last joint (21) to ``grippers=(21, 23)``: the widely quoted state-order layout.
    """
    spec = _groups.ActionGroups.create(action_groups, action_dim)
    problems = []
    for name, dims in zip(spec.names, spec.dims, strict=True):
        touched = {real: sorted(set(dims) & real_dims) for real, real_dims in _R1PRO_SEMANTIC_GROUPS.items()}
        touched = {real: d for real, d in touched.items() if d}
        if len({_KIND[real] for real in touched}) > 1:
            parts = ", ".join(f"{real} {d}" for real, d in touched.items())
            problems.append(f"Action group '{name}' splits R1Pro's groups: it takes {parts}. {_LAYOUT_HINT}")
    for message in problems:
        warnings.warn(message, UserWarning, stacklevel=2)
    return problems
