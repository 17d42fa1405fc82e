"""PyTorch SigLIP vision tower for pi0 (big_vision ViT: learned position embedding, no pooling).

``spec`` is ``openpi.models.siglip.decode_variant(variant)``. Numerics follow the JAX model: patch convolution, pre-LayerNorm blocks (eps 1e-6) with biased multi-head attention
and a tanh-GELU MLP, a final LayerNorm. Names follow openpi's converted checkpoints (HF SigLIP layout).
"""

import torch
from torch import nn
import torch.nn.functional as F

LAYER_NORM_EPS = 1e-6


class SiglipVisionEmbeddings(nn.Module):
    def __init__(self, spec: dict[str, int], num_patches: int):
        super().__init__()
        self.patch_embedding = nn.Conv2d(3, spec["width"], kernel_size=spec["patch"], stride=spec["patch"])
        self.position_embedding = nn.Embedding(num_patches, spec["width"])
        nn.init.normal_(self.position_embedding.weight, std=spec["width"] ** -0.5)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Channels-first images [B, 3, H, W] → patch tokens [B, P, width] (row-major patches)."""
        x = self.patch_embedding(images.to(self.patch_embedding.weight.dtype)).flatten(2).transpose(1, 2)
        return x + self.position_embedding.weight[None]


class SiglipAttention(nn.Module):
    def __init__(self, spec: dict[str, int]):
        super().__init__()
        self.num_heads = spec["num_heads"]
        self.q_proj = nn.Linear(spec["width"], spec["width"])
        self.k_proj = nn.Linear(spec["width"], spec["width"])
        self.v_proj = nn.Linear(spec["width"], spec["width"])
        self.out_proj = nn.Linear(spec["width"], spec["width"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def heads(t):
            return t.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

        out = F.scaled_dot_product_attention(heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x)))
        return self.out_proj(out.transpose(1, 2).flatten(2))


class SiglipMLP(nn.Module):
    def __init__(self, spec: dict[str, int]):
        super().__init__()
        self.fc1 = nn.Linear(spec["width"], spec["mlp_dim"])
        self.fc2 = nn.Linear(spec["mlp_dim"], spec["width"])

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class SiglipEncoderLayer(nn.Module):
    def __init__(self, spec: dict[str, int]):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(spec["width"], eps=LAYER_NORM_EPS)
        self.self_attn = SiglipAttention(spec)
        self.layer_norm2 = nn.LayerNorm(spec["width"], eps=LAYER_NORM_EPS)
        self.mlp = SiglipMLP(spec)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class SiglipEncoder(nn.Module):
    def __init__(self, spec: dict[str, int]):
        super().__init__()
        self.layers = nn.ModuleList(SiglipEncoderLayer(spec) for _ in range(spec["depth"]))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class SiglipVisionTransformer(nn.Module):
    def __init__(self, spec: dict[str, int], image_resolution: tuple[int, int]):
        super().__init__()
        height, width = image_resolution
        self.embeddings = SiglipVisionEmbeddings(spec, (height // spec["patch"]) * (width // spec["patch"]))
        self.encoder = SiglipEncoder(spec)
        self.post_layernorm = nn.LayerNorm(spec["width"], eps=LAYER_NORM_EPS)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(images).to(self.post_layernorm.weight.dtype)
        return self.post_layernorm(self.encoder(x))


class SiglipVisionModel(nn.Module):
    """The ``vision_tower``: channels-first images in [-1, 1] → one token per patch."""

    def __init__(self, spec: dict[str, int], image_resolution: tuple[int, int] = (224, 224)):
        super().__init__()
        self.vision_model = SiglipVisionTransformer(spec, image_resolution)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.vision_model(images)
