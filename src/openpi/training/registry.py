"""The named configs: every registered config written out as one ``TrainConfig`` literal (its model with the
loss strategy, action groups and weights, and its data config), each ``_demo`` twin derived by
``recipes.demo_twin``, and the lookup by name or by ``path/to/file.py:NAME`` / ``package.module:NAME``.
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import difflib
import importlib
import importlib.util
import pathlib
from typing import Any

import tyro

from openpi.policies import b1k_policy
from openpi.training import b1k_2026_configs
from openpi.training import mobile_configs
from openpi.training.recipes import ARM_FOCUSED_WEIGHTS
from openpi.training.recipes import B1K_DELTA_ACTION_MASK
from openpi.training.recipes import BASE_CHECKPOINTS
from openpi.training.recipes import DEMO_DATASET_ROOT
from openpi.training.recipes import DEMO_REPO_ID
from openpi.training.recipes import R1PRO_GROUPS
from openpi.training.recipes import SIM_ACTION_GROUPS
from openpi.training.recipes import SIM_ARM_FOCUSED_WEIGHTS
from openpi.training.recipes import SIM_DATA
from openpi.training.recipes import SIM_MODEL_FIELDS
from openpi.training.recipes import SIM_TRAIN_FIELDS
from openpi.training.recipes import VERY_ARM_FOCUSED_WEIGHTS
from openpi.training.recipes import demo_twin
from openpi.training.recipes import per_dimension_weights
from openpi.training.schema import LeRobotDataConfig
from openpi.training.schema import ModelConfig
from openpi.training.schema import TrainConfig


def _b1k_configs() -> list[TrainConfig]:
    """The B1K configs. ``LeRobotDataConfig()``'s defaults are B1K's dataset, cameras and R1Pro state conversion;
    the model's defaults openpi's (action_dim 32, horizon 50). Every one but ``pi0_b1k`` is a pi0.5 model."""
    return [
        TrainConfig(
            name="pi0_b1k",
            model=ModelConfig(pi05=False, loss_weighting_strategy="original", action_groups=R1PRO_GROUPS),
            data=LeRobotDataConfig(),
            weight_path=BASE_CHECKPOINTS["pi0"],
        ),
        TrainConfig(
            name="pi05_b1k",
            model=ModelConfig(pi05=True, loss_weighting_strategy="original", action_groups=R1PRO_GROUPS),
            data=LeRobotDataConfig(),
            weight_path=BASE_CHECKPOINTS["pi05"],
        ),
        TrainConfig(
            name="pi0_b1k_arm_focused",
            model=ModelConfig(
                pi05=True,
                loss_weighting_strategy="per_group",
                action_groups=R1PRO_GROUPS,
                group_weights=ARM_FOCUSED_WEIGHTS,
                exclude_padding=True,
            ),
            data=LeRobotDataConfig(),
            weight_path=BASE_CHECKPOINTS["pi05"],
        ),
        TrainConfig(
            name="pi0_b1k_very_arm_focused",
            model=ModelConfig(
                pi05=True,
                loss_weighting_strategy="per_group",
                action_groups=R1PRO_GROUPS,
                group_weights=VERY_ARM_FOCUSED_WEIGHTS,
                exclude_padding=True,
            ),
            data=LeRobotDataConfig(),
            weight_path=BASE_CHECKPOINTS["pi05"],
        ),
        # The arm-focused weights as fixed per-dim weights, without the time weights.
        TrainConfig(
            name="pi0_b1k_simple_arm_focused",
            model=ModelConfig(
                pi05=True,
                loss_weighting_strategy="per_dimension",
                action_groups=R1PRO_GROUPS,
                dimension_weights=per_dimension_weights(
                    R1PRO_GROUPS, ARM_FOCUSED_WEIGHTS, b1k_policy.PADDED_ACTION_DIM
                ),
                exclude_padding=True,
            ),
            data=LeRobotDataConfig(),
            weight_path=BASE_CHECKPOINTS["pi05"],
        ),
        TrainConfig(
            name="pi0_b1k_uniform",
            model=ModelConfig(pi05=True, loss_weighting_strategy="uniform", action_groups=R1PRO_GROUPS),
            data=LeRobotDataConfig(),
            weight_path=BASE_CHECKPOINTS["pi05"],
        ),
        # Upstream's loss over the 23 real dims only: no hand-set weights, padding never trained.
        TrainConfig(
            name="pi0_b1k_masked",
            model=ModelConfig(
                pi05=True, loss_weighting_strategy="uniform", action_groups=R1PRO_GROUPS, exclude_padding=True
            ),
            data=LeRobotDataConfig(),
            weight_path=BASE_CHECKPOINTS["pi05"],
        ),
        # Group weights from each group's own progress (``AdaptiveBalance``), padding excluded.
        TrainConfig(
            name="pi0_b1k_adaptive",
            model=ModelConfig(
                pi05=True, loss_weighting_strategy="adaptive", action_groups=R1PRO_GROUPS, exclude_padding=True
            ),
            data=LeRobotDataConfig(),
            weight_path=BASE_CHECKPOINTS["pi05"],
        ),
        # The winners' data recipe with upstream's loss: delta actions and per-timestep action normalization.
        TrainConfig(
            name="pi05_b1k_delta_pertimestep",
            model=ModelConfig(pi05=True, loss_weighting_strategy="uniform", action_groups=R1PRO_GROUPS),
            data=LeRobotDataConfig(delta_action_mask=B1K_DELTA_ACTION_MASK, per_timestep_norm=True),
            weight_path=BASE_CHECKPOINTS["pi05"],
        ),
        # Curriculum: phase 1 on arm-heavy data only, phase 2 on everything from phase 1's weights.
        TrainConfig(
            name="phase1_arm_heavy",
            model=ModelConfig(
                pi05=True,
                loss_weighting_strategy="per_group",
                action_groups=R1PRO_GROUPS,
                group_weights=ARM_FOCUSED_WEIGHTS,
                exclude_padding=True,
            ),
            data=LeRobotDataConfig(episodes_path="{assets_dir}/arm_heavy_episodes.json"),
            weight_path=BASE_CHECKPOINTS["pi05"],
            num_train_steps=20_000,
        ),
        TrainConfig(
            name="phase2_full",
            model=ModelConfig(
                pi05=True,
                loss_weighting_strategy="per_group",
                action_groups=R1PRO_GROUPS,
                group_weights=ARM_FOCUSED_WEIGHTS,
                exclude_padding=True,
            ),
            data=LeRobotDataConfig(),
            weight_path=BASE_CHECKPOINTS["pi05"],
            resume_from="phase1_arm_heavy/{exp_name}",
        ),
    ]


def _sim_configs() -> list[TrainConfig]:
    """The simulator configs: one recipe (``SIM_MODEL_FIELDS``, ``SIM_DATA``, ``SIM_TRAIN_FIELDS``), six variants (five losses, one normalization)."""
    return [
        TrainConfig(
            name="metaworld_demo",
            model=ModelConfig(**SIM_MODEL_FIELDS, loss_weighting_strategy="uniform", action_groups=SIM_ACTION_GROUPS),
            data=SIM_DATA,
            **SIM_TRAIN_FIELDS,
        ),
        TrainConfig(
            name="metaworld_demo_original",
            model=ModelConfig(**SIM_MODEL_FIELDS, loss_weighting_strategy="original", action_groups=SIM_ACTION_GROUPS),
            data=SIM_DATA,
            **SIM_TRAIN_FIELDS,
        ),
        TrainConfig(
            name="metaworld_demo_per_group",
            model=ModelConfig(
                **SIM_MODEL_FIELDS,
                loss_weighting_strategy="per_group",
                action_groups=SIM_ACTION_GROUPS,
                group_weights=SIM_ARM_FOCUSED_WEIGHTS,
            ),
            data=SIM_DATA,
            **SIM_TRAIN_FIELDS,
        ),
        TrainConfig(
            name="metaworld_demo_masked",
            model=ModelConfig(
                **SIM_MODEL_FIELDS,
                loss_weighting_strategy="uniform",
                action_groups=SIM_ACTION_GROUPS,
                exclude_padding=True,
            ),
            data=SIM_DATA,
            **SIM_TRAIN_FIELDS,
        ),
        TrainConfig(
            name="metaworld_demo_adaptive",
            model=ModelConfig(
                **SIM_MODEL_FIELDS,
                loss_weighting_strategy="adaptive",
                action_groups=SIM_ACTION_GROUPS,
                exclude_padding=True,
            ),
            data=SIM_DATA,
            **SIM_TRAIN_FIELDS,
        ),
        # The winners' per-timestep action normalization (Meta-World's actions are already deltas: no delta transform).
        TrainConfig(
            name="metaworld_demo_per_timestep",
            model=ModelConfig(**SIM_MODEL_FIELDS, loss_weighting_strategy="uniform", action_groups=SIM_ACTION_GROUPS),
            data=dataclasses.replace(SIM_DATA, per_timestep_norm=True),
            **SIM_TRAIN_FIELDS,
        ),
    ]


def _registry() -> dict[str, TrainConfig]:
    mini_b1k = {"repo_id": DEMO_REPO_ID, "root": DEMO_DATASET_ROOT}
    # ``lerobot``: any LeRobot dataset from command-line flags alone (dataset, camera map, keys, state dims,
    # action groups and weights); the state is used as stored, outputs keep the dataset's action dims. It keeps the
    # padded dims out of the loss: in closed loop that beat upstream's loss by resolved intervals (SOLUTIONS.md 8a).
    lerobot = TrainConfig(
        name="lerobot",
        model=ModelConfig(pi05=True, loss_weighting_strategy="uniform", exclude_padding=True),
        data=LeRobotDataConfig(repo_id="", image_keys={}, robot="identity", robot_action_dim=None),
        weight_path=BASE_CHECKPOINTS["pi05"],
    )
    configs = []
    for config in _b1k_configs():
        configs += [config, demo_twin(config, data=mini_b1k)]
    configs += [lerobot, demo_twin(lerobot, model={"action_horizon": 10}), *_sim_configs()]
    configs += [*b1k_2026_configs.b1k_2026_configs(), *mobile_configs.mobile_configs()]
    return {config.name: config for config in configs}


_CONFIGS: dict[str, TrainConfig] | None = None


def configs() -> dict[str, TrainConfig]:
    """All registered configs by name (built on first use, so importing this module stays cheap)."""
    global _CONFIGS
    if _CONFIGS is None:
        _CONFIGS = _registry()
    return _CONFIGS


def _load_config_reference(reference: str) -> TrainConfig:
    """``path/to/file.py:NAME`` or ``package.module:NAME`` → the ``TrainConfig`` it names (or that the function
    it names returns). A config without a ``name`` takes ``NAME`` (its assets and checkpoints go under it)."""
    module_ref, attr = reference.rsplit(":", 1)
    if module_ref.endswith(".py"):
        path = pathlib.Path(module_ref).expanduser()
        if not path.is_file():
            raise ValueError(f"Config file {path} does not exist (from {reference!r}).")
        spec = importlib.util.spec_from_file_location(f"_openpi_config_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except SyntaxError as error:
            raise ValueError(f"Config file {path}, line {error.lineno}: {error.msg} (from {reference!r}).") from None
    else:
        try:
            module = importlib.import_module(module_ref)
        except ImportError as error:
            raise ValueError(f"Cannot import config module {module_ref!r} (from {reference!r}): {error}") from None
    if not hasattr(module, attr):
        public = sorted(n for n in vars(module) if not n.startswith("_"))
        raise ValueError(f"{module_ref} has no {attr!r} (from {reference!r}); it defines: {', '.join(public)}.")
    config = getattr(module, attr)
    if callable(config) and not isinstance(config, TrainConfig):
        config = config()
    if not isinstance(config, TrainConfig):
        raise ValueError(f"{reference!r} is a {type(config).__name__}, not a TrainConfig (or a function returning one).")
    return config if config.name else dataclasses.replace(config, name=attr)


def get_config(name: str, overrides: Sequence[str] = ()) -> TrainConfig:
    """The config ``name``: a registered name, ``path/to/file.py:NAME`` or ``package.module:NAME`` (a
    ``TrainConfig`` or a function returning one), with command-line ``overrides`` (``--field.sub-field VALUE``)
    applied. An unknown name raises ``ValueError`` listing the closest names."""
    if ":" in name:
        config = _load_config_reference(name)
    else:
        registry = configs()
        if name not in registry:
            close = difflib.get_close_matches(name, registry, n=3, cutoff=0.4)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(
                f"Unknown config {name!r}.{hint} Available: {', '.join(sorted(registry))}, or a config file as "
                "path/to/file.py:NAME or package.module:NAME."
            )
        config = registry[name]
    if overrides:
        config = tyro.cli(TrainConfig, default=config, args=list(overrides))
    return config


def named_config(name: str, **overrides: Any) -> TrainConfig:
    """A registered config with field overrides (validated like the CLI's); used by ``examples/configs``."""
    return dataclasses.replace(get_config(name), **overrides)
