"""The loss-weighting strategies, written once over a tiny array-ops interface.

The JAX twin (``openpi.models.pi0_loss_utils``) and the PyTorch twin
(``openpi.models_pytorch.pi0_loss_utils_pytorch``) only supply the handful of array calls in ``ArrayOps``;
the math of every strategy lives here, so the two frameworks cannot drift apart.

Inputs: ``err[b, h, d] = (v_t - u_t)^2`` and the normalized, padded target chunk ``A[b, h, d]``. Every
strategy returns ``loss[b, h]`` and uses weights whose mean is 1, so losses stay on one scale across runs
(global-norm gradient clipping makes scale matter). Weights depend only on targets and carry no gradient.

- ``uniform``: ``mean_d err`` (upstream openpi).
- ``original``: time weights from the change of the whole action vector,
  ``Δ[b,h] = ||A[b,h] - A[b,h-1]||_2`` (Δ[b,0] = 0), ``w = clip(α + β·min(Δ, cap), lo, hi)``, ``w /= mean w``;
  ``loss = w · mean_d err``. The navigation-biased baseline B1K users run today.
- ``per_dimension``: fixed ``W[d]`` rescaled to ``mean_d W = 1``; ``loss = mean_d(W · err)``.
- ``per_group``: ``W[b,h,d] = g[group(d)] · δ_G[b,h]`` with ``δ_G`` the time weight computed on the group's own
  dims and rescaled to mean 1 within the group (1 when delta weighting is off), then ``W /= mean W``.
- ``adaptive``: ``W[d] = a[group(d)]`` with ``a`` set from the run's own loss history (see ``AdaptiveBalance``);
  no hand-set weights.

``exclude_padding`` (any strategy): the dims of the group named ``padding`` get weight exactly 0, every mean-1
rescaling runs over the real dims only and the loss is ``Σ_d W·err / n_real``, so the reported loss is the mean
error over the robot's real dims and comparable across strategies and robots with different padding. Without a
``padding`` group there is nothing to exclude; the data config refuses that when the data has fewer real dims than
the model.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
from typing import Any
from typing import Literal
from typing import Protocol

import numpy as np

from openpi.shared import action_groups as _groups

Strategy = Literal["original", "uniform", "per_dimension", "per_group", "adaptive"]
PADDING_GROUP = "padding"
Array = Any

DELTA_FIELDS = ("delta_alpha", "delta_beta", "delta_cap", "delta_min_weight", "delta_max_weight")
ADAPTIVE_FIELDS = ("adaptive_decay", "adaptive_warmup_steps")
# Each strategy and the model-config fields (``Pi0Config``) it reads, besides ``action_groups`` and
# ``exclude_padding``, which every strategy honours. ``per_dimension`` reads ``group_weights`` only without
# ``dimension_weights``; ``per_group`` reads the delta fields only with ``use_delta_weighting``.
STRATEGY_FIELDS: dict[str, tuple[str, ...]] = {
    "original": DELTA_FIELDS,
    "uniform": (),
    "per_dimension": ("dimension_weights", "group_weights"),
    "per_group": ("group_weights", "use_delta_weighting", *DELTA_FIELDS),
    "adaptive": ADAPTIVE_FIELDS,
}
STRATEGIES: tuple[str, ...] = tuple(STRATEGY_FIELDS)


def unused_fields(model_config: Any) -> dict[str, str]:
    """Loss-weighting fields of a model config (``Pi0Config``) set to a non-default value that its strategy never
    reads, each with the reason (for a CLI error or warning)."""
    strategy = model_config.loss_weighting_strategy
    reads = set(STRATEGY_FIELDS[strategy])
    if strategy == "per_dimension" and model_config.dimension_weights is not None:
        reads.discard("group_weights")
    if strategy == "per_group" and not model_config.use_delta_weighting:
        reads -= set(DELTA_FIELDS)
    defaults = {f.name: f.default for f in dataclasses.fields(model_config)}
    unused = {}
    for field in ("group_weights", "use_delta_weighting", *DELTA_FIELDS, *ADAPTIVE_FIELDS):
        if field in reads or getattr(model_config, field) == defaults[field]:
            continue
        if field == "group_weights":
            unused[field] = (
                "strategy 'per_dimension' uses dimension_weights when both are set" if strategy == "per_dimension"
                else f"strategy {strategy!r} has no group weights (use per_group or per_dimension)"
            )
        elif field in ADAPTIVE_FIELDS:
            unused[field] = f"strategy {strategy!r} has no adaptive balance (use adaptive)"
        elif strategy == "original":
            unused[field] = "strategy 'original' always weights time steps by the action change"
        else:
            unused[field] = ("use_delta_weighting is off" if strategy == "per_group"
                             else f"strategy {strategy!r} has no time weights")
    return unused


@dataclasses.dataclass(frozen=True)
class DeltaWeighting:
    """Parameters of the time weight ``clip(alpha + beta * min(Δ, cap), min_weight, max_weight)``."""

    alpha: float = 0.2
    beta: float = 1.0
    cap: float = 0.5
    min_weight: float = 0.1
    max_weight: float = 3.0

    def __post_init__(self):
        values = dataclasses.asdict(self)
        bad = {k: v for k, v in values.items() if not np.isfinite(v)}
        if bad:
            raise ValueError(f"Delta-weighting parameters must be finite, got {bad}.")
        if self.min_weight <= 0 or self.max_weight < self.min_weight:
            raise ValueError(
                f"Delta weights need 0 < min_weight <= max_weight, got min_weight={self.min_weight}, "
                f"max_weight={self.max_weight}."
            )
        if self.cap < 0 or self.beta < 0:
            raise ValueError(f"Delta-weighting cap and beta must be >= 0, got cap={self.cap}, beta={self.beta}.")


@dataclasses.dataclass(frozen=True)
class AdaptiveBalance:
    """The ``adaptive`` rule: each group's weight is its loss relative to its own starting loss.

    ``a[g] ∝ ema_g / base_g``, rescaled to mean 1 over the (real) dims. ``base_g`` is the mean batch loss of
    group g over the first ``warmup_steps`` steps (weights are 1 meanwhile), ``ema_g`` an exponential moving
    average (``decay``) of its batch loss. This is GradNorm's "inverse training rate" without its gradient
    norms: a group that has improved less than the others, relative to where it started, gets more weight, so
    the weights need no per-group backward pass and are unit-free (a group's loss scale, e.g. a gripper's
    near-constant targets, cancels in the ratio). Groups improving at the same rate keep weight 1 each.
    State per group: ``base``, ``ema``; plus the number of updates ``steps``.
    """

    decay: float = 0.9
    warmup_steps: int = 20

    def __post_init__(self):
        if not 0.0 <= self.decay < 1.0:
            raise ValueError(f"Adaptive balance decay must be in [0, 1), got {self.decay}.")
        if self.warmup_steps < 1:
            raise ValueError(f"Adaptive balance warmup_steps must be >= 1, got {self.warmup_steps}.")


@dataclasses.dataclass(frozen=True)
class LossWeighting:
    """A validated, hashable description of how to weight the per-dim loss (usable as a static jit argument)."""

    strategy: Strategy
    action_dim: int
    groups: _groups.ActionGroups | None = None
    # Per group, in ``groups.names`` order (``per_group`` only).
    group_weights: tuple[float, ...] | None = None
    # Per dim, already rescaled to mean 1 (``per_dimension`` only).
    dimension_weights: tuple[float, ...] | None = None
    use_delta_weighting: bool = True
    delta: DeltaWeighting = DeltaWeighting()
    # Dims of the ``padding`` group get weight 0 and the loss is the mean over the real dims only.
    exclude_padding: bool = False
    adaptive: AdaptiveBalance = AdaptiveBalance()

    @classmethod
    def create(
        cls,
        strategy: str,
        action_dim: int,
        *,
        action_groups: Mapping[str, _groups.GroupDims] | _groups.ActionGroups | None = None,
        group_weights: Mapping[str, float] | None = None,
        dimension_weights: Sequence[float] | None = None,
        use_delta_weighting: bool = True,
        delta: DeltaWeighting = DeltaWeighting(),
        exclude_padding: bool = False,
        adaptive: AdaptiveBalance = AdaptiveBalance(),
    ) -> LossWeighting:
        """Validates every input and raises ``ValueError`` naming the offending group, dims or value."""
        if strategy not in STRATEGIES:
            raise ValueError(f"Unknown loss weighting strategy {strategy!r}; choose one of {list(STRATEGIES)}.")
        groups = _groups.ActionGroups.create(action_groups, action_dim) if action_groups is not None else None
        if strategy == "adaptive" and groups is None:
            raise ValueError("Strategy 'adaptive' needs action_groups (it balances the groups' losses).")
        real = _real_dims(groups, action_dim) if exclude_padding else np.ones(action_dim, bool)
        if not real.any():
            raise ValueError(f"exclude_padding: every action dim is in the '{PADDING_GROUP}' group; nothing to train.")
        gw = groups.group_weight_vector(group_weights) if groups is not None and group_weights is not None else None
        if group_weights is not None and groups is None:
            raise ValueError("group_weights were given without action_groups; define the groups they refer to.")
        if strategy == "per_group" and gw is None:
            raise ValueError("Strategy 'per_group' needs action_groups and group_weights (one weight per group).")
        dw = None
        if strategy == "per_dimension":
            if dimension_weights is not None:
                if len(dimension_weights) != action_dim:
                    raise ValueError(
                        f"dimension_weights has {len(dimension_weights)} entries but action_dim is {action_dim}."
                    )
                raw = np.asarray(dimension_weights, dtype=np.float64)
                _groups.check_weights(raw, labels=[f"dim {d}" for d in range(action_dim)])
            elif gw is not None:
                raw = gw[groups.dim_to_group]
            else:
                raise ValueError(
                    "Strategy 'per_dimension' needs dimension_weights, or action_groups with group_weights."
                )
            raw = np.where(real, raw, 0.0)
            if not raw.any():
                raise ValueError("per_dimension weights are 0 on every real (non-padding) dim; nothing to train.")
            dw = tuple(float(v) for v in raw / raw[real].mean())
        elif dimension_weights is not None:
            raise ValueError(f"dimension_weights only apply to strategy 'per_dimension', not {strategy!r}.")
        return cls(
            strategy=strategy,
            action_dim=action_dim,
            groups=groups,
            group_weights=tuple(float(v) for v in gw) if gw is not None and strategy == "per_group" else None,
            dimension_weights=dw,
            use_delta_weighting=bool(use_delta_weighting),
            delta=delta,
            exclude_padding=bool(exclude_padding),
            adaptive=adaptive,
        )

    @property
    def real_dims(self) -> np.ndarray:
        """bool[action_dim]: the dims that enter the loss (all, unless ``exclude_padding``)."""
        if not self.exclude_padding:
            return np.ones(self.action_dim, bool)
        return _real_dims(self.groups, self.action_dim)

    def to_json(self) -> dict[str, Any]:
        """What a run config should record so runs can be grouped and compared (e.g. in wandb)."""
        out: dict[str, Any] = {"strategy": self.strategy, "use_delta_weighting": self.use_delta_weighting}
        if self.groups is not None:
            out["action_groups"] = self.groups.to_json()
        if self.group_weights is not None:
            out["group_weights"] = dict(zip(self.groups.names, self.group_weights, strict=True))
        if self.dimension_weights is not None:
            out["dimension_weights"] = list(self.dimension_weights)
        if self.strategy == "original" or (self.strategy == "per_group" and self.use_delta_weighting):
            out["delta"] = dataclasses.asdict(self.delta)
        if self.strategy == "adaptive":
            out["adaptive"] = dataclasses.asdict(self.adaptive)
        out["exclude_padding"] = self.exclude_padding
        return out


def _real_dims(groups: _groups.ActionGroups | None, action_dim: int) -> np.ndarray:
    real = np.ones(action_dim, bool)
    if groups is not None and PADDING_GROUP in groups.names:
        real[list(groups.dims[groups.names.index(PADDING_GROUP)])] = False
    return real


# The mean over every process's rows of a batch mean taken over this process's equal share of the global batch, for
# frameworks whose arrays hold only the local rows (PyTorch DDP). The trainer passes it in; without it batch means
# are local (one process, or JAX, whose arrays are the global batch).
GlobalMean = Callable[[Array], Array]


class ArrayOps(Protocol):
    """The few framework calls the strategies need; each twin implements them in one line apiece."""

    def constant(self, values: np.ndarray, like: Array) -> Array:
        """``values`` as an array with ``like``'s float dtype (and device)."""

    def take_last(self, x: Array, indices: np.ndarray) -> Array:
        """``x[..., indices]``."""

    def step_change(self, actions: Array) -> Array:
        """``A[:, h] - A[:, h-1]`` along the horizon (axis 1), zero at h = 0; same shape as ``actions``."""

    def mean(self, x: Array, axes: tuple[int, ...]) -> Array:
        """Mean over ``axes``, keeping them as size-1 dims."""

    def sum(self, x: Array, axes: tuple[int, ...]) -> Array:
        """Sum over ``axes``, dropping them."""

    def matmul(self, x: Array, y: Array) -> Array:
        """``x @ y`` in full float32 precision."""

    def sqrt(self, x: Array) -> Array: ...

    def clip(self, x: Array, lo: float, hi: float) -> Array: ...

    def minimum(self, x: Array, value: float) -> Array: ...

    def maximum(self, x: Array, value: float) -> Array: ...

    def stop_gradient(self, x: Array) -> Array: ...

    def ones_like(self, x: Array) -> Array: ...


