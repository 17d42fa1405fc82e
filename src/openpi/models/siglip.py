"""SigLIP vision tower (linen): ViT with a learned position embedding, no pooling and scanned layers.

Every patch token is projected by ``head`` to the language model's width and passed on. Parameter names are the
same at every size (``embedding``, ``pos_embedding``, ``Transformer/encoderblock/...``, ``Transformer/encoder_norm``,
``head``), so a small variant such as ``mu/16`` is a drop-in for tests while ``So400m/14`` matches openpi
checkpoints.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# big_vision sizes: name -> (width, depth, mlp_dim, num_heads).
_SIZES = {
    "mu": (32, 1, 128, 2),
    "Ti": (192, 12, 768, 3),
    "S": (384, 12, 1536, 6),
    "M": (512, 12, 2048, 8),
    "B": (768, 12, 3072, 12),
    "L": (1024, 24, 4096, 16),
    "So400m": (1152, 27, 4304, 16),
}


def decode_variant(variant: str) -> dict[str, int]:
    """``"NAME/PATCH"`` (e.g. ``"So400m/14"``) → width, depth, mlp_dim, num_heads and patch size."""
    name, _, patch = variant.partition("/")
    if name not in _SIZES or not patch.isdigit():
        raise ValueError(
            f"Unknown SigLIP variant {variant!r}; use NAME/PATCH with NAME in {list(_SIZES)}, e.g. 'So400m/14'."
        )
    width, depth, mlp_dim, num_heads = _SIZES[name]
    return {"width": width, "depth": depth, "mlp_dim": mlp_dim, "num_heads": num_heads, "patch": int(patch)}


class MlpBlock(nn.Module):
    """``Dense(mlp_dim) → GELU(tanh) → Dense(width)``."""

    mlp_dim: int
    dtype_mm: str

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        init = {"kernel_init": nn.initializers.xavier_uniform(), "bias_init": nn.initializers.normal(stddev=1e-6)}
        width = x.shape[-1]
        x = nn.gelu(nn.Dense(self.mlp_dim, dtype=self.dtype_mm, **init)(x))
        return nn.Dense(width, dtype=self.dtype_mm, **init)(x)


class Encoder1DBlock(nn.Module):
    """Pre-norm transformer block: ``x + MHA(LN(x))``, then ``x + MLP(LN(x))``."""

    mlp_dim: int
    num_heads: int
    dtype_mm: str

    @nn.compact
    def __call__(self, x: jax.Array, _) -> tuple[jax.Array, None]:
        y = nn.LayerNorm(epsilon=1e-6)(x)
        y = nn.MultiHeadDotProductAttention(
            num_heads=self.num_heads,
            kernel_init=nn.initializers.xavier_uniform(),
            dtype=self.dtype_mm,
            deterministic=True,
        )(y, y)
        x = x + y
        y = nn.LayerNorm(epsilon=1e-6)(x)
        y = MlpBlock(self.mlp_dim, self.dtype_mm)(y)
        return x + y, None


class Encoder(nn.Module):
    depth: int
    mlp_dim: int
    num_heads: int
    dtype_mm: str

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        block = nn.remat(Encoder1DBlock, prevent_cse=False, policy=jax.checkpoint_policies.nothing_saveable)
        x, _ = nn.scan(
            block, variable_axes={"params": 0}, split_rngs={"params": True}, in_axes=nn.broadcast, length=self.depth
        )(self.mlp_dim, self.num_heads, self.dtype_mm, name="encoderblock")(x, None)
        return nn.LayerNorm(epsilon=1e-6, name="encoder_norm")(x)


class Module(nn.Module):
    """Images [B, H, W, 3] in [-1, 1] → tokens [B, (H/p)·(W/p), num_classes]."""

    num_classes: int
    variant: str = "So400m/14"
    dtype_mm: str = "float32"

    @nn.compact
    def __call__(self, image: jax.Array) -> jax.Array:
        v = decode_variant(self.variant)
        p = v["patch"]
        x = nn.Conv(v["width"], (p, p), strides=(p, p), padding="VALID", name="embedding", dtype=self.dtype_mm)(
            image.astype(jnp.float32)
        )
        b, h, w, c = x.shape
        x = x.reshape(b, h * w, c)
        pos = self.param("pos_embedding", nn.initializers.normal(stddev=1 / np.sqrt(c)), (1, h * w, c))
        x = x + pos.astype(x.dtype)
        x = Encoder(v["depth"], v["mlp_dim"], v["num_heads"], self.dtype_mm, name="Transformer")(x)
        return nn.Dense(self.num_classes, name="head", dtype=self.dtype_mm)(x)
