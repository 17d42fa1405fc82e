"""Per-group action magnitudes, the loss-weight share each strategy gives every group, and suggested weights.

Definitions (per group G, over all frames of all episodes; "normalized" uses the same norm stats and
normalization type as training, constant dims mapped to 0):
- ``mean_abs``: mean of |a| over frames and G's dims.
- ``std``: sqrt(mean over G's dims of the per-dim variance), the RMS of the per-dim stds.
- ``delta_rms``: sqrt(mean of (a[t] − a[t−1])²) over frames t ≥ 1 of each episode and G's dims.
- ``moving_fraction`` (raw units): fraction of frames t ≥ 1 in which the group moves. A joint-position group
  moves when some dim changes by more than ``MotionThresholds.position`` (rad per step); a velocity-commanded
  group (the base) moves when some |command| exceeds ``MotionThresholds.velocity``.
- ``weight_share[strategy][G]``: G's share of the summed loss weights on sampled normalized, padded chunks.
- ``motion_share[strategy][G]``: G's share of Σ W · ΔA² (the weighted motion signal of the targets).
- ``suggested_group_weights``: w_G ∝ 1 / (n_G · s_G²), s_G the normalized ``delta_rms``, so every group gets
  the same Σ W · ΔA² under ``per_dimension`` weighting; capped at ``max_weight_ratio`` × the smallest
  weight, scaled to mean 1 over data dims; padding and motionless groups get 0.
- ``recommendation``: which strategy to train with, from two measurements (``recommend_strategy``):
  ``padding_weight_share``, the ``padding`` group's share of the loss weight under ``uniform``, and
  ``motion_imbalance``, the ratio of the largest to the smallest normalized ``delta_rms`` among the real groups
  that move. Padding share above ``PADDING_SHARE_LIMIT`` → ``exclude_padding`` (offline, dropping padding was
  the whole measured gain of per-group weighting); imbalance above ``IMBALANCE_LIMIT`` → ``adaptive`` (balances
  groups without hand-set weights; ``per_group`` with the suggested weights is the hand-tuned alternative);
  otherwise plain ``uniform``.
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
from typing import Any

import numpy as np

from openpi import transforms as _transforms
from openpi.analysis import common
from openpi.shared import action_groups as _groups
from openpi.shared import loss_weighting as _lw
from openpi.shared import normalize as _normalize


@dataclasses.dataclass(frozen=True)
class MotionThresholds:
    """When a group counts as moving in a frame (raw units)."""

    position: float = 1e-3  # rad per step (0.03 rad/s at 30 fps)
    velocity: float = 1e-2  # base command units (controller input in [-1, 1])


def group_magnitudes(values: np.ndarray, change: np.ndarray, valid: np.ndarray, dims: Sequence[int]) -> dict:
    """``mean_abs``, ``std`` and ``delta_rms`` of ``values[:, dims]``; ``valid`` marks frames with a defined change."""
    x = values[:, list(dims)].astype(np.float64)
    dx = change[valid][:, list(dims)]
    return {
        "mean_abs": float(np.mean(np.abs(x))),
        "std": float(np.sqrt(np.mean(np.var(x, axis=0)))),
        "delta_rms": float(np.sqrt(np.mean(np.square(dx)))) if len(dx) else 0.0,
    }


def moving_fraction(
    values: np.ndarray,
    change: np.ndarray,
    valid: np.ndarray,
    dims: Sequence[int],
    *,
    velocity: bool,
    thresholds: MotionThresholds,
) -> float:
    """Fraction of valid frames in which the group moves (see the module docstring)."""
    if not valid.any():
        return 0.0
    if velocity:
        moving = np.max(np.abs(values[valid][:, list(dims)]), axis=1) > thresholds.velocity
    else:
        moving = np.max(np.abs(change[valid][:, list(dims)]), axis=1) > thresholds.position
    return float(np.mean(moving))


def suggest_group_weights(
    delta_rms: dict[str, float], sizes: dict[str, int], *, max_weight_ratio: float = 100.0
) -> dict[str, float]:
    """Group weights that equalize Σ W · ΔA² across groups (``delta_rms`` normalized, ``sizes`` = data dims)."""
    energy = {g: sizes[g] * delta_rms[g] ** 2 for g in delta_rms}
    raw = {g: 1.0 / e if e > 1e-20 else 0.0 for g, e in energy.items()}
    positive = [w for w in raw.values() if w > 0]
    if not positive:
        return dict.fromkeys(raw, 0.0)
    cap = max_weight_ratio * min(positive)
    raw = {g: min(w, cap) for g, w in raw.items()}
    mean = sum(raw[g] * sizes[g] for g in raw) / sum(sizes.values())
    return {g: w / mean for g, w in raw.items()}


# Above this share of the loss weight on padding dims, padding visibly dilutes the loss of the real dims.
PADDING_SHARE_LIMIT = 0.05
# A 3x spread of normalized step sizes is a 9x spread of the motion signal per dim between groups.
IMBALANCE_LIMIT = 3.0


def recommend_strategy(
    padding_weight_share: float, delta_rms: dict[str, float], moving: dict[str, float]
) -> dict[str, Any]:
    """The strategy the measurements point to (module docstring), with the figures and reasons behind it.

    ``delta_rms`` and ``moving`` (the moving fraction) are per real group; groups that never move are left out.
    """
    active = {g: v for g, v in delta_rms.items() if v > 0 and moving.get(g, 0.0) > 0}
    imbalance = max(active.values()) / min(active.values()) if len(active) > 1 else 1.0
    exclude = padding_weight_share > PADDING_SHARE_LIMIT
    reasons = []
    if exclude:
        reasons.append(
            f"{padding_weight_share:.0%} of the uniform loss weight sits on padding dims (> {PADDING_SHARE_LIMIT:.0%}):"
            " set exclude_padding=True."
        )
    if imbalance > IMBALANCE_LIMIT:
        strategy = "adaptive"
        slow, fast = min(active, key=active.get), max(active, key=active.get)
        reasons.append(
            f"normalized step sizes differ {imbalance:.1f}x between groups ({fast} vs {slow}, > {IMBALANCE_LIMIT:g}x):"
            " balance them with 'adaptive' (or 'per_group' with the suggested weights)."
        )
    else:
        strategy = "uniform"
        reasons.append(f"group step sizes are within {imbalance:.1f}x (<= {IMBALANCE_LIMIT:g}x): no reweighting needed.")
    return {
        "strategy": strategy,
        "exclude_padding": exclude,
        "padding_weight_share": padding_weight_share,
        "motion_imbalance": imbalance,
        "reasons": reasons,
    }


def _strategy_weightings(
    groups: _groups.ActionGroups, configured: _lw.LossWeighting | None, fallback_weights: dict[str, float]
) -> tuple[dict[str, _lw.LossWeighting], dict[str, float]]:
    """One LossWeighting per strategy; per_dimension / per_group use the config's group weights when it has them."""
    if configured is not None and configured.group_weights is not None:
        weights = dict(zip(configured.groups.names, configured.group_weights, strict=True))
    else:
        weights = {n: fallback_weights.get(n, 0.0) for n in groups.names}
    delta = configured.delta if configured is not None else _lw.DeltaWeighting()
    use_delta = configured.use_delta_weighting if configured is not None else True
    out = {}
    for strategy in _lw.STRATEGIES:
        if strategy == "adaptive":  # its weights come from training's loss history, not from the data
            continue
        gw = weights if strategy in ("per_dimension", "per_group") else None
        out[strategy] = _lw.LossWeighting.create(
            strategy,
            groups.action_dim,
            action_groups=groups,
            group_weights=gw,
            use_delta_weighting=use_delta,
            delta=delta,
        )
    return out, weights


