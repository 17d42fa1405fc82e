"""Training data-loader throughput: three decoded cameras resized to 224×224, worker processes, shuffled.

Writes a miniature B1K dataset with video (``--image-size`` pixels, hevc, keyframe every ``--gop`` frames),
then times the full B1K training pipeline (decode 3 cameras, repack, B1KInputs, normalize, resize to 224,
tokenize, pad) through `openpi.training.data_loader`: the data config of ``pi05_b1k_demo`` at 224 px, as the
trainer builds it. Run: ``python benchmarks/data_loader.py``.
"""

import dataclasses
import pathlib
import tempfile
import time

import tyro

from openpi.datasets import mini_b1k
from openpi.datasets import stats as _stats
from openpi.policies import b1k_policy
from openpi.shared import normalize as _normalize
from openpi.training import config as _config
from openpi.training import data_loader as _dl


@dataclasses.dataclass(frozen=True)
class Args:
    episodes: int = 8
    frames_per_episode: int = 300
    image_size: int = 96
    """Resolution the videos are written at (B1K: 720 head, 480 wrists)."""
    gop: int = 30
    """Keyframe interval of the written videos (B1K uses 250; larger means longer decodes after a seek)."""
    batch_size: int = 32
    num_workers: int = 2
    batches: int = 20
    framework: str = "numpy"
    root: pathlib.Path | None = None


def main(args: Args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or pathlib.Path(tmp) / "mini_b1k_video"
        config = mini_b1k.MiniB1KConfig(
            root=root,
            num_tasks=2,
            episodes_per_task=-(-args.episodes // 2),
            frames_per_episode=args.frames_per_episode,
            image_size=args.image_size,
            gop=args.gop,
            overwrite=True,
        )
        start = time.perf_counter()
        mini_b1k.write_mini_b1k(config, progress=False)
        print(
            f"wrote {config.num_tasks * config.episodes_per_task} episodes with video in {time.perf_counter() - start:.1f}s"
        )
        norm_stats = _stats.compute_norm_stats(root, state_transform=b1k_policy.proprio_to_state, progress=False)
        train_config = _config.cli([
            "pi05_b1k_demo", f"--data.root={root}", f"--assets-base-dir={tmp}/assets", "--model.image-resolution",
            "224", "224", f"--batch-size={args.batch_size}", f"--num-workers={args.num_workers}",
        ])  # fmt: skip
        _normalize.save(train_config.assets_dirs / _config.DEMO_REPO_ID, norm_stats)
        data_config = train_config.data_config()
        loader = _dl.create_data_loader(
            train_config, data_config, framework=args.framework, output="dict", num_batches=args.batches + 1
        )
        iterator = iter(loader)
        first = next(iterator)  # worker start-up is not part of the rate
        start = time.perf_counter()
        samples = sum(len(batch["state"]) for batch in iterator)
        elapsed = time.perf_counter() - start
    shape = tuple(first["image"]["base_0_rgb"].shape)
    print(f"batch images {shape}, {args.num_workers} workers, source {args.image_size}px, GOP {args.gop}")
    print(f"{samples / elapsed:,.1f} training samples/s ({samples} samples in {elapsed:.1f}s)")


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__.split("\n\n")[0]))
