"""Scripted-expert demonstrations in the simulator, written as a LeRobot v2.1 dataset.

Per frame: ``observation.state`` (39), ``action`` (4: xyz delta, gripper), two camera videos
(``observation.images.scene`` and ``observation.images.wrist``) and the task instruction. Layout seeds of
the data are ``seed * 100_000 + task_index * 10_000 + k``, k = 0, 1, ...; evaluation draws from
`EVAL_SEED_START` on, so held-out layouts never overlap the data's. An episode ends at the expert's success;
the rare layout the expert fails is skipped (and listed in ``meta/sim_layouts.json``) so every episode is a
successful demonstration. The dataset is a pure function of the config.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np
import tqdm
import tyro

from openpi.datasets import lerobot_writer
from openpi.sim import metaworld_env

EVAL_SEED_START = 10_000_000
LAYOUTS_FILE = "meta/sim_layouts.json"
# Every frame a keyframe: training reads random frames, and at 64 px the larger files cost little while a
# decode no longer runs forward from an earlier keyframe.
KEYFRAME_INTERVAL = 1
STATE_KEY, ACTION_KEY = "observation.state", "action"


def image_key(camera: str) -> str:
    return f"observation.images.{camera}"


@dataclasses.dataclass(frozen=True)
class SimDatasetConfig:
    """Options of the simulator demonstration dataset."""

    root: pathlib.Path
    """Where to write the dataset (its root, holding meta/, data/, videos/)."""
    tasks: tuple[str, ...] = metaworld_env.DEFAULT_TASKS
    """Meta-World tasks (see openpi.sim.metaworld_env.TASKS)."""
    episodes_per_task: int = 20
    image_size: int = 64
    max_steps: int = 150
    """Step limit of an expert episode (the experts succeed in ~40-70 steps)."""
    seed: int = 0
    """Selects the layout seeds (see the module docstring)."""
    fps: int = 20
    overwrite: bool = False
    """Replace a non-empty root."""

    def __post_init__(self):
        for name in self.tasks:
            metaworld_env.task(name)
        if self.episodes_per_task < 1 or self.image_size < 16 or self.image_size % 2:
            raise ValueError("episodes_per_task must be >= 1 and image_size even and >= 16.")
        if self.seed * 100_000 + len(self.tasks) * 10_000 >= EVAL_SEED_START:
            raise ValueError(f"seed={self.seed} would reach the evaluation layouts (from {EVAL_SEED_START}).")


def data_seeds(config: SimDatasetConfig, task_index: int):
    """The candidate layout seeds of a task, in order."""
    start = config.seed * 100_000 + task_index * 10_000
    return range(start, start + 10_000)


def record_episode(env: metaworld_env.MetaWorldEnv, task_name: str, seed: int) -> dict[str, np.ndarray] | None:
    """The expert's episode on layout ``seed`` (state, action, images per frame), or None if it fails."""
    expert = metaworld_env.Expert(task_name)
    obs = env.reset(seed)
    states, actions, images = [], [], {}
    done, success = False, False
    while not done:
        action = expert.act(obs)
        states.append(obs["state"])
        actions.append(action)
        for key, image in obs["images"].items():
            images.setdefault(key, []).append(image)
        obs, success, done = env.step(action)
    if not success:
        return None
    return {"state": np.stack(states), "action": np.stack(actions), **{k: np.stack(v) for k, v in images.items()}}


def write_dataset(config: SimDatasetConfig, progress: bool = True) -> pathlib.Path:
    """Records the expert demonstrations and returns the dataset root."""
    root = pathlib.Path(config.root).expanduser()
    layouts = []
    bar = tqdm.tqdm(total=len(config.tasks) * config.episodes_per_task, desc="Expert demos", disable=not progress)
    with lerobot_writer.LeRobotWriter(
        root,
        fps=config.fps,
        robot_type="sawyer",
        features={STATE_KEY: metaworld_env.STATE_DIM, ACTION_KEY: metaworld_env.ACTION_DIM},
        videos={image_key(c): (config.image_size, config.image_size) for c in metaworld_env.CAMERAS.values()},
        codec="h264",
        gop=KEYFRAME_INTERVAL,
        tasks=[metaworld_env.task(t).instruction for t in config.tasks],
        overwrite=config.overwrite,
    ) as writer:
        for task_index, task_name in enumerate(config.tasks):
            env = metaworld_env.MetaWorldEnv(task_name, image_size=config.image_size, max_steps=config.max_steps)
            seeds, failed = iter(data_seeds(config, task_index)), []
            try:
                for _ in range(config.episodes_per_task):
                    episode = None
                    while episode is None:
                        seed = next(seeds)
                        episode = record_episode(env, task_name, seed)
                        if episode is None:
                            failed.append(seed)
                    episode_index = writer.add_episode(
                        columns={STATE_KEY: episode["state"], ACTION_KEY: episode["action"]},
                        videos={image_key(c): episode[c] for c in metaworld_env.CAMERAS.values()},
                        task=metaworld_env.task(task_name).instruction,
                    )
                    layouts.append({"episode_index": episode_index, "task": task_name, "layout_seed": seed})
                    bar.update()
            finally:
                env.close()
            layouts.extend({"task": task_name, "failed_layout_seed": s} for s in failed)
    bar.close()
    config_json = {k: str(v) if isinstance(v, pathlib.Path) else v for k, v in dataclasses.asdict(config).items()}
    lerobot_writer.write_json(root / LAYOUTS_FILE, {"config": config_json, "episodes": layouts})
    return root


def read_config(root: pathlib.Path | str) -> SimDatasetConfig:
    """The config a simulator dataset was written with (from its layouts file)."""
    path = pathlib.Path(root).expanduser() / LAYOUTS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: {root} was not written by openpi.sim.dataset.")
    fields = json.loads(path.read_text())["config"]
    return SimDatasetConfig(**{**fields, "root": pathlib.Path(fields["root"]), "tasks": tuple(fields["tasks"])})


def main(config: SimDatasetConfig) -> None:
    root = write_dataset(config)
    info = json.loads((root / "meta/info.json").read_text())
    print(f"Wrote {info['total_episodes']} expert episodes / {info['total_frames']} frames to {root}.")


if __name__ == "__main__":
    main(tyro.cli(SimDatasetConfig, description=__doc__.split("\n\n")[0]))

