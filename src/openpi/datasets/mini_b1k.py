"""Miniature BEHAVIOR-1K (R1Pro) dataset in the real on-disk layout, deterministic from a seed.

Writes what a B1K reader meets on disk: ``meta/info.json`` with B1K's path templates (v2.1) or LeRobot's
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
- ``observation.task_info`` has a fixed length (12) here; in the real data the length varies by task.
- v3.0: LeRobot's layout (``data/chunk-000/file-XXX.parquet``, ``videos/<key>/chunk-000/file-XXX.mp4``,
  ``meta/episodes/``, ``meta/tasks.parquet``, ``meta/stats.json``) with ``episodes_per_file`` episodes per
  file, a global ``index`` plus ``frame_index``; per-episode ``stats/*`` columns are not written.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil
import time
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import tqdm
import tyro

from openpi.datasets import video as _video
from openpi.policies import r1pro
from openpi.shared import cli

GROUND_TRUTH_FILE = "mini_b1k_ground_truth.json"
CAMERAS = ("head", "left_wrist", "right_wrist")
CAM_POSE_DIM, TASK_INFO_DIM = 21, 12
CHUNK = 50  # frames per action chunk, the unit of the arm speed bounds
TRUNK_MEAN = np.array([0.93, -1.28, -0.50, 0.0])
ARM_REST = np.array([0.0, 1.2, 0.0, -1.6, 0.0, -0.4, 0.0])
FINGER_OPEN, FINGER_SPEED = 0.05, 0.005
# R1Pro's action layout as slices; grippers as (left, right) dims.
BASE, TRUNK = slice(*r1pro.BASE), slice(*r1pro.TRUNK)
LEFT_ARM, RIGHT_ARM = slice(*r1pro.LEFT_ARM), slice(*r1pro.RIGHT_ARM)
GRIPPERS = r1pro.LEFT_GRIPPER + r1pro.RIGHT_GRIPPER

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
    episodes_per_file: int = 4
    """v3.0 only: episodes per parquet / mp4 file."""
    fps: int = 30
    seed: int = 0
    overwrite: bool = False
    """Replace a non-empty root."""

    def __post_init__(self):
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
class Segment:
    skill_type: Literal["navigation", "manipulation"]
    start: int
    end: int  # exclusive


@dataclasses.dataclass(frozen=True)
class Episode:
    """One generated episode: parquet columns, camera frames (when video is on) and its segments."""

    episode_index: int
    task_index: int
    label: str
    segments: tuple[Segment, ...]
    action: np.ndarray  # float32[T, 23]
    state: np.ndarray  # float32[T, 256]
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


def _segments(rng: np.random.Generator, length: int, manipulation_share: float) -> tuple[Segment, ...]:
    count = int(np.clip(length // 60, 2, 6))
    kinds = ["navigation" if i % 2 == 0 else "manipulation" for i in range(count)]
    manipulation = round(manipulation_share * length)
    totals = {"manipulation": manipulation, "navigation": length - manipulation}
    durations = []
    for kind in ("navigation", "manipulation"):
        idx = [i for i, k in enumerate(kinds) if k == kind]
        split = rng.dirichlet(np.full(len(idx), 4.0)) * totals[kind]
        parts = np.diff(np.round(np.concatenate([[0], np.cumsum(split)])).astype(int))
        durations.extend(zip(idx, parts))
    lengths = [d for _, d in sorted(durations)]
    out, start = [], 0
    for kind, n in zip(kinds, lengths):
        if n > 0:
            out.append(Segment(kind, start, start + int(n)))
            start += int(n)
    return tuple(out)


def _bump(n: int) -> np.ndarray:
    """Smooth 0 → 1 → 0 over n frames."""
    return np.sin(np.pi * (np.arange(n) + 0.5) / n) ** 2


def _actions(rng: np.random.Generator, segments: tuple[Segment, ...], length: int) -> np.ndarray:
    action = np.zeros((length, r1pro.R1PRO_ACTION_DIM))
    action[:, TRUNK] = TRUNK_MEAN + np.r_[rng.uniform(-0.05, 0.05, 3), 0.0]
    arms = np.tile(ARM_REST, 2) + rng.uniform(-0.2, 0.2, 14)
    grippers = rng.choice([-1.0, 1.0], 2, p=[0.3, 0.7])
    for seg in segments:
        n = seg.end - seg.start
        rows = slice(seg.start, seg.end)
        if seg.skill_type == "navigation":
            for sub_start, sub_n in ((0, n // 2), (n // 2, n - n // 2)):
                peak = rng.uniform(0.35, 0.75, 3) * rng.choice([-1.0, 1.0], 3) * np.array([1.0, 0.5, 1.0])
                action[seg.start + sub_start : seg.start + sub_start + sub_n, BASE] = _bump(sub_n)[:, None] * peak
            action[rows, LEFT_ARM], action[rows, RIGHT_ARM] = arms[:7], arms[7:]
            action[rows, GRIPPERS] = grippers
            continue
        active = [[0], [1], [0, 1]][rng.integers(3)]
        motion = np.zeros((n, 14))
        tau = (np.arange(n) + 0.5) / n
        for side in active:
            peak_speed = rng.uniform(0.01, 0.3, 7) / CHUNK  # rad per frame
            cycles = rng.integers(1, 3, 7)
            phase = rng.uniform(0, 2 * np.pi, 7)
            speed = peak_speed * np.sin(2 * np.pi * cycles * tau[:, None] + phase) * np.sin(np.pi * tau)[:, None]
            motion[:, 7 * side : 7 * side + 7] = np.cumsum(speed, axis=0)
        joints = arms + motion
        action[rows, LEFT_ARM], action[rows, RIGHT_ARM] = joints[:, :7], joints[:, 7:]
        arms = joints[-1]
        gripper = np.repeat(grippers[None], n, axis=0)
        for side in active:
            switches = np.sort(rng.uniform(0.15, 0.85, 2)) * n
            state = grippers[side]
            for k, boundary in enumerate([*switches.astype(int), n]):
                begin = 0 if k == 0 else int(switches[k - 1])
                gripper[begin:boundary, side] = state
                state = -state
            grippers[side] = gripper[-1, side]
        action[rows, GRIPPERS] = gripper
    return action


def _fake_eef(arm: np.ndarray, side: float) -> np.ndarray:
    """[T, 7] pos + unit quaternion from 7 joints: a made-up smooth forward kinematics."""
    pos = np.stack(
        [
            0.45 + 0.15 * np.sin(arm[:, 1] + arm[:, 3]),
            side * 0.25 + 0.15 * np.sin(arm[:, 0] + arm[:, 2]),
            1.0 + 0.2 * np.cos(arm[:, 3] + arm[:, 5]),
        ],
        axis=1,
    )
    half = 0.5 * np.stack([arm[:, 4], arm[:, 5], arm[:, 6]], axis=1)
    quat = np.concatenate([np.cos(half.sum(1, keepdims=True)), np.sin(half)], axis=1)
    return np.concatenate([pos, quat / np.linalg.norm(quat, axis=1, keepdims=True)], axis=1)


def _proprio(action: np.ndarray, fps: int) -> tuple[np.ndarray, np.ndarray]:
    """(state[T, 256], cam_rel_poses[T, 21]) consistent with the actions (one-step lag)."""
    length = len(action)
    lagged = np.concatenate([action[:1], action[:-1]])
    lagged[0, BASE] = 0.0  # the robot starts at rest
    dt = 1.0 / fps
    fingers = np.zeros((length, 2))
    width = np.where(lagged[0, GRIPPERS] > 0, FINGER_OPEN, 0.0)
    for t in range(length):
        target = np.where(lagged[t, GRIPPERS] > 0, FINGER_OPEN, 0.0)
        width = width + np.clip(target - width, -FINGER_SPEED, FINGER_SPEED)
        fingers[t] = width
    base_vel = lagged[:, BASE]
    yaw = np.cumsum(base_vel[:, 2]) * dt
    world_v = np.stack(
        [
            base_vel[:, 0] * np.cos(yaw) - base_vel[:, 1] * np.sin(yaw),
            base_vel[:, 0] * np.sin(yaw) + base_vel[:, 1] * np.cos(yaw),
        ],
        axis=1,
    )
    xy = np.cumsum(world_v, axis=0) * dt
    trunk, left, right = lagged[:, TRUNK], lagged[:, LEFT_ARM], lagged[:, RIGHT_ARM]
    finger_pairs = [fingers[:, :1], fingers[:, :1], fingers[:, 1:], fingers[:, 1:]]
    zeros = np.zeros((length, 1))
    joint_qpos = np.concatenate([xy, zeros, zeros, zeros, yaw[:, None], trunk, left, right, *finger_pairs], axis=1)
    joint_qvel = np.gradient(joint_qpos, dt, axis=0) if length > 1 else np.zeros_like(joint_qpos)
    state = np.zeros((length, r1pro.PROPRIO_DIM))
    state[:, r1pro.PROPRIO_JOINT_QPOS] = joint_qpos
    state[:, r1pro.PROPRIO_JOINT_QPOS_SIN] = np.sin(joint_qpos)
    state[:, r1pro.PROPRIO_JOINT_QPOS_COS] = np.cos(joint_qpos)
    state[:, r1pro.PROPRIO_JOINT_QVEL] = joint_qvel
    effort = 0.05 * (np.gradient(joint_qvel, dt, axis=0) if length > 1 else joint_qvel)  # ∝ acceleration
    state[:, r1pro.PROPRIO_JOINT_QEFFORT] = effort
    pose, vel = r1pro.PROPRIO_ROBOT_POS_ORI.start, r1pro.PROPRIO_ROBOT_VEL.start  # pos, quat; linear, angular
    state[:, pose : pose + 3] = np.concatenate([xy, zeros], axis=1)
    state[:, pose + 3 : pose + 7] = np.stack([np.cos(yaw / 2), 0 * yaw, 0 * yaw, np.sin(yaw / 2)], axis=1)
    state[:, vel : vel + 2], state[:, vel + 5] = world_v, base_vel[:, 2]
    arms = (
        (left, r1pro.PROPRIO_ARM_LEFT_QPOS, r1pro.PROPRIO_EEF_LEFT, 1.0),
        (right, r1pro.PROPRIO_ARM_RIGHT_QPOS, r1pro.PROPRIO_EEF_RIGHT, -1.0),
    )
    for arm, qpos, eef, side in arms:
        start = qpos.start  # then sin, cos and velocity of the 7 joints, up to the end effector
        state[:, qpos] = arm
        state[:, start + 7 : start + 14], state[:, start + 14 : start + 21] = np.sin(arm), np.cos(arm)
        state[:, start + 21 : start + 28] = np.gradient(arm, dt, axis=0) if length > 1 else 0.0
        state[:, eef] = _fake_eef(arm, side)
    left_fingers, right_fingers = r1pro.PROPRIO_GRIPPER_LEFT_QPOS, r1pro.PROPRIO_GRIPPER_RIGHT_QPOS
    state[:, left_fingers] = fingers[:, :1]
    state[:, right_fingers] = fingers[:, 1:]
    state[:, left_fingers.stop : left_fingers.stop + 2] = joint_qvel[:, 24:26]  # finger velocities
    state[:, right_fingers.stop : right_fingers.stop + 2] = joint_qvel[:, 26:28]
    trunk_qpos = r1pro.PROPRIO_TRUNK_QPOS
    state[:, trunk_qpos] = trunk
    state[:, trunk_qpos.stop : trunk_qpos.stop + 4] = joint_qvel[:, 6:10]  # trunk velocities
    base_qpos = np.concatenate([xy, yaw[:, None]], axis=1)
    state[:, r1pro.PROPRIO_BASE_QPOS] = np.concatenate([base_qpos, np.sin(base_qpos), np.cos(base_qpos)], axis=1)
    state[:, r1pro.PROPRIO_BASE_QVEL] = base_vel
    head = np.tile([0.1, 0.0, 1.6, 1.0, 0.0, 0.0, 0.0], (length, 1))
    cams = np.concatenate([head, state[:, r1pro.PROPRIO_EEF_LEFT], state[:, r1pro.PROPRIO_EEF_RIGHT]], axis=1)
    return state, cams


def _render(state: np.ndarray, task_index: int, size: int) -> dict[str, np.ndarray]:
    """uint8 [T, S, S, 3] per camera; bars and squares encode the arm joints and gripper widths."""
    length = len(state)
    ys = np.arange(size)[None, :, None]
    xs = np.arange(size)[None, None, :]
    tint = np.array(np.random.default_rng(task_index).uniform(40, 110, 3))
    left, right = state[:, r1pro.PROPRIO_ARM_LEFT_QPOS], state[:, r1pro.PROPRIO_ARM_RIGHT_QPOS]
    fingers = (r1pro.PROPRIO_GRIPPER_LEFT_QPOS, r1pro.PROPRIO_GRIPPER_RIGHT_QPOS)
    widths = np.stack([state[:, side].sum(1) for side in fingers], axis=1)  # 0..0.1
    # Joint value → fraction of the image, clipped to [0.05, 0.95] (±1.6 rad around the rest pose).
    left_frac = np.clip(0.5 + (left - ARM_REST) / 3.2, 0.05, 0.95)
    right_frac = np.clip(0.5 + (right - ARM_REST) / 3.2, 0.05, 0.95)

    def background(shift: np.ndarray) -> np.ndarray:
        stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (xs + shift[:, None, None]) / (size / 2))
        shade = (ys / size) * 0.6 + 0.4
        img = tint[None, None, None, :] * (shade * (0.7 + 0.3 * stripes))[..., None]
        return np.broadcast_to(img, (length, size, size, 3)).copy()

    def square(img, cx, cy, half, open_):
        color = np.where(open_[:, None], [[60.0, 220.0, 60.0]], [[220.0, 60.0, 60.0]])
        mask = (np.abs(xs - cx) <= half[:, None, None]) & (np.abs(ys - cy) <= half[:, None, None])
        img[mask] = np.repeat(color, mask.reshape(length, -1).sum(1), axis=0)

    images = {}
    x, yaw = state[:, r1pro.PROPRIO_ROBOT_POS_ORI.start], state[:, r1pro.PROPRIO_BASE_QPOS.start + 2]
    pose_shift = x * size * 2 + yaw * size  # base x and yaw scroll the head view
    head = background(pose_shift)
    bar_w = max(2, size // 20)
    for j in range(14):
        frac = left_frac[:, j] if j < 7 else right_frac[:, j - 7]
        x0 = int(size * (0.08 + j * 0.06)) if j < 7 else int(size * (0.52 + (j - 7) * 0.06))
        top = (size * (1 - frac * 0.7)).astype(int)
        mask = (xs >= x0) & (xs < x0 + bar_w) & (ys >= top[:, None, None])
        color = np.array([70.0, 120.0, 230.0]) if j < 7 else np.array([240.0, 160.0, 50.0])
        head[mask] = color
    for side, cx in ((0, size // 4), (1, 3 * size // 4)):
        half = (1 + widths[:, side] / r1pro.MAX_GRIPPER_WIDTH * size / 10).astype(int)
        square(head, cx, size // 8, half, widths[:, side] > 0.05)
    images["head"] = head

    for side, name, frac in ((0, "left_wrist", left_frac), (1, "right_wrist", right_frac)):
        img = background(np.zeros(length))
        bar_h = max(2, size // 16)
        for j in range(7):
            y0 = int(size * (0.06 + j * 0.08))
            right_end = (size * frac[:, j]).astype(int)
            mask = (ys >= y0) & (ys < y0 + bar_h) & (xs < right_end[:, None, None])
            img[mask] = [200.0, 200.0, 90.0]
        half = (2 + widths[:, side] / r1pro.MAX_GRIPPER_WIDTH * size / 5).astype(int)
        square(img, size // 2, int(size * 0.8), half, widths[:, side] > 0.05)
        images[name] = img
    return {k: np.clip(np.round(_soften(v)), 0, 255).astype(np.uint8) for k, v in images.items()}


def _soften(images: np.ndarray) -> np.ndarray:
    """3×3 box blur, as a lens would; hard one-pixel colour edges do not survive yuv420p chroma subsampling."""
    size_y, size_x = images.shape[1:3]
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    return sum(padded[:, i : i + size_y, j : j + size_x] for i in range(3) for j in range(3)) / 9.0


def generate_episode(config: MiniB1KConfig, episode_index: int, label: str | None = None) -> Episode:
    """The episode's arrays, a pure function of (seed, episode index, config)."""
    label = label or planted_labels(config)[episode_index]
    rng = np.random.default_rng([config.seed, 2, episode_index])
    jitter = rng.uniform(-config.length_jitter, config.length_jitter)
    length = max(4, round(config.frames_per_episode * (1 + jitter)))
    share = {"arm_heavy": config.arm_heavy_share, "navigation_heavy": config.navigation_heavy_share}.get(
        label, rng.uniform(0.3, 0.7)
    )
    segments = _segments(rng, length, share)
    action = _actions(rng, segments, length)
    state, cams = _proprio(action, config.fps)
    task_index = episode_index // r1pro.EPISODES_PER_TASK
    task_info = np.tile(rng.normal(size=TASK_INFO_DIM), (length, 1))
    pose = r1pro.PROPRIO_ROBOT_POS_ORI.start
    task_info[:, :2] -= state[:, pose : pose + 2]  # object position relative to the robot
    images = _render(state, task_index, config.image_size) if config.video else {}
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


