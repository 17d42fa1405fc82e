"""A training config's data, resolved once: ``DataConfig`` and the ``create`` that builds it.

``LeRobotDataConfig.create`` (the factory in ``training/schema.py``) calls `create` here. The result carries every
data decision a caller needs -- where the data and its norm stats are, the normalization, the state conversion, the
episodes, the dataset keys it reads and the robot's real action dims -- and the transform pipelines. Trainers,
preflight, the data loader, the policy loader, the analysis tools, the norm-stats helper and the demos all take
it from here; the decisions themselves are made by ``training/data_resolver.resolve``, called only by `create`.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import functools
import pathlib
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal
import warnings

import numpy as np

from openpi import transforms as _transforms
from openpi.datasets import episode_files
from openpi.datasets import lerobot_meta as _lerobot_meta
from openpi.models import model as _model
from openpi.models import tokenizer as _tokenizer
from openpi.policies import lerobot_policy
from openpi.shared import action_groups as _groups
from openpi.shared import loss_weighting as _lw
from openpi.shared import normalize as _normalize
from openpi.training import data_resolver

if TYPE_CHECKING:
    from openpi.models import pi0_config
    from openpi.training import schema


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """A training config's data, resolved: what to read, how to normalize it, and the transform pipelines."""

    repo_id: str
    root: str | None
    asset_id: str
    stats_file: pathlib.Path
    """``<assets_dir>/<asset_id>/norm_stats.json``: where the norm stats are read from and written to."""
    norm: Literal["zscore", "quantile"]
    per_timestep_norm: bool
    """Action stats per chunk index ([H, D]) instead of per dim ([D])."""
    norm_stats: Mapping[str, _normalize.NormStats] | None
    """The stats read from ``stats_file``; None until ``scripts/compute_norm_stats.py`` has written them."""
    state_transform: Callable[[np.ndarray], np.ndarray] | None
    """Raw dataset state -> the state the model sees (robot conversion, then ``state_dims``); None: as stored."""
    delta_action_mask: tuple[bool, ...] | None
    """Per action dim, True where actions are trained relative to the state."""
    image_keys: Mapping[str, str]
    """Model camera -> dataset video key."""
    state_key: str
    action_key: str
    prompt_key: str | None
    """Dataset column holding each frame's task string (the prompt), or None."""
    robot_action_dim: int | None
    """The robot's real action dims (the leading ones; outputs keep these); None: unknown (no dataset on disk)."""
    episodes_path: pathlib.Path | None
    """Training-episode list (``{assets_dir}`` expanded); None: every episode."""
    episodes: tuple[int, ...] | None
    """The list's episodes, None when there is no list or it is not written yet (``training_episodes`` says)."""
    sample_weights_path: str | None
    """Per-frame sampling weights written by scripts/filter_arm_heavy_episodes.py --level window."""
    repack_transforms: _transforms.Group
    """Dataset keys -> robot-neutral keys."""
    data_transforms: _transforms.Group
    """Robot inputs/outputs (and delta actions)."""
    _model_transforms: Callable[[], _transforms.Group] = dataclasses.field(repr=False, compare=False)

    @functools.cached_property
    def model_transforms(self) -> _transforms.Group:
        """Resize, tokenize, pad to the model's action_dim. Built on first use: the PaliGemma tokenizer is only
        needed by whoever feeds the model (preflight builds it before a run touches anything)."""
        return self._model_transforms()

    @property
    def use_quantile_norm(self) -> bool:
        return self.norm == "quantile"

    @property
    def stats_dir(self) -> pathlib.Path:
        return self.stats_file.parent

    @property
    def observation_keys(self) -> tuple[str, ...]:
        """The dataset keys an observation is read from: video keys, state and (if any) the prompt's column."""
        keys = [*self.image_keys.values(), self.state_key]
        return tuple([*keys, self.prompt_key] if self.prompt_key else keys)

    @property
    def input_keys(self) -> tuple[str, ...]:
        """Every dataset key training reads: the observation's and the actions'."""
        return (*self.observation_keys, self.action_key)

    def training_episodes(self) -> tuple[int, ...] | None:
        """The episodes to train on (None: all); an error naming the file and the fix when the list is missing."""
        if self.episodes_path is not None and self.episodes is None:
            raise FileNotFoundError(
                f"Episode list {self.episodes_path} does not exist. Write it with scripts/filter_arm_heavy_episodes.py "
                f"--config-name=... --output-path={self.episodes_path}, or override --data.episodes-path."
            )
        return self.episodes

    def heldout_episodes(
        self, candidates: Sequence[int], tasks: Mapping[int, str], per_task: int
    ) -> tuple[list[int], str | None]:
        """Up to ``per_task`` episodes per task from ``candidates`` that this config does not train on, and a
        notice when it has no training list (its "held-out" episodes are then training episodes)."""
        return data_resolver.heldout_episodes(self.training_episodes(), candidates, tasks, per_task)


