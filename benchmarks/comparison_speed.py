"""Old vs new wall time of one strategy comparison (issue 26): 1 strategy x 2 seeds x the 3 Meta-World tasks,
each run trained with the simulator recipe (``openpi.experiments.sim_demo``) and evaluated in closed loop.

- old path: today's before issue 26 -- no compilation cache (every run compiles its train step and sampler),
  one environment at a time, every camera rendered every step;
- new path: the persistent compilation cache (``openpi.shared.compile_cache``, a fresh directory, so the first
  run still compiles), cameras rendered only for the observations the policy reads, and the evaluator's
  default batch (``closed_loop.BATCH_SIZE`` environments stepped together, one batched model call per
  replanning step; 1 as measured here).

Each path runs in a process of its own, one after the other in this run, on the same expert dataset. Then each
lever alone: the evaluation of one checkpoint with rendering on demand only, batching only and both; the second
run's training with and without the cache (from the paths); two seeds' models stacked and vmapped into one train
step against two single steps; the host's batch time against the train step; and the roofline of the train step: XLA's FLOP count over the step time, against a float32 matmul peak measured here.

Same computation, same outcome: the models of the two paths are trained alike, and rendering on demand changes no
action; batching changes no noise draw (a ``Policy`` starts every chunk from its seed's noise) but the float
rounding of batched model calls, so per-episode successes are equal or differ in a few episodes within intervals.
The report says which. Note the machine load beside the figures (it prints ``uptime``).

Run: ``python benchmarks/comparison_speed.py [--quick]`` (``--quick``: a short sanity run).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Literal

import numpy as np
import tyro

from openpi.sim import metaworld_env  # sets MUJOCO_GL=egl before MuJoCo is imported

TASKS = metaworld_env.DEFAULT_TASKS


@dataclasses.dataclass(frozen=True)
class Args:
    quick: bool = False
    """A short sanity run: 40 training steps, 4 layouts per task of at most 60 steps, 3 demos per task."""
    seeds: tuple[int, ...] = (0, 1)
    strategy: str = "uniform"
    output_dir: str | None = None
    """Dataset, checkpoints and evaluations; default a temporary directory."""
    batch_size: int = 10
    """Environments stepped together in the batching lever's rows (capped at the layouts per task)."""
    steps: int | None = None
    """Training steps per run; default the protocol's (1500; 40 with --quick)."""
    eval_episodes: int | None = None
    """Held-out layouts per task; default the protocol's (10; 4 with --quick)."""
    max_steps: int | None = None
    """Step limit of an episode; default the protocol's (150; 60 with --quick)."""
    path: Literal["both", "old", "new"] = "both"
    """Internal: the path a child process runs."""


@dataclasses.dataclass(frozen=True)
class Protocol:
    steps: int
    eval_episodes: int
    max_steps: int
    episodes_per_task: int


def protocol(args: Args) -> Protocol:
    base = (Protocol(steps=40, eval_episodes=4, max_steps=60, episodes_per_task=3) if args.quick
            else Protocol(steps=1500, eval_episodes=10, max_steps=150, episodes_per_task=20))
    overrides = {"steps": args.steps, "eval_episodes": args.eval_episodes, "max_steps": args.max_steps}
    return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})


def sim_args(args: Args, out: pathlib.Path):
    from openpi.experiments import sim_demo

    p = protocol(args)
    return sim_demo.SimArgs(strategies=(args.strategy,), tasks=TASKS, episodes_per_task=p.episodes_per_task,
                            steps=p.steps, eval_episodes=p.eval_episodes, max_steps=p.max_steps,
                            dataset_root=str(out / "data"))


def planned(args: Args, out: pathlib.Path, path: str):
    from openpi.experiments import sim_demo

    sim = sim_args(args, out)
    return sim, sim_demo.plan(sim, args.seeds, sim_demo.ensure_dataset(sim), out / path)


