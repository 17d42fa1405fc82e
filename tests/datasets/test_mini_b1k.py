import json
import subprocess
import sys

import numpy as np
import pytest

from openpi.datasets import LeRobotMetadata
from openpi.datasets import mini_b1k
from openpi.datasets import read_columns
from openpi.policies import b1k_policy


def _config(tmp_path, **kwargs):
    fields = dict(num_tasks=2, episodes_per_task=5, frames_per_episode=400, video=False, seed=3)
    return mini_b1k.MiniB1KConfig(root=tmp_path / "mini", **{**fields, **kwargs})


def test_deterministic_from_seed(tmp_path):
    a = mini_b1k.generate_episode(_config(tmp_path), 10)
    b = mini_b1k.generate_episode(_config(tmp_path), 10)
    c = mini_b1k.generate_episode(_config(tmp_path, seed=4), 10)
    np.testing.assert_array_equal(a.action, b.action)
    np.testing.assert_array_equal(a.state, b.state)
    assert a.length != c.length or not np.array_equal(a.action, c.action)


def test_r1pro_like_motion_magnitudes(tmp_path):
    config = _config(tmp_path)
    for index in mini_b1k.episode_indices(config):
        episode = mini_b1k.generate_episode(config, index)
        a = episode.action
        np.testing.assert_array_equal(a[:, 6], 0.0)  # torso dim 6 constant 0
        assert np.ptp(a[:, 3:7], axis=0).max() == 0.0
        assert set(np.unique(a[:, [14, 22]])) <= {-1.0, 1.0}
        for seg in episode.segments:
            rows = a[seg.start : seg.end]
            if seg.skill_type == "navigation":
                assert np.abs(rows[:, 0:3]).max() <= 0.75
                if len(rows) >= 20:
                    assert np.abs(rows[:, [0, 2]]).max() >= 0.3
                assert np.ptp(rows[:, 7:23], axis=0).max() == 0.0  # arms and grippers still
            else:
                np.testing.assert_array_equal(rows[:, 0:3], 0.0)
                arms = rows[:, np.r_[7:14, 15:22]]
                if len(rows) > mini_b1k.CHUNK:
                    change = np.abs(arms[mini_b1k.CHUNK :] - arms[: -mini_b1k.CHUNK]).max()
                    assert 0.005 <= change <= 0.3


def test_state_is_consistent_with_actions(tmp_path):
    episode = mini_b1k.generate_episode(_config(tmp_path), 10010)
    state = b1k_policy.proprio_to_state(episode.state)
    # One-step lag: arm/trunk positions and base velocity follow the previous action.
    arms = np.r_[3:14, 15:22]
    np.testing.assert_allclose(state[1:, arms], episode.action[:-1, arms], atol=1e-6)
    np.testing.assert_allclose(state[1:, 0:3], episode.action[:-1, 0:3], atol=1e-6)
    # Gripper width follows the command: fully open → +1, closed → -1 after the fingers travel.
    opened = np.flatnonzero(episode.action[:-20, 14] > 0)
    settled = opened[np.all(episode.action[opened[:, None] + np.arange(-20, 1), 14] > 0, axis=1)]
    if len(settled):
        np.testing.assert_allclose(state[settled + 1, 14], 1.0, atol=1e-5)


def test_planted_structure_ground_truth(tmp_path):
    config = _config(tmp_path, arm_heavy_fraction=0.3)
    root = mini_b1k.write_mini_b1k(config, progress=False)
    truth = json.loads((root / mini_b1k.GROUND_TRUTH_FILE).read_text())
    arm, nav = set(truth["arm_heavy_episodes"]), set(truth["navigation_heavy_episodes"])
    assert len(arm) == 3 and len(nav) == 7 and not arm & nav
    columns = read_columns(root, ["action"])
    for episode, rows in columns.iter_episodes():
        entry = truth["episodes"][str(episode)]
        share = entry["manipulation_fraction"]
        assert share == pytest.approx(0.8 if episode in arm else 0.2, abs=0.02)
        # The planted label is visible in the data: the base drives outside manipulation, the arms move inside it.
        a = rows["action"]
        base_moving = np.any(np.abs(a[:, 0:3]) > 0, axis=1).mean()
        arms_moving = np.any(np.diff(a[:, 7:22], axis=0) != 0, axis=1).mean()
        assert base_moving == pytest.approx(1 - share, abs=0.01)
        assert (arms_moving > 0.5) == (episode in arm), (episode, arms_moving)
    assert mini_b1k.read_config(root) == config
    meta = LeRobotMetadata.load(root)
    assert meta.video_keys == [] and meta.total_frames == len(columns)


def test_unplanted_episodes_are_mixed(tmp_path):
    config = _config(tmp_path, planted_structure=False)
    labels = mini_b1k.planted_labels(config)
    assert set(labels.values()) == {"mixed"}
    shares = [mini_b1k.generate_episode(config, e).manipulation_fraction for e in labels]
    assert all(0.25 <= s <= 0.75 for s in shares)


def test_images_encode_arm_and_gripper_state(tmp_path):
    config = _config(tmp_path, video=True, image_size=64, frames_per_episode=300, arm_heavy_fraction=1.0)
    episode = mini_b1k.generate_episode(config, 10)
    cameras = (("left_wrist", slice(158, 165), slice(193, 195)), ("right_wrist", slice(197, 204), slice(232, 234)))
    for camera, arm, fingers in cameras:
        images = np.array([hash(img.tobytes()) for img in episode.images[camera]])
        state = np.concatenate([episode.state[:, arm], episode.state[:, fingers]], axis=1)
        state_gap = np.abs(state[:, None] - state[None]).max(-1)
        same_image = images[:, None] == images[None]
        # Same arm/gripper state → same wrist image; a joint 0.1 rad (or a gripper 2 cm) apart → a different one.
        assert np.all(same_image[state_gap == 0])
        assert not np.any(same_image[state_gap > 0.1])
        assert (state_gap > 0.1).sum() > episode.length  # the episode does move this arm
    head = np.array([hash(img.tobytes()) for img in episode.images["head"]])
    both_arms = episode.state[:, np.r_[158:165, 197:204]]
    moved = np.abs(both_arms[:, None] - both_arms[None]).max(-1) > 0.1
    assert not np.any((head[:, None] == head[None])[moved])


def test_cli_help():
    out = subprocess.run(
        [sys.executable, "-m", "openpi.datasets.mini_b1k", "--help"], capture_output=True, text=True, check=True
    )
    assert "--planted-structure" in out.stdout and "--image-size" in out.stdout and "--version" in out.stdout


def test_invalid_options_and_existing_root(tmp_path):
    with pytest.raises(ValueError, match="image_size"):
        _config(tmp_path, image_size=33)
    with pytest.raises(ValueError, match="arm_heavy_share"):
        _config(tmp_path, arm_heavy_share=1.5)
    config = _config(tmp_path, num_tasks=1, episodes_per_task=1, frames_per_episode=20)
    mini_b1k.write_mini_b1k(config, progress=False)
    with pytest.raises(FileExistsError, match="--overwrite"):
        mini_b1k.write_mini_b1k(config, progress=False)
