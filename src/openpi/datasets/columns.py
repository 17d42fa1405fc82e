"""Fast column reader: selected parquet columns of many episodes as numpy, never touching video.

For statistics, analyzers and filters that need whole columns (actions, proprio) of thousands of episodes:
only the requested columns are read, files are read by a small thread pool, and every row carries its
episode and frame index so results can be mapped back to episodes and windows.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence
import dataclasses
import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import tqdm

from openpi.datasets import lerobot_meta as _lerobot_meta


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


def _missing_column_error(path: str, name: str) -> _lerobot_meta.DatasetFormatError:
    names = pq.read_schema(path).names
    if name not in names:
        return _lerobot_meta.DatasetFormatError(f"{path} has no column(s) {[name]}; its columns are {names}.")
    return _lerobot_meta.DatasetFormatError(f"{path} has null values in column '{name}'.")


def read_columns(
    source: _lerobot_meta.LeRobotMetadata | pathlib.Path | str,
    columns: Sequence[str],
    *,
    episodes: Sequence[int] | None = None,
    check_finite: bool = True,
    progress: bool = False,
) -> ColumnData:
    """Reads ``columns`` for ``episodes`` (default all, in dataset order) of a dataset root or its metadata.

    Files are scanned by pyarrow's dataset reader (parallel, in file order) straight into preallocated
    arrays. Float columns are checked for NaN/inf (the error names episode, frame and file) unless
    ``check_finite`` is off; a missing file or column and a row count that disagrees with ``meta/`` are
    errors that name the file.
    """
    meta = source if isinstance(source, _lerobot_meta.LeRobotMetadata) else _lerobot_meta.LeRobotMetadata.load(source)
    chosen = meta.episode_indices if episodes is None else [int(e) for e in episodes]
    if not chosen:
        raise ValueError(f"No episodes selected from {meta.root}.")
    columns = list(dict.fromkeys(columns))
    lengths = np.array([meta.episode(e).length for e in chosen], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    files = list(dict.fromkeys(str(meta.root / meta.episode(e).data_file) for e in chosen))
    for path in files:
        if not pathlib.Path(path).exists():
            raise _lerobot_meta.DatasetNotFoundError(f"Parquet file not found: {path}")
    wanted = list(dict.fromkeys([*columns, "episode_index"]))
    dataset = pads.dataset(files, format="parquet")
    for name in wanted:
        if name not in dataset.schema.names:
            raise _missing_column_error(files[0], name)
    total = int(starts[-1])
    out: dict[str, np.ndarray] = {}
    position = 0
    # One file per episode (v2.1) needs no filter; v3.0 files also hold episodes that were not asked for.
    row_filter = None if meta.version.startswith("v2") else pads.field("episode_index").isin(chosen)
    scanner = dataset.scanner(columns=wanted, filter=row_filter, use_threads=True)
    bar = tqdm.tqdm(total=total, desc="Reading columns", unit="frame", unit_scale=True, disable=not progress)
    try:
        for tagged in scanner.scan_batches():
            batch, path = tagged.record_batch, tagged.fragment.path
            rows = batch.num_rows
            if position + rows > total:
                raise _lerobot_meta.DatasetFormatError(f"{path} holds more rows than meta/ lists for its episodes.")
            for name in wanted:
                column = batch.column(name)
                if column.null_count:  # a file without the column: the dataset reader fills it with nulls
                    raise _missing_column_error(path, name)
                values = _lerobot_meta.column_to_numpy(column)
                if name not in out:
                    out[name] = np.empty((total, *values.shape[1:]), values.dtype)
                out[name][position : position + rows] = values
            position += rows
            bar.update(rows)
    except pa.ArrowInvalid as e:
        raise _lerobot_meta.DatasetFormatError(f"Cannot read columns {columns} of {meta.root}: {e}") from e
    finally:
        bar.close()
    _check_rows(meta, chosen, lengths, out["episode_index"][:position])
    rank = np.searchsorted(np.sort(chosen), out["episode_index"])
    order_rank = np.argsort(np.argsort(chosen))[rank]  # position of each row's episode in `chosen`
    if np.any(np.diff(order_rank) < 0):  # rows not in the requested episode order: reorder (stable)
        order = np.argsort(order_rank, kind="stable")
        out = {name: values[order] for name, values in out.items()}
    frame_index = np.arange(total) - np.repeat(starts[:-1], lengths)
    episode_index = np.repeat(np.asarray(chosen, dtype=np.int64), lengths)
    if check_finite:
        for name in columns:
            _check_finite(meta, name, out[name], episode_index, frame_index)
    return ColumnData(
        columns={name: out[name] for name in columns},
        episode_index=episode_index,
        frame_index=frame_index,
        episodes=np.asarray(chosen, dtype=np.int64),
        starts=starts,
    )


def _check_rows(meta: _lerobot_meta.LeRobotMetadata, chosen: list[int], lengths: np.ndarray, episodes: np.ndarray) -> None:
    """Every selected episode has exactly the number of rows ``meta/`` gives it."""
    found = dict(zip(*np.unique(episodes, return_counts=True)))
    for episode, length in zip(chosen, lengths):
        rows = int(found.get(episode, 0))
        if rows != length:
            path = meta.data_path(episode)
            raise _lerobot_meta.DatasetFormatError(
                f"Episode {episode} has {rows} rows in {path} but length {int(length)} in meta/."
            )


def _check_finite(
    meta: _lerobot_meta.LeRobotMetadata, name: str, values: np.ndarray, episode_index: np.ndarray, frame_index: np.ndarray
) -> None:
    """Raises (via `_lerobot_meta.check_finite`, naming episode, frame and file) at the first row with NaN/inf."""
    if values.dtype.kind != "f" or np.isfinite(values).all():
        return
    bad_rows = np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1))
    row = int(bad_rows[0])
    episode = int(episode_index[row])
    _lerobot_meta.check_finite(name, values[row : row + 1], episode, meta.data_path(episode), frame_index[row : row + 1])
