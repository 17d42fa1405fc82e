"""Inputs that used to train or answer silently with a wrong result, or end in a traceback or an error that does
not say where: each now stops with one message naming the file, field or value (or warns, where training can
go on), before any step is taken."""

import dataclasses
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from openpi.datasets import lerobot_meta
from openpi.policies import lerobot_policy
from openpi.policies import policy_config
from openpi.shared import cli
from openpi.shared import normalize as _normalize
from openpi.training import config as _config
from openpi.training import preflight

REPO = pathlib.Path(__file__).resolve().parents[2]


def _config_of(args):
    return _config.cli(args)


# ---- norm stats ------------------------------------------------------------------------------------------------


def test_stats_without_actions_are_refused(run, demo_stats):
    args, stats_dir = run
    _normalize.save(stats_dir, {"state": demo_stats["state"]})
    with pytest.raises(ValueError, match=r"norm_stats\.json has no 'actions' entry"):
        _config_of(args).data_config()


def test_non_finite_stats_are_refused_naming_the_dims(run, demo_stats):
    args, stats_dir = run
    std = np.array(demo_stats["actions"].std, copy=True)
    std[[2, 5]] = [np.nan, np.inf]
    _normalize.save(stats_dir, {**demo_stats, "actions": dataclasses.replace(demo_stats["actions"], std=std)})
    with pytest.raises(ValueError, match=r"'actions' std is not finite at dims \[2, 5\]"):
        _config_of(args).data_config()


def test_truncated_stats_file_is_named(run):
    args, stats_dir = run
    path = stats_dir / _normalize.NORM_STATS_FILE
    path.write_text(path.read_text()[:100])
    with pytest.raises(ValueError, match=rf"{path} is not a readable norm-stats file"):
        _config_of(args).data_config()


def test_stats_of_another_dataset_are_reported(run, demo_stats, mini_v21):
    """Same dims, a hundred times the spread: preflight warns; the dataset's own stats pass quietly."""
    args, stats_dir = run
    config = _config_of(args)
    meta = lerobot_meta.LeRobotMetadata.load(config.data_config().root)
    assert preflight.check_stats_match_data(config.data_config(), meta, None) == []
    other = {k: dataclasses.replace(v, std=np.asarray(v.std) * 100) for k, v in demo_stats.items()}
    _normalize.save(stats_dir, other)
    with pytest.warns(UserWarning, match="look like another dataset's"):
        messages = preflight.check_stats_match_data(config.data_config(), meta, None)
    assert {re.search(r"the '(\w+)' column", m).group(1) for m in messages} == {"state", "actions"}


# ---- parse-time checks -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("--lr-schedule.peak-lr=0", "--lr-schedule.peak-lr=0.0 must be a positive number"),
        ("--lr-schedule.peak-lr=-1e-4", "--lr-schedule.peak-lr=-0.0001 must be a positive number"),
        ("--lr-schedule.decay-lr=-1e-6", "--lr-schedule.decay-lr=-1e-06 must be >= 0"),
        ("--lr-schedule.decay-steps=0", "--lr-schedule.decay-steps=0 must be >= 1"),
        ("--keep-period=0", "--keep-period must be a positive number of steps"),
    ],
)
def test_bad_schedule_values_fail_at_parse_time(run, override, message, capsys):
    args, _ = run
    with pytest.raises(SystemExit) as exit_info:
        _config_of([*args, override])
    assert exit_info.value.code == 2
    words = " ".join(capsys.readouterr().err.replace("│", " ").split())  # tyro wraps the message in a box
    assert message in words


def test_warmup_past_the_run_is_reported(run):
    args, _ = run
    with pytest.warns(UserWarning, match=r"warmup-steps=20 is not shorter than the run \(--num-train-steps=2\)"):
        _config_of(args)


def test_config_file_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "my_configs.py"
    path.write_text("from openpi.training import config\n\nbroken = config.TrainConfig(\n")
    with pytest.raises(ValueError, match=rf"Config file {path}, line 3"):
        _config.get_config(f"{path}:broken")


# ---- action dims: the loss's groups and the data's real dims ---------------------------------------------------


def test_group_past_the_real_action_dims_is_refused(run):
    args, _ = run
    bad = [*args, "--model.action-groups", "base", "0:3", "rest", "3:26", "--model.group-weights", "base", "1",
           "rest", "1"]
    with pytest.raises(ValueError, match=r"action group 'rest' \(3:26\) reaches past the data's 23 real action dims"):
        _config_of(bad).data_config()


def test_real_dims_in_no_group_are_named(run):
    args, _ = run
    partial = [*args, "--model.action-groups", "base", "0:3", "--model.group-weights", "base", "1"]
    with pytest.warns(UserWarning, match=r"real action dims \[3, 4, .*22\] are in no action group"):
        _config_of(partial).data_config()


# ---- one clear line for explained KeyErrors ------------------------------------------------------------------


def test_explained_key_error_is_a_user_error_and_a_bare_one_a_bug(capsys):
    def explained():
        raise KeyError(f"Episode 7 is not in {pathlib.Path('/data')} (3 episodes).")

    with pytest.raises(SystemExit) as exit_info:
        cli.run_main(explained)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: Episode 7 is not in /data (3 episodes).\n"

    def bug():
        return {}["state"]

    with pytest.raises(KeyError):
        cli.run_main(bug)



