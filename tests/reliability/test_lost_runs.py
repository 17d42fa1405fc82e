"""Faults that used to lose a run: two runs in one directory, ``--overwrite`` with a bad input, a run that died before
its first step, a full disk during a save (both trainers), and the metrics a resumed run writes twice."""

import dataclasses
import errno
import json
import os
import pathlib
import runpy
import signal
import subprocess
import sys

import numpy as np
import pytest
import safetensors.torch

from openpi.datasets import episode_files
from openpi.shared import checkpoint_files
from openpi.shared import normalize as _normalize
from openpi.training import config as _config
from openpi.training import jax_trainer
from openpi.training import pytorch_trainer
from openpi.training import run_utils

REPO = pathlib.Path(__file__).resolve().parents[2]


def _config_of(args, *extra):
    return _config.cli([*args, *extra])


def _steps(config) -> list[int]:
    return run_utils.step_dirs(config.checkpoint_dir)


def _metric_steps(config) -> list[int]:
    path = config.checkpoint_dir / run_utils.METRICS_FILE
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]


def test_a_second_run_is_refused_while_the_first_holds_the_directory(run):
    args, _ = run
    config = _config_of(args)
    directory, _ = run_utils.prepare_checkpoint_dir(config)
    try:
        with pytest.raises(run_utils.ExperimentBusyError, match=f"pid {os.getpid()}"):
            run_utils.prepare_checkpoint_dir(_config_of(args, "--overwrite"))
    finally:
        run_utils.release_checkpoint_dir(directory)


def test_a_killed_run_leaves_no_stuck_lock(run):
    args, _ = run
    config = _config_of(args)
    config.checkpoint_dir.mkdir(parents=True)
    holder = subprocess.Popen(  # a stand-in for a training process that holds the lock, then is killed
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); "
         "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(600)",
         str(config.checkpoint_dir / run_utils.LOCK_FILE)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(run_utils.ExperimentBusyError):
            run_utils.prepare_checkpoint_dir(config)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    directory, resuming = run_utils.prepare_checkpoint_dir(config)  # the kernel dropped the dead run's lock
    run_utils.release_checkpoint_dir(directory)
    assert not resuming


def _earlier_experiment(config) -> pathlib.Path:
    """An experiment directory as a finished earlier run leaves it: a checkpoint and metrics."""
    directory = config.checkpoint_dir
    (directory / "2" / "params").mkdir(parents=True)
    (directory / run_utils.METRICS_FILE).write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "loss": 0.9}\n')
    return directory


@pytest.mark.parametrize("trainer", [jax_trainer, pytorch_trainer], ids=["jax", "pytorch"])
def test_overwrite_checks_every_input_before_deleting(run, trainer):
    args, stats_dir = run
    config = _config_of(args, "--overwrite")
    directory = _earlier_experiment(config)
    with pytest.raises(FileNotFoundError, match="weight-path"):
        trainer.train(_config_of(args, "--overwrite", "--weight-path=/nonexistent/params"), progress=False)
    (stats_dir / _normalize.NORM_STATS_FILE).unlink()
    with pytest.raises(run_utils.InputError, match="Norm stats not found"):
        trainer.train(config, progress=False)
    assert _steps(config) == [2] and _metric_steps(config) == [1, 2]  # last week's run survives the typos
    assert not (directory / run_utils.LOCK_FILE).exists()  # refused before it even locked the directory


def _sample_weights_without_episodes(directory: pathlib.Path) -> str:
    """A well-formed sample-weights file that covers no episode: the loader refuses it when it is built."""
    return str(episode_files.save_sample_weights(directory / "weights.json", {}, criterion=_NoCriterion()))


@dataclasses.dataclass(frozen=True)
class _NoCriterion:
    """The criterion a sample-weights file records (any dataclass)."""


# Checks that only run once the model, the device mesh or the data loader are built.
LATE_FAILURES = {
    "fsdp_devices": (["--fsdp-devices=3"], ValueError, "fsdp_devices=3 must divide"),
    "batch_size": (["--batch-size=1000"], ValueError, "fewer than one batch of 1000"),
    "sample_weights": ([_sample_weights_without_episodes], KeyError, "Sample weights have no entry for episode"),
}


