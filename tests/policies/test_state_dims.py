"""``data.state_dims``: the model sees (and norm stats cover) only the chosen dims of the converted state."""

import numpy as np
import pytest

from openpi.policies import b1k_policy
from openpi.policies import lerobot_policy
from openpi.training import config as _config


def test_inputs_keep_the_chosen_dims_in_the_given_order():
    state = np.arange(39, dtype=np.float32) * 0.5
    out = lerobot_policy.LeRobotInputs(state_dims=(38, 0, 2))({"state": state})
    np.testing.assert_array_equal(out["state"], [19.0, 0.0, 1.0])
    column = np.stack([state, state + 1])
    np.testing.assert_array_equal(lerobot_policy.LeRobotInputs(state_dims=(1,)).convert_state(column), [[0.5], [1.5]])
    assert lerobot_policy.LeRobotInputs()({"state": state})["state"].shape == (39,)


def test_an_index_outside_the_state_names_the_field_and_the_state_size():
    with pytest.raises(ValueError, match=r"data.state_dims .* \[39\] outside the dataset's 39-dim state"):
        lerobot_policy.LeRobotInputs(state_dims=(0, 39))({"state": np.zeros(39)})
    # B1K dims index the 23-dim converted state, not the 256-dim proprio.
    with pytest.raises(ValueError, match="23-dim state"):
        b1k_policy.B1KInputs(state_dims=(30,)).convert_state(np.zeros(256))


def test_config_field_parses_from_the_cli_and_rejects_bad_indices():
    config = _config.cli(["pi05_b1k_demo", "--data.state-dims", "7", "8", "22"])
    assert config.data.state_dims == (7, 8, 22)
    proprio = np.random.default_rng(0).normal(size=256).astype(np.float32)
    got = config.data.robot_inputs()({"state": proprio})["state"]
    np.testing.assert_array_equal(got, b1k_policy.proprio_to_state(proprio)[[7, 8, 22]])
    for bad in ((), (-1,), (3, 3)):
        with pytest.raises(ValueError, match=r"data\.state_dims"):
            _config.LeRobotDataConfig(state_dims=bad)
