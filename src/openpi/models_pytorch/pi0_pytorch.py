"""PyTorch twin of the JAX pi0 / pi0.5 model (``openpi.models.pi0``) with the same numerics and openpi's state-dict names.

The flow-matching loss goes through the action-group loss weighting (``pi0_loss_utils_pytorch``), so the trainer
gets the weighted ``[B, H]`` loss and the per-group metrics from a single forward pass.
"""

from collections.abc import Callable
from collections.abc import Sequence
import math

import torch
from torch import nn

from openpi.models import gemma as _gemma_config
from openpi.models import pi0_config as _pi0_config
from openpi.models import siglip as _siglip_config
from openpi.models_pytorch import gemma_pytorch as _gemma
from openpi.models_pytorch import pi0_loss_utils_pytorch as _loss
from openpi.models_pytorch import preprocessing_pytorch as _preprocessing
from openpi.models_pytorch import siglip_pytorch as _siglip


class MultiModalProjector(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        return self.linear(x.to(self.linear.weight.dtype))


class PaliGemmaModel(nn.Module):
    def __init__(
        self, vision: dict[str, int], llm: _gemma_config.Config, image_resolution: tuple[int, int], vocab_size: int
    ):
        super().__init__()
        self.vision_tower = _siglip.SiglipVisionModel(vision, image_resolution)
        self.multi_modal_projector = MultiModalProjector(vision["width"], llm.width)
        self.language_model = _gemma.GemmaModel(llm, vocab_size=vocab_size)


class PaliGemma(nn.Module):
    """PaliGemma with its LM head tied to the token embedding (kept for checkpoint compatibility; unused)."""

    def __init__(
        self, vision: dict[str, int], llm: _gemma_config.Config, image_resolution: tuple[int, int], vocab_size: int
    ):
        super().__init__()
        self.model = PaliGemmaModel(vision, llm, image_resolution, vocab_size)
        self.lm_head = nn.Linear(llm.width, vocab_size, bias=False)
        self.lm_head.weight = self.model.language_model.embed_tokens.weight


class GemmaExpert(nn.Module):
    """The action expert; ``lm_head`` only exists because openpi checkpoints carry it (never used)."""

    def __init__(self, spec: _gemma_config.Config, cond_dim: int | None, vocab_size: int):
        super().__init__()
        self.model = _gemma.GemmaModel(spec, vocab_size=None, cond_dim=cond_dim)
        self.lm_head = nn.Linear(spec.width, vocab_size, bias=False)


class PaliGemmaWithExpert(nn.Module):
    def __init__(
        self,
        vision: dict[str, int],
        llm: _gemma_config.Config,
        expert: _gemma_config.Config,
        *,
        pi05: bool,
        image_resolution: tuple[int, int],
        vocab_size: int = _gemma_config.PALIGEMMA_VOCAB_SIZE,
    ):
        super().__init__()
        if llm.depth != expert.depth or llm.head_dim != expert.head_dim or llm.num_heads != expert.num_heads:
            raise ValueError(
                f"The experts must agree on depth, heads and head_dim to share attention: {llm}, {expert}."
            )
        self.paligemma = PaliGemma(vision, llm, image_resolution, vocab_size)
        self.gemma_expert = GemmaExpert(expert, cond_dim=expert.width if pi05 else None, vocab_size=vocab_size)
        self.gradient_checkpointing = False

    def embed_image(self, images: torch.Tensor) -> torch.Tensor:
        """Channels-last images [B, H, W, 3] in [-1, 1] → image tokens [B, P, llm width]."""
        model = self.paligemma.model
        return model.multi_modal_projector(model.vision_tower(images.permute(0, 3, 1, 2)))

    def embed_language_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.paligemma.model.language_model.embed(tokens)

    def forward(self, embeds, mask, positions, adarms_cond=(None, None), kv_cache=None):
        """``[prefix, suffix]`` embeddings (either may be None) → outputs and the per-layer KV cache."""
        experts = [self.paligemma.model.language_model, self.gemma_expert.model]
        embeds = [
            None if x is None else x.to(e.layers[0].self_attn.q_proj.weight.dtype) for x, e in zip(embeds, experts)
        ]
        return _gemma.joint_forward(
            experts, embeds, mask, positions, list(adarms_cond), kv_cache, checkpoint=self.gradient_checkpointing
        )


def make_attn_mask(input_mask: torch.Tensor, ar_mask: torch.Tensor) -> torch.Tensor:
    """bool [B, N] validity and autoregressive flags → [B, N, N]: ``cumsum[j] <= cumsum[i]`` and both valid."""
    cumsum = torch.cumsum(ar_mask.long().expand_as(input_mask), dim=1)
    attn = cumsum[:, None, :] <= cumsum[:, :, None]
    return attn & input_mask[:, None, :] & input_mask[:, :, None]


def posemb_sincos(t: torch.Tensor, dim: int, min_period: float = 4e-3, max_period: float = 4.0) -> torch.Tensor:
    """Sine-cosine embedding of scalar times [B] → [B, dim], periods log-spaced in [min_period, max_period]."""
    if dim % 2:
        raise ValueError(f"Time embedding width must be even, got {dim}.")
    fraction = torch.linspace(0.0, 1.0, dim // 2, dtype=torch.float32, device=t.device)
    period = min_period * (max_period / min_period) ** fraction
    angles = t.float()[:, None] * (1.0 / period * 2 * math.pi)[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class PI0Pytorch(nn.Module):
    """pi0 / pi0.5 in PyTorch. ``forward`` is the training loss; ``sample_actions`` runs Euler flow sampling.

    Observations follow ``openpi.models.model.Observation`` (attributes ``images``, ``image_masks``, ``state``,
    ``tokenized_prompt``, ``tokenized_prompt_mask``) holding torch tensors; images are channels-last in [-1, 1].
    ``compile_mode`` (e.g. ``"max-autotune"``) wraps the loss and the denoising step in ``torch.compile``; off by
    default because it only pays off on accelerators. ``gradient_checkpointing`` recomputes each Gemma layer in the
    backward pass (like the JAX model's remat) to fit full-size training in memory.
    """

    def __init__(
        self,
        config: _pi0_config.Pi0Config,
        *,
        compile_mode: str | None = None,
        gradient_checkpointing: bool = False,
    ):
        super().__init__()
        self.config = config
        llm = _gemma_config.get_config(config.paligemma_variant)
        expert = _gemma_config.get_config(config.action_expert_variant)
        vision = _siglip_config.decode_variant(config.vision_variant)
        self.image_resolution = tuple(config.image_resolution)
        self.paligemma_with_expert = PaliGemmaWithExpert(
            vision, llm, expert, pi05=config.pi05, image_resolution=self.image_resolution, vocab_size=config.vocab_size
        )
        self.paligemma_with_expert.gradient_checkpointing = gradient_checkpointing
        width = expert.width
        self.action_in_proj = nn.Linear(config.action_dim, width)
        self.action_out_proj = nn.Linear(width, config.action_dim)
        if config.pi05:
            self.time_mlp_in = nn.Linear(width, width)
            self.time_mlp_out = nn.Linear(width, width)
        else:
            self.state_proj = nn.Linear(config.action_dim, width)
            self.action_time_mlp_in = nn.Linear(2 * width, width)
            self.action_time_mlp_out = nn.Linear(width, width)
        if config.dtype == "bfloat16":
            self.to_bfloat16_keeping_float32_parts()
        elif config.dtype != "float32":
            raise ValueError(f"Unsupported dtype {config.dtype!r}; use 'bfloat16' or 'float32'.")
        self._denoise_step = self.denoise_step
        if compile_mode is not None:
            self.compute_loss_and_metrics = torch.compile(self.compute_loss_and_metrics, mode=compile_mode)
            self._denoise_step = torch.compile(self.denoise_step, mode=compile_mode)

    def to_bfloat16_keeping_float32_parts(self) -> "PI0Pytorch":
        """bfloat16 weights except where openpi keeps float32: patch/position embeddings, every Gemma norm
        (incl. adaRMS), and the action / state / time projections."""
        self.to(torch.bfloat16)
        for module in self.modules():
            if isinstance(module, _gemma.RMSNorm | _siglip.SiglipVisionEmbeddings):
                module.float()
        for name, child in self.named_children():
            if name != "paligemma_with_expert":
                child.float()
        return self

    # ---- embeddings ----------------------------------------------------------------------------------------

    def preprocess_images(
        self, observation, *, train: bool = False, generators: Sequence[torch.Generator] | None = None
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Images resized with padding to the model resolution and, when ``train``, augmented (wrist cameras only
        colour-jittered), as the JAX model does, drawing from ``generators`` (one per sample) when given; masks
        default to present."""
        images, masks = {}, {}
        for name, image in observation.images.items():
            images[name] = _preprocessing.resize_with_pad(image.float(), *self.image_resolution)
            if train:
                images[name] = _preprocessing.augment_images(
                    images[name], geometric="wrist" not in name, generators=generators
                )
            mask = observation.image_masks.get(name)
            masks[name] = torch.ones(image.shape[0], dtype=torch.bool, device=image.device) if mask is None else mask
        return images, masks

    def embed_prefix(
        self, observation, *, train: bool = False, generators: Sequence[torch.Generator] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Image tokens of every camera, then language tokens; all attend bidirectionally (ar flag 0)."""
        tokens, masks = [], []
        images, image_masks = self.preprocess_images(observation, train=train, generators=generators)
        for name, image in images.items():
            image_tokens = self.paligemma_with_expert.embed_image(image)
            tokens.append(image_tokens)
            masks.append(image_masks[name].bool()[:, None].expand(-1, image_tokens.shape[1]))
        if observation.tokenized_prompt is not None:
            tokens.append(self.paligemma_with_expert.embed_language_tokens(observation.tokenized_prompt))
            masks.append(observation.tokenized_prompt_mask)
        embeds = torch.cat([t.to(tokens[-1].dtype) for t in tokens], dim=1)
        input_mask = torch.cat(masks, dim=1).bool()
        return embeds, input_mask, torch.zeros(embeds.shape[1], dtype=torch.bool, device=embeds.device)

    def embed_suffix(self, observation, noisy_actions: torch.Tensor, time: torch.Tensor):
        """Suffix tokens, validity, ar flags and the adaRMS condition (pi0.5) for noisy actions at ``time`` [B]."""
        batch, horizon = noisy_actions.shape[:2]
        action_tokens = self.action_in_proj(noisy_actions.to(self.action_in_proj.weight.dtype))
        time_emb = posemb_sincos(time, self.action_in_proj.out_features).to(action_tokens.dtype)
        ar = [True] + [False] * (horizon - 1)
        if self.config.pi05:
            cond = nn.functional.silu(self.time_mlp_out(nn.functional.silu(self.time_mlp_in(time_emb))))
            tokens = action_tokens
        else:
            cond = None
            time_tokens = time_emb[:, None, :].expand(-1, horizon, -1)
            mixed = self.action_time_mlp_in(torch.cat([action_tokens, time_tokens], dim=-1))
            action_time = self.action_time_mlp_out(nn.functional.silu(mixed))
            state = self.state_proj(observation.state.to(self.state_proj.weight.dtype))
            tokens = torch.cat([state[:, None, :], action_time], dim=1)
            ar = [True, *ar]
        input_mask = torch.ones(batch, tokens.shape[1], dtype=torch.bool, device=tokens.device)
        return tokens, input_mask, torch.tensor(ar, dtype=torch.bool, device=tokens.device), cond

    # ---- training --------------------------------------------------------------------------------------------

    def compute_loss_and_metrics(
        self,
        observation,
        actions: torch.Tensor,
        noise: torch.Tensor | None = None,
        time: torch.Tensor | None = None,
        *,
        train: bool = False,
        augment_generators: Sequence[torch.Generator] | None = None,
        balance_weights: torch.Tensor | None = None,
        global_mean: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted flow-matching loss [B, H] and the per-group metrics of ``pi0_loss_utils_pytorch`` (the JAX
        ``Pi0.compute_loss_and_metrics``).

        ``noise`` [B, H, D] and ``time`` [B] default to N(0, I) and Beta(1.5, 1)·0.999 + 0.001 (t = 1 is noise,
        t = 0 is data); ``train`` augments the images (random crop, rotation, colour jitter), like JAX
        ``compute_loss(train=True)``, drawing from ``augment_generators`` (one CPU generator per sample) when given;
        ``balance_weights`` [G] are the ``adaptive`` strategy's current weights (held by the trainer);
        ``global_mean`` makes the weights' batch means cover the global batch under DDP (the trainer passes
        ``pi0_loss_utils_pytorch.ddp_global_mean``).
        """
        actions = actions.float()
        noise = torch.randn_like(actions) if noise is None else noise.float()
        if time is None:
            beta = torch.distributions.Beta(torch.tensor(1.5), torch.tensor(1.0)).sample(actions.shape[:1])
            time = (beta * 0.999 + 0.001).to(actions.device)
        time = time.float()
        t = time[:, None, None]
        x_t = t * noise + (1 - t) * actions
        u_t = noise - actions
        prefix, prefix_mask, prefix_ar = self.embed_prefix(observation, train=train, generators=augment_generators)
        suffix, suffix_mask, suffix_ar, cond = self.embed_suffix(observation, x_t, time)
        input_mask = torch.cat([prefix_mask, suffix_mask], dim=1)
        attn_mask = make_attn_mask(input_mask, torch.cat([prefix_ar, suffix_ar]))
        positions = torch.cumsum(input_mask.long(), dim=1) - 1
        (_, suffix_out), _ = self.paligemma_with_expert([prefix, suffix], attn_mask, positions, (None, cond))
        v_t = self.action_out_proj(suffix_out[:, -self.config.action_horizon :].to(self.action_out_proj.weight.dtype))
        per_dim_loss = (v_t.float() - u_t).square()
        return _loss.weighted_loss_and_metrics(
            self.config.loss_weighting, per_dim_loss, actions, balance_weights=balance_weights,
            global_mean=global_mean,
        )

    def forward(self, observation, actions, noise=None, time=None, *, train: bool = False) -> torch.Tensor:
        """The weighted flow-matching loss [B, H]; the trainer means it."""
        return self.compute_loss_and_metrics(observation, actions, noise=noise, time=time, train=train)[0]

    # ---- inference -------------------------------------------------------------------------------------------

    def denoise_step(self, observation, prefix_mask, kv_cache, x_t: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        """Velocity at ``x_t`` for times [B], attending to the cached prefix."""
        suffix, suffix_mask, suffix_ar, cond = self.embed_suffix(observation, x_t, time)
        suffix_attn = make_attn_mask(suffix_mask, suffix_ar)
        prefix_attn = prefix_mask[:, None, :].expand(-1, suffix.shape[1], -1)
        mask = torch.cat([prefix_attn, suffix_attn], dim=-1)
        positions = prefix_mask.long().sum(-1, keepdim=True) + torch.cumsum(suffix_mask.long(), dim=1) - 1
        (_, suffix_out), _ = self.paligemma_with_expert([None, suffix], mask, positions, (None, cond), kv_cache)
        return self.action_out_proj(suffix_out[:, -self.config.action_horizon :].to(self.action_out_proj.weight.dtype))

    @torch.no_grad()
    def sample_actions(
        self,
        observation,
        noise: torch.Tensor | None = None,
        num_steps: int = 10,
        prefix_actions: torch.Tensor | None = None,
        prefix_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Euler integration from t = 1 (noise) to t = 0 with dt = -1/num_steps; the prefix runs once into a KV cache.

        ``prefix_actions`` [B, H, D] / ``prefix_weights`` [B, H] inpaint committed actions like the JAX model.
        """
        batch = observation.state.shape[0]
        device = observation.state.device
        if noise is None:
            noise = torch.randn(batch, self.config.action_horizon, self.config.action_dim, device=device)
        prefix, prefix_mask, prefix_ar = self.embed_prefix(observation)
        positions = torch.cumsum(prefix_mask.long(), dim=1) - 1
        _, kv_cache = self.paligemma_with_expert(
            [prefix, None], make_attn_mask(prefix_mask, prefix_ar), positions, (None, None)
        )
        dt = torch.tensor(-1.0 / num_steps, dtype=torch.float32)
        time = torch.tensor(1.0, dtype=torch.float32)
        noise = x_t = noise.float()

        def inpaint(x_t, time):
            if prefix_actions is None:
                return x_t
            target = time * noise + (1 - time) * prefix_actions.float()
            return x_t + prefix_weights.float()[..., None] * (target - x_t)

        while time >= -dt / 2:
            x_t = inpaint(x_t, time.to(device))
            v_t = self._denoise_step(observation, prefix_mask, kv_cache, x_t, time.expand(batch).to(device))
            x_t = x_t + dt.to(device) * v_t.float()
            time = time + dt
        return inpaint(x_t, 0.0)
