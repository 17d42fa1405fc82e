import json
import pathlib
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from openpi.datasets import lerobot
from openpi.datasets import lerobot_meta as _lerobot_meta

SCRIPTS = pathlib.Path(__file__).resolve().parents[2] / "scripts"
ARMS = list(range(7, 14)) + list(range(15, 22))


def _episodes(root):
    """Every episode's actions straight from its parquet file (independent of the tools' reader)."""
    meta = _lerobot_meta.LeRobotMetadata.load(root)
    return [
        np.stack(pq.read_table(meta.data_path(e), columns=["action"]).column("action").to_pylist())
        for e in meta.episodes
    ]


def test_report_matches_numpy_reference(mini_root, load_script, tmp_path):
    script = load_script("analyze_action_magnitudes")
    out = tmp_path / "mag.json"
    report = script.run(script.Args(root=str(mini_root), output=str(out), max_chunks=256))
    saved = json.loads(out.read_text())
    assert saved["groups"] == report["groups"]
    for png in report["plots"]:
        assert pathlib.Path(png).stat().st_size > 1000
    eps = _episodes(mini_root)
    allx = np.concatenate(eps).astype(np.float64)
    mean, std = allx.mean(0), allx.std(0)
    for name, dims in (("left_arm", list(range(7, 14))), ("base", [0, 1, 2]), ("right_gripper", [22])):
        g = report["groups"][name]
        deltas = np.concatenate([np.diff(e[:, dims].astype(np.float64), axis=0) for e in eps])
        assert g["raw"]["mean_abs"] == pytest.approx(np.abs(allx[:, dims]).mean(), rel=1e-6)
        assert g["raw"]["std"] == pytest.approx(np.sqrt(np.mean(std[dims] ** 2)), rel=1e-5)
        assert g["raw"]["delta_rms"] == pytest.approx(np.sqrt(np.mean(deltas**2)), rel=1e-5)
        norm_deltas = deltas / (std[dims] + 1e-6)
        assert g["normalized"]["delta_rms"] == pytest.approx(np.sqrt(np.mean(norm_deltas**2)), rel=1e-3)
        normed = (allx[:, dims] - mean[dims]) / (std[dims] + 1e-6)
        assert g["normalized"]["mean_abs"] == pytest.approx(np.abs(normed).mean(), rel=1e-3)
    arm_moving = np.concatenate([np.abs(np.diff(e[:, 7:14], axis=0)).max(1) > 1e-3 for e in eps]).mean()
    assert report["groups"]["left_arm"]["moving_fraction"] == pytest.approx(arm_moving)
    base_moving = np.concatenate([np.abs(e[1:, 0:3]).max(1) > 1e-2 for e in eps]).mean()
    assert report["groups"]["base"]["moving_fraction"] == pytest.approx(base_moving)
    assert set(report["weight_share"]) == {"original", "uniform", "per_dimension", "per_group"}


def test_config_name_gives_layout_and_weights(mini_root, load_script, tmp_path):
    pytest.importorskip("openpi.training.config")
    script = load_script("analyze_action_magnitudes")
    report = script.run(
        script.Args(config_name="pi0_b1k_arm_focused_demo", root=str(mini_root), output=str(tmp_path / "m.json"))
    )
    assert list(report["groups"]) == ["base", "trunk", "left_arm", "right_arm", "grippers"]
    assert report["group_weights_used"]["left_arm"] == 3.0
    assert report["normalization"] == "quantile"  # pi0.5 demo config


def test_clear_errors(mini_root, load_script, tmp_path):
    script = load_script("analyze_action_magnitudes")
    with pytest.raises(_lerobot_meta.DatasetNotFoundError, match="No LeRobot dataset"):
        script.run(script.Args(root=str(tmp_path / "nowhere"), output=str(tmp_path / "m.json")))
    with pytest.raises(ValueError, match=r"Unknown action group\(s\) \['elbow'\]"):
        script.run(script.Args(root=str(mini_root), groups=("elbow",), output=str(tmp_path / "m.json")))
    with pytest.raises(FileNotFoundError, match="Checkpoint directory not found"):
        script.run(script.Args(root=str(mini_root), checkpoint=str(tmp_path / "ckpt"), output=str(tmp_path / "m.json")))
    with pytest.raises(ValueError, match="--config-name"):
        script.run(script.Args(output=str(tmp_path / "m.json")))


def test_prediction_comparison_with_a_predict_callable(mini_root, load_script, tmp_path):
    script = load_script("analyze_action_magnitudes")
    dataset = lerobot.LeRobotDataset(root=mini_root, camera_keys=())

    def arms_still(obs):
        chunks = np.stack(
            [dataset.action_chunk(int(e), int(f), 50)[0] for e, f in zip(obs["episode_index"], obs["frame_index"])]
        )
        chunks[..., ARMS] = chunks[:, :1, ARMS]
        return chunks

    report = script.run(script.Args(root=str(mini_root), output=str(tmp_path / "m.json")), predict=arms_still)
    assert report["prediction"]["left_arm"]["pred_delta_rms"] == 0.0
    assert report["prediction"]["base"]["ratio"] == pytest.approx(1.0)
    assert "_prediction.png" in " ".join(report["plots"])


@pytest.mark.parametrize(
    "name", ["analyze_action_magnitudes", "recompute_balanced_norm_stats", "filter_arm_heavy_episodes", "eval_policy"]
)
def test_help(name):
    result = subprocess.run([sys.executable, str(SCRIPTS / f"{name}.py"), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--config-name" in result.stdout


def test_cli_prints_clear_error(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "filter_arm_heavy_episodes.py"), "--root", str(tmp_path / "none")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and result.stderr.startswith("error: No LeRobot dataset")


def test_checkpoint_predictions_from_a_trained_experiment(jax_demo_checkpoint, mini_v21, load_script, tmp_path):
    """--checkpoint with the JAX trainer's experiment directory (its latest step is used) on real frames."""
    script = load_script("analyze_action_magnitudes")
    args = script.Args(
        config_name="pi0_b1k_arm_focused_demo",
        root=str(mini_v21),
        checkpoint=str(jax_demo_checkpoint.checkpoint_dir),
        output=str(tmp_path / "m.json"),
    )
    report = script.run(args)
    assert report["prediction_episodes"]
    for name, group in report["prediction"].items():
        assert np.isfinite(group["pred_delta_rms"]) and np.isfinite(group["true_delta_rms"]), name
    assert report["prediction"]["left_arm"]["pred_delta_rms"] > 0
    assert "_prediction.png" in " ".join(report["plots"])