@pytest.mark.parametrize(
    ("trainer", "failure"),
    [(jax_trainer, name) for name in LATE_FAILURES]
    + [(pytorch_trainer, name) for name in LATE_FAILURES if name != "fsdp_devices"],  # no mesh in PyTorch
    ids=lambda x: getattr(x, "__name__", x).rsplit(".", 1)[-1],
)
def test_overwrite_deletes_nothing_when_a_late_check_fails(run, tmp_path, trainer, failure):
    """Every check before step 1 runs before ``--overwrite`` clears the experiment: the mesh, the loader's batch
    size and the sample-weights file too."""
    args, _ = run
    extra, error, message = LATE_FAILURES[failure]
    extra = [f"--data.sample-weights-path={x(tmp_path)}" if callable(x) else x for x in extra]
    config = _config_of(args, "--overwrite", *extra)
    directory = _earlier_experiment(config)
    with pytest.raises(error, match=message):
        trainer.train(config, progress=False)
    assert _steps(config) == [2] and _metric_steps(config) == [1, 2]
    assert not (directory / run_utils.LOCK_FILE).exists()


def test_a_run_that_failed_before_its_first_step_does_not_block_a_rerun(run):
    args, _ = run
    config = _config_of(args)
    directory, _ = run_utils.prepare_checkpoint_dir(config)
    (directory / run_utils.WANDB_ID_FILE).write_text("abc123")  # all a run leaves that dies while starting
    run_utils.release_checkpoint_dir(directory)
    again, resuming = run_utils.prepare_checkpoint_dir(config)  # the same command
    run_utils.release_checkpoint_dir(again)
    assert not resuming and sorted(p.name for p in again.iterdir()) == [run_utils.LOCK_FILE]


def test_a_directory_with_progress_still_needs_resume_or_overwrite(run):
    args, _ = run
    config = _config_of(args)
    _earlier_experiment(config)
    with pytest.raises(FileExistsError, match="--resume to continue it, --overwrite to replace it"):
        run_utils.prepare_checkpoint_dir(config)
    with pytest.raises(FileExistsError):
        run_utils.prepare_checkpoint_dir(config)  # the refusal released the lock it took


def _no_space(*_, **__):
    raise OSError(errno.ENOSPC, "No space left on device")


def _data_config(config):
    return config.data_config()


def _jax_state(step, size=4):
    import flax.nnx as nnx
    import jax.numpy as jnp

    weights = np.random.default_rng(step).normal(size=size).astype(np.float32)  # random: orbax compresses
    params = nnx.State({"w": jnp.asarray(weights)})
    return jax_trainer.TrainState(step=jnp.asarray(step), params=params, opt_state=(), ema_params=None,
                                  model_def=None, tx=None)


def test_jax_disk_full_stops_at_that_save_keeping_the_previous_checkpoint(run, monkeypatch):
    """orbax writes in the background: the failure must surface at the save that failed, not one save later."""
    args, _ = run
    config = _config_of(args)
    config.checkpoint_dir.mkdir(parents=True)
    mgr = jax_trainer._checkpoints.manager(config.checkpoint_dir, keep_period=None)
    data_config = _data_config(config)
    jax_trainer._save(mgr, _jax_state(1), data_config)
    monkeypatch.setattr(_normalize, "save", _no_space)  # the assets writer of step 2 finds the disk full
    with pytest.raises(run_utils.CheckpointSaveError) as info:
        jax_trainer._save(mgr, _jax_state(2), data_config)
    message = str(info.value)
    assert f"Checkpoint of step 2 failed: no space left on {config.checkpoint_dir}" in message and "\n" not in message
    assert sorted(p.name for p in config.checkpoint_dir.iterdir() if p.is_dir()) == ["1"]  # no partial step 2
    restored = jax_trainer._checkpoints.restore_params(mgr, 1)
    np.testing.assert_array_equal(restored["w"], np.asarray(_jax_state(1).params["w"]))


