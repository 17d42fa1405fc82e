"""Where the tools' inputs come from: a training config (or an explicit dataset), its parquet action column,
skill annotations and norm stats. Only parquet columns are read; video is never decoded.

``SourceArgs`` holds the CLI options every tool shares. ``--config-name`` resolves through
``openpi.training.config.get_config``: dataset repo/root, action key, norm type, norm-stats asset and the
validated group layout ``model.loss_weighting.groups``. Without a config, ``--repo-id`` / ``--root`` name the
dataset and R1Pro's layout (``b1k_policy.R1PRO_ACTION_GROUPS``, padded to 32 dims) is used. Body roles (arms,
grippers, base) come from the layout; a layout that does not fit the data's action dim is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import dataclasses
import json
import pathlib
import sys
from typing import Any
from typing import Literal

import numpy as np
import tyro

from openpi import datasets as _datasets
from openpi.analysis import arm_heavy
from openpi.analysis import common
from openpi.analysis import evaluation
from openpi.datasets import lerobot as _lerobot
from openpi.datasets import lerobot_meta as _lerobot_meta
from openpi.datasets import stats as _dataset_stats
from openpi.policies import b1k_policy
from openpi.policies import policy_config
from openpi.policies import r1pro
from openpi.shared import action_groups as _groups
from openpi.shared import checkpoint_files
from openpi.shared import cli as _cli
from openpi.shared import loss_weighting as _lw
from openpi.shared import normalize as _normalize
from openpi.training import checkpoint_io
from openpi.training import config as _config
from openpi.training import data_resolver


@dataclasses.dataclass(frozen=True)
class SourceArgs:
    """Options shared by the analysis tools."""

    config_name: str | None = None
    """Training config (dataset, group layout, body roles, norm type and norm-stats asset come from it): a
    registered name, path/to/file.py:NAME or package.module:NAME. Any TrainConfig override (e.g. --data.root DIR
    --model.action-groups xyz 0:3 gripper 3) may follow the tool's own options."""
    config_overrides: tyro.conf.Suppress[tuple[str, ...]] = ()
    repo_id: str | None = None
    """Dataset repo id (looked up under $HF_LEROBOT_HOME) when no config is given, or to override the config's."""
    root: str | None = None
    """Local dataset root; overrides the config's."""
    norm: Literal["auto", "zscore", "quantile"] = "auto"
    """Normalization to analyze: 'auto' = the config's (z-score without a config)."""
    norm_stats_dir: str | None = None
    """Directory with norm_stats.json; default the config's asset, else statistics computed from the data."""
    groups: tuple[str, ...] = ()
    """Only report these action groups (default: all with data dims)."""


@dataclasses.dataclass(frozen=True)
class Source:
    """Everything a tool needs, resolved from ``SourceArgs``."""

    root: pathlib.Path
    repo_id: str | None
    meta: _lerobot_meta.LeRobotMetadata
    groups: _groups.ActionGroups
    roles: common.BodyRoles  # which dims are arms, grippers and base (from the layout's body roles)
    weighting: _lw.LossWeighting | None
    horizon: int
    use_quantiles: bool
    action_key: str
    norm_stats_path: pathlib.Path | None  # an existing norm_stats.json, if any
    config_name: str | None
    config: Any = None  # the TrainConfig when resolved from a config name
    data_config: Any = None  # its resolved DataConfig (stats file, norm, state transform, episode list)


def trains_transformed_actions(config: Any) -> bool:
    """True when the config's action norm stats describe something other than the absolute action column
    (delta actions, or per-timestep stats): errors in absolute units then need the column's own stats."""
    data = getattr(config, "data", None)
    return any(getattr(data, "delta_action_mask", None) or ()) or bool(getattr(data, "per_timestep_norm", False))