def _vector(values: np.ndarray) -> pa.FixedSizeListArray:
    values = np.ascontiguousarray(values, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


def _table(episode: Episode, v3: bool, global_start: int, fps: int) -> pa.Table:
    frames = np.arange(episode.length, dtype=np.int64)
    columns = {
        "index": pa.array(frames + global_start if v3 else frames),
        "episode_index": pa.array(np.full(episode.length, episode.episode_index, dtype=np.int64)),
        "task_index": pa.array(np.full(episode.length, episode.task_index, dtype=np.int64)),
        "timestamp": pa.array((frames / fps).astype(np.float32 if v3 else np.float64)),
    }
    if v3:
        columns["frame_index"] = pa.array(frames)
    columns["action"] = _vector(episode.action)
    columns["observation.state"] = _vector(episode.state)
    columns["observation.cam_rel_poses"] = _vector(episode.cam_rel_poses)
    columns["observation.task_info"] = _vector(episode.task_info)
    return pa.table(columns)


def _feature_stats(values: np.ndarray) -> dict:
    values = values.reshape(len(values), -1).astype(np.float64)
    return {
        "min": values.min(0).tolist(),
        "max": values.max(0).tolist(),
        "mean": values.mean(0).tolist(),
        "std": values.std(0).tolist(),
        "count": [len(values)],
    }


def _episode_stats(episode: Episode) -> dict:
    return {
        "action": _feature_stats(episode.action),
        "observation.state": _feature_stats(episode.state),
        "observation.cam_rel_poses": _feature_stats(episode.cam_rel_poses),
        "observation.task_info": _feature_stats(episode.task_info),
    }


def _features(config: MiniB1KConfig) -> dict:
    features = {}
    if config.video:
        for cam in CAMERAS:
            features[f"observation.images.rgb.{cam}"] = {
                "dtype": "video",
                "shape": [config.image_size, config.image_size, 3],
                "names": ["height", "width", "rgb"],
                "info": {
                    "video.fps": config.fps,
                    "video.height": config.image_size,
                    "video.width": config.image_size,
                    "video.channels": 3,
                    "video.codec": config.codec,
                    "video.pix_fmt": "yuv420p",
                    "video.is_depth_map": False,
                    "has_audio": False,
                },
            }
    for name, dim in (
        ("action", r1pro.R1PRO_ACTION_DIM),
        ("observation.state", r1pro.PROPRIO_DIM),
        ("observation.cam_rel_poses", CAM_POSE_DIM),
        ("observation.task_info", TASK_INFO_DIM),
    ):
        features[name] = {"dtype": "float32", "shape": [dim], "names": None}
    features["timestamp"] = {"dtype": "float64" if config.version == "v2.1" else "float32", "shape": [1], "names": None}
    features["index"] = {"dtype": "int64", "shape": [1], "names": None}
    features["episode_index"] = {"dtype": "int64", "shape": [1], "names": None}
    if config.version == "v3.0":
        features["frame_index"] = {"dtype": "int64", "shape": [1], "names": None}
        features["task_index"] = {"dtype": "int64", "shape": [1], "names": None}
    return features


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


def _write_json(path: pathlib.Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


def _write_jsonl(path: pathlib.Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _task_text(task_index: int) -> tuple[str, str]:
    name, text = TASKS[task_index % len(TASKS)]
    if task_index >= len(TASKS):
        name, text = f"{name}_{task_index}", f"{text} (variant {task_index})"
    return name, text


def write_mini_b1k(config: MiniB1KConfig, progress: bool = True) -> pathlib.Path:
    """Writes the dataset and returns its root."""
    root = pathlib.Path(config.root)
    if root.exists() and any(root.iterdir()):
        if not config.overwrite:
            raise FileExistsError(f"{root} is not empty; pass --overwrite to replace it.")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    v3 = config.version == "v3.0"
    if config.video:
        _video.pick_encoder(config.codec)  # fail before writing anything when this PyAV cannot encode it
    labels = planted_labels(config)
    ann_rng = np.random.default_rng([config.seed, 3])
    episodes_meta, stats_rows, truth = [], [], {}
    v3_rows, v3_group = [], []
    global_index = 0
    all_actions, all_states = [], []

    def flush_v3_group():
        file_index = len({r["data/file_index"] for r in v3_rows})
        table = pa.concat_tables([t for _, t in v3_group])
        path = root / f"data/chunk-000/file-{file_index:03d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        offset = 0.0
        for episode, t in v3_group:
            row = {
                "episode_index": episode.episode_index,
                "tasks": [_task_text(episode.task_index)[1]],
                "length": episode.length,
                "data/chunk_index": 0,
                "data/file_index": file_index,
                "dataset_from_index": int(t.column("index")[0].as_py()),
                "dataset_to_index": int(t.column("index")[-1].as_py()) + 1,
            }
            for cam in CAMERAS if config.video else ():
                key = f"observation.images.rgb.{cam}"
                row[f"videos/{key}/chunk_index"] = 0
                row[f"videos/{key}/file_index"] = file_index
                row[f"videos/{key}/from_timestamp"] = offset
                row[f"videos/{key}/to_timestamp"] = offset + episode.length / config.fps
            offset += episode.length / config.fps
            v3_rows.append(row)
        if config.video:
            for cam in CAMERAS:
                frames = np.concatenate([e.images[cam] for e, _ in v3_group])
                path = root / f"videos/observation.images.rgb.{cam}/chunk-000/file-{file_index:03d}.mp4"
                _video.write_video(path, frames, config.fps, config.codec, config.gop)
        v3_group.clear()

    indices = episode_indices(config)
    for episode_index in tqdm.tqdm(indices, desc="Writing mini B1K", unit="episode", disable=not progress):
        episode = generate_episode(config, episode_index, labels[episode_index])
        task_text = _task_text(episode.task_index)[1]
        table = _table(episode, v3, global_index, config.fps)
        global_index += episode.length
        if v3:
            v3_group.append((episode, table))
            if len(v3_group) == config.episodes_per_file:
                flush_v3_group()
        else:
            chunk = episode.task_index
            path = root / f"data/task-{chunk:04d}/episode_{episode_index:08d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path)
            for cam in CAMERAS if config.video else ():
                key = f"observation.images.rgb.{cam}"
                vpath = root / f"videos/task-{chunk:04d}/{key}/episode_{episode_index:08d}.mp4"
                _video.write_video(vpath, episode.images[cam], config.fps, config.codec, config.gop)
        episodes_meta.append({"episode_index": episode_index, "tasks": [task_text], "length": episode.length})
        stats_rows.append({"episode_index": episode_index, "stats": _episode_stats(episode)})
        all_actions.append(episode.action)
        all_states.append(episode.state)
        _write_json(
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
    if v3 and v3_group:
        flush_v3_group()

    info = {
        "codebase_version": config.version,
        "robot_type": "R1Pro",
        "total_episodes": len(indices),
        "total_frames": global_index,
        "total_tasks": config.num_tasks,
        "total_videos": len(indices) * len(CAMERAS) if config.video else 0,
        "chunks_size": r1pro.EPISODES_PER_TASK if not v3 else 1000,
        "fps": config.fps,
        "splits": {"train": f"0:{len(indices)}"},
        "features": _features(config),
    }
    tasks = [_task_text(t) for t in range(config.num_tasks)]
    if v3:
        info.update(
            data_path="data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            video_path="videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4" if config.video else None,
            data_files_size_in_mb=100,
            video_files_size_in_mb=200,
        )
        path = root / "meta/episodes/chunk-000/file-000.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(v3_rows), path)
        pq.write_table(
            pa.table({"task_index": list(range(config.num_tasks)), "__index_level_0__": [t for _, t in tasks]}),
            root / "meta/tasks.parquet",
        )
        actions, states = np.concatenate(all_actions), np.concatenate(all_states)
        _write_json(
            root / "meta/stats.json", {"action": _feature_stats(actions), "observation.state": _feature_stats(states)}
        )
    else:
        info.update(
            total_chunks=config.num_tasks,
            data_path="data/task-{episode_chunk:04d}/episode_{episode_index:08d}.parquet",
            video_path="videos/task-{episode_chunk:04d}/{video_key}/episode_{episode_index:08d}.mp4"
            if config.video
            else None,
        )
        _write_jsonl(
            root / "meta/tasks.jsonl", [{"task_index": i, "task_name": n, "task": t} for i, (n, t) in enumerate(tasks)]
        )
        _write_jsonl(root / "meta/episodes.jsonl", episodes_meta)
        _write_jsonl(root / "meta/episodes_stats.jsonl", stats_rows)
    _write_json(root / "meta/info.json", info)
    _write_json(
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
