"""Miniature BEHAVIOR-1K episodes: R1Pro-like actions, the proprio that follows them and camera images.

Pure numpy, no file I/O: `openpi.datasets.mini_b1k` draws an episode's length and segments, calls these and
writes the result. The modelling assumptions are listed in that module's docstring.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from openpi.policies import r1pro

CAMERAS = ("head", "left_wrist", "right_wrist")

CHUNK = 50  # frames per action chunk, the unit of the arm speed bounds
TRUNK_MEAN = np.array([0.93, -1.28, -0.50, 0.0])
ARM_REST = np.array([0.0, 1.2, 0.0, -1.6, 0.0, -0.4, 0.0])
FINGER_OPEN, FINGER_SPEED = 0.05, 0.005
# R1Pro's action layout as slices; grippers as (left, right) dims.
BASE, TRUNK = slice(*r1pro.BASE), slice(*r1pro.TRUNK)
LEFT_ARM, RIGHT_ARM = slice(*r1pro.LEFT_ARM), slice(*r1pro.RIGHT_ARM)
GRIPPERS = r1pro.LEFT_GRIPPER + r1pro.RIGHT_GRIPPER


@dataclasses.dataclass(frozen=True)
class Segment:
    """A stretch of frames spent navigating or manipulating (becomes a skill annotation)."""

    skill_type: Literal["navigation", "manipulation"]
    start: int
    end: int  # exclusive


def draw_segments(rng: np.random.Generator, length: int, manipulation_share: float) -> tuple[Segment, ...]:
    """Alternating navigation / manipulation segments (navigation first) covering ``length`` frames, with
    ``manipulation_share`` of them in manipulation."""
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


def draw_actions(rng: np.random.Generator, segments: tuple[Segment, ...], length: int) -> np.ndarray:
    """[T, 23] R1Pro actions: base bumps while navigating, smooth arm motion and gripper switches while
    manipulating, a constant torso."""
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


def proprio_from_actions(action: np.ndarray, fps: int) -> tuple[np.ndarray, np.ndarray]:
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


def proprio_2026(state: np.ndarray) -> np.ndarray:
    """The 2026 edition's 61-dim proprio (``r1pro.PROPRIO_2026``) from this module's 256-dim one: the same
    quantities, read from where `proprio_from_actions` puts them (velocities right after their positions' sin/cos
    or after the finger and trunk positions); the base velocity is the robot-local command."""

    def follows(part: slice, n: int) -> slice:
        return slice(part.stop, part.stop + n)

    arm_qvel = {
        "left": slice(r1pro.PROPRIO_ARM_LEFT_QPOS.start + 21, r1pro.PROPRIO_ARM_LEFT_QPOS.start + 28),
        "right": slice(r1pro.PROPRIO_ARM_RIGHT_QPOS.start + 21, r1pro.PROPRIO_ARM_RIGHT_QPOS.start + 28),
    }
    sources = {
        "base_qvel": r1pro.PROPRIO_BASE_QVEL,
        "arm_left_qpos": r1pro.PROPRIO_ARM_LEFT_QPOS,
        "arm_left_qvel": arm_qvel["left"],
        "eef_left_pos": slice(r1pro.PROPRIO_EEF_LEFT.start, r1pro.PROPRIO_EEF_LEFT.start + 3),
        "eef_left_quat": slice(r1pro.PROPRIO_EEF_LEFT.start + 3, r1pro.PROPRIO_EEF_LEFT.stop),
        "gripper_left_qpos": r1pro.PROPRIO_GRIPPER_LEFT_QPOS,
        "gripper_left_qvel": follows(r1pro.PROPRIO_GRIPPER_LEFT_QPOS, 2),
        "arm_right_qpos": r1pro.PROPRIO_ARM_RIGHT_QPOS,
        "arm_right_qvel": arm_qvel["right"],
        "eef_right_pos": slice(r1pro.PROPRIO_EEF_RIGHT.start, r1pro.PROPRIO_EEF_RIGHT.start + 3),
        "eef_right_quat": slice(r1pro.PROPRIO_EEF_RIGHT.start + 3, r1pro.PROPRIO_EEF_RIGHT.stop),
        "gripper_right_qpos": r1pro.PROPRIO_GRIPPER_RIGHT_QPOS,
        "gripper_right_qvel": follows(r1pro.PROPRIO_GRIPPER_RIGHT_QPOS, 2),
        "trunk_qpos": r1pro.PROPRIO_TRUNK_QPOS,
        "trunk_qvel": follows(r1pro.PROPRIO_TRUNK_QPOS, 4),
    }
    out = np.zeros((len(state), r1pro.PROPRIO_2026_DIM), dtype=state.dtype)
    for name, target in r1pro.PROPRIO_2026.items():
        out[:, target] = state[:, sources[name]]
    return out


def render(state: np.ndarray, task_index: int, size: int) -> dict[str, np.ndarray]:
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
