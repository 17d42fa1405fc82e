"""Time of each loss-weighting strategy relative to ``uniform`` (B=32, H=50, D=32), jitted JAX and torch.

Measures the loss (and its gradient w.r.t. the prediction, as in training) on random inputs with the R1Pro
layout. Run: ``python benchmarks/loss_weighting.py [--repeats N]``.
"""

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch
import tyro

from openpi.models import pi0_loss_utils as jlu
from openpi.models_pytorch import pi0_loss_utils_pytorch as tlu
from openpi.policies import b1k_policy
from openpi.shared import loss_weighting as lw

WEIGHTS = {"base": 1.0, "trunk": 2.0, "left_arm": 3.0, "right_arm": 3.0, "grippers": 2.5, "padding": 0.0}


@dataclasses.dataclass(frozen=True)
class Args:
    batch: int = 32
    horizon: int = 50
    dim: int = 32
    repeats: int = 200


def _weighting(strategy: str, dim: int) -> lw.LossWeighting:
    groups = b1k_policy.R1PRO_ACTION_GROUPS_COMBINED_GRIPPERS
    weights = WEIGHTS if strategy in ("per_group", "per_dimension") else None
    return lw.LossWeighting.create(strategy, dim, action_groups=groups, group_weights=weights)


def _best_time(fn, repeats: int) -> float:
    fn()  # warm-up / compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(args: Args) -> None:
    rng = np.random.default_rng(0)
    shape = (args.batch, args.horizon, args.dim)
    pred = rng.normal(size=shape).astype(np.float32)
    target = np.cumsum(rng.normal(scale=0.1, size=shape), axis=1).astype(np.float32)
    print(f"B={args.batch} H={args.horizon} D={args.dim}, median of {args.repeats} runs, loss + grad, with metrics")
    print(f"{'strategy':<15}{'jax (us)':>10}{'x uniform':>11}{'torch (us)':>12}{'x uniform':>11}")
    jv, ja = jnp.asarray(pred), jnp.asarray(target)
    tv, ta = torch.tensor(pred, requires_grad=True), torch.tensor(target)
    results = {}
    for strategy in lw.STRATEGIES:
        weighting = _weighting(strategy, args.dim)

        def jax_loss(v, a, weighting=weighting):
            loss, metrics = jlu.weighted_loss_and_metrics(weighting, (v - a) ** 2, a)
            return jnp.mean(loss), metrics

        jax_step = jax.jit(jax.value_and_grad(jax_loss, has_aux=True))
        t_jax = _best_time(lambda f=jax_step: jax.block_until_ready(f(jv, ja)), args.repeats)

        def torch_step(weighting=weighting):
            loss, _ = tlu.weighted_loss_and_metrics(weighting, (tv - ta) ** 2, ta)
            (grad,) = torch.autograd.grad(loss.mean(), tv)
            return grad

        t_torch = _best_time(torch_step, args.repeats)
        results[strategy] = (t_jax, t_torch)
    base_j, base_t = results["uniform"]
    for strategy, (tj, tt) in results.items():
        print(f"{strategy:<15}{tj * 1e6:>10.0f}{tj / base_j:>11.2f}{tt * 1e6:>12.0f}{tt / base_t:>11.2f}")


if __name__ == "__main__":
    main(tyro.cli(Args))
