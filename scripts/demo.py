"""The whole fix on a CPU in minutes: tiny policies trained with each loss strategy, measured closed loop in a
real simulator and offline on the miniature B1K dataset, in one report.

    python scripts/demo.py                       # JAX, defaults below
    python scripts/demo.py --framework pytorch   # the PyTorch twin (B1K part; the simulator part is JAX)
    python scripts/demo.py --seeds 0 1 2         # the full comparison
    python scripts/demo.py --sim.no-enabled      # the B1K part only

Closed loop first (``demo_sim.py``): scripted-expert Meta-World demonstrations, one tiny pi0 per strategy and
seed, success on held-out layouts per task with Wilson intervals (``--sim.*`` options). Then the B1K part:
1. Writes the miniature B1K dataset (``openpi.datasets.mini_b1k``) to ``--dataset-root`` if it is absent.
   Its episodes mix navigation segments (base commands of 0.35–0.75, arms still) and manipulation segments
   (base still, arm joints moving 0.01–0.3 rad per chunk, grippers switching between ±1), with the scales of
   the real data, so the mechanism behind arm stagnation is present: in normalized units the base moves in
   large steps and the arms in small ones, and the ``original`` time weights follow the large steps.
2. Holds out the last ``--heldout-per-task`` episodes of every task; computes norm stats on the rest.
3. Trains one tiny model per strategy and seed: ``original`` (the B1K baseline, config ``pi05_b1k_demo``),
   ``per_group`` (``pi0_b1k_arm_focused_demo``) and ``uniform`` (``pi0_b1k_uniform_demo``). Everything but
   the loss weighting is identical. Runs go to offline wandb, grouped by seed and tagged by strategy.
4. Evaluates every checkpoint with ``scripts/eval_policy.py`` on the held-out episodes.
5. Writes ``report.md`` (per strategy: mean ± std over seeds of the per-group errors, arm activity ratio,
   gripper agreement, base error), ``report.json`` and PNG plots (per-group training loss; predicted vs
   ground-truth arm trajectories) under ``--output-dir``.

Nothing is tuned for a strategy to win: the data and seeds are fixed in advance, every seed is reported, and
the report states what was measured, whichever way it comes out.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import os
import pathlib
import shutil
import sys
import time
from typing import Any
from typing import Literal

import matplotlib
import numpy as np
import tyro

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from openpi.analysis import arm_heavy
from openpi.analysis import plots
from openpi.analysis import sources
from openpi.datasets import episode_files
from openpi.datasets import lerobot as _lerobot
from openpi.datasets import lerobot_meta as _lerobot_meta
from openpi.datasets import mini_b1k
from openpi.datasets import stats as _stats
from openpi.shared import cli
from openpi.shared import normalize as _normalize
from openpi.training import config as _config
from openpi.training import data_resolver
from openpi.training import jax_trainer
from openpi.training import pytorch_trainer
from openpi.training import run_utils

logger = logging.getLogger("openpi.demo")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # the sibling script eval_policy.py
eval_policy = importlib.import_module("eval_policy")
demo_sim = importlib.import_module("demo_sim")

# Strategy → the registered demo config that trains it (identical except for the loss weighting).
STRATEGY_CONFIGS = {
    "original": "pi05_b1k_demo",
    "per_group": "pi0_b1k_arm_focused_demo",
    "uniform": "pi0_b1k_uniform_demo",
}
REPORT_GROUPS = ("base", "trunk", "left_arm", "right_arm", "grippers")


@dataclasses.dataclass(frozen=True)
class Args:
    framework: Literal["jax", "pytorch"] = "jax"
    """Which trainer and model to use."""
    steps: int = 200
    """Training steps per run."""
    seeds: tuple[int, ...] = (0,)
    """One run per strategy and seed; the report gives mean ± std over seeds (one seed keeps the default run
    short; ``--seeds 0 1 2`` for a comparison)."""
    strategies: tuple[Literal["original", "per_group", "uniform"], ...] = ("original", "per_group", "uniform")
    batch_size: int = 8
    output_dir: str = "demo_output"
    """Report, plots, checkpoints, assets and wandb runs go here."""
    dataset_root: str = _config.DEMO_DATASET_ROOT
    """Miniature B1K dataset; written here when absent."""
    num_tasks: int = 2
    episodes_per_task: int = 6
    frames_per_episode: int = 300
    heldout_per_task: int = 1
    """Last episodes of each task kept out of training and used for evaluation."""
    eval_stride: int = 25
    """Frames between evaluated chunk starts on the held-out episodes."""
    overwrite: bool = True
    """Replace earlier demo runs in --output-dir."""
    sim: demo_sim.SimArgs = dataclasses.field(default_factory=demo_sim.SimArgs)
    """The closed-loop part in the simulator (seeds from --seeds)."""


def ensure_dataset(args: Args) -> pathlib.Path:
    root = pathlib.Path(args.dataset_root).expanduser()
    if (root / "meta" / "info.json").exists():
        logger.info("Using the miniature B1K dataset at %s.", root)
        return root
    logger.info("Writing the miniature B1K dataset to %s.", root)
    config = mini_b1k.MiniB1KConfig(
        root=root,
        num_tasks=args.num_tasks,
        episodes_per_task=args.episodes_per_task,
        frames_per_episode=args.frames_per_episode,
        seed=0,
    )
    mini_b1k.write_mini_b1k(config)
    return root


def split_episodes(root: pathlib.Path, heldout_per_task: int) -> tuple[list[int], list[int]]:
    """(training, held-out): the last ``heldout_per_task`` episodes of every task are held out."""
    meta = _lerobot_meta.LeRobotMetadata.load(root)
    tasks = sources.episode_tasks(meta)
    by_task: dict[str, list[int]] = {}
    for episode in sorted(meta.episode_indices):
        by_task.setdefault(tasks[episode], []).append(episode)
    heldout = sorted(e for eps in by_task.values() for e in eps[-heldout_per_task:])
    if any(len(eps) <= heldout_per_task for eps in by_task.values()):
        raise ValueError(f"Every task needs more than --heldout-per-task={heldout_per_task} episodes.")
    return sorted(set(meta.episode_indices) - set(heldout)), heldout


def _train(config: _config.TrainConfig, framework: str) -> None:
    if framework == "jax":
        jax_trainer.train(config)
    else:
        pytorch_trainer.train(config)


def run_config(args: Args, strategy: str, seed: int, root: pathlib.Path, out: pathlib.Path) -> _config.TrainConfig:
    name = STRATEGY_CONFIGS[strategy]
    return _config.cli(
        [
            name,
            f"--exp-name=demo_{args.framework}_seed{seed}",
            f"--seed={seed}",
            f"--data.root={root}",
            f"--data.episodes-path={out / 'train_episodes.json'}",
            f"--assets-base-dir={out / 'assets'}",
            f"--checkpoint-base-dir={out / 'checkpoints'}",
            f"--num-train-steps={args.steps}",
            f"--save-interval={args.steps}",
            f"--log-interval={max(1, min(10, args.steps // 10))}",
            f"--lr-schedule.decay-steps={args.steps}",
            f"--batch-size={args.batch_size}",
            "--project-name=openpi-demo",
            "--overwrite",
        ]
    )


def evaluate_run(config: _config.TrainConfig, args: Args, root: pathlib.Path, out: pathlib.Path) -> dict[str, Any]:
    eval_dir = out / "eval" / config.name / config.exp_name
    eval_args = eval_policy.Args(
        config_name=config.name,
        root=str(root),
        norm_stats_dir=str(data_resolver.resolve_train_config(config).stats_dir),
        checkpoint=str(config.checkpoint_dir / str(args.steps)),
        num_episodes=args.heldout_per_task,
        stride=args.eval_stride,
        output_dir=str(eval_dir),
    )
    report = eval_policy.run(eval_args)
    report["eval_json"] = str(eval_dir / "eval.json")
    return report


def _mean_std(values: list[float | None]) -> tuple[float, float] | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return float(np.mean(values)), float(np.std(values))


def summarize(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per strategy, mean and std over seeds of the headline metrics (from the evaluation JSON)."""
    summary = {}
    for strategy, runs in results.items():
        overall = [r["eval"]["overall"] for r in runs]
        row = {
            "seeds": [r["seed"] for r in runs],
            "arm_activity_ratio": _mean_std([o["arm_activity_ratio"] for o in overall]),
            "gripper_agreement": _mean_std([o["gripper_agreement"] for o in overall]),
            "base_velocity_rmse": _mean_std([o["base_velocity_rmse"] for o in overall]),
            "final_train_loss": _mean_std([r["final_train_loss"] for r in runs]),
        }
        for group in REPORT_GROUPS:
            row[f"mse_normalized/{group}"] = _mean_std([o["groups"][group]["mse_normalized"] for o in overall])
            row[f"train_loss/{group}"] = _mean_std([r["metrics"][-1][f"loss/{group}"] for r in runs])
        summary[strategy] = row
    return summary


