"""Configs for any robot: by file or module path, NAME DIMS action groups, body roles, the LR schedule."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from openpi.analysis import common
from openpi.shared import action_groups as _groups
from openpi.training import config as _config
from openpi.training import optimizer as _optimizer

CONFIG_FILE = """
from openpi.training import config as _config

def my_robot():
    return _config.TrainConfig(
        model=_config.ModelConfig(**_config.DEMO_MODEL_FIELDS, pi05=True, loss_weighting_strategy="per_group",
                                  action_groups={"joints": "0:6"}, group_weights={"joints": 2.0}),
        data=_config.LeRobotDataConfig(repo_id="me/robot", robot="identity"),
        **_config.DEMO_TRAIN_FIELDS)

NOT_A_CONFIG = 3
"""


def test_a_config_file_or_module_path_works_wherever_a_name_does(tmp_path, monkeypatch):
    path = tmp_path / "my_configs.py"
    path.write_text(CONFIG_FILE)
    config = _config.get_config(f"{path}:my_robot")
    assert config.name == "my_robot"  # a nameless config takes the attribute's name (its assets and checkpoints)
    assert config.model.loss_weighting.groups.to_json() == {"joints": "0:6", "padding": "6:32"}
    parsed = _config.cli([f"{path}:my_robot", "--batch-size", "3", "--model.group-weights", "joints", "5"])
    assert parsed.batch_size == 3 and parsed.model.group_weights == {"padding": 0.0, "joints": 5.0}
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _config.get_config("my_configs:my_robot") == config
    assert _config.get_config("examples.configs.metaworld_sawyer:metaworld_sawyer").name == "metaworld_sawyer"
    with pytest.raises(ValueError, match="not a TrainConfig"):
        _config.get_config(f"{path}:NOT_A_CONFIG")
    with pytest.raises(ValueError, match=r"has no 'missing'.*my_robot"):
        _config.get_config(f"{path}:missing")
    with pytest.raises(ValueError, match="does not exist"):
        _config.get_config(f"{tmp_path}/nope.py:x")


def test_action_groups_parse_as_name_dims_pairs_and_help_shows_that_form():
    config = _config.cli([
        "lerobot_demo", "--model.action-groups", "xyz", "0:3", "gripper", "3", "wrist", "4,6",
        "--model.loss-weighting-strategy", "per_group", "--model.group-weights", "xyz", "1", "gripper", "2", "wrist", "3",
    ])  # fmt: skip
    groups = config.model.loss_weighting.groups
    assert dict(zip(groups.names, groups.dims, strict=True)) == {
        "xyz": (0, 1, 2), "gripper": (3,), "wrist": (4, 6), "padding": (5, *range(7, 32)),
    }  # fmt: skip
    weights = dict(zip(groups.names, config.model.loss_weighting.group_weights, strict=True))
    assert weights == {"xyz": 1.0, "gripper": 2.0, "wrist": 3.0, "padding": 0.0}
    with pytest.raises(ValueError, match="NAME DIMS pairs"):
        _groups.pairs_to_groups(["xyz", "0:3", "gripper"])
    with pytest.raises(ValueError, match="cannot parse"):
        _groups.pairs_to_groups(["xyz", "0-3"])
    out = subprocess.run(
        [sys.executable, "scripts/train.py", "lerobot_demo", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--model.action-groups NAME DIMS [NAME DIMS ...]" in out and "mapping-str-union" not in out


def test_body_roles_come_from_group_names_and_can_be_overridden():
    assert _groups.body_roles(["base", "trunk", "left_arm", "grippers", "padding"]) == {
        "base": "base", "trunk": "other", "left_arm": "arm", "grippers": "gripper", "padding": "other",
    }  # fmt: skip
    config = _config.cli(["lerobot_demo", "--model.action-groups", "xyz", "0:3", "gripper", "3",
                          "--model.body-roles", "xyz", "arm"])  # fmt: skip
    roles = common.BodyRoles.from_layout(config.model.loss_weighting.groups, config.model.group_roles)
    assert roles == common.BodyRoles(base=(), arms=(0, 1, 2), grippers=(3,))
    # R1Pro's roles derived from its group names are the ones the tools always used.
    r1pro = _config.get_config("pi0_b1k_arm_focused").model
    assert common.BodyRoles.from_layout(r1pro.loss_weighting.groups, r1pro.group_roles) == common.R1PRO_ROLES
    with pytest.raises(ValueError, match=r"unknown action groups \['arm'\]"):
        dataclasses.replace(config.model, body_roles={"arm": "arm"})


def test_a_layout_that_does_not_fit_the_data_is_refused():
    groups = _groups.ActionGroups.create({"xyz": "0:3", "gripper": "3", "padding": "4:8"}, 8)
    common.check_layout_fits(groups, 4, "test")  # fits
    with pytest.raises(ValueError, match=r"5-dim action: dims \[4\] belong to no named group"):
        common.check_layout_fits(groups, 5, "test")
    with pytest.raises(ValueError, match="reach past them"):
        common.check_layout_fits(groups, 3, "test")


def test_lr_decay_follows_num_train_steps_unless_set():
    config = _config.cli(["pi05_b1k_demo", "--num-train-steps", "1000"])
    assert config.schedule.decay_steps == 1000
    lr = [float(_optimizer.learning_rate(config.schedule, s)) for s in (999, 1000)]
    np.testing.assert_allclose(lr, config.lr_schedule.decay_lr, rtol=1e-2)  # fully decayed at the last step
    fixed = _config.cli(["pi05_b1k_demo", "--num-train-steps", "1000", "--lr-schedule.decay-steps", "300"])
    assert fixed.schedule.decay_steps == 300
