"""Offline evaluation of a trained policy on held-out episodes: per-group error (normalized and raw),
arm activity ratio, gripper open/close agreement and base velocity error, per task and overall.

    python scripts/eval_policy.py --config-name pi0_b1k_arm_focused --checkpoint checkpoints/.../30000 \
        --tasks turning_on_radio,picking_up_trash --num-episodes 5

Writes ``eval.json``, ``eval.md`` and ``eval_eval.png`` under ``--output-dir``. Held-out episodes: per task,
the last ``--num-episodes`` episodes not in the config's training episode list. Normalized errors use the
checkpoint's norm stats (unless ``--norm-stats-dir`` is given). Metrics: ``openpi.analysis.evaluation``.
"""

import dataclasses
import json
import pathlib
from typing import Any

from openpi.analysis import common
from openpi.analysis import evaluation
from openpi.analysis import plots
from openpi.analysis import sources


@dataclasses.dataclass(frozen=True)
class Args(sources.SourceArgs):
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


def run(args: Args, predict: evaluation.Predict | None = None) -> dict[str, Any]:
    """The evaluation report; ``predict`` replaces the checkpoint's policy (tests, custom policies)."""
    if predict is None:
        sources.check_checkpoint(args.checkpoint)
    source = sources.resolve(args, policy_outputs=True)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    candidates = sources.select_tasks(source.meta, tasks) if tasks else source.meta.episode_indices
    episodes = sources.heldout_episodes(source, candidates, args.num_episodes)
    observation_fn = evaluation.id_observations
    if predict is None:
        predict, observation_fn = sources.load_policy(source, args.checkpoint)
        if args.norm_stats_dir is None:
            source = sources.with_checkpoint_norm_stats(source, args.checkpoint)
    table = sources.load_actions(source, episodes)
    stats, origin = sources.load_norm_stats(source, table)
    groups = common.select_groups(common.data_groups(source.groups, table.num_dims), args.groups)
    report = evaluation.evaluate(
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
    markdown = evaluation.markdown_summary(report)
    (out / "eval.md").write_text(markdown)
    report["plots"] = [str(p) for p in plots.eval_plots(report, out / "eval")]
    print(markdown)
    print(f"Wrote {out / 'eval.json'}, {out / 'eval.md'} and {', '.join(report['plots'])}")
    return report


def main() -> None:
    sources.tool_main(Args, run, __doc__)


if __name__ == "__main__":
    main()
