"""What in-training validation costs at its defaults, as a share of training time, on the simulator recipe.

Writes a small Meta-World expert dataset, holds the last episode of every task out (a training-episode list),
trains ``metaworld_demo`` (JAX) for ``--steps`` steps validating every ``--val-every`` steps, and reads
``metrics.jsonl``: the step time (validation excluded) and each validation's seconds (``val/seconds``; the first
includes compiling the sampler). The cost at defaults extrapolates these to the recipe's own length and the
default ``val_interval``: (first + (n - 1) x later validations) / (recipe steps x step time + validations).
Other processes on the machine slow both alike; note the load (``uptime``) next to the figures.
Run: ``python benchmarks/validation_cost.py [--steps 150] [--val-every 50]``.
"""

import dataclasses
import json
import os
import pathlib
import statistics
import tempfile

import tyro

from openpi.analysis import arm_heavy
from openpi.datasets import episode_files
from openpi.datasets import stats as _stats
from openpi.shared import normalize as _normalize
from openpi.sim import dataset as _dataset
from openpi.training import config as _config
from openpi.training import jax_trainer
from openpi.training import schema

NAME = "metaworld_demo"


@dataclasses.dataclass(frozen=True)
class Args:
    steps: int = 150
    val_every: int = 50
    episodes_per_task: int = 4
    workdir: str | None = None


def main(args: Args) -> dict:
    work = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="validation_cost_"))
    root = work / "data"
    if not (root / "meta" / "info.json").exists():
        _dataset.write_dataset(_dataset.SimDatasetConfig(root=root, episodes_per_task=args.episodes_per_task))
    _normalize.save(work / "assets" / NAME / _config.SIM_REPO_ID, _stats.compute_norm_stats(root, progress=False))
    episodes = [json.loads(line)["episode_index"] for line in (root / "meta/episodes.jsonl").read_text().splitlines()]
    per_task = args.episodes_per_task
    trained = [e for i, e in enumerate(episodes) if i % per_task != per_task - 1]  # the last of each task held out
    listing = work / "train_episodes.json"
    episode_files.save_episode_list(listing, arm_heavy.EpisodeSelection(episodes=trained, details={}),
                                    criterion=arm_heavy.Criterion())
    config = _config.cli([
        NAME, "--exp-name=cost", "--overwrite", f"--data.root={root}", f"--data.episodes-path={listing}",
        f"--assets-base-dir={work / 'assets'}", f"--checkpoint-base-dir={work / 'checkpoints'}",
        f"--num-train-steps={args.steps}", f"--save-interval={args.steps}", f"--log-interval={args.val_every}",
        f"--val-interval={args.val_every}", "--no-wandb-enabled",
    ])
    jax_trainer.train(config, progress=False)
    rows = [json.loads(line) for line in (config.checkpoint_dir / "metrics.jsonl").read_text().splitlines()]
    step_time = statistics.median(r["step_time"] for r in rows[1:])  # the first interval compiles the step
    seconds = [r["val/seconds"] for r in rows if "val/seconds" in r]
    recipe = _config.get_config(NAME)
    default_interval = schema.TrainConfig.val_interval
    n = recipe.num_train_steps // default_interval
    validations = seconds[0] + (n - 1) * statistics.median(seconds[1:])
    result = {
        "recipe_steps": recipe.num_train_steps, "default_val_interval": default_interval,
        "val_windows": recipe.val_windows, "step_time_s": step_time, "validation_s": seconds,
        "cost_at_defaults_pct": 100 * validations / (recipe.num_train_steps * step_time + validations),
        "load_average": os.getloadavg(),
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
