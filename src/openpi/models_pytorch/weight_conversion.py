"""Weight conversion between JAX pi0 / pi0.5 params and the PyTorch twin's state dict, in both directions.

JAX params are openpi's tree (``PaliGemma/llm/...``, ``PaliGemma/img/...``, ``action_in_proj/...``), nested or
flattened with ``/``; scanned layers carry a leading depth axis. PyTorch names are those of openpi's converted
checkpoints (``paligemma_with_expert.paligemma.model.language_model.layers.{i}.self_attn.q_proj.weight`` ...).
The model kind (pi0 vs pi0.5) and every variant are read from the tree itself, never from a path. Every leaf is
a pure relayout (transpose / reshape / split per layer), so JAX → PyTorch → JAX is bit-exact.
"""

from collections.abc import Callable
from collections.abc import Mapping
import dataclasses
import json
import math
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import orbax.checkpoint as ocp
import safetensors.torch
import torch

from openpi import transforms as _transforms
from openpi.models import gemma as _gemma
from openpi.models import model as _model
from openpi.models import pi0_config as _pi0_config
from openpi.models import siglip as _siglip
from openpi.models_pytorch import pi0_pytorch
from openpi.shared import checkpoint_files as _files

PG = "paligemma_with_expert.paligemma"
VISION = f"{PG}.model.vision_tower.vision_model"
LLM = f"{PG}.model.language_model"
EXPERT = "paligemma_with_expert.gemma_expert"
# Keys that exist in openpi PyTorch checkpoints but have no JAX counterpart: the LM head tied to the token
# embedding, and the action expert's unused LM head.
TIED_LM_HEAD = f"{PG}.lm_head.weight"
EXPERT_LM_HEAD = f"{EXPERT}.lm_head.weight"
EMBED_TOKENS = f"{LLM}.embed_tokens.weight"


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What a checkpoint is, read from its tensors: enough to build the matching ``Pi0Config``."""

    pi05: bool
    paligemma_variant: str
    action_expert_variant: str
    vision_variant: str
    image_resolution: tuple[int, int]
    action_dim: int
    vocab_size: int

    def config_kwargs(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---- tree helpers ------------------------------------------------------------------------------------------------


def flatten_params(params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Nested or ``/``-flat JAX params → ``{"PaliGemma/llm/...": array}``.

    Drops a top-level ``params`` level and the trailing ``value`` key of trees written by training. Leaves are
    kept as they are (arrays, or shape-only structs for ``detect_jax``).
    """
    flat = _transforms.flatten_dict(params)
    if flat and all(k.startswith("params/") for k in flat):
        flat = {k.removeprefix("params/"): v for k, v in flat.items()}
    if flat and all(k.endswith("/value") for k in flat):
        flat = {k.removesuffix("/value"): v for k, v in flat.items()}
    return flat


# ---- variant detection -------------------------------------------------------------------------------------------


def _match_gemma(what: str, width: int, depth: int, mlp_dim: int, lora_rank: int | None) -> str:
    for name in _gemma.VARIANTS:
        cfg = _gemma.get_config(name)
        rank = cfg.attn_lora.rank if cfg.attn_lora is not None else None
        if (cfg.width, cfg.depth, cfg.mlp_dim, rank) == (width, depth, mlp_dim, lora_rank):
            return name
    raise ValueError(
        f"The {what} (width {width}, depth {depth}, mlp_dim {mlp_dim}, LoRA rank {lora_rank}) matches no Gemma "
        f"variant of {list(_gemma.VARIANTS)}."
    )


def _match_vision(width: int, depth: int, mlp_dim: int, patch: int) -> str:
    for name in _siglip._SIZES:
        variant = f"{name}/{patch}"
        spec = _siglip.decode_variant(variant)
        if (spec["width"], spec["depth"], spec["mlp_dim"]) == (width, depth, mlp_dim):
            return variant
    raise ValueError(f"The vision tower (width {width}, depth {depth}, mlp_dim {mlp_dim}) matches no SigLIP variant.")


def _resolution(num_patches: int, patch: int) -> tuple[int, int]:
    side = math.isqrt(num_patches)
    if side * side != num_patches:
        raise ValueError(f"Cannot infer a square image resolution from {num_patches} patches.")
    return side * patch, side * patch