def resolve(args: SourceArgs, *, policy_outputs: bool = False, config: Any = None) -> Source:
    """Resolves the config (if named) and the dataset; raises for an unknown config or a missing dataset.

    ``policy_outputs``: the caller compares a policy's (absolute, raw-unit) outputs with the action column, which
    works for delta / per-timestep configs too; errors are then normalized with the column's own stats.
    ``config``: the ``TrainConfig`` itself, in place of looking ``args.config_name`` up (a training run's own)."""
    data_config = None
    if config is not None or args.config_name is not None:
        config = config or _config.get_config(args.config_name, args.config_overrides)
        if trains_transformed_actions(config) and not policy_outputs:
            raise ValueError(
                f"Config {args.config_name!r} trains delta actions or per-timestep stats; these tools analyze the "
                "absolute action column and would mis-measure them (scripts/eval_policy.py evaluates its policy)."
            )
        repo_id = args.repo_id or config.data.repo_id
        root = args.root or (None if args.repo_id else config.data.root)
        groups, roles = config.model.loss_weighting.groups, config.model.group_roles
        where = f"config {args.config_name!r}"
        if groups is None:
            groups = _groups.ActionGroups.create(b1k_policy.R1PRO_ACTION_GROUPS, config.model.action_dim)
            roles, where = _groups.body_roles(groups.names), f"R1Pro's, as config {args.config_name!r} has none"
        weighting, horizon = config.model.loss_weighting, config.model.action_horizon
        action_key = config.data.action_key
        data_config = config.data_config()
        norm = data_config.norm
        stats_dir = None if trains_transformed_actions(config) else data_config.stats_dir
    else:
        if args.repo_id is None and args.root is None:
            raise ValueError("Name a training config (--config-name) or a dataset (--repo-id and/or --root).")
        repo_id, root = args.repo_id, args.root
        groups = _groups.ActionGroups.create(b1k_policy.R1PRO_ACTION_GROUPS, b1k_policy.PADDED_ACTION_DIM)
        roles, where = _groups.body_roles(groups.names), "R1Pro's, used without --config-name"
        weighting, horizon, action_key, norm, stats_dir = None, 50, "action", "zscore", None
    if args.norm != "auto":
        norm = args.norm
    if args.norm_stats_dir is not None:
        stats_dir = pathlib.Path(args.norm_stats_dir).expanduser()
        if not (stats_dir / _normalize.NORM_STATS_FILE).exists():
            raise FileNotFoundError(f"No {_normalize.NORM_STATS_FILE} in {stats_dir}.")
    path = _lerobot_meta.resolve_root(repo_id, root)
    meta = _lerobot_meta.LeRobotMetadata.load(path)
    shape = meta.features.get(action_key, {}).get("shape")
    if not shape:
        raise ValueError(f"{path}/meta/info.json declares no feature {action_key!r}; features: {sorted(meta.features)}.")
    common.check_layout_fits(groups, int(shape[-1]), where)
    stats_file = stats_dir / _normalize.NORM_STATS_FILE if stats_dir is not None else None
    return Source(
        root=path,
        repo_id=repo_id,
        meta=meta,
        groups=groups,
        roles=common.BodyRoles.from_layout(groups, roles),
        weighting=weighting,
        horizon=horizon,
        use_quantiles=norm == "quantile",
        action_key=action_key,
        norm_stats_path=stats_file if stats_file is not None and stats_file.exists() else None,
        config_name=args.config_name,
        config=config,
        data_config=data_config,
    )


def task_names(meta: _lerobot_meta.LeRobotMetadata) -> dict[int, str]:
    """Task index → short name (B1K's ``task_name`` in tasks.jsonl when present, else the task string)."""
    names = dict(meta.tasks)
    path = meta.root / "meta" / "tasks.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            row = json.loads(line) if line.strip() else {}
            if "task_name" in row:
                names[int(row["task_index"])] = str(row["task_name"])
    return names


def episode_tasks(meta: _lerobot_meta.LeRobotMetadata) -> dict[int, str]:
    """Episode index → its task's short name."""
    names = task_names(meta)
    by_text = {text: index for index, text in meta.tasks.items()}
    out = {}
    for ep, info in meta.episodes.items():
        text = info.tasks[0] if info.tasks else ""
        out[ep] = names.get(by_text.get(text, -1), text or "unknown")
    return out


