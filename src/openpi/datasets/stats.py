"""Normalization statistics straight from parquet columns: no video, no per-sample Python.

Reads only the state and action columns, episode group by episode group, applies vectorized state/action
transforms to whole columns and streams them into `RunningStats`. With ``action_horizon`` H > 1 each action
is weighted by the number of length-H chunks (padded by repeating the last action) that contain it, which
reproduces exactly the statistics of iterating a data loader that yields action chunks.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import pathlib

import numpy as np
import tqdm

from openpi.datasets import columns as _columns
from openpi.datasets import lerobot as _lerobot
from openpi.datasets import lerobot_meta as _lerobot_meta
from openpi.shared import normalize as _normalize

ColumnTransform = Callable[[np.ndarray], np.ndarray]


def chunk_weights(length: int, horizon: int) -> np.ndarray:
    """How often each of an episode's actions appears among its ``length`` chunks of ``horizon`` actions."""
    t = np.arange(length)
    weights = np.minimum(t, horizon - 1) + 1.0
    weights[-1] = length * horizon - weights[:-1].sum()
    return weights


def _select(meta: _lerobot_meta.LeRobotMetadata, episodes: Sequence[int] | None, max_frames: int | None, seed: int):
    """(episodes, lengths to use): all in order, or a seeded random subset of about ``max_frames`` frames."""
    chosen = meta.episode_indices if episodes is None else [int(e) for e in episodes]
    lengths = [meta.episode(e).length for e in chosen]
    if max_frames is None or max_frames >= sum(lengths):
        return chosen, lengths
    order = np.random.default_rng(seed).permutation(len(chosen))
    picked, used, total = [], [], 0
    for k in order:
        take = min(lengths[k], max_frames - total)
        picked.append(chosen[k])
        used.append(take)
        total += take
        if total >= max_frames:
            break
    return picked, used


def _batches(episodes: list[int], lengths: list[int], frames: int):
    """Consecutive groups of episodes with about ``frames`` frames each (bounded memory per read)."""
    group, used = [], []
    for episode, length in zip(episodes, lengths):
        group.append(episode)
        used.append(length)
        if sum(used) >= frames:
            yield group, used
            group, used = [], []
    if group:
        yield group, used


def compute_norm_stats(
    source: _lerobot_meta.LeRobotMetadata | _lerobot.LeRobotDataset | pathlib.Path | str,
    *,
    state_key: str = "observation.state",
    action_key: str = "action",
    state_transform: ColumnTransform | None = None,
    action_transform: ColumnTransform | None = None,
    action_horizon: int = 1,
    max_frames: int | None = None,
    episodes: Sequence[int] | None = None,
    seed: int = 0,
    frames_per_read: int = 500_000,
    progress: bool = True,
) -> dict[str, _normalize.NormStats]:
    """``{"state": NormStats, "actions": NormStats}`` over the selected episodes.

    ``state_transform`` / ``action_transform`` map a whole [N, D] column (e.g. B1K's 256-dim proprio to the
    23-dim state). ``max_frames`` limits the work to a seeded random subset of episodes (the last one cut
    short). Columns are read ``frames_per_read`` frames at a time to bound memory. A `LeRobotDataset` source uses its episode selection unless ``episodes`` is given.
    """
    if isinstance(source, _lerobot.LeRobotDataset):
        episodes = source.episodes if episodes is None else episodes
        meta = source.meta
    elif isinstance(source, _lerobot_meta.LeRobotMetadata):
        meta = source
    else:
        meta = _lerobot_meta.LeRobotMetadata.load(source)
    if action_horizon < 1:
        raise ValueError(f"action_horizon must be >= 1, got {action_horizon}.")
    chosen, lengths = _select(meta, episodes, max_frames, seed)
    state_stats, action_stats = _normalize.RunningStats(), _normalize.RunningStats()
    with tqdm.tqdm(total=sum(lengths), desc="Norm stats", unit="frame", unit_scale=True, disable=not progress) as bar:
        for group, used in _batches(chosen, lengths, frames_per_read):
            data = _columns.read_columns(meta, [state_key, action_key], episodes=group)
            state, actions = data[state_key], data[action_key]
            if sum(used) < len(data):  # the last episode of a max_frames selection is cut short
                keep = np.concatenate([np.arange(a, a + n) for a, n in zip(data.starts[:-1], used)])
                state, actions = state[keep], actions[keep]
            if state_transform is not None:
                state = state_transform(state)
            if action_transform is not None:
                actions = action_transform(actions)
            weights = None
            if action_horizon > 1:
                weights = np.concatenate([chunk_weights(n, action_horizon) for n in used])
            state_stats.update(state)
            action_stats.update(actions, weights)
            bar.update(sum(used))
    return {"state": state_stats.get_statistics(), "actions": action_stats.get_statistics()}
