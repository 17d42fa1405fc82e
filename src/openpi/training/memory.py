"""Memory a config needs per device, worked out before launch from shapes alone (``jax.eval_shape``: no weights
loaded, nothing allocated).

Training holds, per device: the parameters (float32, as the JAX trainer keeps them), their EMA (``ema_decay``
set), the optimizer state (the trainer's optax AdamW initialised on the trainable shapes: LoRA's freeze filter
decides what is trainable), the gradients of the trainable parameters and the activations of the loss/grad step.
Under FSDP the first four are split by the trainer's own rule (``sharding.fsdp_sharding``) over ``fsdp_devices``
devices, the global batch is split over the same devices, and each device gathers one layer's weights at a time.

Activations come from XLA (``memory_analysis`` of the real loss/grad step, or of ``sample_actions`` for
inference, compiled on abstract inputs for this machine's CPU) or, without compiling, from an analytic count over
the architecture (layers, widths, tokens, batch). The model always runs its layers under remat
(``nothing_saveable``); "without remat" is the same step traced with every intermediate saved.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import dataclasses
import math
from typing import Literal
import unittest.mock

import flax.linen
import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np

from openpi.models import gemma as _gemma
from openpi.models import model as _model
from openpi.models import siglip as _siglip
from openpi.training import config as _config
from openpi.training import jax_trainer
from openpi.training import optimizer as _optimizer
from openpi.training import sharding as _sharding

ActivationSource = Literal["auto", "xla", "analytic"]
GB = 1e9


@dataclasses.dataclass(frozen=True)
class Footprint:
    """Size of a tree of arrays: element count and bytes in total and per dtype, and bytes per device under FSDP."""

    count: int
    bytes: int
    by_dtype: dict[str, tuple[int, int]]  # dtype name -> (count, bytes)
    per_device: int


def footprint(tree, fsdp_devices: int = 1) -> Footprint:
    """The size of ``tree`` (arrays or ``ShapeDtypeStruct``s); ``per_device`` is what one device holds when the
    trainer shards the tree over ``fsdp_devices`` (small leaves stay replicated)."""
    leaves = jax.tree.leaves(tree)
    by_dtype: dict[str, tuple[int, int]] = {}
    for leaf in leaves:
        count = math.prod(leaf.shape)
        name = np.dtype(leaf.dtype).name
        old = by_dtype.get(name, (0, 0))
        by_dtype[name] = (old[0] + count, old[1] + count * np.dtype(leaf.dtype).itemsize)
    return Footprint(
        count=sum(c for c, _ in by_dtype.values()),
        bytes=sum(b for _, b in by_dtype.values()),
        by_dtype=dict(sorted(by_dtype.items())),
        per_device=sharded_bytes(tree, fsdp_devices),
    )


def sharded_bytes(tree, fsdp_devices: int) -> int:
    """Bytes one device holds of ``tree`` under ``sharding.fsdp_sharding`` over ``fsdp_devices`` devices (an
    abstract mesh: no devices needed)."""
    mesh = jax.sharding.AbstractMesh((1, fsdp_devices), ("batch", "fsdp"))
    leaves = jax.tree.leaves(tree)
    shardings = jax.tree.leaves(_sharding.fsdp_sharding(leaves, mesh))
    return sum(
        math.prod(s.shard_shape(tuple(x.shape))) * np.dtype(x.dtype).itemsize
        for x, s in zip(leaves, shardings, strict=True)
    )


@dataclasses.dataclass(frozen=True)
class Activations:
    """Bytes per device of the training step's activations (with and without remat) and of inference's."""

    train_remat: int
    train_no_remat: int
    inference: dict[str, int]  # serving dtype -> bytes
    source: str  # how they were obtained, for the report


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Every figure of one config at one batch size and FSDP degree."""

    config_name: str
    batch_size: int
    fsdp_devices: int
    params: Footprint
    trainable: Footprint
    opt_state: Footprint
    ema: Footprint | None
    grads: Footprint
    batch_bytes: int  # one device's share of the input batch
    gathered_layer: int  # largest layer's float32 weights gathered at once under FSDP (0 without)
    activations: Activations
    inference_params: dict[str, int]  # serving dtype -> parameter bytes

    @property
    def state_per_device(self) -> int:
        """Parameters, EMA, optimizer state and gradients on one device."""
        ema = self.ema.per_device if self.ema is not None else 0
        return self.params.per_device + ema + self.opt_state.per_device + self.grads.per_device

    def train_peak(self, *, remat: bool = True) -> int:
        act = self.activations.train_remat if remat else self.activations.train_no_remat
        return self.state_per_device + self.batch_bytes + self.gathered_layer + act

    def inference_peak(self, dtype: str) -> int:
        return self.inference_params[dtype] + self.activations.inference[dtype]


