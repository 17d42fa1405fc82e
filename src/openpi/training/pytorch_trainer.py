"""The PyTorch backend of ``training.loop``, behind ``scripts/train_pytorch.py``: the twin of ``jax_trainer``.

AdamW with openpi's betas / eps / weight decay, the learning rate of ``optimizer.learning_rate`` set every step,
global-norm clipping, DDP under ``torchrun`` (gloo on CPU, nccl on GPU), safetensors checkpoints written into a
temporary directory and renamed.

Distributed runs see the same global batch as one process: rank r trains on the r-th slice of each global batch;
the step's noise and flow time are drawn for the whole global batch from a generator seeded by (seed, step), then
sliced, each sample's image augmentation is drawn from a generator seeded by (seed, step, sample), and the loss
weights' batch means are all-reduced (``ddp_global_mean``), so a 2-process run computes the 1-process loss. The same
seeding makes a resumed run reproduce an uninterrupted one. There is no EMA (as in openpi's PyTorch trainer); ``ema_decay`` is ignored with a notice.
"""

from __future__ import annotations

import logging
import os
import pathlib
import shutil
from typing import Any

import jax
import numpy as np
import safetensors.torch
import torch
from torch import nn
import torch.distributed as dist

from openpi.models_pytorch import pi0_loss_utils_pytorch as _loss_utils
from openpi.models_pytorch import pi0_pytorch
from openpi.models_pytorch import weight_conversion as _conversion
from openpi.shared import checkpoint_files as _files
from openpi.shared import loss_weighting as _lw
from openpi.shared import normalize as _normalize
from openpi.training import checkpoint_io as _checkpoint_io
from openpi.training import config as _config
from openpi.training import loop as _loop
from openpi.training import optimizer as _optimizer
from openpi.training import run_utils
from openpi.training import weight_loaders as _weight_loaders

logger = logging.getLogger("openpi")

# ---- distributed ---------------------------------------------------------------------------------------------


def init_distributed() -> tuple[int, int, torch.device]:
    """Joins the process group when started by ``torchrun`` (``WORLD_SIZE`` > 1); returns rank, world size, device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    if cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        return rank, world_size, torch.device("cuda", local_rank)
    return rank, world_size, torch.device("cpu")


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def _mean_over_ranks(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """Scalar metrics of the global batch from every rank's equal slice: means are averaged; a group's share of
    the weighted loss is averaged weighted by the rank's loss (its weighted-loss total), which makes it exact."""
    if not dist.is_initialized():
        return {k: float(v.detach()) for k, v in values.items()}
    loss = values["loss"].detach().float()
    stacked = torch.stack(
        [v.detach().float() * (loss if k.startswith("loss_share/") else 1.0) for k, v in values.items()]
    )
    dist.all_reduce(stacked)
    stacked /= dist.get_world_size()
    mean_loss = stacked[list(values).index("loss")]
    shares = torch.tensor([k.startswith("loss_share/") for k in values])
    stacked = torch.where(shares, stacked / mean_loss, stacked)
    return dict(zip(values, stacked.tolist(), strict=True))


# ---- per-step randomness ---------------------------------------------------------------------------------------


