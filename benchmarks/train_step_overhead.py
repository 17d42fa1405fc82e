"""Train-step time with ``per_group`` loss weighting relative to ``uniform``, in JAX and PyTorch (target ≤ 1.03).

The two demo configs differ only in the loss weighting (``pi0_b1k_arm_focused_demo`` vs ``pi0_b1k_uniform_demo``:
same tiny model, same action groups and per-group metrics). Each framework runs its trainer's own step on one
fixed synthetic batch: ``jax_trainer.train_step`` under ``jax.jit``, ``pytorch_trainer.train_step`` eagerly. The
strategies alternate round by round so a busy machine slows both alike; the ratio is taken of the medians and of
the fastest steps. Because a shared CPU makes whole steps noisy, the loss weighting alone (weights, weighted loss
and per-group metrics, forward + backward, on the batch's [B, H, D]) is also timed per strategy, and its extra
cost over ``uniform`` is reported against the fastest uniform step as a second, steadier estimate of the ratio.
Run: ``python benchmarks/train_step_overhead.py [--batch-size 8] [--rounds 8]``.
"""

import dataclasses
import functools
import statistics
import time

import jax
import numpy as np
import torch
import tyro

from openpi.models import model_inputs as _inputs
from openpi.models import pi0_loss_utils
from openpi.models_pytorch import pi0_loss_utils_pytorch
from openpi.training import config as _config
from openpi.training import jax_trainer
from openpi.training import pytorch_trainer
from openpi.training import sharding as _sharding

CONFIGS = {"uniform": "pi0_b1k_uniform_demo", "per_group": "pi0_b1k_arm_focused_demo"}
CAMERAS = ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")


@dataclasses.dataclass(frozen=True)
class Args:
    batch_size: int = 8
    """The demo configs' batch size."""
    rounds: int = 8
    """Rounds of ``steps_per_round`` steps per strategy, alternating, after the warm-up steps."""
    steps_per_round: int = 2
    warmup_steps: int = 3
    """Untimed steps per strategy first (compilation; PyTorch's first steps allocate the optimizer state)."""
    torch_threads: int = 2


def synthetic_batch(config: _config.TrainConfig, batch_size: int, seed: int = 0) -> dict:
    """A data-loader batch dict of the config's shapes: uint8 images, state, prompt tokens, smooth action chunks."""
    rng = np.random.default_rng(seed)
    model = config.model
    height, width = model.image_resolution
    horizon, dim = model.action_horizon, model.action_dim
    walk = np.cumsum(rng.normal(0, 0.1, (batch_size, horizon, dim)), axis=1).astype(np.float32)
    return {
        "image": {c: rng.integers(0, 256, (batch_size, height, width, 3), dtype=np.uint8) for c in CAMERAS},
        "image_mask": {c: np.ones(batch_size, dtype=bool) for c in CAMERAS},
        "state": rng.normal(size=(batch_size, dim)).astype(np.float32),
        "tokenized_prompt": rng.integers(0, 1000, (batch_size, model.max_token_len), dtype=np.int32),
        "tokenized_prompt_mask": np.arange(model.max_token_len)[None].repeat(batch_size, 0) < 20,
        "actions": walk,
    }


def jax_step(config: _config.TrainConfig, batch: dict):
    """A closure running one jitted ``jax_trainer.train_step`` on the fixed batch; returns the loss."""
    mesh = _sharding.make_mesh(1)
    state, _ = jax_trainer.init_train_state(config, mesh)
    inputs = _inputs.to_model_inputs(batch, "jax")
    step_fn = jax.jit(functools.partial(jax_trainer.train_step, config), donate_argnums=(1,))
    rng = jax.random.key(config.seed)
    holder = {"state": state}

    def run() -> float:
        holder["state"], info = step_fn(rng, holder["state"], inputs)
        return float(jax.block_until_ready(info["loss"]))

    return run