def _time_weight(step_norm: Array, delta: DeltaWeighting, ops: ArrayOps) -> Array:
    return ops.clip(delta.alpha + delta.beta * ops.minimum(step_norm, delta.cap), delta.min_weight, delta.max_weight)


def loss_weights(
    weighting: LossWeighting,
    actions: Array,
    ops: ArrayOps,
    balance_weights: Array | None = None,
    global_mean: GlobalMean | None = None,
) -> Array | None:
    """Weights broadcastable to ``[B, H, D]``: ``None`` (uniform), ``[B, H, 1]``, ``[D]`` or ``[B, H, D]``.

    ``balance_weights`` [G] are the ``adaptive`` strategy's current weights (``adaptive_balance_weights``); without
    them it weighs every group 1. Under ``exclude_padding`` padding dims get weight 0 and the weights have mean 1
    over the real dims. ``global_mean`` turns a mean over this process's batch rows into the global batch's (see
    ``GlobalMean``).
    """
    strategy = weighting.strategy
    real = weighting.real_dims
    masked = not real.all()
    if strategy == "uniform":
        return ops.constant(real.astype(np.float64), actions) if masked else None
    if strategy == "per_dimension":
        return ops.constant(np.asarray(weighting.dimension_weights), actions)
    groups = weighting.groups
    if strategy == "adaptive":
        if balance_weights is None:
            return ops.constant(real.astype(np.float64), actions)
        per_dim = ops.take_last(ops.stop_gradient(balance_weights), groups.dim_to_group) * ops.constant(real, actions)
        return per_dim / (ops.sum(per_dim, axes=(0,)) / int(real.sum()))
    change = ops.step_change(ops.stop_gradient(actions))
    if strategy == "original":
        step_norm = ops.sqrt(ops.sum(change * change, axes=(2,)))[..., None]  # [B, H, 1]
        w = _time_weight(step_norm, weighting.delta, ops)
        w = ops.stop_gradient(w / _batch_mean(w, (0, 1), ops, global_mean))
        return w * ops.constant(real, actions) if masked else w
    # per_group
    per_dim_group_weight = np.where(real, np.asarray(weighting.group_weights)[groups.dim_to_group], 0.0)
    if not weighting.use_delta_weighting:
        return ops.constant(per_dim_group_weight / per_dim_group_weight[real].mean(), actions)
    squared = ops.matmul(change * change, ops.constant(groups.membership, actions))  # [B, H, G]
    delta_g = _time_weight(ops.sqrt(squared), weighting.delta, ops)
    delta_g = delta_g / _batch_mean(delta_g, (0, 1), ops, global_mean)
    w = ops.take_last(delta_g, groups.dim_to_group) * ops.constant(per_dim_group_weight, actions)  # [B, H, D]
    real_fraction = real.mean()  # the mean over real elements is the mean over all of them / real_fraction
    return ops.stop_gradient(w / (_batch_mean(w, (0, 1, 2), ops, global_mean) / real_fraction))


