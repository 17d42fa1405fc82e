"""The comparisons' reports: per strategy, the spread over seeds of every number read back from the runs' eval.json
and metrics.jsonl files, as markdown tables and PNG plots. A single-seed cell says ``n=1``: it has no spread."""

from __future__ import annotations

from collections.abc import Callable
import json
import pathlib
from typing import TYPE_CHECKING
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from openpi.analysis import plots
from openpi.datasets import lerobot as _lerobot
from openpi.sim import closed_loop

if TYPE_CHECKING:
    from openpi.experiments import b1k_demo
    from openpi.experiments import sim_demo

B1K_GROUPS = ("base", "trunk", "left_arm", "right_arm", "grippers")
SIM_GROUPS = {"metaworld": ("arm", "gripper"), "mobile": ("base", "arm", "gripper")}


def spread(mean: float, std: float, n: int, spec: str = ".3f") -> str:
    """``mean ± std`` over ``n`` seeds; ``mean (n=1)`` for one seed."""
    return f"{mean:{spec}} (n=1)" if n == 1 else f"{mean:{spec}} ± {std:{spec}}"


def mean_std(values: list[float | None]) -> tuple[float, float] | None:
    """Mean and (population) std of the values that are not None; None when there are none."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return float(np.mean(values)), float(np.std(values))


def _cell(value: tuple[float, float] | None, n: int, spec: str = ".3f") -> str:
    return "n/a" if value is None else spread(*value, n, spec)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


# ---------------------------------------------------------------------------------------------------------
# Offline on the miniature B1K dataset.


def summarize_b1k(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per strategy, mean and std over seeds of the headline metrics (from the evaluation JSON)."""
    summary = {}
    for strategy, runs in results.items():
        overall = [r["eval"]["overall"] for r in runs]
        row = {
            "seeds": [r["seed"] for r in runs],
            "arm_activity_ratio": mean_std([o["arm_activity_ratio"] for o in overall]),
            "gripper_agreement": mean_std([o["gripper_agreement"] for o in overall]),
            "base_velocity_rmse": mean_std([o["base_velocity_rmse"] for o in overall]),
            "final_train_loss": mean_std([r["final_train_loss"] for r in runs]),
        }
        for group in B1K_GROUPS:
            row[f"mse_normalized/{group}"] = mean_std([o["groups"][group]["mse_normalized"] for o in overall])
            row[f"train_loss/{group}"] = mean_std([r["metrics"][-1][f"loss/{group}"] for r in runs])
        summary[strategy] = row
    return summary


