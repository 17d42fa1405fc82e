"""Norm stats, computed one way: a `Recipe` says what a norm_stats.json is computed from (dataset, keys, robot
state transform and dims, action horizon, delta mask, per-timestep, episodes); `compute` turns it into stats
from the parquet columns (``openpi.datasets.stats``, no video decoded), `write` saves them, and `write_all` saves
configs' stats where training reads them. ``scripts/compute_norm_stats.py``, the demos and the benchmarks all come through here.

The config's data decisions (stats directory, robot, state dims, delta mask, per-timestep) are read from
``data_resolver`` in `_decisions` only.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
import dataclasses
import pathlib

from openpi.datasets import lerobot_meta as _lerobot_meta
from openpi.datasets import stats as _stats
from openpi.shared import normalize as _normalize
from openpi.training import config as _config
from openpi.training import data_resolver


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What one norm_stats.json is computed from; configs with equal recipes share one computation."""

    root: pathlib.Path
    state_key: str = "observation.state"
    action_key: str = "action"
    robot: str = "identity"
    """The robot's state conversion (``data_resolver.STATE_ORDERS``)."""
    state_dims: tuple[int, ...] | None = None
    """Dims of the converted state the stats cover; None = all."""
    action_horizon: int = 1
    """Actions weighted as the chunks of this length a data loader yields (1: each action once)."""
    delta_action_mask: tuple[bool, ...] | None = None
    per_timestep: bool = False
    episodes: tuple[int, ...] | None = None
    """None: every episode."""
    max_frames: int | None = None
    """A seeded random subset of episodes with about this many frames."""


def _decisions(config: _config.TrainConfig) -> data_resolver.DataDecisions:
    """The config's data decisions: the one place this package asks the resolver. Not ``config.data_config()``:
    that reads and validates the stats file already there, which this helper must be able to replace (a stale
    or wrong-shaped file is what its error tells the user to recompute)."""
    return data_resolver.resolve_train_config(config)


def stats_dir(config: _config.TrainConfig) -> pathlib.Path:
    """Where training with ``config`` reads its norm_stats.json."""
    return _decisions(config).stats_dir


def for_config(
    config: _config.TrainConfig,
    *,
    root: str | pathlib.Path | None = None,
    action_horizon: int | None = None,
    chunked: bool = True,
    episodes: Sequence[int] | None = None,
    max_frames: int | None = None,
) -> Recipe:
    """The recipe of ``config``'s stats: its dataset (or ``root``), keys, robot, state dims, delta mask and
    per-timestep choice. Actions are weighted as chunks of ``action_horizon`` (default the model's, openpi's
    choice); ``chunked=False`` counts each action once, except for stats that describe chunks (delta or
    per-timestep), which always take the model's horizon."""
    decisions, data = _decisions(config), config.data
    chunk_stats = decisions.per_timestep_norm or any(decisions.delta_action_mask or ())
    horizon = action_horizon or (config.model.action_horizon if chunked or chunk_stats else 1)
    return Recipe(
        root=_lerobot_meta.resolve_root(data.repo_id or None, root or data.root),
        state_key=data.state_key,
        action_key=data.action_key,
        robot=decisions.robot,
        state_dims=decisions.state_dims,
        action_horizon=horizon,
        delta_action_mask=decisions.delta_action_mask,
        per_timestep=decisions.per_timestep_norm,
        episodes=None if episodes is None else tuple(int(e) for e in episodes),
        max_frames=max_frames,
    )


def for_dataset(
    root: pathlib.Path,
    *,
    robot: str = "auto",
    state_dims: Sequence[int] | None = None,
    action_horizon: int = 1,
    per_timestep: bool = False,
    max_frames: int | None = None,
) -> Recipe:
    """The recipe of a dataset named without a config (the standard LeRobot keys); ``robot="auto"``: B1K's
    conversion for B1K's 256-dim proprio, else the state as stored."""
    state_key = Recipe.state_key
    if robot == "auto":
        shape = _lerobot_meta.LeRobotMetadata.load(root).features.get(state_key, {}).get("shape") or [0]
        robot = data_resolver.robot_for_state(shape[-1])
    return Recipe(
        root=root,
        robot=robot,
        state_dims=None if state_dims is None else tuple(state_dims),
        action_horizon=action_horizon,
        per_timestep=per_timestep,
        max_frames=max_frames,
    )


def compute(recipe: Recipe, *, progress: bool = True) -> dict[str, _normalize.NormStats]:
    """``{"state": ..., "actions": ...}`` of ``recipe`` from the dataset's parquet columns."""
    return _stats.compute_norm_stats(
        recipe.root,
        state_key=recipe.state_key,
        action_key=recipe.action_key,
        state_transform=data_resolver.state_transform(recipe.robot, recipe.state_dims),
        action_horizon=recipe.action_horizon,
        max_frames=recipe.max_frames,
        episodes=recipe.episodes,
        delta_action_mask=recipe.delta_action_mask,
        per_timestep=recipe.per_timestep,
        progress=progress,
    )


def write(recipe: Recipe, directory: str | pathlib.Path, *, progress: bool = True) -> pathlib.Path:
    """Computes ``recipe``'s stats and writes them to ``directory``; returns the norm_stats.json written."""
    return _normalize.save(directory, compute(recipe, progress=progress))


def write_all(
    configs: Iterable[_config.TrainConfig], *, skip_existing: bool = False, progress: bool = True, **recipe_options
) -> dict[str, pathlib.Path]:
    """Writes each config's stats (``for_config(config, **recipe_options)``) where training reads them, computing
    each distinct recipe once; ``skip_existing`` leaves a config whose stats file exists alone (a comparison that
    continues). Returns config name -> norm_stats.json."""
    done: dict[Recipe, dict[str, _normalize.NormStats]] = {}
    written = {}
    for config in configs:
        directory = stats_dir(config)
        if skip_existing and (directory / _normalize.NORM_STATS_FILE).exists():
            written[config.name] = directory / _normalize.NORM_STATS_FILE
            continue
        recipe = for_config(config, **recipe_options)
        if recipe not in done:
            done[recipe] = compute(recipe, progress=progress)
        written[config.name] = _normalize.save(directory, done[recipe])
    return written
