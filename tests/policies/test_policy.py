"""The trained-policy loader on real checkpoints: the tiny demo model trained 2 steps by the JAX trainer
(``jax_demo_checkpoint``) and by the PyTorch trainer, run on frames of the miniature B1K dataset."""

import dataclasses
import logging
import os

import flax.nnx as nnx
import flax.traverse_util as traverse_util
import numpy as np
import pytest

from openpi.datasets import lerobot
from openpi.models import model as _model
from openpi.policies import b1k_policy
from openpi.policies import policy_config
from openpi.shared import normalize as _normalize
from openpi.training import config as _config
from openpi.training import pytorch_trainer

HORIZON, ROBOT_DIMS = 50, 23


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dataset(mini_v21):
    return lerobot.LeRobotDataset(root=mini_v21)


@pytest.fixture(scope="module")
def jax_policy(jax_demo_checkpoint):
    return policy_config.create_trained_policy(jax_demo_checkpoint, jax_demo_checkpoint.checkpoint_dir)


@pytest.fixture(scope="module")
def pytorch_checkpoint(jax_demo_checkpoint):
    """The same config trained 2 steps by the PyTorch trainer (same assets); returns its experiment directory."""
    config = dataclasses.replace(jax_demo_checkpoint, exp_name="pytorch_policy")
    pytorch_trainer.train(config, progress=False)
    return config.checkpoint_dir


def test_jax_checkpoint_gives_deterministic_robot_chunks(jax_demo_checkpoint, jax_policy, dataset):
    step_dir = jax_demo_checkpoint.checkpoint_dir / "2"
    assert jax_policy.metadata["checkpoint"] == str(step_dir)  # the experiment dir resolved to its latest step
    assert jax_policy.framework == "jax" and jax_policy.metadata["checkpoint_kind"] == "jax"
    assert jax_policy.metadata["norm_stats"].startswith(str(step_dir / "assets"))
    obs = dataset[5]
    actions = jax_policy.infer(obs)["actions"]
    assert actions.shape == (HORIZON, ROBOT_DIMS) and np.all(np.isfinite(actions))
    np.testing.assert_array_equal(jax_policy.infer(obs)["actions"], actions)
    same_seed = policy_config.create_trained_policy(jax_demo_checkpoint, step_dir, seed=0)
    np.testing.assert_array_equal(same_seed.infer(obs)["actions"], actions)
    other_seed = policy_config.create_trained_policy(jax_demo_checkpoint, step_dir, seed=1)
    assert np.abs(other_seed.infer(obs)["actions"] - actions).max() > 1e-3
    batch = jax_policy.infer_batch([obs, dataset[70]])["actions"]
    assert batch.shape == (2, HORIZON, ROBOT_DIMS)
    np.testing.assert_allclose(batch[0], actions, atol=1e-5)  # batching does not change a chunk
    assert np.abs(batch[1] - batch[0]).max() > 1e-4  # another observation, another chunk


def test_policy_runs_the_checkpoint_params(jax_demo_checkpoint, jax_policy):
    saved = traverse_util.flatten_dict(_model.restore_params(jax_demo_checkpoint.checkpoint_dir / "2" / "params"))
    used = traverse_util.flatten_dict(nnx.state(jax_policy.model).to_pure_dict())
    assert set(used) == set(saved)
    for key, value in saved.items():
        np.testing.assert_array_equal(np.asarray(used[key]), value, err_msg="/".join(map(str, key)))


def test_transforms_normalize_with_the_checkpoint_stats_and_invert_on_robot_dims(
    jax_demo_checkpoint, jax_policy, dataset
):
    """Independent of the pipeline: quantile-normalize by hand with the checkpoint's stats file."""
    stats = _normalize.load(jax_demo_checkpoint.checkpoint_dir / "2" / "assets" / _config.DEMO_REPO_ID)

    def normalize(x, s):  # pi0.5 uses quantile normalization; constant dims (q01 == q99) map to 0
        scale = s.q99[: x.shape[-1]] - s.q01[: x.shape[-1]]
        return np.where(scale < 1e-4, 0.0, (x - s.q01[: x.shape[-1]]) / (scale + 1e-6) * 2 - 1)

    sample = dataset[40]
    inputs = jax_policy.input_transform(dict(sample))
    assert "actions" not in inputs  # observations at inference carry no actions
    state = inputs["state"]
    assert state.shape == (32,) and np.all(state[ROBOT_DIMS:] == 0)
    np.testing.assert_allclose(state[:ROBOT_DIMS], normalize(b1k_policy.proprio_to_state(sample["observation.state"]), stats["state"]), atol=1e-5)

    chunk = dataset.action_chunk(int(sample["episode_index"]), int(sample["frame_index"]), HORIZON)[0]
    padded = np.pad(normalize(chunk, stats["actions"]), ((0, 0), (0, 32 - ROBOT_DIMS)), constant_values=0.7)
    outputs = jax_policy.output_transform({"state": state, "actions": padded.astype(np.float32)})
    assert outputs["actions"].shape == (HORIZON, ROBOT_DIMS)
    np.testing.assert_allclose(outputs["actions"], chunk, atol=1e-4 * (1 + np.abs(chunk).max()))


