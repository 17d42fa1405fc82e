"""How fast the analysis tools run on a large no-video miniature B1K dataset (default 200 episodes × 1000
frames = 200k frames): the analyzer and the arm-heavy filter (episode and window level), each end to end as
their scripts run them (read the action column, compute, write JSON; the analyzer also its plots).

    python benchmarks/tools_speed.py [--episodes-per-task 50 --num-tasks 4 --frames-per-episode 1000]
"""

import dataclasses
import importlib.util
import pathlib
import tempfile
import time

import tyro

from openpi.analysis import arm_heavy
from openpi.analysis import common
from openpi.analysis import magnitudes
from openpi.analysis import sources
from openpi.datasets import mini_b1k

SCRIPTS = pathlib.Path(__file__).resolve().parents[1] / "scripts"


@dataclasses.dataclass(frozen=True)
class Args:
    num_tasks: int = 4
    episodes_per_task: int = 50
    frames_per_episode: int = 1000
    root: str | None = None
    """Reuse (or keep) the dataset here instead of a temporary directory."""


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _timed(label: str, fn) -> float:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"  {label:<48}{seconds:8.2f} s")
    return seconds


def main(args: Args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(args.root or pathlib.Path(tmp) / "mini_b1k")
        if not (root / "meta" / "info.json").exists():
            config = mini_b1k.MiniB1KConfig(
                root=root,
                num_tasks=args.num_tasks,
                episodes_per_task=args.episodes_per_task,
                frames_per_episode=args.frames_per_episode,
                video=False,
            )
            _timed("write the dataset (no video)", lambda: mini_b1k.write_mini_b1k(config, progress=False))
        info = (root / "meta" / "info.json").read_text()
        frames = int(info.split('"total_frames": ')[1].split(",")[0])
        print(f"Dataset {root}: {frames} frames")
        out = pathlib.Path(tmp) / "out"
        analyze, filt = _script("analyze_action_magnitudes"), _script("filter_arm_heavy_episodes")
        source = sources.resolve(sources.SourceArgs(root=str(root)))
        table = None

        def read():
            nonlocal table
            table = sources.load_actions(source, progress=False)

        _timed("read the action column (column reader)", read)
        stats = common.data_norm_stats(table)
        _timed("magnitudes.analyze (core, no I/O)", lambda: magnitudes.analyze(table, source.groups, stats))
        _timed("arm_heavy.window_weights (core, no I/O)", lambda: arm_heavy.window_weights(table))
        t_a = _timed(
            "analyze_action_magnitudes (incl. plots)",
            lambda: analyze.run(analyze.Args(root=str(root), output=str(out / "mag.json"))),
        )
        t_e = _timed(
            "filter_arm_heavy_episodes --level episode",
            lambda: filt.run(filt.Args(root=str(root), output_path=str(out / "eps.json"))),
        )
        t_w = _timed(
            "filter_arm_heavy_episodes --level window --use-annotations",
            lambda: filt.run(
                filt.Args(root=str(root), output_path=str(out / "w.json"), level="window", use_annotations=True)
            ),
        )
        print(
            f"Summary ({frames} frames): analyzer {t_a:.2f} s, filter episode {t_e:.2f} s, window {t_w:.2f} s "
            f"({frames / max(t_a, 1e-9) / 1e3:.0f}k frames/s analyzer)."
        )


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
