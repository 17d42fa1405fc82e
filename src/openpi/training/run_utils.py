"""What the JAX and PyTorch trainers share: checkpoint-directory policy, wandb, logging, non-finite guards.

Kept framework-neutral so both trainers behave the same: the same directory rules for ``--overwrite`` /
``--resume`` / ``--resume-from``, the same wandb run config and tags (the loss strategy is a tag, so runs
group and compare), and the same stop on a NaN or inf loss.
"""

from __future__ import annotations

from collections.abc import Mapping
import errno
import fcntl
import json
import logging
import math
import os
import pathlib
import re
import shutil
import time
from typing import Any

import numpy as np

from openpi.datasets import video as _video
from openpi.shared import checkpoint_files as _files
from openpi.shared import cli as _cli
from openpi.training import config as _config

logger = logging.getLogger("openpi")

WANDB_ID_FILE = "wandb_id.txt"
METRICS_FILE = "metrics.jsonl"
LOCK_FILE = ".lock"
# Open lock files of the experiments this process trains; the OS drops the lock when the process dies.
_LOCKS: dict[pathlib.Path, Any] = {}


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or inf loss; raised before any checkpoint of the bad weights is written."""


class ExperimentBusyError(RuntimeError):
    """Another live run holds the experiment directory."""


class InputError(ValueError):
    """An input of the run (norm stats, weights, data) does not fit the config; found before training starts."""


class CheckpointSaveError(RuntimeError):
    """A checkpoint could not be written; the previous checkpoint is kept and the partial one removed."""


class CheckpointReadError(RuntimeError):
    """A checkpoint to resume from cannot be read: damaged, or written by the other framework's trainer."""


# What ends a training run with a message the user acts on (besides ``cli.USER_ERRORS``); the scripts that train
# report them in one line.
RUN_ERRORS = (NonFiniteLossError, CheckpointSaveError, CheckpointReadError, ExperimentBusyError,
              _video.VideoDecodeError)


