"""Offline measurement of the loss / data levers on the miniature B1K dataset: held-out error per action group.

    python benchmarks/levers_offline.py                          # 6 levers x 3 seeds, JAX, tiny model
    python benchmarks/levers_offline.py --steps 300 --seeds 0 1 2 3 --levers uniform masked

Levers (``openpi.experiments.strategies.B1K``: demo configs identical except for what the lever changes):
  uniform            pi0_b1k_uniform_demo           upstream loss, 9 of 32 dims are padding
  original           pi05_b1k_demo                  the B1K baseline's time weights
  per_group          pi0_b1k_arm_focused_demo       hand-set arm-focused group weights (padding excluded)
  masked             pi0_b1k_masked_demo            uniform over the 23 real dims (exclude_padding)
  adaptive           pi0_b1k_adaptive_demo          group weights from each group's own progress
  delta_pertimestep  pi05_b1k_delta_pertimestep_demo  delta trunk/arm actions + per-timestep action stats

Held-out episodes (the last of every task) are evaluated as scripts/eval_policy.py does. Every lever's errors are
normalized with the same per-dim stats of the absolute training actions, so the numbers are comparable (the
delta lever's policy outputs absolute actions). Per lever and group: mean, std and a 95% t-interval over seeds;
a difference to ``uniform`` whose intervals overlap is reported as "not resolved". Nothing is tuned per lever.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
import time

import numpy as np
from scipy import stats as _scipy_stats
import tyro

from openpi.experiments import b1k_demo
from openpi.experiments import evaluation
from openpi.experiments import norm_stats
from openpi.experiments import report
from openpi.experiments import runs as _runs
from openpi.experiments import strategies
from openpi.training import config as _config

logger = logging.getLogger("openpi.levers")

LEVERS = strategies.B1K
GROUPS = report.B1K_GROUPS


@dataclasses.dataclass(frozen=True)
class Args:
    steps: int = 150
    """Training steps per run."""
    seeds: tuple[int, ...] = (0, 1, 2)
    levers: tuple[str, ...] = tuple(LEVERS)
    batch_size: int = 8
    framework: _runs.Framework = "jax"
    output_dir: str = "levers_output"
    dataset_root: str = _config.DEMO_DATASET_ROOT
    """Miniature B1K dataset; written here (like scripts/demo.py does) when absent."""
    heldout_per_task: int = 1
    eval_stride: int = 25
    summarize_only: bool = False
    """Only write the report from the runs already in --output-dir/runs.json (e.g. after an interrupted run)."""


def absolute_actions(config: _config.TrainConfig) -> _config.TrainConfig:
    """``config`` without delta actions or per-timestep stats: its norm stats are the absolute action column's."""
    return dataclasses.replace(
        config, data=dataclasses.replace(config.data, delta_action_mask=None, per_timestep_norm=False)
    )