def _lora_rank(flat: Mapping[str, Any], key: str) -> int | None:
    return flat[key].shape[-1] if key in flat else None


def detect_jax(flat: Mapping[str, np.ndarray]) -> ModelSpec:
    """Reads pi0 vs pi0.5 (``time_mlp_in`` vs ``state_proj``) and every variant from flat JAX params."""
    if "time_mlp_in/kernel" in flat:
        pi05 = True
    elif "state_proj/kernel" in flat:
        pi05 = False
    else:
        raise ValueError("Not a pi0 / pi0.5 tree: it has neither 'time_mlp_in' (pi0.5) nor 'state_proj' (pi0).")
    llm = "PaliGemma/llm/layers"
    experts = []
    for suffix in ("", "_1"):
        q = flat[f"{llm}/attn/q_einsum{suffix}/w"]
        experts.append(
            _match_gemma(
                "PaliGemma LLM" if not suffix else "action expert",
                width=q.shape[2],
                depth=q.shape[0],
                mlp_dim=flat[f"{llm}/mlp{suffix}/linear"].shape[1],
                lora_rank=_lora_rank(flat, f"{llm}/attn/q_einsum{suffix}/lora_a"),
            )
        )
    img = "PaliGemma/img"
    patch_kernel = flat[f"{img}/embedding/kernel"]
    patch = patch_kernel.shape[0]
    return ModelSpec(
        pi05=pi05,
        paligemma_variant=experts[0],
        action_expert_variant=experts[1],
        vision_variant=_match_vision(
            width=patch_kernel.shape[3],
            depth=flat[f"{img}/Transformer/encoderblock/LayerNorm_0/scale"].shape[0],
            mlp_dim=flat[f"{img}/Transformer/encoderblock/MlpBlock_0/Dense_0/kernel"].shape[2],
            patch=patch,
        ),
        image_resolution=_resolution(flat[f"{img}/pos_embedding"].shape[1], patch),
        action_dim=flat["action_in_proj/kernel"].shape[0],
        vocab_size=flat["PaliGemma/llm/embedder/input_embedding"].shape[0],
    )


def _num_layers(state_dict: Mapping[str, Any], prefix: str) -> int:
    """Number of ``{prefix}{i}.`` layers in a state dict."""
    return len({k[len(prefix) :].split(".", 1)[0] for k in state_dict if k.startswith(prefix)})


def detect_torch(state_dict: Mapping[str, Any]) -> ModelSpec:
    """Reads pi0 vs pi0.5 (``time_mlp_in`` vs ``state_proj``) and every variant from a PyTorch state dict."""
    if "time_mlp_in.weight" in state_dict:
        pi05 = True
    elif "state_proj.weight" in state_dict:
        pi05 = False
    else:
        raise ValueError("Not a pi0 / pi0.5 state dict: it has neither 'time_mlp_in' (pi0.5) nor 'state_proj' (pi0).")
    experts = []
    for what, prefix in (("PaliGemma LLM", LLM), ("action expert", f"{EXPERT}.model")):
        gate = state_dict[f"{prefix}.layers.0.mlp.gate_proj.weight"]
        lora = f"{prefix}.layers.0.self_attn.q_proj.lora_a"
        experts.append(
            _match_gemma(
                what,
                width=gate.shape[1],
                depth=_num_layers(state_dict, f"{prefix}.layers."),
                mlp_dim=gate.shape[0],
                lora_rank=_lora_rank(state_dict, lora),
            )
        )
    patch_weight = state_dict[f"{VISION}.embeddings.patch_embedding.weight"]
    patch = patch_weight.shape[-1]
    return ModelSpec(
        pi05=pi05,
        paligemma_variant=experts[0],
        action_expert_variant=experts[1],
        vision_variant=_match_vision(
            width=patch_weight.shape[0],
            depth=_num_layers(state_dict, f"{VISION}.encoder.layers."),
            mlp_dim=state_dict[f"{VISION}.encoder.layers.0.mlp.fc1.weight"].shape[0],
            patch=patch,
        ),
        image_resolution=_resolution(state_dict[f"{VISION}.embeddings.position_embedding.weight"].shape[0], patch),
        action_dim=state_dict["action_in_proj.weight"].shape[1],
        vocab_size=state_dict[EMBED_TOKENS].shape[0],
    )


