"""BEHAVIOR-1K R1Pro: the true action layout and a check against the widely quoted wrong one.

R1Pro's 23-dim action vector is ``base 0:3, trunk 3:7, left_arm 7:14, left_gripper [14], right_arm 15:22,
right_gripper [22]``; models pad it to 32 dims, so dims 23:32 are padding. The layout often quoted in
write-ups (right arm 14:21, grippers 21:23) is the order of the 2025 baseline's *state* vector, not of the
actions; group weights built on it weight the left gripper as an arm joint and half the grippers as arm.

The layout's numbers (action and proprio slices) live in `r1pro`; this module re-exports the ones it uses.
`B1KInputs` / `B1KOutputs` convert between B1K dataset samples and the model; `proprio_to_state` builds the
23-dim state from the 2025 edition's 256-dim proprio or the 2026 edition's 61-dim one, vectorized so statistics
tools can apply it to whole columns.
"""

from collections.abc import Mapping
import dataclasses
import functools
from typing import Literal
import warnings

import numpy as np

from openpi.policies import lerobot_policy
from openpi.policies.r1pro import BASE
from openpi.policies.r1pro import LEFT_ARM
from openpi.policies.r1pro import LEFT_GRIPPER
from openpi.policies.r1pro import MAX_GRIPPER_WIDTH
from openpi.policies.r1pro import PADDED_ACTION_DIM
from openpi.policies.r1pro import PADDING
from openpi.policies.r1pro import PROPRIO_2026
from openpi.policies.r1pro import PROPRIO_2026_DIM
from openpi.policies.r1pro import PROPRIO_ARM_LEFT_QPOS
from openpi.policies.r1pro import PROPRIO_ARM_RIGHT_QPOS
from openpi.policies.r1pro import PROPRIO_BASE_QVEL
from openpi.policies.r1pro import PROPRIO_DIM
from openpi.policies.r1pro import PROPRIO_GRIPPER_LEFT_QPOS
from openpi.policies.r1pro import PROPRIO_GRIPPER_RIGHT_QPOS
from openpi.policies.r1pro import PROPRIO_TRUNK_QPOS
from openpi.policies.r1pro import R1PRO_ACTION_DIM
from openpi.policies.r1pro import RIGHT_ARM
from openpi.policies.r1pro import RIGHT_GRIPPER
from openpi.policies.r1pro import TRUNK
from openpi.shared import action_groups as _groups

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
_R1PRO_LAYOUT_TEXT = _groups.ActionGroups.create(R1PRO_ACTION_GROUPS, PADDED_ACTION_DIM).to_json()
_LAYOUT_HINT = (
    "R1Pro's action layout is "
    + ", ".join(f"{name} {dims}" for name, dims in _R1PRO_LAYOUT_TEXT.items() if name != "padding")
    + "; 'right_arm 14:21, grippers 21:23' is the 2025 baseline's state order, not the action order."
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


# --- Inputs / outputs: B1K dataset sample → model dict, model output → robot action. ---

StateOrder = Literal["action", "baseline_2025"]


# Where each part of the model state sits in each edition's proprio: (base velocity, trunk, left arm, right arm,
# left fingers, right fingers), keyed by the proprio's width.
_PROPRIO_PARTS = {
    PROPRIO_DIM: (
        PROPRIO_BASE_QVEL,
        PROPRIO_TRUNK_QPOS,
        PROPRIO_ARM_LEFT_QPOS,
        PROPRIO_ARM_RIGHT_QPOS,
        PROPRIO_GRIPPER_LEFT_QPOS,
        PROPRIO_GRIPPER_RIGHT_QPOS,
    ),
    PROPRIO_2026_DIM: tuple(
        PROPRIO_2026[name]
        for name in (
            "base_qvel",
            "trunk_qpos",
            "arm_left_qpos",
            "arm_right_qpos",
            "gripper_left_qpos",
            "gripper_right_qpos",
        )
    ),
}


def proprio_edition(width: int) -> str:
    """"2025" for the 256-dim proprio, "2026" for the 61-dim one; a clear error for any other width."""
    editions = {PROPRIO_DIM: "2025", PROPRIO_2026_DIM: "2026"}
    if width not in editions:
        raise ValueError(
            f"B1K proprio must have {PROPRIO_DIM} dims (2025 edition) or {PROPRIO_2026_DIM} dims (2026 edition), "
            f"got {width}."
        )
    return editions[width]


def proprio_to_state(proprio: np.ndarray, state_order: StateOrder = "action") -> np.ndarray:
    """[..., 256] (2025) or [..., 61] (2026) proprio → [..., 23] state; the edition is read from the width, and
    both give the same state (the 2026 base velocity is robot-local, like the 2025 ``base_qvel``). Works on one
    frame or a whole column.

    ``"action"``: the action layout (base qvel 0:3, trunk 3:7, left arm 7:14, left gripper 14, right arm 15:22,
    right gripper 22) with gripper widths mapped from [0, 0.1] m to [-1, 1] like the gripper actions.
    ``"baseline_2025"``: the 2025 baseline's order ``[base, trunk, left arm, right arm, left width, right width]``
    with raw widths in metres.
    """
    proprio = np.asarray(proprio, dtype=np.float32)
    proprio_edition(proprio.shape[-1] if proprio.ndim else 0)
    base, trunk, left, right, left_fingers, right_fingers = (proprio[..., s] for s in _PROPRIO_PARTS[proprio.shape[-1]])
    left_width = left_fingers.sum(-1, keepdims=True)
    right_width = right_fingers.sum(-1, keepdims=True)
    if state_order == "baseline_2025":
        return np.concatenate([base, trunk, left, right, left_width, right_width], axis=-1)
    if state_order != "action":
        raise ValueError(f"Unknown state_order {state_order!r}; use 'action' or 'baseline_2025'.")

    def to_unit(width: np.ndarray) -> np.ndarray:
        return np.clip(width / MAX_GRIPPER_WIDTH, 0.0, 1.0) * 2.0 - 1.0

    return np.concatenate([base, trunk, left, to_unit(left_width), right, to_unit(right_width)], axis=-1)


@dataclasses.dataclass(frozen=True)
class B1KInputs(lerobot_policy.LeRobotInputs):
    """Repacked B1K sample → model dict: the 256-dim (2025) or 61-dim (2026) proprio becomes the 23-dim state
    (``state_order``), cameras fill the model's slots with masks (see ``LeRobotInputs``)."""

    state_order: StateOrder = "action"

    def __post_init__(self):
        object.__setattr__(self, "state_transform", functools.partial(proprio_to_state, state_order=self.state_order))


@dataclasses.dataclass(frozen=True)
class B1KOutputs(lerobot_policy.LeRobotOutputs):
    """Model output → R1Pro action: the first 23 of the padded action dims."""

    action_dim: int = R1PRO_ACTION_DIM
