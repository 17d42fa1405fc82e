"""pi0.5 on B1K with upstream openpi's uniform loss (mean over dims).

Registered as ``pi0_b1k_uniform``; this seed-style entry point builds it through the shared builder in
``openpi.training.config``, so it never drifts from ``scripts/train.py --config-name=pi0_b1k_uniform``.

    from examples.configs.pi0_b1k_uniform import Pi0B1KUniformConfig
    config = Pi0B1KUniformConfig(exp_name="my_run")  # any TrainConfig field can be overridden
"""

from openpi.training import config as _config


def Pi0B1KUniformConfig(**overrides) -> _config.TrainConfig:
    """The ``pi0_b1k_uniform`` TrainConfig, with ``overrides`` applied (e.g. ``exp_name``, ``batch_size``)."""
    return _config.named_config("pi0_b1k_uniform", **overrides)
