"""The up-front data check a training run makes before its first step.

A missing or truncated file, or a video shorter than its episode, would otherwise fail only when a data-loader
worker first samples that frame, possibly hours into a run. ``check_files`` opens every parquet and video file of
the selected episodes once (footers and container headers only, no decoding), checks row counts and columns
against ``meta/`` and that each video lasts at least as long as its episode; every error names the file and the
episode.
"""

from __future__ import annotations

from collections.abc import Sequence
import pathlib

import av
import pyarrow as pa
import pyarrow.parquet as pq
import tqdm

from openpi.datasets import lerobot_meta as _lerobot_meta
from openpi.datasets import video as _video


def _video_end(path: pathlib.Path) -> float:
    """Seconds up to the end of the last frame of the video at ``path``."""
    if not path.exists():
        raise _video.VideoDecodeError(f"Video file not found: {path}")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if stream.duration is not None:
                start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
                return start + float(stream.duration * stream.time_base)
            if container.duration is not None:
                return container.duration / av.time_base
            raise _video.VideoDecodeError(f"Video {path} records no duration.")
    except (av.error.FFmpegError, IndexError) as e:
        raise _video.VideoDecodeError(f"Cannot open video {path}: {e}") from e


def _parquet_rows(path: pathlib.Path, columns: Sequence[str]) -> int:
    """Rows of the parquet file at ``path`` (from its footer), after checking it has ``columns``."""
    if not path.exists():
        raise _lerobot_meta.DatasetNotFoundError(f"Parquet file not found: {path}")
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise _lerobot_meta.DatasetFormatError(f"Cannot read {path} (truncated or not parquet?): {e}") from e
    missing = [c for c in columns if c not in parquet.schema_arrow.names]
    if missing:
        raise _lerobot_meta.DatasetFormatError(f"{path} has no column(s) {missing}; its columns are "
                                          f"{parquet.schema_arrow.names}.")
    return parquet.metadata.num_rows


def check_files(
    meta: _lerobot_meta.LeRobotMetadata,
    episodes: Sequence[int] | None = None,
    *,
    columns: Sequence[str] = (),
    video_keys: Sequence[str] | None = None,
    progress: bool = True,
) -> None:
    """Raises ``DatasetNotFoundError`` / ``DatasetFormatError`` / ``VideoDecodeError`` naming the file and episode
    of the first problem among ``episodes`` (default all): a missing or unreadable parquet or video file, a parquet
    without ``columns``, a v2.1 episode file whose row count is not the episode's length in meta/, or a video
    ``video_keys`` (default all) that ends before its episode does."""
    chosen = meta.episode_indices if episodes is None else [int(e) for e in episodes]
    if not chosen:
        raise ValueError(f"No episodes selected from {meta.root}: the episode list is empty.")
    keys = meta.video_keys if video_keys is None else list(video_keys)
    rows_of: dict[pathlib.Path, int] = {}
    end_of: dict[pathlib.Path, float] = {}
    bar = tqdm.tqdm(chosen, desc="Checking dataset files", unit="episode", disable=not progress or len(chosen) < 50)
    for episode_index in bar:
        info = meta.episode(episode_index)
        data_path = meta.root / info.data_file
        if data_path not in rows_of:
            rows_of[data_path] = _parquet_rows(data_path, columns)
        if meta.version.startswith("v2") and rows_of[data_path] != info.length:
            raise _lerobot_meta.DatasetFormatError(
                f"Episode {episode_index} has {rows_of[data_path]} rows in {data_path} but length {info.length} "
                f"in {meta.root / 'meta' / 'episodes.jsonl'}."
            )
        for key in keys:
            path, start = meta.video_path(episode_index, key)
            if path not in end_of:
                end_of[path] = _video_end(path)
            needed = start + info.length / meta.fps
            if end_of[path] + 0.5 / meta.fps < needed:
                last = int((end_of[path] - start) * meta.fps)
                raise _video.VideoDecodeError(
                    f"Video {path} ends at {end_of[path]:.3f}s but episode {episode_index} needs frames up to "
                    f"{needed:.3f}s ({info.length} frames at {meta.fps} fps): frames {max(last, 0)}.."
                    f"{info.length - 1} of the episode have no image."
                )