def _dataset_action_dim(factory: schema.LeRobotDataConfig) -> int | None:
    """The action size ``meta/info.json`` declares for ``action_key``, when the dataset is on disk."""
    try:
        meta = _lerobot_meta.LeRobotMetadata.load(_lerobot_meta.resolve_root(factory.repo_id or None, factory.root))
    except (FileNotFoundError, ValueError):
        return None
    shape = meta.features.get(factory.action_key, {}).get("shape")
    return int(shape[-1]) if shape else None


def check_action_dims(model_config: pi0_config.Pi0Config, robot_action_dim: int | None, where: str) -> None:
    """The loss's action groups and the data's real action dims say the same thing: a group other than padding
    that reaches past the real dims is an error (it would train on zero padding); real dims that no group names
    join the padding group, which gets a warning naming them; padding kept out of the loss needs a group naming it."""
    groups = model_config.loss_weighting.groups
    names_padding = groups is not None and _lw.PADDING_GROUP in groups.names
    padded = robot_action_dim is not None and robot_action_dim < model_config.action_dim
    if model_config.exclude_padding and padded and not names_padding:
        raise ValueError(
            f"{where}: --model.exclude-padding is on, but no action group names the model's padded dims "
            f"{robot_action_dim}:{model_config.action_dim} (the data has {robot_action_dim} real action dims). Name the "
            f"real dims' groups, e.g. --model.action-groups actions 0:{robot_action_dim} (the dims no group names "
            "become the 'padding' group), or train on the padding too with --model.no-exclude-padding."
        )
    if groups is None or robot_action_dim is None:
        return
    for name, dims in zip(groups.names, groups.dims):
        beyond = [d for d in dims if d >= robot_action_dim]
        if name != _lw.PADDING_GROUP and beyond:
            raise ValueError(
                f"{where}: action group '{name}' ({_groups.dims_to_text(list(dims))}) reaches past the data's "
                f"{robot_action_dim} real action dims (dims {beyond} are zero padding). Fix --model.action-groups, or "
                f"--data.robot-action-dim if the robot has more dims."
            )
    if _lw.PADDING_GROUP in groups.names:
        padding = groups.dims[groups.names.index(_lw.PADDING_GROUP)]
        real_but_padding = [d for d in padding if d < robot_action_dim]
        if real_but_padding:
            warnings.warn(
                f"{where}: real action dims {real_but_padding} are in no action group, so they join the "
                f"'{_lw.PADDING_GROUP}' group (weight 0, never trained). Name them in --model.action-groups to train "
                "them.",
                UserWarning,
                stacklevel=3,
            )


def _check_action_stats_shape(stats: Any, per_timestep: bool, horizon: int, path: pathlib.Path) -> None:
    """Per-timestep configs need [action_horizon, D] action stats; the others [D]."""
    shape = np.shape(stats.mean)
    fix = "Recompute them with scripts/compute_norm_stats.py --config-name=<this config>."
    if per_timestep and (len(shape) != 2 or shape[0] != horizon):
        raise ValueError(
            f"{path}: data.per_timestep_norm needs action stats of shape [{horizon}, D] (one row per chunk step), got "
            f"{shape}. {fix}"
        )
    if not per_timestep and len(shape) != 1:
        raise ValueError(f"{path}: action stats of shape {shape} are per-timestep but data.per_timestep_norm is "
                         f"False. Set --data.per-timestep-norm or {fix[0].lower() + fix[1:]}")


