"""LeRobot dataset writer (v2.1 and v3.0): the counterpart of `lerobot_meta`, used by every dataset generator.

A generator hands over whole episodes (float vectors per frame, uint8 camera frames, a task string); the writer
adds the bookkeeping columns, writes the parquet and mp4 files in the version's layout, and on `close()` the
metadata a reader needs (``meta/info.json``, tasks, episodes, per-episode stats). Usage::

    with LeRobotWriter(root, version="v2.1", fps=20, robot_type="panda",
                       features={"observation.state": 9, "action": 7},
                       videos={"observation.images.front": (64, 64)}, codec="h264") as writer:
        for episode in episodes:
            writer.add_episode(
                columns={"observation.state": states, "action": actions},  # float [T, width] each
                videos={"observation.images.front": frames},  # uint8 [T, 64, 64, 3]
                task="lift the cube",
            )
    meta = lerobot_meta.LeRobotMetadata.load(root)  # reads it back

What it writes (``style="lerobot"``, LeRobot's own files):
- Parquet columns: the ``features`` in the given order (``float32`` fixed-size lists), then ``timestamp``
  (float32, frame / fps), ``frame_index`` (within the episode), ``episode_index``, ``index`` (global frame
  counter) and ``task_index``. ``info.json`` lists the videos first, then the columns in that order.
- v2.1: one parquet per episode and one mp4 per episode and camera, at ``data_path`` / ``video_path``
  (LeRobot's templates unless given; chunk = episode_index // chunks_size); ``meta/tasks.jsonl``,
  ``meta/episodes.jsonl``, ``meta/episodes_stats.jsonl`` (min/max/mean/std/count of every feature).
- v3.0: ``episodes_per_file`` episodes per parquet and per mp4 (``data/chunk-000/file-000.parquet``,
  ``videos/<key>/chunk-000/file-000.mp4``); ``meta/episodes/chunk-000/file-000.parquet`` (one row per episode
  with its file and frame / time span), ``meta/tasks.parquet`` and ``meta/stats.json`` (dataset-level stats).
  Per-episode ``stats/*`` columns are not written.
``style="b1k"`` reproduces BEHAVIOR-1K's parquet: ``index, episode_index, task_index, timestamp`` before the
features; in v2.1 ``index`` counts frames within the episode, there is no ``frame_index``, ``timestamp`` is
float64 and ``task_index`` is not listed in ``info.json`` (v3.0 adds ``frame_index`` after ``timestamp`` and a
global ``index``, as LeRobot does).

Episode indices default to 0, 1, 2, ...; pass ``episode_index`` for sparse ones (B1K: task × 10000 + id).
Tasks get indices in order of first use; pass ``tasks`` to fix the order (and list tasks without episodes)
and ``task_names`` for B1K's extra ``task_name`` field in ``tasks.jsonl``. Leaving the ``with`` block by an
exception writes no metadata, so a half-written dataset is never mistaken for a complete one.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import json
import pathlib
import shutil
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from openpi.datasets import video as _video

DEFAULT_PATHS = {
    "v2.1": (
        "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
    ),
    "v3.0": (
        "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
    ),
}
# v3.0 file size targets LeRobot records in info.json (this writer groups by episode count instead).
DATA_FILES_SIZE_IN_MB, VIDEO_FILES_SIZE_IN_MB = 100, 200


def write_json(path: pathlib.Path, data) -> None:
    """``data`` as indented JSON at ``path`` (parents created); also for a generator's own side files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


