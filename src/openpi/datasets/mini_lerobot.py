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
import tyro

from openpi.datasets import lerobot_writer
from openpi.shared import cli

TASKS = ("reach the red button", "push the block to the goal", "open the drawer")


@dataclasses.dataclass(frozen=True)
class MiniLeRobotConfig:
    root: pathlib.Path
    """Where to write the dataset (empty or missing unless --overwrite)."""
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
    overwrite: bool = False
    """Replace a non-empty root."""


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
    if not 1 <= config.num_tasks <= len(TASKS):
        raise ValueError(f"num_tasks must be 1..{len(TASKS)}, got {config.num_tasks}.")
    with lerobot_writer.LeRobotWriter(
        config.root,
        fps=config.fps,
        robot_type="mini_arm",
        features={"action": config.action_dim, "observation.state": config.state_dim},
        videos=dict.fromkeys(config.cameras, (config.image_size, config.image_size)),
        codec=config.codec,
        tasks=TASKS[: config.num_tasks],
        overwrite=config.overwrite,
    ) as writer:
        for index in range(config.num_episodes):
            actions, states, frames = _episode(config, index)
            columns = {"action": actions, "observation.state": states}
            writer.add_episode(columns=columns, videos=frames, task=TASKS[index % config.num_tasks])
    return writer.root


def main() -> None:
    print(f"Wrote {write(tyro.cli(MiniLeRobotConfig, description=__doc__.split(chr(10) * 2)[0]))}")


if __name__ == "__main__":
    cli.run_main(main)
