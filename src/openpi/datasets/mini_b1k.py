"""Miniature BEHAVIOR-1K (R1Pro) dataset in the real on-disk layout, deterministic from a seed.

Draws each episode (`mini_b1k_episode`: actions, proprio, images) and hands it to `lerobot_writer` in B1K's
style. Writes what a B1K reader meets on disk: ``meta/info.json`` with B1K's path templates (v2.1) or LeRobot's
(v3.0), tasks / episodes / episodes_stats, parquet with every B1K column, one mp4 per rgb camera and skill
annotations under ``annotations/task-XXXX/``. It is the fixture for tests, the demo's embedded dataset and,
without video, a large benchmark dataset written in seconds.

Assumptions (what is modelled, what is not):
- Episode index = task_index × 10000 + local id with sparse local ids (10, 20, ...); v2.1 chunk = task.
- Each episode alternates navigation and manipulation segments, starting with navigation. Navigation: smooth
  base command bumps with peaks of 0.35–0.75 in [-1, 1] (vy at half that), arms and grippers still.
  Manipulation: base 0, the active arm(s) move smoothly with a peak speed of 0.01–0.3 rad per 50-frame
  chunk per joint, grippers switch between +1 (open) and −1 (closed). Torso joints are constant per
  episode near B1K's means (0.93, −1.28, −0.50) and dim 6 is exactly 0.
- Planted structure: a seeded choice of ``arm_heavy_fraction`` of the episodes spend
  ``arm_heavy_share`` of their frames in manipulation, the rest ``navigation_heavy_share``; the ground
  truth goes to ``mini_b1k_ground_truth.json`` at the root (see `GROUND_TRUTH_FILE`). Without the planted
  structure every episode draws its manipulation share uniformly from [0.3, 0.7] (label ``mixed``).
- Proprio (256) follows the actions with a one-step lag: arm/trunk qpos[t] = action[t−1], base_qvel[t] =
  base command[t−1] (1 command unit = 1 m/s or rad/s), each finger moves 0.005 m per frame towards its
  target (open: 0.05 per finger, closed: 0.0), so a gripper width (sum of both fingers) spans 0–0.1 m.
  The documented slices (``openpi.policies.r1pro``) are filled consistently; the base pose integrates the base velocity;
  end-effector poses come from a simple made-up forward kinematics; undocumented slices hold the arm /
  trunk / gripper velocities and sin/cos where the layout suggests them.
- Images encode the robot state so a policy can learn from them: the head camera shows 14 bars whose
  heights follow the arm joints and two gripper squares (green open, red closed, size ∝ width) over a
  task-coloured background that scrolls with the base pose; each wrist camera shows its arm's 7 joints as
  bar lengths and its gripper as a central square; a 3×3 blur softens edges so that yuv420p keeps a decoded
  frame within ~32 dB PSNR of its source. Depth and segmentation videos are not written.
- ``edition="2026"`` (v3.0 only): ``observation.state`` is the 2026 edition's 61-dim proprio
  (``r1pro.PROPRIO_2026``): the same quantities picked from the 256-dim one, the base velocity robot-local.
- ``observation.task_info`` has a fixed length (12) here; in the real data the length varies by task.
- v3.0: LeRobot's layout (``data/chunk-000/file-XXX.parquet``, ``videos/<key>/chunk-000/file-XXX.mp4``,
  ``meta/episodes/``, ``meta/tasks.parquet``, ``meta/stats.json``) with ``episodes_per_file`` episodes per
  file, a global ``index`` plus ``frame_index``; per-episode ``stats/*`` columns are not written.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from typing import Literal

import numpy as np
import tqdm
import tyro

from openpi.datasets import lerobot_writer
from openpi.datasets import mini_b1k_episode as _episode
from openpi.datasets.mini_b1k_episode import CAMERAS
from openpi.datasets.mini_b1k_episode import CHUNK  # noqa: F401  (re-exported: the unit of the arm speed bounds)
from openpi.datasets.mini_b1k_episode import Segment
from openpi.policies import r1pro
from openpi.shared import cli

GROUND_TRUTH_FILE = "mini_b1k_ground_truth.json"
CAM_POSE_DIM, TASK_INFO_DIM = 21, 12
# B1K 2025's path templates: the chunk is the task (episode_index // 10000).
B1K_DATA_PATH = "data/task-{episode_chunk:04d}/episode_{episode_index:08d}.parquet"
B1K_VIDEO_PATH = "videos/task-{episode_chunk:04d}/{video_key}/episode_{episode_index:08d}.mp4"

TASKS = [
    ("turning_on_radio", "Turn on the radio receiver that's on the table in the living room."),
    ("picking_up_trash", "Pick up all the trash from the floor and put it in the trash can."),
    ("putting_away_toys", "Put the toys on the floor into the toy box."),
    ("setting_the_table", "Set the dining table with plates and cups from the kitchen cabinet."),
    ("washing_dishes", "Put the dirty dishes from the counter into the sink."),
    ("opening_the_fridge", "Open the fridge door in the kitchen."),
    ("watering_plants", "Water the plants on the windowsill with the watering can."),
    ("folding_laundry", "Fold the towels on the bed and stack them on the shelf."),
]
MANIPULATION_SKILLS = ("pick up from", "place on", "open", "close", "turn on")


@dataclasses.dataclass(frozen=True)
class MiniB1KConfig:
    """Options of the miniature B1K dataset."""

    root: pathlib.Path
    """Where to write the dataset (its root, holding meta/, data/, videos/, annotations/)."""
    num_tasks: int = 2
    """Tasks (episode chunks); task strings cycle through 8 household tasks."""
    episodes_per_task: int = 3
    """Episodes per task; episode index = task × 10000 + 10, 20, ..."""
    frames_per_episode: int = 150
    """Mean episode length; lengths vary uniformly by ±length_jitter around it."""
    length_jitter: float = 0.2
    """Relative spread of the episode lengths (0 for equal lengths)."""
    planted_structure: bool = True
    """Mark some episodes arm-heavy and the others navigation-heavy (ground truth in the side file)."""
    arm_heavy_fraction: float = 0.5
    """Fraction of the episodes planted as arm-heavy (a seeded choice)."""
    arm_heavy_share: float = 0.8
    """Fraction of an arm-heavy episode's frames spent in manipulation."""
    navigation_heavy_share: float = 0.2
    """Fraction of a navigation-heavy episode's frames spent in manipulation."""
    image_size: int = 64
    """Side of the square camera images (even, at least 16)."""
    video: bool = True
    """Write mp4 for the three rgb cameras; off for big statistics benchmarks."""
    codec: Literal["hevc", "av1", "h264"] = "hevc"
    """Video codec: hevc like B1K, av1 like LeRobot's default, or h264."""
    gop: int = 30
    """Keyframe interval in frames (B1K uses 250)."""
    version: Literal["v2.1", "v3.0"] = "v2.1"
    """LeRobot layout: v2.1 (B1K 2025) or v3.0 (B1K 2026, LeRobot's current)."""
    edition: Literal["2025", "2026"] = "2025"
    """BEHAVIOR challenge edition: its proprio (`observation.state`), 256-dim (2025) or 61-dim (2026, needs
    --version v3.0)."""
    episodes_per_file: int = 4
    """v3.0 only: episodes per parquet / mp4 file."""
    fps: int = 30
    seed: int = 0
    overwrite: bool = False
    """Replace a non-empty root."""

    def __post_init__(self):
        if self.edition == "2026" and self.version != "v3.0":
            raise ValueError("The 2026 edition's dataset is LeRobot v3.0: pass --version v3.0 with --edition 2026.")
        if min(self.num_tasks, self.episodes_per_task, self.episodes_per_file, self.fps, self.gop) < 1:
            raise ValueError("num_tasks, episodes_per_task, episodes_per_file, fps and gop must be at least 1.")
        if self.frames_per_episode < 4:
            raise ValueError(f"frames_per_episode must be at least 4, got {self.frames_per_episode}.")
        if self.image_size < 16 or self.image_size % 2:
            raise ValueError(f"image_size must be even and at least 16 (yuv420p video), got {self.image_size}.")
        for name in ("length_jitter", "arm_heavy_fraction", "arm_heavy_share", "navigation_heavy_share"):
            if not 0.0 <= getattr(self, name) <= 1.0 or (name == "length_jitter" and self.length_jitter >= 1.0):
                raise ValueError(f"{name} must be in [0, 1] (length_jitter below 1), got {getattr(self, name)}.")


