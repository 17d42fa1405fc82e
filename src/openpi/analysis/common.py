"""What every analysis tool shares: the action table, the robot's body roles, group selection and numpy ops.

The tools read only the action column (plus ids) of a LeRobot dataset and keep it as one concatenated
``[N, D]`` array with episode boundaries, so per-step changes, chunks and windows are vectorized over all
frames without crossing episodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import warnings

import numpy as np

from openpi import transforms as _transforms
from openpi.policies import b1k_policy
from openpi.shared import action_groups as _groups
from openpi.shared import loss_weighting as _lw
from openpi.shared import normalize as _normalize


@dataclasses.dataclass(frozen=True)
class ActionTable:
    """Raw actions of several episodes, concatenated in episode order."""

    actions: np.ndarray  # float[N, D], raw units
    episode_index: np.ndarray  # int64[E]
    lengths: np.ndarray  # int64[E]
    tasks: tuple[str, ...]  # task name per episode
    fps: float = 30.0

    def __post_init__(self):
        if self.actions.ndim != 2:
            raise ValueError(f"Actions must be [frames, dims], got shape {self.actions.shape}.")
        if int(np.sum(self.lengths)) != len(self.actions):
            raise ValueError(
                f"Episode lengths sum to {int(np.sum(self.lengths))} but there are {len(self.actions)} frames."
            )
        if not (len(self.episode_index) == len(self.lengths) == len(self.tasks)):
            raise ValueError("episode_index, lengths and tasks must have one entry per episode.")

    @classmethod
    def from_episodes(cls, episodes: dict[int, np.ndarray], tasks: dict[int, str] | None = None, fps: float = 30.0):
        """Builds a table from ``{episode_index: actions[T, D]}`` (tasks default to ``"task"``)."""
        ids = sorted(episodes)
        return cls(
            actions=np.concatenate([np.asarray(episodes[i]) for i in ids]),
            episode_index=np.asarray(ids, dtype=np.int64),
            lengths=np.asarray([len(episodes[i]) for i in ids], dtype=np.int64),
            tasks=tuple((tasks or {}).get(i, "task") for i in ids),
            fps=fps,
        )

    @property
    def num_dims(self) -> int:
        return self.actions.shape[1]

    @property
    def offsets(self) -> np.ndarray:
        """int64[E + 1]: episode e spans ``offsets[e]:offsets[e + 1]``."""
        return np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)

    @property
    def first_frame(self) -> np.ndarray:
        """bool[N]: True at each episode's first frame (where a per-step change is undefined)."""
        out = np.zeros(len(self.actions), dtype=bool)
        out[self.offsets[:-1][self.lengths > 0]] = True
        return out

    def step_change(self) -> np.ndarray:
        """``a[t] - a[t-1]`` within each episode, 0 at every episode's first frame; float64[N, D]."""
        change = np.zeros(self.actions.shape, dtype=np.float64)
        change[1:] = np.diff(self.actions.astype(np.float64), axis=0)
        change[self.first_frame] = 0.0
        return change

    def episode(self, position: int) -> np.ndarray:
        """Actions of the episode at ``position`` (not episode index) in the table."""
        start, end = self.offsets[position], self.offsets[position + 1]
        return self.actions[start:end]

    def select(self, positions: Sequence[int] | np.ndarray) -> ActionTable:
        """A table with only the episodes at ``positions``."""
        positions = np.asarray(positions, dtype=np.int64)
        offsets = self.offsets
        rows = [np.arange(offsets[p], offsets[p + 1]) for p in positions]
        return ActionTable(
            actions=self.actions[np.concatenate(rows)] if rows else self.actions[:0],
            episode_index=self.episode_index[positions],
            lengths=self.lengths[positions],
            tasks=tuple(self.tasks[p] for p in positions),
            fps=self.fps,
        )


@dataclasses.dataclass(frozen=True)
class BodyRoles:
    """Which raw action dims drive the base (velocity commands), the arms (joint positions) and the grippers.

    Roles come from the robot, not from the user's loss groups, so metrics such as arm activity mean the
    same thing whatever grouping a config uses. Defaults: R1Pro (``openpi.policies.b1k_policy``).
    """

    base: tuple[int, ...] = tuple(range(*b1k_policy.BASE))
    arms: tuple[int, ...] = tuple(range(*b1k_policy.LEFT_ARM)) + tuple(range(*b1k_policy.RIGHT_ARM))
    grippers: tuple[int, ...] = tuple(b1k_policy.LEFT_GRIPPER + b1k_policy.RIGHT_GRIPPER)


    @classmethod
    def from_layout(cls, groups: _groups.ActionGroups, roles: Mapping[str, _groups.BodyRole]) -> BodyRoles:
        """The dims of the groups with each role (``roles``: group name → role, see ``action_groups.body_roles``)."""
        def dims(role: str) -> tuple[int, ...]:
            return tuple(sorted(d for n, ds in zip(groups.names, groups.dims, strict=True) if roles.get(n) == role for d in ds))

        return cls(base=dims("base"), arms=dims("arm"), grippers=dims("gripper"))


R1PRO_ROLES = BodyRoles()