def step_generator(seed: int, step: int) -> torch.Generator:
    """A CPU generator that depends only on (seed, step): resumed and distributed runs draw the same numbers."""
    state = np.random.SeedSequence([seed, step]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def noise_and_time(
    seed: int, step: int, actions_shape: tuple[int, ...], *, rank: int = 0, world_size: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's slice of the global batch's noise ~ N(0, I) and time ~ Beta(1.5, 1)·0.999 + 0.001.

    ``actions_shape`` is the local ``[b, H, D]``; the draw is made for the global batch ``b * world_size``.
    """
    local, horizon, dim = actions_shape
    gen = step_generator(seed, step)
    noise = torch.randn(local * world_size, horizon, dim, generator=gen)
    # Beta(1.5, 1) has CDF t^1.5, so U^(2/3) is an exact draw.
    beta = torch.rand(local * world_size, generator=gen) ** (2.0 / 3.0)
    part = slice(rank * local, (rank + 1) * local)
    return noise[part], beta[part] * 0.999 + 0.001


def augment_generators(seed: int, step: int, rows: range) -> list[torch.Generator]:
    """One CPU generator per row of the global batch this rank holds, seeded by (seed, step, row): the image
    augmentation of a sample is the same in resumed, distributed and one-process runs."""
    states = (np.random.SeedSequence([seed, step, 1, row]).generate_state(2, np.uint32) for row in rows)
    return [torch.Generator().manual_seed(int(s[0]) << 32 | int(s[1])) for s in states]


# ---- model -----------------------------------------------------------------------------------------------------


def create_model(config: _config.TrainConfig, device: torch.device) -> pi0_pytorch.PI0Pytorch:
    """The model with weights seeded by ``config.seed`` (identical on every rank); compiled when configured."""
    torch.manual_seed(config.seed)
    model = pi0_pytorch.PI0Pytorch(config.model, compile_mode="default" if config.pytorch_compile else None)
    return model.to(device)


def freeze_lora_base(model: nn.Module, model_config: _config.ModelConfig) -> int:
    """openpi's LoRA rule (``Pi0Config.get_freeze_filter``): the base weights of every LoRA-adapted Gemma expert are
    frozen, LoRA factors and everything else train. Returns the number of frozen tensors."""
    prefixes = []
    if "lora" in model_config.paligemma_variant:
        prefixes.append("paligemma_with_expert.paligemma.model.language_model.")
    if "lora" in model_config.action_expert_variant:
        prefixes.append("paligemma_with_expert.gemma_expert.model.")
    frozen = 0
    for name, param in model.named_parameters():
        if name.startswith(tuple(prefixes)) and "lora" not in name:
            param.requires_grad_(False)
            frozen += 1
    return frozen


def weights_file(source: pathlib.Path | str | None) -> pathlib.Path | None:
    """A step directory (its ``model.safetensors`` or JAX ``params``) or a ``weight_path`` as a local path."""
    if isinstance(source, pathlib.Path):
        kind = _checkpoint_io.checkpoint_kind(source) or "jax"
        return _checkpoint_io.weights_path(source, kind)
    return None if source is None else _weight_loaders.local_asset_path(source)


def param_norm(model: nn.Module) -> torch.Tensor:
    """Global norm of all weights except biases (the JAX trainer's ``param_norm``)."""
    norms = [p.detach().float().norm() for name, p in model.named_parameters() if "bias" not in name]
    return torch.stack(norms).norm()


class LossAndMetrics(nn.Module):
    """Calls ``compute_loss_and_metrics`` as ``forward``, so DDP's gradient sync wraps the call the trainer makes."""

    def __init__(self, model: pi0_pytorch.PI0Pytorch):
        super().__init__()
        self.model = model

    def forward(self, observation, actions, noise, time, augment_generators, balance_weights=None, global_mean=None):
        return self.model.compute_loss_and_metrics(
            observation, actions, noise=noise, time=time, train=True, augment_generators=augment_generators,
            balance_weights=balance_weights, global_mean=global_mean,
        )


# ---- checkpoints -----------------------------------------------------------------------------------------------


def save_checkpoint(
    checkpoint_dir: pathlib.Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    config: _config.TrainConfig,
    data_config: _config.DataConfig,
    *,
    world_size: int,
    loss_balance: dict[str, torch.Tensor] | None = None,
) -> pathlib.Path:
    """Writes ``<step>/{model.safetensors, optimizer.pt, metadata.pt, assets/<asset_id>/norm_stats.json}`` into a
    temporary directory and renames it, so an interrupted save never appears as a step; prunes older steps as the
    JAX trainer does (the latest plus multiples of ``keep_period``)."""
    final = checkpoint_dir / str(step)
    tmp = checkpoint_dir / f"tmp-{step}"
    shutil.rmtree(tmp, ignore_errors=True)
    tensors = {
        k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k != _conversion.TIED_LM_HEAD
    }
    metadata = {
        "step": step,
        "config_name": config.name,
        "exp_name": config.exp_name,
        "seed": config.seed,
        "batch_size": config.batch_size,
        "world_size": world_size,
        "loss_weighting": config.model.loss_weighting.to_json(),
        "asset_id": data_config.asset_id,
    }
    if loss_balance is not None:
        metadata["loss_balance"] = {k: v.detach().cpu() for k, v in loss_balance.items()}
    optimizer_bytes = sum(v.nbytes for state in optimizer.state.values() for v in state.values()
                          if isinstance(v, torch.Tensor))
    run_utils.check_space(checkpoint_dir, sum(t.nbytes for t in tensors.values()) + optimizer_bytes, step)
    try:
        tmp.mkdir(parents=True)
        safetensors.torch.save_file(tensors, str(tmp / _files.MODEL_FILE), metadata={"format": "pt"})
        torch.save(optimizer.state_dict(), tmp / _files.OPTIMIZER_FILE)
        torch.save(metadata, tmp / _files.METADATA_FILE)
        if data_config.norm_stats:
            _normalize.save(_files.assets_dir(tmp, data_config.asset_id), data_config.norm_stats)
    except Exception as error:  # a full disk shows as OSError, or as torch's "basic_ios::clear: iostream error"
        shutil.rmtree(tmp, ignore_errors=True)
        raise run_utils.save_failure(error, checkpoint_dir, step) from error
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in run_utils.step_dirs(checkpoint_dir):
        if old != step and not (config.keep_period and old % config.keep_period == 0):
            shutil.rmtree(checkpoint_dir / str(old))
    return final


def load_checkpoint(step_dir: pathlib.Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Restores model and optimizer from a complete checkpoint; returns its step."""
    try:
        weights = safetensors.torch.load_file(str(step_dir / _files.MODEL_FILE))
        optimizer_state = torch.load(step_dir / _files.OPTIMIZER_FILE, weights_only=True)
        step = int(torch.load(step_dir / _files.METADATA_FILE, weights_only=True)["step"])
    except Exception as error:  # safetensors, pickle and zip errors for a truncated or missing file
        raise run_utils.unreadable_checkpoint(step_dir, error) from error
    _conversion.load_into(model, weights)
    optimizer.load_state_dict(optimizer_state)
    return step


def initial_loss_balance(
    config: _config.TrainConfig, step_dir: pathlib.Path | None, device: torch.device
) -> dict[str, torch.Tensor] | None:
    """The ``adaptive`` strategy's state: from the checkpoint being resumed, else fresh (None for other strategies)."""
    weighting = config.model.loss_weighting
    if weighting.strategy != "adaptive":
        return None
    state = {k: torch.as_tensor(v) for k, v in _lw.adaptive_init(weighting).items()}
    if step_dir is not None:
        metadata = step_dir / _files.METADATA_FILE
        saved = torch.load(metadata, weights_only=True).get("loss_balance")
        if saved is None:
            raise ValueError(
                f"{metadata} holds no adaptive loss-balance state (written by a non-adaptive run); resume it with "
                "its own loss_weighting_strategy or start a new experiment."
            )
        state = saved
    return {k: v.to(device) for k, v in state.items()}


def _remove_temporary_dirs(checkpoint_dir: pathlib.Path) -> None:
    for path in checkpoint_dir.glob("tmp-*"):
        shutil.rmtree(path, ignore_errors=True)


# ---- training --------------------------------------------------------------------------------------------------


def create_optimizer(config: _config.TrainConfig, model: nn.Module) -> torch.optim.AdamW:
    """AdamW over the trainable weights; the learning rate is set every step from ``config.schedule``."""
    opt = config.optimizer
    return torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=float(_optimizer.learning_rate(config.schedule, 0)),
        betas=(opt.b1, opt.b2),
        eps=opt.eps,
        weight_decay=opt.weight_decay,
    )


def _to_device(batch: Any, device: torch.device) -> Any:
    return jax.tree.map(lambda x: x.to(device) if isinstance(x, torch.Tensor) else x, batch)


def train_step(
    config: _config.TrainConfig,
    step_module: nn.Module,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    observation: Any,
    actions: torch.Tensor,
    *,
    rank: int = 0,
    world_size: int = 1,
    loss_balance: dict[str, torch.Tensor] | None = None,
) -> dict[str, float]:
    """One update on this rank's slice of the global batch; returns the step's metrics (averaged over ranks), which
    ``loop`` checks for a non-finite loss or weights before anything is saved.

    ``step_module`` is ``LossAndMetrics(model)``, DDP-wrapped under ``torchrun``. ``loss_balance`` (the adaptive
    strategy's state) sets this step's group weights and is updated in place from the global batch's group losses.
    """
    weighting = config.model.loss_weighting
    balance_weights = None if loss_balance is None else _loss_utils.adaptive_balance_weights(weighting, loss_balance)
    noise, flow_time = noise_and_time(config.seed, step, tuple(actions.shape), rank=rank, world_size=world_size)
    local = actions.shape[0]
    generators = augment_generators(config.seed, step, range(rank * local, (rank + 1) * local))
    loss_bh, metrics = step_module(
        observation, actions, noise.to(actions.device), flow_time.to(actions.device), generators, balance_weights,
        _loss_utils.ddp_global_mean if world_size > 1 else None,
    )
    loss = loss_bh.mean()
    info = _mean_over_ranks({"loss": loss, **metrics})
    if loss_balance is not None:  # ``info`` holds global-batch means, identical on every rank
        group_losses = torch.tensor([info[f"loss/{n}"] for n in weighting.groups.names], dtype=torch.float32)
        new_balance = _loss_utils.adaptive_update(weighting, loss_balance, group_losses.to(actions.device))
        loss_balance.update(new_balance)
    lr = float(_optimizer.learning_rate(config.schedule, step))
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    trainable = [p for group in optimizer.param_groups for p in group["params"]]
    grad_norm = torch.nn.utils.clip_grad_norm_(trainable, config.optimizer.clip_gradient_norm)
    optimizer.step()
    info = {
        "loss": info.pop("loss"),
        "grad_norm": float(grad_norm),
        "param_norm": float(param_norm(model)),
        "learning_rate": lr,
        **info,
    }
    return info


class TorchBackend:
    """The PyTorch side of ``loop``: the model on this rank's device, DDP under ``torchrun``, AdamW, safetensors
    checkpoints written by rank 0."""

    framework = "pytorch"
    preflight_on_every_process = False

    def __init__(self, config: _config.TrainConfig, *, rank: int, world_size: int, device: torch.device):
        self.config, self.rank, self.world_size, self.device = config, rank, world_size, device
        self.model: pi0_pytorch.PI0Pytorch | None = None

    def agree(self, data_config: _config.DataConfig) -> None:
        pass  # torchrun starts every rank with the same command line

    def init(self, weights: pathlib.Path | str | None) -> None:
        config, main = self.config, self.rank == 0
        if config.batch_size % self.world_size:
            raise ValueError(f"batch_size={config.batch_size} must be divisible by the {self.world_size} processes.")
        self.model = create_model(config, self.device)
        frozen = freeze_lora_base(self.model, config.model) if config.freeze_lora_base else 0
        if frozen and main:
            logger.info("Froze %d non-LoRA weight tensors (LoRA fine-tuning).", frozen)
        if config.ema_decay is not None and main:
            logger.info("ema_decay=%s is ignored: the PyTorch trainer keeps no EMA (as openpi's).", config.ema_decay)
        if (path := weights_file(weights)) is not None:
            try:
                _checkpoint_io.load_weights(self.model, path)
            except ValueError as error:  # a shape or name mismatch: weights of another model
                raise run_utils.InputError(
                    f"The weights in {path} do not fit config {config.name!r}: {error}"
                ) from None
        self.optimizer = create_optimizer(config, self.model)
        self.loss_balance = initial_loss_balance(config, None, self.device)
        self.step_module: nn.Module = LossAndMetrics(self.model)
        if self.world_size > 1:
            self.step_module = nn.parallel.DistributedDataParallel(
                self.step_module, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True,
            )
        self.model.train()

    def loader_options(self) -> dict[str, Any]:
        return dict(framework="pytorch", rank=self.rank, world_size=self.world_size)

    def any_failed(self, failed: bool) -> bool:
        if not dist.is_initialized():
            return failed
        flag = torch.tensor([int(failed)], device=self.device)
        dist.all_reduce(flag)
        return bool(flag.item())

    def barrier(self) -> None:
        _barrier()

    def open(self, checkpoint_dir: pathlib.Path) -> None:
        self.checkpoint_dir = checkpoint_dir
        if self.rank == 0:
            _remove_temporary_dirs(checkpoint_dir)

    def restore(self, step: int) -> int:
        step_dir = self.checkpoint_dir / str(step)
        restored = load_checkpoint(step_dir, self.model, self.optimizer)
        self.loss_balance = initial_loss_balance(self.config, step_dir, self.device)
        return restored

    def step(self, step: int, batch) -> tuple[dict[str, float], torch.Tensor]:
        observation, actions = _to_device(batch, self.device)
        info = train_step(self.config, self.step_module, self.model, self.optimizer, step, observation, actions,
                          rank=self.rank, world_size=self.world_size, loss_balance=self.loss_balance)
        return info, actions

    def to_host(self, infos: list[dict[str, float]]) -> list[dict[str, float]]:
        return infos  # already floats: the ranks' means are taken every step

    def local_targets(self, targets: torch.Tensor) -> np.ndarray:
        return targets.detach().cpu().numpy()

    def save(self, step: int, data_config: _config.DataConfig) -> None:
        if self.rank == 0:
            save_checkpoint(self.checkpoint_dir, step, self.model, self.optimizer, self.config, data_config,
                            world_size=self.world_size, loss_balance=self.loss_balance)

    def close(self) -> None:
        pass  # saves are synchronous

    def sampling_model(self) -> pi0_pytorch.PI0Pytorch:
        return self.model  # the unwrapped model: sampling on rank 0 alone needs no collective


def train(config: _config.TrainConfig, *, progress: bool = True) -> pi0_pytorch.PI0Pytorch:
    """Runs (or resumes) training as configured, under ``torchrun`` or in one process; returns the model."""
    rank, world_size, device = init_distributed()
    try:
        backend = TorchBackend(config, rank=rank, world_size=world_size, device=device)
        return _loop.run(config, backend, progress=progress).model
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