def b1k_markdown(
    args: b1k_demo.Args,
    summary: dict[str, Any],
    results: dict[str, list[dict]],
    meta: dict,
) -> str:
    seeds = ", ".join(str(s) for s in args.seeds)
    lines = [
        "# Loss strategies offline on the miniature B1K dataset",
        "",
        "## Offline on the miniature B1K dataset",
        "",
        f"Framework {args.framework}; {args.steps} steps × batch {args.batch_size} per run; seeds {seeds}; "
        f"{meta['train_frames']} training frames in {len(meta['train_episodes'])} episodes; evaluation on "
        f"held-out episodes {meta['heldout_episodes']} (a chunk every {args.eval_stride} frames). Cells are "
        "mean ± std over seeds. Errors are normalized MSE per group (lower is better); arm activity ratio is "
        "predicted / true arm motion within chunks (1 is ideal, near 0 means the arms stagnate).",
        "",
        "| strategy | " + " | ".join(f"{g} MSE" for g in B1K_GROUPS)
        + " | arm activity ratio | gripper agreement | base vel. RMSE | final train loss |",
        "|---|" + "---|" * (len(B1K_GROUPS) + 4),
    ]
    for strategy, row in summary.items():
        n = len(row["seeds"])
        cells = [_cell(row[f"mse_normalized/{g}"], n) for g in B1K_GROUPS]
        cells += [_cell(row["arm_activity_ratio"], n), _cell(row["gripper_agreement"], n),
                  _cell(row["base_velocity_rmse"], n, ".4f"), _cell(row["final_train_loss"], n)]
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Training loss per group at the end of training",
        "",
        "Unweighted flow-matching loss of each group (``loss/<group>``, mean of the last log interval): what each "
        "strategy made the model fit, on the training data.",
        "",
        "| strategy | " + " | ".join(B1K_GROUPS) + " |",
        "|---|" + "---|" * len(B1K_GROUPS),
    ]
    for strategy, row in summary.items():
        n = len(row["seeds"])
        lines.append(f"| {strategy} | " + " | ".join(_cell(row[f"train_loss/{g}"], n) for g in B1K_GROUPS) + " |")
    lines += ["", "## Every run", "", "| strategy | seed | arm activity ratio | gripper agreement | eval JSON |",
              "|---|---|---|---|---|"]
    for strategy, runs in results.items():
        for r in runs:
            o = r["eval"]["overall"]
            lines.append(
                f"| {strategy} | {r['seed']} | {_fmt(o['arm_activity_ratio'])} | {_fmt(o['gripper_agreement'])} | "
                f"{r['eval_json']} |"
            )
    lines += [
        "",
        "## What this measures and what it does not",
        "",
        "- Offline, open-loop prediction on held-out episodes of a synthetic miniature of B1K, with a tiny model "
        "trained for minutes. It shows whether a strategy changes which action groups the model learns, not "
        "task success.",
        "- Closed-loop success in the BEHAVIOR simulator (Isaac Sim, GPU) was not measured here; the simulator "
        "section above measures closed-loop success in Meta-World instead.",
        f"- Plots: {', '.join(meta['plots'])}.",
        f"- Total time {meta['seconds']:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


def plot_arm_trajectories(
    predictors: dict[str, Callable[[int, int], np.ndarray]], root: pathlib.Path, episode: int, seed: int,
    path: pathlib.Path,
) -> pathlib.Path:
    """Predicted vs ground-truth chunks of two arm joints and the grippers for one held-out frame (the middle of
    ``episode``); ``predictors`` maps a strategy to its run's ``predict(episode, frame)`` at ``seed``."""
    dataset = _lerobot.LeRobotDataset(root=root, episodes=[episode], action_horizon=50, camera_keys=())
    table_frame = len(dataset) // 2
    truth = dataset[table_frame]["action"]
    dims = {"left_arm j0": 7, "right_arm j0": 15, "left gripper": 14, "right gripper": 22}
    fig, axes = plt.subplots(1, len(dims), figsize=(4 * len(dims), 3.2))
    for ax, (label, d) in zip(axes, dims.items(), strict=True):
        ax.plot(truth[:, d], "k-", linewidth=2, label="ground truth")
        ax.set_title(label)
        ax.set_xlabel("chunk step")
    for strategy, predict in predictors.items():
        pred = predict(episode, table_frame)
        for ax, d in zip(axes, dims.values(), strict=True):
            ax.plot(pred[:, d], label=strategy)
    axes[0].legend()
    fig.suptitle(f"episode {episode}, frame {table_frame} (seed {seed})")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_b1k_losses(results: dict[str, list[dict]], path: pathlib.Path) -> pathlib.Path:
    """Per-group training loss (unweighted, mean over seeds) for every strategy."""
    return plots.group_loss_curves(results, B1K_GROUPS, path)


# ---------------------------------------------------------------------------------------------------------
# Closed loop in the simulator.


def _pooled(evals: list[dict[str, Any]], task: str, kind: str | None) -> dict[str, Any]:
    """One success kind of ``task`` over the runs' eval.json task tables (``kind`` None: Meta-World's success)."""
    entries = [e[task] if kind is None else e[task][kind] for e in evals]
    rates = [x["success_rate"] for x in entries]
    successes = sum(x["successes"] for x in entries)
    trials = sum(len(e[task]["episodes"]) for e in evals)
    return {"per_seed": rates, "mean": float(np.mean(rates)), "std": float(np.std(rates)),
            "pooled": [successes, trials], "wilson95": list(closed_loop.wilson_interval(successes, trials))}


def summarize_sim(runs: dict[str, list[dict[str, Any]]], tasks: tuple[str, ...], suite: str = "metaworld"
                  ) -> dict[str, Any]:
    """Per strategy and task: success rate per seed, mean ± std over seeds, and the pooled Wilson interval,
    all read back from the runs' eval.json files (mobile: overall success, with navigation, manipulation and the
    arm activity ratio beside it); per group, the last logged training loss over seeds."""
    summary = {}
    for strategy, strategy_runs in runs.items():
        evals = [json.loads(pathlib.Path(r["eval_json"]).read_text())["tasks"] for r in strategy_runs]
        row: dict[str, Any] = {"seeds": [r["seed"] for r in strategy_runs], "tasks": {}}
        for task in tasks:
            if suite == "mobile":
                row["tasks"][task] = {**_pooled(evals, task, "overall"),
                                      **{kind: _pooled(evals, task, kind) for kind in ("navigation", "manipulation")},
                                      "arm_activity": [e[task]["arm_activity_ratio"] for e in evals]}
            else:
                row["tasks"][task] = _pooled(evals, task, None)
        row["mean_over_tasks"] = float(np.mean([row["tasks"][t]["mean"] for t in tasks]))
        row["train_loss"] = {
            g: [float(np.mean([r["metrics"][-1][f"loss/{g}"] for r in strategy_runs])),
                float(np.std([r["metrics"][-1][f"loss/{g}"] for r in strategy_runs]))]
            for g in SIM_GROUPS[suite]
        }
        summary[strategy] = row
    return summary


def verdict(summary: dict[str, Any], task: str) -> str:
    """'not resolved' unless the best strategy's mean beats every other by more than both seed spreads; with
    one seed there is no spread to compare with."""
    ranked = sorted(summary, key=lambda s: summary[s]["tasks"][task]["mean"], reverse=True)
    if len(ranked) < 2:
        return "one strategy"
    if any(len(summary[s]["seeds"]) < 2 for s in ranked):
        return "one seed, no spread"
    best = summary[ranked[0]]["tasks"][task]
    for other in ranked[1:]:
        cell = summary[other]["tasks"][task]
        if best["mean"] - cell["mean"] <= best["std"] + cell["std"]:
            return "not resolved"
    return f"{ranked[0]} best"


def _success_cell(entry: dict[str, Any], n: int) -> str:
    low, high = entry["wilson95"]
    return f"{spread(entry['mean'], entry['std'], n, '.2f')} [{low:.2f}, {high:.2f}]"


def sim_markdown(args: sim_demo.SimArgs, seeds: tuple[int, ...], result: dict[str, Any], plot_paths: list[str]) -> list[str]:
    summary, tasks, mobile = result["summary"], args.tasks, args.suite == "mobile"
    groups = SIM_GROUPS[args.suite]
    title = ("the mobile manipulator (drive, then manipulate)" if mobile
             else "Meta-World (fixed-base arm, the control without a base)")
    what = "overall success (navigated and the task's own check)" if mobile else "success"
    lines = [
        f"## Closed loop in the simulator: {title}",
        "",
        f"Tiny pi0 per strategy and seed (seeds {', '.join(map(str, seeds))}), {args.steps} steps × batch "
        f"{args.batch_size} on {args.episodes_per_task} scripted-expert demos per task; each run is evaluated "
        f"on the same {args.eval_episodes} held-out layouts per task (at most {args.max_steps} steps, "
        f"{args.execute_steps} actions per chunk before replanning). Cells: {what}, mean ± std over seeds "
        "[95% Wilson interval of the pooled episodes].",
        "",
        "| strategy | " + " | ".join(tasks) + " | mean over tasks |",
        "|---|" + "---|" * (len(tasks) + 1),
    ]
    for strategy, row in summary.items():
        n = len(row["seeds"])
        lines.append(f"| {strategy} | " + " | ".join(_success_cell(row["tasks"][t], n) for t in tasks)
                     + f" | {row['mean_over_tasks']:.2f} |")
    lines += ["", "Between strategies, per task (a gap inside the seed spread is not a result): "
              + "; ".join(f"{t}: {verdict(summary, t)}" for t in tasks) + "."]
    if mobile:
        lines += ["", "Where it fails: navigation (the base reached the pre-grasp region) and manipulation (the task's "
                  "own check), and the arm activity ratio (executed arm motion / the expert's on the same layouts; "
                  "< 1 is an arm that stagnates, > 1 one that jitters), mean over seeds:", "",
                  "| strategy | task | navigation | manipulation | arm activity |", "|---|---|---|---|---|"]
        for strategy, row in summary.items():
            n = len(row["seeds"])
            for task in tasks:
                cell = row["tasks"][task]
                activity = [a for a in cell["arm_activity"] if a is not None]
                lines.append(f"| {strategy} | {task} | {_success_cell(cell['navigation'], n)} | "
                             f"{_success_cell(cell['manipulation'], n)} | "
                             f"{f'{np.mean(activity):.2f}' if activity else '-'} |")
    lines += ["", "Training loss per group at the end (unweighted flow-matching loss, mean ± std over seeds):", "",
              "| strategy | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
    for strategy, row in summary.items():
        n = len(row["seeds"])
        lines.append(f"| {strategy} | " + " | ".join(spread(m, s, n) for m, s in row["train_loss"].values()) + " |")
    lines += ["", "| strategy | seed | " + " | ".join(tasks) + " | eval JSON |", "|---|---|" + "---|" * (len(tasks) + 1)]
    for strategy, runs in result["runs"].items():
        for k, r in enumerate(runs):
            rates = [summary[strategy]["tasks"][t]["per_seed"][k] for t in tasks]
            lines.append(f"| {strategy} | {r['seed']} | " + " | ".join(f"{x:.2f}" for x in rates) + f" | {r['eval_json']} |")
    lines += [
        "",
        "What this shows and what it does not: closed-loop task success of tiny models trained for minutes on a "
        "CPU, on layouts none of them saw, measured by the simulator's own success check; differences between "
        "strategies count only where they exceed the seed spread. It does not show what happens at openpi's "
        "scale (pretrained 3B models, real robots), and the expert's demonstrations are cleaner than human ones.",
        f"Plots: {', '.join(plot_paths)}.",
        "",
    ]
    return lines


def plot_sim_losses(result: dict[str, Any], groups: tuple[str, ...], path: pathlib.Path) -> pathlib.Path:
    return plots.group_loss_curves(result["runs"], groups, path, title="sim loss")


def plot_sim_success(result: dict[str, Any], tasks: tuple[str, ...], path: pathlib.Path) -> pathlib.Path:
    summary = result["summary"]
    fig, ax = plt.subplots(figsize=(1.8 * len(tasks) * max(1, len(summary)) / 2 + 2, 3.2))
    width = 0.8 / max(1, len(summary))
    for k, (strategy, row) in enumerate(summary.items()):
        x = np.arange(len(tasks)) + k * width
        means = [row["tasks"][t]["mean"] for t in tasks]
        stds = [row["tasks"][t]["std"] for t in tasks]
        ax.bar(x, means, width, yerr=stds, label=strategy, capsize=3)
    ax.set_xticks(np.arange(len(tasks)) + width * (len(summary) - 1) / 2, tasks)
    ax.set_ylim(0, 1)
    ax.set_ylabel("closed-loop success")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
