"""The building blocks of the named configs: base checkpoints, R1Pro's layout and weights, the tiny CPU model
and schedule, the simulator recipe, and `demo_twin`. ``training/registry.py`` writes the configs out from them;
config files of one's own (``examples/configs``) use them too.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
from typing import Any

from openpi.policies import b1k_policy
from openpi.shared import action_groups as action_groups_lib
from openpi.training.schema import LeRobotDataConfig
from openpi.training.schema import LRSchedule
from openpi.training.schema import TrainConfig

# openpi's released base checkpoints; gs:// paths resolve to openpi's local cache ($OPENPI_DATA_HOME, default
# ~/.cache/openpi), where an openpi user already has them. Nothing is downloaded.
BASE_CHECKPOINTS = {
    "pi0": "gs://openpi-assets/checkpoints/pi0_base/params",
    "pi05": "gs://openpi-assets/checkpoints/pi05_base/params",
}
# R1Pro's true action layout (grippers combined); the model's padded dims 23:32 become the `padding` group.
R1PRO_GROUPS = b1k_policy.R1PRO_ACTION_GROUPS_COMBINED_GRIPPERS
ARM_FOCUSED_WEIGHTS = {"base": 1.0, "trunk": 2.0, "left_arm": 3.0, "right_arm": 3.0, "grippers": 2.5, "padding": 0.0}
VERY_ARM_FOCUSED_WEIGHTS = {
    "base": 0.5,
    "trunk": 2.0,
    "left_arm": 5.0,
    "right_arm": 5.0,
    "grippers": 3.0,
    "padding": 0.0,
}
# The 2025 BEHAVIOR challenge winners' recipe: trunk dims 3-5 and both arms relative to the current state; the
# base velocities, trunk dim 6 and the grippers stay absolute.
B1K_DELTA_ACTION_MASK = (False,) * 3 + (True,) * 3 + (False,) + (True,) * 7 + (False,) + (True,) * 7 + (False,)

# Where the CPU demo and the `_demo` configs find the miniature B1K dataset (scripts/demo.py writes it).
DEMO_DATASET_ROOT = "~/.cache/openpi/mini_b1k/v2.1"
DEMO_REPO_ID = "openpi/mini_b1k"
# A model small enough to train on 2 CPU cores in minutes; the real architecture, shrunk.
DEMO_MODEL_FIELDS: dict[str, Any] = dict(
    dtype="float32",
    paligemma_variant="dummy",
    action_expert_variant="dummy",
    vision_variant="mu/16",
    image_resolution=(64, 64),
)
DEMO_TRAIN_FIELDS: dict[str, Any] = dict(
    batch_size=8,
    num_workers=0,
    num_train_steps=300,
    log_interval=10,
    save_interval=100,
    keep_period=None,
    ema_decay=None,
    lr_schedule=LRSchedule(warmup_steps=20, peak_lr=1e-3, decay_lr=1e-4),
)

# The simulator (openpi.sim, Meta-World): 39-dim state, action = xyz delta (arm) + gripper effort. Every
# metaworld_demo* config is this one recipe (model, data, schedule) with its own loss weighting.
SIM_DATASET_ROOT = "~/.cache/openpi/metaworld_demos"
SIM_REPO_ID = "openpi/metaworld_demos"
SIM_ACTION_GROUPS = {"arm": (0, 3), "gripper": (3, 4)}
SIM_ARM_FOCUSED_WEIGHTS = {"arm": 1.0, "gripper": 3.0}
# The tiny model, changed for the simulator (see SOLUTIONS.md for what each choice did): pi0 (continuous state
# token, a 48-token prompt; pi0.5 would put 39 state values into a ~240-token prompt), an embedding table the
# size of the offline tokenizer's ids, a model action_dim that holds the 39-dim state, short chunks.
SIM_MODEL_FIELDS: dict[str, Any] = {
    **DEMO_MODEL_FIELDS,
    "pi05": False,
    "vocab_size": 512,
    "action_dim": 40,
    "action_horizon": 10,
    "max_token_len": 48,
    "image_resolution": (32, 32),
}
SIM_TRAIN_FIELDS: dict[str, Any] = {
    **DEMO_TRAIN_FIELDS,
    "batch_size": 32,
    "num_train_steps": 1500,
    "save_interval": 1500,
    "log_interval": 50,
    "lr_schedule": LRSchedule(warmup_steps=50, peak_lr=1e-3, decay_steps=1500, decay_lr=1e-4),
}
SIM_DATA = LeRobotDataConfig(
    repo_id=SIM_REPO_ID,
    root=SIM_DATASET_ROOT,
    image_keys={"base_0_rgb": "observation.images.scene", "left_wrist_0_rgb": "observation.images.wrist"},
    robot="identity",
    robot_action_dim=4,  # xyz delta + gripper
    norm="zscore",
    tokenizer="offline",
)


def per_dimension_weights(
    groups: Mapping[str, action_groups_lib.GroupDims], group_weights: Mapping[str, float], action_dim: int
) -> tuple[float, ...]:
    """Each dim's weight is its group's (the padding dims' 0): a ``per_dimension`` config's ``dimension_weights``
    written as group weights."""
    groups, group_weights = action_groups_lib.complete_layout(groups, group_weights, action_dim)
    spec = action_groups_lib.ActionGroups.create(groups, action_dim)
    return tuple(float(v) for v in spec.dimension_weight_vector(group_weights))


def demo_twin(
    config: TrainConfig, *, data: Mapping[str, Any] | None = None, model: Mapping[str, Any] | None = None
) -> TrainConfig:
    """``<name>_demo``: ``config``'s loss weighting and data recipe on the tiny model (``DEMO_MODEL_FIELDS``),
    with the offline tokenizer and the short CPU schedule (``DEMO_TRAIN_FIELDS``), from random weights, so it
    trains on a CPU in minutes. ``data`` / ``model`` change further fields (the B1K twins read the miniature
    dataset). A curriculum phase resumes from the previous phase's twin."""
    resume_from = config.resume_from
    if resume_from:
        phase, rest = resume_from.split("/", 1)
        resume_from = f"{phase}_demo/{rest}"
    return dataclasses.replace(
        config,
        name=f"{config.name}_demo",
        model=dataclasses.replace(config.model, **DEMO_MODEL_FIELDS, **(model or {})),
        data=dataclasses.replace(config.data, tokenizer="offline", **(data or {})),
        weight_path=None,
        resume_from=resume_from,
        **DEMO_TRAIN_FIELDS,
    )