def abstract_train_state(config: _config.TrainConfig) -> tuple[nnx.GraphDef, nnx.State, nnx.State, object]:
    """The graph, all parameters, the trainable ones and the optimizer state, as shapes (as the trainer builds them)."""
    model = nnx.eval_shape(lambda: config.model.create(jax.random.key(0)))
    graphdef, params = nnx.split(model)
    trainable = params.filter(jax_trainer.trainable_filter(config.model))
    tx = _optimizer.create_optimizer(config.optimizer, config.schedule)
    return graphdef, params, trainable, jax.eval_shape(tx.init, trainable)


def estimate(
    config: _config.TrainConfig,
    *,
    batch_size: int | None = None,
    fsdp_devices: int | None = None,
    activations: ActivationSource = "auto",
    inference_dtypes: tuple[str, ...] = ("float32", "bfloat16"),
) -> Estimate:
    """The estimate for ``config`` at ``batch_size`` (global, default the config's) split over ``fsdp_devices``
    devices (default the config's), which also shard the parameters and optimizer state.

    ``activations``: ``"xla"`` compiles the real steps (about a minute each for pi0.5 on a CPU), ``"analytic"``
    counts from the architecture; ``"auto"`` compiles when the model computes in float32 and counts otherwise,
    because this CPU's XLA runs part of a bfloat16 computation in float32 and its temporaries would overstate an
    accelerator's."""
    batch_size = config.batch_size if batch_size is None else batch_size
    fsdp = config.fsdp_devices if fsdp_devices is None else fsdp_devices
    if fsdp < 1 or batch_size < 1 or batch_size % fsdp:
        raise ValueError(
            f"--batch-size ({batch_size}) must be a positive multiple of --fsdp-devices ({fsdp}): each device "
            "takes an equal share of the batch."
        )
    per_device_batch = batch_size // fsdp
    graphdef, params, trainable, opt_state = abstract_train_state(config)
    obs, actions = config.model.inputs_spec(batch_size=per_device_batch)
    serving = {d: _cast(params, d) for d in inference_dtypes}
    if activations == "xla" or (activations == "auto" and np.dtype(config.model.dtype) == np.float32):
        acts = xla_activations(config, graphdef, params, serving, obs, actions)
    else:
        acts = analytic_activations(config.model, per_device_batch, inference_dtypes)
        if activations == "auto":
            reason = f"; not compiled: the model computes in {config.model.dtype}, which XLA on a CPU partly runs in float32"
            acts = dataclasses.replace(acts, source=acts.source + reason)
    return Estimate(
        config_name=config.name,
        batch_size=batch_size,
        fsdp_devices=fsdp,
        params=footprint(params, fsdp),
        trainable=footprint(trainable, fsdp),
        opt_state=footprint(opt_state, fsdp),
        ema=None if config.ema_decay is None else footprint(params, fsdp),
        grads=footprint(trainable, fsdp),
        batch_bytes=footprint((obs, actions)).bytes,
        gathered_layer=0 if fsdp == 1 else _largest_layer_bytes(params),
        activations=acts,
        inference_params={d: footprint(p).bytes for d, p in serving.items()},
    )


def _cast(params: nnx.State, dtype: str) -> nnx.State:
    """Floating-point parameter shapes in ``dtype`` (what a policy serving in that dtype holds)."""

    def cast(x):
        floating = jnp.issubdtype(x.dtype, jnp.floating)
        return jax.ShapeDtypeStruct(x.shape, jnp.dtype(dtype) if floating else x.dtype)

    return jax.tree.map(cast, params)


