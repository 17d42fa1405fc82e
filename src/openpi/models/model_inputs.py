"""Batches of transformed samples to model inputs: stacking sample dicts, and the framework's arrays.

Shared by the training data loader and the policy (inference), so both feed the model the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import Literal

import jax
import numpy as np
import torch

from openpi.models import model as _model

Framework = Literal["jax", "pytorch", "numpy"]


def collate(samples: Sequence[dict]) -> dict:
    """Stacks a list of nested sample dicts into one nested batch dict (strings become lists)."""
    first = samples[0]
    out = {}
    for key, value in first.items():
        values = [s[key] for s in samples]
        if isinstance(value, dict):
            out[key] = collate(values)
        elif isinstance(value, str):
            out[key] = values
        else:
            out[key] = np.stack([np.asarray(v) for v in values])
    return out


def _convert_leaf(x: Any, framework: Framework, sharding: Any = None) -> Any:
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "biuf":
        return x
    if framework == "jax":
        return jax.device_put(x, sharding)
    if framework == "pytorch":
        return torch.from_numpy(np.ascontiguousarray(x))
    return x


def _map_tree(fn: Callable[[Any], Any], tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _map_tree(fn, v) for k, v in tree.items()}
    return fn(tree)


def to_arrays(batch: dict, framework: Framework, sharding: Any = None) -> dict:
    """The nested batch dict with its numeric numpy leaves as the framework's arrays (strings stay)."""
    return _map_tree(lambda x: _convert_leaf(x, framework, sharding), batch)


def to_model_inputs(batch: dict, framework: Framework, sharding: Any = None) -> tuple[Any, Any]:
    """Batch dict → ``(Observation, actions)`` in the framework's arrays (uint8 images → float in [-1, 1]);
    JAX arrays go to ``sharding`` when given."""
    observation = _model.Observation.from_dict(batch)
    observation = jax.tree.map(lambda x: _convert_leaf(np.asarray(x), framework, sharding), observation)
    actions = batch.get("actions")
    return observation, None if actions is None else _convert_leaf(actions, framework, sharding)
