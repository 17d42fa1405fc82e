"""End to end on a non-R1Pro LeRobot v2.1 dataset (4-dim action, 39-dim state, two cameras, no B1K keys), every
step from the command line: norm stats, analyzer, 3 training steps and eval_policy, once with the generic
``lerobot_demo`` config and flags, once with the shipped config file ``examples/configs/metaworld_sawyer.py``.
"""

import dataclasses
import json
import pathlib
import runpy
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from openpi.datasets import mini_lerobot
from openpi.training import config as train_config

REPO = pathlib.Path(__file__).resolve().parents[2]
STATE_DIMS = (0, 1, 2, 3)


@pytest.fixture(scope="module")
def arm_root(tmp_path_factory) -> pathlib.Path:
    return mini_lerobot.write(
        mini_lerobot.MiniLeRobotConfig(root=tmp_path_factory.mktemp("arm") / "mini_arm", num_episodes=4, frames_per_episode=20)
    )


def _run(script: str, args: list[str], monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", [f"{script}.py", *args])
    runpy.run_path(str(REPO / "scripts" / f"{script}.py"), run_name="__main__")


def _config(kind: str, root: pathlib.Path) -> tuple[str, str, list[str]]:
    """(config name, norm-stats asset, overrides) describing the same robot either way."""
    common = ["--data.root", str(root), "--model.action-horizon", "4"]
    if kind == "file":
        return f"{REPO}/examples/configs/metaworld_sawyer.py:metaworld_sawyer_demo", "local/metaworld_sawyer", common
    return "lerobot_demo", root.name, [
        *common,
        "--data.image-keys", "base_0_rgb", "observation.images.top", "left_wrist_0_rgb", "observation.images.wrist",
        "--data.state-dims", *map(str, STATE_DIMS),
        "--model.action-groups", "xyz", "0:3", "gripper", "3",
        "--model.group-weights", "xyz", "1", "gripper", "2",
        "--model.loss-weighting-strategy", "per_group",
        "--model.body-roles", "xyz", "arm",
    ]  # fmt: skip


def test_the_generic_config_keeps_the_padding_out_of_the_loss(arm_root):
    """``lerobot`` excludes padding by default (it won in closed loop); with no group naming the padding it says how
    to name it instead of training on the 28 padded dims."""
    base = train_config.get_config("lerobot_demo")
    data = dataclasses.replace(base.data, root=str(arm_root), image_keys={"base_0_rgb": "observation.images.top"})

    def resolve(**model):
        return dataclasses.replace(base, data=data, model=dataclasses.replace(base.model, **model)).data_config()

    groups = {"xyz": "0:3", "gripper": "3"}
    resolve(action_groups=groups)
    layout = dataclasses.replace(base.model, action_groups=groups)
    np.testing.assert_array_equal(layout.loss_weighting.real_dims, np.arange(base.model.action_dim) < 4)
    with pytest.raises(ValueError, match=r"no action group names the model's padded dims 4:32 .* actions 0:4"):
        resolve()
    resolve(exclude_padding=False)  # upstream's loss, padding included, still available


# Both trainers with the generic config; the config file (resolved by the same lookup) trains with PyTorch only,
# to keep the suite short: a JAX compile costs about a minute on 2 cores.
@pytest.mark.parametrize(("kind", "trainers"), [("generic", ("train", "train_pytorch")), ("file", ("train_pytorch",))])
def test_norm_stats_analyzer_trainers_and_eval_from_the_cli(kind, trainers, arm_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    name, asset, overrides = _config(kind, arm_root)
    config_name = name.rsplit(":", 1)[-1]

    _run("compute_norm_stats", ["--config-name", name, *overrides], monkeypatch)
    stats = json.loads((tmp_path / "assets" / config_name / asset / "norm_stats.json").read_text())["norm_stats"]
    states = np.concatenate([
        np.stack(pq.read_table(p).column("observation.state").to_numpy(zero_copy_only=False))
        for p in sorted((arm_root / "data").rglob("*.parquet"))
    ])  # fmt: skip
    np.testing.assert_allclose(stats["state"]["mean"], states[:, STATE_DIMS].mean(0), rtol=1e-5, atol=1e-6)
    assert len(stats["actions"]["mean"]) == 4

    _run("analyze_action_magnitudes", ["--config-name", name, "--output", "mag.json", *overrides], monkeypatch)
    report = json.loads((tmp_path / "mag.json").read_text())
    assert report["data_action_dims"] == 4
    assert {n: g["dims"] for n, g in report["groups"].items()} == {"xyz": [0, 1, 2], "gripper": [3]}

    train = ["--batch-size", "2", "--num-train-steps", "3", "--save-interval", "3", "--log-interval", "1"]
    for script in trainers:
        weights = "params" if script == "train" else "model.safetensors"
        _run(script, [name, *overrides, *train, "--no-wandb-enabled", "--exp-name", script], monkeypatch)
        run_dir = tmp_path / "checkpoints" / config_name / script
        assert (run_dir / "3" / weights).exists()
        metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert [m["step"] for m in metrics] == [1, 2, 3] and {"loss/xyz", "loss/gripper"} <= set(metrics[-1])

    # Evaluate the PyTorch checkpoint (no second JAX compile; the JAX policy loader is covered on B1K elsewhere).
    checkpoint = tmp_path / "checkpoints" / config_name / "train_pytorch" / "3"
    args = ["--config-name", name, "--checkpoint", str(checkpoint), "--num-episodes", "1", "--output-dir", "eval"]
    _run("eval_policy", [*args, *overrides], monkeypatch)
    assert "held-out episodes are training episodes" in capsys.readouterr().err  # no episode list was given
    evaluated = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert evaluated["groups"] == {"xyz": [0, 1, 2], "gripper": [3]}
    overall = evaluated["overall"]
    assert 0.0 <= overall["gripper_agreement"] <= 1.0 and overall["arm_activity_ratio"] is not None
    assert overall["base_velocity_rmse"] is None  # this robot has no base


def test_tools_refuse_the_r1pro_layout_on_another_robot(arm_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        _run("analyze_action_magnitudes", ["--root", str(arm_root), "--output", "mag.json"], monkeypatch)
    assert "does not fit the dataset's 4-dim action" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _run("eval_policy", ["--config-name", "lerobot_demo", "--data.root", str(arm_root),
                             "--data.image-keys", "base_0_rgb", "observation.images.top",
                             "--model.action-groups", "xyz", "0:3", "--checkpoint", str(tmp_path)], monkeypatch)  # fmt: skip
    assert "does not fit the dataset's 4-dim action" in capsys.readouterr().err
    # Without a config the norm-stats script uses the state as stored (no B1K proprio conversion).
    _run("compute_norm_stats", ["--root", str(arm_root), "--output-dir", "stats"], monkeypatch)
    assert len(json.loads((tmp_path / "stats" / "norm_stats.json").read_text())["norm_stats"]["state"]["mean"]) == 39
