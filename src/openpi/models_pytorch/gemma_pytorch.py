"""PyTorch Gemma for pi0: the PaliGemma language model and the action expert, sharing attention layer by layer.

Numerics follow the JAX model (``openpi.models.gemma``): RMSNorm ``x̂·(1 + w)`` with eps 1e-6 computed in
float32, adaRMS (``dense(cond)`` → scale, shift, gate), multi-query attention with half-split RoPE (base 10 000),
``q·head_dim^-0.5``, float32 logits masked with -2.3819763e38, GeGLU with tanh-GELU. Module and parameter names
follow openpi's converted PyTorch checkpoints (HF-style ``self_attn.q_proj`` ...).
"""

import math

import torch
from torch import nn
import torch.nn.functional as F
import torch.utils.checkpoint

from openpi.models import gemma as _gemma_config

MASKED_LOGIT = -2.3819763e38
RMS_EPS = 1e-6
ROPE_BASE = 10_000.0


class LoRALinear(nn.Linear):
    """``nn.Linear`` (no bias) plus openpi's per-head LoRA, stored in the JAX einsum's own factor layout.

    For q/k/v (``heads_in=False``) each of the G heads has its own adapter: ``lora_a`` [G, in, r], ``lora_b``
    [G, r, out/G]. For the output projection (``heads_in=True``, einsum ``BTNH,NHD->BTD``) openpi's factors are
    ``lora_a`` [G, in/G, r] and ``lora_b`` [G, r, out], both contracted over the heads:
    ``(Σ_g x_g a_g)(Σ_g b_g)``. FFN projections use plain [in, r] / [r, out] factors. Without ``lora`` this is an
    ordinary linear layer.
    """

    def __init__(self, in_features, out_features, *, lora=None, heads=None, heads_in=False):
        super().__init__(in_features, out_features, bias=False)
        self.heads_in = heads_in
        self.scaling = None
        if lora is None:
            return
        self.scaling = lora.scaling
        if heads is None:
            a_shape, b_shape = (in_features, lora.rank), (lora.rank, out_features)
        elif heads_in:
            a_shape, b_shape = (heads, in_features // heads, lora.rank), (heads, lora.rank, out_features)
        else:
            a_shape, b_shape = (heads, in_features, lora.rank), (heads, lora.rank, out_features // heads)
        self.lora_a = nn.Parameter(torch.randn(a_shape) * 0.01)
        self.lora_b = nn.Parameter(torch.zeros(b_shape))

    def forward(self, x):
        out = super().forward(x)
        if self.scaling is None:
            return out
        a, b = self.lora_a, self.lora_b
        if a.ndim == 2:
            delta = (x @ a) @ b
        elif self.heads_in:
            heads = x.unflatten(-1, (a.shape[0], a.shape[1]))
            delta = torch.einsum("...r,gro->...o", torch.einsum("...gi,gir->...r", heads, a), b)
        else:
            delta = torch.einsum("...gr,gro->...go", torch.einsum("...i,gir->...gr", x, a), b).flatten(-2)
        return out + delta * self.scaling


class RMSNorm(nn.Module):
    """Gemma RMSNorm; with ``cond_dim`` it is openpi's adaRMS and also returns the residual gate."""

    def __init__(self, dim: int, cond_dim: int | None = None):
        super().__init__()
        if cond_dim is None:
            self.weight = nn.Parameter(torch.zeros(dim))
        else:
            self.dense = nn.Linear(cond_dim, 3 * dim)
            nn.init.zeros_(self.dense.weight)
            nn.init.zeros_(self.dense.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        xf = x.float()
        normed = xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + RMS_EPS)
        if cond is None:
            return (normed * (1.0 + self.weight.float())).to(x.dtype), None
        modulation = self.dense(cond.to(self.dense.weight.dtype)).float()[:, None, :]
        scale, shift, gate = modulation.chunk(3, dim=-1)
        return (normed * (1.0 + scale) + shift).to(x.dtype), gate.to(x.dtype)


class GemmaAttention(nn.Module):
    def __init__(self, spec: _gemma_config.Config):
        super().__init__()
        n, k, h, lora = spec.num_heads, spec.num_kv_heads, spec.head_dim, spec.attn_lora
        self.num_kv_heads = k
        self.q_proj = LoRALinear(spec.width, n * h, lora=lora, heads=n)
        self.k_proj = LoRALinear(spec.width, k * h, lora=lora, heads=k)
        self.v_proj = LoRALinear(spec.width, k * h, lora=lora, heads=k)
        self.o_proj = LoRALinear(n * h, spec.width, lora=lora, heads=n, heads_in=True)


class GemmaMLP(nn.Module):
    """GeGLU feed-forward: ``down(gelu_tanh(gate(x)) · up(x))``."""

    def __init__(self, spec: _gemma_config.Config):
        super().__init__()
        self.gate_proj = LoRALinear(spec.width, spec.mlp_dim, lora=spec.ffn_lora)
        self.up_proj = LoRALinear(spec.width, spec.mlp_dim, lora=spec.ffn_lora)
        self.down_proj = LoRALinear(spec.mlp_dim, spec.width, lora=spec.ffn_lora)

    def forward(self, x):
        return self.down_proj(F.gelu(self.gate_proj(x), approximate="tanh") * self.up_proj(x))


class GemmaDecoderLayer(nn.Module):
    """Parameters of one layer of one expert; the joint computation is ``GemmaPair.forward``."""

    def __init__(self, spec: _gemma_config.Config, cond_dim: int | None):
        super().__init__()
        self.self_attn = GemmaAttention(spec)
        self.mlp = GemmaMLP(spec)
        self.input_layernorm = RMSNorm(spec.width, cond_dim)
        self.post_attention_layernorm = RMSNorm(spec.width, cond_dim)


class GemmaModel(nn.Module):
    """One Gemma expert: optional token embedding, decoder layers, final norm."""

    def __init__(self, spec: _gemma_config.Config, *, vocab_size: int | None, cond_dim: int | None = None):
        super().__init__()
        self.spec = spec
        if vocab_size is not None:
            self.embed_tokens = nn.Embedding(vocab_size, spec.width)
            nn.init.normal_(self.embed_tokens.weight, std=0.01)
        self.layers = nn.ModuleList(GemmaDecoderLayer(spec, cond_dim) for _ in range(spec.depth))
        self.norm = RMSNorm(spec.width, cond_dim)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token embedding scaled by √width, as Gemma does."""
        emb = self.embed_tokens(tokens)
        return emb * torch.tensor(math.sqrt(self.spec.width), dtype=emb.dtype)


def apply_rope(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Half-split rotary embedding of ``x`` [B, T, N, H] at integer ``positions`` [B, T], computed in float32."""
    half = x.shape[-1] // 2
    timescale = ROPE_BASE ** ((2.0 / x.shape[-1]) * torch.arange(half, dtype=torch.float32, device=x.device))
    radians = (positions.float()[..., None] / timescale)[..., None, :]
    sin, cos = torch.sin(radians), torch.cos(radians)
    x1, x2 = x.float().split(half, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(x.dtype)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Grouped-query attention: ``q`` [B, T, N, H], ``k``/``v`` [B, S, K, H], bool ``mask`` [B, T, S] → [B, T, N·H].

    Logits are float32 and masked with a finite value (like JAX), so fully masked padding rows stay finite.
    """
    b, t, n, h = q.shape
    kv_heads = k.shape[2]
    q = q.view(b, t, kv_heads, n // kv_heads, h)
    logits = torch.einsum("btkgh,bskh->bkgts", q.float(), k.float())
    logits = logits.masked_fill(~mask[:, None, None], MASKED_LOGIT)
    probs = torch.softmax(logits, dim=-1).to(v.dtype)
    return torch.einsum("bkgts,bskh->btkgh", probs, v).reshape(b, t, n * h)


KVCache = list[tuple[torch.Tensor, torch.Tensor]]


def joint_forward(
    experts: list[GemmaModel],
    embeds: list[torch.Tensor | None],
    mask: torch.Tensor,
    positions: torch.Tensor,
    adarms_cond: list[torch.Tensor | None],
    kv_cache: KVCache | None = None,
    *,
    checkpoint: bool = False,
) -> tuple[list[torch.Tensor | None], KVCache]:
    """Runs the experts side by side: each embeds its own tokens, all attend jointly over the concatenated sequence.

    ``embeds[i]`` is expert i's token sequence or None (skipped). ``mask`` [B, T, S] covers the cached tokens
    (S = cached + T). Returns each expert's normalized output and the per-layer (k, v) including the cache.
    ``checkpoint`` recomputes every layer in the backward pass instead of keeping its activations (the JAX
    model's per-layer remat), trading compute for memory when training.
    """
    hidden = list(embeds)
    new_cache: KVCache = []
    for layer_idx in range(experts[0].spec.depth):
        layers = [expert.layers[layer_idx] for expert in experts]
        cached = None if kv_cache is None else kv_cache[layer_idx]
        if checkpoint and torch.is_grad_enabled():
            hidden, kv = torch.utils.checkpoint.checkpoint(
                _joint_layer, layers, hidden, mask, positions, adarms_cond, cached, use_reentrant=False
            )
        else:
            hidden, kv = _joint_layer(layers, hidden, mask, positions, adarms_cond, cached)
        new_cache.append(kv)
    outputs = [None if x is None else experts[i].norm(x, adarms_cond[i])[0] for i, x in enumerate(hidden)]
    return outputs, new_cache


def _joint_layer(layers, hidden, mask, positions, adarms_cond, cached):
    """One layer of every expert: pre-norm joint attention, then each expert's pre-norm GeGLU, gated residuals."""
    head_dim = layers[0].self_attn.k_proj.out_features // layers[0].self_attn.num_kv_heads
    active = [i for i, x in enumerate(hidden) if x is not None]
    hidden = list(hidden)
    qs, ks, vs, gates = [], [], [], {}
    for i in active:
        attn = layers[i].self_attn
        y, gates[i] = layers[i].input_layernorm(hidden[i], adarms_cond[i])
        b, t, _ = y.shape
        qs.append(attn.q_proj(y).view(b, t, -1, head_dim))
        ks.append(attn.k_proj(y).view(b, t, -1, head_dim))
        vs.append(attn.v_proj(y).view(b, t, -1, head_dim))
    q = apply_rope(torch.cat(qs, dim=1), positions) * torch.tensor(head_dim**-0.5, dtype=qs[0].dtype)
    k = apply_rope(torch.cat(ks, dim=1), positions)
    v = torch.cat(vs, dim=1)
    if cached is not None:
        k = torch.cat([cached[0], k], dim=1)
        v = torch.cat([cached[1], v], dim=1)
    encoded = attend(q, k, v, mask)
    start = 0
    for i in active:
        end = start + hidden[i].shape[1]
        out = layers[i].self_attn.o_proj(encoded[:, start:end])
        start = end
        hidden[i] = _residual(hidden[i], out, gates[i])
        y, gate = layers[i].post_attention_layernorm(hidden[i], adarms_cond[i])
        hidden[i] = _residual(hidden[i], layers[i].mlp(y), gate)
    return hidden, (k, v)


def _residual(x, y, gate):
    return x + y if gate is None else x + y * gate