def _batch_mean(x: Array, axes: tuple[int, ...], ops: ArrayOps, global_mean: GlobalMean | None) -> Array:
    """Mean over ``axes`` (which include the batch axis 0), over the global batch when ``global_mean`` is given."""
    local = ops.mean(x, axes=axes)
    return local if global_mean is None else global_mean(local)


def _strategy_weights(weighting, actions, ops, balance_weights, global_mean) -> Array | None:
    adaptive = balance_weights if weighting.strategy == "adaptive" else None
    return loss_weights(weighting, actions, ops, adaptive, global_mean)


def apply_weights(per_dim_loss: Array, weights: Array | None, ops: ArrayOps, num_dims: int | None = None) -> Array:
    """``[B, H, D]`` error and weights → ``[B, H]`` loss ``Σ_d W·err / num_dims`` (default: all D dims)."""
    d = per_dim_loss.shape[-1] if num_dims is None else num_dims
    if weights is None:
        return ops.sum(per_dim_loss, axes=(2,)) / d
    if weights.ndim == 3 and weights.shape[-1] == 1:
        return weights[..., 0] * (ops.sum(per_dim_loss, axes=(2,)) / d)
    return ops.sum(per_dim_loss * weights, axes=(2,)) / d


def group_metrics(
    groups: _groups.ActionGroups, per_dim_loss: Array, weights: Array | None, ops: ArrayOps
) -> dict[str, Array]:
    """Per group: unweighted ``loss/<g>``, ``loss_share/<g>`` of the weighted loss, mean ``weight/<g>``."""
    err = ops.stop_gradient(per_dim_loss)
    b, h, _ = err.shape
    membership = ops.constant(groups.membership, err)  # [D, G]
    counts = groups.membership.sum(axis=0) * b * h  # elements per group
    w = ops.ones_like(err) if weights is None else ops.stop_gradient(weights) * ops.ones_like(err)  # [B, H, D]

    def per_group_sum(x: Array) -> Array:
        return ops.matmul(ops.sum(x, axes=(0, 1)), membership)  # [G]

    err_sum = per_group_sum(err)
    weighted_sum = per_group_sum(w * err)
    total = ops.maximum(ops.sum(weighted_sum, axes=(0,)), 1e-30)
    mean_loss = err_sum / ops.constant(counts, err)
    share = weighted_sum / total
    mean_weight = per_group_sum(w) / ops.constant(counts, err)
    metrics = {}
    for i, name in enumerate(groups.names):
        metrics[f"loss/{name}"] = mean_loss[i]
        metrics[f"loss_share/{name}"] = share[i]
        metrics[f"weight/{name}"] = mean_weight[i]
    return metrics