def _lock(directory: pathlib.Path) -> None:
    """Takes the experiment's lock (``flock`` on ``<dir>/.lock``): a second run into the same directory is refused
    while the first lives, and a crashed run leaves nothing stuck (the kernel releases its lock)."""
    directory.mkdir(parents=True, exist_ok=True)
    handle = (directory / LOCK_FILE).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise ExperimentBusyError(
            f"Experiment directory {directory} is in use by a running training ({owner}). Wait for it to finish, "
            "stop it, or use another --exp-name."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {os.uname().nodename}\n")
    handle.flush()
    _LOCKS[directory] = handle


def release_checkpoint_dir(directory: pathlib.Path) -> None:
    """Releases the lock ``prepare_checkpoint_dir`` took (a no-op when this process holds none)."""
    handle = _LOCKS.pop(directory, None)
    if handle is not None:
        handle.close()  # closing the file drops the flock


def _has_progress(directory: pathlib.Path) -> bool:
    """Whether a previous run left anything worth keeping: a checkpoint or logged metrics."""
    metrics = directory / METRICS_FILE
    return bool(step_dirs(directory)) or (metrics.exists() and metrics.stat().st_size > 0)


def _clear(directory: pathlib.Path) -> None:
    """Removes everything in the experiment directory except its lock."""
    for path in directory.iterdir():
        if path.name == LOCK_FILE:
            continue
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def prepare_checkpoint_dir(config: _config.TrainConfig) -> tuple[pathlib.Path, bool]:
    """Locks the experiment directory and applies ``--overwrite`` / ``--resume``; returns it and whether to resume.

    Call it after every input has been validated: ``--overwrite`` deletes here. A directory holding neither a
    checkpoint nor metrics (a run that stopped before its first step) does not block a new run.
    """
    directory = config.checkpoint_dir
    if config.resume and not directory.exists():
        raise FileNotFoundError(f"--resume: experiment directory {directory} does not exist; drop --resume to "
                                "start a new run.")
    _lock(directory)
    if config.resume:
        return directory, True
    if config.overwrite or not _has_progress(directory):
        if any(p.name != LOCK_FILE for p in directory.iterdir()):
            logger.info("Removed the contents of %s (%s).", directory,
                        "--overwrite" if config.overwrite else "no checkpoint or metrics: a run that did not start")
        _clear(directory)
        return directory, False
    release_checkpoint_dir(directory)
    raise FileExistsError(
        f"Experiment directory {directory} already exists. Use --resume to continue it, --overwrite to replace "
        "it, or another --exp-name."
    )


def read_metrics(path: pathlib.Path, *, repair_last: bool = False) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl`` file. A line that is not a JSON object with a ``step`` is an error naming
    the file and the line, except, with ``repair_last``, a damaged last line (what a crash mid-write leaves),
    which is dropped with a warning."""
    lines = [(number, line) for number, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
    rows = []
    for i, (number, line) in enumerate(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            row, why = None, f"is not JSON ({error})"
        else:
            why = "has no 'step'"
        if not isinstance(row, dict) or "step" not in row:
            if repair_last and i == len(lines) - 1:
                logger.warning("%s: dropped its damaged last line %d (a crash mid-write); the run rewrites it.",
                               path, number)
                break
            raise ValueError(f"{path} line {number} {why}: the file is damaged (truncated?). Delete that line to "
                             "keep the other rows.")
        rows.append(row)
    return rows


def truncate_metrics(directory: pathlib.Path, step: int) -> None:
    """Drops the ``metrics.jsonl`` rows after ``step`` (logged after the checkpoint a run resumes from), so the
    resumed run writes each later step once; a damaged last line is repaired (dropped) with a warning."""
    path = directory / METRICS_FILE
    if not path.exists():
        return
    text = path.read_text()
    kept = [row for row in read_metrics(path, repair_last=True) if row["step"] <= step]
    rewritten = "".join(json.dumps(row) + "\n" for row in kept)
    if rewritten != text:
        path.write_text(rewritten)


def save_failure(error: BaseException, directory: pathlib.Path, step: int) -> CheckpointSaveError:
    """The one-line error for a checkpoint save of ``step`` into ``directory`` that raised ``error``."""
    chain, cause = [], error
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    no_space = any(getattr(e, "errno", None) == errno.ENOSPC or "No space left" in str(e) for e in chain)
    if not no_space:
        try:  # writers that lose errno (torch's "basic_ios::clear: iostream error"): ask the file system
            no_space = shutil.disk_usage(directory).free < 64 * 2**20
        except OSError:
            pass
    what = f"no space left on {directory}" if no_space else f"cannot write to {directory}: {error}"
    return CheckpointSaveError(
        f"Checkpoint of step {step} failed: {what}. Training stopped; the partial checkpoint was removed and the "
        "previous checkpoint is kept (continue with --resume once the problem is fixed)."
    )


def check_space(directory: pathlib.Path, needed_bytes: int, step: int) -> None:
    """Refuses a checkpoint of ``step`` that cannot fit in ``directory``'s free space, before anything is written:
    a write that runs out of space part-way leaves a partial step and, for orbax, a flood of background errors."""
    free = shutil.disk_usage(directory).free
    needed = int(needed_bytes * 1.05) + 2**20  # headroom for metadata, json and file-system blocks
    if free < needed:
        raise CheckpointSaveError(
            f"Checkpoint of step {step} failed: no space left on {directory} (it needs {needed / 2**20:.0f} MiB, "
            f"{free / 2**20:.0f} MiB are free). Training stopped before writing; the previous checkpoint is kept "
            "(free space or pick another --checkpoint-base-dir, then continue with --resume)."
        )


def resolve_resume_from(config: _config.TrainConfig) -> pathlib.Path | None:
    """``--resume-from`` as an experiment directory: a path, or ``CONFIG/EXP`` under the checkpoint base dir."""
    if not config.resume_from:
        return None
    candidate = pathlib.Path(config.resume_from).expanduser()
    if not candidate.is_dir():
        candidate = (pathlib.Path(config.checkpoint_base_dir) / config.resume_from).resolve()
    if not candidate.is_dir():
        raise FileNotFoundError(
            f"--resume-from={config.resume_from}: no experiment at {candidate}. Give a directory, or CONFIG/EXP "
            f"under {config.checkpoint_base_dir} (e.g. phase1_arm_heavy/my_exp after training phase 1)."
        )
    return candidate


def step_dirs(directory: pathlib.Path) -> list[int]:
    """Steps of the complete checkpoints in ``directory`` (plain integer names; temporary dirs are ignored)."""
    if not directory.is_dir():
        return []
    return sorted(int(p.name) for p in directory.iterdir() if p.is_dir() and re.fullmatch(r"\d+", p.name))


def unreadable_checkpoint(step_dir: pathlib.Path, error: BaseException) -> CheckpointReadError:
    """The error for a step directory whose files cannot be read (truncated, damaged), naming the earlier complete
    checkpoint to resume from instead, when one is kept."""
    root = error
    while (root.__cause__ or root.__context__) is not None:  # the reader's own error, not its wrappers'
        root = root.__cause__ or root.__context__
    text = str(root).strip()
    detail = text.splitlines()[0][:300] if text else type(root).__name__
    earlier = [s for s in step_dirs(step_dir.parent) if s < int(step_dir.name)]
    if earlier:
        previous = step_dir.parent / str(earlier[-1])
        offer = (f"The previous checkpoint is {previous}: move {step_dir.name} aside (mv {step_dir} "
                 f"{step_dir}.damaged) and run --resume again to continue from step {earlier[-1]}.")
    else:
        offer = ("No earlier checkpoint is kept (--keep-period keeps some); start over with --overwrite or a new "
                 "--exp-name.")
    return CheckpointReadError(f"Cannot resume: {step_dir} is damaged ({detail}). {offer}")


def check_resumable(step_dir: pathlib.Path, framework: str) -> None:
    """Refuses to resume a checkpoint the other framework's trainer wrote, saying how to go on from its weights."""
    if framework == "pytorch" and (step_dir / _files.JAX_PARAMS).is_dir():
        raise CheckpointReadError(
            f"Cannot resume {step_dir} with the PyTorch trainer: the JAX trainer (scripts/train.py) wrote it; resume "
            f"it there. To go on in PyTorch from its weights, start a new experiment with --resume-from "
            f"{step_dir.parent} (the optimizer state starts fresh)."
        )
    if framework == "jax" and (step_dir / _files.MODEL_FILE).is_file():
        raise CheckpointReadError(
            f"Cannot resume {step_dir} with the JAX trainer: the PyTorch trainer (scripts/train_pytorch.py) wrote it; "
            "resume it there. To go on in JAX from its weights, convert them (python scripts/convert_weights.py "
            f"pytorch-to-jax --input-dir {step_dir} --output OUT/params) and start a new experiment with "
            "--weight-path OUT/params (the optimizer state starts fresh)."
        )


def wandb_tags(config: _config.TrainConfig, data_config: _config.DataConfig) -> list[str]:
    """The run's strategy, config name and the levers it pulls, as wandb tags (filter and colour runs by them)."""
    weighting = config.model.loss_weighting
    tags = [weighting.strategy, config.name, f"norm:{data_config.norm}"]
    levers = {
        "exclude_padding": weighting.exclude_padding,
        "delta_weighting": "delta" in weighting.to_json(),
        "per_timestep_norm": data_config.per_timestep_norm,
        "delta_actions": any(data_config.delta_action_mask or ()),
        "sample_weights": data_config.sample_weights_path is not None,
    }
    tags += [name for name, on in levers.items() if on]
    if data_config.episodes_path is not None:  # e.g. the arm-heavy selection of filter_arm_heavy_episodes.py
        tags.append(f"episodes:{data_config.episodes_path.stem}")
    return tags


def action_layout(config: _config.TrainConfig, data_config: _config.DataConfig) -> dict[str, Any]:
    """The resolved action layout the loss used: each group's dims, its weight, and the robot's real dims."""
    weighting = config.model.loss_weighting
    groups = weighting.groups
    return {
        "groups": {} if groups is None else {n: list(d) for n, d in zip(groups.names, groups.dims, strict=True)},
        "group_weights": weighting.to_json().get("group_weights"),
        "dimension_weights": weighting.to_json().get("dimension_weights"),
        "robot_action_dim": data_config.robot_action_dim,
        "model_action_dim": config.model.action_dim,
    }


def init_wandb(
    config: _config.TrainConfig,
    data_config: _config.DataConfig,
    checkpoint_dir: pathlib.Path,
    *,
    resuming: bool,
    enabled: bool = True,
):
    """Starts (or resumes) the wandb run; offline with one notice when there are no credentials. Runs are grouped
    by config and strategy (seeds and exp names of one recipe side by side) and tagged with the strategy and
    levers (``wandb_tags``); the run config records the resolved action layout and weights (``action_layout``)."""
    import wandb  # half a second to import: only a training run needs it, not the serving and analysis code

    if not (config.wandb_enabled and enabled):
        return wandb.init(mode="disabled")
    mode = os.environ.get("WANDB_MODE")
    if mode is None and not _has_wandb_credentials():
        mode = "offline"
        print(
            "wandb: no credentials found (WANDB_API_KEY or ~/.netrc); logging offline to ./wandb. "
            "Upload later with `wandb sync wandb/offline-run-*`."
        )
    id_file = checkpoint_dir / WANDB_ID_FILE
    previous_id = id_file.read_text().strip() if resuming and id_file.exists() else None
    run_config = config.run_config() | {"action_layout": action_layout(config, data_config)}
    # Online, a resumed experiment continues its wandb run. wandb cannot reopen an offline run, so offline the
    # resumed part is a new run of the same name and group that records which run it continues.
    run_id = previous_id if mode != "offline" else None
    if previous_id and run_id is None:
        run_config["continues_wandb_run"] = previous_id
    strategy = config.model.loss_weighting.strategy
    run = wandb.init(
        project=config.project_name,
        name=config.exp_name,
        id=run_id,
        resume="allow" if run_id else None,
        config=run_config,
        tags=wandb_tags(config, data_config),
        group=f"{config.name}-{strategy}",
        job_type=strategy,
        mode=mode,
        dir=os.environ.get("WANDB_DIR"),
    )
    if previous_id is None:
        id_file.write_text(run.id)
    return run


def _has_wandb_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = pathlib.Path(os.environ.get("NETRC", pathlib.Path.home() / ".netrc"))
    return netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def check_finite(step: int, loss: float, metrics: Mapping[str, float], *, targets=None, groups=None) -> None:
    """Raises ``NonFiniteLossError`` naming the step, the groups whose loss is NaN or inf and, given the batch's
    normalized ``targets`` [B, H, D] and the ``ActionGroups``, the groups whose targets are already non-finite
    (the usual root cause: NaN in the data or the norm stats, which the model then spreads to every group)."""
    if math.isfinite(loss):
        return
    bad = [key.split("/", 1)[1] for key, value in metrics.items() if key.startswith("loss/") and not math.isfinite(value)]
    where = f" in action groups {bad}" if bad else ""
    if targets is not None and groups is not None:
        targets = np.asarray(targets)
        bad_targets = [n for n, d in zip(groups.names, groups.dims, strict=True) if not np.isfinite(targets[..., d]).all()]
        if bad_targets:
            where += f"; the normalized targets of {bad_targets} are non-finite"
    raise NonFiniteLossError(
        f"Loss became {loss} at step {step}{where}. Training stopped; no checkpoint was written from these weights. "
        "Check the data and norm stats of those groups (NaN/inf actions, zero-range normalization) or lower the "
        "learning rate."
    )


def check_finite_weights(step: int, info: Mapping[str, float]) -> None:
    """Raises ``NonFiniteLossError`` when the update of ``step`` left non-finite weights (``param_norm``)."""
    if math.isfinite(info["param_norm"]):
        return
    raise NonFiniteLossError(
        f"Weights became non-finite in the update of step {step} (grad_norm={info['grad_norm']:.4g}, "
        f"learning_rate={info['learning_rate']:.4g}). Training stopped; no checkpoint was written from these weights."
    )


def format_metrics(step: int, metrics: Mapping[str, Any]) -> str:
    """One log line: the overall numbers first, then per-group losses, then validation and closed-loop metrics."""
    head = [f"{k}={v:.4g}" for k, v in metrics.items() if "/" not in k]
    line = f"step {step}: " + " ".join(head)
    for prefix in ("loss", "val", "sim"):
        rest = [f"{k.split('/', 1)[1]}={v:.3g}" for k, v in metrics.items() if k.startswith(f"{prefix}/")]
        line += f" | {prefix}/ " + " ".join(rest) if rest else ""
    return line


class IntervalLogger:
    """Averages the step metrics of each log interval, adds ``step_time`` and ``samples_per_sec``, and writes the
    record to wandb, ``<checkpoint_dir>/metrics.jsonl`` (one JSON object per line, with ``step``) and the log.
    ``enabled=False`` only averages (DDP ranks other than 0)."""

    def __init__(self, run, checkpoint_dir: pathlib.Path, batch_size: int, *, enabled: bool = True):
        self._run, self._path = run, checkpoint_dir / METRICS_FILE
        self._batch_size, self._enabled = batch_size, enabled
        self._pending: list[Mapping[str, float]] = []
        self._start = time.perf_counter()

    def add(self, info: Mapping[str, float]) -> None:
        self._pending.append(info)

    def flush(self, step: int, extra: Mapping[str, float] | None = None, extra_seconds: float = 0.0) -> dict[str, float]:
        """Writes the interval ending at ``step`` (steps done) and starts the next one; returns the record.
        ``extra`` (validation metrics of this step, which took ``extra_seconds``) joins the record; its time is left
        out of ``step_time``."""
        elapsed = time.perf_counter() - self._start - extra_seconds
        record = {k: float(np.mean([p[k] for p in self._pending])) for k in self._pending[0]}
        record["step_time"] = elapsed / len(self._pending)
        record["samples_per_sec"] = self._batch_size * len(self._pending) / elapsed
        record |= extra or {}
        if self._enabled:
            self._run.log(record, step=step)
            with self._path.open("a") as f:
                f.write(json.dumps({"step": step, **record}) + "\n")
            logger.info(format_metrics(step, record))
        self._pending, self._start = [], time.perf_counter()
        return record


# Libraries whose INFO lines are their own bookkeeping (orbax logs through absl, with the whole CheckpointManager and
# its options as reprs; JAX lists the backends it could not load). Their warnings and errors still show.
QUIET_LOGGERS = ("absl", "jax", "orbax")


def quiet_library_logs() -> None:
    """Raises the libraries' loggers (``QUIET_LOGGERS``) to WARNING; the ``openpi`` logger keeps its INFO lines."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def training_main(train_fn, description: str) -> None:
    """The body of ``scripts/train.py`` and ``scripts/train_pytorch.py``: parse the config and train; a user error,
    a non-finite loss, a failed save, a busy experiment or a data error ends it in one ``error: ...`` line."""
    # force: an imported library may already have configured the root logger, which would hide our INFO lines.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S", force=True
    )
    quiet_library_logs()
    _cli.run_main(lambda: train_fn(_config.cli(description=description)), user_errors=RUN_ERRORS)