@dataclasses.dataclass(frozen=True)
class Episode:
    """One generated episode: parquet columns, camera frames (when video is on) and its segments."""

    episode_index: int
    task_index: int
    label: str
    segments: tuple[Segment, ...]
    action: np.ndarray  # float32[T, 23]
    state: np.ndarray  # float32[T, 256] (2025 edition) or [T, 61] (2026)
    cam_rel_poses: np.ndarray  # float32[T, 21]
    task_info: np.ndarray  # float32[T, 12]
    images: dict[str, np.ndarray]  # camera -> uint8[T, S, S, 3]

    @property
    def length(self) -> int:
        return len(self.action)

    @property
    def manipulation_fraction(self) -> float:
        return sum(s.end - s.start for s in self.segments if s.skill_type == "manipulation") / self.length


def episode_indices(config: MiniB1KConfig) -> list[int]:
    return [
        task * r1pro.EPISODES_PER_TASK + 10 * (j + 1)
        for task in range(config.num_tasks)
        for j in range(config.episodes_per_task)
    ]


def planted_labels(config: MiniB1KConfig) -> dict[int, str]:
    """Episode → 'arm_heavy' / 'navigation_heavy' (planted) or 'mixed'."""
    episodes = episode_indices(config)
    if not config.planted_structure:
        return dict.fromkeys(episodes, "mixed")
    order = np.random.default_rng([config.seed, 1]).permutation(len(episodes))
    num_arm = round(config.arm_heavy_fraction * len(episodes))
    arm = {episodes[i] for i in order[:num_arm]}
    return {e: "arm_heavy" if e in arm else "navigation_heavy" for e in episodes}


