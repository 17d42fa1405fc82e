"""Milliseconds per step of the whole JAX training loop (``scripts/train.py``: data loading, jitted step, metrics,
logging) on the miniature B1K dataset and the tiny demo model.

The step-time benchmarks (``train_step_overhead.py``, ``model_step_time.py``) block on every step by design;
this one runs the trainer itself, so it shows what the loop does around the step, e.g. whether the host waits for
the device's metrics every step. ``--compare-src DIR`` also runs the trainer of another source tree (the code before a
change: ``mkdir /tmp/before && git archive main | tar -x -C /tmp/before``, then ``--compare-src /tmp/before``); the trees alternate run
by run so a busy machine slows both alike. Each run's first log interval (compilation) is left out; the figure is
the median of the remaining intervals' ``step_time`` in ``metrics.jsonl``.
Run: ``python benchmarks/jax_train_loop.py [--compare-src DIR] [--rounds 3] [--steps 60]``.
"""

import dataclasses
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

import tyro

from openpi.datasets import mini_b1k
from openpi.datasets import stats as _stats
from openpi.policies import b1k_policy
from openpi.shared import normalize as _normalize
from openpi.training import config as _config

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIG = "pi0_b1k_arm_focused_demo"


@dataclasses.dataclass(frozen=True)
class Args:
    compare_src: pathlib.Path | None = None
    """Another checkout of this repository whose trainer is timed alternately with this one."""
    rounds: int = 3
    """Runs per source tree."""
    steps: int = 60
    log_interval: int = 10
    batch_size: int = 8


def _run(src: pathlib.Path, tmp: pathlib.Path, data: pathlib.Path, name: str, args: Args) -> list[float]:
    """Trains one run from the source tree ``src``; returns its step times (s) after the first log interval."""
    cmd = [
        sys.executable, str(src / "scripts" / "train.py"), CONFIG, f"--exp-name={name}", f"--data.root={data}",
        f"--assets-base-dir={tmp / 'assets'}", f"--checkpoint-base-dir={tmp / 'checkpoints'}",
        f"--batch-size={args.batch_size}", f"--num-train-steps={args.steps}", f"--log-interval={args.log_interval}",
        f"--save-interval={args.steps}", "--no-wandb-enabled",
    ]
    env = {**os.environ, "PYTHONPATH": str(src / "src")}
    subprocess.run(cmd, check=True, cwd=tmp, env=env, capture_output=True)
    records = (tmp / "checkpoints" / CONFIG / name / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step_time"] for line in records[1:]]


def main(args: Args) -> None:
    trees = {"this tree": REPO}
    if args.compare_src is not None:
        trees["compare"] = args.compare_src.resolve()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = pathlib.Path(tmp_name)
        data = tmp / "mini_b1k"
        mini_b1k.write_mini_b1k(
            mini_b1k.MiniB1KConfig(root=data, num_tasks=2, episodes_per_task=2, frames_per_episode=60), progress=False
        )
        stats = _stats.compute_norm_stats(data, state_transform=b1k_policy.proprio_to_state, progress=False)
        _normalize.save(tmp / "assets" / CONFIG / _config.DEMO_REPO_ID, stats)
        times: dict[str, list[float]] = {name: [] for name in trees}
        print(f"{CONFIG}, batch {args.batch_size}, {args.steps} steps per run, log every {args.log_interval}")
        for round_index in range(args.rounds):
            order = list(trees) if round_index % 2 == 0 else list(reversed(trees))
            for name in order:
                run_times = _run(trees[name], tmp, data, f"{name.replace(' ', '_')}_{round_index}", args)
                times[name] += run_times
                print(f"round {round_index} {name:<10} {1e3 * statistics.median(run_times):8.1f} ms/step")
        for name, values in times.items():
            print(
                f"{name:<10} ({trees[name]}): median {1e3 * statistics.median(values):.1f} ms/step, "
                f"fastest interval {1e3 * min(values):.1f} ms/step over {len(values)} intervals"
            )


if __name__ == "__main__":
    main(tyro.cli(Args))
