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
from openpi.policies import lerobot_policy
from openpi.shared import normalize as _normalize

# Robot -> the state order its proprio converts to (None: the state is used as stored). B1K's conversion reads the
# edition from the proprio's width (256: 2025, 61: 2026); "b1k_2026" names the 2026 edition's configs.
STATE_ORDERS: dict[str, b1k_policy.StateOrder | None] = {
    "b1k": "action",
    "b1k_2026": "action",
    "b1k_baseline_2025": "baseline_2025",
    "identity": None,
    "none": None,
}


def state_transform(robot: str, state_dims: Sequence[int] | None = None) -> Callable[[np.ndarray], np.ndarray] | None:
    """The raw-state -> model-state conversion of ``robot``, then the ``state_dims`` the model sees (None when the
    state is used as stored); works on one frame or a whole column."""
    if robot not in STATE_ORDERS:
        raise ValueError(f"Unknown robot {robot!r}; known: {sorted(STATE_ORDERS)}.")
    order = STATE_ORDERS[robot]
    convert = None if order is None else functools.partial(b1k_policy.proprio_to_state, state_order=order)
    if state_dims is None:
        return convert
    return lerobot_policy.LeRobotInputs(state_transform=convert, state_dims=tuple(state_dims)).convert_state


def robot_for_state(state_dim: int) -> str:
    """The robot of a dataset named without a config, from its state width: B1K's conversion for the 2025 edition's
    256-dim proprio ("b1k") and the 2026 edition's 61-dim one ("b1k_2026"), else none."""
    return {b1k_policy.PROPRIO_DIM: "b1k", b1k_policy.PROPRIO_2026_DIM: "b1k_2026"}.get(state_dim, "identity")


@dataclasses.dataclass(frozen=True)
class DataDecisions:
    asset_id: str
    stats_dir: pathlib.Path  # <assets_dir>/<asset_id>, user-expanded
    norm: Literal["zscore", "quantile"]
    per_timestep_norm: bool  # action stats per chunk index ([H, D]) instead of per dim ([D])
    delta_action_mask: tuple[bool, ...] | None  # dims trained relative to the state (their stats are of deltas)
    robot: str
    state_dims: tuple[int, ...] | None  # the dims of the converted state the model sees; None = all
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
        return state_transform(self.robot, self.state_dims)


def _expand(template: str | None, assets_dir: pathlib.Path) -> pathlib.Path | None:
    return pathlib.Path(template.format(assets_dir=assets_dir)).expanduser() if template else None


def resolve(data: Any, model: Any, assets_dirs: pathlib.Path | str) -> DataDecisions:
    """The decisions of a ``LeRobotDataConfig`` ``data`` for model config ``model`` and the train config's
    ``assets_dirs``. Norm stats live under the asset id, else the repo id, else the dataset root's name."""
    asset_id = data.assets.asset_id or data.repo_id or (pathlib.Path(data.root).expanduser().name if data.root else "")
    if not asset_id:
        raise ValueError("The data config names no dataset: give --data.repo-id or --data.root.")
    assets_dir = pathlib.Path(data.assets.assets_dir or assets_dirs).expanduser()
    norm = ("quantile" if model.pi05 else "zscore") if data.norm == "auto" else data.norm
    return DataDecisions(
        asset_id=asset_id,
        stats_dir=assets_dir / asset_id,
        norm=norm,
        per_timestep_norm=data.per_timestep_norm,
        delta_action_mask=data.delta_action_mask,
        robot=data.robot,
        state_dims=data.state_dims,
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
