"""Mobile manipulator: strategy configs x training seeds, each trained with the sim recipe and scored closed loop
on held-out layouts, pooled into one table (issue 22's measurement).

    python benchmarks/mobile_comparison.py --data-root /tmp/mob/data \\
        --configs mobile_demo_original mobile_demo_per_group --seeds 0 1 2 --output-dir results/mobile_comparison

Each run is ``scripts/train.py CONFIG --exp-name s{seed} --seed {seed}`` on ``--data-root`` (norm stats once per
config with ``scripts/compute_norm_stats.py``), then ``scripts/eval_closed_loop.py --suite mobile`` on
``--episodes`` held-out layouts per task. Every step is a subprocess, one at a time, logged under
``OUTPUT/logs``. A run with an eval.json is not repeated and a finished checkpoint is not retrained, so an
interrupted comparison (``--stop-at``) continues where it stopped. The dataset is written when ``--data-root``
holds none; one that exists must have been written with ``--episodes-per-task``.

Writes ``OUTPUT/comparison.json`` and ``comparison.md``: per config x task the navigation, manipulation and
overall success pooled over seeds with 95% Wilson intervals, their mean ± std over seeds, the number of seeds,
and the arm activity ratio (executed arm motion / the expert's on the same layouts; in total and per executed
step, since a failing policy runs to the step limit while the expert stops at success).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

import tyro

from openpi.shared import cli
from openpi.sim import mobile_dataset
from openpi.sim.closed_loop import wilson_interval
from openpi.training import config as _config

REPO = pathlib.Path(__file__).resolve().parents[1]
KINDS = ("navigation", "manipulation", "overall")


@dataclasses.dataclass(frozen=True)
class Args:
    data_root: pathlib.Path
    """The mobile demo dataset (openpi.sim.mobile_dataset); written here if absent."""
    configs: tuple[str, ...] = ("mobile_demo_original", "mobile_demo_per_group")
    """Registered mobile configs to compare (see openpi.training.mobile_configs)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Training seeds per config."""
    tasks: tuple[str, ...] = ("lift", "touch")
    episodes: int = 20
    """Held-out layouts per task."""
    episodes_per_task: int = 20
    """Demonstrations per task the dataset has (or is written with)."""
    navigation_episodes_per_task: int = 0
    """Navigation-only episodes per task the dataset has (or is written with): the mixture knob that makes the data
    navigation-heavy, as B1K's is."""
    output_dir: pathlib.Path = pathlib.Path("results/mobile_comparison")
    stop_at: str | None = None
    """UTC time HH:MM: a step still running then is stopped, no step starts after it, and the table reports the
    runs that finished."""
    report_only: bool = False
    """Only pool the eval.json files already written."""


@dataclasses.dataclass(frozen=True)
class Run:
    config: str
    seed: int
    output_dir: pathlib.Path

    @property
    def name(self) -> str:
        return f"{self.config}/s{self.seed}"

    @property
    def checkpoint_dir(self) -> pathlib.Path:
        return self.output_dir / "checkpoints" / self.config / f"s{self.seed}"

    @property
    def eval_dir(self) -> pathlib.Path:
        return self.output_dir / "evals" / self.config / f"s{self.seed}"

    @property
    def eval_json(self) -> pathlib.Path:
        return self.eval_dir / "eval.json"


class Deadline(Exception):
    """``--stop-at`` passed."""


def deadline(stop_at: str | None) -> float | None:
    """``stop_at`` (UTC HH:MM, today) as a Unix time."""
    if stop_at is None:
        return None
    try:
        hour, minute = (int(part) for part in stop_at.split(":"))
        now = datetime.datetime.now(datetime.UTC)
        return now.replace(hour=hour, minute=minute, second=0, microsecond=0).timestamp()
    except ValueError as error:
        raise ValueError(f"--stop-at {stop_at!r} is not a UTC time HH:MM (e.g. --stop-at 12:50): {error}.") from None


def step(command: list[str], log: pathlib.Path, stop: float | None, timings: list[dict[str, Any]]) -> None:
    """Runs ``command`` from the repository root with its output in ``log``; stops it at ``stop``."""
    remaining = None if stop is None else stop - time.time()
    if remaining is not None and remaining <= 0:
        raise Deadline
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {"WANDB_MODE": "offline", "MUJOCO_GL": "egl", **os.environ}
    start, load = time.time(), os.getloadavg()[0]
    print(f"[{time.strftime('%H:%M:%S', time.gmtime())}] {' '.join(command)}  > {log}", flush=True)
    with log.open("w") as out:
        # Its own process group, so a stop also ends the data-loader workers it started.
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            returncode = process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            raise Deadline from None
    timings.append({"command": command, "seconds": round(time.time() - start, 1), "load_before": load,
                    "load_after": os.getloadavg()[0], "returncode": returncode})
    if returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed with status {returncode}; see {log}.")


