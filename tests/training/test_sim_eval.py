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
