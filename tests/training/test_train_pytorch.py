"""The PyTorch trainer end to end on the miniature B1K dataset: CLI run with its wandb contents, a 2-process DDP
run against the 1-process one, SIGKILL + resume, --resume-from weights, NaN / inf stops; plus the rank slicing of
the data loader and the per-step noise as units."""

import dataclasses
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import flax.nnx as nnx
import jax
import numpy as np
import pytest
import safetensors.torch
import torch

from openpi.models_pytorch import pi0_pytorch
from openpi.models_pytorch import weight_conversion
from openpi.shared import normalize as _normalize
from openpi.training import checkpoint_io
from openpi.training import config as _config
from openpi.training import data_loader as _data_loader
from openpi.training import loop
from openpi.training import pytorch_trainer
from openpi.training import run_utils

REPO = pathlib.Path(__file__).resolve().parents[2]
TRAIN = REPO / "scripts" / "train_pytorch.py"
DEMO = "pi0_b1k_arm_focused_demo"
GROUPS = ("base", "trunk", "left_arm", "right_arm", "grippers", "padding")
# The uninterrupted reference run: 8 steps, a checkpoint every 4.
STEPS = ["--num-train-steps=8", "--save-interval=4"]


@pytest.fixture(scope="module")
def workdir(demo_run_dir):
    """A run directory with norm stats for the demo config, CLI arguments pointing at it, and an offline-wandb env."""
    tmp, args = demo_run_dir(DEMO)
    args += [
        "--lr-schedule.warmup-steps=2",
    ]
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp)}
    return tmp, args, env


def _run(cmd: list[str], tmp: pathlib.Path, env: dict, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=600, **kwargs)


