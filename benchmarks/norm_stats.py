"""Norm-stats throughput: the parquet fast path vs iterating the training data loader.

Writes a no-video miniature B1K dataset of ``--frames`` frames (default 200k), then times
`openpi.experiments.norm_stats.compute` (state and action columns only, vectorized B1K state transform)
over all of it, and the data loader over ``--loader-frames`` frames: ``pi05_b1k_demo``'s own repack and robot
transforms (B1KInputs, per sample), its cameras left out as the dataset has none.
Prints frames/s of both and their ratio (target >= 50x). Run: ``python benchmarks/norm_stats.py``.
"""

import dataclasses
import pathlib
import tempfile
import time

import tyro

from openpi import transforms as _transforms
from openpi.datasets import mini_b1k
from openpi.experiments import norm_stats
from openpi.training import config as _config
from openpi.training import data_loader as _dl


@dataclasses.dataclass(frozen=True)
class Args:
    frames: int = 200_000
    frames_per_episode: int = 1000
    loader_frames: int = 10_000
    """Frames the data loader iterates for its rate (it is too slow to read all of them)."""
    batch_size: int = 256
    num_workers: int = 2
    action_horizon: int = 50
    repeats: int = 3
    """Fast-path runs; the best is reported (the first one also pays imports and a cold page cache)."""
    root: pathlib.Path | None = None
    """Keep the dataset here (default: a temporary directory)."""


def main(args: Args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or pathlib.Path(tmp) / "mini_b1k_200k"
        episodes = -(-args.frames // args.frames_per_episode)
        config = mini_b1k.MiniB1KConfig(
            root=root,
            num_tasks=4,
            episodes_per_task=-(-episodes // 4),
            frames_per_episode=args.frames_per_episode,
            length_jitter=0.0,
            video=False,
            overwrite=True,
        )
        start = time.perf_counter()
        mini_b1k.write_mini_b1k(config, progress=False)
        write_s = time.perf_counter() - start
        total = config.num_tasks * config.episodes_per_task * config.frames_per_episode
        print(f"wrote {total} frames (no video) in {write_s:.1f}s")

        # What scripts/compute_norm_stats.py computes for pi05_b1k_demo on this dataset.
        recipe = norm_stats.for_config(_config.get_config("pi05_b1k_demo"), root=root, action_horizon=args.action_horizon)
        fast_times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            norm_stats.compute(recipe, progress=False)
            fast_times.append(time.perf_counter() - start)
        fast_s = min(fast_times)
        fast_rate = total / fast_s

        transforms = _camera_free_pipeline(root, pathlib.Path(tmp) / "assets")
        loader_rates = {
            "in-memory columns (selection fits the preload budget)": _loader_rate(root, transforms, args, 2**30),
            "episode streaming (B1K scale: columns exceed the budget)": _loader_rate(root, transforms, args, 0),
        }

    runs = ", ".join(f"{t:.2f}s" for t in fast_times)
    print(f"fast path (parquet columns): {fast_rate:,.0f} frames/s (best of {runs} for {total} frames)")
    for name, rate in loader_rates.items():
        print(f"data loader, {name}, {args.num_workers} workers, shuffled: {rate:,.0f} frames/s")
        print(f"  ratio: {fast_rate / rate:.0f}x (target >= 50x)")


def _camera_free_pipeline(root: pathlib.Path, assets: pathlib.Path) -> list[_transforms.DataTransformFn]:
    """The input transforms of ``pi05_b1k_demo``'s data config up to the robot's (repack, B1KInputs), without its
    cameras; no norm stats are written yet, so there is nothing to normalize."""
    config = _config.get_config("pi05_b1k_demo")
    data_config = dataclasses.replace(config.data, root=str(root)).create(assets, config.model)
    (repack,) = data_config.repack_transforms.inputs
    structure = {key: value for key, value in repack.structure.items() if key != "images"}
    return [_transforms.Repack(structure), *data_config.data_transforms.inputs]


def _loader_rate(
    root: pathlib.Path, transforms: list[_transforms.DataTransformFn], args: Args, preload_max_bytes: int
) -> float:
    """Frames/s of the B1K data loader without video (state + action chunks, per-sample transforms)."""
    loader = _dl.create_lerobot_data_loader(
        root=root,
        transforms=transforms,
        action_horizon=args.action_horizon,
        batch_size=args.batch_size,
        camera_keys=(),
        preload_max_bytes=preload_max_bytes,
        num_workers=args.num_workers,
        framework="numpy",
        output="dict",
        num_batches=max(2, args.loader_frames // args.batch_size),
    )
    iterator = iter(loader)
    next(iterator)  # worker start-up (and preloading) is not part of the rate
    start = time.perf_counter()
    seen = sum(len(batch["state"]) for batch in iterator)
    return seen / (time.perf_counter() - start)


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__.split("\n\n")[0]))
