"""The training lifecycle, written once for both frameworks; ``jax_trainer`` and ``pytorch_trainer`` are backends.

Order matters: every check that can fail before step 1 (inputs, norm stats, starting weights, device mesh and batch
split, the data loader's batch and sample-weight checks) runs before the experiment directory is locked, and so
before ``--overwrite`` deletes anything (the held-out windows of validation are chosen there too). Then: directory,
restore, metrics/wandb, the step loop with its log, validation (``training.validation``: sampled actions on held-out
windows, closed-loop success in the simulator, from the live model, joined to the step's log row) and save cadence,
finish. Step metrics reach the host only at a log or save interval (``Backend.to_host``), so a JAX run never
waits for the device between intervals; a checkpoint is written only once every step before it is known finite.
"""

from __future__ import annotations

import logging
import math
import pathlib
import time
from typing import Any
from typing import Literal
from typing import Protocol

import numpy as np
import tqdm

from openpi.training import config as _config
from openpi.training import data_loader as _data_loader
from openpi.training import preflight
from openpi.training import run_utils
from openpi.training import validation

logger = logging.getLogger("openpi")


class Backend(Protocol):
    """What a framework contributes to the lifecycle. ``rank`` 0 of ``world_size`` processes is the main one."""

    framework: Literal["jax", "pytorch"]
    rank: int
    world_size: int
    # Whether every process (not only the main one) runs the input checks.
    preflight_on_every_process: bool

    def agree(self, data_config: _config.DataConfig) -> None:
        """Stops when the processes of a multi-process job do not train the same config on the same data."""

    def init(self, weights: pathlib.Path | str | None) -> None:
        """Builds the model, optimizer and devices; ``weights`` (a step directory or ``weight_path``) replace the
        initial ones. Raises on anything that does not fit (weights, device count, mesh) without touching disk."""

    def loader_options(self) -> dict[str, Any]:
        """Keyword arguments of ``data_loader.create_data_loader`` for this framework and process."""

    def any_failed(self, failed: bool) -> bool:
        """Whether ``failed`` is true on any process (a collective: every process must call it)."""

    def barrier(self) -> None: ...

    def open(self, checkpoint_dir: pathlib.Path) -> None:
        """Attaches the prepared experiment directory (checkpoint writer, leftovers of an interrupted save)."""

    def restore(self, step: int) -> int:
        """Restores the checkpoint of ``step`` (weights, optimizer, adaptive loss-balance state); returns its step."""

    def step(self, step: int, batch: Any) -> tuple[Any, Any]:
        """One update of 0-based ``step``; returns (metrics, normalized target actions), possibly on the device."""

    def to_host(self, infos: list[Any]) -> list[dict[str, float]]:
        """The metrics of several steps as floats, in one transfer."""

    def local_targets(self, targets: Any) -> np.ndarray:
        """This process's rows of a batch's targets (to name the groups whose targets are non-finite)."""

    def save(self, step: int, data_config: _config.DataConfig) -> None:
        """Writes the checkpoint of ``step`` (steps done) and waits until it is complete."""

    def close(self) -> None:
        """Lets checkpoints already started complete; runs also when training stopped on an error."""

    def sampling_model(self) -> Any:
        """The model as the next checkpoint would hold it (JAX: the EMA weights, if any), to sample actions from in
        this process without writing a checkpoint (validation); a model in train mode may be left in eval mode."""


def initial_weights(config: _config.TrainConfig, resume_from: pathlib.Path | None) -> pathlib.Path | str | None:
    """Where a fresh run's weights come from: the latest step directory of another experiment (``--resume-from``),
    ``weight_path``, or None for the seeded random init."""
    if resume_from is not None:
        steps = run_utils.step_dirs(resume_from)
        if not steps:
            raise FileNotFoundError(f"--resume-from: {resume_from} has no complete checkpoint.")
        logger.info("Starting from the weights of %s (--resume-from).", resume_from / str(steps[-1]))
        return resume_from / str(steps[-1])
    return config.weight_path


def run(config: _config.TrainConfig, backend: Backend, *, progress: bool = True) -> Backend:
    """Runs (or resumes) training as configured; returns the backend holding the final model or state."""
    try:
        _run(config, backend, progress=progress)
    finally:
        run_utils.release_checkpoint_dir(config.checkpoint_dir)  # a no-op on processes that hold no lock
    return backend


