"""Data transforms: small functions over a sample dict, composed into input and output pipelines.

A sample is a nested dict of numpy arrays (and strings such as ``prompt``). Inputs run dataset → model
(repack, robot-specific inputs, normalize, model-specific resize/tokenize/pad); outputs run model → robot.
Normalization is guarded: a dim whose scale (std for z-score, q99 − q01 for quantiles) is below
``min_scale`` normalizes to 0 and unnormalizes to its constant value, with one warning naming the dim (once
per process, however many transforms are built from the same stats), instead of dividing by ~1e-6 (B1K's torso dim 6 is constant; see openpi issue 814).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
from typing import Any
from typing import Protocol
from typing import runtime_checkable
import warnings

import numpy as np

from openpi.shared import normalize as _normalize

DataDict = dict[str, Any]

# Default guard: below this scale a dim is treated as constant.
MIN_NORM_SCALE = 1e-4
_EPS = 1e-6  # openpi's epsilon in the normalization formulas
# The constant-dim warnings already shown by this process: a run builds Normalize / Unnormalize from the same stats
# several times (data loader, policy, validation), and Python's own "default" filter keys on the caller's line.
_WARNED: set[str] = set()


@runtime_checkable
class DataTransformFn(Protocol):
    def __call__(self, data: DataDict) -> DataDict:
        """Transforms one sample; may modify and return ``data``."""


@dataclasses.dataclass(frozen=True)
class Group:
    """Input transforms (dataset → model) and output transforms (model → robot) that belong together."""

    inputs: Sequence[DataTransformFn] = ()
    outputs: Sequence[DataTransformFn] = ()

    def push(self, *, inputs: Sequence[DataTransformFn] = (), outputs: Sequence[DataTransformFn] = ()) -> Group:
        """Appends inputs and prepends outputs, so the new pair wraps closest to the model."""
        return Group(inputs=(*self.inputs, *inputs), outputs=(*outputs, *self.outputs))


@dataclasses.dataclass(frozen=True)
class CompositeTransform(DataTransformFn):
    transforms: Sequence[DataTransformFn]

    def __call__(self, data: DataDict) -> DataDict:
        for transform in self.transforms:
            data = transform(data)
        return data


def compose(transforms: Sequence[DataTransformFn]) -> DataTransformFn:
    return CompositeTransform(tuple(transforms))


def flatten_dict(tree: Mapping[str, Any], sep: str = "/") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a/b": 1}``."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update({f"{key}{sep}{k}": v for k, v in flatten_dict(value, sep).items()})
        else:
            out[key] = value
    return out


def unflatten_dict(flat: Mapping[str, Any], sep: str = "/") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(sep)
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


@dataclasses.dataclass(frozen=True)
class Repack(DataTransformFn):
    """Builds a new dict whose leaves are input entries picked by flat key, e.g.
    ``{"state": "observation.state", "images": {"head": "observation.images.rgb.head"}}``."""

    structure: Mapping[str, Any]

    def __call__(self, data: DataDict) -> DataDict:
        flat_in = flatten_dict(data)
        out = {}
        for dst, src in flatten_dict(self.structure).items():
            if src not in flat_in:
                raise KeyError(f"Repack: input has no key '{src}' (wanted for '{dst}'); keys: {sorted(flat_in)}.")
            out[dst] = flat_in[src]
        return unflatten_dict(out)


# openpi's name for `Repack`.
RepackTransform = Repack


def _dim_ranges(dims: list[int]) -> str:
    """``[3, 11, 12, 13]`` as ``"3, 11-13"``."""
    runs: list[list[int]] = []
    for dim in dims:
        if runs and dim == runs[-1][-1] + 1:
            runs[-1].append(dim)
        else:
            runs.append([dim])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def _constant_dims(
    norm_stats: Mapping[str, _normalize.NormStats] | None, use_quantiles: bool, min_scale: float
) -> dict[str, np.ndarray]:
    """Per key, the dims whose scale is below ``min_scale``; warns once per key and set of dims and process (one
    line for all of them: padded state has many)."""
    masks = {}
    for key, stats in (norm_stats or {}).items():
        if use_quantiles:
            if stats.q01 is None or stats.q99 is None:
                raise ValueError(f"Quantile normalization needs q01/q99, missing for '{key}'.")
            scale, what = np.asarray(stats.q99) - np.asarray(stats.q01), "q99 - q01"
        else:
            scale, what = np.asarray(stats.std), "std"
        masks[key] = scale < min_scale
        dims = sorted({int(index[-1]) for index in np.argwhere(masks[key])})
        if not dims:
            continue
        steps = f" at {int(masks[key].sum())} of the {masks[key].size} (chunk step, dim) entries" if scale.ndim == 2 else ""
        message = (
            f"Normalization of '{key}' {'dim' if len(dims) == 1 else 'dims'} {_dim_ranges(dims)}: {what} < "
            f"{min_scale:g}{steps}; treated as constant (normalized to 0, unnormalized to the constant value)."
        )
        if message not in _WARNED:
            _WARNED.add(message)
            warnings.warn(message, UserWarning, stacklevel=4)
    return masks


def _split(x: np.ndarray, stats: _normalize.NormStats, key: str, *, padded: bool) -> tuple[np.ndarray, np.ndarray]:
    """The dims the stats cover and the rest. Only a ``padded`` input (the model's output, padded to its
    action_dim) may have more dims than the stats; any other difference means stats of another dataset or robot.
    Per-timestep stats [H, D] need data whose second-to-last axis is the chunk of H steps."""
    mean = np.asarray(stats.mean)
    if mean.ndim == 2 and (x.ndim < 2 or x.shape[-2] != mean.shape[0]):
        raise ValueError(
            f"Per-timestep norm stats for '{key}' have {mean.shape[0]} chunk steps but the data has shape "
            f"{x.shape}; recompute them with scripts/compute_norm_stats.py for this config's action_horizon."
        )
    dims = mean.shape[-1]
    if x.shape[-1] < dims or (x.shape[-1] > dims and not padded):
        raise ValueError(f"Norm stats of '{key}' have {dims} dims but the data has {x.shape[-1]}; they belong to "
                         "another dataset or robot (recompute them with scripts/compute_norm_stats.py).")
    return x[..., :dims], x[..., dims:]


@dataclasses.dataclass(frozen=True)
class Normalize(DataTransformFn):
    """z-score ``(x − mean)/(std + 1e-6)`` or quantile ``(x − q01)/(q99 − q01 + 1e-6)·2 − 1`` on every key of
    ``norm_stats`` present in the sample; constant dims map to 0."""

    norm_stats: Mapping[str, _normalize.NormStats] | None
    use_quantiles: bool = False
    strict: bool = False  # require every stats key to be present in the sample
    min_scale: float = MIN_NORM_SCALE

    def __post_init__(self):
        object.__setattr__(self, "_constant", _constant_dims(self.norm_stats, self.use_quantiles, self.min_scale))

    def __call__(self, data: DataDict) -> DataDict:
        if not self.norm_stats:
            return data
        for key, stats in self.norm_stats.items():
            if key not in data:
                if self.strict:
                    raise KeyError(f"Normalize: sample has no key '{key}'; keys: {sorted(data)}.")
                continue
            x = np.asarray(data[key], dtype=np.float32)
            head, tail = _split(x, stats, key, padded=False)
            d = head.shape[-1]
            constant = self._constant[key][..., :d]
            if self.use_quantiles:
                q01, q99 = stats.q01[..., :d], stats.q99[..., :d]
                y = (head - q01) / (q99 - q01 + _EPS) * 2.0 - 1.0
            else:
                mean, std = stats.mean[..., :d], stats.std[..., :d]
                y = (head - mean) / (std + _EPS)
            y = np.where(constant, 0.0, y)
            data[key] = np.concatenate([y.astype(np.float32), tail], axis=-1)
        return data


@dataclasses.dataclass(frozen=True)
class Unnormalize(DataTransformFn):
    """Inverse of `Normalize`; a constant dim returns its constant value (mean, or the q01/q99 midpoint)."""

    norm_stats: Mapping[str, _normalize.NormStats] | None
    use_quantiles: bool = False
    min_scale: float = MIN_NORM_SCALE

    def __post_init__(self):
        object.__setattr__(self, "_constant", _constant_dims(self.norm_stats, self.use_quantiles, self.min_scale))

    def __call__(self, data: DataDict) -> DataDict:
        if not self.norm_stats:
            return data
        for key, stats in self.norm_stats.items():
            if key not in data:
                continue
            x = np.asarray(data[key], dtype=np.float32)
            head, tail = _split(x, stats, key, padded=True)
            d = head.shape[-1]
            constant = self._constant[key][..., :d]
            if self.use_quantiles:
                q01, q99 = stats.q01[..., :d], stats.q99[..., :d]
                y = (head + 1.0) / 2.0 * (q99 - q01 + _EPS) + q01
                y = np.where(constant, (q01 + q99) / 2.0, y)
            else:
                mean, std = stats.mean[..., :d], stats.std[..., :d]
                y = np.where(constant, mean, head * (std + _EPS) + mean)
            data[key] = np.concatenate([y.astype(np.float32), tail], axis=-1)
        return data


def make_bool_mask(*dims: int) -> tuple[bool, ...]:
    """``make_bool_mask(3, -2, 1)`` → ``(True, True, True, False, False, True)``."""
    out: list[bool] = []
    for d in dims:
        out.extend([d > 0] * abs(d))
    return tuple(out)


def _shift_actions(data: DataDict, mask: Sequence[bool] | None, sign: float) -> DataDict:
    """Adds ``sign · state`` to the actions on the masked dims (every step of the chunk)."""
    if mask is None or "actions" not in data:
        return data
    mask = np.asarray(mask, dtype=bool)
    d = len(mask)
    actions = np.array(data["actions"], dtype=np.float32, copy=True)
    actions[..., :d] += sign * np.where(mask, np.asarray(data["state"])[..., :d], 0.0)[..., None, :]
    data["actions"] = actions
    return data


@dataclasses.dataclass(frozen=True)
class DeltaActions(DataTransformFn):
    """Actions on masked dims become relative to the current state (``actions − state``)."""

    mask: Sequence[bool] | None

    def __call__(self, data: DataDict) -> DataDict:
        return _shift_actions(data, self.mask, -1.0)


@dataclasses.dataclass(frozen=True)
class AbsoluteActions(DataTransformFn):
    """Inverse of `DeltaActions`: adds the state back on masked dims."""

    mask: Sequence[bool] | None

    def __call__(self, data: DataDict) -> DataDict:
        return _shift_actions(data, self.mask, 1.0)


def pad_to_dim(x: np.ndarray, target_dim: int, axis: int = -1) -> np.ndarray:
    """Zero-pads ``axis`` up to ``target_dim``; longer inputs are an error (they would lose dims)."""
    x = np.asarray(x)
    current = x.shape[axis]
    if current > target_dim:
        raise ValueError(f"Cannot pad {current} dims down to {target_dim}; the model's action_dim is too small.")
    if current == target_dim:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, target_dim - current)
    return np.pad(x, widths)


@dataclasses.dataclass(frozen=True)
class PadStatesAndActions(DataTransformFn):
    """Zero-pads ``state`` and ``actions`` to the model's action_dim."""

    model_action_dim: int

    def __call__(self, data: DataDict) -> DataDict:
        data["state"] = pad_to_dim(data["state"], self.model_action_dim)
        if "actions" in data:
            data["actions"] = pad_to_dim(data["actions"], self.model_action_dim)
        return data


