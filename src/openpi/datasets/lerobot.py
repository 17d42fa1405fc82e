"""Native reader for local LeRobot datasets, v2.1 (one parquet/mp4 per episode) and v3.0 (many per file).

Every path comes from ``meta/info.json`` templates, read by ``lerobot_meta.LeRobotMetadata`` (features, fps,
tasks and per-episode file locations). `LeRobotDataset` maps a flat frame index over a subset of episodes to
a sample dict with the frame's parquet values, an action chunk of length H (padded by repeating the episode's
last action, flagged in ``action_is_pad``), the task string and decoded camera frames. The `lerobot` package
is not used.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
import pathlib

import numpy as np
import pyarrow as pa

from openpi.datasets import columns as _columns
from openpi.datasets import lerobot_meta as _meta
from openpi.datasets import video as _video


class LeRobotDataset:
    """Frames of a local LeRobot dataset as sample dicts.

    ``dataset[i]`` holds the frame's parquet values (``columns``, default every non-video feature plus
    ``task_index``), ``frame_index``, ``episode_index``, ``task`` (the prompt string), the action chunk
    ``[action_horizon, D]`` with ``action_is_pad`` when ``action_horizon`` is set, and one uint8 HWC image per
    entry of ``camera_keys`` (default every video feature; ``()`` decodes no video).

    Parquet data is read whole for the selected episodes (once per process) when it takes at most
    ``preload_max_bytes``; otherwise episode by episode with an LRU cache of ``episode_cache_size`` episodes.
    Decoded camera frames are kept (per process) when all of them take at most ``frame_cache_max_bytes``
    (info.json's video shapes): an episode's video is then decoded front to back once, on its first read, and
    random access never decodes again (small datasets, e.g. the simulator's, where decoding dominated a step).
    """

    def __init__(
        self,
        repo_id: str | None = None,
        *,
        root: pathlib.Path | str | None = None,
        episodes: Sequence[int] | None = None,
        action_horizon: int | None = None,
        action_key: str = "action",
        camera_keys: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
        episode_cache_size: int = 8,
        preload_max_bytes: int = 2**30,
        frame_cache_max_bytes: int = 2**28,
    ):
        self.meta = _meta.LeRobotMetadata.load(_meta.resolve_root(repo_id, root))
        chosen = self.meta.episode_indices if episodes is None else [int(e) for e in episodes]
        for e in chosen:
            self.meta.episode(e)  # raises for unknown episodes
        self.episodes = chosen
        self.action_key = action_key
        self.action_horizon = action_horizon
        self.camera_keys = list(self.meta.video_keys if camera_keys is None else camera_keys)
        unknown = [k for k in self.camera_keys if k not in self.meta.video_keys]
        if unknown:
            raise KeyError(f"Camera keys {unknown} are not video features; video keys: {self.meta.video_keys}.")
        if columns is None:
            columns = [k for k, f in self.meta.features.items() if f.get("dtype") != "video"]
            # B1K stores task_index in the parquet without listing it under features.
            if chosen and "task_index" not in columns:
                first = self.meta.data_path(chosen[0])
                if first.exists() and "task_index" in _meta.parquet_columns(first):
                    columns.append("task_index")
        self.columns = list(dict.fromkeys([*columns, action_key]))
        lengths = np.array([self.meta.episode(e).length for e in chosen], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(lengths)])
        self._episode_cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._episode_cache_size = episode_cache_size
        # Small selections are read whole (once per process) so random access never re-reads an episode file.
        self._preload = self._column_bytes() * len(self) <= preload_max_bytes
        self._preloaded: dict[int, dict[str, np.ndarray]] | None = None
        self._last_file: tuple[pathlib.Path | None, pa.Table | None] = (None, None)
        self._videos = _video.VideoReader()
        self._cache_frames = len(self) * self._frame_bytes() <= frame_cache_max_bytes
        self._frames: dict[tuple[int, str], np.ndarray] = {}

    def __len__(self) -> int:
        return int(self._starts[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """(episode_index, frame_index) of flat sample ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"Sample {index} out of range [0, {len(self)}).")
        k = int(np.searchsorted(self._starts, index, side="right") - 1)
        return self.episodes[k], int(index - self._starts[k])

    def frame_locations(self) -> tuple[np.ndarray, np.ndarray]:
        """(episode_index, frame_index) arrays for every sample, e.g. to build per-sample weights."""
        lengths = np.diff(self._starts)
        episodes = np.repeat(np.asarray(self.episodes, dtype=np.int64), lengths)
        frames = np.arange(len(self)) - np.repeat(self._starts[:-1], lengths)
        return episodes, frames

    def _column_bytes(self) -> int:
        """Bytes per frame of the columns read (8 for columns not described in info.json)."""
        total = 0
        for name in self.columns:
            feature = self.meta.features.get(name, {})
            itemsize = np.dtype(feature["dtype"]).itemsize if feature.get("dtype", "video") != "video" else 8
            total += itemsize * int(np.prod(feature.get("shape", [1])))
        return total

    def _frame_bytes(self) -> int:
        """Decoded bytes per frame of the cameras read (uint8 H·W·C each; unknown shapes count as unbounded)."""
        shapes = [self.meta.features[key].get("shape") for key in self.camera_keys]
        if any(shape is None for shape in shapes):
            return 2**62
        return sum(int(np.prod(shape)) for shape in shapes)

    def _load_all(self) -> dict[int, dict[str, np.ndarray]]:
        data = _columns.read_columns(self.meta, self.columns, episodes=self.episodes)
        return {
            int(e): {name: values[data.starts[k] : data.starts[k + 1]] for name, values in data.columns.items()}
            for k, e in enumerate(data.episodes)
        }

    def episode_data(self, episode_index: int) -> dict[str, np.ndarray]:
        """The episode's parquet columns as numpy (cached per process), after format checks."""
        if self._preload:
            if self._preloaded is None:
                self._preloaded = self._load_all()
            if episode_index in self._preloaded:
                return self._preloaded[episode_index]
        if episode_index in self._episode_cache:
            self._episode_cache.move_to_end(episode_index)
            return self._episode_cache[episode_index]
        info = self.meta.episode(episode_index)
        path = self.meta.root / info.data_file
        if self.meta.version.startswith("v2"):
            table = _meta.read_parquet(path, self.columns)
        else:  # a v3.0 file holds many episodes: keep the last one read for its neighbours
            if self._last_file[0] != path:
                self._last_file = (path, _meta.read_parquet(path, [*self.columns, "episode_index"]))
            table = _meta.episode_rows(self._last_file[1], episode_index, path)
        if table.num_rows != info.length:
            raise _meta.DatasetFormatError(
                f"Episode {episode_index} has {table.num_rows} rows in {path} but length {info.length} in "
                f"{_meta.episodes_file(self.meta)}."
            )
        frames = np.arange(table.num_rows)
        data = {}
        for name in self.columns:
            data[name] = _meta.column_to_numpy(table.column(name))
            _meta.check_finite(name, data[name], episode_index, path, frames)
        self._episode_cache[episode_index] = data
        if len(self._episode_cache) > self._episode_cache_size:
            self._episode_cache.popitem(last=False)
        return data

    def action_chunk(self, episode_index: int, frame_index: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """Actions ``frame .. frame + horizon − 1``; past the episode end the last action repeats and is_pad is set."""
        actions = self.episode_data(episode_index)[self.action_key]
        steps = frame_index + np.arange(horizon)
        return actions[np.minimum(steps, len(actions) - 1)], steps >= len(actions)

    def decode_frame(self, episode_index: int, key: str, frame_index: int) -> np.ndarray:
        """Camera ``key`` at the frame's timestamp as uint8 [H, W, 3]."""
        if not self._cache_frames:
            return self._decode(episode_index, key, frame_index)
        frames = self._frames.get((episode_index, key))
        if frames is None:
            length = self.meta.episode(episode_index).length
            try:
                frames = np.stack([self._decode(episode_index, key, i) for i in range(length)])
            except _video.VideoDecodeError:
                # A damaged video is not cached: its good frames still read, and an error names the frame asked for.
                return self._decode(episode_index, key, frame_index)
            self._frames[(episode_index, key)] = frames
        return frames[frame_index]

    def _decode(self, episode_index: int, key: str, frame_index: int) -> np.ndarray:
        path, start = self.meta.video_path(episode_index, key)
        data = self.episode_data(episode_index)
        timestamp = float(data["timestamp"][frame_index]) if "timestamp" in data else frame_index / self.meta.fps
        try:
            return self._videos.read(path, start + timestamp, tolerance_s=0.4 / self.meta.fps)
        except _video.VideoDecodeError as e:
            raise _video.VideoDecodeError(f"Episode {episode_index}, frame {frame_index}, camera '{key}': {e}") from None

    def __getitem__(self, index: int) -> dict:
        episode_index, frame_index = self.locate(int(index))
        data = self.episode_data(episode_index)
        sample = {name: values[frame_index] for name, values in data.items()}
        sample["episode_index"] = np.int64(episode_index)
        sample["frame_index"] = np.int64(frame_index)
        if "task_index" in sample:
            sample["task_index"] = np.int64(sample["task_index"])
            sample["task"] = self.meta.tasks.get(int(sample["task_index"]), "")
        else:
            tasks = self.meta.episode(episode_index).tasks
            sample["task"] = tasks[0] if tasks else ""
            if sample["task"]:
                sample["task_index"] = np.int64(self.meta.task_index(sample["task"]))
        if self.action_horizon is not None:
            chunk, is_pad = self.action_chunk(episode_index, frame_index, self.action_horizon)
            sample[self.action_key], sample[f"{self.action_key}_is_pad"] = chunk, is_pad
        for key in self.camera_keys:
            sample[key] = self.decode_frame(episode_index, key, frame_index)
        return sample

    def __getstate__(self):
        # Workers start with empty caches; open containers cannot be pickled.
        state = self.__dict__.copy()
        state["_episode_cache"] = OrderedDict()
        state["_preloaded"] = None
        state["_last_file"] = (None, None)
        state["_videos"] = _video.VideoReader()
        state["_frames"] = {}
        return state
