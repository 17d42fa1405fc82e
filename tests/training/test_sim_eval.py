"""Closed-loop success during training: a simulator config logs sim/<task>/success from the live model; any other
config asking for it is refused before anything is written."""

import json

import pytest

from openpi.datasets import stats as _stats
from openpi.shared import normalize as _normalize
from openpi.sim import dataset as _dataset
from openpi.training import config as _config
from openpi.training import jax_trainer

NAME = "metaworld_demo_per_group"


def test_simulator_config_logs_closed_loop_success_during_training(tmp_path):
    root = _dataset.write_dataset(
        _dataset.SimDatasetConfig(root=tmp_path / "data", tasks=("reach-v3",), episodes_per_task=1, image_size=32),
        progress=False,
    )
    _normalize.save(tmp_path / "assets" / NAME / _config.SIM_REPO_ID, _stats.compute_norm_stats(root, progress=False))
    config = _config.cli([
        NAME, "--exp-name=t", f"--data.root={root}", f"--assets-base-dir={tmp_path / 'assets'}",
        f"--checkpoint-base-dir={tmp_path / 'checkpoints'}", "--batch-size=4", "--num-train-steps=2",
        "--save-interval=2", "--log-interval=2", "--no-wandb-enabled", "--sim-eval-interval=2",
        "--sim-eval-episodes=2", "--sim-eval-tasks", "reach-v3", "--sim-eval-max-steps=10",
    ])
    jax_trainer.train(config, progress=False)
    (row,) = [json.loads(line) for line in (config.checkpoint_dir / "metrics.jsonl").read_text().splitlines()]
    assert row["step"] == 2 and "loss/arm" in row
    assert row["sim/reach-v3/success"] in (0.0, 0.5, 1.0)  # 2 episodes
    assert row["sim/seconds"] > 0
    assert not any(k.startswith("val/") for k in row)  # no held-out episodes: offline validation is off


def test_sim_eval_on_a_non_simulator_config_is_a_config_error(demo_run_dir):
    tmp, args = demo_run_dir("pi0_b1k_arm_focused_demo")
    config = _config.cli(["pi0_b1k_arm_focused_demo", *args, "--exp-name=x", "--sim-eval-interval=5"])
    with pytest.raises(ValueError, match=r"--sim-eval-interval=5: config 'pi0_b1k_arm_focused_demo' trains on "
                                         r"'openpi/mini_b1k', not on a simulator's data .*Set --sim-eval-interval=0"):
        jax_trainer.train(config, progress=False)
    assert not (tmp / "checkpoints").exists()  # refused before the experiment directory was made


def test_mobile_success_is_logged_for_navigation_and_manipulation_separately(tmp_path):
    """The mobile suite's evaluator on an untrained model (norm stats written by hand: no dataset needed)."""
    import jax
    import numpy as np

    from openpi.sim import mobile_env
    from openpi.training import mobile_configs
    from openpi.training import validation

    name = "mobile_demo"
    stats = {key: _normalize.NormStats(mean=np.zeros(dim), std=np.ones(dim))
             for key, dim in (("state", mobile_env.STATE_DIM), ("actions", mobile_env.ACTION_DIM))}
    _normalize.save(tmp_path / "assets" / name / mobile_configs.MOBILE_REPO_ID, stats)
    task = mobile_env.DEFAULT_TASKS[0]
    config = _config.cli([name, f"--assets-base-dir={tmp_path / 'assets'}", "--sim-eval-interval=1",
                          "--sim-eval-episodes=1", "--sim-eval-tasks", task, "--sim-eval-max-steps=4"])
    evaluator = validation.create_sim_evaluator(config, config.data_config())
    record = evaluator(config.model.create(jax.random.key(0)))
    assert set(record) <= {f"sim/{task}/{k}" for k in ("success", "navigation", "manipulation", "arm_activity_ratio")}
    assert {f"sim/{task}/success", f"sim/{task}/navigation", f"sim/{task}/manipulation"} <= set(record)
    assert record[f"sim/{task}/success"] == 0.0  # 4 steps do not reach the table