def resize_with_pad(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of an HWC image keeping its aspect ratio, zero-padded to ``height × width``."""
    image = np.asarray(image)
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    scale = min(height / h, width / w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    # Pixel-centre bilinear sampling (align_corners=False), in torch for speed: this runs per camera per sample.
    # torch is imported here, not at module top: building or reading a config imports this module, and torch's
    # import (over a second) would slow every tool that only parses configs.
    import torch

    source = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    resized = torch.nn.functional.interpolate(source, size=(new_h, new_w), mode="bilinear", align_corners=False)
    resized = resized[0].permute(1, 2, 0).numpy()
    if image.dtype == np.uint8:
        resized = np.clip(np.round(resized), 0, 255)
    out = np.zeros((height, width, *image.shape[2:]), dtype=image.dtype)
    top_pad, left_pad = (height - new_h) // 2, (width - new_w) // 2
    out[top_pad : top_pad + new_h, left_pad : left_pad + new_w] = resized.astype(image.dtype)
    return out


@dataclasses.dataclass(frozen=True)
class ResizeImages(DataTransformFn):
    """Resizes every image in ``data["image"]`` to ``height × width`` (aspect kept, zero padding)."""

    height: int
    width: int

    def __call__(self, data: DataDict) -> DataDict:
        data["image"] = {k: resize_with_pad(v, self.height, self.width) for k, v in data["image"].items()}
        return data


class Tokenizer(Protocol):
    def tokenize(self, prompt: str, state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]: ...


@dataclasses.dataclass(frozen=True)
class TokenizePrompt(DataTransformFn):
    """Replaces ``prompt`` by ``tokenized_prompt`` and ``tokenized_prompt_mask``; with ``discrete_state_input``
    the (normalized) state goes to the tokenizer too (pi0.5)."""

    tokenizer: Tokenizer
    discrete_state_input: bool = False

    def __call__(self, data: DataDict) -> DataDict:
        if "prompt" not in data:
            raise KeyError("TokenizePrompt: sample has no 'prompt'; add PromptFromLeRobotTask or InjectDefaultPrompt.")
        prompt = data.pop("prompt")
        if not isinstance(prompt, str):
            prompt = str(np.asarray(prompt).item())
        state = np.asarray(data["state"]) if self.discrete_state_input else None
        tokens, mask = self.tokenizer.tokenize(prompt, state)
        data["tokenized_prompt"], data["tokenized_prompt_mask"] = np.asarray(tokens), np.asarray(mask)
        return data


@dataclasses.dataclass(frozen=True)
class PromptFromLeRobotTask(DataTransformFn):
    """Sets ``prompt`` to the task string of the sample's ``task_index``."""

    tasks: Mapping[int, str]

    def __call__(self, data: DataDict) -> DataDict:
        if "task_index" not in data:
            raise KeyError("PromptFromLeRobotTask: sample has no 'task_index'.")
        index = int(np.asarray(data["task_index"]).item())
        if index not in self.tasks:
            raise KeyError(
                f"PromptFromLeRobotTask: task_index {index} not in the dataset's tasks {sorted(self.tasks)}."
            )
        data["prompt"] = self.tasks[index]
        return data


@dataclasses.dataclass(frozen=True)
class InjectDefaultPrompt(DataTransformFn):
    """Sets ``prompt`` when the sample has none (and a default is given)."""

    prompt: str | None

    def __call__(self, data: DataDict) -> DataDict:
        if self.prompt is not None and "prompt" not in data:
            data["prompt"] = self.prompt
        return data
