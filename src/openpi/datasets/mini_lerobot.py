"""A tiny LeRobot v2.1 dataset of a non-B1K robot: any action and state sizes, any camera keys, no B1K keys.

Meant for trying the generic ``lerobot`` config and for tests; the defaults follow a Meta-World-style arm
(4-dim action = xyz delta + gripper, 39-dim state, two cameras). The layout is LeRobot's v2.1:
``data/chunk-000/episode_000000.parquet``, ``videos/chunk-000/<camera>/episode_000000.mp4`` and
``meta/{info.json, tasks.jsonl, episodes.jsonl, episodes_stats.jsonl}``.

    python -m openpi.datasets.mini_lerobot --root /tmp/mini_sawyer
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import tyro

from openpi.datasets import mini_b1k  # shares its parquet / JSON writing helpers
from openpi.datasets import video as _video
from openpi.shared import cli

TASKS = ("reach the red button", "push the block to the goal", "open the drawer")


@dataclasses.dataclass(frozen=True)
class MiniLeRobotConfig:
    root: pathlib.Path
    """Where to write the dataset (must be empty or missing)."""
    action_dim: int = 4
    state_dim: int = 39
    cameras: tuple[str, ...] = ("observation.images.top", "observation.images.wrist")
    image_size: int = 32
    num_episodes: int = 4
    num_tasks: int = 2
    frames_per_episode: int = 30
    fps: int = 10
    codec: str = "h264"
    seed: int = 0


def _episode(config: MiniLeRobotConfig, index: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(actions [T, A], states [T, S], camera → frames [T, H, W, 3]): smooth moves, a gripper that toggles once."""
    rng = np.random.default_rng([config.seed, index])
    t = np.arange(config.frames_per_episode) / config.fps
    phases, freqs = rng.uniform(0, 2 * np.pi, config.action_dim), rng.uniform(0.2, 1.0, config.action_dim)
    actions = 0.05 * np.sin(freqs * 2 * np.pi * t[:, None] + phases)
    actions[:, -1] = np.where(t < rng.uniform(t[1], t[-1]), -1.0, 1.0)  # last dim: the gripper command
    states = np.zeros((len(t), config.state_dim))
    shared = min(config.action_dim, config.state_dim)
    states[:, :shared] = np.cumsum(actions[:, :shared], axis=0)
    states[:, shared:] = np.sin(t[:, None] + rng.uniform(0, 2 * np.pi, config.state_dim - shared))
    frames = {}
    for k, camera in enumerate(config.cameras):
        level = (np.clip(states[:, k % shared], -1, 1) * 100 + 128).astype(np.uint8)
        image = np.zeros((len(t), config.image_size, config.image_size, 3), np.uint8)
        image[..., k % 3] = level[:, None, None]
        frames[camera] = image
    return actions.astype(np.float32), states.astype(np.float32), frames


def write(config: MiniLeRobotConfig) -> pathlib.Path:
    """Writes the dataset and returns its root."""
    root = pathlib.Path(config.root).expanduser()
    if not 1 <= config.num_tasks <= len(TASKS):
        raise ValueError(f"num_tasks must be 1..{len(TASKS)}, got {config.num_tasks}.")
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty; choose another --root.")
    (root / "meta").mkdir(parents=True, exist_ok=True)
    episodes, stats, start = [], [], 0
    for index in range(config.num_episodes):
        actions, states, frames = _episode(config, index)
        n, task_index = len(actions), index % config.num_tasks
        table = pa.table({
            "action": mini_b1k._vector(actions),
            "observation.state": mini_b1k._vector(states),
            "timestamp": pa.array((np.arange(n) / config.fps).astype(np.float32)),
            "frame_index": pa.array(np.arange(n, dtype=np.int64)),
            "episode_index": pa.array(np.full(n, index, dtype=np.int64)),
            "index": pa.array(np.arange(start, start + n, dtype=np.int64)),
            "task_index": pa.array(np.full(n, task_index, dtype=np.int64)),
        })
        path = root / f"data/chunk-000/episode_{index:06d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        for camera, images in frames.items():
            _video.write_video(root / f"videos/chunk-000/{camera}/episode_{index:06d}.mp4", images, config.fps, config.codec)
        episodes.append({"episode_index": index, "tasks": [TASKS[task_index]], "length": n})
        columns = {"action": actions, "observation.state": states}
        stats.append({"episode_index": index, "stats": {k: mini_b1k._feature_stats(v) for k, v in columns.items()}})
        start += n
    video = {
        "dtype": "video",
        "shape": [config.image_size, config.image_size, 3],
        "names": ["height", "width", "channels"],
        "info": {"video.fps": config.fps, "video.height": config.image_size, "video.width": config.image_size,
                 "video.channels": 3, "video.codec": config.codec, "video.pix_fmt": "yuv420p",
                 "video.is_depth_map": False, "has_audio": False},
    }
    scalar = {"shape": [1], "names": None}
    features = {camera: video for camera in config.cameras} | {
        "action": {"dtype": "float32", "shape": [config.action_dim], "names": None},
        "observation.state": {"dtype": "float32", "shape": [config.state_dim], "names": None},
        "timestamp": {"dtype": "float32", **scalar},
        **{key: {"dtype": "int64", **scalar} for key in ("frame_index", "episode_index", "index", "task_index")},
    }
    info = {
        "codebase_version": "v2.1",
        "robot_type": "mini_arm",
        "total_episodes": config.num_episodes,
        "total_frames": start,
        "total_tasks": config.num_tasks,
        "total_videos": config.num_episodes * len(config.cameras),
        "total_chunks": 1,
        "chunks_size": 1000,
        "fps": config.fps,
        "splits": {"train": f"0:{config.num_episodes}"},
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
        "features": features,
    }
    mini_b1k._write_json(root / "meta/info.json", info)
    mini_b1k._write_jsonl(root / "meta/tasks.jsonl", [{"task_index": i, "task": TASKS[i]} for i in range(config.num_tasks)])
    mini_b1k._write_jsonl(root / "meta/episodes.jsonl", episodes)
    mini_b1k._write_jsonl(root / "meta/episodes_stats.jsonl", stats)
    return root


def main() -> None:
    print(f"Wrote {write(tyro.cli(MiniLeRobotConfig, description=__doc__.split(chr(10) * 2)[0]))}")


if __name__ == "__main__":
    cli.run_main(main)