def check_layout_fits(groups: _groups.ActionGroups, data_dims: int, where: str) -> None:
    """Refuses a group layout that does not describe the data's ``data_dims`` action dims: a named group reaching
    past them, or data dims left to ``padding`` (``where`` names the layout's origin for the fix)."""
    named = {n: ds for n, ds in zip(groups.names, groups.dims, strict=True) if n != "padding"}
    beyond = {n: [d for d in ds if d >= data_dims] for n, ds in named.items()}
    beyond = {n: ds for n, ds in beyond.items() if ds}
    unnamed = sorted(set(range(data_dims)) - {d for ds in named.values() for d in ds})
    if beyond or unnamed:
        problem = f"groups {beyond} reach past them" if beyond else f"dims {unnamed} belong to no named group"
        raise ValueError(
            f"The action layout ({where}: {groups.to_json()}) does not fit the dataset's {data_dims}-dim action: "
            f"{problem}. Describe the robot's actions with --model.action-groups NAME DIMS ... (e.g. xyz 0:3 "
            "gripper 3) on a config such as lerobot, or name a config made for this robot with --config-name."
        )


def data_groups(groups: _groups.ActionGroups, num_dims: int) -> dict[str, tuple[int, ...]]:
    """The groups restricted to the dims present in the raw data; groups wholly in padding are dropped."""
    out = {}
    for name, dims in zip(groups.names, groups.dims, strict=True):
        present = tuple(d for d in dims if d < num_dims)
        if present:
            out[name] = present
    return out


def select_groups(available: dict[str, tuple[int, ...]], names: Sequence[str] | None) -> dict[str, tuple[int, ...]]:
    """The requested groups (all when ``names`` is empty); an unknown name raises, listing the known ones."""
    if not names:
        return dict(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"Unknown action group(s) {unknown}; groups with data dims are: {list(available)}.")
    return {n: available[n] for n in names}


def constant_dims(stats: _normalize.NormStats, *, use_quantiles: bool) -> np.ndarray:
    """bool[D]: the dims the normalization guard treats as constant (scale below ``MIN_NORM_SCALE``)."""
    scale = np.asarray(stats.q99) - np.asarray(stats.q01) if use_quantiles else np.asarray(stats.std)
    return scale < _transforms.MIN_NORM_SCALE


def normalize(x: np.ndarray, stats: _normalize.NormStats, *, use_quantiles: bool) -> np.ndarray:
    """Training's guarded z-score or quantile normalization (``transforms.Normalize``) of the last axis."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant dims are reported by the tools themselves
        norm = _transforms.Normalize({"actions": stats}, use_quantiles=use_quantiles)
    return norm({"actions": x})["actions"].astype(np.float64)


def scale_denominator(stats: _normalize.NormStats, *, use_quantiles: bool) -> np.ndarray:
    """Per dim, what normalization divides a raw difference by: ``std + eps`` or ``(q99 − q01 + eps) / 2``."""
    if use_quantiles:
        return (np.asarray(stats.q99) - np.asarray(stats.q01) + 1e-6) / 2.0
    return np.asarray(stats.std) + 1e-6


def data_norm_stats(table: ActionTable) -> _normalize.NormStats:
    """Per-frame action statistics (mean, std, q01, q99) of the table, via ``RunningStats``."""
    running = _normalize.RunningStats()
    for start in range(0, len(table.actions), 1 << 18):
        running.update(table.actions[start : start + (1 << 18)])
    return running.get_statistics()


class NumpyOps:
    """``loss_weighting.ArrayOps`` over numpy, so the analyzer sees exactly the weights training applies."""

    def constant(self, values, like):
        return np.asarray(values, dtype=like.dtype)

    def take_last(self, x, indices):
        return x[..., np.asarray(indices)]

    def step_change(self, actions):
        return np.concatenate([np.zeros_like(actions[:, :1]), np.diff(actions, axis=1)], axis=1)

    def mean(self, x, axes):
        return np.mean(x, axis=axes, keepdims=True)

    def sum(self, x, axes):
        return np.sum(x, axis=axes)

    def matmul(self, x, y):
        return np.matmul(x, y)

    def sqrt(self, x):
        return np.sqrt(x)

    def clip(self, x, lo, hi):
        return np.clip(x, lo, hi)

    def minimum(self, x, value):
        return np.minimum(x, value)

    def maximum(self, x, value):
        return np.maximum(x, value)

    def stop_gradient(self, x):
        return x

    def ones_like(self, x):
        return np.ones_like(x)


NUMPY_OPS = NumpyOps()


def full_weights(weighting: _lw.LossWeighting, chunks: np.ndarray) -> np.ndarray:
    """``[B, H, D]`` loss weights a strategy gives the normalized, padded target ``chunks``."""
    return _lw.full_loss_weights(weighting, chunks, ops=NUMPY_OPS)


def chunk_starts(table: ActionTable, horizon: int, stride: int = 1) -> np.ndarray:
    """Row indices where a full ``horizon``-long chunk starts inside its episode, every ``stride`` frames."""
    if horizon < 1 or stride < 1:
        raise ValueError(f"horizon and stride must be >= 1, got horizon={horizon}, stride={stride}.")
    offsets = table.offsets
    parts = [np.arange(offsets[e], offsets[e + 1] - horizon + 1, stride) for e in range(len(table.lengths))]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def gather_chunks(values: np.ndarray, starts: np.ndarray, horizon: int) -> np.ndarray:
    """``[B, H, D]`` chunks ``values[s : s + horizon]`` for every start ``s``."""
    return values[starts[:, None] + np.arange(horizon)[None, :]]