# ---- the leaf-by-leaf mapping ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Rule:
    """One JAX leaf ↔ one or more PyTorch keys. ``layers``: scanned depth (None if not scanned); ``torch``: the
    key templates (``{i}`` = layer); with several, template ``j`` takes index ``j`` of the leaf's next axis (k/v of
    ``kv_einsum``, gate/up of ``gating_einsum``). ``to_torch`` / ``to_jax`` relayout one such piece."""

    jax: str
    torch: tuple[str, ...]
    to_torch: Callable[[np.ndarray], np.ndarray]
    to_jax: Callable[[np.ndarray], np.ndarray]
    layers: int | None = None


def _copy(x):
    return x


def _t(x):
    return x.T


def _heads_out(heads: int, head_dim: int):
    """[N, D, H] einsum weight ↔ torch [N·H, D]."""
    return (
        lambda x: x.transpose(0, 2, 1).reshape(heads * head_dim, -1),
        lambda y: y.reshape(heads, head_dim, -1).transpose(0, 2, 1),
    )


def _heads_in(heads: int, head_dim: int):
    """[N, H, D] einsum weight ↔ torch [D, N·H]."""
    return lambda x: x.reshape(heads * head_dim, -1).T, lambda y: y.T.reshape(heads, head_dim, -1)


def _dense_heads(heads: int, head_dim: int):
    """Flax MHA [D, N, H] kernel ↔ torch [N·H, D]."""
    return lambda x: x.reshape(x.shape[0], -1).T, lambda y: y.T.reshape(-1, heads, head_dim)