def _model_transforms(factory: schema.LeRobotDataConfig, model_config: pi0_config.Pi0Config) -> _transforms.Group:
    if factory.tokenizer == "offline":
        tokenizer = _tokenizer.FallbackTokenizer(model_config.max_token_len)
    else:
        tokenizer = _tokenizer.PaligemmaTokenizer(model_config.max_token_len)
    return _transforms.Group(
        inputs=[
            _transforms.InjectDefaultPrompt(factory.default_prompt),
            _transforms.ResizeImages(*model_config.image_resolution),
            _transforms.TokenizePrompt(tokenizer, model_config.discrete_state_input),
            _transforms.PadStatesAndActions(model_config.action_dim),
        ]
    )


def create(
    factory: schema.LeRobotDataConfig, assets_dirs: pathlib.Path, model_config: pi0_config.Pi0Config
) -> DataConfig:
    """Resolves ``factory`` for ``model_config`` and the train config's ``assets_dirs``; raises ``ValueError``
    naming the field for a data config that cannot work with this model."""
    decisions = data_resolver.resolve(factory, model_config, assets_dirs)
    norm_stats = _normalize.load(decisions.stats_dir) if decisions.stats_file.exists() else None
    if norm_stats is not None:
        _normalize.check_usable(norm_stats, decisions.stats_file)
        _check_action_stats_shape(
            norm_stats["actions"], decisions.per_timestep_norm, model_config.action_horizon, decisions.stats_file
        )
    if not factory.image_keys:
        raise ValueError(
            "data.image_keys maps no camera: map the model's cameras (" + ", ".join(_model.IMAGE_KEYS) + ") to "
            "the dataset's video keys, e.g. --data.image-keys base_0_rgb observation.images.top."
        )
    if model_config.vocab_size < _tokenizer.vocab_size(factory.tokenizer):
        raise ValueError(
            f"model.vocab_size={model_config.vocab_size} is smaller than the {factory.tokenizer} tokenizer's "
            f"{_tokenizer.vocab_size(factory.tokenizer)} ids; raise --model.vocab-size or change --data.tokenizer."
        )
    robot_action_dim = factory.robot_action_dim or _dataset_action_dim(factory)
    check_action_dims(model_config, robot_action_dim, f"data {factory.repo_id or factory.root!r}")
    prompt_key = "task" if factory.prompt_from_task else None
    structure = {"images": dict(factory.image_keys), "state": factory.state_key, "actions": factory.action_key}
    if prompt_key:
        structure["prompt"] = prompt_key
    delta = decisions.delta_action_mask
    outputs = lerobot_policy.LeRobotOutputs(robot_action_dim) if robot_action_dim else None
    data_transforms = _transforms.Group(
        inputs=[factory.robot_inputs(), *([_transforms.DeltaActions(delta)] if delta else [])],
        outputs=[*([_transforms.AbsoluteActions(delta)] if delta else []), *([outputs] if outputs else [])],
    )
    episodes_path = decisions.episodes_path
    return DataConfig(
        repo_id=factory.repo_id,
        root=str(pathlib.Path(factory.root).expanduser()) if factory.root else None,
        asset_id=decisions.asset_id,
        stats_file=decisions.stats_file,
        norm=decisions.norm,
        per_timestep_norm=decisions.per_timestep_norm,
        norm_stats=norm_stats,
        state_transform=decisions.state_transform,
        delta_action_mask=delta,
        image_keys=dict(factory.image_keys),
        state_key=factory.state_key,
        action_key=factory.action_key,
        prompt_key=prompt_key,
        robot_action_dim=robot_action_dim,
        episodes_path=episodes_path,
        episodes=tuple(episode_files.load_episode_list(episodes_path))
        if episodes_path is not None and episodes_path.exists()
        else None,
        sample_weights_path=str(decisions.sample_weights_path) if decisions.sample_weights_path else None,
        repack_transforms=_transforms.Group(inputs=[_transforms.RepackTransform(structure)]),
        data_transforms=data_transforms,
        _model_transforms=functools.partial(_model_transforms, factory, model_config),
    )
