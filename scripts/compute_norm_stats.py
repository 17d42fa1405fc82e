"""Compute normalization statistics (norm_stats.json) for a LeRobot dataset from its parquet columns.

Reads only the state and action columns (never decodes video), applies the robot's state transform to whole
columns and writes openpi's `norm_stats.json`. Works today with ``--repo-id`` / ``--root``; ``--config-name``
reads the dataset and transforms from a training config once the config registry exists.

Example: python scripts/compute_norm_stats.py --repo-id behavior-1k/2025-challenge-demos --max-frames 2000000
"""

import dataclasses
import functools
import pathlib
from typing import Literal

import tyro

from openpi.datasets import lerobot as _lerobot
from openpi.datasets import stats as _stats
from openpi.policies import b1k_policy
from openpi.shared import normalize as _normalize


@dataclasses.dataclass(frozen=True)
class Args:
    config_name: str | None = None
    """Training config to take the dataset and transforms from (needs openpi.training.config)."""
    repo_id: str | None = None
    """Dataset repo id; the data is read from --root or $HF_LEROBOT_HOME/<repo_id>."""
    root: pathlib.Path | None = None
    """Local dataset root (holding meta/info.json)."""
    state_transform: Literal["b1k", "b1k_baseline_2025", "none"] = "b1k"
    """b1k: 256-dim proprio → 23-dim state in action order; b1k_baseline_2025: the 2025 baseline's order."""
    action_horizon: int = 1
    """Weight actions as the chunks of this length a data loader would yield (openpi uses the model's horizon)."""
    max_frames: int | None = None
    """Use a seeded random subset of episodes with about this many frames."""
    output_dir: pathlib.Path | None = None
    """Where norm_stats.json goes; default ./assets/<repo_id or dataset folder name>."""


def main(args: Args) -> None:
    if args.config_name is not None:
        raise SystemExit(
            f"--config-name {args.config_name}: the training config registry (openpi.training.config) is not "
            "wired into this script yet; pass --repo-id and/or --root instead."
        )
    if args.repo_id is None and args.root is None:
        raise SystemExit("Give --repo-id or --root (or --config-name).")
    root = _lerobot.resolve_root(args.repo_id, args.root)
    state_fn = {
        "b1k": functools.partial(b1k_policy.proprio_to_state, state_order="action"),
        "b1k_baseline_2025": functools.partial(b1k_policy.proprio_to_state, state_order="baseline_2025"),
        "none": None,
    }[args.state_transform]
    norm_stats = _stats.compute_norm_stats(
        root, state_transform=state_fn, action_horizon=args.action_horizon, max_frames=args.max_frames
    )
    output_dir = args.output_dir or pathlib.Path("assets") / (args.repo_id or root.name)
    path = _normalize.save(output_dir, norm_stats)
    for key, value in norm_stats.items():
        print(f"{key}: {len(value.mean)} dims, mean |x| {abs(value.mean).mean():.4f}, min std {value.std.min():.3g}")
    print(f"Wrote {path}")


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__.split("\n\n")[0]))
