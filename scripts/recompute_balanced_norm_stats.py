"""Write openpi norm stats (``<output-dir>/<asset-id>/norm_stats.json``) whose action entry, with
``--balance-groups``, gives every action group the same scale after normalization.

    python scripts/recompute_balanced_norm_stats.py --config-name pi0_b1k_arm_focused \
        --output-dir assets/pi0_b1k_arm_focused --balance-groups --balance-by delta

``--balance-by std`` equalizes each group's RMS per-dim std, ``delta`` the RMS of its per-step change, both
measured after normalization; z-score (mean/std) and quantile (q01/q99) entries are both rescaled, so the
file works whichever normalization the config uses. Constant dims are left alone. Entries other than
``actions`` (e.g. ``state``) are copied from the base stats: the config's asset or ``--norm-stats-dir``,
else statistics computed from the parquet state and action columns (as ``scripts/compute_norm_stats.py``). Point the config at the result with ``--data.assets.asset-id balanced``. The math:
``openpi.analysis.balance``.
"""

import dataclasses
import json
import pathlib
from typing import Any

from openpi.analysis import balance
from openpi.analysis import common
from openpi.analysis import plots
from openpi.analysis import sources
from openpi.shared import normalize as _normalize


@dataclasses.dataclass(frozen=True)
class Args(sources.SourceArgs):
    output_dir: str = "assets"
    """Assets directory; the file goes to <output-dir>/<asset-id>/norm_stats.json."""
    asset_id: str = "balanced"
    balance_groups: bool = False
    """Rescale the action stats so that every group has the same normalized scale (else: copy them)."""
    balance_by: balance.BalanceBy = "std"
    target: float | None = None
    """Common normalized scale; default the geometric mean of the groups' current scales."""


def run(args: Args) -> dict[str, Any]:
    source = sources.resolve(args)
    table = sources.load_actions(source)
    all_stats, origin = sources.base_norm_stats(source)
    if "actions" not in all_stats:
        raise ValueError(f"The base norm stats ({origin}) have no 'actions' entry (keys: {sorted(all_stats)}).")
    stats = all_stats["actions"]
    groups = common.select_groups(common.data_groups(source.groups, table.num_dims), args.groups)
    out_dir = pathlib.Path(args.output_dir).expanduser() / args.asset_id
    summary: dict[str, Any] = {"base_stats": origin, "balanced": args.balance_groups, "groups": groups}
    if args.balance_groups:
        result = balance.balance_norm_stats(
            stats, balance.raw_scale(table, args.balance_by), groups, target=args.target
        )
        stats = result.stats
        summary |= {
            "balance_by": args.balance_by,
            "target": result.target,
            "factors": result.factors,
            "before": result.before,
            "after": result.after,
        }
        print(f"Balancing by {args.balance_by} (base stats: {origin})\n")
        print(balance.format_report(result, list(groups)))
        kind = "quantile" if source.use_quantiles else "zscore"
        summary["plot"] = str(
            plots.balance_plot(
                result.before[kind],
                result.after[kind],
                f"Group scale by {args.balance_by} ({kind})",
                out_dir / "balance.png",
            )
        )
    else:
        print(f"Not balancing (pass --balance-groups); writing the base action stats ({origin}).")
    all_stats["actions"] = stats
    path = _normalize.save(out_dir, all_stats)
    (out_dir / "balance_report.json").write_text(json.dumps(summary, indent=2))
    print(f"Wrote {path}")
    summary["path"] = str(path)
    return summary


def main() -> None:
    sources.tool_main(Args, run, __doc__)


if __name__ == "__main__":
    main()
