"""Loss strategies offline on the miniature B1K dataset (``benchmarks/mini_b1k_strategies.py``; it left the demo
because its tiny models predict jitter at any affordable length, arm activity ratio ~300, so it shows no learning).

It writes the dataset when absent, holds out the last episodes of every task, computes norm stats on
the rest, trains one tiny model per strategy (``strategies.B1K``) and seed, evaluates every checkpoint on the
held-out episodes and writes report.md, report.json and plots.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
import shutil
import time
from typing import Any
from typing import Literal

from openpi.analysis import arm_heavy
from openpi.analysis import sources
from openpi.datasets import episode_files
from openpi.datasets import lerobot_meta as _lerobot_meta
from openpi.datasets import mini_b1k
from openpi.experiments import evaluation
from openpi.experiments import norm_stats
from openpi.experiments import report
from openpi.experiments import runs
from openpi.experiments import strategies as _strategies
from openpi.training import config as _config
from openpi.training import data_resolver

logger = logging.getLogger("openpi.demo")


@dataclasses.dataclass(frozen=True)
class Args:
    framework: runs.Framework = "jax"
    """Which trainer and model to use."""
    steps: int = 200
    """Training steps per run."""
    seeds: tuple[int, ...] = (0,)
    """One run per strategy and seed; the report gives mean ± std over seeds (one seed keeps the default run
    short; ``--seeds 0 1 2`` for a comparison)."""
    strategies: tuple[Literal["original", "per_group", "uniform"], ...] = ("original", "per_group", "uniform")
    batch_size: int = 8
    output_dir: str = "mini_b1k_output"
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
    """Replace earlier demo runs in --output-dir (without it, runs already evaluated there are reused)."""

    @property
    def schedule(self) -> runs.Schedule:
        return runs.Schedule(self.steps, self.batch_size, log_interval=max(1, min(10, self.steps // 10)))


def ensure_dataset(args: Args) -> pathlib.Path:
    """The miniature B1K dataset at ``args.dataset_root``, written there (seed 0) when absent."""
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


def split_episodes(root: pathlib.Path, heldout_per_task: int, episodes_path: pathlib.Path) -> tuple[list[int], list[int]]:
    """(training, held-out): the last ``heldout_per_task`` episodes of every task are held out; the training
    episodes are written to ``episodes_path`` (the runs' ``data.episodes_path``)."""
    meta = _lerobot_meta.LeRobotMetadata.load(root)
    tasks = sources.episode_tasks(meta)
    per_task = {t: sum(1 for e in meta.episode_indices if tasks[e] == t) for t in set(tasks.values())}
    if any(n <= heldout_per_task for n in per_task.values()):
        raise ValueError(f"Every task needs more than --heldout-per-task={heldout_per_task} episodes.")
    heldout, _ = data_resolver.heldout_episodes(None, meta.episode_indices, tasks, heldout_per_task)
    training = sorted(set(meta.episode_indices) - set(heldout))
    episode_files.save_episode_list(
        episodes_path, arm_heavy.EpisodeSelection(episodes=training, details={}), criterion=arm_heavy.Criterion()
    )
    return training, heldout


def plan(args: Args, root: pathlib.Path, out: pathlib.Path) -> list[runs.Run]:
    """Every (seed, strategy) run, seed by seed, training on the episodes in ``out/train_episodes.json``."""
    planned = []
    for seed in args.seeds:
        for strategy in args.strategies:
            config = runs.configure(
                _strategies.config(_strategies.B1K, strategy),
                exp_name=f"demo_{args.framework}_seed{seed}",
                seed=seed,
                schedule=args.schedule,
                data_root=root,
                output_dir=out,
                episodes_path=out / "train_episodes.json",
                project_name="openpi-demo",
            )
            eval_dir = out / "eval" / config.name / config.exp_name
            planned.append(runs.Run(strategy, seed, config, eval_dir, args.framework))
    return planned


def offline_comparison(args: Args, out: pathlib.Path) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """Trains and evaluates every B1K run; returns the runs' records per strategy and the split's facts."""
    root = ensure_dataset(args)
    train_episodes, heldout = split_episodes(root, args.heldout_per_task, out / "train_episodes.json")
    planned = plan(args, root, out)
    # Per-frame statistics (no action horizon), as the demo's reported runs used.
    norm_stats.write_all([r.config for r in planned if r.seed == args.seeds[0]], chunked=False, episodes=train_episodes)

    def evaluate(r: runs.Run) -> None:
        evaluation.offline_run(
            r.config,
            r.checkpoint,
            root=root,
            norm_stats_dir=norm_stats.stats_dir(r.config),
            heldout_per_task=args.heldout_per_task,
            stride=args.eval_stride,
            output_dir=r.eval_dir,
        )

    results: dict[str, list[dict[str, Any]]] = {s: [] for s in args.strategies}
    first_seed = {}
    for r in planned:
        record = runs.execute(r, evaluate)
        evaluated = json.loads(r.eval_json.read_text())
        results[r.strategy].append({
            "seed": r.seed,
            "config": record["config"],
            "checkpoint": record["checkpoint"],
            "norm_stats_dir": str(norm_stats.stats_dir(r.config)),
            "metrics": record["metrics"],
            "final_train_loss": record["metrics"][-1]["loss"],
            "eval": {k: evaluated[k] for k in ("overall", "per_task", "episodes")},
            "eval_json": record["eval_json"],
        })
        if r.seed == args.seeds[0]:
            first_seed[r.strategy] = r
    predictors = {
        strategy: evaluation.chunk_predictor(
            r.config, r.checkpoint, root=root, norm_stats_dir=norm_stats.stats_dir(r.config)
        )
        for strategy, r in first_seed.items()
    }
    plot_paths = [
        report.plot_b1k_losses(results, out / "loss_curves.png"),
        report.plot_arm_trajectories(predictors, root, heldout[0], args.seeds[0], out / "arm_trajectories.png"),
    ]
    meta = {
        "train_episodes": train_episodes,
        "heldout_episodes": heldout,
        "train_frames": int(sum(_lerobot_meta.LeRobotMetadata.load(root).episode(e).length for e in train_episodes)),
        "plots": [str(p) for p in plot_paths],
    }
    return results, meta


def main(args: Args) -> dict[str, Any]:
    """The whole comparison; writes report.md and report.json under ``args.output_dir`` and returns what they hold."""
    start = time.perf_counter()
    out = pathlib.Path(args.output_dir).resolve()
    if args.overwrite and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_MODE", "offline")  # the demo's runs are local unless the user asks otherwise
    os.environ["WANDB_DIR"] = str(out)
    results, meta = offline_comparison(args, out)
    summary = report.summarize_b1k(results)
    meta["seconds"] = time.perf_counter() - start
    (out / "report.json").write_text(
        json.dumps({"args": dataclasses.asdict(args), "summary": summary, "runs": results, "meta": meta}, indent=1)
    )
    markdown = report.b1k_markdown(args, summary, results, meta)
    (out / "report.md").write_text(markdown)
    print(markdown)
    print(f"Report: {out / 'report.md'}; wandb runs (offline) under {out}.")
    return {"summary": summary, "runs": results, "meta": meta}