def _run(config: _config.TrainConfig, backend: Backend, *, progress: bool) -> None:
    run_utils.quiet_library_logs()
    main = backend.rank == 0
    if not main:
        logger.setLevel(logging.WARNING)  # the log comes from process 0; errors and warnings from every process
    progress = progress and main
    # Everything that can fail before step 1 runs before the experiment directory is locked or cleared.
    data_config = config.data_config()
    backend.agree(data_config)
    if main or backend.preflight_on_every_process:
        preflight.check_inputs(config, data_config, progress=progress)
    validation.check_sim_eval(config)
    resume_from = run_utils.resolve_resume_from(config)
    steps = run_utils.step_dirs(config.checkpoint_dir) if config.resume else []
    restore_step = steps[-1] if steps else None
    if restore_step is not None:
        run_utils.check_resumable(config.checkpoint_dir / str(restore_step), backend.framework)
    backend.init(initial_weights(config, resume_from) if restore_step is None else None)
    start_step = restore_step or 0
    loader = _data_loader.create_data_loader(config, data_config, start_step=start_step, **backend.loader_options())

    watchers = _on_main(backend, lambda: _watchers(config, data_config, backend)) or {}

    prepared = _on_main(backend, lambda: run_utils.prepare_checkpoint_dir(config))
    checkpoint_dir, resuming = prepared or (config.checkpoint_dir, config.resume)
    if not checkpoint_dir.is_dir():
        raise FileNotFoundError(
            f"Process {backend.rank} does not see {checkpoint_dir}, made by process 0: --checkpoint-base-dir must be "
            "on a filesystem that every host shares."
        )
    backend.open(checkpoint_dir)
    if restore_step is not None:
        restored = backend.restore(restore_step)
        if restored != restore_step:
            raise RuntimeError(f"{checkpoint_dir / str(restore_step)} holds step {restored}: the directory changed "
                               "while this run started.")
        logger.info("Resumed from step %d in %s.", restore_step, checkpoint_dir)
    if main:
        run_utils.truncate_metrics(checkpoint_dir, start_step)

    run = run_utils.init_wandb(config, data_config, checkpoint_dir, resuming=resuming, enabled=main)
    interval = run_utils.IntervalLogger(run, checkpoint_dir, config.batch_size, enabled=main)
    bar = tqdm.tqdm(total=config.num_train_steps, initial=start_step, disable=not progress, dynamic_ncols=True)
    groups = config.model.loss_weighting.groups
    batches = iter(loader)
    pending: list[tuple[int, Any, Any]] = []  # (steps done, metrics, targets) not yet on the host
    try:
        for step in range(start_step, config.num_train_steps):
            info, targets = backend.step(step, next(batches))
            done = step + 1  # steps are counted from 1 in logs, metrics and checkpoint names
            pending.append((done, info, targets))
            bar.update(1)
            last = done == config.num_train_steps
            # At every interval, and at the last step of a run at least one interval long (not of smoke runs).
            watch = {k: w for k, (every, w) in watchers.items()
                     if done % every == 0 or (last and config.num_train_steps >= every)}
            log = done % config.log_interval == 0 or last or bool(watch)  # validation joins its step's log row
            save = done % config.save_interval == 0 or last
            if log or save:  # before a save too: a checkpoint is only written once its steps are known finite
                _drain(backend, pending, interval, groups)
            if log:
                extra, seconds = _watch(backend, watch)
                bar.set_postfix(loss=f"{interval.flush(done, extra, seconds)['loss']:.4f}")
            if save:
                backend.save(done, data_config)
        backend.barrier()
    finally:
        bar.close()
        backend.close()
        run.finish()


def _watchers(config: _config.TrainConfig, data_config: _config.DataConfig, backend: Backend) -> dict:
    """Prefix -> (interval, callable of the live model) of the validations this run does (main process only)."""
    if backend.world_size > 1 and backend.framework == "jax":
        if config.val_interval or config.sim_eval_interval:
            logger.info("Validation is off: a multi-process JAX run's weights span hosts (run eval_policy.py on "
                        "its checkpoints instead).")
        return {}
    watchers = {}
    if (validator := validation.create_validator(config, data_config)) is not None:
        watchers["val"] = (config.val_interval, validator)
    if (sim := validation.create_sim_evaluator(config, data_config)) is not None:
        watchers["sim"] = (config.sim_eval_interval, sim)
    return watchers


def _watch(backend: Backend, watch: dict) -> tuple[dict[str, float], float]:
    """The due validations' metrics on the live model, each with its wall time as ``<prefix>/seconds``, and the
    total time they took."""
    record, total = {}, 0.0
    for prefix, fn in watch.items():
        start = time.perf_counter()
        record |= fn(backend.sampling_model())
        seconds = time.perf_counter() - start
        record[f"{prefix}/seconds"], total = seconds, total + seconds
    return record, total


def _drain(backend: Backend, pending: list, interval: run_utils.IntervalLogger, groups) -> None:
    """Brings the pending steps' metrics to the host, stops at the first step with a non-finite loss or weights,
    and adds them to the interval's averages."""
    infos = backend.to_host([info for _, info, _ in pending])
    for (done, _, targets), info in zip(pending, infos, strict=True):
        local = None if math.isfinite(info["loss"]) else backend.local_targets(targets)
        run_utils.check_finite(done, info["loss"], info, targets=local, groups=groups)
        run_utils.check_finite_weights(done, info)
        interval.add(info)
    pending.clear()


def _on_main(backend: Backend, fn):
    """Runs ``fn`` on process 0 only (None elsewhere). When it fails there, every process raises, so none waits
    forever for process 0 at the next collective."""
    result, error = None, None
    if backend.rank == 0:
        try:
            result = fn()
        except Exception as e:  # re-raised below, after the other processes learned of it
            error = e
    if backend.any_failed(error is not None) and error is None:
        raise RuntimeError("Process 0 failed (its log has the error); stopping this process too.")
    if error is not None:
        raise error
    return result