def select_tasks(meta: _lerobot_meta.LeRobotMetadata, tasks: Sequence[str]) -> list[int]:
    """Episodes whose task matches one of ``tasks`` (short name, task string or task index); unknown names
    raise, listing the dataset's tasks."""
    names = task_names(meta)
    wanted = set()
    for task in tasks:
        hits = {i for i, n in names.items() if task in (n, meta.tasks.get(i), str(i))}
        if not hits:
            listing = "; ".join(f"{i}: {n}" for i, n in sorted(names.items()))
            raise ValueError(f"Unknown task {task!r}; the dataset's tasks are: {listing}.")
        wanted |= {names[i] for i in hits}
    return [ep for ep, name in episode_tasks(meta).items() if name in wanted]


def load_actions(source: Source, episodes: Sequence[int] | None = None, *, progress: bool = True) -> common.ActionTable:
    """The action column of ``episodes`` (default all) via the data layer's column reader."""
    data = _datasets.read_columns(source.meta, [source.action_key], episodes=episodes, progress=progress)
    tasks = episode_tasks(source.meta)
    actions = data[source.action_key]
    return common.ActionTable(
        actions=actions.reshape(len(actions), -1),
        episode_index=data.episodes,
        lengths=np.diff(data.starts).astype(np.int64),
        tasks=tuple(tasks[int(e)] for e in data.episodes),
        fps=float(source.meta.fps),
    )


def load_norm_stats(source: Source, table: common.ActionTable) -> tuple[_normalize.NormStats, str]:
    """The action norm stats training would use (the config's asset) or, without one, the data's own;
    returns the stats and where they came from."""
    if source.norm_stats_path is not None:
        stats = _normalize.load(source.norm_stats_path.parent)
        if "actions" not in stats:
            raise ValueError(f"{source.norm_stats_path} has no 'actions' entry (keys: {sorted(stats)}).")
        if np.ndim(stats["actions"].mean) != 1:
            raise ValueError(
                f"{source.norm_stats_path} holds per-timestep action stats; these tools need per-dim stats of the "
                "absolute actions. Give --norm-stats-dir with such stats, or none to compute them from the data."
            )
        return stats["actions"], str(source.norm_stats_path)
    return common.data_norm_stats(table), "computed from the dataset's action column"


def _state_transform(source: Source):
    """The state conversion training applies: the config's robot and state dims, else the dataset's (B1K's for
    a 256-dim proprio, none otherwise)."""
    if source.data_config is not None:
        return source.data_config.state_transform
    shape = source.meta.features.get("observation.state", {}).get("shape") or [0]
    return data_resolver.state_transform(data_resolver.robot_for_state(shape[-1]))


def base_norm_stats(source: Source, *, progress: bool = True) -> tuple[dict[str, _normalize.NormStats], str]:
    """All norm-stats entries (state and actions): the config's asset or ``--norm-stats-dir`` when present,
    else computed from the parquet columns like ``scripts/compute_norm_stats.py`` (actions weighted as chunks
    of the action horizon, the robot's state transform applied)."""
    if source.norm_stats_path is not None:
        return _normalize.load(source.norm_stats_path.parent), str(source.norm_stats_path)
    data = source.config.data if source.config is not None else None
    stats = _dataset_stats.compute_norm_stats(
        source.meta,
        state_key=getattr(data, "state_key", "observation.state"),
        action_key=source.action_key,
        state_transform=_state_transform(source),
        action_horizon=source.horizon,
        progress=progress,
    )
    return stats, "computed from the dataset's state and action columns"


def annotation_path(root: pathlib.Path, episode_index: int) -> pathlib.Path:
    """B1K's skill annotation file of an episode (chunk = task = episode_index // 10000)."""
    task = episode_index // r1pro.EPISODES_PER_TASK
    return root / "annotations" / f"task-{task:04d}" / f"episode_{episode_index:08d}.json"


def load_skill_labels(root: pathlib.Path, table: common.ActionTable) -> dict[int, np.ndarray]:
    """Per-frame skill labels (``arm_heavy.skill_labels``) of every episode that has an annotation file."""
    out = {}
    for ep, length in zip(table.episode_index.tolist(), table.lengths.tolist()):
        path = annotation_path(root, ep)
        if path.exists():
            out[ep] = arm_heavy.skill_labels(json.loads(path.read_text()), length)
    return out


