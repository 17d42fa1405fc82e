"""The closed-loop part of the demo: tiny pi0 policies trained per loss strategy on scripted-expert Meta-World
demonstrations, then run in the simulator on held-out layouts (used by scripts/demo.py).

1. Writes the expert dataset (``openpi.sim.dataset``) to ``--sim.dataset-root`` when absent.
2. Computes norm stats over it; trains one model per strategy and seed (configs in `STRATEGY_CONFIGS`,
   identical except for the loss weighting).
3. Runs every checkpoint closed loop on the same held-out layouts of every task (``openpi.sim.closed_loop``).
4. Returns per run the eval JSON and the training metrics, and per strategy and task the success over seeds;
   `markdown` and `plot_*` render them.

Alone: ``python scripts/demo_sim.py --seeds 0 1 2 --sim.steps 1500 --sim.eval-episodes 10`` (an interrupted run
continues where it stopped when started again with the same ``--output-dir``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import tyro

from openpi.analysis import plots
from openpi.datasets import stats as _stats
from openpi.policies import policy_config
from openpi.serving import chunking
from openpi.shared import cli
from openpi.shared import normalize as _normalize
from openpi.sim import closed_loop
from openpi.sim import dataset as _dataset
from openpi.sim import rollout
from openpi.training import config as _config
from openpi.training import data_resolver
from openpi.training import jax_trainer
from openpi.training import run_utils

logger = logging.getLogger("openpi.demo")

# Strategy → the registered simulator config that trains it (identical except for the loss weighting). Other
# strategies join by adding a config to training/config.py's _SIM_VARIANTS and a line here.
STRATEGY_CONFIGS = {
    "uniform": "metaworld_demo",
    "original": "metaworld_demo_original",
    "per_group": "metaworld_demo_per_group",
    "masked": "metaworld_demo_masked",  # uniform with exclude_padding
    "adaptive": "metaworld_demo_adaptive",
    "per_timestep": "metaworld_demo_per_timestep",  # uniform with action stats per chunk index
}
GROUPS = ("arm", "gripper")


@dataclasses.dataclass(frozen=True)
class SimArgs:
    enabled: bool = True
    """Run the closed-loop part."""
    strategies: tuple[str, ...] = ("uniform", "per_group")
    """Strategies to compare: uniform, original, per_group, masked (uniform with exclude_padding), adaptive,
    per_timestep (uniform with per-timestep action normalization)."""
    tasks: tuple[str, ...] = ("reach-v3", "push-v3", "pick-place-v3")
    episodes_per_task: int = 20
    """Expert demonstrations per task."""
    steps: int = 1500
    """Training steps per run (the recipe's; at 400 the tiny model barely acts, see SOLUTIONS.md 8a)."""
    batch_size: int = 32
    eval_episodes: int = 5
    """Held-out layouts per task and run."""
    max_steps: int = 150
    execute_steps: int = 5
    """Actions executed per predicted chunk before replanning."""
    denoising_steps: int = 10
    dataset_root: str = _config.SIM_DATASET_ROOT
    """Expert dataset; written here when absent."""

    def __post_init__(self):
        unknown = [s for s in self.strategies if s not in STRATEGY_CONFIGS]
        if unknown:
            raise ValueError(f"Unknown --sim.strategies {unknown}; available: {', '.join(STRATEGY_CONFIGS)}.")


def ensure_dataset(args: SimArgs) -> pathlib.Path:
    root = pathlib.Path(args.dataset_root).expanduser()
    wanted = _dataset.SimDatasetConfig(root=root, tasks=args.tasks, episodes_per_task=args.episodes_per_task)
    if (root / "meta" / "info.json").exists():
        found = _dataset.read_config(root)
        if (found.tasks, found.episodes_per_task) != (wanted.tasks, wanted.episodes_per_task):
            raise ValueError(
                f"{root} holds {found.episodes_per_task} demos of {found.tasks}, not {args.episodes_per_task} of "
                f"{args.tasks}: pass another --sim.dataset-root or delete it."
            )
        logger.info("Using the simulator dataset at %s.", root)
        return root
    logger.info("Writing %d expert demos per task to %s.", args.episodes_per_task, root)
    return _dataset.write_dataset(wanted)


def run_config(args: SimArgs, strategy: str, seed: int, root: pathlib.Path, out: pathlib.Path) -> _config.TrainConfig:
    return _config.cli([
        STRATEGY_CONFIGS[strategy],
        f"--exp-name=demo_seed{seed}",
        f"--seed={seed}",
        f"--data.root={root}",
        f"--assets-base-dir={out / 'assets'}",
        f"--checkpoint-base-dir={out / 'checkpoints'}",
        f"--num-train-steps={args.steps}",
        f"--save-interval={args.steps}",
        f"--log-interval={max(1, min(50, args.steps // 10))}",
        f"--lr-schedule.decay-steps={args.steps}",
        f"--lr-schedule.warmup-steps={max(1, min(50, args.steps // 10))}",
        f"--batch-size={args.batch_size}",
        "--project-name=openpi-demo",
        "--overwrite",
    ])


def save_norm_stats(config: _config.TrainConfig, root: pathlib.Path) -> None:
    """Per-frame stats, or per chunk index ([H, D]) when the config normalizes per timestep, where it reads them."""
    decisions = data_resolver.resolve_train_config(config)
    if (decisions.stats_dir / "norm_stats.json").exists():
        return
    per_timestep = decisions.per_timestep_norm
    stats = _stats.compute_norm_stats(
        root, per_timestep=per_timestep, action_horizon=config.model.action_horizon if per_timestep else 1
    )
    _normalize.save(decisions.stats_dir, stats)


def run(args: SimArgs, seeds: tuple[int, ...], out: pathlib.Path) -> dict[str, Any]:
    """Trains and evaluates every (strategy, seed); returns ``{"runs": {strategy: [run]}, "summary": ...}``.

    A run whose evaluation is already in ``out`` (same steps) is read back instead of repeated, so an
    interrupted comparison continues where it stopped."""
    root = ensure_dataset(args)
    chunking_config = chunking.ChunkingConfig(mode="receding", replan_every=args.execute_steps)
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in args.strategies}
    for seed in seeds:
        for strategy in args.strategies:
            config = run_config(args, strategy, seed, root, out)
            checkpoint = config.checkpoint_dir / str(args.steps)
            eval_dir = out / "sim_eval" / strategy / f"seed{seed}"
            if (eval_dir / "eval.json").exists() and checkpoint.exists():
                logger.info("Reusing %s (seed %d): %s.", strategy, seed, eval_dir / "eval.json")
            else:
                save_norm_stats(config, root)
                logger.info("Training %s on the simulator data (seed %d).", strategy, seed)
                jax_trainer.train(config)
                trained = policy_config.create_trained_policy(config, checkpoint, num_steps=args.denoising_steps)
                closed_loop.evaluate(
                    lambda _task, p=trained: rollout.model_policy(p, chunking_config),
                    args.tasks,
                    args.eval_episodes,
                    max_steps=args.max_steps,
                    output_dir=eval_dir,
                )
            metrics = [json.loads(line) for line in (config.checkpoint_dir / "metrics.jsonl").read_text().splitlines()]
            runs[strategy].append(
                {"seed": seed, "config": config.name, "checkpoint": str(checkpoint), "metrics": metrics,
                 "eval_json": str(eval_dir / "eval.json")}
            )
    return {"runs": runs, "summary": summarize(runs, args.tasks)}