def torch_step(config: _config.TrainConfig, batch: dict):
    """A closure running one ``pytorch_trainer.train_step`` on the fixed batch; returns the loss."""
    model = pytorch_trainer.create_model(config, torch.device("cpu"))
    optimizer = pytorch_trainer.create_optimizer(config, model)
    step_module = pytorch_trainer.LossAndMetrics(model)
    observation, actions = _inputs.to_model_inputs(batch, "pytorch")
    counter = {"step": 0}

    def run() -> float:
        info = pytorch_trainer.train_step(config, step_module, model, optimizer, counter["step"], observation, actions)
        counter["step"] += 1
        return info["loss"]

    return run


def loss_weighting_seconds(framework: str, config: _config.TrainConfig, actions: np.ndarray, repeats: int = 200):
    """Median seconds of the loss weighting's forward + backward alone (per-dim error → mean weighted loss)."""
    weighting = config.model.loss_weighting
    err = np.random.default_rng(1).random(actions.shape, dtype=np.float32)
    if framework == "jax":
        def loss(e, a):
            weighted, metrics = pi0_loss_utils.weighted_loss_and_metrics(weighting, e, a)
            return weighted.mean(), metrics

        fn = jax.jit(jax.grad(loss, has_aux=True))
        args = (jax.numpy.asarray(err), jax.numpy.asarray(actions))

        def run():
            jax.block_until_ready(fn(*args))
    else:
        e, a = torch.from_numpy(err).requires_grad_(), torch.from_numpy(actions)

        def run():
            weighted, _ = pi0_loss_utils_pytorch.weighted_loss_and_metrics(weighting, e, a)
            weighted.mean().backward()

    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(steps: dict, args: Args) -> dict[str, list[float]]:
    """Per-step seconds of each strategy's step, strategies alternating (order flipped every round)."""
    for run in steps.values():
        for _ in range(args.warmup_steps):
            run()
    times = {name: [] for name in steps}
    for round_index in range(args.rounds):
        order = list(steps) if round_index % 2 == 0 else list(reversed(steps))
        for name in order:
            for _ in range(args.steps_per_round):
                start = time.perf_counter()
                steps[name]()
                times[name].append(time.perf_counter() - start)
    return times


def main(args: Args) -> None:
    torch.set_num_threads(args.torch_threads)
    configs = {
        name: dataclasses.replace(_config.get_config(cfg), batch_size=args.batch_size) for name, cfg in CONFIGS.items()
    }
    batch = synthetic_batch(configs["uniform"], args.batch_size)
    model = configs["uniform"].model
    print(
        f"demo model ({model.paligemma_variant}/{model.action_expert_variant} + {model.vision_variant}, "
        f"{model.image_resolution[0]}px, pi05={model.pi05}), batch {args.batch_size}, horizon {model.action_horizon}, "
        f"action_dim {model.action_dim}; {args.rounds} rounds x {args.steps_per_round} steps per strategy; "
        f"torch threads {args.torch_threads}, JAX devices {jax.devices()}"
    )
    print(
        f"{'framework':<10}{'strategy':<11}{'median (s)':>12}{'min (s)':>10}{'ratio (median)':>16}{'ratio (min)':>13}"
        f"{'weighting (ms)':>16}{'ratio (weighting)':>19}"
    )
    for framework, make in (("jax", jax_step), ("pytorch", torch_step)):
        times = measure({name: make(config, batch) for name, config in configs.items()}, args)
        weighting = {name: loss_weighting_seconds(framework, c, batch["actions"]) for name, c in configs.items()}
        base_median, base_min = statistics.median(times["uniform"]), min(times["uniform"])
        for name, values in times.items():
            median, fastest = statistics.median(values), min(values)
            implied = (base_min + weighting[name] - weighting["uniform"]) / base_min
            print(
                f"{framework:<10}{name:<11}{median:>12.4f}{fastest:>10.4f}{median / base_median:>16.3f}"
                f"{fastest / base_min:>13.3f}{weighting[name] * 1e3:>16.3f}{implied:>19.4f}"
            )


if __name__ == "__main__":
    main(tyro.cli(Args))