def weighted_loss_and_metrics(
    weighting: LossWeighting,
    per_dim_loss: Array,
    actions: Array,
    *,
    ops: ArrayOps,
    balance_weights: Array | None = None,
    global_mean: GlobalMean | None = None,
) -> tuple[Array, dict[str, Array]]:
    """The ``[B, H]`` weighted loss and, when groups are known, the per-group metrics from the same weights.

    ``balance_weights``: the ``adaptive`` strategy's current weights [G] (ignored by the other strategies)."""
    if per_dim_loss.shape[-1] != weighting.action_dim:
        raise ValueError(
            f"Per-dim loss has {per_dim_loss.shape[-1]} dims but the loss weighting was built for "
            f"action_dim={weighting.action_dim}."
        )
    weights = _strategy_weights(weighting, actions, ops, balance_weights, global_mean)
    loss = apply_weights(per_dim_loss, weights, ops, int(weighting.real_dims.sum()))
    metrics = group_metrics(weighting.groups, per_dim_loss, weights, ops) if weighting.groups is not None else {}
    return loss, metrics


def full_loss_weights(
    weighting: LossWeighting,
    actions: Array,
    *,
    ops: ArrayOps,
    balance_weights: Array | None = None,
    global_mean: GlobalMean | None = None,
) -> Array:
    """The full ``[B, H, D]`` weight tensor a strategy applies to the per-dim error."""
    weights = _strategy_weights(weighting, actions, ops, balance_weights, global_mean)
    ones = ops.ones_like(actions)
    return ones if weights is None else weights * ones


