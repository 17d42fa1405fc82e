"""Strategy -> the registered config that trains it, one map per dataset. The configs of one map are identical
except for what the strategy changes, so a difference between their runs is the strategy's."""

from openpi.training import config as _config

# The miniature B1K dataset (offline comparison and the levers benchmark).
B1K = {
    "uniform": "pi0_b1k_uniform_demo",  # upstream loss, 9 of 32 dims are padding
    "original": "pi05_b1k_demo",  # the B1K baseline's time weights
    "per_group": "pi0_b1k_arm_focused_demo",  # hand-set arm-focused group weights (padding excluded)
    "masked": "pi0_b1k_masked_demo",  # uniform over the 23 real dims (exclude_padding)
    "adaptive": "pi0_b1k_adaptive_demo",  # group weights from each group's own progress
    "delta_pertimestep": "pi05_b1k_delta_pertimestep_demo",  # delta trunk/arm actions + per-timestep action stats
}
# Meta-World's fixed-base arm (the closed-loop control without a base).
METAWORLD = {
    "uniform": "metaworld_demo",
    "original": "metaworld_demo_original",
    "per_group": "metaworld_demo_per_group",
    "masked": "metaworld_demo_masked",  # uniform with exclude_padding
    "adaptive": "metaworld_demo_adaptive",
    "per_timestep": "metaworld_demo_per_timestep",  # uniform with action stats per chunk index
}

# The mobile manipulator (the closed-loop demo's default: drive, then manipulate).
MOBILE = {
    "uniform": "mobile_demo",
    "original": "mobile_demo_original",
    "per_group": "mobile_demo_per_group",
    "masked": "mobile_demo_masked",
    "adaptive": "mobile_demo_adaptive",
    "per_timestep": "mobile_demo_per_timestep",
    "delta_pertimestep": "mobile_demo_delta_pertimestep",  # delta arm actions + per-timestep action stats
}


def check(strategies: tuple[str, ...], table: dict[str, str], option: str) -> None:
    """Refuses strategies ``table`` does not know, naming ``option`` and the known ones."""
    unknown = [s for s in strategies if s not in table]
    if unknown:
        raise ValueError(f"Unknown {option} {unknown}; available: {', '.join(table)}.")


def config(table: dict[str, str], strategy: str) -> _config.TrainConfig:
    """The registered config of ``strategy`` in ``table``."""
    check((strategy,), table, "strategy")
    return _config.get_config(table[strategy])