def evaluate(sim, run, *, batch_size: int, lazy: bool) -> tuple[float, dict[str, list[bool]]]:
    """Closed-loop evaluation of a run's checkpoint: (seconds, per-task episode successes)."""
    from openpi.policies import policy_config
    from openpi.serving import chunking
    from openpi.sim import closed_loop
    from openpi.sim import rollout

    class RenderEveryStep(rollout.ModelPolicy):
        def needs_images(self) -> bool:
            return True  # the old path: every observation rendered

    kind = rollout.ModelPolicy if lazy else RenderEveryStep
    start = time.perf_counter()
    trained = policy_config.create_trained_policy(run.config, run.checkpoint, num_steps=sim.denoising_steps)
    config = chunking.ChunkingConfig(replan_every=sim.execute_steps)
    report = closed_loop.evaluate(lambda _task: kind(trained, config), sim.tasks, sim.eval_episodes,
                                  max_steps=sim.max_steps, progress=False, batch_size=batch_size)
    return time.perf_counter() - start, {
        t: [e["success"] for e in entry["episodes"]] for t, entry in report["tasks"].items()
    }


def child(args: Args, out: pathlib.Path) -> None:
    """One path: train and evaluate every run; prints a JSON line of figures."""
    from openpi.experiments import runs
    from openpi.sim import closed_loop

    sim, plan = planned(args, out, args.path)
    new = args.path == "new"
    figures = []
    for run in plan:
        start = time.perf_counter()
        runs.train(run.config, "jax")
        trained = time.perf_counter() - start
        seconds, successes = evaluate(sim, run, batch_size=closed_loop.BATCH_SIZE if new else 1, lazy=new)
        figures.append({"seed": run.seed, "train_s": trained, "eval_s": seconds, "successes": successes,
                        "checkpoint": str(run.checkpoint)})
    print("RESULT " + json.dumps(figures), flush=True)


def run_path(args: Args, out: pathlib.Path, path: str, cache: str) -> tuple[float, list[dict]]:
    env = {**os.environ, "OPENPI_COMPILE_CACHE": cache, "WANDB_MODE": "offline", "WANDB_DIR": str(out)}
    command = [sys.executable, __file__, "--path", path, "--output-dir", str(out), "--seeds", *map(str, args.seeds),
               "--strategy", args.strategy, *(["--quick"] if args.quick else []),
               *[f"--{name.replace('_', '-')}={value}" for name in ("steps", "eval_episodes", "max_steps")
                 if (value := getattr(args, name)) is not None]]
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"The {path} path failed:\n{result.stderr[-3000:]}")
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    return wall, json.loads(line[len("RESULT "):])


def render_rates(replan_every: int, steps: int = 100) -> dict[str, tuple[float, float]]:
    """Env steps/s of each simulator at 64 px with a fixed action: (every observation rendered, one in
    ``replan_every``, as a chunk policy reads them)."""
    from openpi.sim import mobile_env

    rates = {}
    for name, make, action in (
        ("Meta-World push-v3", lambda: metaworld_env.MetaWorldEnv("push-v3", max_steps=10**6),
         lambda env: np.array([0.3, 0.1, 0.0, -1.0], np.float32)),
        ("mobile touch", lambda: mobile_env.MobileEnv("touch", max_steps=10**6),
         lambda env: np.concatenate([[0.3, 0.0, 0.1], env.arm_qpos, [-1.0]])),
    ):
        env, figures = make(), []
        for every in (1, replan_every):
            env.reset(0)
            fixed = action(env)
            start = time.perf_counter()
            for t in range(steps):
                env.step(fixed, render=(t + 1) % every == 0)
            figures.append(steps / (time.perf_counter() - start))
        env.close()
        rates[name] = tuple(figures)
    return rates