def compute_weighted_loss(
    per_dim_loss: Array,
    actions: Array,
    *,
    weighting_strategy: str,
    action_groups: Mapping[str, _groups.GroupDims] | _groups.ActionGroups | None = None,
    group_weights: Mapping[str, float] | None = None,
    dimension_weights: Sequence[float] | None = None,
    use_delta_weighting: bool = True,
    delta: DeltaWeighting = DeltaWeighting(),
    exclude_padding: bool = False,
    ops: ArrayOps,
    global_mean: GlobalMean | None = None,
) -> Array:
    """``per_dim_loss`` [B, H, D] and normalized target ``actions`` [B, H, D] → weighted loss [B, H].

    ``action_groups`` maps a name to ``(start, end)`` or a list of indices; the config is validated first.
    """
    weighting = LossWeighting.create(
        weighting_strategy,
        per_dim_loss.shape[-1],
        action_groups=action_groups,
        group_weights=group_weights,
        dimension_weights=dimension_weights,
        use_delta_weighting=use_delta_weighting,
        delta=delta,
        exclude_padding=exclude_padding,
    )
    return weighted_loss_and_metrics(weighting, per_dim_loss, actions, ops=ops, global_mean=global_mean)[0]


# ---- the adaptive strategy's state ------------------------------------------------------------------------------
# A dict of float32 arrays {"base": [G], "ema": [G], "steps": []}, carried by the trainers (train state /
# checkpoint) and updated once per step from the global batch's mean loss per group (``loss/<g>``).

