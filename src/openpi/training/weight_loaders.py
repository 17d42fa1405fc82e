"""Weight loaders: turn a model's freshly initialised parameters into the parameters training starts from.

``load(params)`` receives the model's parameter tree (pure dict of arrays or ``jax.ShapeDtypeStruct``) and
returns a tree with the same names, shapes and dtypes.
"""

import dataclasses
import logging
import pathlib
import re
from typing import Protocol
from typing import runtime_checkable

import flax.traverse_util as traverse_util
import numpy as np

from openpi.models import model as _model
from openpi.models import tokenizer as _tokenizer

logger = logging.getLogger("openpi")


def local_asset_path(path: str) -> pathlib.Path:
    """A local path for ``path``; a remote URL (``gs://bucket/a/b``) maps to openpi's cache
    ``$OPENPI_DATA_HOME/bucket/a/b``, which must already exist (nothing is downloaded)."""
    _, sep, rest = path.partition("://")
    if not sep:
        return pathlib.Path(path).expanduser()
    local = _tokenizer.openpi_data_home() / rest
    if not local.exists():
        raise FileNotFoundError(
            f"{path} is not in the local openpi cache (looked at {local}); this project never downloads. Copy it "
            f"there (e.g. `gsutil -m cp -r {path} {local.parent}/`), set OPENPI_DATA_HOME to the cache that holds it, "
            "or pass a local path."
        )
    return local


@runtime_checkable
class WeightLoader(Protocol):
    def load(self, params: _model.Params) -> _model.Params:
        """Loads weights into ``params`` (the model's init tree) and returns the result."""


@dataclasses.dataclass(frozen=True)
class NoOpWeightLoader(WeightLoader):
    """Keeps the model's initial weights (training from scratch)."""

    def load(self, params: _model.Params) -> _model.Params:
        return params


@dataclasses.dataclass(frozen=True)
class CheckpointWeightLoader(WeightLoader):
    """Loads an openpi params checkpoint (the ``.../params`` directory, orbax; ``gs://...`` is looked up in the
    local openpi cache, see ``local_asset_path``).

    Extra checkpoint leaves are dropped, LoRA leaves the checkpoint lacks keep their initial values, leaves are cast
    to the model's dtypes, and any other missing leaf or shape mismatch is an error naming the leaf.
    """

    params_path: str

    def load(self, params: _model.Params) -> _model.Params:
        loaded = _model.restore_params(local_asset_path(self.params_path), restore_type=np.ndarray)
        return merge_params(loaded, params, missing_regex=".*lora.*", source=self.params_path)


@dataclasses.dataclass(frozen=True)
class PaliGemmaWeightLoader(WeightLoader):
    """Loads PaliGemma weights from a local big_vision ``.npz`` (e.g. ``pt_224.npz``; never downloaded).

    The file's ``params/...`` leaves become ``PaliGemma/...``; everything PaliGemma lacks (the action expert,
    projections) keeps its initial values.
    """

    npz_path: str

    def load(self, params: _model.Params) -> _model.Params:
        path = local_asset_path(self.npz_path)
        if not path.is_file():
            raise FileNotFoundError(
                f"PaliGemma weights not found at {path}; download big_vision's pt_224.npz once and pass its local path."
            )
        with np.load(path, allow_pickle=False) as data:
            flat = {key: data[key] for key in data.files}
        tree = traverse_util.unflatten_dict(flat, sep="/")
        if "params" not in tree:
            raise ValueError(f"{path} has no 'params/...' arrays (top-level keys: {sorted(tree)}).")
        return merge_params({"PaliGemma": tree["params"]}, params, missing_regex=".*", source=str(path))


def merge_params(
    loaded: _model.Params, params: _model.Params, *, missing_regex: str, source: str = "checkpoint"
) -> _model.Params:
    """``params`` with every leaf replaced by the loaded one (cast to ``params``' dtype).

    Loaded leaves the model lacks are dropped; model leaves absent from ``loaded`` keep their value if their path
    matches ``missing_regex``, otherwise it is an error. Shape mismatches are errors naming the leaf.
    """
    flat_loaded = traverse_util.flatten_dict(loaded, sep="/")
    flat_params = traverse_util.flatten_dict(params, sep="/")
    pattern = re.compile(missing_regex)
    result, missing, mismatched = {}, [], []
    for key, ref in flat_params.items():
        if key in flat_loaded:
            value = flat_loaded[key]
            if tuple(value.shape) != tuple(ref.shape):
                mismatched.append(f"{key}: {source} has {tuple(value.shape)}, model expects {tuple(ref.shape)}")
                continue
            result[key] = np.asarray(value).astype(ref.dtype)
        elif pattern.fullmatch(key):
            result[key] = ref
        else:
            missing.append(key)
    if mismatched or missing:
        raise ValueError(
            f"Cannot load {source} into the model: "
            + "; ".join([*(f"shape mismatch at {m}" for m in mismatched), *(f"missing leaf {k}" for k in missing)])
        )
    dropped = [key for key in flat_loaded if key not in flat_params]
    if dropped:
        logger.info("Ignoring %d leaves of %s the model does not use, e.g. %s", len(dropped), source, dropped[:3])
    return traverse_util.unflatten_dict(result, sep="/")
