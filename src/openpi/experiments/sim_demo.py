"""The closed-loop comparison: tiny pi0 policies trained per loss strategy on scripted-expert Meta-World
demonstrations, then run in the simulator on held-out layouts.

1. Writes the expert dataset (``openpi.sim.dataset``) to ``dataset_root`` when absent.
2. Computes norm stats over it; trains one model per strategy and seed (configs in ``strategies.SIM``,
   identical except for the loss weighting).
3. Runs every checkpoint closed loop on the same held-out layouts of every task (``evaluation.closed_loop``).
4. Returns per run the eval JSON and the training metrics, and per strategy and task the success over seeds
   (``report.summarize_sim``); ``write_report`` renders them.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
from typing import Any

from openpi.experiments import evaluation
from openpi.experiments import norm_stats
from openpi.experiments import report
from openpi.experiments import runs
from openpi.experiments import strategies as _strategies
from openpi.sim import dataset as _dataset
from openpi.training import config as _config

logger = logging.getLogger("openpi.demo")


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
        _strategies.check(self.strategies, _strategies.SIM, "--sim.strategies")

    @property
    def schedule(self) -> runs.Schedule:
        interval = max(1, min(50, self.steps // 10))
        return runs.Schedule(self.steps, self.batch_size, log_interval=interval, warmup_steps=interval)


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


def plan(args: SimArgs, seeds: tuple[int, ...], root: pathlib.Path, out: pathlib.Path) -> list[runs.Run]:
    """Every (seed, strategy) run, seed by seed."""
    return [
        runs.Run(
            strategy=strategy,
            seed=seed,
            config=runs.configure(
                _strategies.config(_strategies.SIM, strategy),
                exp_name=f"demo_seed{seed}",
                seed=seed,
                schedule=args.schedule,
                data_root=root,
                output_dir=out,
                project_name="openpi-demo",
            ),
            eval_dir=out / "sim_eval" / strategy / f"seed{seed}",
        )
        for seed in seeds
        for strategy in args.strategies
    ]


def run(args: SimArgs, seeds: tuple[int, ...], out: pathlib.Path) -> dict[str, Any]:
    """Trains and evaluates every (strategy, seed); returns ``{"runs": {strategy: [run]}, "summary": ...}``.

    A run whose evaluation is already in ``out`` (same steps) is read back instead of repeated, so an
    interrupted comparison continues where it stopped."""
    root = ensure_dataset(args)
    planned = plan(args, seeds, root, out)
    # Per-frame stats, or per chunk index ([H, D]) when the config normalizes per timestep.
    norm_stats.write_all([r.config for r in planned if not r.finished], chunked=False, skip_existing=True)

    def evaluate(r: runs.Run) -> None:
        evaluation.closed_loop(
            r.config,
            r.checkpoint,
            args.tasks,
            args.eval_episodes,
            max_steps=args.max_steps,
            execute_steps=args.execute_steps,
            denoising_steps=args.denoising_steps,
            output_dir=r.eval_dir,
        )

    records: dict[str, list[dict[str, Any]]] = {s: [] for s in args.strategies}
    for r in planned:
        records[r.strategy].append(runs.execute(r, evaluate))
    return {"runs": records, "summary": report.summarize_sim(records, args.tasks)}


def write_report(args: SimArgs, seeds: tuple[int, ...], result: dict[str, Any], out: pathlib.Path) -> list[str]:
    """Writes the plots (sim_success.png, sim_loss_curves.png) and returns the report's markdown lines."""
    plot_paths = [
        str(report.plot_sim_success(result, args.tasks, out / "sim_success.png")),
        str(report.plot_sim_losses(result, out / "sim_loss_curves.png")),
    ]
    return report.sim_markdown(args, seeds, result, plot_paths)