def ensure_dataset(args: Args, stop: float | None, timings: list[dict[str, Any]]) -> None:
    """Writes the dataset when ``--data-root`` has none; checks an existing one was written with the same options."""
    wanted = mobile_dataset.MobileDatasetConfig(root=args.data_root, episodes_per_task=args.episodes_per_task,
                                                navigation_episodes_per_task=args.navigation_episodes_per_task)
    if (args.data_root / "meta" / "info.json").exists():
        found = mobile_dataset.read_config(args.data_root)
        mismatch = {f.name: (getattr(found, f.name), getattr(wanted, f.name)) for f in dataclasses.fields(wanted)
                    if f.name not in ("root", "overwrite") and getattr(found, f.name) != getattr(wanted, f.name)}
        if mismatch:
            raise ValueError(f"{args.data_root} was written with {mismatch} (found, wanted); pass a new --data-root "
                             f"or the options it was written with.")
        return
    step([sys.executable, "-m", "openpi.sim.mobile_dataset", "--root", str(args.data_root), "--episodes-per-task",
          str(args.episodes_per_task), "--navigation-episodes-per-task", str(args.navigation_episodes_per_task)],
         args.output_dir / "logs" / "dataset.log", stop, timings)


def execute(run: Run, args: Args, stop: float | None, timings: list[dict[str, Any]]) -> None:
    """Norm stats (once per config), training (unless its last checkpoint exists) and evaluation of ``run``."""
    logs = args.output_dir / "logs"
    paths = ["--data.root", str(args.data_root), "--assets-base-dir", str(args.output_dir / "assets")]
    config = _config.get_config(run.config)
    if not any((args.output_dir / "assets" / run.config).rglob("norm_stats.json")):
        step([sys.executable, "scripts/compute_norm_stats.py", "--config-name", run.config, *paths],
             logs / f"stats_{run.config}.log", stop, timings)
    if not (run.checkpoint_dir / str(config.num_train_steps) / "commit_success.txt").exists():
        step([sys.executable, "scripts/train.py", run.config, "--exp-name", f"s{run.seed}", "--seed", str(run.seed),
              *paths, "--checkpoint-base-dir", str(args.output_dir / "checkpoints"), "--no-wandb-enabled",
              "--overwrite"], logs / f"train_{run.config}_s{run.seed}.log", stop, timings)
    step([sys.executable, "scripts/eval_closed_loop.py", "--suite", "mobile", "--config-name", run.config,
          "--checkpoint", str(run.checkpoint_dir), "--tasks", *args.tasks, "--episodes", str(args.episodes),
          "--output-dir", str(run.eval_dir)], logs / f"eval_{run.config}_s{run.seed}.log", stop, timings)


def read_eval(run: Run, args: Args) -> dict[str, Any]:
    """``run``'s eval.json, checked to cover ``args.tasks`` on ``args.episodes`` layouts."""
    report = json.loads(run.eval_json.read_text())
    if report.get("suite") != "mobile" or report["episodes"] != args.episodes or not set(args.tasks) <= set(
        report["tasks"]
    ):
        raise ValueError(f"{run.eval_json} is not a mobile evaluation of tasks {args.tasks} on {args.episodes} "
                         f"layouts (it has {sorted(report['tasks'])} on {report['episodes']}); move it away to "
                         "re-evaluate the run.")
    return report


def expert_steps(reports: list[dict[str, Any]], task: str) -> dict[int, int]:
    """The expert's episode length per layout seed. The expert is deterministic, so every eval of a layout must
    show the same arm motion and length (checked: it is what makes evals of different runs comparable); an eval
    written before ``expert_steps`` was recorded borrows the length from one that has it."""
    steps: dict[int, int] = {}
    motion: dict[int, float] = {}
    for report in reports:
        for episode in report["tasks"][task]["episodes"]:
            seed = episode["seed"]
            seen = motion.setdefault(seed, episode["expert_arm_motion"])
            if abs(seen - episode["expert_arm_motion"]) > 1e-6 * max(1.0, abs(seen)):
                raise ValueError(f"the expert's arm motion on layout {seed} of {task} is {seen} in one eval and "
                                 f"{episode['expert_arm_motion']} in another: the evaluations are not comparable.")
            if "expert_steps" in episode and steps.setdefault(seed, episode["expert_steps"]) != episode["expert_steps"]:
                raise ValueError(f"the expert took {steps[seed]} and {episode['expert_steps']} steps on layout {seed} "
                                 f"of {task}: the evaluations are not comparable.")
    return steps


def mean_std(values: list[float]) -> dict[str, float | None]:
    return {"mean": statistics.fmean(values) if values else None,
            "std": statistics.stdev(values) if len(values) > 1 else None}


def activity(episodes: list[dict[str, Any]], expert: dict[int, int]) -> dict[str, float | None]:
    """Arm activity ratio of ``episodes``: in total, and per executed step (None without the expert's lengths)."""
    motion, expert_motion = (sum(e[key] for e in episodes) for key in ("arm_motion", "expert_arm_motion"))
    steps = sum(e["steps"] for e in episodes)
    known = all(e["seed"] in expert for e in episodes)
    per_step = (motion / steps) / (expert_motion / sum(expert[e["seed"]] for e in episodes)) if known else None
    return {"total": motion / expert_motion, "per_step": per_step}


