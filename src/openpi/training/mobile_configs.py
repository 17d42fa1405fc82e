"""Training configs of the mobile manipulator (openpi.sim.mobile_env): the Meta-World simulator's recipe
(``SIM_MODEL_FIELDS``, ``SIM_TRAIN_FIELDS``) on R1Pro-style actions -- base velocity 0:3, absolute arm joint
positions 3:10, gripper 10 -- with one config per strategy and lever. The model keeps openpi's 32 action dims,
so dims 11:32 are padding, as in BEHAVIOR-1K.

``mobile_configs()`` lists them for the registry (``training/registry.py``):

    python scripts/train.py mobile_demo_per_group --exp-name=s0
"""

from __future__ import annotations

import dataclasses

from openpi.sim import mobile_env
from openpi.training.recipes import SIM_MODEL_FIELDS
from openpi.training.recipes import SIM_TRAIN_FIELDS
from openpi.training.schema import LeRobotDataConfig
from openpi.training.schema import ModelConfig
from openpi.training.schema import TrainConfig

MOBILE_DATASET_ROOT = "~/.cache/openpi/mobile_demos"
MOBILE_REPO_ID = "openpi/mobile_demos"
MOBILE_ACTION_GROUPS = dict(mobile_env.ACTION_GROUPS)
# BEHAVIOR-1K's arm-focused weights (base 1, arms 3, grippers 2.5, padding 0) on this layout.
MOBILE_ARM_FOCUSED_WEIGHTS = {"base": 1.0, "arm": 3.0, "gripper": 2.5, "padding": 0.0}
# The winners' delta actions: the arm joints relative to the state's (state dims 3:10 are the arm's joints).
MOBILE_DELTA_ACTION_MASK = (False,) * 3 + (True,) * 7 + (False,)
MOBILE_MODEL_FIELDS = {**SIM_MODEL_FIELDS, "action_dim": 32}  # holds the 18-dim state and the 11-dim action
MOBILE_TRAIN_FIELDS = {**SIM_TRAIN_FIELDS}
MOBILE_DATA = LeRobotDataConfig(
    repo_id=MOBILE_REPO_ID,
    root=MOBILE_DATASET_ROOT,
    image_keys={"base_0_rgb": "observation.images.head", "left_wrist_0_rgb": "observation.images.wrist"},
    robot="identity",
    robot_action_dim=mobile_env.ACTION_DIM,
    norm="zscore",
    tokenizer="offline",
)


def _config(name: str, strategy: str, data: LeRobotDataConfig = MOBILE_DATA, **model) -> TrainConfig:
    return TrainConfig(
        name=name,
        model=ModelConfig(**MOBILE_MODEL_FIELDS, loss_weighting_strategy=strategy,
                          action_groups=MOBILE_ACTION_GROUPS, **model),
        data=data,
        **MOBILE_TRAIN_FIELDS,
    )


def mobile_configs() -> list[TrainConfig]:
    """``mobile_demo`` (uniform) and one config per strategy and lever, all on the one recipe."""
    return [
        _config("mobile_demo", "uniform"),
        _config("mobile_demo_original", "original"),
        _config("mobile_demo_per_group", "per_group", group_weights=MOBILE_ARM_FOCUSED_WEIGHTS, exclude_padding=True),
        _config("mobile_demo_masked", "uniform", exclude_padding=True),
        _config("mobile_demo_adaptive", "adaptive", exclude_padding=True),
        _config("mobile_demo_per_timestep", "uniform", dataclasses.replace(MOBILE_DATA, per_timestep_norm=True)),
        _config("mobile_demo_delta_pertimestep", "uniform",
                dataclasses.replace(MOBILE_DATA, delta_action_mask=MOBILE_DELTA_ACTION_MASK, per_timestep_norm=True)),
    ]

