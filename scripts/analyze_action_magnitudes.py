"""Per action group: raw and normalized magnitudes, motion, loss-weight shares under every strategy and
suggested group weights; with ``--checkpoint``, predicted vs true motion on held-out episodes.

    python scripts/analyze_action_magnitudes.py --config-name pi0_b1k_arm_focused --output out/magnitudes.json
    python scripts/analyze_action_magnitudes.py --root ~/data/mini_b1k --output out/magnitudes.json

Reads only the parquet action column (never video). Writes the JSON report, PNG plots next to it
(``<stem>_magnitudes.png``, ``<stem>_shares.png``) and prints a table. Figures are defined in
``openpi.analysis.magnitudes``.
"""

import dataclasses
import json
import pathlib
from typing import Any

from openpi.analysis import evaluation
from openpi.analysis import magnitudes
from openpi.analysis import plots
from openpi.analysis import sources


@dataclasses.dataclass(frozen=True)
class Args(sources.SourceArgs):
    output: str = "action_magnitudes.json"
    """JSON report path; plots go next to it."""
    checkpoint: str | None = None
    """Trained checkpoint: also compare predicted and true motion per group on held-out episodes."""
    num_eval_episodes: int = 2
    """With --checkpoint: held-out episodes per task."""
    max_chunks: int = 2048
    """Action chunks sampled for the weight shares."""
    max_weight_ratio: float = 100.0
    """Cap on suggested weights, as a multiple of the smallest one."""
    position_threshold: float = magnitudes.MotionThresholds.position
    """A joint group moves in a frame when some joint changes more than this (rad per step)."""
    velocity_threshold: float = magnitudes.MotionThresholds.velocity
    """The base moves in a frame when some |command| exceeds this."""
    seed: int = 0


def run(args: Args, predict: evaluation.Predict | None = None) -> dict[str, Any]:
    """The report (also written to ``args.output``); ``predict`` stands in for ``--checkpoint`` in tests."""
    if args.checkpoint is not None:
        sources.check_checkpoint(args.checkpoint)
    source = sources.resolve(args)
    table = sources.load_actions(source)
    stats, stats_origin = sources.load_norm_stats(source, table)
    report = magnitudes.analyze(
        table,
        source.groups,
        stats,
        use_quantiles=source.use_quantiles,
        horizon=source.horizon,
        roles=source.roles,
        configured=source.weighting,
        group_names=args.groups,
        thresholds=magnitudes.MotionThresholds(args.position_threshold, args.velocity_threshold),
        max_chunks=args.max_chunks,
        max_weight_ratio=args.max_weight_ratio,
        seed=args.seed,
    )
    report["dataset"] = str(source.root)
    report["config_name"] = source.config_name
    report["norm_stats"] = stats_origin
    if args.checkpoint is not None or predict is not None:
        observation_fn = evaluation.id_observations
        if predict is None:
            predict, observation_fn = sources.load_policy(source, args.checkpoint)
        held_out = sources.heldout_episodes(source, table.episode_index.tolist(), args.num_eval_episodes)
        sub = table.select([table.episode_index.tolist().index(e) for e in held_out])
        groups = {n: tuple(report["groups"][n]["dims"]) for n in report["groups"]}
        evaluated = evaluation.evaluate(
            predict,
            sub,
            groups,
            stats,
            use_quantiles=source.use_quantiles,
            horizon=source.horizon,
            roles=source.roles,
            observation_fn=observation_fn,
            progress=True,
        )
        report["prediction_episodes"] = held_out
        report["prediction"] = {
            n: {
                "pred_delta_rms": g["pred_delta_rms"],
                "true_delta_rms": g["true_delta_rms"],
                "ratio": g["motion_ratio"],
            }
            for n, g in evaluated["overall"]["groups"].items()
        }
    output = pathlib.Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    report["plots"] = [str(p) for p in plots.magnitude_plots(report, output.with_suffix(""))]
    print(magnitudes.format_table(report))
    print(f"\nNorm stats: {stats_origin}\nWrote {output} and {', '.join(report['plots'])}")
    return report


def main() -> None:
    sources.tool_main(Args, run, __doc__)


if __name__ == "__main__":
    main()
