"""A run is a config x strategy x seed, trained with the project's trainers (``jax_trainer`` / ``pytorch_trainer``)
and evaluated once; a run whose evaluation and checkpoint are already on disk is read back, not repeated, so an
interrupted comparison continues where it stopped."""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import logging
import pathlib
from typing import Any
from typing import Literal

from openpi.shared import compile_cache
from openpi.training import config as _config
from openpi.training import jax_trainer
from openpi.training import pytorch_trainer
from openpi.training import run_utils

logger = logging.getLogger("openpi.demo")

Framework = Literal["jax", "pytorch"]
EVAL_FILE = "eval.json"


@dataclasses.dataclass(frozen=True)
class Schedule:
    """How long and how a comparison's runs train (the same for every strategy and seed)."""

    steps: int
    batch_size: int
    log_interval: int
    warmup_steps: int | None = None
    """None: the config's."""


def configure(
    base: _config.TrainConfig,
    *,
    exp_name: str,
    seed: int,
    schedule: Schedule,
    data_root: pathlib.Path,
    output_dir: pathlib.Path,
    episodes_path: pathlib.Path | None = None,
    project_name: str | None = None,
    wandb: bool = True,
) -> _config.TrainConfig:
    """``base`` trained for ``schedule`` at ``seed`` on ``data_root`` (``episodes_path``: its training-episode
    list), with assets and checkpoints under ``output_dir``; one checkpoint, at the last step, replacing any
    earlier one of the same experiment."""
    data = {"root": str(data_root)} | ({"episodes_path": str(episodes_path)} if episodes_path else {})
    warmup = {} if schedule.warmup_steps is None else {"warmup_steps": schedule.warmup_steps}
    return dataclasses.replace(
        base,
        exp_name=exp_name,
        seed=seed,
        data=dataclasses.replace(base.data, **data),
        assets_base_dir=str(output_dir / "assets"),
        checkpoint_base_dir=str(output_dir / "checkpoints"),
        num_train_steps=schedule.steps,
        save_interval=schedule.steps,
        log_interval=schedule.log_interval,
        lr_schedule=dataclasses.replace(base.lr_schedule, decay_steps=schedule.steps, **warmup),
        batch_size=schedule.batch_size,
        project_name=project_name or base.project_name,
        wandb_enabled=wandb,
        overwrite=True,
    )


@dataclasses.dataclass(frozen=True)
class Run:
    """One run of a comparison: a strategy's config at one seed, trained with one framework."""

    strategy: str
    seed: int
    config: _config.TrainConfig
    eval_dir: pathlib.Path
    """Where the run's evaluation writes eval.json."""
    framework: Framework = "jax"

    @property
    def checkpoint(self) -> pathlib.Path:
        """The step directory of the last step."""
        return self.config.checkpoint_dir / str(self.config.num_train_steps)

    @property
    def eval_json(self) -> pathlib.Path:
        return self.eval_dir / EVAL_FILE

    @property
    def finished(self) -> bool:
        return self.eval_json.exists() and self.checkpoint.exists()

    def metrics(self) -> list[dict[str, Any]]:
        """The training metrics (metrics.jsonl, one record per log interval)."""
        return run_utils.read_metrics(self.config.checkpoint_dir / run_utils.METRICS_FILE)


def train(config: _config.TrainConfig, framework: Framework) -> None:
    """Trains ``config`` with the framework's trainer."""
    compile_cache.enable()  # the runs of a comparison share one model structure: compiled once, read back after
    if framework == "jax":
        jax_trainer.train(config)
    else:
        pytorch_trainer.train(config)


def execute(run: Run, evaluate: Callable[[Run], object]) -> dict[str, Any]:
    """Trains and evaluates ``run`` (``evaluate`` writes its eval.json) unless it is finished; returns the run's
    record: seed, config name, checkpoint, training metrics and eval_json (what comparisons read back)."""
    if run.finished:
        logger.info("Reusing %s (seed %d): %s.", run.strategy, run.seed, run.eval_json)
    else:
        logger.info("Training %s (seed %d, %s).", run.strategy, run.seed, run.framework)
        train(run.config, run.framework)
        evaluate(run)
    return {
        "seed": run.seed,
        "config": run.config.name,
        "checkpoint": str(run.checkpoint),
        "metrics": run.metrics(),
        "eval_json": str(run.eval_json),
    }