def _rules(spec: ModelSpec) -> list[_Rule]:
    rules: list[_Rule] = []

    def add(jax_key, torch_keys, fns=(_copy, _copy), layers=None):
        keys = (torch_keys,) if isinstance(torch_keys, str) else tuple(torch_keys)
        rules.append(_Rule(jax_key, keys, fns[0], fns[1], layers))

    # SigLIP.
    vision = _siglip.decode_variant(spec.vision_variant)
    vn, vh, vd = vision["num_heads"], vision["width"] // vision["num_heads"], vision["depth"]
    img = "PaliGemma/img"
    block = f"{img}/Transformer/encoderblock"
    layer = f"{VISION}.encoder.layers.{{i}}"
    add(
        f"{img}/embedding/kernel",
        f"{VISION}.embeddings.patch_embedding.weight",
        (lambda x: x.transpose(3, 2, 0, 1), lambda y: y.transpose(2, 3, 1, 0)),
    )
    add(f"{img}/embedding/bias", f"{VISION}.embeddings.patch_embedding.bias")
    add(f"{img}/pos_embedding", f"{VISION}.embeddings.position_embedding.weight", (lambda x: x[0], lambda y: y[None]))
    for ln, name in (("LayerNorm_0", "layer_norm1"), ("LayerNorm_1", "layer_norm2")):
        add(f"{block}/{ln}/scale", f"{layer}.{name}.weight", layers=vd)
        add(f"{block}/{ln}/bias", f"{layer}.{name}.bias", layers=vd)
    for dense, name in (("Dense_0", "fc1"), ("Dense_1", "fc2")):
        add(f"{block}/MlpBlock_0/{dense}/kernel", f"{layer}.mlp.{name}.weight", (_t, _t), layers=vd)
        add(f"{block}/MlpBlock_0/{dense}/bias", f"{layer}.mlp.{name}.bias", layers=vd)
    mha = f"{block}/MultiHeadDotProductAttention_0"
    for jax_name, name in (("query", "q_proj"), ("key", "k_proj"), ("value", "v_proj")):
        add(f"{mha}/{jax_name}/kernel", f"{layer}.self_attn.{name}.weight", _dense_heads(vn, vh), layers=vd)
        add(
            f"{mha}/{jax_name}/bias",
            f"{layer}.self_attn.{name}.bias",
            (lambda x: x.reshape(-1), lambda y: y.reshape(vn, vh)),
            layers=vd,
        )
    add(f"{mha}/out/kernel", f"{layer}.self_attn.out_proj.weight", _heads_in(vn, vh), layers=vd)
    add(f"{mha}/out/bias", f"{layer}.self_attn.out_proj.bias", layers=vd)
    add(f"{img}/Transformer/encoder_norm/scale", f"{VISION}.post_layernorm.weight")
    add(f"{img}/Transformer/encoder_norm/bias", f"{VISION}.post_layernorm.bias")
    add(f"{img}/head/kernel", f"{PG}.model.multi_modal_projector.linear.weight", (_t, _t))
    add(f"{img}/head/bias", f"{PG}.model.multi_modal_projector.linear.bias")

    # Gemma: the PaliGemma LLM (suffix "") and the action expert (suffix "_1").
    llm = "PaliGemma/llm"
    add(f"{llm}/embedder/input_embedding", EMBED_TOKENS)
    for suffix, variant, prefix in (
        ("", spec.paligemma_variant, LLM),
        ("_1", spec.action_expert_variant, f"{EXPERT}.model"),
    ):
        cfg = _gemma.get_config(variant)
        n, h, depth = cfg.num_heads, cfg.head_dim, cfg.depth
        kv, at = f"{llm}/layers/attn", f"{prefix}.layers.{{i}}.self_attn"
        mlp, mt = f"{llm}/layers/mlp{suffix}", f"{prefix}.layers.{{i}}.mlp"
        add(f"{kv}/q_einsum{suffix}/w", f"{at}.q_proj.weight", _heads_out(n, h), layers=depth)
        add(
            f"{kv}/kv_einsum{suffix}/w",
            (f"{at}.k_proj.weight", f"{at}.v_proj.weight"),
            _heads_out(cfg.num_kv_heads, h),
            layers=depth,
        )
        add(f"{kv}/attn_vec_einsum{suffix}/w", f"{at}.o_proj.weight", _heads_in(n, h), layers=depth)
        add(f"{mlp}/gating_einsum", (f"{mt}.gate_proj.weight", f"{mt}.up_proj.weight"), (_t, _t), layers=depth)
        add(f"{mlp}/linear", f"{mt}.down_proj.weight", (_t, _t), layers=depth)
        if cfg.attn_lora is not None:
            for factor in ("lora_a", "lora_b"):
                add(f"{kv}/q_einsum{suffix}/{factor}", f"{at}.q_proj.{factor}", layers=depth)
                add(
                    f"{kv}/kv_einsum{suffix}/{factor}", (f"{at}.k_proj.{factor}", f"{at}.v_proj.{factor}"), layers=depth
                )
                add(f"{kv}/attn_vec_einsum{suffix}/{factor}", f"{at}.o_proj.{factor}", layers=depth)
        if cfg.ffn_lora is not None:
            for factor in ("lora_a", "lora_b"):
                add(
                    f"{mlp}/gating_einsum_{factor}",
                    (f"{mt}.gate_proj.{factor}", f"{mt}.up_proj.{factor}"),
                    layers=depth,
                )
                add(f"{mlp}/linear_{factor}", f"{mt}.down_proj.{factor}", layers=depth)
        norms = (
            (f"{llm}/layers/pre_attention_norm{suffix}", f"{prefix}.layers.{{i}}.input_layernorm", depth),
            (f"{llm}/layers/pre_ffw_norm{suffix}", f"{prefix}.layers.{{i}}.post_attention_layernorm", depth),
            (f"{llm}/final_norm{suffix}", f"{prefix}.norm", None),
        )
        for jax_norm, torch_norm, layers in norms:
            if suffix and spec.pi05:
                add(f"{jax_norm}/Dense_0/kernel", f"{torch_norm}.dense.weight", (_t, _t), layers=layers)
                add(f"{jax_norm}/Dense_0/bias", f"{torch_norm}.dense.bias", layers=layers)
            else:
                add(f"{jax_norm}/scale", f"{torch_norm}.weight", layers=layers)

    # Action, state and time projections.
    heads = ["action_in_proj", "action_out_proj"]
    heads += (
        ["time_mlp_in", "time_mlp_out"] if spec.pi05 else ["state_proj", "action_time_mlp_in", "action_time_mlp_out"]
    )
    for name in heads:
        add(f"{name}/kernel", f"{name}.weight", (_t, _t))
        add(f"{name}/bias", f"{name}.bias")
    return rules


def _contiguous(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x)


