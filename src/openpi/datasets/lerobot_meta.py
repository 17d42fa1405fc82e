"""LeRobot dataset metadata and file access (v2.1 and v3.0): the bottom layer both readers build on.

`LeRobotMetadata` reads ``meta/info.json`` (fps, features, path templates), the tasks and the episodes (length,
tasks, and the data/video files each lives in, from the templates); `resolve_root` finds a dataset root; the
parquet helpers read columns with errors that name the file, column, episode and frame. `lerobot.LeRobotDataset`
(frames) and `columns.read_columns` (whole columns) use these.
"""

from __future__ import annotations

from collections.abc import Sequence
import contextlib
import dataclasses
import json
import os
import pathlib
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from openpi.policies import r1pro


class DatasetNotFoundError(FileNotFoundError):
    """No LeRobot dataset (or no ``meta/info.json``) at the expected place."""


class DatasetFormatError(ValueError):
    """A dataset file exists but does not hold what the metadata promises (columns, lengths, finite values)."""


def lerobot_home() -> pathlib.Path:
    """``$HF_LEROBOT_HOME``, default ``~/.cache/huggingface/lerobot``."""
    return pathlib.Path(os.environ.get("HF_LEROBOT_HOME", "~/.cache/huggingface/lerobot")).expanduser()


# Datasets this project writes itself (no hub copy exists): repo id → the command that writes one at {path}.
LOCAL_WRITERS = {
    "openpi/mini_b1k": "python -m openpi.datasets.mini_b1k --root {path}",
    "openpi/mini_b1k_2026": "python -m openpi.datasets.mini_b1k --root {path} --version v3.0 --edition 2026",
}


def download_command(repo_id: str, path: pathlib.Path) -> str:
    return f"huggingface-cli download --repo-type dataset {repo_id} --local-dir {path}"


def _missing_hint(repo_id: str | None, path: pathlib.Path) -> str:
    if repo_id in LOCAL_WRITERS:
        return f" Write it with: {LOCAL_WRITERS[repo_id].format(path=path)}"
    return f" Download it with: {download_command(repo_id, path)}" if repo_id else ""


def resolve_root(repo_id: str | None = None, root: pathlib.Path | str | None = None) -> pathlib.Path:
    """The dataset root: ``root`` if given, else ``$HF_LEROBOT_HOME/<repo_id>``; never downloads (the error says how)."""
    if root is None and repo_id is None:
        raise ValueError("Give a dataset root path or a repo_id.")
    path = pathlib.Path(root).expanduser() if root is not None else lerobot_home() / str(repo_id)
    info = path / "meta" / "info.json"
    if info.exists():
        return path
    hint = _missing_hint(repo_id, path)
    if path.exists():
        raise DatasetNotFoundError(f"{info} is missing: {path} is not a LeRobot dataset root.{hint}")
    raise DatasetNotFoundError(f"No LeRobot dataset at {path} (looked for {info}).{hint}")


@dataclasses.dataclass(frozen=True)
class EpisodeInfo:
    """Where one episode lives. ``videos`` maps a video key to (file relative to root, start time in it)."""

    episode_index: int
    length: int
    tasks: tuple[str, ...]
    data_file: str
    videos: dict[str, tuple[str, float]]


def _read_jsonl(path: pathlib.Path, required: Sequence[str] = ()) -> list[dict]:
    """The rows of a ``meta/*.jsonl`` file; a bad line or a row without a ``required`` key names file and line."""
    if not path.exists():
        raise DatasetNotFoundError(f"Metadata file missing: {path}")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetFormatError(f"{path} line {number} is not JSON: {e}") from None
        missing = [k for k in required if k not in row]
        if missing:
            raise DatasetFormatError(f"{path} line {number} has no {missing} (keys: {sorted(row)}).")
        rows.append(row)
    return rows


# Placeholders each layout's path templates may use.
_TEMPLATE_FIELDS = {
    "v2": {"data_path": ("episode_chunk", "episode_index"), "video_path": ("episode_chunk", "episode_index", "video_key")},
    "v3": {"data_path": ("chunk_index", "file_index"), "video_path": ("chunk_index", "file_index", "video_key")},
}