def generate_episode(config: MiniB1KConfig, episode_index: int, label: str | None = None) -> Episode:
    """The episode's arrays, a pure function of (seed, episode index, config)."""
    label = label or planted_labels(config)[episode_index]
    rng = np.random.default_rng([config.seed, 2, episode_index])
    jitter = rng.uniform(-config.length_jitter, config.length_jitter)
    length = max(4, round(config.frames_per_episode * (1 + jitter)))
    share = {"arm_heavy": config.arm_heavy_share, "navigation_heavy": config.navigation_heavy_share}.get(
        label, rng.uniform(0.3, 0.7)
    )
    segments = _episode.draw_segments(rng, length, share)
    action = _episode.draw_actions(rng, segments, length)
    state, cams = _episode.proprio_from_actions(action, config.fps)
    task_index = episode_index // r1pro.EPISODES_PER_TASK
    task_info = np.tile(rng.normal(size=TASK_INFO_DIM), (length, 1))
    pose = r1pro.PROPRIO_ROBOT_POS_ORI.start
    task_info[:, :2] -= state[:, pose : pose + 2]  # object position relative to the robot
    images = _episode.render(state, task_index, config.image_size) if config.video else {}
    if config.edition == "2026":
        state = _episode.proprio_2026(state)
    return Episode(
        episode_index=episode_index,
        task_index=task_index,
        label=label,
        segments=segments,
        action=action.astype(np.float32),
        state=state.astype(np.float32),
        cam_rel_poses=cams.astype(np.float32),
        task_info=task_info.astype(np.float32),
        images=images,
    )


def _annotation(episode: Episode, rng: np.random.Generator) -> dict:
    skills = []
    for seg in episode.segments:
        if seg.skill_type == "navigation":
            kind, description = "navigation", "move to"
        else:
            kind = description = str(rng.choice(MANIPULATION_SKILLS))
        skills.append(
            {
                "skill_description": description,
                "skill_type": kind,
                "frame_duration": [seg.start, seg.end],
                "object_id": f"object_{rng.integers(100)}",
                "manipulating_object_id": "" if kind == "navigation" else f"object_{rng.integers(100)}",
            }
        )
    return {"task_name": TASKS[episode.task_index % len(TASKS)][0], "skill_annotation": skills}


def _task_text(task_index: int) -> tuple[str, str]:
    name, text = TASKS[task_index % len(TASKS)]
    if task_index >= len(TASKS):
        name, text = f"{name}_{task_index}", f"{text} (variant {task_index})"
    return name, text


