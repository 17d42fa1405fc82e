"""Watching a run while it trains: sampled-action validation on held-out windows, and closed-loop success in the
simulator, both from the model in memory (no checkpoint is written for them).

``Validator``: at the start of a run, a fixed set of held-out chunk windows -- episodes the run does not train on,
chosen by ``DataConfig.heldout_episodes`` as ``scripts/eval_policy.py`` chooses them, a chunk every ``stride``
frames -- and, every ``val_interval`` steps, the policy's real sampling path (``policy_config.create_policy``:
the config's transforms, the default noise seed and denoising steps) on them. The metrics are
``openpi.analysis.evaluation``'s, logged under ``val/`` with eval_policy's names, so
``eval_policy.py --num-episodes K --stride S`` (the notice at the start gives K and S) on the checkpoint of the
same step reports the same numbers.

``SimEvaluator``: simulator configs run ``sim_eval_episodes`` held-out layouts per task through
``openpi.sim.closed_loop`` (receding horizon, half a chunk executed per query: ``eval_closed_loop.py``'s
defaults) and log ``sim/<task>/success`` (mobile: also navigation, manipulation, arm activity ratio).
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
import logging
from typing import Any

import numpy as np

from openpi.analysis import common
from openpi.analysis import evaluation as _evaluation
from openpi.analysis import sources
from openpi.policies import policy_config
from openpi.training import config as _config
from openpi.training import mobile_configs
from openpi.training import recipes

logger = logging.getLogger("openpi")

# Per group and overall, the offline report's metrics that are logged (every one eval_policy's eval.json holds).
GROUP_METRICS = ("mse_normalized", "mse_raw", "mae_raw", "motion_ratio")
OVERALL_METRICS = ("arm_activity_ratio", "gripper_agreement", "base_velocity_rmse", "base_velocity_mae")
# Chunks per policy call (eval_policy's default --batch-size).
BATCH_SIZE = 16
# The simulator configs' datasets -> their suite (the closed-loop evaluator's environment).
SIM_SUITES = {recipes.SIM_REPO_ID: "metaworld", mobile_configs.MOBILE_REPO_ID: "mobile"}


def flat_metrics(overall: Mapping[str, Any], prefix: str = "val") -> dict[str, float]:
    """An offline report's ``overall`` entry as wandb keys: ``<prefix>/<metric>/<group>`` per group and
    ``<prefix>/<metric>`` overall (metrics that are undefined, e.g. no gripper, are left out)."""
    out = {
        f"{prefix}/{metric}/{group}": float(values[metric])
        for group, values in overall["groups"].items()
        for metric in GROUP_METRICS
        if values[metric] is not None
    }
    out |= {f"{prefix}/{metric}": float(overall[metric]) for metric in OVERALL_METRICS if overall[metric] is not None}
    return out


def _stride_for(table: common.ActionTable, horizon: int, windows: int) -> int:
    """The smallest stride (>= horizon: windows do not overlap) giving at most ``windows`` chunk starts, or the
    one giving a single window per episode when even that is more."""
    low, high = horizon, max(horizon, int(table.lengths.max()))
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if len(common.chunk_starts(table, horizon, mid)) <= windows else (mid + 1, high)
    return low


@dataclasses.dataclass
class Validator:
    """Sampled-action validation on fixed held-out windows (module docstring); call it with the live model."""

    data_config: _config.DataConfig
    source: sources.Source
    table: common.ActionTable
    groups: dict[str, tuple[int, ...]]
    stats: Any
    stride: int
    read_observations: _evaluation.ObservationFn
    _cache: dict = dataclasses.field(default_factory=dict)

    def _observations(self, episodes: np.ndarray, frames: np.ndarray, prompts: list[str]) -> dict[str, Any]:
        """The windows' frames, decoded once: every validation samples the same windows in the same batches."""
        key = (tuple(episodes.tolist()), tuple(frames.tolist()))
        if key not in self._cache:
            self._cache[key] = self.read_observations(episodes, frames, prompts)
        return self._cache[key]

    def __call__(self, model: Any) -> dict[str, float]:
        """``val/`` metrics of ``model`` (JAX ``Pi0`` or ``PI0Pytorch``); a PyTorch model is back in train mode after."""
        was_training = bool(getattr(model, "training", False))
        policy = policy_config.create_policy(self.data_config, model, self.data_config.norm_stats)
        try:
            report = _evaluation.evaluate(
                sources.policy_predict(policy),
                self.table,
                self.groups,
                self.stats,
                use_quantiles=self.source.use_quantiles,
                horizon=self.source.horizon,
                roles=self.source.roles,
                stride=self.stride,
                batch_size=BATCH_SIZE,
                observation_fn=self._observations,
            )
        finally:
            if was_training:
                model.train()
        return flat_metrics(report["overall"])


