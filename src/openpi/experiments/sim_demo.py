"""The closed-loop comparison: tiny pi0 policies trained per loss strategy on scripted-expert demonstrations,
then run in the simulator on held-out layouts. Two suites: the mobile manipulator (``--sim.suite mobile``, the
default: drive a base, then lift or touch, R1Pro's action semantics) and Meta-World's fixed-base arm (the control
without a base).

1. Writes the suite's expert dataset (``openpi.sim.mobile_dataset`` / ``openpi.sim.dataset``) when absent.
2. Computes norm stats over it; trains one model per strategy and seed (configs in ``strategies.MOBILE`` /
   ``strategies.METAWORLD``, identical except for the loss weighting).
3. Runs every checkpoint closed loop on the same held-out layouts of every task (``evaluation.closed_loop``).
4. Returns per run the eval JSON and the training metrics, and per strategy and task the success over seeds
   (``report.summarize_sim``); ``write_report`` renders them. ``main`` is ``scripts/demo.py``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
import time
from typing import Any
from typing import Literal

from openpi.experiments import evaluation
from openpi.experiments import norm_stats
from openpi.experiments import report
from openpi.experiments import runs
from openpi.experiments import strategies as _strategies
from openpi.sim import dataset as _metaworld_dataset
from openpi.sim import mobile_dataset
from openpi.training import config as _config
from openpi.training import mobile_configs

logger = logging.getLogger("openpi.demo")

Suite = Literal["mobile", "metaworld"]


@dataclasses.dataclass(frozen=True)
class SuiteDefaults:
    strategies: tuple[str, ...]
    tasks: tuple[str, ...]
    max_steps: int
    dataset_root: str
    configs: dict[str, str]  # strategy -> registered config


SUITES: dict[str, SuiteDefaults] = {
    # The question the project exists for: does the arm stagnate behind the base, and does per-group weighting help.
    "mobile": SuiteDefaults(("original", "per_group"), ("lift", "touch"), 200, mobile_configs.MOBILE_DATASET_ROOT,
                            _strategies.MOBILE),
    "metaworld": SuiteDefaults(("uniform", "per_group"), ("reach-v3", "push-v3", "pick-place-v3"), 150,
                               _config.SIM_DATASET_ROOT, _strategies.METAWORLD),
}


@dataclasses.dataclass(frozen=True)
class SimArgs:
    suite: Suite = "mobile"
    """The simulator: the mobile manipulator, or Meta-World's fixed-base arm."""
    strategies: tuple[str, ...] = ()
    """Strategies to compare (default: original and per_group on mobile, uniform and per_group on Meta-World):
    uniform, original, per_group, masked (uniform with exclude_padding), adaptive, per_timestep (uniform with
    per-timestep action normalization); delta_pertimestep on mobile."""
    tasks: tuple[str, ...] = ()
    """Tasks (default: the suite's: lift touch / reach-v3 push-v3 pick-place-v3)."""
    episodes_per_task: int = 20
    """Expert demonstrations per task."""
    navigation_episodes_per_task: int = 0
    """Mobile only: extra driving-only demonstrations per task (the navigation-mixture knob)."""
    steps: int = 1500
    """Training steps per run (the recipe's; at 400 the tiny model barely acts, see SOLUTIONS.md)."""
    batch_size: int = 32
    eval_episodes: int = 5
    """Held-out layouts per task and run."""
    max_steps: int | None = None
    """Step limit of an episode (default: the suite's, 200 mobile / 150 Meta-World)."""
    execute_steps: int = 5
    """Actions executed per predicted chunk before replanning."""
    denoising_steps: int = 10
    dataset_root: str | None = None
    """Expert dataset; written here when absent (default: the suite's cache directory)."""

    def __post_init__(self):
        defaults = SUITES[self.suite]
        for field in ("strategies", "tasks", "max_steps", "dataset_root"):
            if not getattr(self, field):
                object.__setattr__(self, field, getattr(defaults, field))
        _strategies.check(self.strategies, defaults.configs, "--sim.strategies")
        if self.navigation_episodes_per_task and self.suite != "mobile":
            raise ValueError("--sim.navigation-episodes-per-task applies to --sim.suite mobile only.")

    @property
    def configs(self) -> dict[str, str]:
        return SUITES[self.suite].configs

    @property
    def schedule(self) -> runs.Schedule:
        interval = max(1, min(50, self.steps // 10))
        return runs.Schedule(self.steps, self.batch_size, log_interval=interval, warmup_steps=interval)


def ensure_dataset(args: SimArgs) -> pathlib.Path:
    """The suite's expert dataset at ``args.dataset_root``: written when absent, checked when present."""
    root = pathlib.Path(args.dataset_root).expanduser()
    if args.suite == "mobile":
        module, wanted = mobile_dataset, mobile_dataset.MobileDatasetConfig(
            root=root, tasks=args.tasks, episodes_per_task=args.episodes_per_task,
            navigation_episodes_per_task=args.navigation_episodes_per_task)
        compared = ("tasks", "episodes_per_task", "navigation_episodes_per_task")
    else:
        module, wanted = _metaworld_dataset, _metaworld_dataset.SimDatasetConfig(
            root=root, tasks=args.tasks, episodes_per_task=args.episodes_per_task)
        compared = ("tasks", "episodes_per_task")
    if (root / "meta" / "info.json").exists():
        found = module.read_config(root)
        mismatch = {f: (getattr(found, f), getattr(wanted, f)) for f in compared if getattr(found, f) != getattr(wanted, f)}
        if mismatch:
            raise ValueError(f"{root} was written with {mismatch} (found, wanted): pass another --sim.dataset-root "
                             "or delete it.")
        logger.info("Using the %s dataset at %s.", args.suite, root)
        return root
    logger.info("Writing %d expert demos per task to %s.", args.episodes_per_task, root)
    return module.write_dataset(wanted)


def plan(args: SimArgs, seeds: tuple[int, ...], root: pathlib.Path, out: pathlib.Path) -> list[runs.Run]:
    """Every (seed, strategy) run, seed by seed."""
    return [
        runs.Run(
            strategy=strategy,
            seed=seed,
            config=runs.configure(
                _strategies.config(args.configs, strategy),
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
            suite=args.suite,
        )

    records: dict[str, list[dict[str, Any]]] = {s: [] for s in args.strategies}
    for r in planned:
        records[r.strategy].append(runs.execute(r, evaluate))
    return {"runs": records, "summary": report.summarize_sim(records, args.tasks, args.suite)}


def write_report(args: SimArgs, seeds: tuple[int, ...], result: dict[str, Any], out: pathlib.Path) -> list[str]:
    """Writes the plots (sim_success.png, sim_loss_curves.png) and returns the report's markdown lines."""
    plot_paths = [
        str(report.plot_sim_success(result, args.tasks, out / "sim_success.png")),
        str(report.plot_sim_losses(result, report.SIM_GROUPS[args.suite], out / "sim_loss_curves.png")),
    ]
    return report.sim_markdown(args, seeds, result, plot_paths)


@dataclasses.dataclass(frozen=True)
class DemoArgs:
    seeds: tuple[int, ...] = (0,)
    """One training run per strategy and seed (one seed keeps the default run short; ``--seeds 0 1 2`` for a
    comparison with seed spreads)."""
    output_dir: str = "demo_output"
    """Checkpoints, evaluations, report.md / report.json, plots and offline wandb runs; runs already evaluated
    here are reused, so an interrupted demo continues where it stopped."""
    sim: SimArgs = dataclasses.field(default_factory=SimArgs)


def main(args: DemoArgs) -> dict[str, Any]:
    """The closed-loop demo; writes report.md, report.json and plots under ``args.output_dir``."""
    start = time.perf_counter()
    out = pathlib.Path(args.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_MODE", "offline")  # the demo's runs are local unless the user asks otherwise
    os.environ["WANDB_DIR"] = str(out)
    result = run(args.sim, args.seeds, out)
    lines = write_report(args.sim, args.seeds, result, out)
    seconds = time.perf_counter() - start
    markdown = "\n".join(["# Demo: loss strategies in closed loop", "", *lines, f"Total time {seconds:.0f} s.", ""])
    (out / "report.md").write_text(markdown)
    (out / "report.json").write_text(json.dumps({"args": dataclasses.asdict(args), "seconds": seconds, **result},
                                                indent=1))
    print(markdown)
    print(f"Report: {out / 'report.md'}; wandb runs (offline) under {out}.")
    return result