def plan(args: Args, root: pathlib.Path, out: pathlib.Path) -> list[_runs.Run]:
    """Lever by lever, all seeds each: an interrupted benchmark still has every finished lever's spread."""
    schedule = _runs.Schedule(args.steps, args.batch_size, log_interval=max(1, args.steps // 10))
    planned = []
    for lever in args.levers:
        for seed in args.seeds:
            config = _runs.configure(
                strategies.config(LEVERS, lever),
                exp_name=f"levers_{args.framework}_seed{seed}",
                seed=seed,
                schedule=schedule,
                data_root=root,
                output_dir=out,
                episodes_path=out / "train_episodes.json",
                wandb=False,
            )
            planned.append(_runs.Run(lever, seed, config, out / "eval" / lever / f"seed{seed}", args.framework))
    return planned


def main(args: Args) -> dict:
    strategies.check(args.levers, LEVERS, "levers")
    start = time.perf_counter()
    out = pathlib.Path(args.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.summarize_only:
        runs = json.loads((out / "runs.json").read_text())
        return summarize(args, runs, out, time.perf_counter() - start)
    os.environ.setdefault("WANDB_MODE", "offline")
    root = b1k_demo.ensure_dataset(b1k_demo.Args(dataset_root=args.dataset_root))
    train_episodes, _ = b1k_demo.split_episodes(root, args.heldout_per_task, out / "train_episodes.json")
    planned = plan(args, root, out)
    # Every lever's errors are normalized with the same per-dim stats of the absolute training actions.
    flat = norm_stats.for_config(absolute_actions(planned[0].config), episodes=train_episodes)
    flat_dir = norm_stats.write(flat,
                                out / "eval_stats").parent
    norm_stats.write_all([r.config for r in planned], episodes=train_episodes)

    def evaluate(r: _runs.Run) -> None:
        evaluation.offline_run(r.config, r.checkpoint, root=root, norm_stats_dir=flat_dir,
                               heldout_per_task=args.heldout_per_task, stride=args.eval_stride, output_dir=r.eval_dir)

    runs: dict[str, list[dict]] = {lever: [] for lever in args.levers}
    for r in planned:
        record = _runs.execute(r, evaluate)
        overall = json.loads(r.eval_json.read_text())["overall"]
        runs[r.strategy].append({
            "seed": r.seed,
            "mse_normalized": {g: overall["groups"][g]["mse_normalized"] for g in GROUPS},
            "arm_activity_ratio": overall["arm_activity_ratio"],
            "final_weights": {g: record["metrics"][-1].get(f"weight/{g}") for g in GROUPS},
        })
        (out / "runs.json").write_text(json.dumps(runs, indent=1))  # nothing lost if a later run fails

    return summarize(args, runs, out, time.perf_counter() - start)


def interval(values: list[float]) -> dict[str, float]:
    """Mean, std (ddof 1) and the 95% t-interval half-width over seeds."""
    x = np.asarray(values, dtype=np.float64)
    sd = float(x.std(ddof=1)) if len(x) > 1 else float("nan")
    half = float(_scipy_stats.t.ppf(0.975, len(x) - 1) * sd / np.sqrt(len(x))) if len(x) > 1 else float("nan")
    return {"mean": float(x.mean()), "std": sd, "ci95": half, "n": len(x)}


def verdict(row: dict[str, float], reference: dict[str, float]) -> str:
    """"lower" / "higher" when the 95% intervals are disjoint, else "not resolved"."""
    lo, hi = row["mean"] - row["ci95"], row["mean"] + row["ci95"]
    ref_lo, ref_hi = reference["mean"] - reference["ci95"], reference["mean"] + reference["ci95"]
    if hi < ref_lo:
        return "lower"
    if lo > ref_hi:
        return "higher"
    return "not resolved"


def summarize(args: Args, runs: dict[str, list[dict]], out: pathlib.Path, seconds: float) -> dict:
    """Writes report.md and summary.json from the finished runs (levers with at least one run)."""
    runs = {lever: rs for lever, rs in runs.items() if rs}
    summary = {
        lever: {
            **{g: interval([r["mse_normalized"][g] for r in rs]) for g in GROUPS},
            "arm_activity_ratio": interval([r["arm_activity_ratio"] for r in rs]),
        }
        for lever, rs in runs.items()
    }
    markdown = report_markdown(args, summary, seconds)
    (out / "summary.json").write_text(json.dumps({"args": dataclasses.asdict(args), "summary": summary,
                                                  "runs": runs}, indent=1))
    (out / "report.md").write_text(markdown)
    print(markdown)
    return summary


def report_markdown(args: Args, summary: dict, seconds: float) -> str:
    keys = [*GROUPS, "arm_activity_ratio"]
    lines = [
        f"Held-out normalized MSE per group (lower is better; arm activity ratio: 1 is ideal) on the last episode "
        f"of every task; {args.framework}, {args.steps} steps x batch {args.batch_size}, n seeds per lever as shown. "
        "Cells: mean ± std over seeds [95% t-interval half-width]; vs uniform: intervals disjoint or not resolved.",
        "",
        "| lever | " + " | ".join(keys) + " |",
        "|---|" + "---|" * len(keys),
    ]
    for lever, row in summary.items():
        cells = []
        for key in keys:
            c = row[key]
            cell = report.spread(c["mean"], c["std"], c["n"])
            cell += "" if c["n"] == 1 else f" [{c['ci95']:.3f}, n={c['n']}]"
            if "uniform" in summary and lever != "uniform":
                cell += f" ({verdict(c, summary['uniform'][key])})"
            cells.append(cell)
        lines.append(f"| {lever} | " + " | ".join(cells) + " |")
    lines += ["", f"Total time {seconds:.0f} s."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", force=True)
    main(tyro.cli(Args, description=__doc__))