# ---- the serving CLI takes the config overrides a run was trained with -----------------------------------------


def test_serve_policy_accepts_config_overrides(tmp_path):
    """The generic ``lerobot`` config is trained from flags; serving it needs the same flags. The run gets past
    the overrides to the checkpoint (which does not exist here) instead of refusing them."""
    missing = tmp_path / "no_checkpoint"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "serve_policy.py"), "--config-name", "lerobot_demo", "--checkpoint",
         str(missing), "--data.root", str(tmp_path), "--data.image-keys", "base_0_rgb", "observation.images.top"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert str(missing) in result.stderr and "nrecognized" not in result.stderr, result.stderr


# ---- observations a client can send wrong ------------------------------------------------------------------------


def _observation(image, state=None):
    return {"images": {"base_0_rgb": image}, "state": np.zeros(4) if state is None else state, "prompt": "go"}


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.full((8, 8, 3), 200.0), r"Camera 'base_0_rgb': a float image must hold values in \[0, 1\], got 200..200"),
        (np.zeros((8, 8, 3), np.uint16), r"Camera 'base_0_rgb': expected uint8 .* got uint16"),
        (np.zeros((8, 8), np.uint8), r"Camera 'base_0_rgb': expected an RGB image \[H, W, 3\] .* got shape \(8, 8\)"),
        (np.zeros((8, 8, 1), np.uint8), r"Camera 'base_0_rgb': expected an RGB image .* got shape \(8, 8, 1\)"),
        (np.full((8, 8, 3), np.nan), r"Camera 'base_0_rgb': the image has NaN"),
    ],
)
def test_bad_images_are_named_not_read_as_white_or_garbage(image, message):
    with pytest.raises(ValueError, match=message):
        lerobot_policy.LeRobotInputs()(_observation(image))


def test_a_bad_image_names_the_key_the_client_sent_it_under():
    """The model's slot name ('base_0_rgb') means nothing to a client that sent 'observation.images.head'."""
    config = _config.get_config("lerobot_demo")
    data = dataclasses.replace(config.data, image_keys={"base_0_rgb": "observation.images.head"})
    with pytest.raises(ValueError, match=r"Camera 'observation.images.head' \(model camera 'base_0_rgb'\): expected an"):
        data.robot_inputs()(_observation(np.zeros((8, 8), np.uint8)))


def test_non_finite_state_is_refused():
    state = np.array([0.0, np.nan, 1.0, np.inf])
    with pytest.raises(ValueError, match=r"state has NaN or infinite values at dims \[1, 3\]"):
        lerobot_policy.LeRobotInputs()(_observation(np.zeros((8, 8, 3), np.uint8), state))


def test_good_images_still_convert():
    """uint8 HWC passes through; floats in [0, 1] and CHW convert (what LeRobot tooling yields)."""
    hwc = np.arange(8 * 8 * 3, dtype=np.uint8).reshape(8, 8, 3)
    out = lerobot_policy.LeRobotInputs()(_observation(hwc))["image"]["base_0_rgb"]
    np.testing.assert_array_equal(out, hwc)
    chw = (hwc.transpose(2, 0, 1) / 255.0).astype(np.float32)
    np.testing.assert_array_equal(lerobot_policy.LeRobotInputs()(_observation(chw))["image"]["base_0_rgb"], hwc)


# ---- closed-loop evaluation: inputs checked before the first episode ---------------------------------------------


def _eval_closed_loop(*args, cwd):
    return subprocess.run([sys.executable, str(REPO / "scripts" / "eval_closed_loop.py"), *args],
                          capture_output=True, text=True, timeout=300, cwd=cwd)


def test_a_bad_task_after_good_ones_fails_before_any_episode(tmp_path):
    out = tmp_path / "eval"
    result = _eval_closed_loop("--policy", "expert", "--tasks", "reach-v3", "nope-v3", "--episodes", "1",
                               "--output-dir", str(out), cwd=tmp_path)
    assert result.returncode == 2
    assert "Unknown simulator task 'nope-v3'" in result.stderr
    assert not out.exists(), "an episode ran before the bad task was found"


def test_a_b1k_config_is_refused_by_the_simulator_evaluator(tmp_path):
    result = _eval_closed_loop("--config-name", "pi0_b1k_arm_focused_demo", "--checkpoint", str(tmp_path / "ckpt"),
                               "--tasks", "reach-v3", "--episodes", "1", cwd=tmp_path)
    assert result.returncode == 2
    assert "drives a robot with 23 action dims; the metaworld suite's robot has 4" in result.stderr, result.stderr


def test_a_checkpoint_of_another_config_is_named_as_such(jax_demo_checkpoint, tmp_path, monkeypatch):
    """The B1K demo checkpoint read with the Meta-World config: its stored stats are of other data."""
    monkeypatch.chdir(tmp_path)
    other = _config.get_config("metaworld_demo")
    with pytest.raises(ValueError, match=r"was trained on openpi/mini_b1k \(its assets\).*another config"):
        policy_config.create_trained_policy(other, jax_demo_checkpoint.checkpoint_dir)
