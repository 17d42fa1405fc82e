import json
import pathlib
import sys

import numpy as np
import pytest

from openpi.datasets import lerobot
from openpi.datasets import lerobot_meta as _lerobot_meta

ARMS = list(range(7, 14)) + list(range(15, 22))


def _policy(root, arms_still=False):
    """Replays the dataset's true chunks (through the data layer's chunk reader); optionally freezes the arms."""
    dataset = lerobot.LeRobotDataset(root=root, camera_keys=())

    def predict(obs):
        chunks = np.stack(
            [dataset.action_chunk(int(e), int(f), 50)[0] for e, f in zip(obs["episode_index"], obs["frame_index"])]
        )
        if arms_still:
            chunks[..., ARMS] = chunks[:, :1, ARMS]
        return np.pad(chunks, ((0, 0), (0, 0), (0, 9)))  # a model's 32-dim output

    return predict


def test_oracle_has_zero_error_and_full_activity(mini_root, load_script, tmp_path):
    script = load_script("eval_policy")
    args = script.Args(root=str(mini_root), num_episodes=2, output_dir=str(tmp_path))
    report = script.run(args, predict=_policy(mini_root))
    assert set(report["per_task"]) == {"turning_on_radio", "picking_up_trash", "putting_away_toys"}
    assert len(report["episodes"]) == 6
    for metrics in [report["overall"], *report["per_task"].values()]:
        assert metrics["arm_activity_ratio"] == pytest.approx(1.0)
        assert metrics["gripper_agreement"] == 1.0 and metrics["base_velocity_rmse"] == 0.0
        assert all(g["mse_raw"] == 0.0 and g["mse_normalized"] == 0.0 for g in metrics["groups"].values())
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert saved["overall"]["arm_activity_ratio"] == pytest.approx(1.0)
    assert "| **overall** |" in (tmp_path / "eval.md").read_text()
    assert pathlib.Path(report["plots"][0]).stat().st_size > 1000


def test_arms_still_policy_has_near_zero_activity(mini_root, load_script, tmp_path):
    script = load_script("eval_policy")
    args = script.Args(root=str(mini_root), tasks="turning_on_radio,1", num_episodes=3, output_dir=str(tmp_path))
    report = script.run(args, predict=_policy(mini_root, arms_still=True))
    assert set(report["per_task"]) == {"turning_on_radio", "picking_up_trash"}
    assert report["overall"]["arm_activity_ratio"] < 0.05
    assert report["overall"]["groups"]["left_arm"]["mse_normalized"] > 0
    assert report["overall"]["groups"]["base"]["mse_raw"] == 0.0


def test_clear_errors(mini_root, load_script, tmp_path):
    script = load_script("eval_policy")
    with pytest.raises(ValueError, match=r"Unknown task 'cooking'.*0: turning_on_radio; 1: picking_up_trash"):
        script.run(script.Args(root=str(mini_root), tasks="cooking"), predict=_policy(mini_root))
    with pytest.raises(FileNotFoundError, match="Checkpoint directory not found"):
        script.run(script.Args(root=str(mini_root), checkpoint=str(tmp_path / "none")))
    with pytest.raises(FileNotFoundError, match="No checkpoint given"):
        script.run(script.Args(root=str(mini_root)))
    (tmp_path / "ckpt").mkdir()
    with pytest.raises(ValueError, match="needs its training config"):
        script.run(script.Args(root=str(mini_root), checkpoint=str(tmp_path / "ckpt")))
    demo = "pi0_b1k_arm_focused_demo"
    with pytest.raises(FileNotFoundError, match=r"ckpt is not a checkpoint: expected .*params/ .*model.safetensors"):
        script.run(script.Args(config_name=demo, root=str(mini_root), checkpoint=str(tmp_path / "ckpt")))
    with pytest.raises(_lerobot_meta.DatasetNotFoundError):
        script.run(script.Args(root=str(tmp_path / "missing")), predict=_policy(mini_root))
    with pytest.raises(ValueError, match=r"Unknown action group\(s\) \['elbow'\]"):
        script.run(script.Args(root=str(mini_root), groups=("elbow",)), predict=_policy(mini_root))


def test_cli_evaluates_a_trained_checkpoint(jax_demo_checkpoint, mini_v21, load_script, tmp_path, monkeypatch):
    """The real path: the JAX trainer's 2-step checkpoint, frames (video, state, prompt) read from the dataset."""
    script = load_script("eval_policy")
    step_dir = jax_demo_checkpoint.checkpoint_dir / "2"
    argv = ["eval_policy.py", "--config-name", "pi0_b1k_arm_focused_demo", "--root", str(mini_v21),
            "--checkpoint", str(step_dir), "--num-episodes", "2", "--batch-size", "2", "--output-dir", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    script.main()
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["checkpoint"] == str(step_dir) and report["norm_stats"].startswith(str(step_dir / "assets"))
    assert report["overall"]["num_chunks"] >= 2
    for task in [*report["per_task"].values(), report["overall"]]:
        for name, group in task["groups"].items():
            for key in ("mse_raw", "mae_raw", "mse_normalized"):
                assert np.isfinite(group[key]) and group[key] > 0, (name, key, group[key])  # an untrained model errs
        assert np.isfinite(task["arm_activity_ratio"]) and 0 <= task["gripper_agreement"] <= 1
    assert "| **overall** |" in (tmp_path / "eval.md").read_text()