def _relayout_to_torch(flat: dict[str, Any], rules: list[_Rule], finish: Callable) -> dict[str, Any]:
    """Consumes ``flat`` leaf by leaf (so a full-size conversion never holds two float32 copies of the model);
    ``finish(key, array)`` makes each output array."""
    out = {}
    for rule in rules:
        value = flat.pop(rule.jax)
        for layer in range(rule.layers or 1):
            per_layer = value[layer] if rule.layers is not None else value
            for part, template in enumerate(rule.torch):
                piece = per_layer[part] if len(rule.torch) > 1 else per_layer
                key = template.format(i=layer)
                out[key] = finish(key, rule.to_torch(piece))
    return out


def _relayout_to_jax(sd: Mapping[str, Any], rules: list[_Rule], stack: Callable, finish: Callable) -> dict[str, Any]:
    flat = {}
    for rule in rules:
        per_layer = []
        for layer in range(rule.layers or 1):
            parts = [rule.to_jax(sd[t.format(i=layer)]) for t in rule.torch]
            per_layer.append(stack(parts) if len(parts) > 1 else parts[0])
        flat[rule.jax] = finish(stack(per_layer) if rule.layers is not None else per_layer[0])
    return flat


def _check_jax_leaves(flat: Mapping[str, Any], spec: ModelSpec) -> list[_Rule]:
    rules = _rules(spec)
    unknown = sorted(set(flat) - {r.jax for r in rules})
    missing = sorted({r.jax for r in rules} - set(flat))
    if unknown or missing:
        raise ValueError(f"JAX params do not match the detected {spec}: unknown leaves {unknown}, missing {missing}.")
    return rules


def _check_torch_keys(sd: dict[str, Any]) -> tuple[ModelSpec, list[_Rule]]:
    if EMBED_TOKENS not in sd and TIED_LM_HEAD in sd:
        sd[EMBED_TOKENS] = sd[TIED_LM_HEAD]
    spec = detect_torch(sd)
    rules = _rules(spec)
    expected = {t.format(i=layer) for r in rules for layer in range(r.layers or 1) for t in r.torch}
    unknown = sorted(set(sd) - expected - {TIED_LM_HEAD, EXPERT_LM_HEAD})
    missing = sorted(expected - set(sd))
    if unknown or missing:
        raise ValueError(f"State dict does not match the detected {spec}: unknown keys {unknown}, missing {missing}.")
    return spec, rules


def jax_to_torch(params: Mapping[str, Any], *, dtype: str | None = None) -> tuple[dict[str, np.ndarray], ModelSpec]:
    """JAX params (nested or flat) → PyTorch state dict as numpy arrays and the detected spec.

    Dtypes are kept, or with ``dtype`` (``"bfloat16"`` / ``"float32"``) each weight gets the dtype a ``PI0Pytorch``
    of that dtype holds it in (bf16 models keep norms, patch / position embeddings and action projections in
    float32). The tied PaliGemma LM head and the action expert's unused LM head are not included (see
    ``save_safetensors``). Raises ``ValueError`` naming any unknown or missing leaf.
    """
    return _flat_jax_to_torch(flatten_params(params), dtype)


def _flat_jax_to_torch(flat: dict[str, Any], dtype: str | None) -> tuple[dict[str, np.ndarray], ModelSpec]:
    """``jax_to_torch`` on flat params; removes every leaf from ``flat`` once it is converted."""
    spec = detect_jax(flat)
    rules = _check_jax_leaves(flat, spec)
    targets = {}
    if dtype is not None:
        with torch.device("meta"):
            model = pi0_pytorch.PI0Pytorch(pi0_config(spec, dtype=dtype))
        targets = {k: _NUMPY_DTYPES[v.dtype] for k, v in model.state_dict().items()}

    def finish(key: str, array: Any) -> np.ndarray:
        array = np.asarray(array)
        return np.ascontiguousarray(array.astype(targets[key], copy=False) if targets else array)

    return _relayout_to_torch(flat, rules, finish), spec


def torch_to_jax(state_dict: Mapping[str, Any]) -> tuple[dict[str, Any], ModelSpec]:
    """PyTorch state dict (tensors or arrays) → nested JAX params (numpy, dtypes kept) and the detected spec.

    Accepts the token embedding under either tied name (openpi's safetensors keep only one of them).
    """
    sd = {k: _to_numpy(v) for k, v in state_dict.items()}
    spec, rules = _check_torch_keys(sd)
    return _transforms.unflatten_dict(_relayout_to_jax(sd, rules, np.stack, np.ascontiguousarray)), spec


