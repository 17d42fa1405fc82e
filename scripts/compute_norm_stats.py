"""Compute normalization statistics (norm_stats.json) for a LeRobot dataset from its parquet columns.

Reads only the state and action columns (never decodes video), applies the robot's state transform and the
chosen state dims to whole columns and writes openpi's `norm_stats.json`. ``--config-name`` takes the dataset,
keys, robot state transform, state dims, action horizon and assets directory from a training config;
``--repo-id`` / ``--root`` work without one.

Example: python scripts/compute_norm_stats.py --repo-id behavior-1k/2025-challenge-demos --max-frames 2000000
"""

import dataclasses
import pathlib
from typing import Literal

import numpy as np
import tyro

from openpi.datasets import lerobot_meta as _lerobot_meta
from openpi.experiments import norm_stats
from openpi.shared import cli
from openpi.shared import normalize as _normalize
from openpi.training import config as _config


@dataclasses.dataclass(frozen=True)
class Args:
    config_name: str | None = None
    """Training config to take the dataset, keys, state transform, state dims, action horizon and output
    directory from: a registered name, path/to/file.py:NAME or package.module:NAME. Any TrainConfig override
    (e.g. --data.root DIR --data.state-dims 0 1 2) may follow."""
    config_overrides: tyro.conf.Suppress[tuple[str, ...]] = ()
    repo_id: str | None = None
    """Dataset repo id; the data is read from --root or $HF_LEROBOT_HOME/<repo_id>."""
    root: pathlib.Path | None = None
    """Local dataset root (holding meta/info.json)."""
    state_transform: Literal["auto", "b1k", "b1k_2026", "b1k_baseline_2025", "none"] = "auto"
    """b1k: R1Pro's 256-dim proprio (2025 edition) → 23-dim state in action order; b1k_2026: the same from the
    2026 edition's 61-dim proprio; b1k_baseline_2025: the 2025 baseline's order; none: the state as stored; auto:
    b1k for a 256-dim state, b1k_2026 for a 61-dim one, else none. With --config-name the config's robot
    decides."""
    state_dims: tuple[int, ...] | None = None
    """Indices of the (converted) state vector to take statistics over; default the config's data.state_dims,
    else all dims."""
    action_horizon: int | None = None
    """Weight actions as the chunks of this length a data loader yields; default: the config model's horizon
    (openpi's behaviour), or 1 (each action once) without a config."""
    max_frames: int | None = None
    """Use a seeded random subset of episodes with about this many frames."""
    output_dir: pathlib.Path | None = None
    """Where norm_stats.json goes; default ./assets/<repo_id or dataset folder name>."""
    per_timestep: bool = False
    """Action stats per chunk index ([H, D]); with --config-name the config's data.per_timestep_norm decides."""


def plan(args: Args) -> tuple[norm_stats.Recipe, pathlib.Path]:
    """The recipe of the stats ``args`` ask for and where they go."""
    if args.config_name is not None:
        config = _config.get_config(args.config_name, args.config_overrides)
        if args.state_dims is not None:
            config = dataclasses.replace(config, data=dataclasses.replace(config.data, state_dims=args.state_dims))
        recipe = norm_stats.for_config(
            config, root=args.root, action_horizon=args.action_horizon, max_frames=args.max_frames
        )
        return recipe, args.output_dir or norm_stats.stats_dir(config)
    if args.repo_id is None and args.root is None:
        raise ValueError("no dataset given: pass --config-name, or --repo-id and/or --root.")
    root = _lerobot_meta.resolve_root(args.repo_id, args.root)
    recipe = norm_stats.for_dataset(
        root,
        robot=args.state_transform,
        state_dims=args.state_dims,
        action_horizon=args.action_horizon or 1,
        per_timestep=args.per_timestep,
        max_frames=args.max_frames,
    )
    return recipe, args.output_dir or pathlib.Path("assets") / (args.repo_id or root.name)


def main(args: Args) -> None:
    path = norm_stats.write(*plan(args))
    for key, value in _normalize.load(path.parent).items():
        print(f"{key}: shape {np.shape(value.mean)}, mean |x| {abs(value.mean).mean():.4f}, min std {value.std.min():.3g}")
    print(f"Wrote {path}")


def cli_main() -> None:
    args, overrides = tyro.cli(Args, description=__doc__.split("\n\n")[0], return_unknown_args=True)
    main(_config.with_config_overrides(args, overrides))


if __name__ == "__main__":
    cli.run_main(cli_main)
