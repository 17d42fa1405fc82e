"""The PyTorch training loop behind ``scripts/train_pytorch.py``: the twin of ``jax_trainer``.

AdamW with openpi's betas / eps / weight decay, the learning rate of ``optimizer.learning_rate`` set every step,
global-norm clipping, DDP under ``torchrun`` (gloo on CPU, nccl on GPU), safetensors checkpoints written into a
temporary directory and renamed, per-group metrics in wandb and ``metrics.jsonl`` (same keys and format as the JAX
trainer), exact resume.

Distributed runs see the same global batch as one process: rank r trains on the r-th slice of each global batch,
and the step's noise and flow time are drawn for the whole global batch from a generator seeded by (seed, step),
then sliced, so a 2-process run computes the 1-process loss. The same seeding makes a resumed run reproduce an
uninterrupted one. There is no EMA (as in openpi's PyTorch trainer); ``ema_decay`` is ignored with a notice.
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
import tqdm

from openpi.models_pytorch import pi0_loss_utils_pytorch as _loss_utils
from openpi.models_pytorch import pi0_pytorch
from openpi.models_pytorch import weight_conversion as _conversion
from openpi.shared import loss_weighting as _lw
from openpi.shared import normalize as _normalize
from openpi.training import checkpoint_io as _checkpoint_io
from openpi.training import config as _config
from openpi.training import data_loader as _data_loader
from openpi.training import optimizer as _optimizer
from openpi.training import preflight
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


def _initial_weights_path(config: _config.TrainConfig, resume_from: pathlib.Path | None) -> pathlib.Path | None:
    """Weights to start from: another experiment's latest checkpoint (``--resume-from``; a PyTorch or a JAX one),
    ``weight_path``, or None for the seeded random init."""
    if resume_from is not None:
        steps = run_utils.step_dirs(resume_from)
        if not steps:
            raise FileNotFoundError(f"--resume-from: {resume_from} has no complete checkpoint.")
        step_dir = resume_from / str(steps[-1])
        path = step_dir if (step_dir / _checkpoint_io.MODEL_FILE).exists() else step_dir / _checkpoint_io.JAX_PARAMS
        logger.info("Starting from the weights of %s (--resume-from).", path)
        return path
    if config.weight_path is not None:
        return _weight_loaders.local_asset_path(config.weight_path)
    return None


def param_norm(model: nn.Module) -> torch.Tensor:
    """Global norm of all weights except biases (the JAX trainer's ``param_norm``)."""
    norms = [p.detach().float().norm() for name, p in model.named_parameters() if "bias" not in name]
    return torch.stack(norms).norm()


class LossAndMetrics(nn.Module):
    """Calls ``compute_loss_and_metrics`` as ``forward``, so DDP's gradient sync wraps the call the trainer makes."""

    def __init__(self, model: pi0_pytorch.PI0Pytorch):
        super().__init__()
        self.model = model

    def forward(self, observation, actions, noise, time, group_weights=None):
        return self.model.compute_loss_and_metrics(observation, actions, noise=noise, time=time, group_weights=group_weights)


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
    try:
        tmp.mkdir(parents=True)
        safetensors.torch.save_file(tensors, str(tmp / _checkpoint_io.MODEL_FILE), metadata={"format": "pt"})
        torch.save(optimizer.state_dict(), tmp / _checkpoint_io.OPTIMIZER_FILE)
        torch.save(metadata, tmp / _checkpoint_io.METADATA_FILE)
        if data_config.norm_stats:
            _normalize.save(tmp / "assets" / data_config.asset_id, data_config.norm_stats)
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
    _checkpoint_io.load_weights(model, step_dir / _checkpoint_io.MODEL_FILE)
    optimizer.load_state_dict(torch.load(step_dir / _checkpoint_io.OPTIMIZER_FILE, weights_only=True))
    return int(torch.load(step_dir / _checkpoint_io.METADATA_FILE, weights_only=True)["step"])


def initial_loss_balance(
    config: _config.TrainConfig, step_dir: pathlib.Path | None, device: torch.device
) -> dict[str, torch.Tensor] | None:
    """The ``adaptive`` strategy's state: from the checkpoint being resumed, else fresh (None for other strategies)."""
    weighting = config.model.loss_weighting
    if weighting.strategy != "adaptive":
        return None
    state = {k: torch.as_tensor(v) for k, v in _lw.adaptive_init(weighting).items()}
    if step_dir is not None:
        saved = torch.load(step_dir / _checkpoint_io.METADATA_FILE, weights_only=True).get("loss_balance")
        if saved is None:
            raise ValueError(
                f"{step_dir / _checkpoint_io.METADATA_FILE} holds no adaptive loss-balance state (written by a non-adaptive run); "
                "resume it with its own loss_weighting_strategy or start a new experiment."
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
    """One update on this rank's slice of the global batch; returns the step's metrics (averaged over ranks).

    ``step_module`` is ``LossAndMetrics(model)``, DDP-wrapped under ``torchrun``. Raises ``NonFiniteLossError``
    on a non-finite loss (before the update) or non-finite weights (after it). ``loss_balance`` (the adaptive
    strategy's state) sets this step's group weights and is updated in place from the global batch's group losses.
    """
    weighting = config.model.loss_weighting
    group_weights = None if loss_balance is None else _loss_utils.adaptive_group_weights(weighting, loss_balance)
    noise, flow_time = noise_and_time(config.seed, step, tuple(actions.shape), rank=rank, world_size=world_size)
    loss_bh, metrics = step_module(
        observation, actions, noise.to(actions.device), flow_time.to(actions.device), group_weights
    )
    loss = loss_bh.mean()
    info = _mean_over_ranks({"loss": loss, **metrics})
    # Before the update: weights that produced a non-finite loss are never stepped, let alone saved.
    # Messages count steps from 1, like logs, metrics.jsonl and checkpoint names (``step`` is 0-based here).
    run_utils.check_finite(
        step + 1, info["loss"], info, targets=actions.detach().cpu().numpy(), groups=config.model.loss_weighting.groups
    )
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
    run_utils.check_finite_weights(step + 1, info)
    return info


def train(config: _config.TrainConfig, *, progress: bool = True) -> pi0_pytorch.PI0Pytorch:
    """Runs (or resumes) training as configured, under ``torchrun`` or in one process; returns the model."""
    rank, world_size, device = init_distributed()
    is_main = rank == 0
    try:
        return _train(config, rank=rank, world_size=world_size, device=device, progress=progress and is_main)
    finally:
        run_utils.release_checkpoint_dir(config.checkpoint_dir)
        if dist.is_initialized():
            dist.destroy_process_group()


def _train(
    config: _config.TrainConfig, *, rank: int, world_size: int, device: torch.device, progress: bool
) -> pi0_pytorch.PI0Pytorch:
    is_main = rank == 0
    if config.batch_size % world_size:
        raise ValueError(f"batch_size={config.batch_size} must be divisible by the {world_size} processes.")
    # Every input is checked (and the starting weights loaded) before the experiment directory is touched.
    data_config = config.data.create(config.assets_dirs, config.model)
    if is_main:
        preflight.check_inputs(config, data_config, progress=progress)
    resume_from = run_utils.resolve_resume_from(config)
    model = create_model(config, device)
    frozen = freeze_lora_base(model, config.model) if config.freeze_lora_base else 0
    if frozen and is_main:
        logger.info("Froze %d non-LoRA weight tensors (LoRA fine-tuning).", frozen)
    has_checkpoint = config.resume and bool(run_utils.step_dirs(config.checkpoint_dir))
    if not has_checkpoint and (path := _initial_weights_path(config, resume_from)) is not None:
        try:
            _checkpoint_io.load_weights(model, path)
        except ValueError as error:  # a shape or name mismatch: weights of another model
            raise run_utils.InputError(f"The weights in {path} do not fit config {config.name!r}: {error}") from None
    if is_main:
        checkpoint_dir, resuming = run_utils.prepare_checkpoint_dir(config)
        _remove_temporary_dirs(checkpoint_dir)
    _barrier()
    if not is_main:
        checkpoint_dir, resuming = config.checkpoint_dir, config.resume
    if config.ema_decay is not None and is_main:
        logger.info("ema_decay=%s is ignored: the PyTorch trainer keeps no EMA (as openpi's).", config.ema_decay)
    steps = run_utils.step_dirs(checkpoint_dir) if resuming else []
    optimizer = create_optimizer(config, model)
    start_step = 0
    if steps:
        start_step = load_checkpoint(checkpoint_dir / str(steps[-1]), model, optimizer)
        if is_main:
            logger.info("Resumed from step %d in %s.", start_step, checkpoint_dir)
    loss_balance = initial_loss_balance(config, checkpoint_dir / str(steps[-1]) if steps else None, device)
    if is_main:
        run_utils.truncate_metrics(checkpoint_dir, start_step)

    step_module: nn.Module = LossAndMetrics(model)
    if world_size > 1:
        step_module = nn.parallel.DistributedDataParallel(
            step_module, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
        )
    run = run_utils.init_wandb(config, checkpoint_dir, resuming=resuming, enabled=is_main)
    loader = _data_loader.create_data_loader(
        config, data_config, framework="pytorch", start_step=start_step, rank=rank, world_size=world_size
    )
    interval = run_utils.IntervalLogger(run, checkpoint_dir, config.batch_size, enabled=is_main)
    bar = tqdm.tqdm(total=config.num_train_steps, initial=start_step, disable=not progress, dynamic_ncols=True)
    batches = iter(loader)
    model.train()
    for step in range(start_step, config.num_train_steps):
        observation, actions = _to_device(next(batches), device)
        info = train_step(config, step_module, model, optimizer, step, observation, actions, rank=rank,
                          world_size=world_size, loss_balance=loss_balance)
        interval.add(info)
        bar.update(1)
        done = step + 1
        if done % config.log_interval == 0 or done == config.num_train_steps:
            bar.set_postfix(loss=f"{interval.flush(done)['loss']:.4f}")
        if is_main and (done % config.save_interval == 0 or done == config.num_train_steps):
            save_checkpoint(checkpoint_dir, done, model, optimizer, config, data_config, world_size=world_size,
                            loss_balance=loss_balance)
    bar.close()
    _barrier()
    run.finish()
    return model