def _check_shape(info_path: pathlib.Path, name: str, shape: Any) -> None:
    """A feature's ``shape``, when given, is a JSON list of non-negative ints (``"[23]"``, a string, is a common
    hand-editing slip that would otherwise fail far from the file)."""
    if shape is None:
        return
    if isinstance(shape, list) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        return
    example = "[23]"
    if isinstance(shape, str):  # a list written inside a string: show that list unquoted
        with contextlib.suppress(json.JSONDecodeError):
            parsed = json.loads(shape)
            example = json.dumps(parsed) if isinstance(parsed, list) else example
    raise DatasetFormatError(
        f"{info_path}: feature '{name}' has shape {shape!r}; a shape must be a JSON list of non-negative integers, "
        f'e.g. "shape": {example} (no quotes around the list).'
    )


def _check_info(info_path: pathlib.Path, info: Any) -> None:
    """Validates the whole ``info.json`` schema once, so a bad file fails at load naming the field, never later
    as a bare ``KeyError``; path templates must stay inside the dataset root."""
    if not isinstance(info, dict):
        raise DatasetFormatError(f"{info_path} must hold a JSON object, got {type(info).__name__}.")
    version = str(info.get("codebase_version", ""))
    if not (version.startswith("v2") or version.startswith("v3")):
        raise DatasetFormatError(f"{info_path}: unsupported codebase_version {version!r} (need v2.1 or v3.0).")
    fps = info.get("fps")
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or fps <= 0:
        raise DatasetFormatError(f"{info_path}: 'fps' must be a positive number, got {fps!r}.")
    features = info.get("features")
    if not isinstance(features, dict) or not features:
        raise DatasetFormatError(f"{info_path}: 'features' must be a non-empty object of feature name → spec.")
    for name, feature in features.items():
        if not isinstance(feature, dict) or "dtype" not in feature:
            raise DatasetFormatError(f"{info_path}: feature '{name}' has no 'dtype'.")
        _check_shape(info_path, name, feature.get("shape"))
    has_video = any(f["dtype"] == "video" for f in features.values())
    for key, placeholders in _TEMPLATE_FIELDS[version[:2]].items():
        if key == "video_path" and not has_video:
            continue
        template = info.get(key)
        if not isinstance(template, str) or not template:
            why = " (the dataset has video features)" if key == "video_path" else ""
            raise DatasetFormatError(f"{info_path} has no '{key}' path template{why}.")
        try:
            template.format(**dict.fromkeys(placeholders, 0))
        except (KeyError, IndexError, ValueError) as e:
            raise DatasetFormatError(
                f"{info_path}: '{key}' = {template!r} uses an unknown placeholder {e}; allowed: {list(placeholders)}."
            ) from None
        parts = pathlib.PurePosixPath(template.replace("\\", "/")).parts
        if template.startswith(("/", "\\", "~")) or ".." in parts or (parts and ":" in parts[0]):
            raise DatasetFormatError(
                f"{info_path}: '{key}' = {template!r} points outside the dataset root; path templates must be "
                "relative paths inside it."
            )
    bad_keys = [k for k, f in features.items() if f["dtype"] == "video" and ("/" in k or "\\" in k or ".." in k)]
    if bad_keys:
        raise DatasetFormatError(f"{info_path}: video feature names {bad_keys} would leave the videos directory.")


def episodes_file(meta: LeRobotMetadata) -> pathlib.Path:
    """The ``meta/`` file (v2.1) or directory (v3.0) that gives the episodes' lengths."""
    return meta.root / "meta" / ("episodes.jsonl" if meta.version.startswith("v2") else "episodes")


