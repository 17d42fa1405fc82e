"""The 2026 edition's 61-dim proprio: its layout, its conversion to the model's R1Pro state, the robot detected from
the state's width, and the miniature dataset written in the 2026 layout."""

import json

import numpy as np
import pytest

from openpi.datasets import LeRobotMetadata
from openpi.datasets import mini_b1k
from openpi.datasets import read_columns
from openpi.policies import b1k_policy
from openpi.policies import r1pro
from openpi.training import data_resolver

# The order given in the issue (OmniGibson eval_utils PROPRIOCEPTION_INDICES["R1Pro"]), as (name, size).
ISSUE_ORDER = [
    ("base_qvel", 3), ("arm_left_qpos", 7), ("arm_left_qvel", 7), ("eef_left_pos", 3), ("eef_left_quat", 4),
    ("gripper_left_qpos", 2), ("gripper_left_qvel", 2), ("arm_right_qpos", 7), ("arm_right_qvel", 7),
    ("eef_right_pos", 3), ("eef_right_quat", 4), ("gripper_right_qpos", 2), ("gripper_right_qvel", 2),
    ("trunk_qpos", 4), ("trunk_qvel", 4),
]  # fmt: skip


def test_layout_is_the_issue_order_and_covers_61_dims():
    start = 0
    for (name, size), (key, part) in zip(ISSUE_ORDER, r1pro.PROPRIO_2026.items(), strict=True):
        assert key == name and part == slice(start, start + size), name
        start += size
    assert start == r1pro.PROPRIO_2026_DIM == 61


def test_61_dim_state_in_action_order():
    rng = np.random.default_rng(0)
    p = rng.normal(size=(4, 61)).astype(np.float32)
    p[:, 24:26], p[:, 49:51] = rng.uniform(0, 0.05, (4, 2)), rng.uniform(0, 0.05, (4, 2))
    s = b1k_policy.proprio_to_state(p)
    assert s.shape == (4, 23)
    np.testing.assert_array_equal(s[:, 0:3], p[:, 0:3])
    np.testing.assert_array_equal(s[:, 3:7], p[:, 53:57])
    np.testing.assert_array_equal(s[:, 7:14], p[:, 3:10])
    np.testing.assert_array_equal(s[:, 15:22], p[:, 28:35])
    np.testing.assert_allclose(s[:, 14], p[:, 24:26].sum(1) / 0.1 * 2 - 1, rtol=1e-6)
    np.testing.assert_allclose(s[:, 22], p[:, 49:51].sum(1) / 0.1 * 2 - 1, rtol=1e-6)
    baseline = b1k_policy.proprio_to_state(p[0], "baseline_2025")
    np.testing.assert_allclose(baseline[21:], [p[0, 24:26].sum(), p[0, 49:51].sum()], rtol=1e-6)
    with pytest.raises(ValueError, match=r"61 dims \(2026 edition\)"):
        b1k_policy.proprio_to_state(np.zeros(60))


def test_robot_detected_from_the_state_width():
    assert data_resolver.robot_for_state(256) == "b1k"
    assert data_resolver.robot_for_state(61) == "b1k_2026"
    assert data_resolver.robot_for_state(39) == "identity"
    transform = data_resolver.state_transform("b1k_2026", state_dims=(0, 14, 22))
    assert transform(np.zeros((2, 61), np.float32)).shape == (2, 3)


def test_mini_b1k_2026_layout(tmp_path):
    fields = dict(num_tasks=1, episodes_per_task=2, frames_per_episode=80, video=False, seed=5, version="v3.0")
    old = mini_b1k.MiniB1KConfig(root=tmp_path / "2025", **fields)
    new = mini_b1k.MiniB1KConfig(root=tmp_path / "2026", edition="2026", **fields)
    root = mini_b1k.write_mini_b1k(new, progress=False)
    meta = LeRobotMetadata.load(root)
    assert meta.version == "v3.0" and meta.features["observation.state"]["shape"] == [61]
    columns = read_columns(root, ["observation.state", "action"])
    state, action = columns["observation.state"], columns["action"]
    assert state.shape[1] == 61
    # Same seed, same episode in both editions: the actions agree and both proprios give one model state.
    for index in mini_b1k.episode_indices(new):
        a, b = mini_b1k.generate_episode(old, index), mini_b1k.generate_episode(new, index)
        np.testing.assert_array_equal(a.action, b.action)
        np.testing.assert_array_equal(b1k_policy.proprio_to_state(a.state), b1k_policy.proprio_to_state(b.state))
    # The fields follow the actions (one-step lag) and the velocities are the positions' rates.
    first = slice(0, meta.episode(mini_b1k.episode_indices(new)[0]).length)
    s, a = state[first], action[first]
    np.testing.assert_allclose(s[1:, 0:3], a[:-1, 0:3], atol=1e-6)  # robot-local base velocity = the command
    np.testing.assert_allclose(s[1:, 3:10], a[:-1, 7:14], atol=1e-6)
    np.testing.assert_allclose(s[1:, 28:35], a[:-1, 15:22], atol=1e-6)
    np.testing.assert_allclose(s[1:, 53:57], a[:-1, 3:7], atol=1e-6)
    np.testing.assert_allclose(s[:, 10:17], np.gradient(s[:, 3:10], 1 / 30, axis=0), atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(s[:, 20:24], axis=1), 1.0, atol=1e-5)  # a unit quaternion
    truth = json.loads((root / mini_b1k.GROUND_TRUTH_FILE).read_text())
    assert truth["config"]["edition"] == "2026" and mini_b1k.read_config(root) == new
    with pytest.raises(ValueError, match=r"--version v3\.0"):
        mini_b1k.MiniB1KConfig(root=tmp_path / "x", edition="2026")