def summarize(runs: dict[str, list[dict[str, Any]]], tasks: tuple[str, ...]) -> dict[str, Any]:
    """Per strategy and task: success rate per seed, mean ± std over seeds, and the pooled Wilson interval,
    all read back from the runs' eval.json files; per group, the last logged training loss over seeds."""
    summary = {}
    for strategy, strategy_runs in runs.items():
        evals = [json.loads(pathlib.Path(r["eval_json"]).read_text())["tasks"] for r in strategy_runs]
        row: dict[str, Any] = {"seeds": [r["seed"] for r in strategy_runs], "tasks": {}}
        for task in tasks:
            rates = [e[task]["success_rate"] for e in evals]
            successes = sum(e[task]["successes"] for e in evals)
            trials = sum(len(e[task]["episodes"]) for e in evals)
            row["tasks"][task] = {
                "per_seed": rates,
                "mean": float(np.mean(rates)),
                "std": float(np.std(rates)),
                "pooled": [successes, trials],
                "wilson95": list(closed_loop.wilson_interval(successes, trials)),
            }
        row["mean_over_tasks"] = float(np.mean([row["tasks"][t]["mean"] for t in tasks]))
        row["train_loss"] = {
            g: [float(np.mean([r["metrics"][-1][f"loss/{g}"] for r in strategy_runs])),
                float(np.std([r["metrics"][-1][f"loss/{g}"] for r in strategy_runs]))]
            for g in GROUPS
        }
        summary[strategy] = row
    return summary


def verdict(summary: dict[str, Any], task: str) -> str:
    """'not resolved' unless the best strategy's mean beats every other by more than both seed spreads."""
    ranked = sorted(summary, key=lambda s: summary[s]["tasks"][task]["mean"], reverse=True)
    if len(ranked) < 2:
        return "one strategy"
    best = summary[ranked[0]]["tasks"][task]
    for other in ranked[1:]:
        cell = summary[other]["tasks"][task]
        if best["mean"] - cell["mean"] <= best["std"] + cell["std"]:
            return "not resolved"
    return f"{ranked[0]} best"


