"""Shared pieces of the reliability tests: a private, corruptible copy of the miniature B1K dataset with norm stats
for the demo config, and the CLI arguments of a tiny run on it."""

import pathlib
import shutil

import pytest

from openpi.datasets import stats as _stats
from openpi.policies import b1k_policy
from openpi.shared import normalize as _normalize
from openpi.training import config as _config

DEMO = "pi0_b1k_arm_focused_demo"


@pytest.fixture(scope="session")
def demo_stats(mini_v21):
    return _stats.compute_norm_stats(mini_v21, state_transform=b1k_policy.proprio_to_state, progress=False)


@pytest.fixture
def dataset(tmp_path, mini_v21) -> pathlib.Path:
    """A copy of the miniature dataset this test may break."""
    root = tmp_path / "data"
    shutil.copytree(mini_v21, root)
    return root


@pytest.fixture
def run(tmp_path, dataset, demo_stats, monkeypatch):
    """``(args, stats_dir)``: arguments of a 2-step demo run on ``dataset`` with norm stats in ``stats_dir``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    stats_dir = tmp_path / "assets" / DEMO / _config.DEMO_REPO_ID
    _normalize.save(stats_dir, demo_stats)
    args = [
        DEMO,
        "--exp-name=r",
        f"--data.root={dataset}",
        f"--assets-base-dir={tmp_path / 'assets'}",
        f"--checkpoint-base-dir={tmp_path / 'checkpoints'}",
        "--batch-size=2",
        "--num-train-steps=2",
        "--save-interval=1",
        "--log-interval=1",
        "--no-wandb-enabled",
    ]
    return args, stats_dir
