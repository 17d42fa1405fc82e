"""The simulator: seeded deterministic expert datasets readable by the project's reader, the Wilson interval,
the expert in closed loop, and a tiny policy trained on simulator data running closed-loop episodes."""

import json
import math
import pathlib

import numpy as np
import pyarrow.parquet as pq
import pytest

pytest.importorskip("metaworld", reason="needs the sim extra: pip install -e '.[sim]'")

from openpi.datasets import lerobot as _lerobot
from openpi.datasets import stats as _stats
from openpi.serving.chunking import ChunkingConfig
from openpi.shared import normalize as _normalize
from openpi.sim import closed_loop
from openpi.sim import dataset as _dataset
from openpi.sim import metaworld_env
from openpi.sim import rollout
from openpi.training import config as _config

TASKS = ("reach-v3", "pick-place-v3")


def _write(root: pathlib.Path) -> pathlib.Path:
    config = _dataset.SimDatasetConfig(root=root, tasks=TASKS, episodes_per_task=1, image_size=32, max_steps=100)
    return _dataset.write_dataset(config, progress=False)


@pytest.fixture(scope="module")
def sim_root(tmp_path_factory) -> pathlib.Path:
    return _write(tmp_path_factory.mktemp("sim") / "a")


def test_dataset_is_deterministic_and_readable(sim_root, tmp_path):
    again = _write(tmp_path / "b")
    for path in sorted((sim_root / "data").rglob("*.parquet")):
        first, second = pq.read_table(path), pq.read_table(again / path.relative_to(sim_root))
        assert first.equals(second), path
    assert (sim_root / "meta/episodes.jsonl").read_text() == (again / "meta/episodes.jsonl").read_text()

    dataset = _lerobot.LeRobotDataset(root=sim_root, action_horizon=5)
    lengths = [json.loads(line)["length"] for line in (sim_root / "meta/episodes.jsonl").read_text().splitlines()]
    assert len(dataset) == sum(lengths)
    sample = dataset[lengths[0] + 3]  # the second task's episode
    assert sample["observation.state"].shape == (metaworld_env.STATE_DIM,)
    assert sample["action"].shape == (5, metaworld_env.ACTION_DIM)
    assert sample["task"] == metaworld_env.TASKS["pick-place-v3"].instruction
    for camera in metaworld_env.CAMERAS.values():
        image = sample[_dataset.image_key(camera)]
        assert image.shape == (32, 32, 3) and image.dtype == np.uint8 and image.std() > 1.0


def test_recorded_actions_replay_to_the_recorded_states_and_succeed(sim_root):
    """Independent of the writer: a fresh simulator on the recorded layout, driven by the recorded actions,
    passes through the recorded states and ends in success."""
    layouts = json.loads((sim_root / _dataset.LAYOUTS_FILE).read_text())["episodes"]
    dataset = _lerobot.LeRobotDataset(root=sim_root, camera_keys=())
    for entry in (e for e in layouts if "layout_seed" in e):
        data = dataset.episode_data(entry["episode_index"])
        env = metaworld_env.MetaWorldEnv(entry["task"], render=False, max_steps=1000)
        obs = env.reset(entry["layout_seed"])
        states, success = [obs["state"]], False
        for action in data["action"]:
            obs, success, _ = env.step(action)
            states.append(obs["state"])
        env.close()
        np.testing.assert_allclose(np.stack(states[:-1]), data["observation.state"], atol=1e-5)
        assert success, entry


def test_wilson_interval_solves_the_score_equation():
    """The bounds are the two roots p of (p̂ − p)² = z² p (1 − p) / n, solved here as a quadratic."""
    z = closed_loop.WILSON_Z
    for k, n in ((4, 5), (0, 10), (10, 10), (7, 20)):
        p_hat = k / n
        # (1 + z²/n) p² − (2 p̂ + z²/n) p + p̂² = 0
        roots = np.sort(np.roots([1 + z * z / n, -(2 * p_hat + z * z / n), p_hat**2]).real)
        np.testing.assert_allclose(closed_loop.wilson_interval(k, n), roots, atol=1e-7)
    assert closed_loop.wilson_interval(0, 0) == (0.0, 1.0)
    assert math.isclose(closed_loop.WILSON_Z, 1.959964, abs_tol=1e-6)


def test_layout_seeds_set_the_layout_and_eval_seeds_are_disjoint():
    env = metaworld_env.MetaWorldEnv("pick-place-v3", render=False)
    layouts = []
    for seed in (3, 4, 3):
        first = env.reset(seed)["state"]
        layouts.append((env.layout, first))
    env.close()
    np.testing.assert_array_equal(layouts[0][0], layouts[2][0])
    np.testing.assert_array_equal(layouts[0][1], layouts[2][1])
    assert not np.allclose(layouts[0][0], layouts[1][0])
    config = _dataset.SimDatasetConfig(root=pathlib.Path("unused"), seed=5)
    assert max(_dataset.data_seeds(config, len(config.tasks) - 1)) < _dataset.EVAL_SEED_START


def test_expert_closed_loop_succeeds_with_filmstrips(tmp_path):
    report = closed_loop.evaluate(metaworld_env.Expert, ["push-v3"], 2, image_size=32, output_dir=tmp_path,
                                  progress=False)
    entry = report["tasks"]["push-v3"]
    assert entry["successes"] == 2 and entry["mean_steps_to_success"] < 150
    assert pathlib.Path(entry["filmstrips"]["success"]).exists()
    assert "| push-v3 | 2/2" in (tmp_path / "eval.md").read_text()


def test_tiny_policy_trains_on_sim_data_and_runs_closed_loop(sim_root, tmp_path, monkeypatch):
    from openpi.policies import policy_config
    from openpi.training import jax_trainer

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    name = "metaworld_demo_per_group"
    stats = _stats.compute_norm_stats(sim_root, progress=False)
    _normalize.save(tmp_path / "assets" / name / _config.SIM_REPO_ID, stats)
    config = _config.cli([
        name, "--exp-name=t", f"--data.root={sim_root}", f"--assets-base-dir={tmp_path / 'assets'}",
        f"--checkpoint-base-dir={tmp_path / 'checkpoints'}", "--batch-size=4", "--num-train-steps=3",
        "--save-interval=3", "--log-interval=1", "--overwrite", "--no-wandb-enabled",
    ])
    jax_trainer.train(config)
    metrics = [json.loads(line) for line in (config.checkpoint_dir / "metrics.jsonl").read_text().splitlines()]
    assert {"loss/arm", "loss/gripper"} <= set(metrics[-1])
    trained = policy_config.create_trained_policy(config, config.checkpoint_dir, num_steps=2)
    # Executed by the serving stack's chunk executor: a new chunk every 5 steps.
    executor = rollout.model_policy(trained, ChunkingConfig(replan_every=5), horizon=config.model.action_horizon)
    report = closed_loop.evaluate(lambda _task: executor, ["reach-v3"], 2, image_size=32, max_steps=12,
                                  progress=False)
    episodes = report["tasks"]["reach-v3"]["episodes"]
    assert len(episodes) == 2 and all(1 <= e["steps"] <= 12 for e in episodes)
    assert executor.queries == math.ceil(episodes[-1]["steps"] / 5)
