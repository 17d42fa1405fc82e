"""Fast column reader: selected parquet columns of many episodes as numpy, never touching video.

For statistics, analyzers and filters that need whole columns (actions, proprio) of thousands of episodes:
only the requested columns are read, files are read by a small thread pool, and every row carries its
episode and frame index so results can be mapped back to episodes and windows.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence
import concurrent.futures
import dataclasses
import pathlib

import numpy as np
import tqdm

from openpi.datasets import lerobot as _lerobot


@dataclasses.dataclass(frozen=True)
class ColumnData:
    """Rows of the selected episodes, episode after episode, frames in order.

    ``columns[name]`` is [N] or [N, D]; ``episode_index[i]`` and ``frame_index[i]`` locate row i;
    ``episodes``/``starts`` give episode k's rows as ``starts[k]:starts[k + 1]``.
    """

    columns: dict[str, np.ndarray]
    episode_index: np.ndarray
    frame_index: np.ndarray
    episodes: np.ndarray
    starts: np.ndarray

    def __len__(self) -> int:
        return len(self.episode_index)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def episode_slice(self, episode_index: int) -> slice:
        k = np.flatnonzero(self.episodes == episode_index)
        if len(k) == 0:
            raise KeyError(f"Episode {episode_index} was not read.")
        return slice(int(self.starts[k[0]]), int(self.starts[k[0] + 1]))

    def iter_episodes(self) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """(episode_index, {column: rows of that episode}) in order."""
        for k, episode in enumerate(self.episodes):
            rows = slice(int(self.starts[k]), int(self.starts[k + 1]))
            yield int(episode), {name: values[rows] for name, values in self.columns.items()}


def _read_file(
    meta: _lerobot.LeRobotMetadata, path: pathlib.Path, episodes: list[int], columns: list[str], check: bool
) -> list[dict[str, np.ndarray]]:
    """One parquet file → per-episode column dicts (v2.1: one episode; v3.0: those of ``episodes`` in it)."""
    multi = not meta.version.startswith("v2")
    table = _lerobot.read_parquet(path, [*columns, "episode_index"] if multi else columns)
    out = []
    for episode in episodes:
        rows = _lerobot.episode_rows(table, episode, path) if multi else table
        length = meta.episode(episode).length
        if rows.num_rows != length:
            raise _lerobot.DatasetFormatError(
                f"Episode {episode} has {rows.num_rows} rows in {path} but length {length} in meta/."
            )
        data = {name: _lerobot.column_to_numpy(rows.column(name)) for name in columns}
        if check:
            frames = np.arange(rows.num_rows)
            for name, values in data.items():
                _lerobot.check_finite(name, values, episode, path, frames)
        out.append(data)
    return out


def read_columns(
    source: _lerobot.LeRobotMetadata | pathlib.Path | str,
    columns: Sequence[str],
    *,
    episodes: Sequence[int] | None = None,
    check_finite: bool = True,
    num_threads: int = 4,
    progress: bool = False,
) -> ColumnData:
    """Reads ``columns`` for ``episodes`` (default all, in dataset order) of a dataset root or its metadata.

    Float columns are checked for NaN/inf (the error names episode, frame and file) unless ``check_finite``
    is off. Errors for a missing file or column name the file.
    """
    meta = source if isinstance(source, _lerobot.LeRobotMetadata) else _lerobot.LeRobotMetadata.load(source)
    chosen = meta.episode_indices if episodes is None else [int(e) for e in episodes]
    columns = list(dict.fromkeys(columns))
    by_file: dict[str, list[int]] = {}
    for episode in chosen:
        by_file.setdefault(meta.episode(episode).data_file, []).append(episode)

    results: dict[int, dict[str, np.ndarray]] = {}
    with concurrent.futures.ThreadPoolExecutor(max(1, num_threads)) as pool:
        futures = {
            pool.submit(_read_file, meta, meta.root / rel, eps, columns, check_finite): eps
            for rel, eps in by_file.items()
        }
        bar = tqdm.tqdm(total=len(chosen), desc="Reading columns", unit="episode", disable=not progress)
        for future in concurrent.futures.as_completed(futures):
            results.update(zip(futures[future], future.result()))
            bar.update(len(futures[future]))
        bar.close()

    lengths = np.array([meta.episode(e).length for e in chosen], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    data = {}
    for name in columns:
        parts = [results[e][name] for e in chosen]
        data[name] = np.concatenate(parts) if parts else np.empty((0,))
    return ColumnData(
        columns=data,
        episode_index=np.repeat(np.asarray(chosen, dtype=np.int64), lengths),
        frame_index=np.arange(starts[-1]) - np.repeat(starts[:-1], lengths),
        episodes=np.asarray(chosen, dtype=np.int64),
        starts=starts,
    )
