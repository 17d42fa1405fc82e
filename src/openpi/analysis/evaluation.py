"""Offline policy evaluation on held-out episodes: per-group errors, arm activity, gripper and base agreement.

The core takes ``predict(observation_batch) -> action chunks`` so any policy (or a test oracle) plugs in.
Chunks start every ``stride`` frames where a full ``horizon``-long ground-truth chunk exists. Metrics, per task
and overall (sums over all chunks, then ratios, so long tasks weigh by their frames):
- per group: MSE and MAE in raw units, MSE after normalization, and the RMS of the within-chunk step change
  of predicted vs true actions (normalized);
- arm activity ratio: Σ predicted arm motion / Σ true arm motion, motion = Σ_h Σ_{arm dims} |a[h] − a[h−1]|
  inside each chunk (1 for a perfect policy, 0 for arms that never move);
- gripper agreement: fraction of (step, gripper) pairs where prediction and truth agree on open (> 0) vs closed;
- base velocity error: RMSE and MAE of the base commands (raw units).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from typing import Any

import numpy as np
import tqdm

from openpi.analysis import common
from openpi.shared import normalize as _normalize

Predict = Callable[[dict[str, Any]], np.ndarray]
# Builds the observation batch for chunk starts (episode indices, frame indices); the default gives ids and prompts.
ObservationFn = Callable[[np.ndarray, np.ndarray, list[str]], dict[str, Any]]


def id_observations(episode_index: np.ndarray, frame_index: np.ndarray, prompts: list[str]) -> dict[str, Any]:
    """The minimal observation batch: which frame each chunk starts at, and the task prompt."""
    return {"episode_index": episode_index, "frame_index": frame_index, "prompt": prompts}


class _Sums:
    """Running sums for one task (or overall); group arrays are indexed like the group names."""

    def __init__(self, num_groups: int):
        self.chunks = 0
        self.sq_raw, self.abs_raw, self.sq_norm, self.elements = (np.zeros(num_groups) for _ in range(4))
        self.pred_motion_sq, self.true_motion_sq, self.motion_elements = (np.zeros(num_groups) for _ in range(3))
        self.arm_pred = self.arm_true = self.grip_agree = self.grip_total = 0.0
        self.base_sq = self.base_abs = self.base_total = 0.0


def _add(s: _Sums, pred, true, pred_n, true_n, membership: np.ndarray, roles: common.BodyRoles) -> None:
    """Adds one batch of chunks [B, H, D] (raw and normalized) to the sums."""
    b, h, _ = true.shape
    s.chunks += b
    s.sq_raw += np.square(pred - true).sum(axis=(0, 1)) @ membership
    s.abs_raw += np.abs(pred - true).sum(axis=(0, 1)) @ membership
    s.sq_norm += np.square(pred_n - true_n).sum(axis=(0, 1)) @ membership
    s.elements += b * h * membership.sum(axis=0)
    dp, dt = np.diff(pred_n, axis=1), np.diff(true_n, axis=1)
    s.pred_motion_sq += np.square(dp).sum(axis=(0, 1)) @ membership
    s.true_motion_sq += np.square(dt).sum(axis=(0, 1)) @ membership
    s.motion_elements += b * (h - 1) * membership.sum(axis=0)
    arms, grips, base = list(roles.arms), list(roles.grippers), list(roles.base)
    s.arm_pred += float(np.abs(np.diff(pred[..., arms], axis=1)).sum())
    s.arm_true += float(np.abs(np.diff(true[..., arms], axis=1)).sum())
    s.grip_agree += float(((pred[..., grips] > 0) == (true[..., grips] > 0)).sum())
    s.grip_total += b * h * len(grips)
    s.base_sq += float(np.square(pred[..., base] - true[..., base]).sum())
    s.base_abs += float(np.abs(pred[..., base] - true[..., base]).sum())
    s.base_total += b * h * len(base)


def _safe(num: float, den: float) -> float | None:
    return float(num / den) if den > 0 else None


def _metrics(s: _Sums, names: Sequence[str]) -> dict[str, Any]:
    groups = {}
    for i, name in enumerate(names):
        pred_rms = np.sqrt(_safe(s.pred_motion_sq[i], s.motion_elements[i]) or 0.0)
        true_rms = np.sqrt(_safe(s.true_motion_sq[i], s.motion_elements[i]) or 0.0)
        groups[name] = {
            "mse_raw": _safe(s.sq_raw[i], s.elements[i]),
            "mae_raw": _safe(s.abs_raw[i], s.elements[i]),
            "mse_normalized": _safe(s.sq_norm[i], s.elements[i]),
            "pred_delta_rms": float(pred_rms),
            "true_delta_rms": float(true_rms),
            "motion_ratio": _safe(pred_rms, true_rms),
        }
    base_mse = _safe(s.base_sq, s.base_total)
    return {
        "num_chunks": s.chunks,
        "groups": groups,
        "arm_activity_ratio": _safe(s.arm_pred, s.arm_true),
        "pred_arm_motion": s.arm_pred,
        "true_arm_motion": s.arm_true,
        "gripper_agreement": _safe(s.grip_agree, s.grip_total),
        "base_velocity_rmse": None if base_mse is None else float(np.sqrt(base_mse)),
        "base_velocity_mae": _safe(s.base_abs, s.base_total),
    }


def iter_chunk_batches(
    table: common.ActionTable, horizon: int, stride: int, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Batches of (episode positions in the table, frame indices, row indices) of chunk starts."""
    starts = common.chunk_starts(table, horizon, stride)
    position = np.repeat(np.arange(len(table.lengths)), table.lengths)
    frame = np.arange(len(table.actions)) - np.repeat(table.offsets[:-1], table.lengths)
    for i in range(0, len(starts), batch_size):
        rows = starts[i : i + batch_size]
        yield position[rows], frame[rows], rows


