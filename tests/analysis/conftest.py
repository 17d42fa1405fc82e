"""Synthetic R1Pro-like action arrays with planted structure for the analysis cores' tests."""

import dataclasses

import numpy as np
import pytest

from openpi.analysis import common


@dataclasses.dataclass(frozen=True)
class Planted:
    table: common.ActionTable
    arm_heavy_episodes: set[int]
    manipulation: dict[int, np.ndarray]  # per episode, bool per frame: inside a manipulation segment


def make_synthetic(num_episodes: int = 24, length: int = 600, seed: int = 0) -> Planted:
    """Episodes of alternating navigation segments (base commands ~0.3, arms still) and manipulation segments
    (base 0, smooth arm motion, gripper toggles). Every third episode is arm-heavy (80% manipulation)."""
    rng = np.random.default_rng(seed)
    episodes, tasks, manip, heavy = {}, {}, {}, set()
    for e in range(num_episodes):
        ep = (e % 3) * 10_000 + e
        is_heavy = e % 3 == 0
        frac = 0.8 if is_heavy else 0.2
        seg = 100
        labels = np.zeros(length, dtype=bool)
        for s in range(0, length, seg):
            labels[s : s + seg] = rng.random() < frac
        if is_heavy:
            labels[: int(0.8 * length)] = True
            labels[int(0.8 * length) :] = False
            heavy.add(ep)
        else:
            labels[:] = False
            labels[2 * seg : 3 * seg] = True
        a = np.zeros((length, 23), np.float32)
        t = np.arange(length) / 30.0
        a[:, 0:3] = np.where(labels[:, None], 0.0, np.array([0.3, 0.1, -0.2]) + 0.02 * rng.normal(size=(length, 3)))
        a[:, 3:6] = np.array([0.93, -1.28, -0.5]) + 0.01 * np.sin(t[:, None] + np.arange(3))
        a[:, 6] = 0.0  # constant torso dim, as in B1K
        arm_speed = np.where(labels, 1.0, 0.0)
        phase = np.cumsum(arm_speed) / 30.0
        for k, d in enumerate(list(range(7, 14)) + list(range(15, 22))):
            a[:, d] = 0.3 * np.sin(0.3 * phase + k) + 0.1 * k + 1e-4 * rng.normal(size=length)
        grip = np.where(np.sin(2.0 * phase) > 0, 1.0, -1.0)
        a[:, 14] = grip
        a[:, 22] = -grip
        episodes[ep] = a
        tasks[ep] = f"task_{e % 3}"
        manip[ep] = labels
    table = common.ActionTable.from_episodes(episodes, tasks)
    return Planted(table=table, arm_heavy_episodes=heavy, manipulation=manip)


@pytest.fixture(scope="session")
def planted() -> Planted:
    return make_synthetic()
