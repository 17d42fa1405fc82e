"""The mobile manipulator: R1Pro's action semantics (robot-frame base velocity in m/s and rad/s, absolute arm
joint targets), seeded layouts, a deterministic expert dataset readable by the project's reader, and a tiny
policy trained on it running closed-loop episodes through the serving stack's executor."""

import json
import math
import pathlib

import numpy as np
import pyarrow.parquet as pq
import pytest

pytest.importorskip("robosuite", reason="needs the sim extra: pip install -e '.[sim]'")

from openpi.datasets import lerobot as _lerobot
from openpi.datasets import stats as _stats
from openpi.policies import policy_config
from openpi.serving.chunking import ChunkingConfig
from openpi.shared import normalize as _normalize
from openpi.sim import closed_loop
from openpi.sim import mobile_dataset
from openpi.sim import mobile_env
from openpi.sim import rollout
from openpi.training import config as _config
from openpi.training import jax_trainer
from openpi.training import mobile_configs


@pytest.fixture(scope="module")
def env():
    env = mobile_env.MobileEnv("touch", render=False)
    yield env
    env.close()


def _hold(env, base, steps, arm=None):
    """Steps ``env`` with a constant action (the arm held at ``arm``, default where it is)."""
    arm = env.arm_qpos if arm is None else arm
    action = np.concatenate([base, arm, [1.0]])
    given = action.copy()
    for _ in range(steps):
        env.step(action)
    np.testing.assert_array_equal(action, given)  # robosuite rotates its base command in place; ours is a copy


def test_base_command_moves_the_base_in_the_robot_frame_at_the_commanded_speed(env):
    env.reset(7)
    yaw = env.base_pose[2]
    assert abs(yaw) > 0.05  # the layout starts the base turned, so the robot and start frames differ
    # 0.15 m/s is inside robosuite's friction dead band (~0.25 m/s), which the environment removes.
    for command in ([0.4, -0.15, 0.0], [0.15, 0.0, 0.0]):
        _hold(env, command[:3], 5)  # reach the commanded speed
        start = env.base_pose
        _hold(env, command, 10)  # 1 s
        moved = env.base_pose - start
        # Independent of the environment's frames: the base x/y joints move along the world axes.
        expected = 1.0 * np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]]) @ command[:2]
        np.testing.assert_allclose(moved[:2], expected, atol=0.02)
        assert abs(moved[2]) < 0.01
    _hold(env, [0.0, 0.0, 0.0], 5)
    _hold(env, [0.0, 0.0, 0.5], 5)
    start = env.base_pose
    _hold(env, [0.0, 0.0, 0.5], 10)
    np.testing.assert_allclose(env.base_pose[2] - start[2], 0.5, atol=0.03)
    np.testing.assert_allclose(env.base_velocity, [0.0, 0.0, 0.5], atol=0.03)


def test_arm_joint_targets_are_reached(env):
    env.reset(3)
    target = env.arm_qpos + np.array([0.2, -0.2, 0.1, 0.2, 0.1, -0.2, 0.3])
    _hold(env, [0.0, 0.0, 0.0], 30, arm=target)
    np.testing.assert_allclose(env.arm_qpos, target, atol=0.01)
    state = env.step(np.concatenate([[0.0, 0.0, 0.0], target, [1.0]]))[0]["state"]
    np.testing.assert_allclose(state[3:10], env.arm_qpos, atol=1e-6)  # the state's arm dims are the action's


def test_layout_seeds_set_the_layout_far_from_the_table(env):
    first = env.reset(11)["state"], env.layout
    again = env.reset(11)["state"], env.layout
    other = env.reset(12)["state"], env.layout
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.allclose(first[1], other[1])
    start, target = first[1][:3], first[1][3:6]
    assert mobile_env.START_DISTANCE[0] <= np.hypot(*(start - target)[:2]) <= mobile_env.START_DISTANCE[1]
    assert not env.navigated


def test_arm_motion_is_the_summed_absolute_arm_change():
    actions = np.zeros((3, mobile_env.ACTION_DIM))
    actions[:, 0] = [5.0, -5.0, 5.0]  # base dims do not count
    actions[1, 3], actions[2, 9], actions[2, 10] = 0.5, -0.25, 1.0  # gripper (dim 10) does not count
    assert closed_loop.arm_motion(actions) == pytest.approx(0.5 + 0.5 + 0.25)