def evaluate(
    predict: Predict,
    table: common.ActionTable,
    groups: dict[str, tuple[int, ...]],
    stats: _normalize.NormStats,
    *,
    use_quantiles: bool = False,
    horizon: int = 50,
    stride: int | None = None,
    batch_size: int = 32,
    roles: common.BodyRoles = common.R1PRO_ROLES,
    observation_fn: ObservationFn = id_observations,
    progress: bool = False,
) -> dict[str, Any]:
    """Runs ``predict`` on chunk starts of every episode of ``table`` and returns the report (module docstring)."""
    stride = horizon if stride is None else stride
    d = table.num_dims
    names = list(groups)
    membership = np.zeros((d, len(names)))
    for i, dims in enumerate(groups.values()):
        membership[list(dims), i] = 1.0
    overall = _Sums(len(names))
    per_task: dict[str, _Sums] = {}
    num = len(common.chunk_starts(table, horizon, stride))
    if num == 0:
        raise ValueError(f"No held-out episode is at least action_horizon={horizon} frames long.")
    bar = tqdm.tqdm(total=num, desc="Evaluating", unit="chunk", disable=not progress)
    for positions, frames, rows in iter_chunk_batches(table, horizon, stride, batch_size):
        tasks = [table.tasks[p] for p in positions]
        obs = observation_fn(table.episode_index[positions], frames, tasks)
        pred = np.asarray(predict(obs), dtype=np.float64)
        if pred.ndim != 3 or pred.shape[0] != len(rows) or pred.shape[1] < horizon or pred.shape[2] < d:
            raise ValueError(
                f"predict returned shape {pred.shape}; expected [{len(rows)}, >= {horizon}, >= {d}] (batch, horizon, dims)."
            )
        pred = pred[:, :horizon, :d]
        true = common.gather_chunks(table.actions, rows, horizon).astype(np.float64)
        pred_n = common.normalize(pred, stats, use_quantiles=use_quantiles)
        true_n = common.normalize(true, stats, use_quantiles=use_quantiles)
        for task in dict.fromkeys(tasks):
            sel = np.asarray([t == task for t in tasks])
            _add(
                per_task.setdefault(task, _Sums(len(names))),
                pred[sel],
                true[sel],
                pred_n[sel],
                true_n[sel],
                membership,
                roles,
            )
        _add(overall, pred, true, pred_n, true_n, membership, roles)
        bar.update(len(rows))
    bar.close()
    return {
        "horizon": horizon,
        "stride": stride,
        "num_episodes": len(table.lengths),
        "normalization": "quantile" if use_quantiles else "zscore",
        "groups": {n: list(g) for n, g in groups.items()},
        "overall": _metrics(overall, names),
        "per_task": {t: _metrics(s, names) for t, s in sorted(per_task.items())},
    }


def _fmt(v: float | None, spec: str = ".4g") -> str:
    return "n/a" if v is None else format(v, spec)


def markdown_summary(report: dict[str, Any]) -> str:
    """The report as markdown: headline metrics per task, then per-group errors overall."""
    lines = [
        "# Offline policy evaluation",
        "",
        f"{report['num_episodes']} episodes, action horizon {report['horizon']}, a chunk every {report['stride']} "
        f"frames, {report['normalization']} normalization.",
        "",
        "| task | chunks | arm activity ratio | gripper agreement | base vel. RMSE | base vel. MAE |",
        "|---|---|---|---|---|---|",
    ]
    rows = [*report["per_task"].items(), ("**overall**", report["overall"])]
    for task, m in rows:
        lines.append(
            f"| {task} | {m['num_chunks']} | {_fmt(m['arm_activity_ratio'], '.3f')} | "
            f"{_fmt(m['gripper_agreement'], '.3f')} | {_fmt(m['base_velocity_rmse'])} | {_fmt(m['base_velocity_mae'])} |"
        )
    lines += [
        "",
        "## Per-group error (overall)",
        "",
        "| group | MSE raw | MAE raw | MSE normalized | pred Δrms | true Δrms | motion ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, g in report["overall"]["groups"].items():
        lines.append(
            f"| {name} | {_fmt(g['mse_raw'])} | {_fmt(g['mae_raw'])} | {_fmt(g['mse_normalized'])} | "
            f"{_fmt(g['pred_delta_rms'])} | {_fmt(g['true_delta_rms'])} | {_fmt(g['motion_ratio'], '.3f')} |"
        )
    return "\n".join(lines) + "\n"
