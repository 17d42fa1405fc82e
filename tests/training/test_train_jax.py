"""The JAX trainer end to end on the miniature B1K dataset: CLI run, wandb contents, crash + resume, curriculum
weights, a non-B1K robot, NaN stop, and a 2-device FSDP run."""

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from openpi.analysis import arm_heavy
from openpi.datasets import episode_files
from openpi.datasets import stats as _stats
from openpi.models import model as _model
from openpi.policies import b1k_policy
from openpi.shared import normalize as _normalize
from openpi.training import config as _config
from openpi.training import jax_trainer
from openpi.training import loop
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
    """Step → loss from metrics.jsonl, which holds one row per step (also after a crash and a resume)."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    steps = [r["step"] for r in records]
    assert steps == sorted(set(steps)), f"steps logged twice or out of order in {path}: {steps}"
    return {r["step"]: r["loss"] for r in records}


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
    episode_files.save_episode_list(
        tmp / "assets" / "phase1_arm_heavy_demo" / "arm_heavy_episodes.json",
        arm_heavy.EpisodeSelection(episodes=[10, 10010], details={}),
        criterion=arm_heavy.Criterion(),
    )
    phase1 = _config.cli(["phase1_arm_heavy_demo", "--exp-name=cur", *args, "--num-train-steps=2",
                          "--save-interval=2"])
    final = jax_trainer.train(phase1, progress=False)
    phase2 = _config.cli(["phase2_full_demo", "--exp-name=cur", *args])
    assert phase2.resume_from == "phase1_arm_heavy_demo/cur"
    init = jax_trainer.load_params(phase2, loop.initial_weights(phase2, run_utils.resolve_resume_from(phase2)))
    state, _ = jax_trainer.init_train_state(phase2, _sharding.make_mesh(1), init_params=init)
    expected = jax.tree.leaves(final.params.to_pure_dict())
    got = jax.tree.leaves(state.params.to_pure_dict())
    assert len(expected) == len(got)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(expected, got, strict=True))
    fresh, _ = jax_trainer.init_train_state(phase2, _sharding.make_mesh(1))
    assert not all(np.array_equal(np.asarray(a), np.asarray(b))
                   for a, b in zip(jax.tree.leaves(fresh.params.to_pure_dict()), got, strict=True))


def _write_generic_lerobot(root: pathlib.Path, episodes: int = 3, length: int = 40, size: int = 32) -> None:
    """A LeRobot v2.1 dataset of a 4-dim arm (xyz + gripper) with two cameras, in lerobot's default layout."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from openpi.datasets import video

    rng = np.random.default_rng(0)
    cameras = ("observation.images.top", "observation.images.wrist")
    features = {
        "action": {"dtype": "float32", "shape": [4], "names": ["x", "y", "z", "gripper"]},
        "observation.state": {"dtype": "float32", "shape": [4], "names": ["x", "y", "z", "gripper"]},
        **{k: {"dtype": "video", "shape": [size, size, 3], "names": ["height", "width", "channel"],
               "info": {"video.codec": "h264", "video.pix_fmt": "yuv420p", "video.fps": 10}} for k in cameras},
        **{k: {"dtype": "int64", "shape": [1], "names": None}
           for k in ("frame_index", "episode_index", "index", "task_index")},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    }
    info = {
        "codebase_version": "v2.1", "robot_type": "toy_arm", "fps": 10, "chunks_size": 1000,
        "total_episodes": episodes, "total_frames": episodes * length, "total_tasks": 1, "splits": {"train": "0:3"},
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
        "features": features,
    }
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps(info))
    (root / "meta" / "tasks.jsonl").write_text(json.dumps({"task_index": 0, "task": "pick up the cube"}) + "\n")
    lines = [json.dumps({"episode_index": e, "tasks": ["pick up the cube"], "length": length}) for e in range(episodes)]
    (root / "meta" / "episodes.jsonl").write_text("\n".join(lines) + "\n")
    for e in range(episodes):
        xyz = np.cumsum(rng.normal(scale=0.05, size=(length, 3)), axis=0)
        gripper = np.where(np.arange(length) < length // 2, 1.0, -1.0)[:, None]
        action = np.concatenate([xyz, gripper], axis=1).astype(np.float32)
        table = pa.table({
            "action": pa.FixedSizeListArray.from_arrays(pa.array(action.reshape(-1)), 4),
            "observation.state": pa.FixedSizeListArray.from_arrays(pa.array(action.reshape(-1)), 4),
            "timestamp": pa.array(np.arange(length, dtype=np.float32) / 10),
            "frame_index": pa.array(np.arange(length)),
            "episode_index": pa.array(np.full(length, e)),
            "index": pa.array(e * length + np.arange(length)),
            "task_index": pa.array(np.zeros(length, dtype=np.int64)),
        })
        path = root / f"data/chunk-000/episode_{e:06d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        for k, camera in enumerate(cameras):
            frames = np.zeros((length, size, size, 3), np.uint8)
            frames[..., k] = (128 + 100 * np.tanh(xyz[:, :1, None])).astype(np.uint8)
            video.write_video(root / f"videos/chunk-000/{camera}/episode_{e:06d}.mp4", frames, fps=10, codec="h264")


def test_generic_config_trains_a_non_b1k_robot(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "toy_arm"
    _write_generic_lerobot(root)
    data = _config.LeRobotDataConfig(
        repo_id="local/toy_arm",
        root=str(root),
        image_keys={"base_0_rgb": "observation.images.top", "left_wrist_0_rgb": "observation.images.wrist"},
        robot="identity",
        robot_action_dim=4,
        norm="zscore",
        tokenizer="offline",
    )
    config = _config.TrainConfig(
        name="toy_arm_demo",
        model=_config.ModelConfig(
            **{**_config.DEMO_MODEL_FIELDS, "image_resolution": (32, 32)},
            action_horizon=10,
            loss_weighting_strategy="per_group",
            action_groups={"xyz": (0, 3), "gripper": [3]},
            group_weights={"xyz": 1.0, "gripper": 2.0},
        ),
        data=data,
        **{**_config.DEMO_TRAIN_FIELDS, "batch_size": 4, "num_train_steps": 4, "log_interval": 1, "save_interval": 4},
        exp_name="toy",
        wandb_enabled=False,
    )
    assert config.model.loss_weighting.groups.to_json() == {"xyz": "0:3", "gripper": "[3]", "padding": "4:32"}
    stats = _stats.compute_norm_stats(root, progress=False)
    _normalize.save(config.assets_dirs / "local/toy_arm", stats)
    data_config = config.data_config()
    assert data_config.norm_stats["actions"].mean.shape == (4,) and not data_config.use_quantile_norm
    jax_trainer.train(config, progress=False)
    records = _losses(config.checkpoint_dir / "metrics.jsonl")
    assert sorted(records) == [1, 2, 3, 4] and all(np.isfinite(list(records.values())))
    logged = json.loads((config.checkpoint_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"loss/xyz", "loss/gripper", "loss_share/gripper", "weight/xyz"} <= set(logged)
    assert logged["loss_share/padding"] == 0.0
    assert run_utils.step_dirs(config.checkpoint_dir) == [4]


def test_nonfinite_loss_stops_naming_step_and_groups(workdir, monkeypatch):
    """Corrupt norm stats (NaN range for left-arm dim 8) make that group's loss NaN at the first step. The data
    config refuses such stats up front (tests/reliability/test_silent_inputs.py); here they slip past that check,
    as a NaN in the data itself would, to test the step's own diagnosis."""
    monkeypatch.setattr(_normalize, "check_usable", lambda *_: None)
    tmp, args = workdir
    stats_dir = tmp / "assets" / "pi0_b1k_arm_focused_demo" / _config.DEMO_REPO_ID
    stats = _normalize.load(stats_dir)
    stats["actions"].q99[8] = np.nan
    _normalize.save(stats_dir, stats)
    config = _config.cli(["pi0_b1k_arm_focused_demo", "--exp-name=nan", *args, "--num-train-steps=3",
                          "--save-interval=1", "--no-wandb-enabled"])
    with pytest.raises(run_utils.NonFiniteLossError, match=r"at step 1 in action groups .*; the normalized targets of \['left_arm'\] are non-finite"):
        jax_trainer.train(config, progress=False)
    assert run_utils.step_dirs(config.checkpoint_dir) == []


def test_exploding_update_stops_before_saving_nonfinite_weights(workdir):
    _, args = workdir
    config = _config.cli(["pi0_b1k_arm_focused_demo", "--exp-name=boom", *args, "--num-train-steps=6",
                          "--save-interval=1", "--lr-schedule.warmup-steps=0", "--lr-schedule.peak-lr=1e36",
                          "--lr-schedule.decay-lr=1e36", "--no-wandb-enabled"])
    with pytest.raises(run_utils.NonFiniteLossError) as info:
        jax_trainer.train(config, progress=False)
    step = int(re.search(r"step (\d+)", str(info.value)).group(1))
    saved = run_utils.step_dirs(config.checkpoint_dir)
    assert saved == ([step - 1] if step > 1 else [])  # the last step before the bad one, never the bad one
    for s in saved:
        params = _model.restore_params(config.checkpoint_dir / str(s) / "params")
        assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(params))


def test_two_device_fsdp_gives_the_single_device_first_step_loss(workdir):
    tmp, args = workdir
    steps = ["--num-train-steps=2", "--save-interval=100", "--no-wandb-enabled"]
    single = _config.cli(["pi0_b1k_arm_focused_demo", "--exp-name=one", *args, *steps])
    jax_trainer.train(single, progress=False)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    cmd = [sys.executable, str(TRAIN), "pi0_b1k_arm_focused_demo", "--exp-name=two", *args, *steps,
           "--fsdp-devices=2"]
    result = subprocess.run(cmd, check=True, timeout=600, cwd=tmp, env=env, capture_output=True, text=True)
    assert "'fsdp': 2} over 2 devices" in result.stderr
    one = _losses(single.checkpoint_dir / "metrics.jsonl")
    two = _losses(tmp / "checkpoints" / "pi0_b1k_arm_focused_demo" / "two" / "metrics.jsonl")
    assert abs(one[1] - two[1]) <= 1e-4, (one[1], two[1])
    assert abs(one[2] - two[2]) <= 1e-3
