"""What in-training validation costs at its defaults, as a share of training time, on the simulator recipe
(``--recipe sim``: ``metaworld_demo``) or the B1K demo's (``--recipe b1k``: ``pi0_b1k_arm_focused_demo`` on
``scripts/demo.py``'s miniature dataset).

Writes the dataset, holds the last episode of every task out (a training-episode list), trains the config
(JAX) for ``--steps`` steps validating every ``--val-every`` steps, and reads
``metrics.jsonl``: the step time (validation excluded) and each validation's seconds (``val/seconds``; the first
includes compiling the sampler). The cost at defaults extrapolates these to the recipe's own length and the
default ``val_interval``: (first + (n - 1) x later validations) / (recipe steps x step time + validations).
Other processes on the machine slow both alike; note the load (``uptime``) next to the figures.
Run: ``python benchmarks/validation_cost.py [--recipe sim] [--steps 150] [--val-every 50]``.
"""

import dataclasses
import json
import os
import pathlib
import statistics
import tempfile
from typing import Literal

import tyro

from openpi.analysis import arm_heavy
from openpi.datasets import episode_files
from openpi.datasets import stats as _stats
from openpi.experiments import b1k_demo
from openpi.policies import b1k_policy
from openpi.shared import normalize as _normalize
from openpi.sim import dataset as _dataset
from openpi.training import config as _config
from openpi.training import jax_trainer
from openpi.training import schema

RECIPES = {"sim": "metaworld_demo", "b1k": "pi0_b1k_arm_focused_demo"}


@dataclasses.dataclass(frozen=True)
class Args:
    recipe: Literal["sim", "b1k"] = "sim"
    steps: int = 150
    val_every: int = 50
    episodes_per_task: int = 4
    """Simulator recipe only (the B1K recipe uses the demo's dataset)."""
    workdir: str | None = None


def prepare(args: Args, work: pathlib.Path, name: str) -> tuple[pathlib.Path, pathlib.Path]:
    """The recipe's dataset, its norm stats, and a training-episode list holding the last episode of each task out."""
    root = work / "data"
    listing = work / "train_episodes.json"
    if args.recipe == "b1k":
        b1k_demo.ensure_dataset(b1k_demo.Args(dataset_root=str(root)))
        trained, _ = b1k_demo.split_episodes(root, 1, listing)
        stats = _stats.compute_norm_stats(root, state_transform=b1k_policy.proprio_to_state, episodes=trained,
                                          progress=False)
        _normalize.save(work / "assets" / name / _config.DEMO_REPO_ID, stats)
        return root, listing
    if not (root / "meta" / "info.json").exists():
        _dataset.write_dataset(_dataset.SimDatasetConfig(root=root, episodes_per_task=args.episodes_per_task))
    _normalize.save(work / "assets" / name / _config.SIM_REPO_ID, _stats.compute_norm_stats(root, progress=False))
    episodes = [json.loads(line)["episode_index"] for line in (root / "meta/episodes.jsonl").read_text().splitlines()]
    per_task = args.episodes_per_task
    trained = [e for i, e in enumerate(episodes) if i % per_task != per_task - 1]  # the last of each task held out
    episode_files.save_episode_list(listing, arm_heavy.EpisodeSelection(episodes=trained, details={}),
                                    criterion=arm_heavy.Criterion())
    return root, listing


def main(args: Args) -> dict:
    work = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="validation_cost_"))
    name = RECIPES[args.recipe]
    root, listing = prepare(args, work, name)
    config = _config.cli([
        name, "--exp-name=cost", "--overwrite", f"--data.root={root}", f"--data.episodes-path={listing}",
        f"--assets-base-dir={work / 'assets'}", f"--checkpoint-base-dir={work / 'checkpoints'}",
        f"--num-train-steps={args.steps}", f"--save-interval={args.steps}", f"--log-interval={args.val_every}",
        f"--val-interval={args.val_every}", "--no-wandb-enabled",
    ])
    jax_trainer.train(config, progress=False)
    rows = [json.loads(line) for line in (config.checkpoint_dir / "metrics.jsonl").read_text().splitlines()]
    step_time = statistics.median(r["step_time"] for r in rows[1:])  # the first interval compiles the step
    seconds = [r["val/seconds"] for r in rows if "val/seconds" in r]
    recipe = _config.get_config(name)
    default_interval = schema.TrainConfig.val_interval
    n = max(1, recipe.num_train_steps // default_interval)  # and the last step
    validations = seconds[0] + (n - 1) * statistics.median(seconds[1:])
    result = {
        "config": name, "recipe_steps": recipe.num_train_steps, "default_val_interval": default_interval,
        "val_windows": recipe.val_windows, "step_time_s": step_time, "validation_s": seconds,
        "cost_at_defaults_pct": 100 * validations / (recipe.num_train_steps * step_time + validations),
        "load_average": os.getloadavg(),
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
