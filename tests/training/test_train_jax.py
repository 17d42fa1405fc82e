"""The JAX trainer end to end on the miniature B1K dataset: CLI run, wandb contents, crash + resume, curriculum
weights, a non-B1K robot, NaN stop, and a 2-device FSDP run."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from openpi.analysis import arm_heavy
from openpi.datasets import stats as _stats
from openpi.policies import b1k_policy
from openpi.shared import normalize as _normalize
from openpi.training import config as _config
from openpi.training import jax_trainer
from openpi.training import run_utils
from openpi.training import sharding as _sharding

REPO = pathlib.Path(__file__).resolve().parents[2]
TRAIN = REPO / "scripts" / "train.py"


@pytest.fixture
def workdir(tmp_path, mini_v21, monkeypatch):
    """A run directory with norm stats for the demo configs, and the CLI arguments that point at it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    stats = _stats.compute_norm_stats(mini_v21, state_transform=b1k_policy.proprio_to_state, progress=False)
    for name in ("pi0_b1k_arm_focused_demo", "phase1_arm_heavy_demo", "phase2_full_demo"):
        _normalize.save(tmp_path / "assets" / name / _config.DEMO_REPO_ID, stats)
    args = [
        f"--data.root={mini_v21}",
        f"--assets-base-dir={tmp_path / 'assets'}",
        f"--checkpoint-base-dir={tmp_path / 'checkpoints'}",
        "--batch-size=4",
        "--log-interval=1",
    ]
    return tmp_path, args


def _losses(path: pathlib.Path) -> dict[int, float]:
    """Step → loss from metrics.jsonl; a step logged twice (before a crash and after resuming) keeps the last."""
    return {r["step"]: r["loss"] for r in map(json.loads, path.read_text().splitlines())}


def test_cli_trains_writes_checkpoint_and_per_group_wandb_metrics(workdir, read_wandb_run):
    tmp, args = workdir
    cmd = [sys.executable, str(TRAIN), "--config-name=pi0_b1k_arm_focused_demo", "--exp-name=t", "--overwrite",
           *args, "--num-train-steps=24", "--save-interval=12"]
    subprocess.run(cmd, check=True, timeout=600, cwd=tmp, env={**os.environ})
    exp = tmp / "checkpoints" / "pi0_b1k_arm_focused_demo" / "t"
    losses = _losses(exp / "metrics.jsonl")
    first, last = np.mean([losses[s] for s in range(1, 5)]), np.mean([losses[s] for s in range(21, 25)])
    assert last < first, (first, last)
    assert run_utils.step_dirs(exp) == [24]
    assert (exp / "24" / "assets" / _config.DEMO_REPO_ID / "norm_stats.json").exists()
    assert (exp / "24" / "params").is_dir() and (exp / "24" / "train_state").is_dir()

    (run_dir,) = (tmp / "wandb").glob("offline-run-*")
    config, tags, history = read_wandb_run(run_dir)
    assert config["loss_weighting"]["strategy"] == "per_group" and "per_group" in tags
    assert config["loss_weighting"]["group_weights"]["left_arm"] == 3.0
    assert config["loss_weighting"]["action_groups"]["grippers"] == "[14, 22]"
    logged = history[-1]
    for group in ("base", "trunk", "left_arm", "right_arm", "grippers"):
        for key in ("loss", "loss_share", "weight"):
            assert np.isfinite(logged[f"{key}/{group}"])
    assert {"learning_rate", "grad_norm", "param_norm", "step_time", "samples_per_sec"} <= set(logged)
    assert abs(sum(logged[f"loss_share/{g}"] for g in ("base", "trunk", "left_arm", "right_arm", "grippers",
                                                          "padding")) - 1) < 1e-4


def test_sigkill_then_resume_matches_an_uninterrupted_run(workdir):
    tmp, args = workdir
    steps = ["--num-train-steps=10", "--save-interval=4"]
    reference = _config.cli(["pi0_b1k_arm_focused_demo", "--exp-name=ref", *args, *steps])
    jax_trainer.train(reference, progress=False)
    expected = _losses(reference.checkpoint_dir / "metrics.jsonl")

    cmd = [sys.executable, str(TRAIN), "pi0_b1k_arm_focused_demo", "--exp-name=crash", *args, *steps]
    exp = tmp / "checkpoints" / "pi0_b1k_arm_focused_demo" / "crash"
    process = subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 400
    while 8 not in run_utils.step_dirs(exp) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    completed = run_utils.step_dirs(exp)
    assert completed and max(completed) < 10, completed
    # A checkpoint being written when the process died is a temporary directory: it must never be loaded.
    (exp / "9.orbax-checkpoint-tmp-1").mkdir()
    resumed = _config.cli(["pi0_b1k_arm_focused_demo", "--exp-name=crash", "--resume", *args, *steps])
    jax_trainer.train(resumed, progress=False)
    got = _losses(exp / "metrics.jsonl")
    assert sorted(got) == list(range(1, 11))
    for step in range(max(completed) + 1, 11):
        assert abs(got[step] - expected[step]) <= 1e-5, (step, got[step], expected[step])


def test_phase2_starts_from_phase1_weights(workdir, mini_v21):
    tmp, args = workdir
    arm_heavy.save_episode_list(
        tmp / "assets" / "phase1_arm_heavy_demo" / "arm_heavy_episodes.json",
        arm_heavy.EpisodeSelection(episodes=[10, 10010], details={}),
        criterion=arm_heavy.Criterion(),
    )
    phase1 = _config.cli(["phase1_arm_heavy_demo", "--exp-name=cur", *args, "--num-train-steps=2",
                          "--save-interval=2"])
    final = jax_trainer.train(phase1, progress=False)
    phase2 = _config.cli(["phase2_full_demo", "--exp-name=cur", *args])
    assert phase2.resume_from == "phase1_arm_heavy_demo/cur"
    init = jax_trainer._initial_params(phase2, run_utils.resolve_resume_from(phase2))
    state, _ = jax_trainer.init_train_state(phase2, _sharding.make_mesh(1), init_params=init)
    expected = jax.tree.leaves(final.params.to_pure_dict())
    got = jax.tree.leaves(state.params.to_pure_dict())
    assert len(expected) == len(got)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(expected, got, strict=True))
    fresh, _ = jax_trainer.init_train_state(phase2, _sharding.make_mesh(1))
    assert not all(np.array_equal(np.asarray(a), np.asarray(b))
                   for a, b in zip(jax.tree.leaves(fresh.params.to_pure_dict()), got, strict=True))
