"""Training configs: ``TrainConfig``, data config factories, the named registry and the CLI.

Every registered config is written out as one ``TrainConfig`` literal (its model with the loss strategy, action
groups and weights, and its data config); a ``_demo`` twin is derived by ``demo_twin``. ``cli()`` takes ``--config-name=NAME`` or
openpi's positional ``NAME`` and lets every field be overridden; invalid overrides (an unknown group, a
negative weight) fail while the config is parsed, before any model or data is built.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import difflib
import importlib
import importlib.util
import pathlib
import sys
from typing import Any
from typing import Literal
import warnings

import numpy as np
import tyro

from openpi.datasets import episode_files
from openpi.datasets import lerobot_meta as _lerobot_meta
from openpi.models import model as _model
from openpi.models import pi0_config
from openpi.models import tokenizer as _tokenizer
from openpi.policies import b1k_policy
from openpi.policies import lerobot_policy
from openpi.shared import action_groups as action_groups_lib
from openpi.shared import cli as _cli
from openpi.shared import normalize as _normalize
from openpi.training import data_resolver

ModelConfig = pi0_config.Pi0Config


@dataclasses.dataclass(frozen=True)
class AssetsConfig:
    """Where norm stats come from: ``<assets_dir>/<asset_id>/norm_stats.json``."""

    assets_dir: str | None = None
    """Directory holding ``<asset_id>/norm_stats.json``; defaults to ``<assets_base_dir>/<config name>``."""
    asset_id: str | None = None
    """Stats subdirectory; defaults to the data config's ``repo_id``; e.g. ``balanced`` for stats written by
    ``scripts/recompute_balanced_norm_stats.py``."""


@dataclasses.dataclass(frozen=True)
class LRSchedule:
    """Linear warmup then cosine decay (openpi's defaults)."""

    warmup_steps: int = 1_000
    """Steps of linear warmup from near zero to ``peak_lr``."""
    peak_lr: float = 2.5e-5
    """Learning rate at the end of warmup."""
    decay_steps: int | None = None
    """Step at which the cosine decay reaches ``decay_lr`` (it stays there after); None: the run's num_train_steps."""
    decay_lr: float = 2.5e-6
    """Final learning rate."""


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """AdamW with global-norm gradient clipping (openpi's defaults)."""

    b1: float = 0.9
    """Adam's first-moment decay."""
    b2: float = 0.95
    """Adam's second-moment decay."""
    eps: float = 1e-8
    """Adam's denominator epsilon."""
    weight_decay: float = 1e-10
    """Decoupled weight decay (AdamW)."""
    clip_gradient_norm: float = 1.0
    """Gradients are rescaled so their global norm is at most this."""


@dataclasses.dataclass(frozen=True)
class DataConfigFactory(abc.ABC):
    """Builds the runtime data config once the assets directory and model config are known."""

    repo_id: str = "behavior-1k/2025-challenge-demos"
    """LeRobot dataset id; names the default dataset root and the norm-stats asset id."""
    root: str | None = None
    """Local dataset root; defaults to ``$HF_LEROBOT_HOME/<repo_id>``."""
    assets: AssetsConfig = dataclasses.field(default_factory=AssetsConfig)
    """Where the norm stats are read from."""

    @abc.abstractmethod
    def create(self, assets_dirs: pathlib.Path, model_config: ModelConfig) -> Any:
        """Returns the runtime data config (transforms, norm stats, episode selection)."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """The runtime data config: where the data is, which episodes, and the transform pipelines."""

    repo_id: str
    root: str | None
    asset_id: str
    # None until ``scripts/compute_norm_stats.py`` has written them.
    norm_stats: Mapping[str, Any] | None
    repack_transforms: Any  # transforms.Group: dataset keys → robot-neutral keys
    data_transforms: Any  # transforms.Group: robot inputs/outputs (and delta actions)
    model_transforms: Any  # transforms.Group: resize, tokenize, pad to the model's action_dim
    use_quantile_norm: bool
    action_key: str = "action"
    # Restrict training to these episodes (e.g. the arm-heavy list written by filter_arm_heavy_episodes.py).
    episodes: tuple[int, ...] | None = None
    # Per-frame sampling weights file (written by filter_arm_heavy_episodes.py --level window).
    sample_weights_path: str | None = None


@dataclasses.dataclass(frozen=True)
class LeRobotDataConfig(DataConfigFactory):
    """Any LeRobot dataset: map its camera, state and action keys to the model's, pick the normalization and
    optional delta actions. B1K is one instance of this class (see ``b1k_data``), not a separate code path.
    """

    image_keys: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: {
            "base_0_rgb": "observation.images.rgb.head",
            "left_wrist_0_rgb": "observation.images.rgb.left_wrist",
            "right_wrist_0_rgb": "observation.images.rgb.right_wrist",
        }
    )
    """Model camera name -> dataset video key. Model cameras missing here get a black image with mask False."""
    state_key: str = "observation.state"
    """Dataset column holding the robot state (proprioception)."""
    action_key: str = "action"
    """Dataset column holding the actions."""
    robot: Literal["identity", "b1k", "b1k_baseline_2025"] = "b1k"
    """Robot-specific state conversion: "b1k" turns R1Pro's 256-dim proprio into the 23-dim action-ordered
    state; "b1k_baseline_2025" keeps the 2025 baseline's state order; "identity" uses the state as stored."""
    state_dims: tuple[int, ...] | None = None
    """Indices into the (robot-converted) state vector that the model sees, e.g. ``0 1 2 38`` of a 39-dim state;
    None = all. Norm stats are taken over the same dims."""
    robot_action_dim: int | None = b1k_policy.R1PRO_ACTION_DIM
    """Number of leading action dims the robot uses (outputs keep these); None = all dims in the dataset."""
    norm: Literal["auto", "zscore", "quantile"] = "auto"
    """Normalization of state and actions; "auto": quantiles for pi0.5, z-score for pi0 (openpi's choice)."""
    delta_action_mask: tuple[bool, ...] | None = None
    """Per action dim, True where actions are trained relative to the state."""
    per_timestep_norm: bool = False
    """Action norm stats per chunk index ([H, D] arrays; scripts/compute_norm_stats.py writes them for this config)."""
    prompt_from_task: bool = True
    """Use each frame's task string as the prompt."""
    default_prompt: str | None = None
    """Prompt for frames without a task string."""
    episodes_path: str | None = None
    """Episode list written by scripts/filter_arm_heavy_episodes.py (train on these episodes only);
    ``{assets_dir}`` expands to the config's assets dir."""
    sample_weights_path: str | None = None
    """Per-frame sampling weights written by scripts/filter_arm_heavy_episodes.py --level window."""
    tokenizer: Literal["paligemma", "offline"] = "paligemma"
    """"paligemma" needs the tokenizer file (see openpi.models.tokenizer); "offline" is a deterministic
    stand-in for tests and the CPU demo."""

    def __post_init__(self):
        if self.state_dims is not None:
            dims = list(self.state_dims)
            if not dims or min(dims) < 0 or len(set(dims)) != len(dims):
                raise ValueError(
                    f"data.state_dims must be distinct non-negative indices into the state, got {self.state_dims}."
                )

    def create(self, assets_dirs: pathlib.Path, model_config: ModelConfig) -> DataConfig:
        return _create_lerobot_data_config(self, assets_dirs, model_config)

    def robot_inputs(self) -> Any:
        """The robot's input transform (``lerobot_policy.LeRobotInputs``): the resolver's state conversion of
        ``robot``, then ``state_dims``."""
        order = data_resolver.STATE_ORDERS[self.robot]
        if order is None:
            return lerobot_policy.LeRobotInputs(state_dims=self.state_dims)
        return b1k_policy.B1KInputs(state_order=order, state_dims=self.state_dims)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run: model, data, optimizer, schedule, checkpointing and logging (openpi's fields)."""

    name: tyro.conf.Suppress[str] = ""
    """Registered config name."""
    project_name: str = "openpi"
    """wandb project."""
    exp_name: str = "default"
    """Experiment name (one path component); checkpoints go to ``checkpoint_base_dir/name/exp_name``."""
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    """Model architecture and loss weighting."""
    weight_path: str | None = None
    """openpi params checkpoint (``.../pi05_base/params``, local or gs:// in openpi's cache) or PaliGemma
    ``.npz`` to start from; None for random init."""
    lr_schedule: LRSchedule = dataclasses.field(default_factory=LRSchedule)
    """Learning-rate schedule."""
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    """AdamW settings."""
    ema_decay: float | None = 0.99
    """Decay of the exponential moving average of the weights saved as params (JAX); None for no EMA."""
    freeze_lora_base: bool = True
    """Freeze the non-LoRA weights when the model uses LoRA variants."""
    data: DataConfigFactory = dataclasses.field(default_factory=lambda: LeRobotDataConfig())
    """Dataset, its key mapping and normalization."""
    assets_base_dir: str = "./assets"
    """Norm stats are read from ``<assets_base_dir>/<config name>/<asset_id>/norm_stats.json``."""
    checkpoint_base_dir: str = "./checkpoints"
    """Experiments are written to ``<checkpoint_base_dir>/<config name>/<exp_name>``."""
    seed: int = 42
    """Seeds the weights' initialization, the data order and the per-step noise."""
    batch_size: int = 32
    """Global batch size (split over devices / processes)."""
    num_workers: int = 2
    """Data-loader worker processes (0 loads in the training process)."""
    num_train_steps: int = 30_000
    """Total optimizer steps (a resumed run continues up to this)."""
    log_interval: int = 100
    """Log averaged metrics (wandb, metrics.jsonl, console) every this many steps (> 0)."""
    save_interval: int = 1_000
    """Save a checkpoint every this many steps (> 0), and at the last step."""
    keep_period: int | None = 5_000
    """Checkpoints at multiples of this step are kept; others are replaced by newer ones."""
    overwrite: bool = False
    """Delete the experiment directory, once every input has been checked, and start over."""
    resume: bool = False
    """Continue the experiment from its latest complete checkpoint."""
    resume_from: str | None = None
    """Start from another experiment's latest checkpoint (weights only, fresh optimizer): curriculum phase 2."""
    wandb_enabled: bool = True
    """Log to wandb (offline without credentials)."""
    fsdp_devices: int = 1
    """Devices the model is sharded over (FSDP); the rest of the devices split the batch."""
    pytorch_compile: bool = False
    """PyTorch only: compile the train step with torch.compile (off by default; slow to start on CPU)."""
    coordinator_address: str | None = None
    """JAX multi-host (``jax.distributed``): process 0's "host:port". Unset: detected from the cluster environment
    (SLURM, Open MPI, or JAX_COORDINATOR_ADDRESS) when it runs several processes, otherwise a single process.
    PyTorch takes these from torchrun instead."""
    num_processes: int | None = None
    """JAX multi-host: the number of processes (unset: detected, see coordinator_address)."""
    process_id: int | None = None
    """JAX multi-host: this process's id, 0 .. num_processes-1 (unset: detected)."""

    def __post_init__(self):
        if self.resume and self.overwrite:
            raise ValueError("--resume and --overwrite cannot both be set: resume continues a run, overwrite erases it.")
        if self.resume and self.resume_from:
            raise ValueError("--resume continues this experiment; --resume-from starts a new one from another's weights.")
        if self.batch_size <= 0 or self.num_train_steps <= 0:
            raise ValueError(f"batch_size and num_train_steps must be positive, got {self.batch_size}, "
                             f"{self.num_train_steps}.")
        for field in ("log_interval", "save_interval"):
            if getattr(self, field) <= 0:
                raise ValueError(f"--{field.replace('_', '-')} must be a positive number of steps, got "
                                 f"{getattr(self, field)}.")
        if not self.exp_name or self.exp_name in (".", "..") or any(c in self.exp_name for c in "/\\"):
            raise ValueError(f"--exp-name must be one non-empty directory name (no '/', not '.' or '..'), got "
                             f"{self.exp_name!r}.")

    @property
    def schedule(self) -> LRSchedule:
        """``lr_schedule`` with an unset ``decay_steps`` following ``num_train_steps``: what the trainers use."""
        if self.lr_schedule.decay_steps is not None:
            return self.lr_schedule
        return dataclasses.replace(self.lr_schedule, decay_steps=self.num_train_steps)

    @property
    def assets_dirs(self) -> pathlib.Path:
        return (pathlib.Path(self.assets_base_dir) / self.name).resolve()

    @property
    def checkpoint_dir(self) -> pathlib.Path:
        return (pathlib.Path(self.checkpoint_base_dir) / self.name / self.exp_name).resolve()

    def run_config(self) -> dict[str, Any]:
        """What the wandb run config records: the whole config plus the loss weighting in readable form."""
        out = dataclasses.asdict(self)
        out["data"] = {"factory": type(self.data).__name__, **dataclasses.asdict(self.data)}
        out["loss_weighting"] = self.model.loss_weighting.to_json()
        return out


# ---------------------------------------------------------------------------------------------------------
# The registry: every named config written out in full; each B1K config's `_demo` twin comes from `demo_twin`.

# openpi's released base checkpoints; gs:// paths resolve to openpi's local cache ($OPENPI_DATA_HOME, default
# ~/.cache/openpi), where an openpi user already has them. Nothing is downloaded.
BASE_CHECKPOINTS = {
    "pi0": "gs://openpi-assets/checkpoints/pi0_base/params",
    "pi05": "gs://openpi-assets/checkpoints/pi05_base/params",
}
# R1Pro's true action layout (grippers combined); the model's padded dims 23:32 become the `padding` group.
R1PRO_GROUPS = b1k_policy.R1PRO_ACTION_GROUPS_COMBINED_GRIPPERS
ARM_FOCUSED_WEIGHTS = {"base": 1.0, "trunk": 2.0, "left_arm": 3.0, "right_arm": 3.0, "grippers": 2.5, "padding": 0.0}
VERY_ARM_FOCUSED_WEIGHTS = {
    "base": 0.5,
    "trunk": 2.0,
    "left_arm": 5.0,
    "right_arm": 5.0,
    "grippers": 3.0,
    "padding": 0.0,
}
# The 2025 BEHAVIOR challenge winners' recipe: trunk dims 3-5 and both arms relative to the current state; the
# base velocities, trunk dim 6 and the grippers stay absolute.
B1K_DELTA_ACTION_MASK = (False,) * 3 + (True,) * 3 + (False,) + (True,) * 7 + (False,) + (True,) * 7 + (False,)

# Where the CPU demo and the `_demo` configs find the miniature B1K dataset (scripts/demo.py writes it).
DEMO_DATASET_ROOT = "~/.cache/openpi/mini_b1k/v2.1"
DEMO_REPO_ID = "openpi/mini_b1k"
# A model small enough to train on 2 CPU cores in minutes; the real architecture, shrunk.
DEMO_MODEL_FIELDS: dict[str, Any] = dict(
    dtype="float32",
    paligemma_variant="dummy",
    action_expert_variant="dummy",
    vision_variant="mu/16",
    image_resolution=(64, 64),
)
DEMO_TRAIN_FIELDS: dict[str, Any] = dict(
    batch_size=8,
    num_workers=0,
    num_train_steps=300,
    log_interval=10,
    save_interval=100,
    keep_period=None,
    ema_decay=None,
    lr_schedule=LRSchedule(warmup_steps=20, peak_lr=1e-3, decay_lr=1e-4),
)

# The simulator (openpi.sim, Meta-World): 39-dim state, action = xyz delta (arm) + gripper effort. Every
# metaworld_demo* config is this one recipe (model, data, schedule) with its own loss weighting.
SIM_DATASET_ROOT = "~/.cache/openpi/metaworld_demos"
SIM_REPO_ID = "openpi/metaworld_demos"
SIM_ACTION_GROUPS = {"arm": (0, 3), "gripper": (3, 4)}
SIM_ARM_FOCUSED_WEIGHTS = {"arm": 1.0, "gripper": 3.0}
# The tiny model, changed for the simulator (see SOLUTIONS.md for what each choice did): pi0 (continuous state
# token, a 48-token prompt; pi0.5 would put 39 state values into a ~240-token prompt), an embedding table the
# size of the offline tokenizer's ids, a model action_dim that holds the 39-dim state, short chunks.
SIM_MODEL_FIELDS: dict[str, Any] = {
    **DEMO_MODEL_FIELDS,
    "pi05": False,
    "vocab_size": 512,
    "action_dim": 40,
    "action_horizon": 10,
    "max_token_len": 48,
    "image_resolution": (32, 32),
}
SIM_TRAIN_FIELDS: dict[str, Any] = {
    **DEMO_TRAIN_FIELDS,
    "batch_size": 32,
    "num_train_steps": 1500,
    "save_interval": 1500,
    "log_interval": 50,
    "lr_schedule": LRSchedule(warmup_steps=50, peak_lr=1e-3, decay_steps=1500, decay_lr=1e-4),
}
SIM_DATA = LeRobotDataConfig(
    repo_id=SIM_REPO_ID,
    root=SIM_DATASET_ROOT,
    image_keys={"base_0_rgb": "observation.images.scene", "left_wrist_0_rgb": "observation.images.wrist"},
    robot="identity",
    robot_action_dim=4,  # xyz delta + gripper
    norm="zscore",
    tokenizer="offline",
)


def per_dimension_weights(
    groups: Mapping[str, action_groups_lib.GroupDims], group_weights: Mapping[str, float], action_dim: int
) -> tuple[float, ...]:
    """Each dim's weight is its group's (the padding dims' 0): a ``per_dimension`` config's ``dimension_weights``
    written as group weights."""
    groups, group_weights = action_groups_lib.complete_layout(groups, group_weights, action_dim)
    spec = action_groups_lib.ActionGroups.create(groups, action_dim)
    return tuple(float(v) for v in spec.dimension_weight_vector(group_weights))


def demo_twin(
    config: TrainConfig, *, data: Mapping[str, Any] | None = None, model: Mapping[str, Any] | None = None
) -> TrainConfig:
    """``<name>_demo``: ``config``'s loss weighting and data recipe on the tiny model (``DEMO_MODEL_FIELDS``),
    with the offline tokenizer and the short CPU schedule (``DEMO_TRAIN_FIELDS``), from random weights, so it
    trains on a CPU in minutes. ``data`` / ``model`` change further fields (the B1K twins read the miniature
    dataset). A curriculum phase resumes from the previous phase's twin."""
    resume_from = config.resume_from
    if resume_from:
        phase, rest = resume_from.split("/", 1)
        resume_from = f"{phase}_demo/{rest}"
    return dataclasses.replace(
        config,
        name=f"{config.name}_demo",
        model=dataclasses.replace(config.model, **DEMO_MODEL_FIELDS, **(model or {})),
        data=dataclasses.replace(config.data, tokenizer="offline", **(data or {})),
        weight_path=None,
        resume_from=resume_from,
        **DEMO_TRAIN_FIELDS,
    )


def _b1k_configs() -> list[TrainConfig]:
    """The B1K configs. ``LeRobotDataConfig()``'s defaults are B1K's dataset, cameras and R1Pro state conversion;
    the model's defaults openpi's (action_dim 32, horizon 50). Every one but ``pi0_b1k`` is a pi0.5 model."""
    return [
        TrainConfig(
            name="pi0_b1k",
            model=ModelConfig(pi05=False, loss_weighting_strategy="original", action_groups=R1PRO_GROUPS),
            data=LeRobotDataConfig(),
            weight_path=BASE_CHECKPOINTS["pi0"],
        ),
        TrainConfig(
            name="pi05_b1k",
            model=ModelConfig(pi05=True, loss_weighting_strategy="original", action_groups=R1PRO_GROUPS),
            data=LeRobotDataConfig(),
            weight_path=BASE_CHECKPOINTS["pi05"],
        ),
        TrainConfig(
            name="pi0_b1k_arm_focused",
            model=ModelConfig(
                pi05=True,
                loss_weighting_strategy="per_group",
                action_groups=R1PRO_GROUPS,
                group_weights=ARM_FOCUSED_WEIGHTS,
                exclude_padding=True,
            ),
            data=LeRobotDataConfig(),
            weight_path=BASE_CHECKPOINTS["pi05"],
        ),
        TrainConfig(
            name="pi0_b1k_very_arm_focused",
            model=ModelConfig(
                pi05=True,
                loss_weighting_strategy="per_group",
                action_groups=R1PRO_GROUPS,
                group_weights=VERY_ARM_FOCUSED_WEIGHTS,
                exclude_padding=True,
            ),
            data=LeRobotDataConfig(),
            weight_path=BASE_CHECKPOINTS["pi05"],
        ),
        # The arm-focused weights as fixed per-dim weights, without the time weights.
        TrainConfig(
            name="pi0_b1k_simple_arm_focused",
            model=ModelConfig(
                pi05=True,
                loss_weighting_strategy="per_dimension",
                action_groups=R1PRO_GROUPS,
                dimension_weights=per_dimension_weights(
                    R1PRO_GROUPS, ARM_FOCUSED_WEIGHTS, b1k_policy.PADDED_ACTION_DIM
                ),
                exclude_padding=True,
            ),
            data=LeRobotDataConfig(),
            weight_path=BASE_CHECKPOINTS["pi05"],
        ),
        TrainConfig(
            name="pi0_b1k_uniform",
            model=ModelConfig(pi05=True, loss_weighting_strategy="uniform", action_groups=R1PRO_GROUPS),
            data=LeRobotDataConfig(),
            weight_path=BASE_CHECKPOINTS["pi05"],
        ),
        # Upstream's loss over the 23 real dims only: no hand-set weights, padding never trained.
        TrainConfig(
            name="pi0_b1k_masked",
            model=ModelConfig(
                pi05=True, loss_weighting_strategy="uniform", action_groups=R1PRO_GROUPS, exclude_padding=True
            ),
            data=LeRobotDataConfig(),
            weight_path=BASE_CHECKPOINTS["pi05"],
        ),
        # Group weights from each group's own progress (``AdaptiveBalance``), padding excluded.
        TrainConfig(
            name="pi0_b1k_adaptive",
            model=ModelConfig(
                pi05=True, loss_weighting_strategy="adaptive", action_groups=R1PRO_GROUPS, exclude_padding=True
            ),
            data=LeRobotDataConfig(),
            weight_path=BASE_CHECKPOINTS["pi05"],
        ),
        # The winners' data recipe with upstream's loss: delta actions and per-timestep action normalization.
        TrainConfig(
            name="pi05_b1k_delta_pertimestep",
            model=ModelConfig(pi05=True, loss_weighting_strategy="uniform", action_groups=R1PRO_GROUPS),
            data=LeRobotDataConfig(delta_action_mask=B1K_DELTA_ACTION_MASK, per_timestep_norm=True),
            weight_path=BASE_CHECKPOINTS["pi05"],
        ),
        # Curriculum: phase 1 on arm-heavy data only, phase 2 on everything from phase 1's weights.
        TrainConfig(
            name="phase1_arm_heavy",
            model=ModelConfig(
                pi05=True,
                loss_weighting_strategy="per_group",
                action_groups=R1PRO_GROUPS,
                group_weights=ARM_FOCUSED_WEIGHTS,
                exclude_padding=True,
            ),
            data=LeRobotDataConfig(episodes_path="{assets_dir}/arm_heavy_episodes.json"),
            weight_path=BASE_CHECKPOINTS["pi05"],
            num_train_steps=20_000,
        ),
        TrainConfig(
            name="phase2_full",
            model=ModelConfig(
                pi05=True,
                loss_weighting_strategy="per_group",
                action_groups=R1PRO_GROUPS,
                group_weights=ARM_FOCUSED_WEIGHTS,
                exclude_padding=True,
            ),
            data=LeRobotDataConfig(),
            weight_path=BASE_CHECKPOINTS["pi05"],
            resume_from="phase1_arm_heavy/{exp_name}",
        ),
    ]


def _sim_configs() -> list[TrainConfig]:
    """The simulator configs: one recipe (``SIM_MODEL_FIELDS``, ``SIM_DATA``, ``SIM_TRAIN_FIELDS``), six variants (five losses, one normalization)."""
    return [
        TrainConfig(
            name="metaworld_demo",
            model=ModelConfig(**SIM_MODEL_FIELDS, loss_weighting_strategy="uniform", action_groups=SIM_ACTION_GROUPS),
            data=SIM_DATA,
            **SIM_TRAIN_FIELDS,
        ),
        TrainConfig(
            name="metaworld_demo_original",
            model=ModelConfig(**SIM_MODEL_FIELDS, loss_weighting_strategy="original", action_groups=SIM_ACTION_GROUPS),
            data=SIM_DATA,
            **SIM_TRAIN_FIELDS,
        ),
        TrainConfig(
            name="metaworld_demo_per_group",
            model=ModelConfig(
                **SIM_MODEL_FIELDS,
                loss_weighting_strategy="per_group",
                action_groups=SIM_ACTION_GROUPS,
                group_weights=SIM_ARM_FOCUSED_WEIGHTS,
            ),
            data=SIM_DATA,
            **SIM_TRAIN_FIELDS,
        ),
        TrainConfig(
            name="metaworld_demo_masked",
            model=ModelConfig(
                **SIM_MODEL_FIELDS,
                loss_weighting_strategy="uniform",
                action_groups=SIM_ACTION_GROUPS,
                exclude_padding=True,
            ),
            data=SIM_DATA,
            **SIM_TRAIN_FIELDS,
        ),
        TrainConfig(
            name="metaworld_demo_adaptive",
            model=ModelConfig(
                **SIM_MODEL_FIELDS,
                loss_weighting_strategy="adaptive",
                action_groups=SIM_ACTION_GROUPS,
                exclude_padding=True,
            ),
            data=SIM_DATA,
            **SIM_TRAIN_FIELDS,
        ),
        # The winners' per-timestep action normalization (Meta-World's actions are already deltas: no delta transform).
        TrainConfig(
            name="metaworld_demo_per_timestep",
            model=ModelConfig(**SIM_MODEL_FIELDS, loss_weighting_strategy="uniform", action_groups=SIM_ACTION_GROUPS),
            data=dataclasses.replace(SIM_DATA, per_timestep_norm=True),
            **SIM_TRAIN_FIELDS,
        ),
    ]


def _registry() -> dict[str, TrainConfig]:
    mini_b1k = {"repo_id": DEMO_REPO_ID, "root": DEMO_DATASET_ROOT}
    # ``lerobot``: any LeRobot dataset from command-line flags alone (dataset, camera map, keys, state dims,
    # action groups and weights); the state is used as stored, outputs keep the dataset's action dims.
    lerobot = TrainConfig(
        name="lerobot",
        model=ModelConfig(pi05=True, loss_weighting_strategy="uniform"),
        data=LeRobotDataConfig(repo_id="", image_keys={}, robot="identity", robot_action_dim=None),
        weight_path=BASE_CHECKPOINTS["pi05"],
    )
    configs = []
    for config in _b1k_configs():
        configs += [config, demo_twin(config, data=mini_b1k)]
    configs += [lerobot, demo_twin(lerobot, model={"action_horizon": 10}), *_sim_configs()]
    return {config.name: config for config in configs}


_CONFIGS: dict[str, TrainConfig] | None = None


def configs() -> dict[str, TrainConfig]:
    """All registered configs by name (built on first use, so importing this module stays cheap)."""
    global _CONFIGS
    if _CONFIGS is None:
        _CONFIGS = _registry()
    return _CONFIGS


def _load_config_reference(reference: str) -> TrainConfig:
    """``path/to/file.py:NAME`` or ``package.module:NAME`` → the ``TrainConfig`` it names (or that the function
    it names returns). A config without a ``name`` takes ``NAME`` (its assets and checkpoints go under it)."""
    module_ref, attr = reference.rsplit(":", 1)
    if module_ref.endswith(".py"):
        path = pathlib.Path(module_ref).expanduser()
        if not path.is_file():
            raise ValueError(f"Config file {path} does not exist (from {reference!r}).")
        spec = importlib.util.spec_from_file_location(f"_openpi_config_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(module_ref)
        except ImportError as error:
            raise ValueError(f"Cannot import config module {module_ref!r} (from {reference!r}): {error}") from None
    if not hasattr(module, attr):
        public = sorted(n for n in vars(module) if not n.startswith("_"))
        raise ValueError(f"{module_ref} has no {attr!r} (from {reference!r}); it defines: {', '.join(public)}.")
    config = getattr(module, attr)
    if callable(config) and not isinstance(config, TrainConfig):
        config = config()
    if not isinstance(config, TrainConfig):
        raise ValueError(f"{reference!r} is a {type(config).__name__}, not a TrainConfig (or a function returning one).")
    return config if config.name else dataclasses.replace(config, name=attr)


def get_config(name: str, overrides: Sequence[str] = ()) -> TrainConfig:
    """The config ``name``: a registered name, ``path/to/file.py:NAME`` or ``package.module:NAME`` (a
    ``TrainConfig`` or a function returning one), with command-line ``overrides`` (``--field.sub-field VALUE``)
    applied. An unknown name raises ``ValueError`` listing the closest names."""
    if ":" in name:
        config = _load_config_reference(name)
    else:
        registry = configs()
        if name not in registry:
            close = difflib.get_close_matches(name, registry, n=3, cutoff=0.4)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(
                f"Unknown config {name!r}.{hint} Available: {', '.join(sorted(registry))}, or a config file as "
                "path/to/file.py:NAME or package.module:NAME."
            )
        config = registry[name]
    if overrides:
        config = tyro.cli(TrainConfig, default=config, args=list(overrides))
    return config


def with_config_overrides(args: Any, overrides: Sequence[str]) -> Any:
    """``args`` carrying the command line's TrainConfig overrides (the options the tool itself does not know);
    they need a config to apply to."""
    if not overrides:
        return args
    if getattr(args, "config_name", None) is None:
        _cli.fail(f"unrecognized options {' '.join(overrides)} (config overrides need --config-name).")
    return dataclasses.replace(args, config_overrides=tuple(overrides))


def _split_config_name(args: list[str]) -> tuple[str | None, list[str]]:
    """Finds the config name given as ``--config-name=NAME``, ``--config-name NAME`` or openpi's positional
    ``NAME`` (the first argument that is not an option), and returns it with the remaining arguments."""
    rest = list(args)
    for i, arg in enumerate(rest):
        if arg.startswith("--config-name=") or arg.startswith("--config_name="):
            return arg.split("=", 1)[1], rest[:i] + rest[i + 1 :]
        if arg in ("--config-name", "--config_name") and i + 1 < len(rest):
            return rest[i + 1], rest[:i] + rest[i + 2 :]
    if rest and not rest[0].startswith("-"):
        return rest[0], rest[1:]
    return None, rest


def cli(args: Sequence[str] | None = None, *, description: str | None = None) -> TrainConfig:
    """Parses ``[--config-name=]NAME [--field.sub-field=VALUE ...]`` into a validated ``TrainConfig``."""
    args = list(sys.argv[1:] if args is None else args)
    name, rest = _split_config_name(args)
    if name is None:
        listing = "\n  ".join(sorted(configs()))
        prog = pathlib.Path(sys.argv[0]).name
        message = (
            f"usage: {prog} [--config-name=]NAME [overrides ...] [--help]\n\nNAME is a registered config, "
            f"path/to/file.py:NAME or package.module:NAME (a TrainConfig or a function returning one).\n\n"
            f"Configs:\n  {listing}\n"
        )
        if any(a in ("-h", "--help") for a in rest):
            print((description + "\n\n" if description else "") + message)
            raise SystemExit(0)
        _cli.fail("no config name given.\n" + message.rstrip("\n"))
    try:
        base = get_config(name)
    except ValueError as error:
        _cli.fail(str(error))
    config = tyro.cli(TrainConfig, default=base, args=rest, description=description)
    _check_loss_overrides(base, config, rest)
    if config.resume_from and "{exp_name}" in config.resume_from:
        config = dataclasses.replace(config, resume_from=config.resume_from.format(exp_name=config.exp_name))
    return config


_DELTA_FIELDS = ("delta_alpha", "delta_beta", "delta_cap", "delta_min_weight", "delta_max_weight")


def unused_loss_fields(model: ModelConfig) -> dict[str, str]:
    """Loss-weighting fields set to values the chosen strategy never reads, each with the reason."""
    strategy = model.loss_weighting_strategy
    unused = {}
    reads_group_weights = strategy == "per_group" or (strategy == "per_dimension" and model.dimension_weights is None)
    if model.group_weights is not None and not reads_group_weights:
        unused["group_weights"] = (
            "strategy 'per_dimension' uses dimension_weights when both are set" if strategy == "per_dimension"
            else f"strategy {strategy!r} has no group weights (use per_group or per_dimension)"
        )
    if not (strategy in ("original", "per_group") and model.use_delta_weighting):
        reason = ("use_delta_weighting is off" if strategy in ("original", "per_group")
                  else f"strategy {strategy!r} has no time weights")
        defaults = ModelConfig()
        unused.update({f: reason for f in _DELTA_FIELDS if getattr(model, f) != getattr(defaults, f)})
    return unused


def _check_loss_overrides(base: TrainConfig, config: TrainConfig, args: Sequence[str]) -> None:
    """An override that sets a loss field the strategy ignores is an error (it would change nothing); a config
    field that a strategy override made unused gets a warning."""
    unused = unused_loss_fields(config.model)
    given = {a.split("=", 1)[0].removeprefix("--model.").replace("-", "_") for a in args if a.startswith("--model.")}
    for field, reason in unused.items():
        if field in given:
            _cli.fail(f"--model.{field.replace('_', '-')} has no effect: {reason}.")
    for field in unused.keys() - unused_loss_fields(base.model).keys():
        warnings.warn(f"{config.name}'s model.{field} is not used: {unused[field]}.", UserWarning,
                      stacklevel=2)


def _dataset_action_dim(factory: LeRobotDataConfig) -> int | None:
    """The action size ``meta/info.json`` declares for ``action_key``, when the dataset is on disk."""
    try:
        meta = _lerobot_meta.LeRobotMetadata.load(_lerobot_meta.resolve_root(factory.repo_id or None, factory.root))
    except (FileNotFoundError, ValueError):
        return None
    shape = meta.features.get(factory.action_key, {}).get("shape")
    return int(shape[-1]) if shape else None


def _robot_io(factory: LeRobotDataConfig, dataset_action_dim: int | None) -> tuple[Any, Any]:
    """The robot's input and output transforms (state conversion, and the robot's own action dims: the config's
    ``robot_action_dim``, else the dataset's action size)."""
    action_dim = factory.robot_action_dim or dataset_action_dim
    outputs = lerobot_policy.LeRobotOutputs(action_dim) if action_dim else None
    return factory.robot_inputs(), outputs


def _check_action_stats_shape(stats: Any, factory: LeRobotDataConfig, model_config: ModelConfig, path) -> None:
    """Per-timestep configs need [action_horizon, D] action stats; the others [D]."""
    shape = np.shape(stats.mean)
    fix = "Recompute them with scripts/compute_norm_stats.py --config-name=<this config>."
    if factory.per_timestep_norm and (len(shape) != 2 or shape[0] != model_config.action_horizon):
        raise ValueError(
            f"{path}: data.per_timestep_norm needs action stats of shape [{model_config.action_horizon}, D] (one row "
            f"per chunk step), got {shape}. {fix}"
        )
    if not factory.per_timestep_norm and len(shape) != 1:
        raise ValueError(f"{path}: action stats of shape {shape} are per-timestep but data.per_timestep_norm is "
                         f"False. Set --data.per-timestep-norm or {fix[0].lower() + fix[1:]}")


def _create_lerobot_data_config(
    factory: LeRobotDataConfig, assets_dirs: pathlib.Path, model_config: ModelConfig
) -> DataConfig:
    # transforms imports torch (over a second): only building a data config needs it, not reading one, so tools
    # that only parse configs (scripts/compute_norm_stats.py, the analysis tools' --help) stay free of it.
    from openpi import transforms as _transforms

    decisions = data_resolver.resolve(factory, model_config, assets_dirs)
    norm_stats = _normalize.load(decisions.stats_dir) if decisions.stats_file.exists() else None
    if norm_stats is not None and "actions" in norm_stats:
        _check_action_stats_shape(norm_stats["actions"], factory, model_config, decisions.stats_file)
    if not factory.image_keys:
        raise ValueError(
            "data.image_keys maps no camera: map the model's cameras (" + ", ".join(_model.IMAGE_KEYS) + ") to "
            "the dataset's video keys, e.g. --data.image-keys base_0_rgb observation.images.top."
        )

    structure = {
        "images": {slot: key for slot, key in factory.image_keys.items()},
        "state": factory.state_key,
        "actions": factory.action_key,
    }
    if factory.prompt_from_task:
        structure["prompt"] = "task"
    robot_inputs, robot_outputs = _robot_io(factory, _dataset_action_dim(factory))
    delta = factory.delta_action_mask
    data_transforms = _transforms.Group(
        inputs=[robot_inputs, *([_transforms.DeltaActions(delta)] if delta else [])],
        outputs=[*([_transforms.AbsoluteActions(delta)] if delta else []), *([robot_outputs] if robot_outputs else [])],
    )
    if model_config.vocab_size < _tokenizer.vocab_size(factory.tokenizer):
        raise ValueError(
            f"model.vocab_size={model_config.vocab_size} is smaller than the {factory.tokenizer} tokenizer's "
            f"{_tokenizer.vocab_size(factory.tokenizer)} ids; raise --model.vocab-size or change --data.tokenizer."
        )
    if factory.tokenizer == "offline":
        tokenizer = _tokenizer.FallbackTokenizer(model_config.max_token_len)
    else:
        tokenizer = _tokenizer.PaligemmaTokenizer(model_config.max_token_len)
    model_transforms = _transforms.Group(
        inputs=[
            _transforms.InjectDefaultPrompt(factory.default_prompt),
            _transforms.ResizeImages(*model_config.image_resolution),
            _transforms.TokenizePrompt(tokenizer, model_config.discrete_state_input),
            _transforms.PadStatesAndActions(model_config.action_dim),
        ]
    )
    episodes_path = decisions.episodes_path
    if episodes_path and not episodes_path.exists():
        raise FileNotFoundError(
            f"Episode list {episodes_path} does not exist. Write it with scripts/filter_arm_heavy_episodes.py "
            f"--config-name=... --output-path={episodes_path}, or override --data.episodes-path."
        )
    return DataConfig(
        repo_id=factory.repo_id,
        root=str(pathlib.Path(factory.root).expanduser()) if factory.root else None,
        asset_id=decisions.asset_id,
        norm_stats=norm_stats,
        repack_transforms=_transforms.Group(inputs=[_transforms.RepackTransform(structure)]),
        data_transforms=data_transforms,
        model_transforms=model_transforms,
        use_quantile_norm=decisions.use_quantiles,
        action_key=factory.action_key,
        episodes=tuple(episode_files.load_episode_list(episodes_path)) if episodes_path else None,
        sample_weights_path=str(decisions.sample_weights_path) if decisions.sample_weights_path else None,
    )


def named_config(name: str, **overrides: Any) -> TrainConfig:
    """A registered config with field overrides (validated like the CLI's); used by ``examples/configs``."""
    return dataclasses.replace(get_config(name), **overrides)