def weight_shares(
    weighting: _lw.LossWeighting, chunks: np.ndarray, groups: _groups.ActionGroups
) -> tuple[dict[str, float], dict[str, float]]:
    """Per group: share of Σ W and share of Σ W · ΔA² on normalized, padded ``chunks`` [B, H, action_dim]."""
    w = common.full_weights(weighting, chunks)
    change = common.NUMPY_OPS.step_change(chunks)
    per_dim_w = w.sum(axis=(0, 1)) @ groups.membership
    per_dim_m = (w * change**2).sum(axis=(0, 1)) @ groups.membership
    total_w, total_m = per_dim_w.sum(), per_dim_m.sum()
    share_w = {n: float(per_dim_w[i] / total_w) for i, n in enumerate(groups.names)}
    share_m = {n: float(per_dim_m[i] / total_m) if total_m > 0 else 0.0 for i, n in enumerate(groups.names)}
    return share_w, share_m


def analyze(
    table: common.ActionTable,
    groups: _groups.ActionGroups,
    stats: _normalize.NormStats,
    *,
    use_quantiles: bool = False,
    horizon: int = 50,
    configured: _lw.LossWeighting | None = None,
    group_names: Sequence[str] | None = None,
    roles: common.BodyRoles = common.R1PRO_ROLES,
    thresholds: MotionThresholds = MotionThresholds(),
    max_chunks: int = 2048,
    max_weight_ratio: float = 100.0,
    seed: int = 0,
) -> dict[str, Any]:
    """The analyzer's full report as a JSON-ready dict (see the module docstring for every figure)."""
    available = common.data_groups(groups, table.num_dims)
    selected = common.select_groups(available, group_names)
    raw = table.actions.astype(np.float64)
    normed = common.normalize(raw, stats, use_quantiles=use_quantiles)
    valid = ~table.first_frame
    raw_change = table.step_change()
    norm_change = np.zeros_like(normed)
    norm_change[1:] = np.diff(normed, axis=0)
    norm_change[~valid] = 0.0

    base = set(roles.base)
    report_groups = {}
    for name, dims in available.items():
        report_groups[name] = {
            "dims": list(dims),
            "kind": "velocity" if set(dims) <= base else "position",
            "raw": group_magnitudes(raw, raw_change, valid, dims),
            "normalized": group_magnitudes(normed, norm_change, valid, dims),
            "moving_fraction": moving_fraction(
                raw, raw_change, valid, dims, velocity=set(dims) <= base, thresholds=thresholds
            ),
        }
    suggested = suggest_group_weights(
        {n: g["normalized"]["delta_rms"] for n, g in report_groups.items()},
        {n: len(g["dims"]) for n, g in report_groups.items()},
        max_weight_ratio=max_weight_ratio,
    )
    suggested.update({n: 0.0 for n in groups.names if n not in suggested})

    starts = common.chunk_starts(table, horizon)
    if len(starts) == 0:
        raise ValueError(f"No episode is at least action_horizon={horizon} frames long; cannot build chunks.")
    if len(starts) > max_chunks:
        starts = np.sort(np.random.default_rng(seed).choice(starts, size=max_chunks, replace=False))
    chunks = _transforms.pad_to_dim(common.gather_chunks(normed, starts, horizon), groups.action_dim)
    weightings, used = _strategy_weightings(groups, configured, suggested)
    weight_share, motion_share = {}, {}
    for strategy, weighting in weightings.items():
        weight_share[strategy], motion_share[strategy] = weight_shares(weighting, chunks, groups)

    keep = set(selected)
    real = [n for n in report_groups if n != _lw.PADDING_GROUP]
    recommendation = recommend_strategy(
        weight_share["uniform"].get(_lw.PADDING_GROUP, 0.0),
        {n: report_groups[n]["normalized"]["delta_rms"] for n in real},
        {n: report_groups[n]["moving_fraction"] for n in real},
    )
    return {
        "num_episodes": len(table.lengths),
        "num_frames": len(table.actions),
        "data_action_dims": table.num_dims,
        "model_action_dim": groups.action_dim,
        "normalization": "quantile" if use_quantiles else "zscore",
        "thresholds": dataclasses.asdict(thresholds),
        "num_chunks": len(starts),
        "action_horizon": horizon,
        "groups": {n: g for n, g in report_groups.items() if n in keep},
        "group_weights_used": used,
        "weight_share": {s: {n: v for n, v in sh.items() if n in keep} for s, sh in weight_share.items()},
        "motion_share": {s: {n: v for n, v in sh.items() if n in keep} for s, sh in motion_share.items()},
        "suggested_group_weights": suggested,
        "recommendation": recommendation,
    }