def _cell(value: tuple[float, float] | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else f"{value[0]:{spec}} ± {value[1]:{spec}}"


def markdown_report(
    args: Args, summary: dict[str, Any], results: dict[str, list[dict]], meta: dict, sim_lines: list[str] = ()
) -> str:
    seeds = ", ".join(str(s) for s in args.seeds)
    lines = [
        "# Demo: loss strategies, closed loop in a simulator and offline on miniature B1K",
        "",
        *sim_lines,
        "## Offline on the miniature B1K dataset",
        "",
        f"Framework {args.framework}; {args.steps} steps × batch {args.batch_size} per run; seeds {seeds}; "
        f"{meta['train_frames']} training frames in {len(meta['train_episodes'])} episodes; evaluation on "
        f"held-out episodes {meta['heldout_episodes']} (a chunk every {args.eval_stride} frames). Cells are "
        "mean ± std over seeds. Errors are normalized MSE per group (lower is better); arm activity ratio is "
        "predicted / true arm motion within chunks (1 is ideal, near 0 means the arms stagnate).",
        "",
        "| strategy | " + " | ".join(f"{g} MSE" for g in REPORT_GROUPS)
        + " | arm activity ratio | gripper agreement | base vel. RMSE | final train loss |",
        "|---|" + "---|" * (len(REPORT_GROUPS) + 4),
    ]
    for strategy, row in summary.items():
        cells = [_cell(row[f"mse_normalized/{g}"]) for g in REPORT_GROUPS]
        cells += [_cell(row["arm_activity_ratio"]), _cell(row["gripper_agreement"]),
                  _cell(row["base_velocity_rmse"], ".4f"), _cell(row["final_train_loss"])]
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Training loss per group at the end of training",
        "",
        "Unweighted flow-matching loss of each group (``loss/<group>``, mean of the last log interval): what each "
        "strategy made the model fit, on the training data.",
        "",
        "| strategy | " + " | ".join(REPORT_GROUPS) + " |",
        "|---|" + "---|" * len(REPORT_GROUPS),
    ]
    for strategy, row in summary.items():
        lines.append(f"| {strategy} | " + " | ".join(_cell(row[f"train_loss/{g}"]) for g in REPORT_GROUPS) + " |")
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


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def plot_loss_curves(results: dict[str, list[dict]], path: pathlib.Path) -> pathlib.Path:
    """Per-group training loss (unweighted, mean over seeds) for every strategy."""
    return plots.group_loss_curves(results, REPORT_GROUPS, path)


