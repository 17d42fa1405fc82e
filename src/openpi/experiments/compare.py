"""Runs side by side from their ``metrics.jsonl`` (no wandb account needed): per-group training loss, the
in-training validation metrics and closed-loop success, one panel per metric, one line per run, as a PNG."""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import math
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import tyro

from openpi.training import run_utils

# The plotted keys, by prefix (in panel order): per-group loss, validation (eval_policy's metrics) and success.
PANEL_PREFIXES = ("loss/", "val/mse_normalized/", "val/mse_raw/", "val/arm_activity_ratio", "val/gripper_agreement",
                  "sim/")
COLUMNS = 4


@dataclasses.dataclass(frozen=True)
class Args:
    run_dirs: tyro.conf.Positional[tuple[str, ...]]
    """Experiment directories (``<checkpoint_base_dir>/<config>/<exp>``), each holding its ``metrics.jsonl``."""
    output: str = "compare_runs.png"
    """Where the PNG is written."""


def read_runs(run_dirs: Sequence[str | pathlib.Path]) -> dict[str, list[dict]]:
    """``<config>/<exp>`` -> its metrics rows; an error naming a directory without metrics."""
    runs = {}
    for run_dir in map(pathlib.Path, run_dirs):
        path = run_dir / run_utils.METRICS_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{run_dir} has no {run_utils.METRICS_FILE}: give experiment directories a "
                                    "training run wrote (checkpoints/<config>/<exp>).")
        runs[f"{run_dir.resolve().parent.name}/{run_dir.resolve().name}"] = run_utils.read_metrics(path)
    return runs


def panel_keys(runs: dict[str, list[dict]]) -> list[str]:
    """The metrics any run logged that are plotted, in ``PANEL_PREFIXES`` order."""
    keys = {k for rows in runs.values() for row in rows for k in row}
    return [k for prefix in PANEL_PREFIXES for k in sorted(keys) if k.startswith(prefix) and not k.endswith("/seconds")]


def plot(runs: dict[str, list[dict]], output: pathlib.Path) -> plt.Figure:
    """One panel per metric of ``panel_keys``, one line (value against step) per run holding it; writes the PNG."""
    keys = panel_keys(runs)
    if not keys:
        raise ValueError(f"No loss, validation or success metrics in the runs {list(runs)}.")
    rows = math.ceil(len(keys) / COLUMNS)
    fig, axes = plt.subplots(rows, COLUMNS, figsize=(4 * COLUMNS, 3 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for name, records in runs.items():
            points = [(r["step"], r[key]) for r in records if key in r]
            if points:
                ax.plot(*zip(*points), marker="." if len(points) < 20 else None, label=name)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
    for ax in axes.flat[len(keys):]:
        ax.remove()
    fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="upper center", ncol=min(len(runs), 4), fontsize=8)
    fig.subplots_adjust(hspace=0.5, wspace=0.3, top=1 - 0.6 / (3 * rows))
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=100)
    plt.close(fig)
    return fig


def main(args: Args) -> plt.Figure:
    if not args.run_dirs:
        raise ValueError("Give at least one experiment directory.")
    fig = plot(read_runs(args.run_dirs), pathlib.Path(args.output))
    print(f"Wrote {args.output} ({len(fig.axes)} panels, {len(args.run_dirs)} runs).")
    return fig
