import dataclasses

import pytest

from openpi.models.pi0_config import Pi0Config
from openpi.policies import b1k_policy


def test_defaults_follow_upstream():
    config = Pi0Config()
    assert config.loss_weighting_strategy == "uniform"
    assert config.max_token_len == 48 and not config.discrete_state_input
    pi05 = Pi0Config(pi05=True)
    assert pi05.max_token_len == 200 and pi05.discrete_state_input


def test_invalid_weighting_fails_at_construction():
    with pytest.raises(ValueError, match="legs"):
        Pi0Config(
            loss_weighting_strategy="per_group",
            action_groups=b1k_policy.R1PRO_ACTION_GROUPS_COMBINED_GRIPPERS,
            group_weights={"legs": 1.0},
        )
    with pytest.raises(ValueError, match="min_weight"):
        Pi0Config(loss_weighting_strategy="original", delta_min_weight=0.0)


def test_weighting_reflects_config_and_replace():
    weights = {"base": 1.0, "trunk": 2.0, "left_arm": 3.0, "right_arm": 3.0, "grippers": 2.5, "padding": 0.0}
    config = Pi0Config(
        loss_weighting_strategy="per_group",
        action_groups=b1k_policy.R1PRO_ACTION_GROUPS_COMBINED_GRIPPERS,
        group_weights=weights,
        delta_cap=0.25,
    )
    lw = config.loss_weighting
    assert lw.strategy == "per_group" and lw.delta.cap == 0.25
    assert dict(zip(lw.groups.names, lw.group_weights, strict=True)) == weights
    assert lw.to_json()["action_groups"]["grippers"] == "[14, 22]"
    original = dataclasses.replace(config, loss_weighting_strategy="original")
    assert original.loss_weighting.strategy == "original" and original.loss_weighting.group_weights is None
    assert original.loss_weighting.groups is not None  # groups still drive the per-group metrics