def markdown(args: SimArgs, seeds: tuple[int, ...], result: dict[str, Any], plots: list[str]) -> list[str]:
    summary, tasks = result["summary"], args.tasks
    lines = [
        "## Closed loop in the simulator (Meta-World)",
        "",
        f"Tiny pi0 per strategy and seed (seeds {', '.join(map(str, seeds))}), {args.steps} steps × batch "
        f"{args.batch_size} on {args.episodes_per_task} scripted-expert demos per task; each run is evaluated "
        f"on the same {args.eval_episodes} held-out layouts per task (at most {args.max_steps} steps, "
        f"{args.execute_steps} actions per chunk before replanning). Cells: success mean ± std over seeds "
        "[95% Wilson interval of the pooled episodes].",
        "",
        "| strategy | " + " | ".join(tasks) + " | mean over tasks |",
        "|---|" + "---|" * (len(tasks) + 1),
    ]
    for strategy, row in summary.items():
        cells = []
        for task in tasks:
            cell = row["tasks"][task]
            low, high = cell["wilson95"]
            cells.append(f"{cell['mean']:.2f} ± {cell['std']:.2f} [{low:.2f}, {high:.2f}]")
        lines.append(f"| {strategy} | " + " | ".join(cells) + f" | {row['mean_over_tasks']:.2f} |")
    lines += ["", "Between strategies, per task (a gap inside the seed spread is not a result): "
              + "; ".join(f"{t}: {verdict(summary, t)}" for t in tasks) + ".", "",
              "Training loss per group at the end (unweighted flow-matching loss, mean ± std over seeds):", "",
              "| strategy | " + " | ".join(GROUPS) + " |", "|---|" + "---|" * len(GROUPS)]
    for strategy, row in summary.items():
        lines.append(f"| {strategy} | " + " | ".join(f"{m:.3f} ± {s:.3f}" for m, s in row["train_loss"].values()) + " |")
    lines += ["", "| strategy | seed | " + " | ".join(tasks) + " | eval JSON |", "|---|---|" + "---|" * (len(tasks) + 1)]
    for strategy, runs in result["runs"].items():
        for k, r in enumerate(runs):
            rates = [summary[strategy]["tasks"][t]["per_seed"][k] for t in tasks]
            lines.append(f"| {strategy} | {r['seed']} | " + " | ".join(f"{x:.2f}" for x in rates) + f" | {r['eval_json']} |")
    lines += [
        "",
        "What this shows and what it does not: closed-loop task success of tiny models trained for minutes on a "
        "CPU, on layouts none of them saw, measured by the simulator's own success flag; differences between "
        "strategies count only where they exceed the seed spread. It does not show what happens at openpi's "
        "scale (pretrained 3B models, real robots), and the expert's demonstrations are cleaner than human ones.",
        f"Plots: {', '.join(plots)}.",
        "",
    ]
    return lines


def plot_losses(result: dict[str, Any], path: pathlib.Path) -> pathlib.Path:
    return plots.group_loss_curves(result["runs"], GROUPS, path, title="sim loss")


def plot_success(result: dict[str, Any], tasks: tuple[str, ...], path: pathlib.Path) -> pathlib.Path:
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


@dataclasses.dataclass(frozen=True)
class Args:
    """The closed-loop comparison alone (``scripts/demo.py`` runs it before the B1K part)."""

    seeds: tuple[int, ...] = (0,)
    """One training run per strategy and seed."""
    output_dir: str = "demo_sim_output"
    """Checkpoints, evaluations, sim_report.md / .json and plots; runs already evaluated here are reused."""
    sim: SimArgs = dataclasses.field(default_factory=SimArgs)


def main(args: Args) -> dict[str, Any]:
    out = pathlib.Path(args.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ["WANDB_DIR"] = str(out)
    result = run(args.sim, args.seeds, out)
    plot_paths = [str(plot_success(result, args.sim.tasks, out / "sim_success.png")),
                  str(plot_losses(result, out / "sim_loss_curves.png"))]
    report = "\n".join(markdown(args.sim, args.seeds, result, plot_paths))
    (out / "sim_report.md").write_text(report)
    (out / "sim_report.json").write_text(json.dumps({"args": dataclasses.asdict(args), **result}, indent=1))
    print(report)
    print(f"Report: {out / 'sim_report.md'}.")
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", force=True)
    cli.run_main(lambda: main(tyro.cli(Args, description=__doc__)), user_errors=run_utils.RUN_ERRORS)