def median_seconds(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def batching_costs(sim, run, batch: int) -> dict[str, float]:
    """What batching trades: a model call at batch 1 and at ``batch`` (compiled), against building an environment."""
    from openpi.policies import policy_config
    from openpi.sim import rollout

    trained = policy_config.create_trained_policy(run.config, run.checkpoint, num_steps=sim.denoising_steps)
    env = metaworld_env.MetaWorldEnv("push-v3")
    obs = rollout.sim_observation(env.reset(0))
    env.close()
    costs = {}
    for b in (1, batch):
        trained.infer_batch([obs] * b)
        costs[f"call_{b}"] = median_seconds(lambda b=b: trained.infer_batch([obs] * b))
    costs["build"] = median_seconds(lambda: metaworld_env.MetaWorldEnv("push-v3").close(), repeats=3)
    return costs


def host_batch_time(config, batches: int = 10) -> float:
    """Median seconds the trainer's loader takes per batch on the host (what a step waits for without prefetch)."""
    from openpi.training import data_loader

    loader = iter(data_loader.create_data_loader(config, config.data_config()))
    next(loader)
    times = []
    for _ in range(batches):
        start = time.perf_counter()
        next(loader)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def train_step_parts(config):
    """The JAX train step of ``config`` jitted, with a fresh state, one batch and a key to call it on."""
    import functools

    import jax

    from openpi.models import model_inputs as _inputs
    from openpi.training import data_loader
    from openpi.training import jax_trainer
    from openpi.training import sharding as _sharding

    batch = next(iter(data_loader.create_data_loader(config, config.data_config(), output="dict", framework="numpy")))
    state, _ = jax_trainer.init_train_state(config, _sharding.make_mesh(1))
    return functools.partial(jax_trainer.train_step, config), jax.random.key(0), state, _inputs.to_model_inputs(
        batch, "jax")


def stacked_seeds(config, seeds: int = 2, repeats: int = 5) -> tuple[float, float]:
    """Seconds of one train step, and of one step of ``seeds`` models stacked and vmapped into one program: the
    several-seeds-in-one-process lever, which pays only if the step is bound by per-operation overhead."""
    import jax
    import jax.numpy as jnp

    step, rng, state, inputs = train_step_parts(config)
    stack = lambda tree: jax.tree.map(lambda leaf: jnp.stack([leaf] * seeds), tree)  # noqa: E731
    single = jax.jit(step).lower(rng, state, inputs).compile()
    stacked_args = (jax.random.split(rng, seeds), stack(state), stack(inputs))
    stacked = jax.jit(jax.vmap(step)).lower(*stacked_args).compile()
    times = []
    for fn, call_args in ((single, (rng, state, inputs)), (stacked, stacked_args)):
        jax.block_until_ready(fn(*call_args))
        times.append(median_seconds(lambda fn=fn, call_args=call_args: jax.block_until_ready(fn(*call_args)), repeats))
    return times[0], times[1]


def matmul_flops(jaxpr) -> int:
    """FLOPs of the matrix products and convolutions in ``jaxpr``, a scan's body counted once per iteration.

    XLA's cost analysis counts a loop's body once, and the model scans its layers, so it undercounts the step."""
    flops = 0
    for eqn in jaxpr.eqns:
        times = eqn.params["length"] if eqn.primitive.name == "scan" else 1
        inner = [p for p in eqn.params.values() if hasattr(p, "eqns") or hasattr(p, "jaxpr")]
        branches = [matmul_flops(b.jaxpr) for b in eqn.params.get("branches", ())]
        flops += times * sum(matmul_flops(getattr(p, "jaxpr", p)) for p in inner) + max(branches, default=0)
        out = eqn.outvars[0].aval.shape if eqn.outvars else ()
        if eqn.primitive.name == "dot_general":
            (contract, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            flops += 2 * math.prod(out) * math.prod(lhs[i] for i in contract)
        elif eqn.primitive.name == "conv_general_dilated":
            rhs = eqn.invars[1].aval.shape  # every output takes one multiply-add per kernel entry of its feature
            out_features = rhs[eqn.params["dimension_numbers"].rhs_spec[0]]
            flops += 2 * math.prod(out) * math.prod(rhs) // out_features
    return flops


def roofline(config, repeats: int = 5) -> dict[str, float]:
    """The train step's FLOPs per measured second, against a float32 matmul peak.

    FLOPs: its matrix products counted from the program (``matmul_flops``), and XLA's cost analysis for comparison."""
    import jax
    import jax.numpy as jnp

    step, rng, state, inputs = train_step_parts(config)
    flops = matmul_flops(jax.make_jaxpr(step)(rng, state, inputs).jaxpr)
    compiled = jax.jit(step).lower(rng, state, inputs).compile()
    cost = compiled.cost_analysis()
    xla_flops = float((cost[0] if isinstance(cost, list) else cost)["flops"])
    traffic = float((cost[0] if isinstance(cost, list) else cost)["bytes accessed"])
    entry = compiled.as_text().split("ENTRY", 1)[1]
    instructions = sum(" = " in line for line in entry.splitlines())  # each runs as its own small kernel
    jax.block_until_ready(compiled(rng, state, inputs))
    step_s = median_seconds(lambda: jax.block_until_ready(compiled(rng, state, inputs)), repeats)
    n = 2048
    a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n)), jnp.float32)
    matmul = jax.jit(jnp.dot)
    jax.block_until_ready(matmul(a, a))
    peak = 2 * n**3 / median_seconds(lambda: jax.block_until_ready(matmul(a, a)), repeats)
    held = {"x": jnp.ones(2**25, jnp.float32)}  # 128 MB read and written in place (no fresh pages to fault in)
    scale = jax.jit(lambda x: x * 0.999, donate_argnums=0)

    def stream() -> None:
        held["x"] = jax.block_until_ready(scale(held["x"]))

    stream()
    bandwidth = 2 * held["x"].nbytes / median_seconds(stream, repeats)
    # The model's own matmul shape: a batch of ~2k tokens through the width-64 -> 128 MLP of its "dummy" Gemma.
    x, w = jnp.ones((2048, 64), jnp.float32), jnp.ones((64, 128), jnp.float32)
    jax.block_until_ready(matmul(x, w))
    small = 2 * 2048 * 64 * 128 / median_seconds(lambda: jax.block_until_ready(matmul(x, w)), repeats)
    # Its attention's shape: batch 32 x 8 heads of [71 tokens, 16] x [16, 71] products (about half its FLOPs).
    queries = jnp.ones((32, 71, 8, 16), jnp.float32)
    logits = jax.jit(lambda q, k: jnp.einsum("bqhd,bkhd->bhqk", q, k))
    jax.block_until_ready(logits(queries, queries))
    attention = 2 * 32 * 8 * 71 * 71 * 16 / median_seconds(
        lambda: jax.block_until_ready(logits(queries, queries)), repeats)
    peak = max(peak, small)  # the best float32 matmul rate seen: on shared cores either shape may be slowed
    return {"flops": flops, "xla_flops": xla_flops, "bytes": traffic, "step_s": step_s, "achieved": flops / step_s, "peak": peak,
            "percent": 100 * flops / step_s / peak, "bandwidth": bandwidth,
            "memory_bound_s": traffic / bandwidth, "small_matmul": small, "attention_matmul": attention,
            "instructions": instructions}