@dataclasses.dataclass(frozen=True)
class LeRobotMetadata:
    """Everything in ``meta/``: info.json, tasks, episodes (in dataset order) and their file locations."""

    root: pathlib.Path
    info: dict
    tasks: dict[int, str]
    episodes: dict[int, EpisodeInfo]

    @property
    def version(self) -> str:
        return str(self.info.get("codebase_version", ""))

    @property
    def fps(self) -> int:
        return int(self.info["fps"])

    @property
    def features(self) -> dict[str, dict]:
        return self.info["features"]

    @property
    def video_keys(self) -> list[str]:
        return [k for k, f in self.features.items() if f.get("dtype") == "video"]

    @property
    def episode_indices(self) -> list[int]:
        return list(self.episodes)

    @property
    def total_frames(self) -> int:
        return sum(e.length for e in self.episodes.values())

    def task_index(self, task: str) -> int:
        for index, text in self.tasks.items():
            if text == task:
                return index
        raise KeyError(f"Task {task!r} is not in {self.root / 'meta'}'s tasks.")

    def data_path(self, episode_index: int) -> pathlib.Path:
        return self.root / self.episode(episode_index).data_file

    def video_path(self, episode_index: int, key: str) -> tuple[pathlib.Path, float]:
        """The mp4 holding ``key`` for the episode and the episode's start time inside it."""
        videos = self.episode(episode_index).videos
        if key not in videos:
            raise KeyError(f"'{key}' is not a video feature of {self.root}; video keys: {self.video_keys}.")
        rel, start = videos[key]
        return self.root / rel, start

    def episode(self, episode_index: int) -> EpisodeInfo:
        if episode_index not in self.episodes:
            raise KeyError(f"Episode {episode_index} is not in {self.root} ({len(self.episodes)} episodes).")
        return self.episodes[episode_index]

    @classmethod
    def load(cls, root: pathlib.Path | str) -> LeRobotMetadata:
        root = pathlib.Path(root)
        info_path = root / "meta" / "info.json"
        if not info_path.exists():
            raise DatasetNotFoundError(f"{info_path} is missing: {root} is not a LeRobot dataset root.")
        try:
            info = json.loads(info_path.read_text())
        except json.JSONDecodeError as e:
            raise DatasetFormatError(f"{info_path} is not valid JSON: {e}") from None
        _check_info(info_path, info)
        if str(info["codebase_version"]).startswith("v2"):
            tasks, episodes = _load_v2(root, info)
        else:
            tasks, episodes = _load_v3(root, info)
        return cls(root=root, info=info, tasks=tasks, episodes=episodes)


def _load_v2(root: pathlib.Path, info: dict) -> tuple[dict[int, str], dict[int, EpisodeInfo]]:
    tasks_rows = _read_jsonl(root / "meta" / "tasks.jsonl", ("task_index", "task"))
    tasks = {int(row["task_index"]): str(row["task"]) for row in tasks_rows}
    chunks_size = int(info.get("chunks_size", 1000))
    video_keys = [k for k, f in info["features"].items() if f.get("dtype") == "video"]
    episodes = {}
    for row in _read_jsonl(root / "meta" / "episodes.jsonl", ("episode_index", "length")):
        index = int(row["episode_index"])
        chunk = index // chunks_size
        data_file = info["data_path"].format(episode_chunk=chunk, episode_index=index)
        b1k_chunk = index // r1pro.EPISODES_PER_TASK  # B1K: chunk = task, whatever chunks_size says
        if chunk != b1k_chunk and not (root / data_file).exists():
            alternative = info["data_path"].format(episode_chunk=b1k_chunk, episode_index=index)
            if (root / alternative).exists():
                chunk, data_file = b1k_chunk, alternative
        videos = {
            key: (info["video_path"].format(episode_chunk=chunk, episode_index=index, video_key=key), 0.0)
            for key in video_keys
        }
        episodes[index] = EpisodeInfo(index, int(row["length"]), tuple(row.get("tasks", ())), data_file, videos)
    return tasks, episodes


