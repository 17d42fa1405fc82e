"""Gemma with several experts that share one attention (the PaliGemma + action-expert stack of pi0 / pi0.5).

Each expert has its own weights; the tokens of all experts are concatenated along the sequence for attention,
so the action expert attends to the PaliGemma prefix. Parameters of expert ``i > 0`` carry the suffix ``_i``
(``q_einsum_1``, ``mlp_1``, ...), the layers are scanned (every layer parameter has a leading depth axis) and the
parameter tree matches openpi checkpoints. The second expert can use adaRMS (pi0.5): a zero-initialised
``Dense(cond → 3·width)`` yields scale, shift and gate for every norm.
"""

from collections.abc import Sequence
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from openpi.models import lora

PALIGEMMA_VOCAB_SIZE = 257_152
# Gemma's masked-logit value (the most negative bfloat16-representable value used upstream).
_MASKED_LOGIT = -2.3819763e38

# A KV cache: (keys, values), each [depth, B, S, num_kv_heads, head_dim].
KVCache = tuple[jax.Array, jax.Array]


@dataclasses.dataclass(frozen=True)
class Config:
    """Size of one Gemma expert, with optional LoRA adapters on attention and FFN."""

    width: int
    depth: int
    mlp_dim: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    attn_lora: lora.LoRAConfig | None = None
    ffn_lora: lora.LoRAConfig | None = None


_SIZES = {
    "dummy": (64, 4, 128, 8, 1, 16),
    "gemma_300m": (1024, 18, 4096, 8, 1, 256),
    "gemma_2b": (2048, 18, 16_384, 8, 1, 256),
}
_LORA = {"gemma_2b_lora": ("gemma_2b", 16, 16.0), "gemma_300m_lora": ("gemma_300m", 32, 32.0)}
VARIANTS: tuple[str, ...] = (*_SIZES, *_LORA)


def get_config(variant: str) -> Config:
    """The config of a named variant (openpi's names); LoRA variants adapt attention and FFN."""
    if variant in _SIZES:
        return Config(*_SIZES[variant])
    if variant in _LORA:
        base, rank, alpha = _LORA[variant]
        adapter = lora.LoRAConfig(rank=rank, alpha=alpha)
        return Config(*_SIZES[base], attn_lora=adapter, ffn_lora=adapter)
    raise ValueError(f"Unknown Gemma variant {variant!r}; choose one of {list(VARIANTS)}.")


def _name(base: str, expert: int) -> str:
    return base if expert == 0 else f"{base}_{expert}"


class RMSNorm(nn.Module):
    """RMSNorm (eps 1e-6) with ``x̂·(1 + scale)``; with a condition, adaRMS returning ``(x̂·(1+scale)+shift, gate)``."""

    @nn.compact
    def __call__(self, x: jax.Array, cond: jax.Array | None) -> tuple[jax.Array, jax.Array | None]:
        dtype = x.dtype
        x32 = x.astype(jnp.float32)
        normed = x32 * jax.lax.rsqrt(jnp.mean(jnp.square(x32), axis=-1, keepdims=True) + 1e-6)
        if cond is None:
            scale = self.param("scale", nn.initializers.zeros, (x.shape[-1],))
            return (normed * (1 + scale)).astype(dtype), None
        modulation = nn.Dense(3 * x.shape[-1], kernel_init=nn.initializers.zeros)(cond.astype(jnp.float32))
        scale, shift, gate = jnp.split(modulation[:, None, :], 3, axis=-1)
        return (normed * (1 + scale) + shift).astype(dtype), gate.astype(dtype)


class Embedder(nn.Module):
    """Token embedding, scaled by ``sqrt(width)`` as in Gemma."""

    vocab_size: int
    width: int

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        table = self.param("input_embedding", nn.initializers.normal(stddev=1.0), (self.vocab_size, self.width))
        return table[tokens] * jnp.sqrt(float(self.width)).astype(table.dtype)