def heldout_episodes(source: Source, candidates: Sequence[int], per_task: int) -> list[int]:
    """Up to ``per_task`` episodes per task from ``candidates``, excluding the config's training-episode list
    (``data_resolver.heldout_episodes``); says so on stderr when a config has no list (held-out = trained on)."""
    tasks = episode_tasks(source.meta)
    if source.data_config is None:  # a dataset named without a config: nothing is known to be trained on
        return data_resolver.heldout_episodes(None, candidates, tasks, per_task)[0]
    chosen, notice = source.data_config.heldout_episodes(candidates, tasks, per_task)
    if notice is not None:
        print(f"notice: {notice}.", file=sys.stderr)
    return chosen


def check_checkpoint(checkpoint: str | None) -> pathlib.Path:
    """The checkpoint directory, or a clear error when none is given or it does not exist."""
    if not checkpoint:
        raise FileNotFoundError("No checkpoint given: pass --checkpoint DIR (a trained checkpoint's step directory).")
    path = pathlib.Path(checkpoint).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"Checkpoint directory not found: {path}")
    return path


def load_policy(source: Source, checkpoint: str) -> tuple[evaluation.Predict, evaluation.ObservationFn]:
    """A trained checkpoint's ``predict(observation_batch) -> chunks`` and the observation builder it needs.

    The observation builder reads each chunk start's frame (camera images decoded from video, state, task
    prompt) from the dataset; ``predict`` runs the policy (``openpi.policies.policy_config``) on the batch and
    returns raw-unit action chunks [B, H, robot dims], what ``evaluation.evaluate`` compares with the data.
    """
    path = check_checkpoint(checkpoint)
    if source.config is None:
        raise ValueError(
            f"Evaluating {path} needs its training config (--config-name): the model and transforms come from it."
        )
    policy = policy_config.create_trained_policy(source.config, path)
    return policy_predict(policy), observation_reader(source, policy.metadata["input_keys"])


def policy_predict(policy: Any) -> evaluation.Predict:
    """An openpi ``Policy`` as ``predict``: the raw-unit chunks of the batch's ``observations``."""

    def predict(batch: dict[str, Any]) -> np.ndarray:
        return policy.infer_batch(batch["observations"])["actions"]

    return predict


def observation_reader(source: Source, input_keys: Sequence[str]) -> evaluation.ObservationFn:
    """The observation builder of ``load_policy``: each chunk start's frame, with the cameras among ``input_keys``."""
    wanted = set(input_keys)
    dataset = _lerobot.LeRobotDataset(
        root=source.root, camera_keys=[k for k in source.meta.video_keys if k in wanted], action_key=source.action_key
    )
    lengths = [source.meta.episode(e).length for e in dataset.episodes]
    first_row = dict(zip(dataset.episodes, np.cumsum([0, *lengths[:-1]]).tolist()))

    def observation_fn(episode_index: np.ndarray, frame_index: np.ndarray, prompts: list[str]) -> dict[str, Any]:
        samples = [dataset[first_row[int(e)] + int(f)] for e, f in zip(episode_index, frame_index)]
        return evaluation.id_observations(episode_index, frame_index, prompts) | {"observations": samples}

    return observation_fn


def with_checkpoint_norm_stats(source: Source, checkpoint: str) -> Source:
    """``source`` reading the norm stats stored in the checkpoint (what its policy normalizes with), if it has them."""
    if trains_transformed_actions(source.config):  # its stats are not those of the absolute actions compared here
        return source
    step_dir = checkpoint_io.resolve_step_dir(checkpoint)
    stored = checkpoint_files.assets_dir(step_dir, source.data_config.asset_id) / _normalize.NORM_STATS_FILE
    return dataclasses.replace(source, norm_stats_path=stored) if stored.exists() else source


def tool_main(args_type: type, run: Callable[[Any], Any], description: str | None) -> None:
    """The command line of every analysis tool: parse ``args_type`` with tyro and run; user errors (missing files,
    bad names or values, an unknown task or episode) end it in one ``error: ...`` line (``openpi.shared.cli``)."""

    def main() -> None:
        args, overrides = tyro.cli(args_type, description=description, return_unknown_args=True)
        run(_config.with_config_overrides(args, overrides))

    _cli.run_main(main, user_errors=(KeyError,))
