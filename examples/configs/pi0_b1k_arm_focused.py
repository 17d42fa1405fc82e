"""pi0.5 on B1K with arm-focused per-group loss weighting: base 1.0, trunk 2.0, arms 3.0, grippers 2.5, padding 0.

Registered as ``pi0_b1k_arm_focused``; this seed-style entry point builds it through the shared builder in
``openpi.training.config``, so it never drifts from ``scripts/train.py --config-name=pi0_b1k_arm_focused``.

    from examples.configs.pi0_b1k_arm_focused import Pi0B1KArmFocusedConfig
    config = Pi0B1KArmFocusedConfig(exp_name="my_run")  # any TrainConfig field can be overridden
"""

from openpi.training import config as _config


def Pi0B1KArmFocusedConfig(**overrides) -> _config.TrainConfig:
    """The ``pi0_b1k_arm_focused`` TrainConfig, with ``overrides`` applied (e.g. ``exp_name``, ``batch_size``)."""
    return _config.named_config("pi0_b1k_arm_focused", **overrides)