def apply_rope(x: jax.Array, positions: jax.Array, max_wavelength: float = 10_000.0) -> jax.Array:
    """Rotary embedding over the last axis of ``x`` [B, T, N, H] at integer ``positions`` [B, T] (computed in f32)."""
    half = x.shape[-1] // 2
    timescale = max_wavelength ** (2.0 * jnp.arange(half, dtype=jnp.float32) / x.shape[-1])
    radians = positions[..., None].astype(jnp.float32) / timescale  # [B, T, half]
    sin, cos = jnp.sin(radians)[..., None, :], jnp.cos(radians)[..., None, :]
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)


class Attention(nn.Module):
    """Multi-query attention shared by all experts; returns per-expert outputs and the layer's full (k, v)."""

    configs: Sequence[Config]

    @nn.compact
    def __call__(self, xs, positions, attn_mask, kv_cache):
        heads = {(c.num_heads, c.num_kv_heads, c.head_dim) for c in self.configs}
        if len(heads) != 1:
            raise ValueError(f"All experts must share num_heads, num_kv_heads and head_dim, got {sorted(heads)}.")
        num_heads, num_kv_heads, head_dim = heads.pop()
        qs, ks, vs = [], [], []
        for i, (x, cfg) in enumerate(zip(xs, self.configs)):
            if x is None:
                continue
            adapter = cfg.attn_lora
            q = lora.Einsum(
                shape=(num_heads, cfg.width, head_dim),
                init_fn=nn.initializers.lecun_normal(in_axis=-2, out_axis=-1, batch_axis=(0,)),
                lora_config=adapter,
                name=_name("q_einsum", i),
            )("BTD,NDH->BTNH", x)
            k, v = lora.Einsum(
                shape=(2, num_kv_heads, cfg.width, head_dim),
                init_fn=nn.initializers.lecun_normal(in_axis=-2, out_axis=-1, batch_axis=(0, 1)),
                lora_config=adapter,
                name=_name("kv_einsum", i),
            )("BSD,CKDH->CBSKH", x)
            qs.append(q)
            ks.append(k)
            vs.append(v)
        q = apply_rope(jnp.concatenate(qs, axis=1), positions) * head_dim**-0.5
        k = apply_rope(jnp.concatenate(ks, axis=1), positions)
        v = jnp.concatenate(vs, axis=1)
        if kv_cache is not None:
            k = jnp.concatenate([kv_cache[0].astype(k.dtype), k], axis=1)
            v = jnp.concatenate([kv_cache[1].astype(v.dtype), v], axis=1)

        batch, q_len = q.shape[:2]
        if attn_mask.shape != (batch, q_len, k.shape[1]):
            raise ValueError(f"Attention mask has shape {attn_mask.shape}, expected {(batch, q_len, k.shape[1])}.")
        q = q.reshape(batch, q_len, num_kv_heads, num_heads // num_kv_heads, head_dim)
        logits = jnp.einsum("BTKGH,BSKH->BKGTS", q, k, preferred_element_type=jnp.float32)
        logits = jnp.where(attn_mask[:, None, None], logits, _MASKED_LOGIT)
        probs = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
        encoded = jnp.einsum("BKGTS,BSKH->BTKGH", probs, v).reshape(batch, q_len, num_heads, head_dim)

        outs, start = [], 0
        for i, (x, cfg) in enumerate(zip(xs, self.configs)):
            if x is None:
                outs.append(None)
                continue
            end = start + x.shape[1]
            outs.append(
                lora.Einsum(
                    shape=(num_heads, head_dim, cfg.width),
                    init_fn=nn.initializers.lecun_normal(in_axis=(-3, -2), out_axis=-1),
                    lora_config=cfg.attn_lora,
                    name=_name("attn_vec_einsum", i),
                )("BTNH,NHD->BTD", encoded[:, start:end])
            )
            start = end
        return outs, (k, v)


def _gated_residual(x, y, gate):
    return x + (y if gate is None else y * gate)


class Block(nn.Module):
    """One transformer layer over all experts (pre-norm attention, then pre-norm GeGLU FFN)."""

    configs: Sequence[Config]

    @nn.compact
    def __call__(self, xs, kv_cache, positions, attn_mask, adarms_cond):
        normed = [
            None if x is None else RMSNorm(name=_name("pre_attention_norm", i))(x, adarms_cond[i])
            for i, x in enumerate(xs)
        ]
        attn_out, kv = Attention(self.configs, name="attn")(
            [None if n is None else n[0] for n in normed], positions, attn_mask, kv_cache
        )
        xs = [None if x is None else _gated_residual(x, y, n[1]) for x, y, n in zip(xs, attn_out, normed)]
        out = []
        for i, (x, cfg) in enumerate(zip(xs, self.configs)):
            if x is None:
                out.append(None)
                continue
            y, gate = RMSNorm(name=_name("pre_ffw_norm", i))(x, adarms_cond[i])
            y = lora.FeedForward(cfg.width, cfg.mlp_dim, lora_config=cfg.ffn_lora, name=_name("mlp", i))(y)
            out.append(_gated_residual(x, y, gate))
        return out, kv


class Module(nn.Module):
    """The multi-expert Gemma: ``embed`` tokens for expert 0, and ``__call__`` over per-expert embeddings.

    ``__call__(embedded, positions, mask, adarms_cond=None, kv_cache=None)`` takes one ``[B, T_i, width_i]`` array
    (or ``None``) per expert, positions ``[B, T]`` and a boolean mask ``[B, T, S]`` where ``S`` counts the cached
    tokens plus ``T``; returns per-expert outputs after the final norm and the KV cache of this call (cached
    prefix included), which a later call can pass back as ``kv_cache``.
    """

    configs: Sequence[Config]
    embed_dtype: str = "float32"
    vocab_size: int = PALIGEMMA_VOCAB_SIZE

    def setup(self):
        if len({c.depth for c in self.configs}) != 1:
            raise ValueError(f"All experts need the same depth, got {[c.depth for c in self.configs]}.")
        self.embedder = Embedder(self.vocab_size, self.configs[0].width)
        block = nn.remat(Block, prevent_cse=False, policy=jax.checkpoint_policies.nothing_saveable)
        self.layers = nn.scan(
            block,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=(0, nn.broadcast, nn.broadcast, nn.broadcast),
            length=self.configs[0].depth,
        )(self.configs)
        for i in range(len(self.configs)):
            setattr(self, _name("final_norm", i), RMSNorm())

    def embed(self, tokens: jax.Array) -> jax.Array:
        return self.embedder(tokens).astype(self.embed_dtype)

    def __call__(
        self,
        embedded: Sequence[jax.Array | None],
        positions: jax.Array,
        mask: jax.Array,
        adarms_cond: Sequence[jax.Array | None] | None = None,
        kv_cache: KVCache | None = None,
    ) -> tuple[list[jax.Array | None], KVCache]:
        if len(embedded) != len(self.configs):
            raise ValueError(f"Got {len(embedded)} expert inputs for {len(self.configs)} experts.")
        if adarms_cond is None:
            adarms_cond = [None] * len(self.configs)
        xs = [None if e is None else e.astype(self.embed_dtype) for e in embedded]
        xs, kv_cache = self.layers(xs, kv_cache, positions, mask, adarms_cond)
        outs = [
            None if x is None else getattr(self, _name("final_norm", i))(x, adarms_cond[i])[0] for i, x in enumerate(xs)
        ]
        return outs, kv_cache

    def init_all(self, use_adarms: Sequence[bool]):
        """Touches every parameter (used once through ``lazy_init``); ``use_adarms[i]`` enables adaRMS for expert i."""
        self.embed(jnp.zeros((1, 1), jnp.int32))
        n = len(self.configs)
        self(
            [jnp.zeros((1, 1, c.width)) for c in self.configs],
            positions=jnp.arange(n)[None],
            mask=jnp.ones((1, n, n), dtype=bool),
            adarms_cond=[jnp.zeros((1, c.width)) if u else None for u, c in zip(use_adarms, self.configs)],
        )