def create_validator(config: _config.TrainConfig, data_config: _config.DataConfig) -> Validator | None:
    """The run's validator, or None (validation off) with one log line saying why."""
    if config.val_interval == 0:
        return None
    source = sources.resolve(sources.SourceArgs(config_name=config.name), policy_outputs=True, config=config)
    tasks = sources.episode_tasks(source.meta)
    candidates = source.meta.episode_indices
    one_per_task, notice = data_config.heldout_episodes(candidates, tasks, 1)
    if notice is not None or not one_per_task:
        why = notice or "every episode of the dataset is a training episode"
        logger.info("Validation is off: %s (give a training-episode list, e.g. --data.episodes-path, to hold "
                    "episodes out).", why)
        return None
    per_task = max(1, config.val_windows // len(one_per_task))
    episodes, _ = data_config.heldout_episodes(candidates, tasks, per_task)
    table = sources.load_actions(source, episodes, progress=False)
    horizon = source.horizon
    if not len(common.chunk_starts(table, horizon, horizon)):
        logger.info("Validation is off: no held-out episode (%s) is action_horizon=%d frames long.", episodes, horizon)
        return None
    stats, _ = sources.load_norm_stats(source, table)
    stride = _stride_for(table, horizon, config.val_windows)
    windows = len(common.chunk_starts(table, horizon, stride))
    logger.info(
        "Validation every %d steps on %d held-out windows of episodes %s (eval_policy.py --num-episodes %d "
        "--stride %d evaluates the same).", config.val_interval, windows, episodes, per_task, stride,
    )
    return Validator(
        data_config=data_config,
        source=source,
        table=table,
        groups=common.data_groups(source.groups, table.num_dims),
        stats=stats,
        stride=stride,
        read_observations=sources.observation_reader(source, data_config.observation_keys),
    )


def check_sim_eval(config: _config.TrainConfig) -> str | None:
    """The config's simulator suite when closed-loop evaluation is on (None when off); an error for a config
    that is not a simulator's."""
    if config.sim_eval_interval == 0:
        return None
    suite = SIM_SUITES.get(config.data.repo_id)
    if suite is None:
        raise ValueError(
            f"--sim-eval-interval={config.sim_eval_interval}: config {config.name!r} trains on "
            f"{config.data.repo_id!r}, not on a simulator's data ({', '.join(SIM_SUITES)}: the metaworld_demo* and "
            "mobile_demo* configs). Set --sim-eval-interval=0."
        )
    return suite


@dataclasses.dataclass
class SimEvaluator:
    """Closed-loop success on held-out layouts (module docstring); call it with the live model."""

    config: _config.TrainConfig
    data_config: _config.DataConfig
    suite: str

    def __call__(self, model: Any) -> dict[str, float]:
        from openpi.serving import chunking
        from openpi.sim import closed_loop  # its metaworld_env sets MUJOCO_GL=egl (headless) before MuJoCo loads
        from openpi.sim import rollout

        was_training = bool(getattr(model, "training", False))
        policy = policy_config.create_policy(self.data_config, model, self.data_config.norm_stats)
        horizon = self.config.model.action_horizon
        executor = chunking.ChunkingConfig(mode="receding", replan_every=max(1, horizon // 2))
        env_module, evaluate, _ = closed_loop.suite(self.suite)
        tasks = self.config.sim_eval_tasks or env_module.DEFAULT_TASKS
        try:
            limit = {"max_steps": self.config.sim_eval_max_steps} if self.config.sim_eval_max_steps else {}
            report = evaluate(lambda _task_or_env: rollout.model_policy(policy, executor, horizon=horizon), tasks,
                              self.config.sim_eval_episodes, progress=False, **limit)
        finally:
            if was_training:
                model.train()
        out = {}
        for task, entry in report["tasks"].items():
            if self.suite == "mobile":
                out[f"sim/{task}/success"] = entry["overall"]["success_rate"]
                out[f"sim/{task}/navigation"] = entry["navigation"]["success_rate"]
                out[f"sim/{task}/manipulation"] = entry["manipulation"]["success_rate"]
                if entry["arm_activity_ratio"] is not None:
                    out[f"sim/{task}/arm_activity_ratio"] = entry["arm_activity_ratio"]
            else:
                out[f"sim/{task}/success"] = entry["success_rate"]
        return out


def create_sim_evaluator(config: _config.TrainConfig, data_config: _config.DataConfig) -> SimEvaluator | None:
    suite = check_sim_eval(config)
    if suite is None:
        return None
    if config.sim_eval_tasks:
        from openpi.sim import closed_loop

        env_module, _, _ = closed_loop.suite(suite)
        for name in config.sim_eval_tasks:
            env_module.task(name)  # an unknown task fails now, not at the first evaluation
    logger.info("Closed-loop evaluation every %d steps: %d held-out layouts per task.", config.sim_eval_interval,
                config.sim_eval_episodes)
    return SimEvaluator(config, data_config, suite)
