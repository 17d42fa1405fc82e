"""What makes the tiny model slow: parameters and JAX train-step time of the simulator config, one recipe change
at a time, from the B1K demo's tiny model to ``metaworld_demo``.

Each row changes one model field of ``metaworld_demo`` back or forth (cumulative, top to bottom); every step
is the trainer's own ``jax_trainer.train_step`` (jitted) on one fixed synthetic batch. Steps of the variants
alternate round by round so a busy machine slows all alike; the table gives the median. Note the machine
load next to the figures (``uptime``).
Run: ``python benchmarks/sim_recipe_speed.py [--batch-size 32] [--rounds 4]``.
"""

import dataclasses
import importlib
import pathlib
import statistics
import sys
import time

import flax.nnx as nnx
import jax
import numpy as np
import tyro

from openpi.training import config as _config

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
overhead = importlib.import_module("train_step_overhead")  # its jax_step closure

# Cumulative changes, from the B1K demo's tiny model to the simulator recipe (``SIM_MODEL_FIELDS``).
VARIANTS = {
    "B1K demo model (vocab 257,152, 64 px, horizon 50)": dict(
        vocab_size=257_152, image_resolution=(64, 64), action_horizon=50
    ),
    "+ vocab 512 (offline tokenizer's ids)": dict(vocab_size=512, image_resolution=(64, 64), action_horizon=50),
    "+ images 32 px": dict(vocab_size=512, image_resolution=(32, 32), action_horizon=50),
    "+ horizon 10 (= metaworld_demo)": dict(vocab_size=512, image_resolution=(32, 32), action_horizon=10),
    "pi0.5 instead (state in a 256-token prompt)": dict(
        vocab_size=512, image_resolution=(32, 32), action_horizon=10, pi05=True, max_token_len=256,
        discrete_state_input=True,
    ),
}


@dataclasses.dataclass(frozen=True)
class Args:
    batch_size: int = 32
    rounds: int = 4
    steps_per_round: int = 2
    warmup_steps: int = 2


def batch(config: _config.TrainConfig, batch_size: int) -> dict:
    rng = np.random.default_rng(0)
    model = config.model
    cameras = ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")
    return {
        "image": {c: rng.integers(0, 256, (batch_size, *model.image_resolution, 3), dtype=np.uint8) for c in cameras},
        "image_mask": {c: np.array([c != "right_wrist_0_rgb"] * batch_size) for c in cameras},
        "state": rng.normal(size=(batch_size, model.action_dim)).astype(np.float32),
        "tokenized_prompt": rng.integers(0, 512, (batch_size, model.max_token_len), dtype=np.int32),
        "tokenized_prompt_mask": np.arange(model.max_token_len)[None].repeat(batch_size, 0) < 40,
        "actions": np.cumsum(rng.normal(0, 0.1, (batch_size, model.action_horizon, model.action_dim)), 1).astype(
            np.float32
        ),
    }


def main(args: Args) -> None:
    base = _config.get_config("metaworld_demo")
    steps, params = {}, {}
    for name, fields in VARIANTS.items():
        config = dataclasses.replace(base, model=dataclasses.replace(base.model, **fields))
        steps[name] = overhead.jax_step(config, batch(config, args.batch_size))
        model_params = nnx.state(config.model.create(jax.random.key(0)), nnx.Param)
        params[name] = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(model_params))
    for run in steps.values():
        for _ in range(args.warmup_steps):
            run()
    times = {name: [] for name in steps}
    for r in range(args.rounds):
        for name in steps if r % 2 == 0 else reversed(list(steps)):
            for _ in range(args.steps_per_round):
                start = time.perf_counter()
                steps[name]()
                times[name].append(time.perf_counter() - start)
    print(f"batch {args.batch_size}; median of {args.rounds * args.steps_per_round} steps per variant\n")
    print("| model | parameters | train step (ms) |\n|---|---|---|")
    for name in steps:
        print(f"| {name} | {params[name] / 1e6:.2f}M | {1000 * statistics.median(times[name]):.0f} |")


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
