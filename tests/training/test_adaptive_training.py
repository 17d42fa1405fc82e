"""The ``adaptive`` strategy in both trainers: its state survives a resume (same losses and weights as an
uninterrupted run), and a 2-process DDP run computes the 1-process weights."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from openpi.training import config as _config
from openpi.training import jax_trainer
from openpi.training import pytorch_trainer

REPO = pathlib.Path(__file__).resolve().parents[2]
DEMO = "pi0_b1k_adaptive_demo"
REAL_GROUPS = ("base", "trunk", "left_arm", "right_arm", "grippers")


@pytest.fixture(scope="module")
def workdir(demo_run_dir):
    tmp, args = demo_run_dir(DEMO)
    args += [
        "--save-interval=3",
        "--no-wandb-enabled",
        # The weights leave 1 after two steps, so steps 4-6 of a resumed run depend on the restored state.
        "--model.adaptive-warmup-steps=2",
        "--model.adaptive-decay=0.5",
    ]
    return tmp, args


def _metrics(exp: pathlib.Path) -> dict[int, dict]:
    return {r["step"]: r for r in map(json.loads, (exp / "metrics.jsonl").read_text().splitlines())}


def _check_resume(train, args, prefix):
    full = _config.cli([DEMO, f"--exp-name={prefix}full", *args, "--num-train-steps=6"])
    train(full, progress=False)
    train(_config.cli([DEMO, f"--exp-name={prefix}part", *args, "--num-train-steps=3"]), progress=False)
    resumed = _config.cli([DEMO, f"--exp-name={prefix}part", "--resume", *args, "--num-train-steps=6"])
    train(resumed, progress=False)
    expected, got = _metrics(full.checkpoint_dir), _metrics(resumed.checkpoint_dir)
    weights = np.array([[expected[s][f"weight/{g}"] for g in REAL_GROUPS] for s in (4, 5, 6)])
    assert np.abs(weights - 1.0).max() > 1e-3  # the state is active, so losing it would change the losses
    for step in (4, 5, 6):
        for key in ("loss", *(f"weight/{g}" for g in REAL_GROUPS)):
            assert abs(got[step][key] - expected[step][key]) <= 1e-5, (step, key, got[step][key], expected[step][key])
    return expected


def test_jax_resume_reproduces_the_adaptive_losses_and_weights(workdir):
    _check_resume(jax_trainer.train, workdir[1], "jax_")


def test_pytorch_resume_and_ddp_reproduce_the_adaptive_losses_and_weights(workdir):
    tmp, args = workdir
    expected = _check_resume(pytorch_trainer.train, args, "pt_")
    metadata = torch.load(tmp / "checkpoints" / DEMO / "pt_full" / "6" / "metadata.pt", weights_only=True)
    assert float(metadata["loss_balance"]["steps"]) == 6.0

    torchrun = pathlib.Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", str(REPO / "scripts" / "train_pytorch.py"), DEMO,
           "--exp-name=ddp", *args, "--num-train-steps=4"]
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO / "src")}  # this checkout's openpi
    result = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    ddp = _metrics(tmp / "checkpoints" / DEMO / "ddp")
    # Step 3 uses weights from the group losses of steps 1-2, all-reduced over both ranks' halves of the batch.
    for step in (3, 4):
        for key in ("loss", *(f"weight/{g}" for g in REAL_GROUPS)):
            assert abs(ddp[step][key] - expected[step][key]) <= 1e-4, (step, key, ddp[step][key], expected[step][key])
