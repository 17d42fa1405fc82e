"""Evaluation of trained runs: offline on held-out episodes of a dataset (per-group errors, arm activity ratio,
gripper agreement, base velocity error; metrics in ``openpi.analysis.evaluation``), and closed loop in the
simulator (``openpi.sim.closed_loop``)."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import dataclasses
import json
import pathlib
from typing import Any

import numpy as np

from openpi.analysis import common
from openpi.analysis import evaluation as _evaluation
from openpi.analysis import plots
from openpi.analysis import sources
from openpi.policies import policy_config
from openpi.serving import chunking
from openpi.sim import closed_loop as _closed_loop
from openpi.sim import rollout
from openpi.training import config as _config


@dataclasses.dataclass(frozen=True)
class OfflineArgs(sources.SourceArgs):
    checkpoint: str | None = None
    """Trained checkpoint: a step directory (params/ from the JAX trainer or model.safetensors from the PyTorch
    one, with assets/) or an experiment directory (its latest step). Needs the run's --config-name."""
    tasks: str = ""
    """Comma-separated task names (B1K task_name, task string or index); default every task."""
    num_episodes: int = 5
    """Held-out episodes per task."""
    stride: int | None = None
    """Frames between evaluated chunk starts; default the action horizon."""
    batch_size: int = 16
    output_dir: str = "eval_results"


def offline(args: OfflineArgs, predict: _evaluation.Predict | None = None) -> dict[str, Any]:
    """Evaluates the checkpoint on held-out episodes (per task, the last ``num_episodes`` not in the config's
    training list) and writes eval.json, eval.md and eval_eval.png under ``output_dir``; returns the report.
    ``predict`` replaces the checkpoint's policy (tests, custom policies)."""
    if predict is None:
        sources.check_checkpoint(args.checkpoint)
    source = sources.resolve(args, policy_outputs=True)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    candidates = sources.select_tasks(source.meta, tasks) if tasks else source.meta.episode_indices
    episodes = sources.heldout_episodes(source, candidates, args.num_episodes)
    observation_fn = _evaluation.id_observations
    if predict is None:
        predict, observation_fn = sources.load_policy(source, args.checkpoint)
        if args.norm_stats_dir is None:
            source = sources.with_checkpoint_norm_stats(source, args.checkpoint)
    table = sources.load_actions(source, episodes)
    stats, origin = sources.load_norm_stats(source, table)
    groups = common.select_groups(common.data_groups(source.groups, table.num_dims), args.groups)
    report = _evaluation.evaluate(
        predict,
        table,
        groups,
        stats,
        use_quantiles=source.use_quantiles,
        horizon=source.horizon,
        roles=source.roles,
        stride=args.stride,
        batch_size=args.batch_size,
        observation_fn=observation_fn,
        progress=True,
    )
    report |= {"checkpoint": args.checkpoint, "episodes": episodes, "norm_stats": origin, "dataset": str(source.root)}
    out = pathlib.Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(report, indent=2))
    markdown = _evaluation.markdown_summary(report)
    (out / "eval.md").write_text(markdown)
    report["plots"] = [str(p) for p in plots.eval_plots(report, out / "eval")]
    print(markdown)
    print(f"Wrote {out / 'eval.json'}, {out / 'eval.md'} and {', '.join(report['plots'])}")
    return report


def _run_args(config: _config.TrainConfig, root: pathlib.Path, norm_stats_dir: pathlib.Path) -> OfflineArgs:
    """A run's source: its registered config (model and transforms; training settings do not enter) on ``root``,
    errors normalized with the stats in ``norm_stats_dir``."""
    return OfflineArgs(config_name=config.name, root=str(root), norm_stats_dir=str(norm_stats_dir))


def offline_run(
    config: _config.TrainConfig,
    checkpoint: pathlib.Path,
    *,
    root: pathlib.Path,
    norm_stats_dir: pathlib.Path,
    heldout_per_task: int,
    stride: int,
    output_dir: pathlib.Path,
) -> dict[str, Any]:
    """`offline` for a trained run of a comparison: the last ``heldout_per_task`` episodes of every task."""
    args = dataclasses.replace(
        _run_args(config, root, norm_stats_dir),
        checkpoint=str(checkpoint),
        num_episodes=heldout_per_task,
        stride=stride,
        output_dir=str(output_dir),
    )
    return offline(args)


def chunk_predictor(
    config: _config.TrainConfig, checkpoint: pathlib.Path, *, root: pathlib.Path, norm_stats_dir: pathlib.Path
) -> Callable[[int, int], np.ndarray]:
    """A trained run's ``predict(episode, frame) -> raw-unit action chunk [H, robot dims]`` on ``root``'s frames."""
    source = sources.resolve(_run_args(config, root, norm_stats_dir))
    predict, observation_fn = sources.load_policy(source, str(checkpoint))
    tasks = sources.episode_tasks(source.meta)

    def predict_chunk(episode: int, frame: int) -> np.ndarray:
        batch = observation_fn(np.array([episode]), np.array([frame]), [tasks[episode]])
        return np.asarray(predict(batch))[0]

    return predict_chunk


def closed_loop(
    config: _config.TrainConfig,
    checkpoint: pathlib.Path,
    tasks: Sequence[str],
    episodes: int,
    *,
    max_steps: int,
    execute_steps: int,
    denoising_steps: int,
    output_dir: pathlib.Path,
    suite: str = "metaworld",
    batch_size: int = _closed_loop.BATCH_SIZE,
) -> dict[str, Any]:
    """Runs the checkpoint in ``suite``'s simulator on ``episodes`` held-out layouts of every task, replanning every
    ``execute_steps`` actions (receding horizon), ``batch_size`` environments at a time; writes eval.json under
    ``output_dir`` and returns it."""
    trained = policy_config.create_trained_policy(config, checkpoint, num_steps=denoising_steps)
    chunking_config = chunking.ChunkingConfig(mode="receding", replan_every=execute_steps)
    _, evaluate, _ = _closed_loop.suite(suite)
    return evaluate(
        lambda _task_or_env: rollout.model_policy(trained, chunking_config),
        tasks,
        episodes,
        max_steps=max_steps,
        output_dir=output_dir,
        batch_size=batch_size,
    )
