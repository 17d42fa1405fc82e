"""Scripted-expert demonstrations of the mobile tasks (openpi.sim.mobile_env), written as a LeRobot v2.1
dataset through the project's writer (openpi.datasets.lerobot_writer).

Per frame: ``observation.state`` (18), ``action`` (11: base velocity, arm joint positions, gripper), the
``observation.images.head`` and ``observation.images.wrist`` videos and the task instruction, at the
simulator's control rate. Layout seeds follow openpi.sim.dataset: ``seed * 100_000 + task_index * 10_000 + k``
for demonstrations, ``+ 5_000 + k`` for the navigation-only episodes; evaluation layouts start at
``EVAL_SEED_START``, so they never overlap. A layout the expert fails is skipped and listed in
``meta/sim_layouts.json``, which also records every episode's layout seed and how many of its frames drive
the base. The dataset is a pure function of the config.

The navigation-mixture knob ``navigation_episodes_per_task`` adds episodes that end when the base reaches its
pre-grasp pose (driving only, the same instruction), to push the data toward BEHAVIOR-1K's navigation-heavy
regime.

    python -m openpi.sim.mobile_dataset --root ~/.cache/openpi/mobile_demos --episodes-per-task 40
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np
import tqdm
import tyro

from openpi.datasets import lerobot_writer
from openpi.sim import dataset as _dataset
from openpi.sim import mobile_env
from openpi.sim import mobile_expert

EVAL_SEED_START = _dataset.EVAL_SEED_START
LAYOUTS_FILE = _dataset.LAYOUTS_FILE
NAVIGATION_SEED_OFFSET = 5_000
STATE_KEY, ACTION_KEY = "observation.state", "action"
# Every frame a keyframe, as in the Meta-World dataset: training reads random frames.
KEYFRAME_INTERVAL = 1


def image_key(camera: str) -> str:
    return f"observation.images.{camera}"


@dataclasses.dataclass(frozen=True)
class MobileDatasetConfig:
    """Options of the mobile demonstration dataset."""

    root: pathlib.Path
    """Where to write the dataset (its root, holding meta/, data/, videos/)."""
    tasks: tuple[str, ...] = mobile_env.DEFAULT_TASKS
    """Mobile tasks (see openpi.sim.mobile_env.TASKS)."""
    episodes_per_task: int = 20
    """Full demonstrations (drive, then manipulate) per task."""
    navigation_episodes_per_task: int = 0
    """Extra driving-only episodes per task (they end at the pre-grasp pose): the navigation-mixture knob."""
    image_size: int = 64
    max_steps: int = 200
    """Step limit of an expert episode (the experts finish in ~55-80 steps)."""
    seed: int = 0
    """Selects the layout seeds (see the module docstring)."""
    overwrite: bool = False
    """Replace a non-empty root."""

    def __post_init__(self):
        for name in self.tasks:
            mobile_env.task(name)
        if self.episodes_per_task < 1 or self.navigation_episodes_per_task < 0:
            raise ValueError("episodes_per_task must be >= 1 and navigation_episodes_per_task >= 0, got "
                             f"{self.episodes_per_task} and {self.navigation_episodes_per_task}.")
        if max(self.episodes_per_task, self.navigation_episodes_per_task) > NAVIGATION_SEED_OFFSET // 2:
            raise ValueError(f"At most {NAVIGATION_SEED_OFFSET // 2} episodes of each kind per task.")
        if self.image_size < 16 or self.image_size % 2:
            raise ValueError(f"image_size must be even and >= 16, got {self.image_size}.")
        if self.seed * 100_000 + len(self.tasks) * 10_000 >= EVAL_SEED_START:
            raise ValueError(f"seed={self.seed} would reach the evaluation layouts (from {EVAL_SEED_START}).")


def data_seeds(config: MobileDatasetConfig, task_index: int, navigation: bool = False) -> range:
    """The candidate layout seeds of a task's demonstrations (or navigation-only episodes), in order."""
    start = config.seed * 100_000 + task_index * 10_000 + (NAVIGATION_SEED_OFFSET if navigation else 0)
    return range(start, start + NAVIGATION_SEED_OFFSET)


