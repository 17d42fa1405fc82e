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
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
from typing import Any
from typing import Literal
from typing import Protocol

import numpy as np

from openpi.shared import action_groups as _groups

Strategy = Literal["original", "uniform", "per_dimension", "per_group"]
STRATEGIES: tuple[str, ...] = ("original", "uniform", "per_dimension", "per_group")
Array = Any


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
    ) -> LossWeighting:
        """Validates every input and raises ``ValueError`` naming the offending group, dims or value."""
        if strategy not in STRATEGIES:
            raise ValueError(f"Unknown loss weighting strategy {strategy!r}; choose one of {list(STRATEGIES)}.")
        groups = _groups.ActionGroups.create(action_groups, action_dim) if action_groups is not None else None
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
            dw = tuple(float(v) for v in raw / raw.mean())
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
        )

    def to_json(self) -> dict[str, Any]:
        """What a run config should record so runs can be grouped and compared (e.g. in wandb)."""
        out: dict[str, Any] = {"strategy": self.strategy, "use_delta_weighting": self.use_delta_weighting}
        if self.groups is not None:
            out["action_groups"] = self.groups.to_json()
        if self.group_weights is not None:
            out["group_weights"] = dict(zip(self.groups.names, self.group_weights, strict=True))
        if self.dimension_weights is not None:
            out["dimension_weights"] = list(self.dimension_weights)
        if self.strategy in ("original", "per_group") and self.use_delta_weighting:
            out["delta"] = dataclasses.asdict(self.delta)
        return out


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


def loss_weights(weighting: LossWeighting, actions: Array, ops: ArrayOps) -> Array | None:
    """Weights broadcastable to ``[B, H, D]``: ``None`` (uniform), ``[B, H, 1]``, ``[D]`` or ``[B, H, D]``."""
    strategy = weighting.strategy
    if strategy == "uniform":
        return None
    if strategy == "per_dimension":
        return ops.constant(np.asarray(weighting.dimension_weights), actions)
    change = ops.step_change(ops.stop_gradient(actions))
    if strategy == "original":
        step_norm = ops.sqrt(ops.sum(change * change, axes=(2,)))[..., None]  # [B, H, 1]
        w = _time_weight(step_norm, weighting.delta, ops)
        return ops.stop_gradient(w / ops.mean(w, axes=(0, 1)))
    # per_group
    groups = weighting.groups
    per_dim_group_weight = np.asarray(weighting.group_weights)[groups.dim_to_group]
    if not weighting.use_delta_weighting:
        return ops.constant(per_dim_group_weight / per_dim_group_weight.mean(), actions)
    squared = ops.matmul(change * change, ops.constant(groups.membership, actions))  # [B, H, G]
    delta_g = _time_weight(ops.sqrt(squared), weighting.delta, ops)
    delta_g = delta_g / ops.mean(delta_g, axes=(0, 1))
    w = ops.take_last(delta_g, groups.dim_to_group) * ops.constant(per_dim_group_weight, actions)  # [B, H, D]
    return ops.stop_gradient(w / ops.mean(w, axes=(0, 1, 2)))


def apply_weights(per_dim_loss: Array, weights: Array | None, ops: ArrayOps) -> Array:
    """``[B, H, D]`` error and weights → ``[B, H]`` loss (``w · mean_d err`` for time-only weights)."""
    d = per_dim_loss.shape[-1]
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
    weighting: LossWeighting, per_dim_loss: Array, actions: Array, *, ops: ArrayOps
) -> tuple[Array, dict[str, Array]]:
    """The ``[B, H]`` weighted loss and, when groups are known, the per-group metrics from the same weights."""
    if per_dim_loss.shape[-1] != weighting.action_dim:
        raise ValueError(
            f"Per-dim loss has {per_dim_loss.shape[-1]} dims but the loss weighting was built for "
            f"action_dim={weighting.action_dim}."
        )
    weights = loss_weights(weighting, actions, ops)
    loss = apply_weights(per_dim_loss, weights, ops)
    metrics = group_metrics(weighting.groups, per_dim_loss, weights, ops) if weighting.groups is not None else {}
    return loss, metrics


def full_loss_weights(weighting: LossWeighting, actions: Array, *, ops: ArrayOps) -> Array:
    """The full ``[B, H, D]`` weight tensor a strategy applies to the per-dim error."""
    weights = loss_weights(weighting, actions, ops)
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
    ops: ArrayOps,
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
    )
    return weighted_loss_and_metrics(weighting, per_dim_loss, actions, ops=ops)[0]