def agreement(old: list[dict], new: list[dict]) -> str:
    """Whether the two paths' per-episode successes are equal, else how many episodes differ."""
    pairs = [(a, b) for o, n in zip(old, new, strict=True) for t in o["successes"]
             for a, b in zip(o["successes"][t], n["successes"][t], strict=True)]
    differ = sum(a != b for a, b in pairs)
    totals = sum(a for a, _ in pairs), sum(b for _, b in pairs)
    if not differ:
        return f"equal: every one of {len(pairs)} episodes has the same outcome ({totals[0]} successes)"
    return f"{differ} of {len(pairs)} episodes differ ({totals[0]} vs {totals[1]} successes)"


def main(args: Args) -> None:
    out = pathlib.Path(args.output_dir or tempfile.mkdtemp(prefix="comparison_speed_")).resolve()
    if args.path != "both":
        child(args, out)
        return
    from openpi.experiments import norm_stats

    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average); output {out}")
    sim = planned(args, out, "old")[0]  # writes the dataset once, outside the timed paths
    for path in ("old", "new"):
        norm_stats.write_all([r.config for r in planned(args, out, path)[1]], skip_existing=True, progress=False)
    old_wall, old = run_path(args, out, "old", "off")
    new_wall, new = run_path(args, out, "new", str(out / "xla_cache"))
    p = protocol(args)
    print(f"\n{len(args.seeds)} seeds x {len(TASKS)} tasks, {p.steps} training steps, {p.eval_episodes} layouts per task"
          f" (<= {p.max_steps} steps)\n")
    print("| path | wall (s) | train per run (s) | eval per run (s) |\n|---|---|---|---|")
    for name, wall, figures in (("old", old_wall, old), ("new", new_wall, new)):
        train, evals = (" / ".join(f"{f[key]:.0f}" for f in figures) for key in ("train_s", "eval_s"))
        print(f"| {name} | {wall:.0f} | {train} | {evals} |")
    print(f"\nspeed-up (old / new wall): {old_wall / new_wall:.2f}x; successes: {agreement(old, new)}")

    # Each lever alone. The cache: the second run's training without vs with it (the first new run filled it).
    if len(old) > 1:
        print(f"compilation cache: second run trains in {old[1]['train_s']:.0f} s without, {new[1]['train_s']:.0f} s "
              f"with ({old[1]['train_s'] - new[1]['train_s']:.0f} s saved per run)")
    run = planned(args, out, "new")[1][0]
    batch = min(args.batch_size, p.eval_episodes)
    variants = {"old: batch 1, render every step": (1, False), "render on demand": (1, True),
                f"batch {batch}, render every step": (batch, False),
                f"batch {batch} + render on demand": (batch, True)}
    evaluate(sim, run, batch_size=1, lazy=True)  # compiles the sampler's batch sizes before the timed variants
    evaluate(sim, run, batch_size=batch, lazy=True)
    seconds = {name: evaluate(sim, run, batch_size=b, lazy=lazy)[0] for name, (b, lazy) in variants.items()}
    base = seconds["old: batch 1, render every step"]
    print("\n| evaluation of one run | s | speed-up |\n|---|---|---|")
    for name, s in seconds.items():
        print(f"| {name} | {s:.1f} | {base / s:.2f}x |")
    costs = batching_costs(sim, run, batch)
    print(f"batching trades a model call ({1000 * costs['call_1']:.0f} ms at batch 1, {1000 * costs[f'call_{batch}']:.0f} "
          f"ms at batch {batch}) against building an environment ({costs['build']:.1f} s) per extra one and task")
    print("\n| simulator (64 px, 2 cameras) | steps/s, every step rendered | steps/s, rendered when read |\n|---|---|---|")
    for name, (every, lazy) in render_rates(sim.execute_steps).items():
        print(f"| {name} | {every:.0f} | {lazy:.0f} (every {sim.execute_steps}th step) |")
    single, stacked = stacked_seeds(run.config)
    print(f"\nseeds in one process: one train step {1000 * single:.0f} ms; two seeds' models stacked and vmapped "
          f"{1000 * stacked:.0f} ms a step, {2 * single / stacked:.2f}x the throughput of two steps one after the other")
    host = host_batch_time(run.config)
    line = roofline(run.config)
    print(f"\nhost batch time (loader, not prefetched): {1000 * host:.0f} ms per batch of {run.config.batch_size}")
    print(f"roofline: train step {line['flops'] / 1e9:.2f} GFLOP of matrix products ({line['xla_flops'] / 1e9:.2f} "
          f"in XLA's cost analysis, which counts each scanned layer stack once) in {1000 * line['step_s']:.0f} ms = "
          f"{line['achieved'] / 1e9:.1f} GFLOP/s; float32 matmul peak {line['peak'] / 1e9:.1f} GFLOP/s; "
          f"{line['percent']:.1f}% of peak. XLA's memory traffic {line['bytes'] / 1e9:.2f} GB "
          f"({line['flops'] / line['bytes']:.1f} FLOP/byte) at the measured {line['bandwidth'] / 1e9:.1f} GB/s takes "
          f"{1000 * line['memory_bound_s']:.0f} ms; the matmuls at peak {1000 * line['flops'] / line['peak']:.0f} ms; "
          f"a [2048, 64] x [64, 128] matmul (the model's MLP shape) runs at {line['small_matmul'] / 1e9:.1f} GFLOP/s "
          f"and its attention's 256 [71, 16] x [16, 71] products at {line['attention_matmul'] / 1e9:.1f} GFLOP/s; "
          f"the step runs {line['instructions']} XLA instructions "
          f"({1000 * line['step_s'] / line['instructions']:.2f} ms each on average)")
    print(f"load after: {os.getloadavg()[0]:.2f} (1-min average)")


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
