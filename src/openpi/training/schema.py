"""The training-config schema: ``TrainConfig`` and the frozen dataclasses it is made of (model, data factory,
schedule, optimizer, assets). Pure data with validation; the named configs live in ``training/registry.py``, the
command line in ``training/config_cli.py``, and what a data config resolves to in ``training/data_config.py``.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
import dataclasses
import pathlib
from typing import Any
from typing import Literal
import warnings

import numpy as np
import tyro

from openpi.models import pi0_config
from openpi.policies import b1k_policy
from openpi.policies import lerobot_policy
from openpi.training import data_config as _data_config
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

    def __post_init__(self):
        bad = []
        if not (np.isfinite(self.peak_lr) and self.peak_lr > 0):
            bad.append(f"--lr-schedule.peak-lr={self.peak_lr} must be a positive number")
        if not (np.isfinite(self.decay_lr) and self.decay_lr >= 0):
            bad.append(f"--lr-schedule.decay-lr={self.decay_lr} must be >= 0")
        if self.warmup_steps < 0:
            bad.append(f"--lr-schedule.warmup-steps={self.warmup_steps} must be >= 0")
        if self.decay_steps is not None and self.decay_steps < 1:
            bad.append(f"--lr-schedule.decay-steps={self.decay_steps} must be >= 1 (or unset: the run's length)")
        if bad:
            raise ValueError("; ".join(bad) + ".")


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
    def create(self, assets_dirs: pathlib.Path, model_config: ModelConfig) -> _data_config.DataConfig:
        """The resolved data config: every data decision and the transform pipelines."""


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
    robot: Literal["identity", "b1k", "b1k_2026", "b1k_baseline_2025"] = "b1k"
    """Robot-specific state conversion: "b1k" turns R1Pro's proprio (the 2025 edition's 256 dims) into the 23-dim
    action-ordered state; "b1k_2026" does the same from the 2026 edition's 61-dim proprio; "b1k_baseline_2025"
    keeps the 2025 baseline's state order; "identity" uses the state as stored."""
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

    def create(self, assets_dirs: pathlib.Path, model_config: ModelConfig) -> _data_config.DataConfig:
        return _data_config.create(self, assets_dirs, model_config)

    def robot_inputs(self) -> lerobot_policy.LeRobotInputs:
        """The robot's input transform (``lerobot_policy.LeRobotInputs``): the resolver's state conversion of
        ``robot``, then ``state_dims``."""
        order = data_resolver.STATE_ORDERS[self.robot]
        cameras = tuple(self.image_keys.items())
        if order is None:
            return lerobot_policy.LeRobotInputs(state_dims=self.state_dims, camera_sources=cameras)
        return b1k_policy.B1KInputs(state_order=order, state_dims=self.state_dims, camera_sources=cameras)


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
    val_interval: int = 500
    """Every this many steps (and at the last step of a run at least this long) sample actions from the model being trained on fixed held-out
    windows and log ``scripts/eval_policy.py``'s metrics under ``val/`` (0: off). Needs episodes the run does not
    train on (a ``data.episodes_path`` list); without them validation is off, with a one-line notice."""
    val_windows: int = 32
    """Held-out chunk windows validation samples (at most this many, at least one per held-out task)."""
    sim_eval_interval: int = 0
    """Simulator configs (metaworld_demo*, mobile_demo*): every this many steps (and at the last step of a run at
    least this long) run ``sim_eval_episodes`` held-out layouts per task closed loop with the model being trained and log
    ``sim/<task>/success`` (0: off)."""
    sim_eval_episodes: int = 2
    """Held-out layouts per task of each closed-loop evaluation during training."""
    sim_eval_tasks: tuple[str, ...] | None = None
    """Tasks of the closed-loop evaluation during training; default every task of the simulator."""
    sim_eval_max_steps: int | None = None
    """Step limit of those episodes; default the simulator's (150 Meta-World, 200 mobile, as eval_closed_loop.py)."""
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
        for field in ("log_interval", "save_interval", "keep_period"):
            value = getattr(self, field)
            if value is not None and value <= 0:
                unset = " (or unset it to keep only the latest checkpoint)" if field == "keep_period" else ""
                raise ValueError(f"--{field.replace('_', '-')} must be a positive number of steps{unset}, got {value}.")
        for field in ("val_interval", "sim_eval_interval"):
            if getattr(self, field) < 0:
                raise ValueError(f"--{field.replace('_', '-')} must be >= 0 (0: off), got {getattr(self, field)}.")
        for field in ("val_windows", "sim_eval_episodes", "sim_eval_max_steps"):
            if getattr(self, field) is not None and getattr(self, field) < 1:
                raise ValueError(f"--{field.replace('_', '-')} must be at least 1, got {getattr(self, field)}.")
        if self.lr_schedule.warmup_steps >= self.num_train_steps:
            warnings.warn(
                f"--lr-schedule.warmup-steps={self.lr_schedule.warmup_steps} is not shorter than the run "
                f"(--num-train-steps={self.num_train_steps}): the learning rate never reaches its peak "
                f"{self.lr_schedule.peak_lr}. Lower the warmup for a run this short.",
                UserWarning,
                stacklevel=3,
            )
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

    def data_config(self) -> _data_config.DataConfig:
        """This run's data, resolved (norm stats, episodes, keys, transforms): what every caller passes along."""
        return self.data.create(self.assets_dirs, self.model)

    def run_config(self) -> dict[str, Any]:
        """What the wandb run config records: the whole config plus the loss weighting in readable form."""
        out = dataclasses.asdict(self)
        out["data"] = {"factory": type(self.data).__name__, **dataclasses.asdict(self.data)}
        out["loss_weighting"] = self.model.loss_weighting.to_json()
        return out
