"""Closed-loop success of a trained policy (or the scripted expert) in the Meta-World simulator or on the
mobile manipulator (``--suite mobile``, openpi.sim.mobile_env).

    python scripts/eval_closed_loop.py --policy expert --tasks push-v3 --episodes 5
    python scripts/eval_closed_loop.py --config-name metaworld_demo --checkpoint checkpoints/metaworld_demo/exp \\
        --tasks reach-v3 push-v3 pick-place-v3 --episodes 20
    python scripts/eval_closed_loop.py --suite mobile --policy expert --episodes 20
    python scripts/eval_closed_loop.py --suite mobile --config-name mobile_demo \\
        --checkpoint checkpoints/mobile_demo/exp --episodes 20

Runs every task on held-out layouts (seeds from openpi.sim.dataset.EVAL_SEED_START, disjoint from the
training data's), and writes ``eval.json`` (per task: success rate, 95% Wilson interval, steps to success,
every episode), ``eval.md`` and filmstrip PNGs of a success and a failure to ``--output-dir``. A model
predicts action chunks, executed by the serving stack's chunk executor (``openpi.serving.chunking``, as
``scripts/serve_policy.py`` runs them): ``--mode receding`` executes ``--execute-steps`` of each chunk, then
replans; ``ensemble`` and ``prefix`` are the server's other modes. The mobile suite scores navigation,
manipulation and overall success per episode and the arm activity ratio against the expert (see
openpi.sim.closed_loop.evaluate_mobile).
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Literal

import tyro

from openpi.policies import policy_config
from openpi.serving import chunking
from openpi.shared import cli
from openpi.shared import compile_cache
from openpi.sim import closed_loop
from openpi.sim import metaworld_env  # sets MUJOCO_GL=egl (headless) before anything imports MuJoCo
from openpi.sim import mobile_env
from openpi.sim import mobile_expert
from openpi.sim import rollout
from openpi.training import config as _config

# Per suite: its environment module (tasks, action dim) and the step limit of an episode.
SUITES = {"metaworld": (metaworld_env, 150), "mobile": (mobile_env, 200)}


@dataclasses.dataclass(frozen=True)
class Args:
    suite: Literal["metaworld", "mobile"] = "metaworld"
    """The simulator: Meta-World's fixed Sawyer, or the mobile manipulator (drive, then manipulate)."""
    policy: Literal["model", "expert"] = "model"
    """A trained checkpoint (--config-name, --checkpoint) or the suite's scripted expert (the reference)."""
    config_name: str | None = None
    """Training config of the checkpoint (e.g. metaworld_demo): a registered name, path/to/file.py:NAME or
    package.module:NAME; TrainConfig overrides the run was trained with follow the tool's own options."""
    config_overrides: tyro.conf.Suppress[tuple[str, ...]] = ()
    checkpoint: str | None = None
    """Step directory, or an experiment directory (its latest step)."""
    tasks: tuple[str, ...] | None = None
    """Tasks to run; default every task of the suite."""
    episodes: int = 10
    """Held-out layouts per task."""
    max_steps: int | None = None
    """Step limit of an episode; default the suite's (150 Meta-World, 200 mobile)."""
    image_size: int = 64
    """Camera size; the training data's (openpi.sim.dataset default 64)."""
    mode: Literal["receding", "ensemble", "prefix"] = "receding"
    """Chunk execution (see openpi.serving.chunking): receding horizon, temporal ensembling, prefix-conditioned."""
    execute_steps: int | None = None
    """Actions executed per predicted chunk before replanning; default half the model's action horizon."""
    denoising_steps: int = 10
    """Flow-matching integration steps per chunk."""
    framework: Literal["jax", "pytorch"] | None = None
    """Runtime of the model; default the framework that wrote the checkpoint."""
    batch_size: int = closed_loop.BATCH_SIZE
    """Environments stepped together, with one batched model call per step for those that replan (1: one
    episode at a time, the fastest for the tiny simulator models on a CPU; more for a large model). Same
    episodes either way, up to the float rounding of batched calls."""
    output_dir: str = "eval_closed_loop"


def make_policy_factory(args: Args):
    """``task name -> StepPolicy`` (Meta-World) or ``MobileEnv -> StepPolicy`` (mobile)."""
    if args.policy == "expert":
        if args.suite == "mobile":
            return mobile_expert.Expert
        return metaworld_env.Expert
    if not args.config_name or not args.checkpoint:
        raise ValueError("--policy model needs --config-name and --checkpoint (or use --policy expert).")
    train_config = _config.get_config(args.config_name, args.config_overrides)
    env_module = SUITES[args.suite][0]
    action_dim = train_config.data_config().robot_action_dim
    if action_dim != env_module.ACTION_DIM:
        raise ValueError(
            f"Config {args.config_name!r} drives a robot with {action_dim} action dims; the {args.suite} suite's robot "
            f"has {env_module.ACTION_DIM}. Give a checkpoint trained for this simulator (e.g. --config-name "
            f"{'mobile_demo' if args.suite == 'mobile' else 'metaworld_demo'}) or the matching --suite."
        )
    trained = policy_config.create_trained_policy(
        train_config, args.checkpoint, num_steps=args.denoising_steps, framework=args.framework
    )
    horizon = train_config.model.action_horizon
    chunking_config = chunking.ChunkingConfig(mode=args.mode, replan_every=args.execute_steps or max(1, horizon // 2))
    return lambda _task_or_env: rollout.model_policy(trained, chunking_config, horizon=horizon)  # one per env


def main(args: Args) -> dict:
    if args.episodes < 1:
        raise ValueError(f"--episodes must be at least 1, got {args.episodes}.")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1 (1: one environment at a time), got {args.batch_size}.")
    env_module, default_steps = SUITES[args.suite]
    tasks = args.tasks or env_module.DEFAULT_TASKS
    for name in tasks:  # every task checked before the first episode, so a late typo loses no finished results
        env_module.task(name)
    _, evaluate, render = closed_loop.suite(args.suite)
    report = evaluate(
        make_policy_factory(args),
        tasks,
        args.episodes,
        image_size=args.image_size,
        max_steps=args.max_steps or default_steps,
        output_dir=pathlib.Path(args.output_dir),
        batch_size=args.batch_size,
    )
    report["args"] = dataclasses.asdict(args)
    print(render(report))
    print(f"Written to {pathlib.Path(args.output_dir).resolve()} (eval.json, eval.md, filmstrips).")
    return report


if __name__ == "__main__":
    # ImportError: the sim extra is missing (the message names the install command).

    def run() -> None:
        compile_cache.enable()  # the sampler of a model structure compiled once, read back by later evaluations
        args, overrides = tyro.cli(Args, description=__doc__, return_unknown_args=True)
        main(_config.with_config_overrides(args, overrides))

    cli.run_main(run, user_errors=(ImportError,))