def test_pytorch_checkpoint_loads_infers_and_matches_jax(pytorch_checkpoint, jax_demo_checkpoint, dataset):
    torch_policy = policy_config.create_trained_policy(jax_demo_checkpoint, pytorch_checkpoint)
    assert torch_policy.metadata["checkpoint_kind"] == "pytorch" and torch_policy.framework == "pytorch"
    assert torch_policy.metadata["checkpoint"] == str(pytorch_checkpoint / "2")
    obs = [dataset[5], dataset[70]]
    actions = torch_policy.infer_batch(obs)["actions"]
    assert actions.shape == (2, HORIZON, ROBOT_DIMS) and np.all(np.isfinite(actions))
    # The same PyTorch weights run by JAX (converted on load) give the same chunks.
    as_jax = policy_config.create_trained_policy(jax_demo_checkpoint, pytorch_checkpoint, framework="jax")
    np.testing.assert_allclose(as_jax.infer_batch(obs)["actions"], actions, atol=1e-3)


def test_jax_checkpoint_runs_in_pytorch_like_in_jax(jax_demo_checkpoint, jax_policy, dataset):
    as_torch = policy_config.create_trained_policy(
        jax_demo_checkpoint, jax_demo_checkpoint.checkpoint_dir, framework="pytorch"
    )
    assert as_torch.framework == "pytorch" and as_torch.metadata["checkpoint_kind"] == "jax"
    obs = dataset[5]
    np.testing.assert_allclose(as_torch.infer(obs)["actions"], jax_policy.infer(obs)["actions"], atol=1e-3)


def test_missing_norm_stats_fall_back_to_the_config_assets(jax_demo_checkpoint, tmp_path, caplog):
    step = tmp_path / "exp" / "7"
    step.mkdir(parents=True)
    os.symlink(jax_demo_checkpoint.checkpoint_dir / "2" / "params", step / "params")
    with caplog.at_level(logging.WARNING, logger="openpi"):
        policy = policy_config.create_trained_policy(jax_demo_checkpoint, tmp_path / "exp")
    assert policy.metadata["checkpoint"] == str(step)
    assert policy.metadata["norm_stats"] == str(
        jax_demo_checkpoint.assets_dirs / _config.DEMO_REPO_ID / "norm_stats.json"
    )
    assert "stores no norm stats" in caplog.text
    no_assets = dataclasses.replace(jax_demo_checkpoint, assets_base_dir=str(tmp_path / "none"))
    with pytest.raises(FileNotFoundError, match=r"No norm stats .*compute_norm_stats"):
        policy_config.create_trained_policy(no_assets, step)


def test_clear_errors_for_missing_or_incomplete_checkpoints(tmp_path):
    config = _config.get_config("pi0_b1k_arm_focused_demo")
    with pytest.raises(FileNotFoundError, match=r"Checkpoint directory not found: .*nowhere"):
        policy_config.create_trained_policy(config, tmp_path / "nowhere")
    (tmp_path / "empty" / "notes").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"empty is not a checkpoint: expected .*params/ \(JAX\) or "
                       r"model.safetensors \(PyTorch\).*\['notes'\]"):
        policy_config.create_trained_policy(config, tmp_path / "empty")
    (tmp_path / "exp" / "5" / "assets").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"latest checkpoint .*exp/5 .* is incomplete.*\['assets'\]"):
        policy_config.create_trained_policy(config, tmp_path / "exp")
    with pytest.raises(ValueError, match="framework must be"):
        (tmp_path / "exp" / "5" / "model.safetensors").touch()
        policy_config.create_trained_policy(config, tmp_path / "exp", framework="tf")


def test_committed_prefix_goes_through_the_transforms_and_comes_back_in_raw_units(jax_policy, dataset):
    obs = dataset[5]
    free = jax_policy.infer(obs)["actions"]
    prefix = free[10:14] + 0.05  # raw actions the policy would not sample itself
    actions = jax_policy.infer(obs, prefix=prefix)["actions"]
    varying = np.ones(ROBOT_DIMS, bool)
    varying[6] = False  # constant in the demo data (q01 == q99): always unnormalizes to its constant
    np.testing.assert_allclose(actions[:4, varying], prefix[:, varying], atol=1e-4)
    np.testing.assert_allclose(actions[:, 6], free[:, 6], atol=1e-6)
    unweighted = jax_policy.infer(obs, prefix=prefix, prefix_weights=np.zeros(4))["actions"]
    np.testing.assert_allclose(unweighted, free, atol=1e-5)  # weight 0 is no conditioning
    with pytest.raises(ValueError, match=r"\[k, action_dim\] with 1 <= k <= 50"):
        jax_policy.infer(obs, prefix=np.zeros((51, ROBOT_DIMS)))
