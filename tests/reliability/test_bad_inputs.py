"""Bad inputs a careful user can give: each must stop with one message that names the culprit (field, file, episode,
frame) and the fix, before anything is trained or deleted, never a traceback or a silently wrong run."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import warnings

import numpy as np
import pytest

from openpi import transforms as _transforms
from openpi.datasets import columns as _columns
from openpi.datasets import lerobot as _lerobot
from openpi.datasets import lerobot_meta as _lerobot_meta
from openpi.datasets import stats as _stats
from openpi.datasets import video as _video
from openpi.shared import normalize as _normalize
from openpi.training import config as _config
from openpi.training import preflight
from openpi.training import run_utils

REPO = pathlib.Path(__file__).resolve().parents[2]
DEMO = "pi0_b1k_arm_focused_demo"
EPISODE = 10  # the first episode of the miniature dataset (task 0)


def _inputs(args):
    config = _config.cli(args)
    return config, config.data_config()


def _info(root: pathlib.Path) -> dict:
    return json.loads((root / "meta" / "info.json").read_text())


def _write_info(root: pathlib.Path, info: dict) -> None:
    (root / "meta" / "info.json").write_text(json.dumps(info))


# ---- help and parse-time checks --------------------------------------------------------------------------------


def _help(script: str) -> str:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / script), DEMO, "--help"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "120"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _field_help(text: str, flag: str) -> str:
    """The help line of ``flag`` (tyro prints the flag, then its description up to the next flag)."""
    lines = [line.strip("│ ").strip() for line in text.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith(flag + " ") or line.startswith(flag + ","))
    body = []
    for line in lines[start + 1 :]:
        if line.startswith("--") or line.startswith("╰") or not line:
            break
        body.append(line)
    return " ".join(body)


@pytest.mark.parametrize("script", ["train.py", "train_pytorch.py"])
def test_help_describes_each_field_itself(script):
    text = _help(script)
    expected = {
        "--seed": "Seeds the weights' initialization",
        "--batch-size": "Global batch size",
        "--num-train-steps": "Total optimizer steps",
        "--overwrite": "Delete the experiment directory",
        "--resume": "Continue the experiment from its latest complete checkpoint",
        "--keep-period": "Checkpoints at multiples of this step are kept",
        "--model.max-token-len": "Prompt length in tokens",
        "--model.group-weights": "Loss weight per action group",
        "--model.delta-cap": "capped at this value",
        "--optimizer.b2": "second-moment",
    }
    for flag, words in expected.items():
        description = _field_help(text, flag)
        assert words in description, f"{flag}: {description!r}"
    assert "type: ignore" not in text
    # The old fault: one description repeated over the following fields.
    descriptions = [_field_help(text, f) for f in ("--seed", "--batch-size", "--num-workers", "--log-interval")]
    assert len(set(descriptions)) == len(descriptions)


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("--exp-name=", "--exp-name must be one non-empty directory name"),
        ("--exp-name=../../x", "--exp-name must be one non-empty directory name"),
        ("--save-interval=0", "--save-interval must be a positive number"),
        ("--log-interval=0", "--log-interval must be a positive number"),
    ],
)
def test_bad_run_fields_are_rejected_at_parse_time(override, words, capsys):
    with pytest.raises(SystemExit) as info:
        _config.cli([DEMO, override])
    assert info.value.code == 2
    assert words in " ".join(capsys.readouterr().err.replace("│", " ").split())


def test_a_loss_override_that_changes_nothing_is_rejected(capsys):
    weights = ["base", "1", "trunk", "1", "left_arm", "4", "right_arm", "4", "grippers", "1", "padding", "0"]
    with pytest.raises(SystemExit) as info:
        _config.cli(["pi0_b1k_uniform_demo", "--model.group-weights", *weights])
    assert info.value.code == 2
    assert "--model.group-weights has no effect: strategy 'uniform'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _config.cli(["pi0_b1k_uniform_demo", "--model.delta-cap=0.3"])
    assert "--model.delta-cap has no effect" in capsys.readouterr().err


def test_a_strategy_override_that_leaves_config_weights_unused_warns():
    with pytest.warns(UserWarning, match="model.group_weights is not used: strategy 'original'"):
        config = _config.cli([DEMO, "--model.loss-weighting-strategy=original"])
    assert config.model.loss_weighting.strategy == "original"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _config.cli([DEMO])  # the registered config itself uses all its fields


# ---- norm stats --------------------------------------------------------------------------------------------------


def test_missing_norm_stats_stop_the_run_naming_the_file_and_the_command(run):
    args, stats_dir = run
    (stats_dir / _normalize.NORM_STATS_FILE).unlink()
    config, data_config = _inputs(args)
    with pytest.raises(run_utils.InputError) as info:
        preflight.check_inputs(config, data_config, progress=False)
    message = str(info.value)
    assert str(stats_dir / _normalize.NORM_STATS_FILE) in message
    assert f"python scripts/compute_norm_stats.py --config-name={DEMO}" in message
    assert f"--output-dir={stats_dir}" in message


def test_norm_stats_of_another_width_fail_naming_both_sizes_and_the_file(run, demo_stats):
    args, stats_dir = run
    wide = {k: _normalize.NormStats(*(np.pad(np.asarray(a), (0, 9)) for a in (v.mean, v.std, v.q01, v.q99)))
            for k, v in demo_stats.items()}  # 23 → 32 dims, the extra ones constant
    _normalize.save(stats_dir, wide)
    config, data_config = _inputs(args)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning about dims 23..31, which the data does not have
        with pytest.raises(run_utils.InputError) as info:
            preflight.check_inputs(config, data_config, progress=False)
    message = str(info.value)
    assert "have 32 dims for 'state' but the data has 23" in message
    assert str(stats_dir / _normalize.NORM_STATS_FILE) in message


@pytest.mark.parametrize("stats_dims", [3, 5])
def test_normalize_refuses_stats_of_another_width(stats_dims):
    stats = {"actions": _normalize.NormStats(mean=np.zeros(stats_dims), std=np.ones(stats_dims))}
    with pytest.raises(ValueError, match=f"'actions' have {stats_dims} dims but the data has 4"):
        _transforms.Normalize(stats)({"actions": np.ones((2, 4), np.float32)})
    # The model's padded output (more dims than the stats) is the one case that keeps its tail.
    if stats_dims == 3:
        out = _transforms.Unnormalize(stats)({"actions": np.full((2, 4), 2.0, np.float32)})
        np.testing.assert_allclose(out["actions"], np.full((2, 4), 2.0), rtol=1e-5)


# ---- dataset files and metadata --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "template"),
    [
        ("data_path", "../outside/episode_{episode_index:08d}.parquet"),
        ("video_path", "/etc/{video_key}/episode_{episode_index:08d}.mp4"),
    ],
)
def test_path_templates_must_stay_inside_the_dataset(dataset, key, template):
    info = _info(dataset)
    info[key] = template
    _write_info(dataset, info)
    with pytest.raises(_lerobot_meta.DatasetFormatError, match="points outside the dataset root") as error:
        _lerobot_meta.LeRobotMetadata.load(dataset)
    assert repr(template) in str(error.value)


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda info: info.pop("video_path"), "has no 'video_path' path template (the dataset has video features)"),
        (lambda info: info.update(fps=0), "'fps' must be a positive number"),
        (lambda info: info["features"]["action"].pop("dtype"), "feature 'action' has no 'dtype'"),
        (lambda info: info.update(data_path="data/{chunk}/{episode_index}.parquet"), "unknown placeholder 'chunk'"),
    ],
)
def test_info_json_schema_is_validated_once_at_load(dataset, edit, words):
    info = _info(dataset)
    edit(info)
    _write_info(dataset, info)
    with pytest.raises(_lerobot_meta.DatasetFormatError, match=r"info\.json") as error:
        _lerobot_meta.LeRobotMetadata.load(dataset)
    assert words in str(error.value)


def _set_length(root: pathlib.Path, episode: int, length: int) -> None:
    path = root / "meta" / "episodes.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        if row["episode_index"] == episode:
            row["length"] = length
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_a_wrong_episode_length_names_episodes_jsonl_and_the_episode(dataset):
    meta = _lerobot_meta.LeRobotMetadata.load(dataset)
    _set_length(dataset, EPISODE, meta.episode(EPISODE).length - 5)  # too short: the reader overruns
    meta = _lerobot_meta.LeRobotMetadata.load(dataset)
    episodes_jsonl = str(dataset / "meta" / "episodes.jsonl")
    for read in (
        lambda: _columns.read_columns(meta, ["action"]),
        lambda: _lerobot.LeRobotDataset(root=dataset, camera_keys=(), preload_max_bytes=0).episode_data(EPISODE),
    ):
        with pytest.raises(_lerobot_meta.DatasetFormatError) as info:
            read()
        assert f"Episode {EPISODE} has" in str(info.value) and episodes_jsonl in str(info.value)


def test_an_empty_episode_selection_says_so(run, dataset):
    with pytest.raises(ValueError, match="the episode selection is empty"):
        _stats.compute_norm_stats(dataset, episodes=[], progress=False)
    args, _ = run
    config, data_config = _inputs(args)
    with pytest.raises(run_utils.InputError, match="selects no episodes"):
        preflight.check_inputs(config, dataclasses.replace(data_config, episodes=()), progress=False)


def _first_data_file(root: pathlib.Path) -> pathlib.Path:
    return _lerobot_meta.LeRobotMetadata.load(root).data_path(EPISODE)


def test_a_truncated_parquet_is_found_before_training_naming_the_file(run, dataset):
    path = _first_data_file(dataset)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    args, _ = run
    config, data_config = _inputs(args)
    with pytest.raises(_lerobot_meta.DatasetFormatError, match="truncated or not parquet") as info:
        preflight.check_inputs(config, data_config, progress=False)
    assert str(path) in str(info.value)
    # Read while training (the up-front check skipped), the error still names the file, not a bare ArrowInvalid.
    with pytest.raises(_lerobot_meta.DatasetFormatError, match=str(path)):
        _lerobot.LeRobotDataset(root=dataset, camera_keys=(), preload_max_bytes=0).episode_data(EPISODE)


def test_a_video_shorter_than_its_episode_is_found_before_training(run, dataset):
    meta = _lerobot_meta.LeRobotMetadata.load(dataset)
    key = "observation.images.rgb.head"
    path, _ = meta.video_path(EPISODE, key)
    length = meta.episode(EPISODE).length
    frames = np.zeros((length - 20, 64, 64, 3), np.uint8)
    _video.write_video(path, frames, fps=meta.fps, codec="h264")
    args, _ = run
    config, data_config = _inputs(args)
    with pytest.raises(_video.VideoDecodeError) as info:
        preflight.check_inputs(config, data_config, progress=False)
    message = str(info.value)
    assert str(path) in message and f"episode {EPISODE}" in message and f"{length} frames" in message
    # The frame itself, if it were sampled: the error names episode, frame and camera.
    dataset_ = _lerobot.LeRobotDataset(root=dataset, camera_keys=[key])
    with pytest.raises(_video.VideoDecodeError, match=f"Episode {EPISODE}, frame {length - 1}, camera '{key}'"):
        dataset_.decode_frame(EPISODE, key, length - 1)


def test_a_missing_video_is_found_before_training(run, dataset):
    path, _ = _lerobot_meta.LeRobotMetadata.load(dataset).video_path(EPISODE, "observation.images.rgb.left_wrist")
    path.unlink()
    args, _ = run
    config, data_config = _inputs(args)
    with pytest.raises(_video.VideoDecodeError, match=f"Video file not found: {path}"):
        preflight.check_inputs(config, data_config, progress=False)


def test_the_demo_dataset_message_points_at_its_writer(tmp_path):
    _, data_config = _inputs([DEMO, f"--data.root={tmp_path / 'absent'}"])
    with pytest.raises(_lerobot_meta.DatasetNotFoundError) as info:
        _lerobot_meta.resolve_root(data_config.repo_id, data_config.root)
    assert f"python -m openpi.datasets.mini_b1k --root {tmp_path / 'absent'}" in str(info.value)
    assert "huggingface-cli" not in str(info.value)


def test_a_good_dataset_passes_the_up_front_check(run):
    args, _ = run
    config, data_config = _inputs(args)
    preflight.check_inputs(config, data_config, progress=False)


@pytest.mark.parametrize("in_worker", [False, True])
def test_a_data_error_while_training_ends_the_script_in_one_line(run, monkeypatch, capsys, in_worker):
    """A data error raised mid-run (directly, or re-raised by a data-loader worker with its traceback text) ends
    the script with its message only."""
    args, _ = run
    message = f"Episode {EPISODE}, frame 61, camera 'head': Video file not found: /data/x.mp4"
    text = (f"Caught VideoDecodeError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
            f'  File "lerobot.py", line 1, in decode_frame\nopenpi.datasets.video.VideoDecodeError: {message}\n'
            if in_worker else message)

    def failing_train(config):
        raise _video.VideoDecodeError(text)

    monkeypatch.setattr(sys, "argv", ["train.py", *args])
    with pytest.raises(SystemExit) as info:
        run_utils.training_main(failing_train, "test")
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"error: {message}"