_TINY = 1e-12


def adaptive_init(weighting: LossWeighting) -> dict[str, np.ndarray]:
    """The state before the first step (weights 1)."""
    g = len(weighting.groups.names)
    return {"base": np.zeros(g, np.float32), "ema": np.zeros(g, np.float32), "steps": np.zeros((), np.float32)}


def adaptive_balance_weights(weighting: LossWeighting, state: Mapping[str, Array], ops: ArrayOps) -> Array:
    """[G] unnormalized weights of ``AdaptiveBalance``: 1 during warmup, then ``ema / base``.

    ``loss_weights`` zeroes padding (under ``exclude_padding``) and rescales them to mean 1 over the dims."""
    active = ops.clip(state["steps"] - (weighting.adaptive.warmup_steps - 1), 0.0, 1.0)  # 0 during warmup, then 1
    return ops.stop_gradient(active * (state["ema"] / ops.maximum(state["base"], _TINY)) + (1.0 - active))


def adaptive_update(
    weighting: LossWeighting, state: Mapping[str, Array], group_losses: Array, ops: ArrayOps
) -> dict[str, Array]:
    """The state after one step whose global batch had mean unweighted loss ``group_losses`` [G] per group."""
    rule = weighting.adaptive
    steps = state["steps"]
    started = ops.clip(steps, 0.0, 1.0)  # 0 on the first update: the EMA starts at the first loss
    warming = ops.clip(rule.warmup_steps - steps, 0.0, 1.0)  # 1 while the baseline is still being averaged
    losses = ops.stop_gradient(group_losses)
    return {
        "base": state["base"] + warming * (losses - state["base"]) / (steps + 1.0),
        "ema": started * (rule.decay * state["ema"] + (1.0 - rule.decay) * losses) + (1.0 - started) * losses,
        "steps": steps + 1.0,
    }