def jax_to_torch_shapes(params: Mapping[str, Any]) -> tuple[dict[str, jax.ShapeDtypeStruct], ModelSpec]:
    """``jax_to_torch`` on shapes only (e.g. ``jax.ShapeDtypeStruct`` leaves): checks a full-size tree for free."""
    flat = flatten_params(params)
    spec = detect_jax(flat)
    rules = _check_jax_leaves(flat, spec)
    return jax.eval_shape(lambda f: _relayout_to_torch(dict(f), rules, lambda _, x: x), flat), spec


def torch_to_jax_shapes(shapes: Mapping[str, Any]) -> tuple[dict[str, Any], ModelSpec]:
    """``torch_to_jax`` on shapes only (leaves with ``.shape`` and ``.dtype``)."""
    sd = {k: jax.ShapeDtypeStruct(tuple(v.shape), _jax_dtype(v.dtype)) for k, v in shapes.items()}
    spec, rules = _check_torch_keys(sd)
    flat = jax.eval_shape(lambda d: _relayout_to_jax(d, rules, jnp.stack, lambda x: x), sd)
    return _transforms.unflatten_dict(flat), spec


def _jax_dtype(dtype: Any) -> Any:
    return (
        ml_dtypes.bfloat16
        if dtype == torch.bfloat16
        else (str(dtype).removeprefix("torch.") if isinstance(dtype, torch.dtype) else dtype)
    )


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dtype == torch.bfloat16:
            return value.view(torch.uint16).numpy().view(ml_dtypes.bfloat16)
        return value.numpy()
    return np.asarray(value)


def to_torch_tensor(array: np.ndarray) -> torch.Tensor:
    """numpy (incl. ml_dtypes bfloat16) → torch tensor without changing any bit."""
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:  # torch tensors must own writable memory
        array = array.copy()
    if array.dtype.name == "bfloat16":
        return torch.from_numpy(array.view(np.uint16)).view(torch.bfloat16)
    return torch.from_numpy(array)


# ---- files -------------------------------------------------------------------------------------------------------

_NUMPY_DTYPES = {torch.float32: np.dtype(np.float32), torch.bfloat16: np.dtype(ml_dtypes.bfloat16)}


def save_safetensors(state_dict: Mapping[str, np.ndarray], path: str | pathlib.Path) -> None:
    """Writes openpi's ``model.safetensors``: the tied LM head is stored once (under the embedding's name) and the
    action expert's unused LM head is written as zeros so loaders that expect every key are satisfied."""
    tensors = {k: to_torch_tensor(v) for k, v in state_dict.items() if k != TIED_LM_HEAD}
    embed = tensors[EMBED_TOKENS]
    width = tensors[f"{EXPERT}.model.layers.0.mlp.gate_proj.weight"].shape[1]
    tensors.setdefault(EXPERT_LM_HEAD, torch.zeros(embed.shape[0], width, dtype=embed.dtype))
    safetensors.torch.save_file(tensors, str(path), metadata={"format": "pt"})


def load_safetensors(path: str | pathlib.Path) -> dict[str, np.ndarray]:
    """``model.safetensors`` → numpy state dict (bfloat16 as ``ml_dtypes.bfloat16``)."""
    return {k: _to_numpy(v) for k, v in safetensors.torch.load_file(str(path)).items()}


def load_jax_params(path: str | pathlib.Path) -> dict[str, Any]:
    """An orbax params directory (openpi's ``.../params``) or an ``.npz`` of ``/``-joined leaf names."""
    path = pathlib.Path(path)
    if path.suffix == ".npz":
        if not path.is_file():
            raise FileNotFoundError(f"No .npz params file at {path}.")
        try:
            with np.load(path) as data:
                return _transforms.unflatten_dict({k: data[k] for k in data.files})
        except (ValueError, OSError, EOFError) as error:  # not an npz of arrays
            raise ValueError(f"{path} is not an .npz of named weight arrays: {error}") from None
    return _model.restore_params(path)


