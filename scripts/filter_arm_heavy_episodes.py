"""Select arm-heavy B1K data: an episode list (``--level episode``) or per-frame sampling weights that
oversample arm-heavy action chunks (``--level window``), for the data config's ``episodes_path`` /
``sample_weights_path``.

    python scripts/filter_arm_heavy_episodes.py --config-name pi0_b1k_arm_focused \
        --output-path assets/phase1_arm_heavy/arm_heavy_episodes.json
    python scripts/filter_arm_heavy_episodes.py --root ~/data/b1k --level window --use-annotations \
        --output-path assets/arm_heavy_weights.json

Episodes: arm motion = Σ|Δq| over both arms (rad) vs base motion = Σ‖v‖·dt; arm-heavy when arm ≥ ratio × base
and arm ≥ --min-arm-movement. Windows (action chunks): arm-heavy when non-navigation frames ≥ ratio ×
navigation frames (navigation: base command norm > --base-velocity). With --use-annotations the skill
annotations (``annotations/task-XXXX/episode_XXXXXXXX.json``) label the frames where present. Criteria:
``openpi.analysis.arm_heavy``; file formats: ``openpi.datasets.episode_files``. Reads only the parquet action column.
"""

import dataclasses
import pathlib
from typing import Any
from typing import Literal

import numpy as np

from openpi.analysis import arm_heavy
from openpi.analysis import sources
from openpi.datasets import episode_files


@dataclasses.dataclass(frozen=True)
class Args(sources.SourceArgs):
    output_path: str = "arm_heavy_episodes.json"
    arm_ratio_threshold: float = 1.5
    min_arm_movement: float = 0.1
    """Minimum arm motion (rad, both arms) of a selected episode or window."""
    level: Literal["episode", "window"] = "episode"
    use_annotations: bool = False
    horizon: int | None = None
    """Window length; default the config's action horizon (50 without a config)."""
    oversample: float = 3.0
    """Window level: sampling weight of an arm-heavy window (others 1)."""
    base_velocity: float = 1e-2
    """Window level: a frame counts as navigation when the base command norm exceeds this."""


def run(args: Args) -> dict[str, Any]:
    source = sources.resolve(args)
    criterion = arm_heavy.Criterion(
        arm_ratio_threshold=args.arm_ratio_threshold,
        min_arm_movement=args.min_arm_movement,
        horizon=args.horizon or source.horizon,
        oversample=args.oversample,
        base_velocity=args.base_velocity,
        use_annotations=args.use_annotations,
    )
    table = sources.load_actions(source)
    labels = sources.load_skill_labels(source.root, table) if args.use_annotations else None
    if labels is not None:
        print(f"Skill annotations found for {len(labels)} of {len(table.lengths)} episodes (motion used for the rest).")
    output = pathlib.Path(args.output_path)
    if args.level == "episode":
        selection = arm_heavy.select_episodes(table, criterion, labels=labels, roles=source.roles)
        episode_files.save_episode_list(output, selection, criterion=criterion, repo_id=source.repo_id)
        frames = int(sum(table.lengths[list(table.episode_index).index(e)] for e in selection.episodes))
        print(
            f"{len(selection.episodes)} of {len(table.lengths)} episodes are arm-heavy "
            f"({frames} of {len(table.actions)} frames). Wrote {output}"
        )
        return {"episodes": selection.episodes, "details": selection.details, "path": str(output)}
    weights = arm_heavy.window_weights(table, criterion, labels=labels, roles=source.roles)
    episode_files.save_sample_weights(output, weights, criterion=criterion, repo_id=source.repo_id)
    allw = np.concatenate(list(weights.values()))
    heavy = float(np.mean(allw > 1.0))
    share = float(allw[allw > 1.0].sum() / allw.sum())
    print(
        f"{heavy:.1%} of {len(allw)} windows are arm-heavy (weight {args.oversample}); they get {share:.1%} of the "
        f"sampling mass. Wrote {output}"
    )
    return {"weights": weights, "heavy_fraction": heavy, "path": str(output)}


def main() -> None:
    sources.tool_main(Args, run, __doc__)


if __name__ == "__main__":
    main()
