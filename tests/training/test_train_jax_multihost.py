"""The JAX trainer as a 2-process ``jax.distributed`` job on localhost (one CPU device per process, gloo
collectives): the losses of one process, a checkpoint written by both and resumed by one, and the stop when the
processes disagree."""

import json
import os
import pathlib
import subprocess
import sys

import flax.nnx as nnx
import jax
import numpy as np
import pytest

from openpi.models import model as _model
from openpi.training import config as _config
from openpi.training import jax_trainer
from openpi.training import run_utils

REPO = pathlib.Path(__file__).resolve().parents[2]
TRAIN = REPO / "scripts" / "train.py"
DEMO = "pi0_b1k_arm_focused_demo"


@pytest.fixture(scope="module")
def workdir(demo_run_dir):
    tmp, args = demo_run_dir(DEMO)
    return tmp, [*args, "--no-wandb-enabled"]


def _losses(exp: pathlib.Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in map(json.loads, (exp / "metrics.jsonl").read_text().splitlines())}


def _launch_two(tmp: pathlib.Path, port: int, args: list[str], per_process=([], [])) -> list:
    """Starts process 0 and 1 of a 2-process job on localhost; returns their completed results."""
    coordinator = f"--coordinator-address=127.0.0.1:{port}"
    # This checkout's code (not an installed copy), on the CPU backend.
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO / "src")}
    processes = [
        subprocess.Popen(
            [sys.executable, str(TRAIN), DEMO, *args, coordinator, "--num-processes=2", f"--process-id={i}", *extra],
            cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i, extra in enumerate(per_process)
    ]
    results = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=600)
            results.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    finally:  # a failed or timed-out launch leaves no process behind
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


def test_two_processes_match_one_and_one_process_resumes_their_checkpoint(workdir, free_port):
    tmp, args = workdir
    single = _config.cli([DEMO, "--exp-name=one", *args, "--num-train-steps=4", "--save-interval=100"])
    jax_trainer.train(single, progress=False)
    expected = _losses(single.checkpoint_dir)

    # FSDP over the two processes' devices: every large weight is split between the processes.
    results = _launch_two(tmp, free_port, [*args, "--exp-name=two", "--num-train-steps=2", "--save-interval=2",
                                "--fsdp-devices=2"])
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
    assert "'fsdp': 2} over 2 devices of 2 processes" in results[0].stderr
    assert "Mesh" not in results[1].stderr  # logs come from process 0 only
    exp = tmp / "checkpoints" / DEMO / "two"
    got = _losses(exp)
    assert sorted(got) == [1, 2]
    # Same global batches and noise. FSDP splits the matmuls over the two devices, which changes the float32
    # accumulation order: the losses differ by ~1e-5 (relative 5e-6); 1e-4 leaves a margin and still catches a
    # wrong batch slice or a missing gradient sum, which change the loss by > 1e-2.
    for step in (1, 2):
        assert abs(got[step] - expected[step]) <= 1e-4, (step, got[step], expected[step])
    assert run_utils.step_dirs(exp) == [2]
    # The params item (both processes' shards) reads back whole in one process, as openpi's loaders read it.
    params = _model.restore_params(exp / "2" / "params")
    shapes = jax.eval_shape(lambda: nnx.state(single.model.create(jax.random.key(0))).to_pure_dict())
    assert jax.tree.map(np.shape, params) == jax.tree.map(lambda x: x.shape, shapes)
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(params))

    # One process (one device, no FSDP) continues the 2-process checkpoint: the sharded arrays are re-laid out.
    resumed = _config.cli([DEMO, "--exp-name=two", "--resume", *args, "--num-train-steps=4", "--save-interval=100"])
    jax_trainer.train(resumed, progress=False)
    got = _losses(exp)
    assert sorted(got) == [1, 2, 3, 4]
    for step in (3, 4):
        assert abs(got[step] - expected[step]) <= 1e-4, (step, got[step], expected[step])


def test_processes_that_disagree_stop_naming_the_difference(workdir, free_port):
    tmp, args = workdir
    results = _launch_two(tmp, free_port, [*args, "--exp-name=differ", "--num-train-steps=1"],
                          per_process=[[], ["--seed=7"]])
    for result in results:
        assert result.returncode != 0
        assert "processes disagree on ['config.seed']" in result.stderr, result.stderr[-3000:]
