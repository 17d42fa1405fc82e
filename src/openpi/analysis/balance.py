"""Balanced normalization: action norm stats rescaled so every group has the same scale after normalization.

A group's scale after normalization is ``S_G = sqrt(mean_{d∈G} (r_d / den_d)²)``, with ``r_d`` the raw per-dim
std (``by="std"``) or RMS of the per-step change (``by="delta"``) and ``den_d`` what normalization divides by
(``std + eps``, or ``(q99 − q01 + eps) / 2`` for quantiles). Widening every denominator of G by
``k_G = S_G / target`` makes ``S_G' = target``: a group that is large after normalization gets a *larger*
denominator. (Multiplying by ``target / S_G`` instead would give ``S_G² / target`` and amplify the largest
group.) Quantile stats keep their center ``(q01 + q99) / 2``. Constant dims (std or q99 − q01 below the
normalization guard's threshold) are left untouched and excluded from ``S_G``; a group with no other dims
keeps factor 1. The target defaults to the geometric mean of the balanced groups' current scales, so the
overall magnitude of normalized actions stays about where it was.
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
from typing import Literal

import numpy as np

from openpi.analysis import common
from openpi.shared import normalize as _normalize

BalanceBy = Literal["std", "delta"]


def raw_scale(table: common.ActionTable, by: BalanceBy) -> np.ndarray:
    """Per raw dim: population std (``std``) or RMS of the within-episode per-step change (``delta``)."""
    if by == "std":
        return np.std(table.actions.astype(np.float64), axis=0)
    if by == "delta":
        change = table.step_change()[~table.first_frame]
        return np.sqrt(np.mean(np.square(change), axis=0)) if len(change) else np.zeros(table.num_dims)
    raise ValueError(f"Unknown balance measure {by!r}; choose 'std' or 'delta'.")


def group_scales(
    scale: np.ndarray, stats: _normalize.NormStats, groups: dict[str, tuple[int, ...]], *, use_quantiles: bool
) -> dict[str, float]:
    """``S_G`` per group (NaN for a group whose dims are all constant)."""
    ratio = scale / common.scale_denominator(stats, use_quantiles=use_quantiles)[: len(scale)]
    const = common.constant_dims(stats, use_quantiles=use_quantiles)
    out = {}
    for name, dims in groups.items():
        live = [d for d in dims if not const[d]]
        out[name] = float(np.sqrt(np.mean(np.square(ratio[live])))) if live else float("nan")
    return out


@dataclasses.dataclass(frozen=True)
class BalanceResult:
    stats: _normalize.NormStats  # the balanced action stats
    factors: dict[str, dict[str, float]]  # {"zscore"|"quantile": {group: k_G}}
    target: dict[str, float]  # per normalization type
    before: dict[str, dict[str, float]]  # per normalization type: S_G
    after: dict[str, dict[str, float]]


def balance_norm_stats(
    stats: _normalize.NormStats,
    scale: np.ndarray,
    groups: dict[str, tuple[int, ...]],
    *,
    target: float | None = None,
) -> BalanceResult:
    """Rescales ``stats`` (z-score and, when present, quantile entries) so every group in ``groups`` has scale
    ``target`` after normalization; dims outside ``groups`` are left as they are."""
    std = np.asarray(stats.std, dtype=np.float64).copy()
    q01 = None if stats.q01 is None else np.asarray(stats.q01, dtype=np.float64).copy()
    q99 = None if stats.q99 is None else np.asarray(stats.q99, dtype=np.float64).copy()
    kinds = ["zscore"] + (["quantile"] if q01 is not None and q99 is not None else [])
    factors, targets, before = {}, {}, {}
    for kind in kinds:
        quant = kind == "quantile"
        scales = group_scales(scale, stats, groups, use_quantiles=quant)
        live = [s for s in scales.values() if np.isfinite(s) and s > 0]
        if not live:
            raise ValueError(f"No group has a non-constant dim with nonzero scale; nothing to balance ({scales}).")
        t = float(np.exp(np.mean(np.log(live)))) if target is None else float(target)
        if not t > 0:
            raise ValueError(f"Balance target must be positive, got {target}.")
        k = {n: s / t if np.isfinite(s) and s > 0 else 1.0 for n, s in scales.items()}
        const = common.constant_dims(stats, use_quantiles=quant)
        for name, dims in groups.items():
            live_dims = [d for d in dims if not const[d]]
            if quant:
                center = (q01[live_dims] + q99[live_dims]) / 2
                width = (q99[live_dims] - q01[live_dims] + 1e-6) * k[name] - 1e-6
                q01[live_dims], q99[live_dims] = center - width / 2, center + width / 2
            else:
                std[live_dims] = (std[live_dims] + 1e-6) * k[name] - 1e-6
        factors[kind], targets[kind], before[kind] = k, t, scales
    balanced = _normalize.NormStats(mean=np.asarray(stats.mean, dtype=np.float64).copy(), std=std, q01=q01, q99=q99)
    after = {kind: group_scales(scale, balanced, groups, use_quantiles=kind == "quantile") for kind in kinds}
    return BalanceResult(stats=balanced, factors=factors, target=targets, before=before, after=after)


def spread(scales: dict[str, float]) -> float:
    """max / min − 1 over the finite group scales: 0 when perfectly balanced."""
    live = [s for s in scales.values() if np.isfinite(s) and s > 0]
    return max(live) / min(live) - 1.0 if live else 0.0


def format_report(result: BalanceResult, group_names: Sequence[str]) -> str:
    """Per normalization type: each group's scale before and after, the factor and the target."""
    lines = []
    for kind in result.before:
        lines.append(f"{kind} normalization, target scale {result.target[kind]:.5g}")
        lines.append(f"{'group':<14}{'before':>12}{'after':>12}{'factor':>10}")
        for n in group_names:
            lines.append(
                f"{n:<14}{result.before[kind][n]:>12.5g}{result.after[kind][n]:>12.5g}{result.factors[kind][n]:>10.4g}"
            )
        lines.append(
            f"spread (max/min − 1): before {spread(result.before[kind]):.3g}, after {spread(result.after[kind]):.3g}"
        )
        lines.append("")
    return "\n".join(lines)
