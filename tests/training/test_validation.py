"""In-training validation equals scripts/eval_policy.py on the checkpoint of the same step, in both trainers; it is
off, with one notice, when the run holds no episode out."""

import json
import logging

import pytest

from openpi.analysis import arm_heavy
from openpi.datasets import episode_files
from openpi.experiments import evaluation
from openpi.training import config as _config
from openpi.training import jax_trainer
from openpi.training import pytorch_trainer
from openpi.training import validation

NAME = "pi0_b1k_arm_focused_demo"
TRAINED = [10, 10010]  # one episode of each of the miniature dataset's two tasks; 20 and 10020 are held out
HELD_OUT = [20, 10020]  # 49 and 65 frames: one 50-step window (episode 10020's), as long as the stride is >= 16
# float32 sampling of the same weights, inputs and noise in the same batches: equal up to float32 rounding (they
# came out identical, relative difference 0.0, in both frameworks).
RTOL = 1e-4


@pytest.fixture
def run_args(demo_run_dir):
    tmp, args = demo_run_dir(NAME)
    episodes = tmp / "train_episodes.json"
    episode_files.save_episode_list(episodes, arm_heavy.EpisodeSelection(episodes=TRAINED, details={}),
                                    criterion=arm_heavy.Criterion())
    return tmp, [*args, f"--data.episodes-path={episodes}", "--no-wandb-enabled"]


def _eval_policy(tmp, args, step_dir):
    """eval_policy.py's evaluation (experiments.evaluation.offline) of the checkpoint on the run's windows: the
    held-out episodes (one per task here) with a chunk every 50 frames."""
    config = _config.cli([NAME, *args])
    offline = evaluation.OfflineArgs(
        config_name=NAME, config_overrides=tuple(args), root=config.data.root, checkpoint=str(step_dir),
        num_episodes=1, stride=50, output_dir=str(tmp / "eval"),
    )
    report = evaluation.offline(offline)
    assert report["episodes"] == HELD_OUT
    return report


def _check_equal(metrics_path, report, step):
    (row,) = [r for r in map(json.loads, metrics_path.read_text().splitlines()) if r["step"] == step]
    logged = {k: v for k, v in row.items() if k.startswith("val/") and k != "val/seconds"}
    expected = validation.flat_metrics(report["overall"])
    # (the window's arms stand still, so the arm activity ratio is undefined and left out by both)
    assert {"val/mse_normalized/left_arm", "val/mse_raw/base", "val/gripper_agreement"} <= set(expected)
    assert set(logged) == set(expected)
    for key, value in expected.items():
        assert logged[key] == pytest.approx(value, rel=RTOL, abs=1e-7), key
    assert row["val/seconds"] > 0


def test_jax_validation_equals_eval_policy_on_the_final_checkpoint(run_args, caplog):
    tmp, args = run_args
    # With EMA the checkpoint holds the averaged weights; validation must sample from those too.
    train_args = [*args, "--exp-name=val", "--num-train-steps=3", "--save-interval=3", "--val-interval=2",
                  "--ema-decay=0.5"]
    config = _config.cli([NAME, *train_args])
    with caplog.at_level(logging.INFO, logger="openpi"):
        jax_trainer.train(config, progress=False)
    assert "Validation every 2 steps on 1 held-out windows of episodes [20, 10020]" in caplog.text
    rows = [json.loads(line) for line in (config.checkpoint_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "val/gripper_agreement" in r] == [2, 3]  # every 2 steps and the last
    _check_equal(config.checkpoint_dir / "metrics.jsonl", _eval_policy(tmp, args, config.checkpoint_dir / "3"), 3)


def test_pytorch_validation_equals_eval_policy_on_the_final_checkpoint(run_args, one_torch_thread):
    tmp, args = run_args
    config = _config.cli([NAME, *args, "--exp-name=val_pt", "--num-train-steps=2", "--save-interval=2",
                          "--val-interval=2"])
    model = pytorch_trainer.train(config, progress=False)
    assert model.training  # validation put the model back in train mode
    _check_equal(config.checkpoint_dir / "metrics.jsonl", _eval_policy(tmp, args, config.checkpoint_dir / "2"), 2)


def test_no_heldout_episodes_turns_validation_off_with_one_notice(demo_run_dir, caplog):
    _, args = demo_run_dir(NAME)
    config = _config.cli([NAME, *args, "--exp-name=off", "--num-train-steps=1", "--no-wandb-enabled"])
    with caplog.at_level(logging.INFO, logger="openpi"):
        assert validation.create_validator(config, config.data_config()) is None
    (line,) = [r.getMessage() for r in caplog.records if "Validation" in r.getMessage()]
    assert line.startswith("Validation is off: the config has no training-episode list")