def _largest_layer_bytes(params: nnx.State) -> int:
    """Bytes of one scanned layer of the largest stack (the Gemma experts or the vision tower): what FSDP gathers
    on one device while that layer runs."""
    flat = nnx.to_flat_state(params)
    stacks: dict[str, tuple[int, int]] = {}  # stack path -> (depth, bytes)
    for path, var in flat:
        names = [str(p) for p in path]
        for marker in ("layers", "encoderblock"):
            if marker in names:
                key = "/".join(names[: names.index(marker) + 1])
                value = var.value if hasattr(var, "value") else var
                depth, total = stacks.get(key, (value.shape[0], 0))
                stacks[key] = (depth, total + math.prod(value.shape) * np.dtype(value.dtype).itemsize)
    return max((total // depth for depth, total in stacks.values()), default=0)


@contextlib.contextmanager
def _without_remat() -> Iterator[None]:
    """Traces the model as if its layers kept every intermediate: ``flax.linen.remat`` with the
    ``everything_saveable`` policy (the model calls ``nn.remat`` while it is traced, so this reaches every layer)."""
    remat = flax.linen.remat

    def save_everything(target, **kwargs):
        return remat(target, **{**kwargs, "policy": jax.checkpoint_policies.everything_saveable})

    with unittest.mock.patch.object(flax.linen, "remat", save_everything):
        yield


def xla_activations(
    config: _config.TrainConfig, graphdef, params, serving: dict[str, nnx.State], obs, actions
) -> Activations:
    """XLA's temporary bytes of the loss/grad step (with and without remat) and of ``sample_actions`` on one
    observation, each compiled for this machine's CPU on abstract inputs."""
    trainable = jax_trainer.trainable_filter(config.model)
    rng = jax.eval_shape(lambda: jax.random.key(0))

    def loss_and_grad():  # a new function per trace: jit caches traces by function, and remat is read while tracing
        def step(params, rng, obs, actions):
            model = nnx.merge(graphdef, params)
            model.train()

            def loss_fn(model):
                loss, _ = model.compute_loss_and_metrics(rng, obs, actions, train=True)
                return jnp.mean(loss)

            return nnx.value_and_grad(loss_fn, argnums=nnx.DiffState(0, trainable))(model)

        return step

    def sample(params, rng, obs):
        model = nnx.merge(graphdef, params)
        model.eval()
        return model.sample_actions(rng, obs)

    train_remat = _temp_bytes(loss_and_grad(), params, rng, obs, actions)
    with _without_remat():
        train_no_remat = _temp_bytes(loss_and_grad(), params, rng, obs, actions)
    one = jax.tree.map(lambda x: jax.ShapeDtypeStruct((1, *x.shape[1:]), x.dtype), obs)
    inference = {d: _temp_bytes(sample, p, rng, one) for d, p in serving.items()}
    return Activations(
        train_remat=train_remat,
        train_no_remat=train_no_remat,
        inference=inference,
        source="XLA memory_analysis of the loss/grad step and of sample_actions, compiled for this machine's CPU",
    )


def _temp_bytes(fn, *args) -> int:
    """XLA's temporary buffer bytes (everything but arguments and outputs) of ``fn`` compiled on abstract ``args``."""
    return int(jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes)


@dataclasses.dataclass(frozen=True)
class _Expert:
    tokens: int
    width: int
    mlp: int


def analytic_activations(
    model: _config.ModelConfig, batch: int, inference_dtypes: tuple[str, ...] = ("float32", "bfloat16")
) -> Activations:
    """Activation bytes counted from the architecture, for when compiling is too slow.

    Per sample and layer, the forward intermediates are: per expert, 4 residual-width arrays (normed input,
    post-attention residual, normed FFN input, FFN output), q and attention output (heads x head_dim), k and v,
    3 FFN-width arrays (gate, up, activation); and the attention logits (float32) and probabilities (heads x T x T).
    With remat only each layer's input is kept for the backward pass, plus one layer's intermediates and their
    cotangents while it is recomputed; without remat every layer's intermediates are kept. SigLIP layers are
    counted the same way per image. Inference keeps the prefix's KV cache and one prefix layer's intermediates.
    """
    act = np.dtype(model.dtype).itemsize
    pali, expert = _gemma.get_config(model.paligemma_variant), _gemma.get_config(model.action_expert_variant)
    vision = _siglip.decode_variant(model.vision_variant)
    patches = math.prod(s // vision["patch"] for s in model.image_resolution)
    images = len(_model.IMAGE_KEYS)
    prefix = _Expert(images * patches + model.max_token_len, pali.width, pali.mlp_dim)
    suffix = _Expert(model.action_horizon + (0 if model.pi05 else 1), expert.width, expert.mlp_dim)
    heads, kv = pali.num_heads * pali.head_dim, pali.num_kv_heads * pali.head_dim

    def gemma_layer(experts: list[_Expert]) -> int:
        tokens = sum(e.tokens for e in experts)
        per_expert = sum(e.tokens * (4 * e.width + 2 * heads + 2 * kv + 3 * e.mlp) * act for e in experts)
        return per_expert + pali.num_heads * tokens**2 * (4 + act)

    def gemma_inputs(experts: list[_Expert]) -> int:
        return sum(e.tokens * e.width * act for e in experts)

    v_width, v_mlp, v_heads = vision["width"], vision["mlp_dim"], vision["num_heads"]
    siglip_layer = images * (patches * (7 * v_width + 2 * v_mlp) * act + v_heads * patches**2 * 2 * act)
    siglip_inputs = images * patches * v_width * act
    both = [prefix, suffix]
    layer = max(gemma_layer(both), siglip_layer)
    remat = pali.depth * gemma_inputs(both) + vision["depth"] * siglip_inputs + 2 * layer
    no_remat = pali.depth * gemma_layer(both) + vision["depth"] * siglip_layer + layer
    kv_cache = pali.depth * prefix.tokens * 2 * kv * act
    inference = kv_cache + max(gemma_layer([prefix]), siglip_layer)
    return Activations(
        train_remat=batch * remat,
        train_no_remat=batch * no_remat,
        inference=dict.fromkeys(inference_dtypes, inference),
        source="counted from the architecture (layers, widths, tokens, batch)",
    )


def _gb(n: int) -> str:
    return f"{n / GB:9.3f} GB"


def _count(n: int) -> str:
    return f"{n / 1e6:10.1f} M"


def format_report(e: Estimate) -> str:
    """The printed report: one section per part, then the peaks per device."""
    sharded = "" if e.fsdp_devices == 1 else f" (per device: {e.fsdp_devices}-way FSDP)"
    per_device_batch = e.batch_size // e.fsdp_devices
    lines = [
        f"Config {e.config_name}: global batch {e.batch_size} over {e.fsdp_devices} device(s) "
        f"({per_device_batch} per device), shapes from jax.eval_shape (no weights loaded); GB = 1e9 bytes.",
        "",
        "Parameters",
        f"  total        {_count(e.params.count)}  {_gb(e.params.bytes)}  per device {_gb(e.params.per_device)}",
    ]
    lines += [f"    {name:<10} {_count(c)}  {_gb(b)}" for name, (c, b) in e.params.by_dtype.items()]
    frozen = e.params.count - e.trainable.count
    kind = "LoRA: base weights of the adapted experts frozen" if frozen else "full fine-tune"
    lines += [
        "Trainable parameters",
        f"  trainable    {_count(e.trainable.count)}  {_gb(e.trainable.bytes)}  ({kind}; frozen {frozen / 1e6:.1f} M)",
        "Optimizer state (AdamW: two float32 moments per trainable parameter, plus counters)",
        f"  opt state    {_count(e.opt_state.count)}  {_gb(e.opt_state.bytes)}  per device {_gb(e.opt_state.per_device)}",
        "EMA of the parameters",
        "  none (ema_decay unset)" if e.ema is None
        else f"  ema          {_count(e.ema.count)}  {_gb(e.ema.bytes)}  per device {_gb(e.ema.per_device)}",
        "Gradients (trainable parameters)",
        f"  grads        {_count(e.grads.count)}  {_gb(e.grads.bytes)}  per device {_gb(e.grads.per_device)}",
        f"Activations per device (batch {per_device_batch}; {e.activations.source})",
        f"  with remat (as trained)  {_gb(e.activations.train_remat)}",
        f"  without remat            {_gb(e.activations.train_no_remat)}",
        f"  input batch              {_gb(e.batch_bytes)}",
    ]
    if e.gathered_layer:
        lines.append(f"  FSDP-gathered layer      {_gb(e.gathered_layer)}")
    lines += [
        f"Peak per device{sharded}",
        f"  training, remat (as trained)   {_gb(e.train_peak(remat=True))}",
        f"  training, without remat        {_gb(e.train_peak(remat=False))}",
    ]
    for dtype in e.inference_params:
        lines.append(
            f"  inference, {dtype} params {' ' * (9 - len(dtype))}{_gb(e.inference_peak(dtype))}  "
            f"(params {_gb(e.inference_params[dtype]).strip()} + sampling {_gb(e.activations.inference[dtype]).strip()},"
            " one observation, one device)"
        )
    return "\n".join(lines)
