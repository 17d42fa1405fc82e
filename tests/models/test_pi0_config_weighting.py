import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from openpi.models import pi0_loss_utils as jlu
from openpi.models.pi0_config import Pi0Config
from openpi.policies import b1k_policy
from openpi.shared import loss_weighting as lw


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


# ---- which strategy reads which field --------------------------------------------------------------------------

GROUPS = b1k_policy.R1PRO_ACTION_GROUPS_COMBINED_GRIPPERS
WEIGHTS = {"base": 1.0, "trunk": 2.0, "left_arm": 3.0, "right_arm": 3.0, "grippers": 2.5, "padding": 0.0}
OTHER_VALUES = {
    "group_weights": {**WEIGHTS, "base": 5.0},
    "use_delta_weighting": False,
    # The time weight clip(alpha + beta * min(Δ, cap), min, max) is at most 0.7 with the defaults: max_weight 0.5 binds.
    "delta_alpha": 0.5, "delta_beta": 2.0, "delta_cap": 0.3, "delta_min_weight": 0.3, "delta_max_weight": 0.5,
    "adaptive_decay": 0.5, "adaptive_warmup_steps": 2,
}


def _applied_weights(config: Pi0Config) -> np.ndarray:
    """The [B, H, D] weights a run of ``config`` applies at its 30th step (adaptive: after 29 updates of its state
    from a loss history in which the groups improve at different rates)."""
    weighting = config.loss_weighting
    rng = np.random.default_rng(0)
    steps = rng.uniform(0.0, 1.5, (2, 10, 1)) * rng.standard_normal((2, 10, config.action_dim))
    actions = jnp.asarray(np.cumsum(steps, axis=1), jnp.float32)
    balance = None
    if weighting.strategy == "adaptive":
        state = {k: jnp.asarray(v) for k, v in lw.adaptive_init(weighting).items()}
        rates = np.linspace(0.8, 0.99, len(weighting.groups.names))
        for step in range(29):
            state = jlu.adaptive_update(weighting, state, jnp.asarray(rates**step, jnp.float32))
        balance = jlu.adaptive_balance_weights(weighting, state)
    return np.asarray(jlu.full_loss_weights(weighting, actions, balance_weights=balance))


@pytest.mark.parametrize("strategy", lw.STRATEGIES)
@pytest.mark.parametrize("use_delta", [True, False])
def test_a_field_is_reported_unused_exactly_when_changing_it_changes_nothing(strategy, use_delta):
    reads_weights = strategy in ("per_group", "per_dimension")
    base = Pi0Config(loss_weighting_strategy=strategy, action_groups=GROUPS, use_delta_weighting=use_delta,
                     group_weights=WEIGHTS if reads_weights else None)
    base_unused = lw.unused_fields(base)
    # use_delta_weighting=False is itself unused unless the strategy is per_group.
    assert set(base_unused) == ({"use_delta_weighting"} if not use_delta and strategy != "per_group" else set())
    expected = _applied_weights(base)
    for field, value in OTHER_VALUES.items():
        if value == getattr(base, field):
            continue
        unused = lw.unused_fields(changed := dataclasses.replace(base, **{field: value}))
        assert set(unused) - set(base_unused) <= {field}
        no_effect = np.allclose(_applied_weights(changed), expected, rtol=1e-6, atol=1e-7)
        assert (field in unused) == no_effect, (strategy, use_delta, field, unused)


def test_per_dimension_weights_make_group_weights_unused():
    config = Pi0Config(loss_weighting_strategy="per_dimension", action_groups=GROUPS, group_weights=WEIGHTS,
                       dimension_weights=[1.0] * 32)
    assert lw.unused_fields(config) == {
        "group_weights": "strategy 'per_dimension' uses dimension_weights when both are set"
    }
