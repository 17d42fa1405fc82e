"""The data decisions of a training config, made in one place: where its norm stats live, which normalization
and robot state transform it uses, and which episodes it trains on.

Pure and cheap (no tokenizer, no dataset or file read): the data config's ``create()``, the norm-stats script,
the analysis tools, the policy loader and the demo all ask `resolve`, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import functools
import pathlib
from typing import Any
from typing import Literal

import numpy as np

from openpi.policies import b1k_policy
from openpi.shared import normalize as _normalize

# Robot -> the state order its proprio converts to (None: the state is used as stored).
STATE_ORDERS: dict[str, b1k_policy.StateOrder | None] = {
    "b1k": "action",
    "b1k_baseline_2025": "baseline_2025",
    "identity": None,
    "none": None,
}


def state_transform(robot: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """The raw-state -> model-state conversion of ``robot`` (None when the state is used as stored)."""
    if robot not in STATE_ORDERS:
        raise ValueError(f"Unknown robot {robot!r}; known: {sorted(STATE_ORDERS)}.")
    order = STATE_ORDERS[robot]
    return None if order is None else functools.partial(b1k_policy.proprio_to_state, state_order=order)


@dataclasses.dataclass(frozen=True)
class DataDecisions:
    asset_id: str
    stats_dir: pathlib.Path  # <assets_dir>/<asset_id>, user-expanded
    norm: Literal["zscore", "quantile"]
    robot: str
    episodes_path: pathlib.Path | None  # training-episode list, ``{assets_dir}`` expanded; None = every episode
    sample_weights_path: pathlib.Path | None

    @property
    def stats_file(self) -> pathlib.Path:
        return self.stats_dir / _normalize.NORM_STATS_FILE

    @property
    def use_quantiles(self) -> bool:
        return self.norm == "quantile"

    @property
    def state_transform(self) -> Callable[[np.ndarray], np.ndarray] | None:
        return state_transform(self.robot)


def _expand(template: str | None, assets_dir: pathlib.Path) -> pathlib.Path | None:
    return pathlib.Path(template.format(assets_dir=assets_dir)).expanduser() if template else None


def resolve(data: Any, model: Any, assets_dirs: pathlib.Path | str) -> DataDecisions:
    """The decisions of a ``LeRobotDataConfig`` ``data`` for model config ``model`` and the train config's
    ``assets_dirs``."""
    asset_id = data.assets.asset_id or data.repo_id
    assets_dir = pathlib.Path(data.assets.assets_dir or assets_dirs).expanduser()
    norm = ("quantile" if model.pi05 else "zscore") if data.norm == "auto" else data.norm
    return DataDecisions(
        asset_id=asset_id,
        stats_dir=assets_dir / asset_id,
        norm=norm,
        robot=data.robot,
        episodes_path=_expand(data.episodes_path, assets_dir),
        sample_weights_path=_expand(data.sample_weights_path, assets_dir),
    )


def resolve_train_config(config: Any) -> DataDecisions:
    """`resolve` for a ``TrainConfig``."""
    return resolve(config.data, config.model, config.assets_dirs)


NO_EPISODE_LIST = (
    "the config has no training-episode list (data.episodes_path), so it trains on every episode and the "
    "held-out episodes are training episodes"
)


def heldout_episodes(
    training: Sequence[int] | None, candidates: Sequence[int], tasks: Mapping[int, str], per_task: int
) -> tuple[list[int], str | None]:
    """Up to ``per_task`` episodes per task from ``candidates`` that are not ``training`` episodes (the last by
    index, which B1K-style splits hold out), and a notice when there is no training list (None: all episodes)."""
    excluded = set(training or ())
    by_task: dict[str, list[int]] = {}
    for ep in sorted(set(candidates) - excluded):
        by_task.setdefault(tasks[ep], []).append(ep)
    chosen = sorted(ep for eps in by_task.values() for ep in eps[-per_task:])
    return chosen, NO_EPISODE_LIST if training is None else None
