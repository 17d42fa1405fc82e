"""PNG plots for the tools' reports (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import pathlib
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def _bars(ax, labels: list[str], series: dict[str, list[float]], title: str, ylabel: str, log: bool = False) -> None:
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(labels))
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, [0.0 if v is None else v for v in values], width, label=name)
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    if len(series) > 1:
        ax.legend(fontsize=7)


def _save(fig, path: pathlib.Path) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.subplots_adjust(bottom=0.25, wspace=0.3)  # fixed margins: tight_layout costs ~0.4 s per figure
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def magnitude_plots(report: dict[str, Any], prefix: pathlib.Path) -> list[pathlib.Path]:
    """Group magnitudes (raw and normalized) and the loss-weight / motion shares per strategy."""
    names = list(report["groups"])
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, kind in zip(axes, ("raw", "normalized")):
        series = {key: [report["groups"][n][kind][key] for n in names] for key in ("mean_abs", "std", "delta_rms")}
        _bars(ax, names, series, f"Action magnitudes ({kind})", "value", log=True)
    paths = [_save(fig, prefix.with_name(prefix.name + "_magnitudes.png"))]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, key, title in zip(axes, ("weight_share", "motion_share"), ("loss-weight share", "weighted-motion share")):
        series = {s: [report[key][s][n] for n in names] for s in report[key]}
        _bars(ax, names, series, f"Each group's {title} per strategy", "share")
    paths.append(_save(fig, prefix.with_name(prefix.name + "_shares.png")))
    if "prediction" in report:
        fig, ax = plt.subplots(figsize=(6, 4))
        pred = report["prediction"]
        series = {w: [pred[n][f"{w}_delta_rms"] for n in pred] for w in ("pred", "true")}
        _bars(ax, list(pred), series, "Predicted vs true motion (normalized Δrms)", "Δrms")
        paths.append(_save(fig, prefix.with_name(prefix.name + "_prediction.png")))
    return paths


def balance_plot(before: dict[str, float], after: dict[str, float], title: str, path: pathlib.Path) -> pathlib.Path:
    """Each group's normalized scale before and after balancing."""
    fig, ax = plt.subplots(figsize=(7, 4))
    names = list(before)
    _bars(
        ax, names, {"before": [before[n] for n in names], "after": [after[n] for n in names]}, title, "scale", log=True
    )
    return _save(fig, path)


def eval_plots(report: dict[str, Any], prefix: pathlib.Path) -> list[pathlib.Path]:
    """Per-group normalized error and motion, and per-task arm activity / gripper agreement."""
    overall = report["overall"]["groups"]
    names = list(overall)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    _bars(axes[0], names, {"MSE (normalized)": [overall[n]["mse_normalized"] for n in names]}, "Per-group error", "MSE")
    _bars(
        axes[1],
        names,
        {w: [overall[n][f"{w}_delta_rms"] for n in names] for w in ("pred", "true")},
        "Predicted vs true motion",
        "normalized Δrms",
    )
    tasks = list(report["per_task"])
    _bars(
        axes[2],
        tasks,
        {
            "arm activity ratio": [report["per_task"][t]["arm_activity_ratio"] for t in tasks],
            "gripper agreement": [report["per_task"][t]["gripper_agreement"] for t in tasks],
        },
        "Per task",
        "ratio",
    )
    return [_save(fig, prefix.with_name(prefix.name + "_eval.png"))]


def group_loss_curves(
    runs: dict[str, list[dict[str, Any]]], groups: tuple[str, ...], path: pathlib.Path, title: str = "loss"
) -> pathlib.Path:
    """Per-group training loss (``loss/<group>`` of each run's metrics, mean over seeds) for every strategy."""
    fig, axes = plt.subplots(1, len(groups), figsize=(4 * len(groups), 3.2), sharex=True, squeeze=False)
    for strategy, strategy_runs in runs.items():
        for ax, group in zip(axes[0], groups, strict=True):
            steps = [m["step"] for m in strategy_runs[0]["metrics"]]
            values = np.mean([[m[f"loss/{group}"] for m in r["metrics"]] for r in strategy_runs], axis=0)
            ax.plot(steps, values, label=strategy)
            ax.set_title(f"{title}/{group}")
            ax.set_xlabel("step")
            ax.set_yscale("log")
    axes[0][0].legend()
    return _save(fig, path)
