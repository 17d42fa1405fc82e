"""The names of the files and directories in a checkpoint: the one place that knows them (a leaf module, so the
trainers, the checkpoint loaders and the weight converter can all import it).

A step directory ``<exp>/<step>`` holds ``assets/<asset_id>/norm_stats.json`` and either
- JAX: ``params/`` (orbax ``{"params": ...}``) and ``train_state/``, or
- PyTorch: ``model.safetensors``, ``optimizer.pt`` and ``metadata.pt``.
A converted PyTorch model directory holds ``model.safetensors`` and ``config.json``.
"""

import pathlib

JAX_PARAMS = "params"
JAX_TRAIN_STATE = "train_state"
ASSETS = "assets"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
METADATA_FILE = "metadata.pt"
CONVERTED_CONFIG_FILE = "config.json"


def assets_dir(step_dir: pathlib.Path, asset_id: str) -> pathlib.Path:
    """Where a step directory keeps the norm stats of ``asset_id``."""
    return step_dir / ASSETS / asset_id
