"""Checkpoint files: the step-directory layouts both trainers write (names in ``shared.checkpoint_files``) and the
loaders the trainers and the policy loader share.

JAX step directories are written by ``training/checkpoints`` (``params`` holds the EMA weights when EMA was on),
PyTorch ones by ``training/pytorch_trainer``. Either kind loads into either framework, converted on the fly.
"""

from __future__ import annotations

import pathlib
from typing import Literal

import safetensors.torch
from torch import nn

from openpi.models import model as _model
from openpi.models_pytorch import weight_conversion as _conversion
from openpi.shared import checkpoint_files as _files
from openpi.training import run_utils

Framework = Literal["jax", "pytorch"]
_EXPECTED = f"a step directory holding {_files.JAX_PARAMS}/ (JAX) or {_files.MODEL_FILE} (PyTorch)"


def checkpoint_kind(step_dir: pathlib.Path) -> Framework | None:
    """Which trainer wrote ``step_dir`` (from its files), or None when it holds neither layout."""
    if (step_dir / _files.JAX_PARAMS).is_dir():
        return "jax"
    if (step_dir / _files.MODEL_FILE).is_file():
        return "pytorch"
    return None


def resolve_step_dir(checkpoint_dir: str | pathlib.Path) -> pathlib.Path:
    """A step directory as given, or an experiment directory's latest step; a clear error otherwise."""
    path = pathlib.Path(checkpoint_dir).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"Checkpoint directory not found: {path} (expected {_EXPECTED}).")
    if checkpoint_kind(path) is not None:
        return path
    steps = run_utils.step_dirs(path)
    if not steps:
        found = sorted(p.name for p in path.iterdir())[:20]
        raise FileNotFoundError(
            f"{path} is not a checkpoint: expected {_EXPECTED}, or an experiment directory of numbered step "
            f"directories; it holds {found or 'nothing'}."
        )
    step_dir = path / str(steps[-1])
    if checkpoint_kind(step_dir) is None:
        found = sorted(p.name for p in step_dir.iterdir())
        raise FileNotFoundError(
            f"The latest checkpoint {step_dir} of {path} is incomplete: expected {_files.JAX_PARAMS}/ or {_files.MODEL_FILE}, "
            f"found {found or 'nothing'}."
        )
    return step_dir


def weights_path(step_dir: pathlib.Path, kind: Framework) -> pathlib.Path:
    """The weights of a step directory written by ``kind``'s trainer."""
    return step_dir / (_files.JAX_PARAMS if kind == "jax" else _files.MODEL_FILE)


def load_jax_params(step_dir: pathlib.Path, kind: Framework) -> _model.Params:
    """The JAX params of a step directory of either kind."""
    if kind == "jax":
        return _model.restore_params(step_dir / _files.JAX_PARAMS)
    params, _ = _conversion.torch_to_jax(_conversion.load_safetensors(step_dir / _files.MODEL_FILE))
    return params


def load_weights(model: nn.Module, path: pathlib.Path) -> None:
    """Loads ``model.safetensors`` (a file or a directory holding one) or an openpi JAX params checkpoint (the
    ``.../params`` directory or ``.npz``, converted on the fly)."""
    if path.is_dir() and (path / _files.MODEL_FILE).exists():
        path = path / _files.MODEL_FILE
    if path.suffix == ".safetensors":
        state_dict = safetensors.torch.load_file(str(path))
    else:
        state_dict, _ = _conversion.jax_to_torch(_conversion.load_jax_params(path))
    _conversion.load_into(model, state_dict)
