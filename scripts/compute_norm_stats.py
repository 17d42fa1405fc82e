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
from openpi.datasets import stats as _stats
from openpi.shared import cli
from openpi.shared import normalize as _normalize
from openpi.training import config as _config
from openpi.training import data_resolver


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
    state_transform: Literal["auto", "b1k", "b1k_baseline_2025", "none"] = "auto"
    """b1k: 256-dim proprio → 23-dim state in action order; b1k_baseline_2025: the 2025 baseline's order; none:
    the state as stored; auto: b1k for a 256-dim state (B1K's proprio), else none. With --config-name the
    config's robot decides."""
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


def _from_config(args: Args) -> tuple[pathlib.Path, data_resolver.DataDecisions, tuple[str, str], int, pathlib.Path]:
    """(dataset root, the resolver's decisions, (state key, action key), action horizon, output dir) of the
    training config, with ``--state-dims`` replacing the config's."""
    config = _config.get_config(args.config_name, args.config_overrides)
    data = config.data if args.state_dims is None else dataclasses.replace(config.data, state_dims=args.state_dims)
    root = _lerobot_meta.resolve_root(data.repo_id or None, args.root or data.root)
    decisions = data_resolver.resolve(data, config.model, config.assets_dirs)
    horizon = args.action_horizon or config.model.action_horizon
    return root, decisions, (data.state_key, data.action_key), horizon, args.output_dir or decisions.stats_dir


def main(args: Args) -> None:
    if args.config_name is not None:
        root, decisions, keys, horizon, output_dir = _from_config(args)
        transform = decisions.state_transform
        delta_mask, per_timestep = decisions.delta_action_mask, decisions.per_timestep_norm
    elif args.repo_id is None and args.root is None:
        raise ValueError("no dataset given: pass --config-name, or --repo-id and/or --root.")
    else:
        root = _lerobot_meta.resolve_root(args.repo_id, args.root)
        keys = ("observation.state", "action")
        robot = args.state_transform
        if robot == "auto":
            shape = _lerobot_meta.LeRobotMetadata.load(root).features.get(keys[0], {}).get("shape") or [0]
            robot = data_resolver.robot_for_state(shape[-1])
        transform, horizon = data_resolver.state_transform(robot, args.state_dims), args.action_horizon or 1
        delta_mask, per_timestep = None, args.per_timestep
        output_dir = args.output_dir or pathlib.Path("assets") / (args.repo_id or root.name)
    norm_stats = _stats.compute_norm_stats(
        root,
        state_key=keys[0],
        action_key=keys[1],
        state_transform=transform,
        action_horizon=horizon,
        max_frames=args.max_frames,
        delta_action_mask=delta_mask,
        per_timestep=per_timestep,
    )
    path = _normalize.save(output_dir, norm_stats)
    for key, value in norm_stats.items():
        print(f"{key}: shape {np.shape(value.mean)}, mean |x| {abs(value.mean).mean():.4f}, min std {value.std.min():.3g}")
    print(f"Wrote {path}")


def cli_main() -> None:
    args, overrides = tyro.cli(Args, description=__doc__.split("\n\n")[0], return_unknown_args=True)
    main(_config.with_config_overrides(args, overrides))


if __name__ == "__main__":
    cli.run_main(cli_main)
