"""Compute normalization statistics (norm_stats.json) for a LeRobot dataset from its parquet columns.

Reads only the state and action columns (never decodes video), applies the robot's state transform to whole
columns and writes openpi's `norm_stats.json`. ``--config-name`` takes the dataset, robot state transform,
action horizon and assets directory from a training config; ``--repo-id`` / ``--root`` work without one.

Example: python scripts/compute_norm_stats.py --repo-id behavior-1k/2025-challenge-demos --max-frames 2000000
"""

import dataclasses
import pathlib
from typing import Literal

import tyro

from openpi.datasets import lerobot_meta as _lerobot_meta
from openpi.datasets import stats as _stats
from openpi.shared import normalize as _normalize
from openpi.training import data_resolver


@dataclasses.dataclass(frozen=True)
class Args:
    config_name: str | None = None
    """Training config to take the dataset, state transform, action horizon and output directory from."""
    repo_id: str | None = None
    """Dataset repo id; the data is read from --root or $HF_LEROBOT_HOME/<repo_id>."""
    root: pathlib.Path | None = None
    """Local dataset root (holding meta/info.json)."""
    state_transform: Literal["b1k", "b1k_baseline_2025", "none"] = "b1k"
    """b1k: 256-dim proprio → 23-dim state in action order; b1k_baseline_2025: the 2025 baseline's order.
    With --config-name the config's robot decides."""
    action_horizon: int | None = None
    """Weight actions as the chunks of this length a data loader yields; default: the config model's horizon
    (openpi's behaviour), or 1 (each action once) without a config."""
    max_frames: int | None = None
    """Use a seeded random subset of episodes with about this many frames."""
    output_dir: pathlib.Path | None = None
    """Where norm_stats.json goes; default ./assets/<repo_id or dataset folder name>."""


def _from_config(args: Args) -> tuple[pathlib.Path, str, int, pathlib.Path]:
    """(dataset root, state transform name, action horizon, output dir) of a registered training config."""
    from openpi.training import config as _config

    config = _config.get_config(args.config_name)
    data = config.data
    root = _lerobot_meta.resolve_root(data.repo_id, args.root or data.root)
    output_dir = args.output_dir or data_resolver.resolve_train_config(config).stats_dir
    return root, data.robot, args.action_horizon or config.model.action_horizon, output_dir


def main(args: Args) -> None:
    if args.config_name is not None:
        root, transform, horizon, output_dir = _from_config(args)
    elif args.repo_id is None and args.root is None:
        raise SystemExit("Give --config-name, or --repo-id and/or --root.")
    else:
        root = _lerobot_meta.resolve_root(args.repo_id, args.root)
        transform, horizon = args.state_transform, args.action_horizon or 1
        output_dir = args.output_dir or pathlib.Path("assets") / (args.repo_id or root.name)
    norm_stats = _stats.compute_norm_stats(
        root, state_transform=data_resolver.state_transform(transform), action_horizon=horizon, max_frames=args.max_frames
    )
    path = _normalize.save(output_dir, norm_stats)
    for key, value in norm_stats.items():
        print(f"{key}: {len(value.mean)} dims, mean |x| {abs(value.mean).mean():.4f}, min std {value.std.min():.3g}")
    print(f"Wrote {path}")


if __name__ == "__main__":
    cli_args = tyro.cli(Args, description=__doc__.split("\n\n")[0])
    try:
        main(cli_args)
    except (FileNotFoundError, ValueError) as error:  # missing dataset, unknown config, bad data: message only
        raise SystemExit(f"error: {error}") from None
