import importlib
import pathlib
import sys

import pytest

from openpi.training import config as _config

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))


@pytest.mark.parametrize(
    ("module", "entry", "name"),
    [
        ("pi0_b1k_arm_focused", "Pi0B1KArmFocusedConfig", "pi0_b1k_arm_focused"),
        ("pi0_b1k_very_arm_focused", "Pi0B1KVeryArmFocusedConfig", "pi0_b1k_very_arm_focused"),
        ("pi0_b1k_simple_arm_focused", "Pi0B1KSimpleArmFocusedConfig", "pi0_b1k_simple_arm_focused"),
        ("pi0_b1k_uniform", "Pi0B1KUniformConfig", "pi0_b1k_uniform"),
    ],
)
def test_example_configs_are_the_registered_ones(module, entry, name):
    build = getattr(importlib.import_module(f"examples.configs.{module}"), entry)
    assert build() == _config.get_config(name)
    custom = build(exp_name="mine", batch_size=8)
    assert custom.exp_name == "mine" and custom.batch_size == 8 and custom.model == _config.get_config(name).model


def test_example_overrides_are_validated():
    from examples.configs.pi0_b1k_arm_focused import Pi0B1KArmFocusedConfig

    with pytest.raises(ValueError, match="overwrite"):
        Pi0B1KArmFocusedConfig(resume=True, overwrite=True)
