"""Offline measurement of the loss / data levers on the miniature B1K dataset: held-out error per action group.

    python benchmarks/levers_offline.py                          # 6 levers x 3 seeds, JAX, tiny model
    python benchmarks/levers_offline.py --steps 300 --seeds 0 1 2 3 --levers uniform masked

Levers (registered demo configs, identical except for what the lever changes):
  uniform            pi0_b1k_uniform_demo           upstream loss, 9 of 32 dims are padding
  original           pi05_b1k_demo                  the B1K baseline's time weights
  per_group          pi0_b1k_arm_focused_demo       hand-set arm-focused group weights (padding excluded)
  masked             pi0_b1k_masked_demo            uniform over the 23 real dims (exclude_padding)
  adaptive           pi0_b1k_adaptive_demo          group weights from each group's own progress
  delta_pertimestep  pi05_b1k_delta_pertimestep_demo  delta trunk/arm actions + per-timestep action stats

Held-out episodes (the last of every task) are evaluated with scripts/eval_policy.py. Every lever's errors are
normalized with the same per-dim stats of the absolute training actions, so the numbers are comparable (the
delta lever's policy outputs absolute actions). Per lever and group: mean, std and a 95% t-interval over seeds;
a difference to ``uniform`` whose intervals overlap is reported as "not resolved". Nothing is tuned per lever.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import os
import pathlib
import sys
import time

import numpy as np
from scipy import stats as _scipy_stats
import tyro

from openpi.analysis import arm_heavy
from openpi.datasets import episode_files
from openpi.datasets import stats as _stats
from openpi.policies import b1k_policy
from openpi.shared import normalize as _normalize
from openpi.training import config as _config

logger = logging.getLogger("openpi.levers")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "scripts"))
demo = importlib.import_module("demo")
eval_policy = importlib.import_module("eval_policy")

# The demo's three strategies (its configs, one source), then the new levers.
LEVERS = {
    **{name: demo.STRATEGY_CONFIGS[name] for name in ("uniform", "original", "per_group")},
    "masked": "pi0_b1k_masked_demo",
    "adaptive": "pi0_b1k_adaptive_demo",
    "delta_pertimestep": "pi05_b1k_delta_pertimestep_demo",
}
GROUPS = demo.REPORT_GROUPS


@dataclasses.dataclass(frozen=True)
class Args:
    steps: int = 150
    """Training steps per run."""
    seeds: tuple[int, ...] = (0, 1, 2)
    levers: tuple[str, ...] = tuple(LEVERS)
    batch_size: int = 8
    framework: str = "jax"
    """jax or pytorch."""
    output_dir: str = "levers_output"
    dataset_root: str = _config.DEMO_DATASET_ROOT
    """Miniature B1K dataset; written here (like scripts/demo.py does) when absent."""
    heldout_per_task: int = 1
    eval_stride: int = 25
    summarize_only: bool = False
    """Only write the report from the runs already in --output-dir/runs.json (e.g. after an interrupted run)."""


def _demo_args(args: Args) -> demo.Args:
    return demo.Args(framework=args.framework, steps=args.steps, batch_size=args.batch_size,
                     dataset_root=args.dataset_root, heldout_per_task=args.heldout_per_task)


def _config_for(args: Args, lever: str, seed: int, root: pathlib.Path, out: pathlib.Path) -> _config.TrainConfig:
    return _config.cli([
        LEVERS[lever],
        f"--exp-name=levers_{args.framework}_seed{seed}",
        f"--seed={seed}",
        f"--data.root={root}",
        f"--data.episodes-path={out / 'train_episodes.json'}",
        f"--assets-base-dir={out / 'assets'}",
        f"--checkpoint-base-dir={out / 'checkpoints'}",
        f"--num-train-steps={args.steps}",
        f"--save-interval={args.steps}",
        f"--log-interval={max(1, args.steps // 10)}",
        f"--lr-schedule.decay-steps={args.steps}",
        f"--batch-size={args.batch_size}",
        "--no-wandb-enabled",
        "--overwrite",
    ])


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


def main(args: Args) -> dict:
    unknown = [lever for lever in args.levers if lever not in LEVERS]
    if unknown:
        raise ValueError(f"Unknown levers {unknown}; choose from {list(LEVERS)}.")
    start = time.perf_counter()
    out = pathlib.Path(args.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.summarize_only:
        runs = json.loads((out / "runs.json").read_text())
        return summarize(args, runs, out, time.perf_counter() - start)
    os.environ.setdefault("WANDB_MODE", "offline")
    root = demo.ensure_dataset(_demo_args(args))
    train_episodes, _ = demo.split_episodes(root, args.heldout_per_task)
    episode_files.save_episode_list(out / "train_episodes.json", arm_heavy.EpisodeSelection(episodes=train_episodes,
                                details={}), criterion=arm_heavy.Criterion())
    flat = _stats.compute_norm_stats(root, state_transform=b1k_policy.proprio_to_state, episodes=train_episodes,
                                     action_horizon=50)
    flat_dir = _normalize.save(out / "eval_stats", flat).parent
    for lever in args.levers:
        config = _config.get_config(LEVERS[lever])
        stats = flat
        if config.data.delta_action_mask or config.data.per_timestep_norm:
            stats = _stats.compute_norm_stats(
                root, state_transform=b1k_policy.proprio_to_state, episodes=train_episodes,
                action_horizon=config.model.action_horizon, delta_action_mask=config.data.delta_action_mask,
                per_timestep=config.data.per_timestep_norm,
            )
        _normalize.save(out / "assets" / LEVERS[lever] / _config.DEMO_REPO_ID, stats)

    runs: dict[str, list[dict]] = {lever: [] for lever in args.levers}
    # Lever by lever, all seeds each: an interrupted benchmark still has every finished lever's spread.
    for lever in args.levers:
        for seed in args.seeds:
            config = _config_for(args, lever, seed, root, out)
            logger.info("Training %s (seed %d).", lever, seed)
            demo._train(config, args.framework)
            eval_dir = out / "eval" / lever / f"seed{seed}"
            report = eval_policy.run(eval_policy.Args(
                config_name=config.name, root=str(root), norm_stats_dir=str(flat_dir),
                checkpoint=str(config.checkpoint_dir / str(args.steps)), num_episodes=args.heldout_per_task,
                stride=args.eval_stride, output_dir=str(eval_dir),
            ))
            metrics = [json.loads(line) for line in (config.checkpoint_dir / "metrics.jsonl").read_text().splitlines()]
            runs[lever].append({
                "seed": seed,
                "mse_normalized": {g: report["overall"]["groups"][g]["mse_normalized"] for g in GROUPS},
                "arm_activity_ratio": report["overall"]["arm_activity_ratio"],
                "final_weights": {g: metrics[-1].get(f"weight/{g}") for g in GROUPS},
            })
            (out / "runs.json").write_text(json.dumps(runs, indent=1))  # nothing lost if a later run fails

    return summarize(args, runs, out, time.perf_counter() - start)


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
            cell = f"{c['mean']:.3f} ± {c['std']:.3f} [{c['ci95']:.3f}, n={c['n']}]"
            if "uniform" in summary and lever != "uniform":
                cell += f" ({verdict(c, summary['uniform'][key])})"
            cells.append(cell)
        lines.append(f"| {lever} | " + " | ".join(cells) + " |")
    lines += ["", f"Total time {seconds:.0f} s."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", force=True)
    main(tyro.cli(Args, description=__doc__))