def plot_arm_trajectories(
    runs: dict[str, dict[str, Any]], root: pathlib.Path, episode: int, args: Args, path: pathlib.Path
) -> pathlib.Path:
    """Predicted vs ground-truth chunks of two arm joints and the grippers for one held-out frame."""
    dataset = _lerobot.LeRobotDataset(root=root, episodes=[episode], action_horizon=50, camera_keys=())
    table_frame = len(dataset) // 2
    truth = dataset[table_frame]["action"]
    dims = {"left_arm j0": 7, "right_arm j0": 15, "left gripper": 14, "right gripper": 22}
    fig, axes = plt.subplots(1, len(dims), figsize=(4 * len(dims), 3.2))
    for ax, (label, d) in zip(axes, dims.items(), strict=True):
        ax.plot(truth[:, d], "k-", linewidth=2, label="ground truth")
        ax.set_title(label)
        ax.set_xlabel("chunk step")
    for strategy, run in runs.items():
        source = sources.resolve(
            eval_policy.Args(config_name=run["config"], root=str(root), norm_stats_dir=run["norm_stats_dir"])
        )
        predict, observation_fn = sources.load_policy(source, run["checkpoint"])
        task = sources.episode_tasks(source.meta)[episode]
        pred = np.asarray(predict(observation_fn(np.array([episode]), np.array([table_frame]), [task])))[0]
        for ax, d in zip(axes, dims.values(), strict=True):
            ax.plot(pred[:, d], label=strategy)
    axes[0].legend()
    fig.suptitle(f"episode {episode}, frame {table_frame} (seed {args.seeds[0]})")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(args: Args) -> dict[str, Any]:
    start = time.perf_counter()
    out = pathlib.Path(args.output_dir).resolve()
    if args.overwrite and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_MODE", "offline")  # the demo's runs are local unless the user asks otherwise
    os.environ["WANDB_DIR"] = str(out)
    sim_result, sim_lines = None, []
    if args.sim.enabled:
        sim_result = demo_sim.run(args.sim, args.seeds, out)
        sim_plots = [
            str(demo_sim.plot_success(sim_result, args.sim.tasks, out / "sim_success.png")),
            str(demo_sim.plot_losses(sim_result, out / "sim_loss_curves.png")),
        ]
        sim_lines = demo_sim.markdown(args.sim, args.seeds, sim_result, sim_plots)
    root = ensure_dataset(args)
    train_episodes, heldout = split_episodes(root, args.heldout_per_task)
    episode_files.save_episode_list(
        out / "train_episodes.json",
        arm_heavy.EpisodeSelection(episodes=train_episodes, details={}),
        criterion=arm_heavy.Criterion(),
    )
    configs = {s: run_config(args, s, args.seeds[0], root, out) for s in args.strategies}
    decisions = {s: data_resolver.resolve_train_config(c) for s, c in configs.items()}
    # Per-frame statistics (no action horizon), as the demo's reported runs used.
    first = decisions[args.strategies[0]]
    stats = _stats.compute_norm_stats(root, state_transform=first.state_transform, episodes=train_episodes)
    for strategy in args.strategies:
        _normalize.save(decisions[strategy].stats_dir, stats)

    results: dict[str, list[dict[str, Any]]] = {s: [] for s in args.strategies}
    first_seed_runs = {}
    for seed in args.seeds:
        for strategy in args.strategies:
            config = run_config(args, strategy, seed, root, out)
            logger.info("Training %s (seed %d, %s).", strategy, seed, args.framework)
            _train(config, args.framework)
            metrics = [json.loads(line) for line in (config.checkpoint_dir / "metrics.jsonl").read_text().splitlines()]
            report = evaluate_run(config, args, root, out)
            results[strategy].append(
                {
                    "seed": seed,
                    "config": config.name,
                    "checkpoint": str(config.checkpoint_dir / str(args.steps)),
                    "norm_stats_dir": str(data_resolver.resolve_train_config(config).stats_dir),
                    "metrics": metrics,
                    "final_train_loss": metrics[-1]["loss"],
                    "eval": {k: report[k] for k in ("overall", "per_task", "episodes")},
                    "eval_json": report["eval_json"],
                }
            )
            if seed == args.seeds[0]:
                first_seed_runs[strategy] = results[strategy][-1]

    plots = [
        plot_loss_curves(results, out / "loss_curves.png"),
        plot_arm_trajectories(first_seed_runs, root, heldout[0], args, out / "arm_trajectories.png"),
    ]
    summary = summarize(results)
    meta = {
        "train_episodes": train_episodes,
        "heldout_episodes": heldout,
        "train_frames": int(sum(_lerobot_meta.LeRobotMetadata.load(root).episode(e).length for e in train_episodes)),
        "plots": [str(p) for p in plots],
        "seconds": time.perf_counter() - start,
    }
    (out / "report.json").write_text(
        json.dumps({"args": dataclasses.asdict(args), "summary": summary, "runs": results, "meta": meta,
                    "sim": sim_result}, indent=1)
    )
    markdown = markdown_report(args, summary, results, meta, sim_lines)
    (out / "report.md").write_text(markdown)
    print(markdown)
    print(f"Report: {out / 'report.md'}; wandb runs (offline) under {out}.")
    return {"summary": summary, "runs": results, "meta": meta, "sim": sim_result}


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", force=True)
    cli.run_main(lambda: main(tyro.cli(Args, description=__doc__)), user_errors=run_utils.RUN_ERRORS)