def _free_space(monkeypatch, free_bytes: int) -> None:
    usage = type("Usage", (), {"free": free_bytes})()
    monkeypatch.setattr(run_utils.shutil, "disk_usage", lambda _: usage)


def test_jax_save_that_cannot_fit_is_refused_before_anything_is_written(run, monkeypatch):
    """A real full disk made orbax print ~120 background tracebacks and leave a temp dir: a save whose expected size
    (the previous step's bytes on disk) exceeds the free space now stops before orbax starts."""
    args, _ = run
    config = _config_of(args)
    config.checkpoint_dir.mkdir(parents=True)
    mgr = jax_trainer._checkpoints.manager(config.checkpoint_dir, keep_period=None)
    data_config = _data_config(config)
    jax_trainer._save(mgr, _jax_state(1, size=2**18), data_config)  # 1 MiB of weights
    written = sum(f.stat().st_size for f in (config.checkpoint_dir / "1").rglob("*") if f.is_file())
    assert written > 2**20
    _free_space(monkeypatch, 2 * 2**20)
    with pytest.raises(run_utils.CheckpointSaveError) as info:
        jax_trainer._save(mgr, _jax_state(2, size=2**18), data_config)
    needed_mib = (int(written * 1.05) + 2**20) / 2**20
    assert f"no space left on {config.checkpoint_dir} (it needs {needed_mib:.0f} MiB, 2 MiB are free)" in str(info.value)
    assert sorted(p.name for p in config.checkpoint_dir.iterdir()) == ["1"]  # nothing of step 2, no temp dir


def test_pytorch_save_that_cannot_fit_is_refused_before_anything_is_written(run, monkeypatch):
    import torch

    args, _ = run
    config = _config_of(args)
    config.checkpoint_dir.mkdir(parents=True)
    model = torch.nn.Linear(512, 512)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 512)).sum().backward()
    optimizer.step()  # the moments exist now: two more copies of the weights, plus the step counters
    _free_space(monkeypatch, 2 * 2**20)
    with pytest.raises(run_utils.CheckpointSaveError) as info:
        pytorch_trainer.save_checkpoint(config.checkpoint_dir, 1, model, optimizer, config, _data_config(config),
                                        world_size=1)
    weights = (512 * 512 + 512) * 4
    needed_mib = (int((3 * weights + 2 * 4) * 1.05) + 2**20) / 2**20
    assert f"(it needs {needed_mib:.0f} MiB, 2 MiB are free)" in str(info.value)
    assert list(config.checkpoint_dir.iterdir()) == []


def test_orbax_s_own_full_disk_reports_are_dropped_and_its_other_errors_kept(caplog):
    """Every background writer of a failed orbax save logs the failure with its traceback (hundreds of lines before
    the trainer's one-line error); other orbax errors still reach the log."""
    import logging

    absl = logging.getLogger("absl")
    with caplog.at_level(logging.ERROR):
        try:
            raise ValueError('RESOURCE_EXHAUSTED: Error writing "leaves.leaf_00024/0.0": No space left on device')
        except ValueError:
            absl.error("_SignalingThread.run() raised an exception", exc_info=True)
        absl.error("Failed to restore item params")
    assert [r.getMessage() for r in caplog.records if r.name == "absl"] == ["Failed to restore item params"]


def test_pytorch_disk_full_stops_at_that_save_keeping_the_previous_checkpoint(run, monkeypatch):
    import torch

    args, _ = run
    config = _config_of(args)
    config.checkpoint_dir.mkdir(parents=True)
    data_config = _data_config(config)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    pytorch_trainer.save_checkpoint(config.checkpoint_dir, 1, model, optimizer, config, data_config, world_size=1)
    real_save_file = safetensors.torch.save_file

    def write_part_then_fill_up(tensors, path, metadata=None):
        real_save_file(tensors, path, metadata=metadata)
        _no_space()

    monkeypatch.setattr(safetensors.torch, "save_file", write_part_then_fill_up)
    with pytest.raises(run_utils.CheckpointSaveError, match=f"no space left on {config.checkpoint_dir}"):
        pytorch_trainer.save_checkpoint(config.checkpoint_dir, 2, model, optimizer, config, data_config, world_size=1)
    assert sorted(p.name for p in config.checkpoint_dir.iterdir() if p.is_dir()) == ["1"]  # tmp-2 removed
    assert (config.checkpoint_dir / "1" / checkpoint_files.MODEL_FILE).exists()