def record_episode(env: mobile_env.MobileEnv, expert: mobile_expert.Expert, seed: int,
                   navigation_only: bool = False) -> dict | None:
    """The expert's episode on layout ``seed``: state, action and camera frames per step, and the number of
    driving frames; None if it fails (the task, or for ``navigation_only`` reaching the pre-grasp pose)."""
    obs = env.reset(seed)
    expert.reset()
    states, actions, images, driving = [], [], {}, 0
    done, success = False, False
    while not done:
        action = expert.act(obs)
        if navigation_only and expert.phase != "navigate":
            success = env.navigated  # the expert hands over at its pre-grasp pose (or when it ran out of time)
            break
        driving += expert.phase == "navigate"
        states.append(obs["state"])
        actions.append(np.array(action, dtype=np.float32))  # a copy: nothing downstream may alias it
        for key, image in obs["images"].items():
            images.setdefault(key, []).append(image)
        obs, success, done = env.step(action)
    if not success or not actions:
        return None
    return {"state": np.stack(states), "action": np.stack(actions), "driving_frames": driving,
            "images": {k: np.stack(v) for k, v in images.items()}}


def write_dataset(config: MobileDatasetConfig, progress: bool = True) -> pathlib.Path:
    """Records each task's expert demonstrations, then its navigation-only episodes; returns the dataset root."""
    size = (config.image_size, config.image_size)
    writer = lerobot_writer.LeRobotWriter(
        config.root, version="v2.1", fps=mobile_env.CONTROL_FREQ, robot_type="panda_omron",
        features={STATE_KEY: mobile_env.STATE_DIM, ACTION_KEY: mobile_env.ACTION_DIM},
        videos={image_key(camera): size for camera in mobile_env.CAMERAS}, codec="h264", gop=KEYFRAME_INTERVAL,
        tasks=[mobile_env.task(name).instruction for name in config.tasks], overwrite=config.overwrite,
    )
    layouts = []
    total = len(config.tasks) * (config.episodes_per_task + config.navigation_episodes_per_task)
    bar = tqdm.tqdm(total=total, desc="Expert demos", disable=not progress)
    with writer:
        for task_index, task_name in enumerate(config.tasks):
            env = mobile_env.MobileEnv(task_name, image_size=config.image_size, max_steps=config.max_steps)
            expert = mobile_expert.Expert(env)
            try:
                for navigation_only, count in ((False, config.episodes_per_task),
                                               (True, config.navigation_episodes_per_task)):
                    seeds, failed = iter(data_seeds(config, task_index, navigation_only)), []
                    for _ in range(count):
                        episode = None
                        while episode is None:
                            seed = next(seeds)
                            episode = record_episode(env, expert, seed, navigation_only)
                            if episode is None:
                                failed.append(seed)
                        index = writer.add_episode(
                            columns={STATE_KEY: episode["state"], ACTION_KEY: episode["action"]},
                            videos={image_key(k): v for k, v in episode["images"].items()},
                            task=env.task.instruction,
                        )
                        layouts.append({"episode_index": index, "task": task_name, "layout_seed": seed,
                                        "navigation_only": navigation_only, "length": len(episode["action"]),
                                        "driving_frames": episode["driving_frames"]})
                        bar.update()
                    layouts.extend({"task": task_name, "failed_layout_seed": s, "navigation_only": navigation_only}
                                   for s in failed)
            finally:
                env.close()
    bar.close()
    config_json = {k: str(v) if isinstance(v, pathlib.Path) else v for k, v in dataclasses.asdict(config).items()}
    lerobot_writer.write_json(writer.root / LAYOUTS_FILE, {"config": config_json, "episodes": layouts})
    return writer.root


def read_config(root: pathlib.Path | str) -> MobileDatasetConfig:
    """The config a mobile dataset was written with (from its layouts file)."""
    path = pathlib.Path(root).expanduser() / LAYOUTS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: {root} was not written by openpi.sim.mobile_dataset.")
    fields = json.loads(path.read_text())["config"]
    return MobileDatasetConfig(**{**fields, "root": pathlib.Path(fields["root"]), "tasks": tuple(fields["tasks"])})


def main(config: MobileDatasetConfig) -> None:
    root = write_dataset(config)
    info = json.loads((root / "meta/info.json").read_text())
    episodes = json.loads((root / LAYOUTS_FILE).read_text())["episodes"]
    driving = sum(e.get("driving_frames", 0) for e in episodes)
    print(f"Wrote {info['total_episodes']} expert episodes / {info['total_frames']} frames to {root} "
          f"({driving / info['total_frames']:.0%} of the frames drive the base).")


if __name__ == "__main__":
    main(tyro.cli(MobileDatasetConfig, description=__doc__.split("\n\n")[0]))