def pool(config: str, task: str, per_seed: dict[int, dict[str, Any]], expert: dict[int, int]) -> dict[str, Any]:
    """One table row: ``config`` on ``task`` pooled over the seeds' evals."""
    episodes = {seed: report["tasks"][task]["episodes"] for seed, report in per_seed.items()}
    everything = [e for seed_episodes in episodes.values() for e in seed_episodes]
    row: dict[str, Any] = {"config": config, "task": task, "seeds": sorted(per_seed), "n_seeds": len(per_seed),
                           "episodes": len(everything)}
    for kind in KINDS:
        successes = sum(bool(e[kind]) for e in everything)
        rates = [sum(bool(e[kind]) for e in eps) / len(eps) for eps in episodes.values()]
        row[kind] = {"successes": successes, "trials": len(everything), "rate": successes / len(everything),
                     "wilson95": wilson_interval(successes, len(everything)), "per_seed": rates, **mean_std(rates)}
    seed_activity = [activity(eps, expert) for eps in episodes.values()]
    for measure in ("total", "per_step"):
        values = [a[measure] for a in seed_activity if a[measure] is not None]
        row[f"arm_activity_{measure}"] = {"pooled": activity(everything, expert)[measure], "per_seed": values,
                                          **mean_std(values)}
    return row


def _num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def markdown(rows: list[dict[str, Any]], args: Args, missing: list[str]) -> str:
    lines = [
        f"Mobile manipulator, closed loop: {args.episodes} held-out layouts per task per seed. Success pooled over "
        "seeds with a 95% Wilson interval, then mean ± std of the per-seed rates. Arm activity = executed arm "
        "motion / the expert's on the same layouts, pooled (mean ± std over seeds); per step divides each by its "
        "executed steps.",
        "",
        "| config | task | seeds | navigation | manipulation | overall | arm activity (total) | arm activity "
        "(per step) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = []
        for kind in KINDS:
            k = row[kind]
            low, high = k["wilson95"]
            cells.append(f"{k['successes']}/{k['trials']} ({k['rate']:.0%}) [{low:.2f}, {high:.2f}]; "
                         f"{_num(k['mean'])} ± {_num(k['std'])}")
        for measure in ("total", "per_step"):
            a = row[f"arm_activity_{measure}"]
            cells.append(f"{_num(a['pooled'])} ({_num(a['mean'])} ± {_num(a['std'])})")
        seeds = ",".join(str(s) for s in row["seeds"])
        lines.append(f"| {row['config']} | {row['task']} | {row['n_seeds']} ({seeds}) | {' | '.join(cells)} |")
    if missing:
        lines += ["", f"Not finished (no eval.json): {', '.join(missing)}."]
    return "\n".join(lines) + "\n"


def report(runs: list[Run], args: Args, timings: list[dict[str, Any]]) -> str:
    """Pools the finished runs' evals into comparison.json and comparison.md; returns the markdown."""
    done = {run: read_eval(run, args) for run in runs if run.eval_json.exists()}
    missing = [run.name for run in runs if run not in done]
    rows = []
    for task in args.tasks:
        expert = expert_steps(list(done.values()), task)
        for config in args.configs:
            per_seed = {run.seed: evaluation for run, evaluation in done.items() if run.config == config}
            if per_seed:
                rows.append(pool(config, task, per_seed, expert))
    text = markdown(rows, args, missing)
    summary = {"args": {k: str(v) if isinstance(v, pathlib.Path) else v for k, v in dataclasses.asdict(args).items()},
               "rows": rows, "evals": {run.name: str(run.eval_json) for run in done}, "missing": missing,
               "steps": timings}
    (args.output_dir / "comparison.json").write_text(json.dumps(summary, indent=2) + "\n")
    (args.output_dir / "comparison.md").write_text(text)
    return text


def main(args: Args) -> None:
    for name in args.configs:
        _config.get_config(name)  # an unknown name fails here, before any work
    stop = deadline(args.stop_at)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    runs = [Run(config, seed, args.output_dir) for seed in args.seeds for config in args.configs]
    timings: list[dict[str, Any]] = []
    start = time.time()
    if not args.report_only:
        try:
            ensure_dataset(args, stop, timings)
            for run in runs:
                if run.eval_json.exists():
                    print(f"Reusing {run.eval_json}.", flush=True)
                else:
                    execute(run, args, stop, timings)
        except Deadline:
            print(f"Stopped at --stop-at {args.stop_at} UTC; run again to continue.", flush=True)
    print(report(runs, args, timings))
    print(f"Wall time {time.time() - start:.0f} s; written to {args.output_dir / 'comparison.md'} and .json.")


if __name__ == "__main__":
    cli.run_main(lambda: main(tyro.cli(Args, description=__doc__)))
