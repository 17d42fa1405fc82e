"""LoRA building blocks (linen) whose parameter names match openpi checkpoints.

An einsum ``x, w -> y`` gains two low-rank factors: ``lora_a`` is ``w``'s shape with the last axis replaced by the
rank, ``lora_b`` is ``w``'s shape with the second-to-last axis replaced by the rank, and the output becomes
``y + scale · ((x, lora_a) -> ·, lora_b)``. ``lora_b`` starts at zero, so a fresh LoRA model computes exactly what
the base model computes.
"""

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

_RANK_LABEL = "L"


@dataclasses.dataclass(frozen=True)
class LoRAConfig:
    """Rank and alpha of one LoRA adapter; the update is scaled by ``alpha / rank`` (``/ sqrt(rank)`` if rslora)."""

    rank: int
    alpha: float = 1.0
    rslora: bool = False
    init_stddev: float = 0.01

    @property
    def scaling(self) -> float:
        return self.alpha / math.sqrt(self.rank) if self.rslora else self.alpha / self.rank


def lora_equations(eqn: str) -> tuple[str, str]:
    """Splits ``"x,w->y"`` into the two einsums ``x, lora_a -> h`` and ``h, lora_b -> y``.

    ``lora_a`` replaces the last label of ``w`` by the rank label, ``lora_b`` the second-to-last one.
    """
    if _RANK_LABEL in eqn:
        raise ValueError(f"Einsum equation {eqn!r} already uses the LoRA rank label {_RANK_LABEL!r}.")
    inputs, out = eqn.replace(" ", "").split("->")
    x_spec, w_spec = inputs.split(",")
    a_label, b_label = w_spec[-2], w_spec[-1]
    if b_label not in out:
        raise ValueError(f"LoRA needs the last weight axis {b_label!r} of {eqn!r} in the output.")
    hidden = out.replace(b_label, _RANK_LABEL)
    eqn_a = f"{x_spec},{w_spec.replace(b_label, _RANK_LABEL)}->{hidden}"
    eqn_b = f"{hidden},{w_spec.replace(a_label, _RANK_LABEL)}->{out}"
    return eqn_a, eqn_b


def _lora_shapes(shape: tuple[int, ...], rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return (*shape[:-1], rank), (*shape[:-2], rank, shape[-1])


class Einsum(nn.Module):
    """``einsum(eqn, x, w)`` with weight ``w`` and optional LoRA factors ``lora_a`` / ``lora_b``.

    The weight is cast to the activation dtype so the compute dtype follows the inputs (mixed precision).
    """

    shape: tuple[int, ...]
    init_fn: nn.initializers.Initializer = nn.initializers.zeros
    lora_config: LoRAConfig | None = None

    @nn.compact
    def __call__(self, eqn: str, x: jax.Array) -> jax.Array:
        w = self.param("w", self.init_fn, self.shape)
        y = jnp.einsum(eqn, x, w.astype(x.dtype))
        if self.lora_config is not None:
            shape_a, shape_b = _lora_shapes(self.shape, self.lora_config.rank)
            a = self.param("lora_a", nn.initializers.normal(self.lora_config.init_stddev), shape_a)
            b = self.param("lora_b", nn.initializers.zeros, shape_b)
            eqn_a, eqn_b = lora_equations(eqn)
            h = jnp.einsum(eqn_a, x, a.astype(x.dtype))
            y = y + jnp.einsum(eqn_b, h, b.astype(x.dtype)) * self.lora_config.scaling
        return y


class FeedForward(nn.Module):
    """Gemma's GeGLU FFN: ``linear(gelu_tanh(x·W_gate) * (x·W_up))`` with ``gating_einsum`` [2, D, F]."""

    features: int
    hidden_dim: int
    lora_config: LoRAConfig | None = None

    def _weight(self, name: str, shape: tuple[int, ...], x: jax.Array) -> tuple[jax.Array, tuple | None]:
        batch_axes = tuple(range(len(shape) - 2))
        w = self.param(name, nn.initializers.lecun_normal(in_axis=-2, out_axis=-1, batch_axis=batch_axes), shape)
        if self.lora_config is None:
            return w.astype(x.dtype), None
        shape_a, shape_b = _lora_shapes(shape, self.lora_config.rank)
        a = self.param(f"{name}_lora_a", nn.initializers.normal(self.lora_config.init_stddev), shape_a)
        b = self.param(f"{name}_lora_b", nn.initializers.zeros, shape_b)
        return w.astype(x.dtype), (a.astype(x.dtype), b.astype(x.dtype))

    def _matmul(self, x: jax.Array, w: jax.Array, lora: tuple | None) -> jax.Array:
        y = x @ w
        if lora is not None:
            y = y + (x @ lora[0]) @ lora[1] * self.lora_config.scaling
        return y

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        gating, gating_lora = self._weight("gating_einsum", (2, self.features, self.hidden_dim), x)
        split = (lambda i: (gating_lora[0][i], gating_lora[1][i])) if gating_lora is not None else (lambda i: None)
        gate = nn.gelu(self._matmul(x, gating[0], split(0)), approximate=True)
        up = self._matmul(x, gating[1], split(1))
        linear, linear_lora = self._weight("linear", (self.hidden_dim, self.features), x)
        return self._matmul(gate * up, linear, linear_lora)
