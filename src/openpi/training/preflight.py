"""What a training run checks before it touches the experiment directory or takes its first step.

Both trainers call ``check_inputs`` first, so a bad input (no norm stats, stats of the wrong width, a missing or
truncated data file, a video shorter than its episode, missing weights) stops the run with one message, before
``--overwrite`` deletes anything and before hours of training on wrong or unreadable data.
"""

from __future__ import annotations

import warnings

import numpy as np

from openpi import datasets as _datasets
from openpi import transforms as _transforms
from openpi.datasets import lerobot as _lerobot
from openpi.datasets import lerobot_meta as _lerobot_meta
from openpi.datasets import verify as _verify
from openpi.training import config as _config
from openpi.training import run_utils
from openpi.training import weight_loaders as _weight_loaders


def norm_stats_command(config: _config.TrainConfig, data_config: _config.DataConfig) -> str:
    """The command that writes the norm stats this run reads."""
    parts = ["python scripts/compute_norm_stats.py", f"--config-name={config.name}"]
    if data_config.root:
        parts.append(f"--root={data_config.root}")
    parts.append(f"--output-dir={data_config.stats_dir}")
    return " ".join(parts)


def check_norm_stats_exist(config: _config.TrainConfig, data_config: _config.DataConfig) -> None:
    """Every config normalizes state and actions, so training without its ``norm_stats.json`` would train on raw
    values: an error naming the expected file and the command that writes it."""
    if data_config.norm_stats is None:
        raise run_utils.InputError(
            f"Norm stats not found: {data_config.stats_file} does not exist, and config {config.name!r} "
            f"normalizes state and actions. Write it with `{norm_stats_command(config, data_config)}`, or point "
            "--data.assets.assets-dir / --data.assets.asset-id at existing stats."
        )


def check_norm_stats_dims(config: _config.TrainConfig, data_config: _config.DataConfig, sample: dict) -> None:
    """The stats of each normalized key cover exactly the dims the data has after the robot transforms."""
    for key, stats in data_config.norm_stats.items():
        if key not in sample:
            continue
        data_dims, stats_dims = sample[key].shape[-1], np.shape(stats.mean)[-1]
        if data_dims != stats_dims:
            raise run_utils.InputError(
                f"Norm stats {data_config.stats_file} have {stats_dims} dims for '{key}' but the data has "
                f"{data_dims} (after the robot transforms of config {config.name!r}). They were computed for another "
                f"dataset or robot; recompute them with `{norm_stats_command(config, data_config)}`."
            )


# How far the data's spread may stray from the stats' (ratio of stds, median over dims) before the stats are
# reported as probably another dataset's: episodes differ, datasets differ by orders of magnitude.
STATS_MISMATCH_RATIO = 10.0


def check_stats_match_data(
    data_config: _config.DataConfig, meta: _lerobot_meta.LeRobotMetadata, episodes, *, max_episodes: int = 8
) -> list[str]:
    """Warns (and returns the warnings) when the state or action columns of a few episodes have a spread far from
    the norm stats' (median std ratio outside 1/STATS_MISMATCH_RATIO .. STATS_MISMATCH_RATIO): stats of another
    dataset with the same dims would otherwise be accepted silently. Reads parquet columns only."""
    chosen = list(meta.episode_indices if episodes is None else episodes)
    chosen = [chosen[i] for i in np.linspace(0, len(chosen) - 1, min(max_episodes, len(chosen))).astype(int)]
    columns = {"state": data_config.state_key}
    if not (data_config.per_timestep_norm or any(data_config.delta_action_mask or ())):  # stats of raw actions
        columns["actions"] = data_config.action_key
    columns = {k: c for k, c in columns.items() if k in data_config.norm_stats and c in meta.features}
    data = _datasets.read_columns(meta, list(columns.values()), episodes=chosen, progress=False)
    messages = []
    for key, column in columns.items():
        values = np.asarray(data[column], dtype=np.float64).reshape(len(data[column]), -1)
        if key == "state" and data_config.state_transform is not None:
            values = np.asarray(data_config.state_transform(values), dtype=np.float64)
        stats_std = np.asarray(data_config.norm_stats[key].std, dtype=np.float64).reshape(-1)
        if values.shape[-1] != stats_std.shape[-1]:
            continue  # check_norm_stats_dims names this mismatch
        data_std = values.std(axis=0)
        live = (stats_std > 1e-6) & (data_std > 1e-6)
        if not live.any():
            continue
        ratio = float(np.median(data_std[live] / stats_std[live]))
        if not 1 / STATS_MISMATCH_RATIO <= ratio <= STATS_MISMATCH_RATIO:
            messages.append(
                f"Norm stats {data_config.stats_file} look like another dataset's: the '{key}' column of {len(chosen)} "
                f"episodes of {meta.root} spreads {ratio:.3g}x the stats' std (median over dims). Recompute them "
                "with scripts/compute_norm_stats.py if they belong to other data."
            )
    for message in messages:
        warnings.warn(message, UserWarning, stacklevel=2)
    return messages


def check_weights_exist(config: _config.TrainConfig) -> None:
    """``weight_path`` points at something local (``gs://`` paths are looked up in openpi's cache)."""
    if config.weight_path is None:
        return
    path = _weight_loaders.local_asset_path(config.weight_path)
    if not path.exists():
        raise FileNotFoundError(f"--weight-path={config.weight_path}: {path} does not exist.")


def check_inputs(config: _config.TrainConfig, data_config: _config.DataConfig, *, progress: bool = True) -> None:
    """Norm stats exist and fit the data, every data file of the selected episodes opens and covers its episode,
    and the starting weights exist. Raises with a message naming the file."""
    check_weights_exist(config)
    check_norm_stats_exist(config, data_config)
    episodes = data_config.training_episodes()
    if episodes is not None and not episodes:
        raise run_utils.InputError(f"The episode list {data_config.episodes_path} selects no "
                                   "episodes; rewrite it with scripts/filter_arm_heavy_episodes.py (e.g. a lower "
                                   "threshold) or drop --data.episodes-path.")
    data_config.model_transforms  # noqa: B018  # builds the tokenizer: a missing one fails here, not at step 1
    meta = _lerobot_meta.LeRobotMetadata.load(_lerobot_meta.resolve_root(data_config.repo_id, data_config.root))
    wanted = set(data_config.input_keys)
    video_keys = [k for k in meta.video_keys if k in wanted]
    columns = [k for k in wanted if k in meta.features and k not in meta.video_keys]
    _verify.check_files(meta, episodes, columns=columns, video_keys=video_keys, progress=progress)
    dataset = _lerobot.LeRobotDataset(
        root=meta.root,
        episodes=(meta.episode_indices if episodes is None else episodes)[:1],
        action_horizon=config.model.action_horizon,
        camera_keys=video_keys,
        action_key=data_config.action_key,
    )
    sample = _transforms.compose([*data_config.repack_transforms.inputs, *data_config.data_transforms.inputs])(
        dataset[0]
    )
    check_norm_stats_dims(config, data_config, sample)
    check_stats_match_data(data_config, meta, episodes)
