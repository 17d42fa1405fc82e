"""The config registry and CLI: names, the shared builder, overrides, early validation."""

import dataclasses

import numpy as np
import pytest

from openpi.policies import b1k_policy
from openpi.training import config as _config

REQUIRED = [
    "pi0_b1k",
    "pi05_b1k",
    "pi0_b1k_arm_focused",
    "pi0_b1k_very_arm_focused",
    "pi0_b1k_simple_arm_focused",
    "pi0_b1k_uniform",
    "phase1_arm_heavy",
    "phase2_full",
]


def test_every_required_config_and_its_demo_twin_is_registered():
    names = set(_config.configs())
    for name in REQUIRED:
        assert name in names and f"{name}_demo" in names


def test_arm_focused_matches_the_issue():
    config = _config.get_config("pi0_b1k_arm_focused")
    model = config.model
    assert model.pi05 and model.action_dim == 32 and model.action_horizon == 50
    lw = model.loss_weighting
    assert lw.strategy == "per_group"
    assert lw.groups.to_json() == {
        "base": "0:3",
        "trunk": "3:7",
        "left_arm": "7:14",
        "right_arm": "15:22",
        "grippers": "[14, 22]",
        "padding": "23:32",
    }
    assert dict(zip(lw.groups.names, lw.group_weights, strict=True)) == {
        "base": 1.0,
        "trunk": 2.0,
        "left_arm": 3.0,
        "right_arm": 3.0,
        "grippers": 2.5,
        "padding": 0.0,
    }
    very = _config.get_config("pi0_b1k_very_arm_focused").model.loss_weighting
    assert dict(zip(very.groups.names, very.group_weights, strict=True)) == {
        "base": 0.5,
        "trunk": 2.0,
        "left_arm": 5.0,
        "right_arm": 5.0,
        "grippers": 3.0,
        "padding": 0.0,
    }


def test_simple_arm_focused_puts_the_same_emphasis_on_each_dim():
    lw = _config.get_config("pi0_b1k_simple_arm_focused").model.loss_weighting
    assert lw.strategy == "per_dimension"
    w = np.asarray(lw.dimension_weights)
    expected = np.zeros(32)
    expected[0:3], expected[3:7], expected[7:14], expected[15:22], expected[[14, 22]] = 1.0, 2.0, 3.0, 3.0, 2.5
    # exclude_padding: mean 1 over the 23 real dims, not over all 32.
    assert lw.exclude_padding
    np.testing.assert_allclose(w, expected / expected[:23].mean())


@pytest.mark.parametrize("name", ["pi0_b1k_masked", "pi0_b1k_masked_demo", "pi0_b1k_adaptive", "pi0_b1k_arm_focused"])
def test_masked_configs_exclude_the_nine_padding_dims(name):
    lw = _config.get_config(name).model.loss_weighting
    assert lw.strategy == {"pi0_b1k_masked": "uniform", "pi0_b1k_adaptive": "adaptive"}.get(
        name.removesuffix("_demo"), "per_group"
    )
    assert lw.exclude_padding and lw.real_dims.sum() == 23 and not lw.real_dims[23:].any()


@pytest.mark.parametrize(
    ("name", "strategy"), [("pi0_b1k", "original"), ("pi05_b1k", "original"), ("pi0_b1k_uniform", "uniform")]
)
def test_baselines_keep_groups_for_metrics(name, strategy):
    config = _config.get_config(name)
    assert config.model.loss_weighting.strategy == strategy
    assert config.model.loss_weighting.groups is not None
    assert config.model.pi05 == (name != "pi0_b1k")


def test_variants_differ_only_in_weighting():
    base = _config.get_config("pi05_b1k")
    arm = _config.get_config("pi0_b1k_arm_focused")
    for field in dataclasses.fields(_config.TrainConfig):
        if field.name not in ("name", "model"):
            assert getattr(base, field.name) == getattr(arm, field.name), field.name
    weighting_fields = {"loss_weighting_strategy", "group_weights", "dimension_weights", "exclude_padding"}
    for field in dataclasses.fields(base.model):
        if field.name not in weighting_fields:
            assert getattr(base.model, field.name) == getattr(arm.model, field.name), field.name


def test_unknown_name_suggests_closest():
    with pytest.raises(ValueError, match="pi0_b1k_arm_focused"):
        _config.get_config("pi0_b1k_arm_focussed")


@pytest.mark.parametrize(
    "form", [["--config-name=pi0_b1k_arm_focused"], ["--config-name", "pi0_b1k_arm_focused"], ["pi0_b1k_arm_focused"]]
)
def test_cli_accepts_both_name_forms_and_overrides(form):
    config = _config.cli([*form, "--exp-name=run1", "--model.loss-weighting-strategy=original", "--batch-size=4"])
    assert config.name == "pi0_b1k_arm_focused" and config.exp_name == "run1" and config.batch_size == 4
    assert config.model.loss_weighting.strategy == "original"


def test_cli_unknown_name_exits_with_suggestion(capsys):
    with pytest.raises(SystemExit) as info:
        _config.cli(["--config-name=pi0_b1k_uniforn"])
    assert info.value.code == 2
    assert "pi0_b1k_uniform" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("override", "words"),
    [
        (
            [
                "--model.group-weights",
                "base",
                "1",
                "trunk",
                "2",
                "left_arm",
                "3",
                "right_arm",
                "3",
                "legs",
                "2",
                "padding",
                "0",
            ],
            ["legs", "unknown"],
        ),
        (
            [
                "--model.group-weights",
                "base",
                "1",
                "trunk",
                "2",
                "left_arm",
                "-3",
                "right_arm",
                "3",
                "grippers",
                "2",
                "padding",
                "0",
            ],
            ["left_arm", "negative"],
        ),
    ],
)
def test_invalid_override_fails_before_anything_is_built(override, words, capsys, monkeypatch):
    built = []
    monkeypatch.setattr(_config.LeRobotDataConfig, "create", lambda *a, **k: built.append(1))
    with pytest.raises(SystemExit):
        _config.cli(["pi0_b1k_arm_focused", *override])
    err = capsys.readouterr().err
    for word in words:
        assert word in err
    assert not built


def test_phase2_resumes_from_phase1_of_the_same_experiment():
    config = _config.cli(["phase2_full", "--exp-name=cur"])
    assert config.resume_from == "phase1_arm_heavy/cur"
    assert _config.get_config("phase1_arm_heavy").num_train_steps == 20_000


def test_resume_and_overwrite_conflict():
    with pytest.raises(ValueError, match="overwrite"):
        dataclasses.replace(_config.get_config("pi0_b1k_uniform"), resume=True, overwrite=True)


def test_true_layout_in_configs_does_not_warn(recwarn):
    b1k_policy.check_r1pro_layout(_config.get_config("pi0_b1k_arm_focused").model.action_groups)
    assert not recwarn.list
