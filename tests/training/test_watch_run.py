"""What a run shows while it trains: wandb's grouping, tags and run config, and a log without library reprs."""

import logging
import types

import pytest

from openpi.training import checkpoints
from openpi.training import config as _config
from openpi.training import run_utils


@pytest.fixture
def wandb_calls(monkeypatch, tmp_path):
    """The keyword arguments of every ``wandb.init`` call (nothing is started)."""
    import wandb

    calls = []

    def init(**kwargs):
        calls.append(kwargs)
        return types.SimpleNamespace(id="run-id")

    monkeypatch.setattr(wandb, "init", init)
    monkeypatch.setenv("WANDB_MODE", "offline")
    return calls


def _init(name: str, tmp_path, *overrides: str) -> dict:
    config = _config.cli([name, f"--checkpoint-base-dir={tmp_path}", *overrides])
    run_utils.init_wandb(config, config.data_config(), tmp_path, resuming=False)
    return config


def test_runs_are_grouped_by_config_and_strategy_and_tagged_with_levers(wandb_calls, tmp_path):
    _init("pi0_b1k_arm_focused_demo", tmp_path, "--exp-name=seed0")
    _init("pi05_b1k_delta_pertimestep_demo", tmp_path, "--exp-name=seed0")
    _init("phase1_arm_heavy_demo", tmp_path, "--exp-name=seed0")
    _init("pi05_b1k_demo", tmp_path, "--exp-name=seed1")
    focused, delta, phase1, original = wandb_calls
    assert focused["group"] == "pi0_b1k_arm_focused_demo-per_group" and focused["name"] == "seed0"
    assert focused["tags"] == ["per_group", "pi0_b1k_arm_focused_demo", "norm:quantile", "exclude_padding",
                               "delta_weighting"]  # per_group keeps the time weights by default
    assert delta["group"] == "pi05_b1k_delta_pertimestep_demo-uniform"
    assert {"uniform", "norm:quantile", "per_timestep_norm", "delta_actions"} <= set(delta["tags"])
    assert not {"exclude_padding", "delta_weighting"} & set(delta["tags"])
    assert "episodes:arm_heavy_episodes" in phase1["tags"]  # the arm-heavy selection
    assert original["group"] == "pi05_b1k_demo-original" and "delta_weighting" in original["tags"]


def test_run_config_records_the_resolved_action_layout_and_weights(wandb_calls, tmp_path):
    _init("pi0_b1k_arm_focused_demo", tmp_path)
    layout = wandb_calls[0]["config"]["action_layout"]
    assert layout["groups"]["base"] == [0, 1, 2] and layout["groups"]["grippers"] == [14, 22]
    assert layout["groups"]["padding"] == list(range(23, 32))
    assert layout["group_weights"] == {"base": 1.0, "trunk": 2.0, "left_arm": 3.0, "right_arm": 3.0,
                                       "grippers": 2.5, "padding": 0.0}
    assert layout["robot_action_dim"] == 23 and layout["model_action_dim"] == 32


@pytest.fixture
def restore_logger_levels():
    levels = {name: logging.getLogger(name).level for name in run_utils.QUIET_LOGGERS}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_library_info_lines_are_quiet_and_ours_stay(tmp_path, caplog, restore_logger_levels):
    caplog.set_level(logging.INFO)
    for name in run_utils.QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    checkpoints.manager(tmp_path / "a", keep_period=None).close()
    assert any("CheckpointManager" in r.getMessage() for r in caplog.records)  # orbax's repr, what make demo showed
    caplog.clear()
    run_utils.quiet_library_logs()
    checkpoints.manager(tmp_path / "b", keep_period=None).close()
    logging.getLogger("openpi").info("our own line")
    assert [r.getMessage() for r in caplog.records] == ["our own line"]
    logging.getLogger("absl").warning("a library warning")
    assert caplog.records[-1].getMessage() == "a library warning"