def write_jsonl(path: pathlib.Path, rows: Sequence[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def feature_stats(values: np.ndarray) -> dict:
    """LeRobot's per-feature stats over the first axis (frames), computed in float64."""
    values = values.reshape(len(values), -1).astype(np.float64)
    return {
        "min": values.min(0).tolist(),
        "max": values.max(0).tolist(),
        "mean": values.mean(0).tolist(),
        "std": values.std(0).tolist(),
        "count": [len(values)],
    }


def vector_column(values: np.ndarray) -> pa.FixedSizeListArray:
    """[T, D] values as a float32 ``fixed_size_list<float>[D]`` column."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


def prepare_root(root: pathlib.Path | str, overwrite: bool = False) -> pathlib.Path:
    """An empty dataset directory at ``root``; a non-empty one is replaced only with ``overwrite``."""
    root = pathlib.Path(root).expanduser()
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{root} is not empty; pass --overwrite (overwrite=True) to replace it.")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    return root


class LeRobotWriter:
    """Writes a LeRobot v2.1 or v3.0 dataset episode by episode (see the module docstring for the files).

    Args:
        root: dataset root; must be empty or missing unless ``overwrite``.
        version: "v2.1" (one file per episode) or "v3.0" (``episodes_per_file`` episodes per file).
        fps: frames per second (timestamps are frame / fps; videos are encoded at this rate).
        robot_type: ``info.json``'s ``robot_type``.
        features: float vector columns, name → width, in parquet order (e.g. {"action": 7}).
        videos: camera keys, key → (height, width); each episode gives uint8 [T, height, width, 3] per key.
        codec, gop: video codec ("h264", "hevc", "av1") and keyframe interval in frames.
        style: "lerobot" or "b1k" (BEHAVIOR-1K's index columns; see the module docstring).
        chunks_size: v2.1: episodes per chunk directory (chunk = episode_index // chunks_size).
        data_path, video_path: path templates; LeRobot's for the version when None.
        episodes_per_file: v3.0 only.
        tasks: task strings whose indices are fixed up front (0, 1, ...); others are added on first use.
        task_names: task string → short name, written as ``task_name`` in v2.1's ``tasks.jsonl`` (B1K).
        overwrite: replace a non-empty root.
    """

    def __init__(
        self,
        root: pathlib.Path | str,
        *,
        version: Literal["v2.1", "v3.0"] = "v2.1",
        fps: int,
        robot_type: str,
        features: Mapping[str, int],
        videos: Mapping[str, tuple[int, int]] | None = None,
        codec: str = "h264",
        gop: int = 30,
        style: Literal["lerobot", "b1k"] = "lerobot",
        chunks_size: int = 1000,
        data_path: str | None = None,
        video_path: str | None = None,
        episodes_per_file: int = 1,
        tasks: Sequence[str] = (),
        task_names: Mapping[str, str] | None = None,
        overwrite: bool = False,
    ):
        if version not in DEFAULT_PATHS:
            raise ValueError(f"version must be one of {sorted(DEFAULT_PATHS)}, got {version!r}.")
        if style not in ("lerobot", "b1k"):
            raise ValueError(f"style must be 'lerobot' or 'b1k', got {style!r}.")
        if min(fps, chunks_size, episodes_per_file, gop) < 1:
            raise ValueError("fps, chunks_size, episodes_per_file and gop must be at least 1.")
        bad = {k: w for k, w in features.items() if int(w) < 1}
        if not features or bad:
            raise ValueError(f"features must map each column name to a positive width, got {dict(features)}.")
        self.videos = dict(videos or {})
        if self.videos:
            _video.pick_encoder(codec)  # fail before writing anything when this PyAV cannot encode it
        self.root = prepare_root(root, overwrite)
        self.version, self.fps, self.robot_type, self.style = version, fps, robot_type, style
        self.features = {k: int(w) for k, w in features.items()}
        self.codec, self.gop, self.chunks_size, self.episodes_per_file = codec, gop, chunks_size, episodes_per_file
        default_data, default_video = DEFAULT_PATHS[version]
        self.data_path = data_path or default_data
        self.video_path = (video_path or default_video) if self.videos else None
        self.tasks: dict[str, int] = {}
        for task in tasks:
            self._task_index(task)
        self.task_names = dict(task_names or {})
        self._episodes: list[dict] = []  # episodes.jsonl rows (v2.1) / meta/episodes rows (v3.0)
        self._stats: list[dict] = []  # per-episode stats (v2.1)
        # v3.0: the episodes of the file being filled (table, videos, meta row, global index of the first frame)
        self._pending: list[tuple[pa.Table, dict[str, np.ndarray], dict, int]] = []
        self._files_written = 0  # v3.0
        self._columns: dict[str, list[np.ndarray]] = {k: [] for k in self.features}  # v3.0: for meta/stats.json
        self._total_frames, self._last_index = 0, -1
        self._closed = False

    def __enter__(self) -> LeRobotWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()

    @property
    def _v3(self) -> bool:
        return self.version == "v3.0"

    def _task_index(self, task: str) -> int:
        return self.tasks.setdefault(task, len(self.tasks))

    def add_episode(
        self,
        columns: Mapping[str, np.ndarray],
        task: str,
        videos: Mapping[str, np.ndarray] | None = None,
        episode_index: int | None = None,
    ) -> int:
        """Adds one episode: every feature as [T, width] floats and every video key as uint8 [T, H, W, 3].
        Returns its episode index (the previous one + 1 when not given)."""
        if self._closed:
            raise RuntimeError(f"The writer of {self.root} is closed.")
        videos = dict(videos or {})
        if set(columns) != set(self.features) or set(videos) != set(self.videos):
            raise ValueError(
                f"Episode has columns {sorted(columns)} and videos {sorted(videos)}; the writer of {self.root} "
                f"expects columns {sorted(self.features)} and videos {sorted(self.videos)}."
            )
        lengths = {len(v) for v in [*columns.values(), *videos.values()]}
        if len(lengths) != 1 or 0 in lengths:
            raise ValueError(f"Every column and video of an episode needs the same non-zero length, got {lengths}.")
        length = lengths.pop()
        for name, values in columns.items():
            if np.ndim(values) != 2 or np.shape(values)[1] != self.features[name]:
                raise ValueError(f"Column '{name}' must be [T, {self.features[name]}], got {np.shape(values)}.")
        for key, frames in videos.items():
            expected = (length, *self.videos[key], 3)
            if frames.dtype != np.uint8 or frames.shape != expected:
                raise ValueError(f"Video '{key}' must be uint8 {expected}, got {frames.dtype} {frames.shape}.")
        previous = self._last_index
        episode_index = previous + 1 if episode_index is None else int(episode_index)
        if episode_index <= previous:
            raise ValueError(f"Episode indices must increase: {episode_index} after {previous}.")
        self._last_index, task_index = episode_index, self._task_index(task)
        table = self._table(columns, length, episode_index, task_index)
        row = {"episode_index": episode_index, "tasks": [task], "length": length}
        if self._v3:
            for name, values in columns.items():
                self._columns[name].append(np.asarray(values))
            self._pending.append((table, videos, row, self._total_frames))
            if len(self._pending) == self.episodes_per_file:
                self._flush_file()
        else:
            chunk = episode_index // self.chunks_size
            path = self.root / self.data_path.format(episode_chunk=chunk, episode_index=episode_index)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path)
            for key, frames in videos.items():
                name = self.video_path.format(episode_chunk=chunk, video_key=key, episode_index=episode_index)
                _video.write_video(self.root / name, frames, self.fps, self.codec, self.gop)
            self._episodes.append(row)
            stats = {name: feature_stats(np.asarray(values)) for name, values in columns.items()}
            self._stats.append({"episode_index": episode_index, "stats": stats})
        self._total_frames += length
        return episode_index

    def _table(self, columns: Mapping[str, np.ndarray], length: int, episode_index: int, task_index: int) -> pa.Table:
        frames = np.arange(length, dtype=np.int64)
        b1k_v2 = self.style == "b1k" and not self._v3
        index = {
            "timestamp": pa.array((frames / self.fps).astype(np.float64 if b1k_v2 else np.float32)),
            "frame_index": pa.array(frames),
            "episode_index": pa.array(np.full(length, episode_index, dtype=np.int64)),
            "index": pa.array(frames if b1k_v2 else frames + self._total_frames),
            "task_index": pa.array(np.full(length, task_index, dtype=np.int64)),
        }
        data = {name: vector_column(columns[name]) for name in self.features}
        index = {k: index[k] for k in self._index_order()}
        return pa.table({**data, **index} if self.style == "lerobot" else {**index, **data})

    def _index_order(self) -> tuple[str, ...]:
        """The bookkeeping columns in parquet order."""
        if self.style == "lerobot":
            return ("timestamp", "frame_index", "episode_index", "index", "task_index")
        if self._v3:
            return ("index", "episode_index", "task_index", "timestamp", "frame_index")
        return ("index", "episode_index", "task_index", "timestamp")

    def _flush_file(self) -> None:
        """v3.0: writes the pending episodes as one parquet file and one mp4 per camera."""
        chunk_index, file_index = divmod(self._files_written, self.chunks_size)
        path = self.root / self.data_path.format(chunk_index=chunk_index, file_index=file_index)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.concat_tables([table for table, *_ in self._pending]), path)
        offset = 0.0
        for _, _, row, first in self._pending:
            row.update({"data/chunk_index": chunk_index, "data/file_index": file_index})
            row.update(dataset_from_index=first, dataset_to_index=first + row["length"])
            duration = row["length"] / self.fps
            for key in self.videos:
                row[f"videos/{key}/chunk_index"] = chunk_index
                row[f"videos/{key}/file_index"] = file_index
                row[f"videos/{key}/from_timestamp"] = offset
                row[f"videos/{key}/to_timestamp"] = offset + duration
            offset += duration
            self._episodes.append(row)
        for key in self.videos:
            frames = np.concatenate([videos[key] for _, videos, *_ in self._pending])
            name = self.video_path.format(video_key=key, chunk_index=chunk_index, file_index=file_index)
            _video.write_video(self.root / name, frames, self.fps, self.codec, self.gop)
        self._pending.clear()
        self._files_written += 1

    def _info_features(self) -> dict:
        features = {}
        for key, (height, width) in self.videos.items():
            features[key] = {
                "dtype": "video",
                "shape": [height, width, 3],
                "names": ["height", "width", "channels"],
                "info": {
                    "video.fps": self.fps,
                    "video.height": height,
                    "video.width": width,
                    "video.channels": 3,
                    "video.codec": self.codec,
                    "video.pix_fmt": "yuv420p",
                    "video.is_depth_map": False,
                    "has_audio": False,
                },
            }
        for name, width in self.features.items():
            features[name] = {"dtype": "float32", "shape": [width], "names": None}
        scalar = {"shape": [1], "names": None}
        if self.style == "lerobot":
            order = self._index_order()
        else:  # B1K lists the features, then timestamp and the indices (v2.1 leaves task_index out)
            order = ("timestamp", "index", "episode_index", *(("frame_index", "task_index") if self._v3 else ()))
        b1k_v2 = self.style == "b1k" and not self._v3
        for name in order:
            features[name] = {
                "dtype": ("float64" if b1k_v2 else "float32") if name == "timestamp" else "int64",
                **scalar,
            }
        return features

    def close(self) -> pathlib.Path:
        """Writes the remaining files and the metadata; returns the dataset root."""
        if self._closed:
            return self.root
        if self._v3 and self._pending:
            self._flush_file()
        if not self._episodes:
            raise ValueError(f"No episodes were added to {self.root}; a LeRobot dataset needs at least one.")
        self._closed = True
        count = len(self._episodes)
        info = {
            "codebase_version": self.version,
            "robot_type": self.robot_type,
            "total_episodes": count,
            "total_frames": self._total_frames,
            "total_tasks": len(self.tasks),
            "total_videos": count * len(self.videos),
        }
        if self._v3:
            info.update(
                chunks_size=self.chunks_size,
                data_files_size_in_mb=DATA_FILES_SIZE_IN_MB,
                video_files_size_in_mb=VIDEO_FILES_SIZE_IN_MB,
            )
        else:
            info.update(
                total_chunks=len({row["episode_index"] // self.chunks_size for row in self._episodes}),
                chunks_size=self.chunks_size,
            )
        info.update(
            fps=self.fps,
            splits={"train": f"0:{count}"},
            data_path=self.data_path,
            video_path=self.video_path,
            features=self._info_features(),
        )
        meta = self.root / "meta"
        tasks = list(self.tasks)
        if self._v3:
            episodes = meta / "episodes/chunk-000/file-000.parquet"
            episodes.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(self._episodes), episodes)
            pq.write_table(
                pa.table({"task_index": list(range(len(tasks))), "__index_level_0__": tasks}), meta / "tasks.parquet"
            )
            stats = {name: feature_stats(np.concatenate(parts)) for name, parts in self._columns.items()}
            write_json(meta / "stats.json", stats)
        else:
            rows = []
            for index, task in enumerate(tasks):
                name = {"task_name": self.task_names[task]} if task in self.task_names else {}
                rows.append({"task_index": index, **name, "task": task})
            write_jsonl(meta / "tasks.jsonl", rows)
            write_jsonl(meta / "episodes.jsonl", self._episodes)
            write_jsonl(meta / "episodes_stats.jsonl", self._stats)
        write_json(meta / "info.json", info)
        return self.root