def _ratio_text(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.3f}"


def format_table(report: dict[str, Any]) -> str:
    """The terminal table: one row per group, raw and normalized figures, shares and suggested weight."""
    header = (
        f"{'group':<14}{'dims':>5}{'|a| raw':>10}{'std raw':>10}{'Δrms raw':>10}{'|a| norm':>10}{'std norm':>10}"
        f"{'Δrms norm':>10}{'moving':>8}"
    )
    lines = [
        f"Action magnitudes ({report['num_frames']} frames, {report['num_episodes']} episodes, "
        f"{report['normalization']} normalization)",
        header,
    ]
    for name, g in report["groups"].items():
        r, n = g["raw"], g["normalized"]
        lines.append(
            f"{name:<14}{len(g['dims']):>5}{r['mean_abs']:>10.4f}{r['std']:>10.4f}{r['delta_rms']:>10.5f}"
            f"{n['mean_abs']:>10.4f}{n['std']:>10.4f}{n['delta_rms']:>10.5f}{g['moving_fraction']:>8.1%}"
        )
    names = list(report["groups"])
    lines.append("")
    lines.append("Share of loss weight | share of weighted motion Σ W·ΔA² (normalized targets)")
    lines.append(f"{'strategy':<15}" + "".join(f"{n:>20}" for n in names))
    for strategy in report["weight_share"]:
        ws, ms = report["weight_share"][strategy], report["motion_share"][strategy]
        lines.append(f"{strategy:<15}" + "".join(f"{ws[n]:>11.3f} |{ms[n]:>7.3f}" for n in names))
    lines.append("")
    lines.append(
        "Suggested group weights (equal Σ W·ΔA² per group): "
        + ", ".join(f"{n}={w:.3g}" for n, w in report["suggested_group_weights"].items())
    )
    if "recommendation" in report:
        rec = report["recommendation"]
        padding = ", exclude_padding=True" if rec["exclude_padding"] else ""
        lines.append(f"Recommended: loss_weighting_strategy={rec['strategy']!r}{padding}")
        lines.extend(f"  - {reason}" for reason in rec["reasons"])
    if "prediction" in report:
        lines.append("")
        lines.append(f"{'group':<14}{'pred Δrms':>12}{'true Δrms':>12}{'ratio':>8}")
        for name, p in report["prediction"].items():
            lines.append(
                f"{name:<14}{p['pred_delta_rms']:>12.5f}{p['true_delta_rms']:>12.5f}{_ratio_text(p['ratio']):>8}"
            )
    return "\n".join(lines)
