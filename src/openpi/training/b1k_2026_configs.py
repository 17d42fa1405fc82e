"""The BEHAVIOR 2026 edition's configs: the B1K recipes on the 2026 dataset (``behavior-1k/2026-challenge-demos``,
LeRobot v3.0, 100 tasks, the 61-dim proprio as ``observation.state``), each with a tiny ``_demo`` twin that trains
on the miniature 2026-layout dataset (``python -m openpi.datasets.mini_b1k --version v3.0 --edition 2026``).

The model sees the same 23-dim R1Pro state and 23-dim action as in 2025 (robot ``b1k_2026``: the conversion reads
the 61-dim layout), so every recipe carries over unchanged: the baseline, arm-focused group weights, the padding
excluded (masked), adaptive group weights, and the 2025 winners' delta actions with per-timestep normalization.
Norm stats must come from the dataset as fixed on 08/24 (qvel fields corrected, ``meta/stats.json`` recomputed):
statistics computed from an earlier download are wrong.

`b1k_2026_configs()` lists them for the registry (``training/registry.py``).
"""

from __future__ import annotations

import dataclasses

from openpi.training import recipes
from openpi.training import schema

REPO_ID = "behavior-1k/2026-challenge-demos"
# Where the `_demo` twins find the miniature 2026-layout dataset.
DEMO_REPO_ID = "openpi/mini_b1k_2026"
DEMO_DATASET_ROOT = "~/.cache/openpi/mini_b1k/2026"

_DATA = schema.LeRobotDataConfig(repo_id=REPO_ID, robot="b1k_2026")


def _model(strategy: str, **fields) -> schema.ModelConfig:
    return schema.ModelConfig(
        pi05=True, loss_weighting_strategy=strategy, action_groups=recipes.R1PRO_GROUPS, **fields
    )


def _recipes() -> list[schema.TrainConfig]:
    pi05 = recipes.BASE_CHECKPOINTS["pi05"]
    return [
        schema.TrainConfig(name="pi05_b1k_2026", model=_model("original"), data=_DATA, weight_path=pi05),
        schema.TrainConfig(
            name="pi05_b1k_2026_arm_focused",
            model=_model("per_group", group_weights=recipes.ARM_FOCUSED_WEIGHTS, exclude_padding=True),
            data=_DATA,
            weight_path=pi05,
        ),
        # Upstream's loss over the 23 real dims only.
        schema.TrainConfig(
            name="pi05_b1k_2026_masked", model=_model("uniform", exclude_padding=True), data=_DATA, weight_path=pi05
        ),
        schema.TrainConfig(
            name="pi05_b1k_2026_adaptive", model=_model("adaptive", exclude_padding=True), data=_DATA, weight_path=pi05
        ),
        # The 2025 winners' data recipe with upstream's loss: delta actions and per-timestep action normalization.
        schema.TrainConfig(
            name="pi05_b1k_2026_delta_pertimestep",
            model=_model("uniform"),
            data=dataclasses.replace(_DATA, delta_action_mask=recipes.B1K_DELTA_ACTION_MASK, per_timestep_norm=True),
            weight_path=pi05,
        ),
    ]


def b1k_2026_configs() -> list[schema.TrainConfig]:
    """Every 2026 config followed by its ``_demo`` twin (the miniature 2026 dataset)."""
    demo_data = {"repo_id": DEMO_REPO_ID, "root": DEMO_DATASET_ROOT}
    return [c for config in _recipes() for c in (config, recipes.demo_twin(config, data=demo_data))]

