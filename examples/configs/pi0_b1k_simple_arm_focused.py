"""pi0.5 on B1K with fixed per-dimension weights (the arm-focused emphasis per dim, no time weighting).

Registered as ``pi0_b1k_simple_arm_focused``; this seed-style entry point builds it through the shared builder in
``openpi.training.config``, so it never drifts from ``scripts/train.py --config-name=pi0_b1k_simple_arm_focused``.

    from examples.configs.pi0_b1k_simple_arm_focused import Pi0B1KSimpleArmFocusedConfig
    config = Pi0B1KSimpleArmFocusedConfig(exp_name="my_run")  # any TrainConfig field can be overridden
"""

from openpi.training import config as _config


def Pi0B1KSimpleArmFocusedConfig(**overrides) -> _config.TrainConfig:
    """The ``pi0_b1k_simple_arm_focused`` TrainConfig, with ``overrides`` applied (e.g. ``exp_name``, ``batch_size``)."""
    return _config.named_config("pi0_b1k_simple_arm_focused", **overrides)