def _write(root: pathlib.Path) -> pathlib.Path:
    config = mobile_dataset.MobileDatasetConfig(root=root, tasks=("touch",), episodes_per_task=1,
                                                navigation_episodes_per_task=1, image_size=32)
    return mobile_dataset.write_dataset(config, progress=False)


@pytest.fixture(scope="module")
def mobile_root(tmp_path_factory) -> pathlib.Path:
    return _write(tmp_path_factory.mktemp("mobile") / "a")


def test_dataset_is_deterministic_and_readable(mobile_root, tmp_path):
    again = _write(tmp_path / "b")
    for path in sorted((mobile_root / "data").rglob("*.parquet")):
        assert pq.read_table(path).equals(pq.read_table(again / path.relative_to(mobile_root))), path
    assert (mobile_root / "meta/episodes.jsonl").read_text() == (again / "meta/episodes.jsonl").read_text()

    layouts = json.loads((mobile_root / mobile_dataset.LAYOUTS_FILE).read_text())["episodes"]
    dataset = _lerobot.LeRobotDataset(root=mobile_root, action_horizon=5)
    assert len(dataset) == sum(e["length"] for e in layouts)
    sample = dataset[3]
    assert sample["observation.state"].shape == (mobile_env.STATE_DIM,)
    assert sample["action"].shape == (5, mobile_env.ACTION_DIM)
    assert sample["task"] == mobile_env.TASKS["touch"].instruction
    for camera in mobile_env.CAMERAS:
        image = sample[mobile_dataset.image_key(camera)]
        assert image.shape == (32, 32, 3) and image.dtype == np.uint8 and image.std() > 1.0
    # The navigation-only episode drives the base with the arm still; the full one also moves the arm.
    full, driving = (dataset.episode_data(e["episode_index"])["action"] for e in layouts)
    assert layouts[1]["navigation_only"] and layouts[1]["driving_frames"] == layouts[1]["length"]
    assert np.abs(driving[:, 0:3]).max() > 0.3 and np.ptp(driving[:, 3:10], axis=0).max() < 1e-6
    assert layouts[0]["driving_frames"] < layouts[0]["length"] and np.ptp(full[:, 3:10], axis=0).max() > 0.1


def test_tiny_policy_trains_on_mobile_data_and_runs_closed_loop(mobile_root, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    name = "mobile_demo_per_group"
    stats = _stats.compute_norm_stats(mobile_root, progress=False)
    _normalize.save(tmp_path / "assets" / name / mobile_configs.MOBILE_REPO_ID, stats)
    config = _config.cli([
        name, "--exp-name=t", f"--data.root={mobile_root}",
        f"--assets-base-dir={tmp_path / 'assets'}", f"--checkpoint-base-dir={tmp_path / 'checkpoints'}",
        "--batch-size=4", "--num-train-steps=2", "--save-interval=2", "--log-interval=1", "--overwrite",
        "--no-wandb-enabled",
    ])
    jax_trainer.train(config)
    metrics = [json.loads(line) for line in (config.checkpoint_dir / "metrics.jsonl").read_text().splitlines()]
    assert {"loss/base", "loss/arm", "loss/gripper"} <= set(metrics[-1])
    trained = policy_config.create_trained_policy(config, config.checkpoint_dir, num_steps=2)
    # Executed by the serving stack's chunk executor: a new chunk every 4 steps.
    executor = rollout.model_policy(trained, ChunkingConfig(replan_every=4), horizon=config.model.action_horizon)
    report = closed_loop.evaluate_mobile(lambda _env: executor, ["touch"], 2, image_size=32, max_steps=6,
                                         progress=False)
    entry = report["tasks"]["touch"]
    assert [e["steps"] for e in entry["episodes"]] == [6, 6]
    assert executor.queries == math.ceil(6 / 4)
    assert {"navigation", "manipulation", "overall"} <= set(entry)
    # In its first 6 steps the expert only drives: no arm motion to compare with, so no ratio.
    assert all(e["expert_arm_motion"] == 0 and e["arm_motion"] >= 0 for e in entry["episodes"])
    assert entry["arm_activity_ratio"] is None