def _writer(config: MiniB1KConfig) -> lerobot_writer.LeRobotWriter:
    """B1K's files: its column order and index conventions, and in v2.1 its path templates (chunk = task)."""
    tasks = [_task_text(t) for t in range(config.num_tasks)]
    v2 = config.version == "v2.1"
    return lerobot_writer.LeRobotWriter(
        config.root,
        version=config.version,
        fps=config.fps,
        robot_type="R1Pro",
        features={
            "action": r1pro.R1PRO_ACTION_DIM,
            "observation.state": r1pro.PROPRIO_2026_DIM if config.edition == "2026" else r1pro.PROPRIO_DIM,
            "observation.cam_rel_poses": CAM_POSE_DIM,
            "observation.task_info": TASK_INFO_DIM,
        },
        videos={video_key(cam): (config.image_size, config.image_size) for cam in CAMERAS} if config.video else None,
        codec=config.codec,
        gop=config.gop,
        style="b1k",
        chunks_size=r1pro.EPISODES_PER_TASK if v2 else 1000,
        data_path=B1K_DATA_PATH if v2 else None,
        video_path=B1K_VIDEO_PATH if v2 else None,
        episodes_per_file=config.episodes_per_file,
        tasks=[text for _, text in tasks],
        task_names={text: name for name, text in tasks},
        overwrite=config.overwrite,
    )


def video_key(camera: str) -> str:
    return f"observation.images.rgb.{camera}"


def write_mini_b1k(config: MiniB1KConfig, progress: bool = True) -> pathlib.Path:
    """Writes the dataset and returns its root."""
    root = pathlib.Path(config.root)
    labels = planted_labels(config)
    ann_rng = np.random.default_rng([config.seed, 3])
    truth = {}
    with _writer(config) as writer:
        indices = episode_indices(config)
        for episode_index in tqdm.tqdm(indices, desc="Writing mini B1K", unit="episode", disable=not progress):
            episode = generate_episode(config, episode_index, labels[episode_index])
            writer.add_episode(
                columns={
                    "action": episode.action,
                    "observation.state": episode.state,
                    "observation.cam_rel_poses": episode.cam_rel_poses,
                    "observation.task_info": episode.task_info,
                },
                videos={video_key(cam): frames for cam, frames in episode.images.items()},
                task=_task_text(episode.task_index)[1],
                episode_index=episode_index,
            )
            lerobot_writer.write_json(
                root / f"annotations/task-{episode.task_index:04d}/episode_{episode_index:08d}.json",
                _annotation(episode, ann_rng),
            )
            truth[str(episode_index)] = {
                "label": episode.label,
                "task_index": episode.task_index,
                "length": episode.length,
                "manipulation_fraction": episode.manipulation_fraction,
                "segments": [dataclasses.asdict(s) for s in episode.segments],
            }
    lerobot_writer.write_json(
        root / GROUND_TRUTH_FILE,
        {
            "generator": "openpi.datasets.mini_b1k",
            "config": {k: str(v) if isinstance(v, pathlib.Path) else v for k, v in dataclasses.asdict(config).items()},
            "arm_heavy_episodes": sorted(e for e, lab in labels.items() if lab == "arm_heavy"),
            "navigation_heavy_episodes": sorted(e for e, lab in labels.items() if lab == "navigation_heavy"),
            "episodes": truth,
        },
    )
    return root


def read_config(root: pathlib.Path | str) -> MiniB1KConfig:
    """The config a miniature dataset was written with (from its ground-truth file), to regenerate episodes."""
    path = pathlib.Path(root) / GROUND_TRUTH_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: {root} was not written by openpi.datasets.mini_b1k.")
    fields = json.loads(path.read_text())["config"]
    return MiniB1KConfig(**{**fields, "root": pathlib.Path(fields["root"])})


def main(config: MiniB1KConfig) -> None:
    start = time.perf_counter()
    root = write_mini_b1k(config)
    info = json.loads((root / "meta/info.json").read_text())
    print(
        f"Wrote {info['total_episodes']} episodes / {info['total_frames']} frames ({config.version}, "
        f"video {'on' if config.video else 'off'}) to {root} in {time.perf_counter() - start:.1f}s; "
        f"ground truth in {root / GROUND_TRUTH_FILE}."
    )


if __name__ == "__main__":
    cli.run_main(lambda: main(tyro.cli(MiniB1KConfig, description=__doc__.split("\n\n")[0])))
