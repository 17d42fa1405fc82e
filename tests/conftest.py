"""Session-wide miniature B1K datasets, written once and shared by the dataset, loader and script tests."""

import pathlib

import pytest

from openpi.datasets import mini_b1k


def _write(tmp_path_factory, name: str, **kwargs) -> pathlib.Path:
    root = tmp_path_factory.mktemp("mini_b1k") / name
    config = mini_b1k.MiniB1KConfig(root=root, **kwargs)
    mini_b1k.write_mini_b1k(config, progress=False)
    return root


# Small on purpose: 2 tasks × 2 episodes × ~60 frames, 64×64 video.
MINI_KWARGS = dict(num_tasks=2, episodes_per_task=2, frames_per_episode=60, image_size=64, seed=7)


@pytest.fixture(scope="session")
def mini_v21(tmp_path_factory) -> pathlib.Path:
    """B1K's own layout: LeRobot v2.1, hevc."""
    return _write(tmp_path_factory, "v21", version="v2.1", codec="hevc", **MINI_KWARGS)


@pytest.fixture(scope="session")
def mini_v30(tmp_path_factory) -> pathlib.Path:
    """LeRobot v3.0 with several episodes per parquet/mp4 file (and two files), av1."""
    return _write(tmp_path_factory, "v30", version="v3.0", codec="av1", episodes_per_file=3, **MINI_KWARGS)


@pytest.fixture(scope="session")
def mini_dataset(request, mini_v21, mini_v30) -> pathlib.Path:
    """Parametrize with indirect=True and "v2.1" / "v3.0"."""
    return {"v2.1": mini_v21, "v3.0": mini_v30}[request.param]