def _load_v3(root: pathlib.Path, info: dict) -> tuple[dict[int, str], dict[int, EpisodeInfo]]:
    tasks_path = root / "meta" / "tasks.parquet"
    if not tasks_path.exists():
        raise DatasetNotFoundError(f"Metadata file missing: {tasks_path}")
    table = pq.read_table(tasks_path).to_pydict()
    names = table.get("task", table.get("__index_level_0__"))
    if names is None:
        raise DatasetFormatError(f"{tasks_path} has no task strings (no 'task' or '__index_level_0__' column).")
    tasks = {int(i): str(t) for i, t in zip(table["task_index"], names)}

    files = sorted((root / "meta" / "episodes").glob("*/*.parquet"))
    if not files:
        raise DatasetNotFoundError(f"No episode metadata under {root / 'meta' / 'episodes'}")
    video_keys = [k for k, f in info["features"].items() if f.get("dtype") == "video"]
    episodes = {}
    for path in files:
        rows = pq.read_table(path).to_pylist()
        needed = ["episode_index", "length", "data/chunk_index", "data/file_index"]
        needed += [f"videos/{k}/{f}" for k in video_keys for f in ("chunk_index", "file_index", "from_timestamp")]
        missing = [k for k in needed if rows and k not in rows[0]]
        if missing:
            raise DatasetFormatError(f"{path} has no column(s) {missing}.")
        for row in rows:
            index = int(row["episode_index"])
            data_file = info["data_path"].format(chunk_index=row["data/chunk_index"], file_index=row["data/file_index"])
            videos = {}
            for key in video_keys:
                rel = info["video_path"].format(
                    video_key=key,
                    chunk_index=row[f"videos/{key}/chunk_index"],
                    file_index=row[f"videos/{key}/file_index"],
                )
                videos[key] = (rel, float(row[f"videos/{key}/from_timestamp"]))
            episodes[index] = EpisodeInfo(index, int(row["length"]), tuple(row.get("tasks") or ()), data_file, videos)
    episodes = dict(sorted(episodes.items()))
    return tasks, episodes


def column_to_numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A parquet column as numpy: scalars → [N], fixed-size or equal-length lists → [N, D]."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    kind = column.type
    if pa.types.is_fixed_size_list(kind):
        values = column.flatten().to_numpy(zero_copy_only=False)
        return values.reshape(len(column), kind.list_size)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        lengths = np.diff(column.offsets.to_numpy())
        values = column.flatten().to_numpy(zero_copy_only=False)
        if len(lengths) and np.all(lengths == lengths[0]):
            return values.reshape(len(column), int(lengths[0]))
        return np.array(np.split(values, np.cumsum(lengths)[:-1]), dtype=object)
    return column.to_numpy(zero_copy_only=False)


def check_finite(name: str, values: np.ndarray, episode_index: int, path: pathlib.Path, frames: np.ndarray) -> None:
    """Raises naming the episode, frame and file of the first NaN/inf in a float column."""
    if values.dtype.kind != "f":
        return
    if np.isfinite(values).all():
        return
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        dims = np.flatnonzero(bad[row].reshape(-1)).tolist()
        raise DatasetFormatError(
            f"Non-finite '{name}' in episode {episode_index}, frame {int(frames[row])} (dims {dims}) in {path}."
        )


def parquet_columns(path: pathlib.Path) -> list[str]:
    """The column names of a parquet file; an unreadable footer (truncated file) is an error naming the file."""
    try:
        return pq.read_schema(path).names
    except (pa.ArrowInvalid, OSError) as e:
        raise DatasetFormatError(f"Cannot read {path} (truncated or not parquet?): {e}") from None


def read_parquet(path: pathlib.Path, columns: Sequence[str] | None) -> pa.Table:
    """Reads ``columns`` (all when None) of one parquet file, with errors that name the file and column."""
    if not path.exists():
        raise DatasetNotFoundError(f"Parquet file not found: {path}")
    try:
        # Callers parallelize over files; pyarrow's own threads would only compete with them.
        return pq.read_table(path, columns=None if columns is None else list(dict.fromkeys(columns)), use_threads=False)
    except (pa.ArrowInvalid, KeyError) as e:
        names = parquet_columns(path)
        missing = [c for c in columns or () if c not in names]
        if missing:
            raise DatasetFormatError(f"{path} has no column(s) {missing}; its columns are {names}.") from None
        raise DatasetFormatError(f"Cannot read {path}: {e}") from e


def episode_rows(table: pa.Table, episode_index: int, path: pathlib.Path) -> pa.Table:
    """The rows of one episode in a (v3.0) multi-episode table; a v2.1 file is returned whole."""
    if "episode_index" not in table.column_names:
        return table
    episodes = table.column("episode_index").to_numpy()
    if len(episodes) and episodes[0] == episodes[-1] == episode_index:
        return table
    rows = np.flatnonzero(episodes == episode_index)
    if len(rows) == 0:
        raise DatasetFormatError(f"{path} holds no rows of episode {episode_index}.")
    return table.slice(int(rows[0]), int(rows[-1] - rows[0] + 1))