def _losses(path: pathlib.Path, key: str = "loss") -> dict[int, float]:
    """Step → metric from metrics.jsonl, which holds one row per step (also after a crash and a resume)."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    steps = [r["step"] for r in records]
    assert steps == sorted(set(steps)), f"steps logged twice or out of order in {path}: {steps}"
    return {r["step"]: r[key] for r in records}


@pytest.fixture(scope="module")
def reference(workdir) -> pathlib.Path:
    """``scripts/train_pytorch.py`` in one process, uninterrupted; returns its experiment directory."""
    tmp, args, env = workdir
    cmd = [sys.executable, str(TRAIN), f"--config-name={DEMO}", "--exp-name=t", "--overwrite", *args, *STEPS]
    result = _run(cmd, tmp, env)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp / "checkpoints" / DEMO / "t"


def test_cli_trains_writes_checkpoint_and_per_group_wandb_metrics(workdir, reference, read_wandb_run):
    tmp, _, _ = workdir
    losses = _losses(reference / "metrics.jsonl")
    assert sorted(losses) == list(range(1, 9))
    first, last = np.mean([losses[s] for s in (1, 2, 3)]), np.mean([losses[s] for s in (6, 7, 8)])
    assert last < first, losses
    assert run_utils.step_dirs(reference) == [8]  # step 4 was replaced by step 8 (keep_period None)
    step_dir = reference / "8"
    assert {p.name for p in step_dir.iterdir()} == {"model.safetensors", "optimizer.pt", "metadata.pt", "assets"}
    assert (step_dir / "assets" / _config.DEMO_REPO_ID / "norm_stats.json").exists()
    metadata = torch.load(step_dir / "metadata.pt", weights_only=True)
    assert metadata["step"] == 8 and metadata["config_name"] == DEMO
    assert metadata["loss_weighting"]["strategy"] == "per_group"

    (run_dir,) = (tmp / "wandb").glob("offline-run-*")
    config, tags, history = read_wandb_run(run_dir)
    assert config["loss_weighting"]["strategy"] == "per_group" and "per_group" in tags
    assert config["loss_weighting"]["group_weights"]["left_arm"] == 3.0
    logged = history[-1]
    for group in GROUPS[:-1]:
        for key in ("loss", "loss_share", "weight"):
            assert np.isfinite(logged[f"{key}/{group}"])
    assert {"learning_rate", "grad_norm", "param_norm", "step_time", "samples_per_sec"} <= set(logged)
    assert abs(sum(logged[f"loss_share/{g}"] for g in GROUPS) - 1) < 1e-4
    assert logged["loss"] == pytest.approx(losses[8], rel=1e-6)


def test_two_processes_give_the_one_process_losses(workdir, reference):
    tmp, args, env = workdir
    torchrun = pathlib.Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", str(TRAIN), DEMO, "--exp-name=ddp", *args,
           "--num-train-steps=2", "--no-wandb-enabled"]
    result = _run(cmd, tmp, env)
    assert result.returncode == 0, result.stderr[-3000:]
    exp = tmp / "checkpoints" / DEMO / "ddp"
    single, ddp = (json.loads(p.read_text().splitlines()[0]) for p in (reference / "metrics.jsonl",
                                                                      exp / "metrics.jsonl"))
    for key in ("loss", *(f"{k}/{g}" for g in GROUPS for k in ("loss", "loss_share", "weight"))):
        assert abs(ddp[key] - single[key]) <= 1e-4, (key, ddp[key], single[key])
    # Step 2 runs on the weights after one DDP update: gradients were averaged into the global-batch gradient.
    assert abs(_losses(exp / "metrics.jsonl")[2] - _losses(reference / "metrics.jsonl")[2]) <= 1e-4
    assert run_utils.step_dirs(exp) == [2]  # only rank 0 saves; the save is complete


def test_two_nodes_give_the_one_process_losses_and_one_process_resumes_them(workdir, reference, free_port):
    """Two torchrun launches acting as two nodes (one process each, rendezvous on 127.0.0.1), then a resume of their
    checkpoint in one process: together the uninterrupted one-process run."""
    tmp, args, env = workdir
    env = {**env, "PYTHONPATH": str(REPO / "src")}  # this checkout's code in the launched processes
    torchrun = pathlib.Path(sys.executable).parent / "torchrun"
    rendezvous = ["--nnodes=2", "--nproc_per_node=1", "--master_addr=127.0.0.1", f"--master_port={free_port}"]
    # decay_steps pinned to the full run's 8 steps: by default the schedule follows --num-train-steps.
    train = [str(TRAIN), DEMO, "--exp-name=nodes", *args, "--num-train-steps=4", "--save-interval=4",
             "--lr-schedule.decay-steps=8", "--no-wandb-enabled"]
    nodes = [
        subprocess.Popen([str(torchrun), *rendezvous, f"--node_rank={rank}", *train], cwd=tmp, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for rank in (0, 1)
    ]
    try:
        for node in nodes:
            _, stderr = node.communicate(timeout=600)
            assert node.returncode == 0, stderr[-3000:]
    finally:  # a failed or timed-out launch leaves no process behind
        for node in nodes:
            if node.poll() is None:
                node.kill()
                node.wait()
    exp = tmp / "checkpoints" / DEMO / "nodes"
    assert torch.load(exp / "4" / "metadata.pt", weights_only=True)["world_size"] == 2
    result = _run([sys.executable, str(TRAIN), DEMO, "--exp-name=nodes", "--resume", *args, "--num-train-steps=8",
                   "--no-wandb-enabled"], tmp, env)
    assert result.returncode == 0, result.stderr[-3000:]
    got, expected = _losses(exp / "metrics.jsonl"), _losses(reference / "metrics.jsonl")
    assert sorted(got) == list(range(1, 9))
    # Two ranks sum their gradients in another order than one process does (float32 rounding, ~1e-7 relative);
    # the bound is the DDP test's.
    for step in range(1, 9):
        assert abs(got[step] - expected[step]) <= 1e-4, (step, got[step], expected[step])


def test_sigkill_then_resume_matches_an_uninterrupted_run(workdir, reference, read_wandb_run):
    tmp, args, env = workdir
    exp = tmp / "checkpoints" / DEMO / "crash"
    cmd = [sys.executable, str(TRAIN), DEMO, "--exp-name=crash", *args, *STEPS]
    process = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 400
    while 4 not in run_utils.step_dirs(exp) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert run_utils.step_dirs(exp) == [4]
    run_id = (exp / run_utils.WANDB_ID_FILE).read_text()
    # A checkpoint being written when the process died is a temporary directory: it must never be loaded.
    (exp / "tmp-6").mkdir()
    (exp / "tmp-6" / "model.safetensors").write_bytes(b"truncated")
    result = _run([*cmd, "--resume"], tmp, env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resumed from step 4" in result.stderr
    got, expected = _losses(exp / "metrics.jsonl"), _losses(reference / "metrics.jsonl")
    assert sorted(got) == list(range(1, 9))
    for step in range(5, 9):
        assert abs(got[step] - expected[step]) <= 1e-5, (step, got[step], expected[step])
    assert not (exp / "tmp-6").exists()
    # Offline, wandb cannot reopen a run: the resumed part is a new run that names the one it continues.
    resumed_runs = [read_wandb_run(d)[0] for d in (tmp / "wandb").glob("offline-run-*")]
    assert [c["exp_name"] for c in resumed_runs if c.get("continues_wandb_run") == run_id] == ["crash"]


def test_resume_from_starts_with_the_other_runs_weights_and_a_fresh_optimizer(workdir, reference):
    _, args, _ = workdir
    config = _config.cli([DEMO, "--exp-name=phase2", f"--resume-from={DEMO}/t", *args, "--num-train-steps=1",
                          "--no-wandb-enabled"])
    # The backend as the training loop starts it for a new experiment (no checkpoint of its own to restore).
    backend = pytorch_trainer.TorchBackend(config, rank=0, world_size=1, device=torch.device("cpu"))
    backend.init(loop.initial_weights(config, run_utils.resolve_resume_from(config)))
    loaded = backend.model.state_dict()
    phase1 = safetensors.torch.load_file(str(reference / "8" / "model.safetensors"))
    assert phase1.keys() <= loaded.keys()
    assert all(torch.equal(loaded[k], phase1[k]) for k in phase1)
    fresh = pytorch_trainer.create_model(config, torch.device("cpu")).state_dict()
    assert not all(torch.equal(fresh[k], phase1[k]) for k in phase1)
    assert not backend.optimizer.state_dict()["state"]  # fresh AdamW: no moments carried over from phase 1
    pytorch_trainer.train(config, progress=False)  # and the run itself trains from there
    optimizer = torch.load(config.checkpoint_dir / "1" / "optimizer.pt", weights_only=True)
    assert {int(s["step"]) for s in optimizer["state"].values()} == {1}  # one step, not nine


def test_nan_stats_stop_the_script_before_any_checkpoint(workdir):
    """NaN norm stats are refused before the first step, naming the file and the dim (they used to train until the
    loss became NaN; the loss check itself is tested by the exploding-weights test below)."""
    tmp, args, env = workdir
    stats = _normalize.load(tmp / "assets" / DEMO / _config.DEMO_REPO_ID)
    mean = stats["actions"].mean.copy()
    mean[7] = np.nan  # left_arm's first dim
    bad_assets = tmp / "bad_assets"
    stats["actions"] = dataclasses.replace(stats["actions"], mean=mean)
    _normalize.save(bad_assets / DEMO / _config.DEMO_REPO_ID, stats)
    cmd = [sys.executable, str(TRAIN), DEMO, "--exp-name=nan", *args, f"--assets-base-dir={bad_assets}",
           "--data.norm=zscore", "--num-train-steps=2",
           "--save-interval=1", "--no-wandb-enabled"]
    result = _run(cmd, tmp, env)
    assert result.returncode != 0
    assert result.returncode == 2 and "'actions' mean is not finite at dims [7]" in result.stderr, result.stderr
    assert run_utils.step_dirs(tmp / "checkpoints" / DEMO / "nan") == []


def test_exploding_weights_stop_before_they_are_saved(workdir):
    _, args, _ = workdir
    config = _config.cli([DEMO, "--exp-name=explode", *args, "--batch-size=2", "--num-train-steps=2",
                          "--save-interval=1", "--lr-schedule.warmup-steps=0", "--lr-schedule.peak-lr=1e30",
                          "--no-wandb-enabled"])
    with pytest.raises(run_utils.NonFiniteLossError, match="Weights became non-finite in the update of step 1"):
        pytorch_trainer.train(config, progress=False)
    assert run_utils.step_dirs(config.checkpoint_dir) == []


class _Indices:
    def __len__(self):
        return 37

    def __getitem__(self, i):
        return {"x": np.array([i])}


@pytest.mark.parametrize("start_batch", [0, 5])
def test_each_rank_gets_its_slice_of_the_global_batch(start_batch):
    kwargs = dict(batch_size=6, seed=1, framework="numpy", output="dict", num_batches=8, start_batch=start_batch)
    full = [b["x"][:, 0] for b in _data_loader.DataLoader(_Indices(), **kwargs)]
    ranks = [_data_loader.DataLoader(_Indices(), rank=r, world_size=2, **kwargs) for r in range(2)]
    joined = [np.concatenate([a["x"][:, 0], b["x"][:, 0]]) for a, b in zip(*ranks, strict=True)]
    assert len(joined) == len(full) == 8
    for a, b in zip(full, joined, strict=True):
        np.testing.assert_array_equal(a, b)


def test_step_noise_depends_only_on_seed_and_step_and_ranks_split_it():
    noise, t = pytorch_trainer.noise_and_time(42, 7, (4, 5, 3))
    again, t_again = pytorch_trainer.noise_and_time(42, 7, (4, 5, 3))
    assert torch.equal(noise, again) and torch.equal(t, t_again)
    assert not torch.equal(noise, pytorch_trainer.noise_and_time(42, 8, (4, 5, 3))[0])
    parts = [pytorch_trainer.noise_and_time(42, 7, (2, 5, 3), rank=r, world_size=2) for r in range(2)]
    assert torch.equal(torch.cat([p[0] for p in parts]), noise) and torch.equal(torch.cat([p[1] for p in parts]), t)
    many = pytorch_trainer.noise_and_time(0, 0, (20000, 1, 1))[1]
    assert 0.001 <= float(many.min()) and float(many.max()) <= 1.0
    assert abs(float(many.mean()) - (0.6 * 0.999 + 0.001)) < 0.01  # Beta(1.5, 1) has mean 0.6


@pytest.mark.parametrize(
    ("paligemma", "expert"),
    [("gemma_2b_lora", "gemma_300m"), ("gemma_2b_lora", "gemma_300m_lora"), ("gemma_2b", "gemma_300m_lora"),
     ("gemma_2b", "gemma_300m")],
)
def test_lora_freezes_what_the_jax_freeze_filter_freezes(paligemma, expert):
    config = _config.ModelConfig(paligemma_variant=paligemma, action_expert_variant=expert)
    with torch.device("meta"):  # shapes only: no memory, no init
        model = pi0_pytorch.PI0Pytorch(config)
    pytorch_trainer.freeze_lora_base(model, config)
    frozen = {n: p.numel() for n, p in model.named_parameters() if not p.requires_grad}
    assert not any("lora" in n for n in frozen)
    abstract = nnx.eval_shape(lambda: config.create(jax.random.key(0)))
    jax_frozen = nnx.state(abstract, nnx.All(nnx.Param, config.get_freeze_filter()))
    assert sum(frozen.values()) == sum(x.size for x in jax.tree.leaves(jax_frozen))


def test_weight_path_loads_openpi_jax_params(workdir, tmp_path):
    _, args, _ = workdir
    config = _config.cli([DEMO, "--exp-name=w", *args])
    abstract = nnx.state(nnx.eval_shape(lambda: config.model.create(jax.random.key(0))), nnx.Param).to_pure_dict()
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda x: rng.standard_normal(x.shape, dtype=np.float32).astype(x.dtype), abstract)
    weight_conversion.save_jax_params(params, tmp_path / "params.npz")
    config = dataclasses.replace(config, weight_path=str(tmp_path / "params.npz"))
    model = pytorch_trainer.create_model(config, torch.device("cpu"))
    checkpoint_io.load_weights(model, pytorch_trainer.weights_file(config.weight_path))
    expected, _ = weight_conversion.jax_to_torch(params)
    state = model.state_dict()
    assert expected and all(np.array_equal(state[k].numpy(), v) for k, v in expected.items())
