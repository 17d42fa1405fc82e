"""Train-step and sampling time of pi0 / pi0.5, JAX vs PyTorch side by side, on the same tiny config.

One train step = loss (uniform weighting) + gradient + global-norm clipping (1.0) + AdamW update, on one fixed
batch; JAX runs it under ``jax.jit``, PyTorch eagerly (or under ``torch.compile`` with ``--torch-compile``).
Both models hold the same weights (converted JAX → PyTorch), so the first losses agree. Run:
``python benchmarks/model_step_time.py [--pi05] [--batch-size 4] [--steps 10]``.
"""

import dataclasses
import pathlib
import statistics
import sys
import time

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
import tyro

from openpi.models import pi0_config
from openpi.models_pytorch import pi0_pytorch
from openpi.models_pytorch import weight_conversion

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "tests" / "models_pytorch"))
from _pi0_fixtures import batch
from _pi0_fixtures import observation
from _pi0_fixtures import random_jax_params


@dataclasses.dataclass(frozen=True)
class Args:
    pi05: bool = False
    batch_size: int = 2
    resolution: int = 224
    """Image size; mu/16 gives (resolution/16)^2 tokens per camera (3 cameras)."""
    action_horizon: int = 50
    steps: int = 10
    """Timed steps after one warm-up (compile) step."""
    torch_threads: int = 2
    torch_compile: bool = False
    """Wrap the PyTorch loss in torch.compile (slow to compile on CPU)."""


def _timed(step, n: int) -> tuple[float, list[float], float]:
    """(first-call seconds, per-step seconds, last loss)."""
    start = time.perf_counter()
    loss = step()
    first = time.perf_counter() - start
    times = []
    for _ in range(n):
        start = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - start)
    return first, times, loss


def main(args: Args) -> None:
    torch.set_num_threads(args.torch_threads)
    config = pi0_config.Pi0Config(
        dtype="float32",
        paligemma_variant="dummy",
        action_expert_variant="dummy",
        vision_variant="mu/16",
        image_resolution=(args.resolution, args.resolution),
        pi05=args.pi05,
        action_horizon=args.action_horizon,
    )
    params = random_jax_params(config)
    data = batch(config, batch_size=args.batch_size)

    # JAX: jitted value_and_grad + optax AdamW with clipping.
    model = config.load(params)
    graphdef, state = nnx.split(model)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-4, b2=0.95, weight_decay=1e-10))
    jax_obs = observation(data, "jax")
    jax_actions, noise, time_ = (jnp.asarray(data[k]) for k in ("actions", "noise", "time"))

    @jax.jit
    def jax_step(state, opt_state):
        def loss_fn(state):
            m = nnx.merge(graphdef, state)
            return m.compute_loss(jax.random.key(0), jax_obs, jax_actions, noise=noise, time=time_).mean()

        loss, grads = jax.value_and_grad(loss_fn)(state)
        updates, opt_state = optimizer.update(grads, opt_state, state)
        return optax.apply_updates(state, updates), opt_state, loss

    jax_state = {"state": state, "opt": optimizer.init(state)}

    def run_jax():
        jax_state["state"], jax_state["opt"], loss = jax_step(jax_state["state"], jax_state["opt"])
        return float(jax.block_until_ready(loss))

    # PyTorch: the same weights, eager AdamW with clipping.
    torch_model = pi0_pytorch.PI0Pytorch(config, compile_mode="default" if args.torch_compile else None)
    weight_conversion.load_into(torch_model, weight_conversion.jax_to_torch(params)[0])
    torch_opt = torch.optim.AdamW(torch_model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=1e-10)
    torch_obs = observation(data, "torch")
    torch_actions, torch_noise, torch_time = (torch.from_numpy(data[k]) for k in ("actions", "noise", "time"))

    def run_torch():
        loss = torch_model(torch_obs, torch_actions, noise=torch_noise, time=torch_time).mean()
        torch_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(torch_model.parameters(), 1.0)
        torch_opt.step()
        return loss.item()

    tokens = 3 * (args.resolution // 16) ** 2 + config.max_token_len
    print(
        f"{'pi0.5' if args.pi05 else 'pi0'} dummy/dummy + mu/16, float32, batch {args.batch_size}, "
        f"{tokens} prefix tokens, horizon {args.action_horizon}; {args.steps} steps after 1 warm-up; "
        f"torch threads {args.torch_threads}, JAX devices {jax.devices()}"
    )
    rows = []
    for name, step in (("jax (jit)", run_jax), ("pytorch" + (" (compile)" if args.torch_compile else ""), run_torch)):
        first, times, loss = _timed(step, args.steps)
        rows.append((name, first, statistics.median(times), min(times), loss))
    jax_sample = jax.jit(lambda s: nnx.merge(graphdef, s).sample_actions(jax.random.key(0), jax_obs, noise=noise))
    sample_rows = [
        ("jax (jit)", lambda: jax.block_until_ready(jax_sample(jax_state["state"]))),
        ("pytorch", lambda: torch_model.sample_actions(torch_obs, noise=torch_noise)),
    ]
    print(f"{'train step':<22}{'first (s)':>12}{'median (s)':>12}{'min (s)':>10}{'last loss':>12}")
    for name, first, median, fastest, loss in rows:
        print(f"{name:<22}{first:>12.3f}{median:>12.4f}{fastest:>10.4f}{loss:>12.5f}")
    print(f"{'sample (10 steps)':<22}{'first (s)':>12}{'median (s)':>12}{'min (s)':>10}")
    for name, step in sample_rows:
        first, times, _ = _timed(lambda step=step: np.asarray(step()), max(args.steps // 2, 1))
        print(f"{name:<22}{first:>12.3f}{statistics.median(times):>12.4f}{min(times):>10.4f}")


if __name__ == "__main__":
    main(tyro.cli(Args))