def save_jax_params(params: Mapping[str, Any], path: str | pathlib.Path) -> None:
    """Writes params as ``.npz`` (flat ``/`` names) or, for any other path, as an orbax ``{"params": ...}`` dir."""
    path = pathlib.Path(path)
    if path.suffix == ".npz":
        np.savez(path, **flatten_params(params))
        return
    with ocp.PyTreeCheckpointer() as checkpointer:
        checkpointer.save(path.resolve(), {"params": params})


def convert_jax_to_pytorch(
    params_path: str | pathlib.Path, output_dir: str | pathlib.Path, *, dtype: str = "bfloat16", **config: Any
) -> ModelSpec:
    """JAX params (orbax dir or .npz) → ``output_dir/model.safetensors`` + ``config.json``; returns the spec.

    ``dtype`` ``"bfloat16"`` stores each weight in the dtype the bfloat16 ``PI0Pytorch`` keeps it in (float32
    for norms, patch / position embeddings and action projections), ``"float32"`` stores everything in float32.
    ``config`` (e.g. ``action_horizon``) is recorded in ``config.json`` next to what the weights reveal.
    """
    flat = flatten_params(load_jax_params(params_path))
    state_dict, spec = _flat_jax_to_torch(flat, dtype)
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    save_safetensors(state_dict, output_dir / _files.MODEL_FILE)
    (output_dir / _files.CONVERTED_CONFIG_FILE).write_text(json.dumps({**spec.config_kwargs(), **config, "dtype": dtype}, indent=2))
    return spec


def convert_pytorch_to_jax(input_dir: str | pathlib.Path, output_path: str | pathlib.Path) -> ModelSpec:
    """``input_dir/model.safetensors`` (or the file itself) → JAX params at ``output_path`` (orbax dir or .npz)."""
    path = pathlib.Path(input_dir)
    params, spec = torch_to_jax(load_safetensors(path / _files.MODEL_FILE if path.is_dir() else path))
    save_jax_params(params, output_path)
    return spec


def load_into(model: torch.nn.Module, state_dict: Mapping[str, Any]) -> None:
    """Loads a converted state dict (numpy or torch) into a ``PI0Pytorch``, casting to the model's dtypes.

    Only the tied and the expert's LM heads may be absent; any other missing or unknown key raises ``ValueError``.
    """
    tensors = {k: to_torch_tensor(v) if isinstance(v, np.ndarray) else v for k, v in state_dict.items()}
    if EMBED_TOKENS not in tensors and TIED_LM_HEAD in tensors:
        tensors[EMBED_TOKENS] = tensors.pop(TIED_LM_HEAD)
    own = model.state_dict()
    wrong = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in tensors.items() if k in own and v.shape != own[k].shape]
    if wrong:
        key, got, want = wrong[0]
        raise ValueError(f"{len(wrong)} weight(s) have another shape than the model's, first {key}: {got} in the "
                         f"weights, {want} in the model (another model size, image resolution or action_dim?).")
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = sorted(set(missing) - {TIED_LM_HEAD, EXPERT_LM_HEAD})
    if missing or unexpected:
        raise ValueError(f"State dict does not fit the model: missing {missing}, unexpected {sorted(unexpected)}.")


def load_pytorch_model(directory: str | pathlib.Path, **overrides: Any) -> pi0_pytorch.PI0Pytorch:
    """A ``PI0Pytorch`` from a converted directory (``config.json`` + ``model.safetensors``)."""
    directory = pathlib.Path(directory)
    config = json.loads((directory / _files.CONVERTED_CONFIG_FILE).read_text())
    config["image_resolution"] = tuple(config["image_resolution"])
    model = pi0_pytorch.PI0Pytorch(_pi0_config.Pi0Config(**{**config, **overrides}))
    load_into(model, safetensors.torch.load_file(str(directory / _files.MODEL_FILE)))
    return model


def pi0_config(spec: ModelSpec, **overrides: Any):
    """The ``Pi0Config`` a converted checkpoint belongs to (``overrides``: e.g. ``action_horizon``, ``dtype``)."""
    return _pi0_config.Pi0Config(**{**spec.config_kwargs(), **overrides})


def key_mapping(spec: ModelSpec) -> list[tuple[str, str]]:
    """Every (JAX leaf, PyTorch key template) pair of a model; ``{i}`` stands for the layer index."""
    return [(rule.jax, template) for rule in _rules(spec) for template in rule.torch]