def test_torch_s_errno_less_write_error_is_reported_as_a_full_disk_when_the_disk_is_full(tmp_path, monkeypatch):
    """torch.save on a full disk raises RuntimeError("basic_ios::clear: iostream error"), without errno."""
    full = type("Usage", (), {"free": 1024})()
    monkeypatch.setattr(run_utils.shutil, "disk_usage", lambda _: full)
    error = run_utils.save_failure(RuntimeError("basic_ios::clear: iostream error"), tmp_path, 7)
    assert f"no space left on {tmp_path}" in str(error)
    monkeypatch.undo()
    error = run_utils.save_failure(PermissionError(errno.EACCES, "Permission denied"), tmp_path, 7)
    assert f"cannot write to {tmp_path}" in str(error) and "Permission denied" in str(error)


def test_the_script_reports_a_failed_save_in_one_line(run, monkeypatch, capsys):
    """training_main turns the save error into one ``error:`` line and exit status 2 (no traceback)."""
    args, _ = run

    def failing_train(config):
        raise run_utils.save_failure(OSError(errno.ENOSPC, "No space left on device"), config.checkpoint_dir, 5)

    monkeypatch.setattr(sys, "argv", ["train.py", *args])
    with pytest.raises(SystemExit) as info:
        run_utils.training_main(failing_train, "test")
    assert info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "no space left on" in errors[0]


def test_resume_drops_the_metrics_logged_after_its_checkpoint(tmp_path):
    logger = run_utils.IntervalLogger(type("Run", (), {"log": lambda *a, **k: None})(), tmp_path, batch_size=2)
    for step in (1, 2, 3):  # checkpoint at 2, then step 3 logged, then a crash
        logger.add({"loss": float(step)})
        logger.flush(step)
    run_utils.truncate_metrics(tmp_path, 2)  # what the trainers do after restoring step 2
    logger.add({"loss": 30.0})
    logger.flush(3)
    rows = [json.loads(line) for line in (tmp_path / run_utils.METRICS_FILE).read_text().splitlines()]
    assert [(r["step"], r["loss"]) for r in rows] == [(1, 1.0), (2, 2.0), (3, 30.0)]


def test_weights_of_another_shape_fail_in_one_line(run, tmp_path):
    args, _ = run
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{"params/img/embedding/kernel": np.zeros((3, 3, 3, 7), np.float32)})  # PaliGemma layout
    config = _config_of(args, f"--weight-path={bad}")
    with pytest.raises(run_utils.InputError, match=r"shape mismatch at PaliGemma/img/embedding/kernel: .* has "
                       r"\(3, 3, 3, 7\), model expects \(16, 16, 3, 32\)") as info:
        jax_trainer.train(config, progress=False)
    assert "\n" not in str(info.value)
    assert not config.checkpoint_dir.exists()


def test_pytorch_weights_of_another_shape_fail_in_one_line():
    import torch

    from openpi.models_pytorch import weight_conversion

    model = torch.nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"first weight: \(2, 4\) in the weights, \(2, 3\) in the model") as info:
        weight_conversion.load_into(model, {"weight": np.zeros((2, 4), np.float32), "bias": np.zeros(2, np.float32)})
    assert "\n" not in str(info.value)


