"""The winners' recipe (delta actions + per-timestep action stats): compute_norm_stats writes [H, D] stats of the
delta chunks, the trainer trains on them, and the loaded policy's transforms normalize and invert with them."""

import subprocess
import sys

import numpy as np
import pytest

from openpi import transforms as _transforms
from openpi.datasets import lerobot
from openpi.datasets import stats as _stats
from openpi.policies import b1k_policy
from openpi.policies import policy_config
from openpi.shared import normalize as _normalize
from openpi.training import config as _config
from openpi.training import pytorch_trainer

NAME = "pi05_b1k_delta_pertimestep_demo"
HORIZON, ROBOT_DIMS = 50, 23


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mini_v21):
    tmp = tmp_path_factory.mktemp("pertimestep")
    args = [
        f"--data.root={mini_v21}",
        f"--assets-base-dir={tmp / 'assets'}",
        f"--checkpoint-base-dir={tmp / 'checkpoints'}",
        "--batch-size=2",
        "--num-train-steps=1",
        "--no-wandb-enabled",
    ]
    script = [sys.executable, "scripts/compute_norm_stats.py", f"--config-name={NAME}", f"--root={mini_v21}"]
    out_dir = tmp / "assets" / NAME / _config.DEMO_REPO_ID
    result = subprocess.run([*script, f"--output-dir={out_dir}"], capture_output=True, text=True, check=False,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    config = _config.cli([NAME, "--exp-name=t", *args])
    pytorch_trainer.train(config, progress=False)
    return config, out_dir


def test_stats_are_per_chunk_step_of_the_delta_actions(trained, mini_v21):
    _, out_dir = trained
    stats = _normalize.load(out_dir)["actions"]
    assert np.shape(stats.mean) == (HORIZON, ROBOT_DIMS) and np.shape(stats.q99) == (HORIZON, ROBOT_DIMS)
    # Independent reference from the dataset's own chunks (frames and states read one by one).
    dataset = lerobot.LeRobotDataset(root=mini_v21, action_horizon=HORIZON, camera_keys=())
    mask = np.asarray(_config.B1K_DELTA_ACTION_MASK)
    chunks = []
    for i in range(len(dataset)):
        frame = dataset[i]
        state = b1k_policy.proprio_to_state(np.asarray(frame["observation.state"])[None])[0]
        chunks.append(np.asarray(frame["action"], np.float64) - np.where(mask, state, 0.0)[None])
    chunks = np.stack(chunks)
    np.testing.assert_allclose(stats.mean, chunks.mean(0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(stats.std, chunks.std(0), rtol=1e-6, atol=1e-8)
    # The delta dims' spread grows along the chunk (farther from the start state); per-timestep stats keep that.
    arm = 7
    assert stats.std[-1, arm] > 2 * stats.std[1, arm]


def test_loaded_policy_normalizes_and_inverts_with_per_timestep_stats(trained, mini_v21):
    config, out_dir = trained
    policy = policy_config.create_trained_policy(config, config.checkpoint_dir)
    (normalize,) = [t for t in policy.input_transform.transforms if isinstance(t, _transforms.Normalize)]
    (unnormalize,) = [t for t in policy.output_transform.transforms if isinstance(t, _transforms.Unnormalize)]
    assert np.shape(normalize.norm_stats["actions"].mean) == (HORIZON, ROBOT_DIMS)
    rng = np.random.default_rng(0)
    stats = _normalize.load(out_dir)["actions"]
    chunk = (stats.q01 + rng.random((HORIZON, ROBOT_DIMS)) * (stats.q99 - stats.q01)).astype(np.float32)
    state = rng.normal(size=ROBOT_DIMS).astype(np.float32)
    normalized = normalize({"actions": chunk.copy(), "state": state.copy()})
    # Each chunk step is scaled by its own row of stats (quantile norm for pi0.5).
    expected = (chunk - stats.q01) / (stats.q99 - stats.q01 + 1e-6) * 2 - 1
    constant = (stats.q99 - stats.q01) < 1e-4
    np.testing.assert_allclose(normalized["actions"], np.where(constant, 0.0, expected), rtol=1e-5, atol=1e-5)
    back = unnormalize({"actions": normalized["actions"], "state": normalized["state"]})
    np.testing.assert_allclose(np.where(constant, 0.0, back["actions"]), np.where(constant, 0.0, chunk), atol=1e-4)
    state_stats = _normalize.load(out_dir)["state"]
    varying = (state_stats.q99 - state_stats.q01) >= 1e-4  # a constant state dim comes back as its constant
    np.testing.assert_allclose(back["state"][varying], state[varying], atol=1e-4)
    robot = policy.infer(lerobot.LeRobotDataset(root=mini_v21)[3])["actions"]
    assert robot.shape == (HORIZON, ROBOT_DIMS) and np.all(np.isfinite(robot))


def test_flat_stats_for_a_per_timestep_config_fail_naming_the_fix(mini_v21, tmp_path):
    flat = _stats.compute_norm_stats(mini_v21, state_transform=b1k_policy.proprio_to_state, progress=False)
    assets = tmp_path / "assets"
    _normalize.save(assets / _config.DEMO_REPO_ID, flat)
    bad = _config.cli([NAME, "--exp-name=x", f"--data.root={mini_v21}", f"--data.assets.assets-dir={assets}"])
    with pytest.raises(ValueError, match="per_timestep_norm needs action stats of shape"):
        bad.data.create(bad.assets_dirs, bad.model)
