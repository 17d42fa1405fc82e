"""Build a `Policy` from a training config and a checkpoint written by the JAX or the PyTorch trainer.

Either checkpoint kind (layouts in ``training/checkpoint_io``) runs in either framework (weights converted on
load), so one checkpoint can be checked in both.
"""

from __future__ import annotations

import logging
import pathlib

from openpi import transforms as _transforms
from openpi.models_pytorch import pi0_pytorch
from openpi.policies import policy as _policy
from openpi.shared import checkpoint_files
from openpi.shared import normalize as _normalize
from openpi.training import checkpoint_io as _checkpoint_io
from openpi.training import config as _config

logger = logging.getLogger("openpi")

def load_norm_stats(
    step_dir: pathlib.Path, data_config: _config.DataConfig
) -> tuple[dict[str, _normalize.NormStats], str]:
    """The norm stats the checkpoint was trained with (its assets), else the config's (``data_config.stats_file``)
    with a warning."""
    fallback = data_config.stats_file
    stored = checkpoint_files.assets_dir(step_dir, data_config.asset_id)
    if (stored / _normalize.NORM_STATS_FILE).exists():
        stats = _normalize.load(stored)
        _normalize.check_usable(stats, stored / _normalize.NORM_STATS_FILE)
        return stats, str(stored / _normalize.NORM_STATS_FILE)
    assets_root = checkpoint_files.assets_dir(step_dir, "")
    trained_on = sorted(str(p.parent.relative_to(assets_root)) for p in assets_root.rglob(_normalize.NORM_STATS_FILE))
    if trained_on:  # the checkpoint keeps stats, of other data: it was trained with another config
        raise ValueError(
            f"Checkpoint {step_dir} was trained on {', '.join(trained_on)} (its assets), but this config reads "
            f"{data_config.asset_id!r}: it was trained with another config. Give that config's name (and the "
            "overrides the run used)."
        )
    if data_config.norm_stats is None:
        raise FileNotFoundError(
            f"No norm stats for {step_dir}: neither {stored / _normalize.NORM_STATS_FILE} (the checkpoint's assets) "
            f"nor {fallback} (the config's assets) exists. Write them with scripts/compute_norm_stats.py."
        )
    logger.warning(
        "Checkpoint %s stores no norm stats under assets/%s; using the config's %s. If they changed since "
        "training, the policy's actions are scaled wrongly.",
        step_dir,
        data_config.asset_id,
        fallback,
    )
    return dict(data_config.norm_stats), str(fallback)


def _jax_model(model_config: _config.ModelConfig, step_dir: pathlib.Path, kind: _checkpoint_io.Framework):
    return model_config.load(_checkpoint_io.load_jax_params(step_dir, kind))


def _pytorch_model(model_config: _config.ModelConfig, step_dir: pathlib.Path, kind: _checkpoint_io.Framework):
    model = pi0_pytorch.PI0Pytorch(model_config)
    _checkpoint_io.load_weights(model, _checkpoint_io.weights_path(step_dir, kind))
    return model


def _without_actions(repack: _transforms.Group) -> list[_transforms.DataTransformFn]:
    """The repack inputs without the ``actions`` entry: observations at inference have no actions."""
    return [
        _transforms.Repack({k: v for k, v in t.structure.items() if k != "actions"})
        if isinstance(t, _transforms.Repack)
        else t
        for t in repack.inputs
    ]


def create_trained_policy(
    train_config: _config.TrainConfig,
    checkpoint_dir: str | pathlib.Path,
    *,
    num_steps: int = 10,
    seed: int = 0,
    framework: _checkpoint_io.Framework | None = None,
) -> _policy.Policy:
    """The policy of a trained checkpoint (a step directory, or an experiment directory: its latest step).

    ``framework`` picks the runtime (default: the framework that wrote the checkpoint). Inputs are the dataset's
    raw observation dicts (camera, state and task keys of ``train_config.data``); outputs raw robot actions.
    """
    step_dir = _checkpoint_io.resolve_step_dir(checkpoint_dir)
    kind = _checkpoint_io.checkpoint_kind(step_dir)
    framework = framework or kind
    if framework not in ("jax", "pytorch"):
        raise ValueError(f"framework must be 'jax' or 'pytorch', got {framework!r}.")
    data_config = train_config.data_config()
    norm_stats, stats_origin = load_norm_stats(step_dir, data_config)
    build = _jax_model if framework == "jax" else _pytorch_model
    model = build(train_config.model, step_dir, kind)
    logger.info("Loaded %s checkpoint %s into %s; norm stats from %s.", kind, step_dir, framework, stats_origin)
    metadata = {
        "checkpoint": str(step_dir),
        "checkpoint_kind": kind,
        "framework": framework,
        "norm_stats": stats_origin,
        "config_name": train_config.name,
    }
    return create_policy(data_config, model, norm_stats, num_steps=num_steps, seed=seed, metadata=metadata)


def create_policy(
    data_config: _config.DataConfig,
    model,
    norm_stats: dict[str, _normalize.NormStats],
    *,
    num_steps: int = 10,
    seed: int = 0,
    metadata: dict | None = None,
) -> _policy.Policy:
    """``model`` (JAX ``Pi0`` or ``PI0Pytorch``, e.g. the one a run is training) behind the config's transforms:
    what ``create_trained_policy`` returns for a checkpoint, and the training loop's validation samples through."""
    use_quantiles = data_config.use_quantile_norm
    return _policy.Policy(
        model,
        repack_transforms=_without_actions(data_config.repack_transforms),
        transforms=[
            *data_config.data_transforms.inputs,
            _transforms.Normalize(norm_stats, use_quantiles=use_quantiles),
            *data_config.model_transforms.inputs,
        ],
        output_transforms=[
            *data_config.model_transforms.outputs,
            _transforms.Unnormalize(norm_stats, use_quantiles=use_quantiles),
            *data_config.data_transforms.outputs,
            *data_config.repack_transforms.outputs,
        ],
        num_steps=num_steps,
        seed=seed,
        # the raw observation keys the policy reads
        metadata={**(metadata or {}), "input_keys": sorted(data_config.observation_keys)},
    )