def test_convert_weights_with_bad_params_prints_one_line(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_text("not an npz")
    for params in (bad, tmp_path / "missing", tmp_path):
        monkeypatch.setattr(sys, "argv", ["convert_weights.py", "jax-to-pytorch", f"--params={params}",
                                          f"--output-dir={tmp_path / 'out'}"])
        with pytest.raises(SystemExit) as info:
            runpy.run_path(str(REPO / "scripts" / "convert_weights.py"), run_name="__main__")
        assert info.value.code == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and str(params) in errors[0]


def _truncate(path: pathlib.Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


def test_jax_resume_onto_a_damaged_step_names_it_and_offers_the_previous_one(run):
    args, _ = run
    config = _config_of(args)
    config.checkpoint_dir.mkdir(parents=True)
    mgr = jax_trainer._checkpoints.manager(config.checkpoint_dir, keep_period=1)
    data_config = _data_config(config)
    for step in (1, 2):
        jax_trainer._save(mgr, _jax_state(step, size=2**16), data_config)
    biggest = max((config.checkpoint_dir / "2" / "train_state").rglob("*"), key=lambda f: f.stat().st_size)
    _truncate(biggest)
    with pytest.raises(run_utils.CheckpointReadError) as info:
        jax_trainer._checkpoints.restore_train_state(mgr, 2, _jax_state(0, size=2**16))
    message = str(info.value)
    assert f"{config.checkpoint_dir / '2'} is damaged" in message
    assert f"The previous checkpoint is {config.checkpoint_dir / '1'}" in message and "\n" not in message
    restored = jax_trainer._checkpoints.restore_train_state(mgr, 1, _jax_state(0, size=2**16))
    np.testing.assert_array_equal(np.asarray(restored.params["w"]), np.asarray(_jax_state(1, size=2**16).params["w"]))


def test_pytorch_resume_onto_a_truncated_model_file_names_it_and_offers_the_previous_one(run):
    import torch

    args, _ = run
    config = dataclasses.replace(_config_of(args), keep_period=1)
    config.checkpoint_dir.mkdir(parents=True)
    data_config = _data_config(config)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    for step in (1, 2):
        pytorch_trainer.save_checkpoint(config.checkpoint_dir, step, model, optimizer, config, data_config, world_size=1)
    _truncate(config.checkpoint_dir / "2" / checkpoint_files.MODEL_FILE)
    with pytest.raises(run_utils.CheckpointReadError, match=f"The previous checkpoint is {config.checkpoint_dir / '1'}"):
        pytorch_trainer.load_checkpoint(config.checkpoint_dir / "2", model, optimizer)
    assert pytorch_trainer.load_checkpoint(config.checkpoint_dir / "1", model, optimizer) == 1
    _truncate(config.checkpoint_dir / "1" / checkpoint_files.OPTIMIZER_FILE)
    with pytest.raises(run_utils.CheckpointReadError, match="No earlier checkpoint is kept"):
        pytorch_trainer.load_checkpoint(config.checkpoint_dir / "1", model, optimizer)


def test_resuming_the_other_framework_s_experiment_says_who_wrote_it_and_how_to_go_on(run, monkeypatch, capsys):
    """A PyTorch --resume of a JAX experiment failed on a missing model.safetensors; a JAX --resume of a PyTorch one
    with orbax's KeyError."""
    args, _ = run
    step_dir = _config_of(args).checkpoint_dir / "3"
    (step_dir / checkpoint_files.JAX_PARAMS).mkdir(parents=True)  # the JAX trainer's layout
    monkeypatch.setattr(sys, "argv", ["train_pytorch.py", *args, "--resume"])
    with pytest.raises(SystemExit) as info:
        run_utils.training_main(pytorch_trainer.train, "test")
    assert info.value.code == 2
    error = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "the JAX trainer (scripts/train.py) wrote it" in error[0]
    assert f"--resume-from {step_dir.parent}" in error[0]
    (step_dir / checkpoint_files.JAX_PARAMS).rmdir()
    (step_dir / checkpoint_files.MODEL_FILE).write_bytes(b"")  # the PyTorch trainer's layout
    with pytest.raises(run_utils.CheckpointReadError, match=r"the PyTorch trainer \(scripts/train_pytorch.py\) "
                       r"wrote it.*convert_weights.py pytorch-to-jax --input-dir"):
        run_utils.check_resumable(step_dir, "jax")
