"""pi0 / pi0.5: a PaliGemma prefix (images + prompt) and a flow-matching action expert sharing its attention.

Parameter names and shapes match openpi checkpoints. The training loss is the per-dim flow-matching error
``(v_t - u_t)²`` routed through the action-group loss weighting of ``Pi0Config`` (``pi0_loss_utils``), and the
per-group metrics come out of the same forward pass.
"""

from typing import TYPE_CHECKING

import flax.nnx as nnx
from flax.nnx import bridge as nnx_bridge
import jax
import jax.numpy as jnp

from openpi.models import gemma as _gemma
from openpi.models import model as _model
from openpi.models import pi0_loss_utils
from openpi.models import siglip as _siglip
from openpi.shared import array_typing as at

if TYPE_CHECKING:
    from openpi.models.pi0_config import Pi0Config


def make_attn_mask(input_mask: jax.Array, mask_ar: jax.Array) -> jax.Array:
    """Boolean [B, N, N] mask from validity [B, N] and "ar" flags [B, N] or [N].

    Token ``i`` attends to ``j`` iff both are valid and ``cumsum(ar)[j] <= cumsum(ar)[i]``: a run of ``False``
    flags after a ``True`` forms a block with bidirectional attention that later blocks can see but not vice versa.
    """
    mask_ar = jnp.broadcast_to(mask_ar, input_mask.shape)
    cumsum = jnp.cumsum(mask_ar, axis=1)
    attn = cumsum[:, None, :] <= cumsum[:, :, None]
    valid = input_mask[:, None, :] & input_mask[:, :, None]
    return attn & valid


def posemb_sincos(pos: jax.Array, dim: int, min_period: float, max_period: float) -> jax.Array:
    """Sine-cosine embedding [B, dim] of scalars [B] with periods spaced geometrically in [min, max]."""
    if dim % 2:
        raise ValueError(f"Sin-cos embedding width must be even, got {dim}.")
    fraction = jnp.linspace(0.0, 1.0, dim // 2)
    period = min_period * (max_period / min_period) ** fraction
    radians = pos[:, None].astype(jnp.float32) * (2 * jnp.pi / period)[None, :]
    return jnp.concatenate([jnp.sin(radians), jnp.cos(radians)], axis=-1)


class Pi0(_model.BaseModel):
    """pi0 (state token + time-mixed action tokens) or pi0.5 (time via adaRMS, state in the prompt)."""

    def __init__(self, config: "Pi0Config", rngs: nnx.Rngs):
        super().__init__(config.action_dim, config.action_horizon, config.max_token_len)
        self.pi05 = config.pi05
        self.loss_weighting = config.loss_weighting
        self.image_resolution = tuple(config.image_resolution)
        paligemma = _gemma.get_config(config.paligemma_variant)
        expert = _gemma.get_config(config.action_expert_variant)

        llm = nnx_bridge.ToNNX(_gemma.Module(configs=(paligemma, expert), embed_dtype=config.dtype, vocab_size=config.vocab_size))
        llm.lazy_init(rngs=rngs, method="init_all", use_adarms=(False, config.pi05))
        img = nnx_bridge.ToNNX(
            _siglip.Module(num_classes=paligemma.width, variant=config.vision_variant, dtype_mm=config.dtype)
        )
        img.lazy_init(jnp.zeros((1, *self.image_resolution, 3), jnp.float32), rngs=rngs)
        self.PaliGemma = nnx.Dict(llm=llm, img=img)

        self.action_in_proj = nnx.Linear(config.action_dim, expert.width, rngs=rngs)
        if config.pi05:
            self.time_mlp_in = nnx.Linear(expert.width, expert.width, rngs=rngs)
            self.time_mlp_out = nnx.Linear(expert.width, expert.width, rngs=rngs)
        else:
            self.state_proj = nnx.Linear(config.action_dim, expert.width, rngs=rngs)
            self.action_time_mlp_in = nnx.Linear(2 * expert.width, expert.width, rngs=rngs)
            self.action_time_mlp_out = nnx.Linear(expert.width, expert.width, rngs=rngs)
        self.action_out_proj = nnx.Linear(expert.width, config.action_dim, rngs=rngs)

    def embed_prefix(
        self, obs: _model.Observation
    ) -> tuple[at.Float[at.Array, "b s emb"], at.Bool[at.Array, "b s"], at.Bool[at.Array, " s"]]:
        """Image tokens of every camera, then the prompt tokens; all bidirectional. Returns tokens, mask, ar flags."""
        tokens, masks, ar = [], [], []
        for name in obs.images:
            image_tokens = self.PaliGemma["img"](obs.images[name])
            tokens.append(image_tokens)
            masks.append(jnp.broadcast_to(obs.image_masks[name][:, None], image_tokens.shape[:2]))
            ar.append(jnp.zeros(image_tokens.shape[1], dtype=bool))
        if obs.tokenized_prompt is not None:
            tokens.append(self.PaliGemma["llm"](obs.tokenized_prompt, method="embed"))
            masks.append(obs.tokenized_prompt_mask)
            ar.append(jnp.zeros(obs.tokenized_prompt.shape[1], dtype=bool))
        dtype = tokens[-1].dtype
        return (
            jnp.concatenate([t.astype(dtype) for t in tokens], axis=1),
            jnp.concatenate(masks, axis=1),
            jnp.concatenate(ar),
        )

    def embed_suffix(
        self, obs: _model.Observation, noisy_actions: _model.Actions, timestep: at.Float[at.Array, " b"]
    ) -> tuple[
        at.Float[at.Array, "b s emb"],
        at.Bool[at.Array, "b s"],
        at.Bool[at.Array, " s"],
        at.Float[at.Array, "b emb"] | None,
    ]:
        """Action-expert tokens for ``x_t`` at time ``t`` [B]. Returns tokens, mask, ar flags and the adaRMS condition.

        pi0: a state token then action tokens ``MLP([action_in_proj(x_t), sincos(t)])``; pi0.5: ``action_in_proj(x_t)``
        with ``t`` entering through adaRMS. The first suffix token starts a new attention block, so the prefix never
        sees the suffix.
        """
        tokens, ar = [], []
        horizon = noisy_actions.shape[1]
        if not self.pi05:
            tokens.append(self.state_proj(obs.state)[:, None, :])
            ar.append(jnp.ones(1, dtype=bool))
        action_tokens = self.action_in_proj(noisy_actions)
        time_emb = posemb_sincos(timestep, action_tokens.shape[-1], min_period=4e-3, max_period=4.0)
        if self.pi05:
            time_emb = nnx.swish(self.time_mlp_out(nnx.swish(self.time_mlp_in(time_emb))))
            expert_tokens, adarms_cond = action_tokens, time_emb
        else:
            time_tokens = jnp.broadcast_to(time_emb[:, None, :], (*action_tokens.shape[:2], time_emb.shape[-1]))
            mixed = jnp.concatenate([action_tokens, time_tokens.astype(action_tokens.dtype)], axis=-1)
            expert_tokens = self.action_time_mlp_out(nnx.swish(self.action_time_mlp_in(mixed)))
            adarms_cond = None
        tokens.append(expert_tokens)
        ar.append(jnp.arange(horizon) == 0)
        tokens = jnp.concatenate(tokens, axis=1)
        mask = jnp.ones(tokens.shape[:2], dtype=bool)
        return tokens, mask, jnp.concatenate(ar), adarms_cond

    def _preprocess(self, rng, observation, train):
        return _model.preprocess_observation(
            rng, observation, train=train, image_keys=list(observation.images), image_resolution=self.image_resolution
        )

    def predict_velocity(self, observation: _model.Observation, x_t: jax.Array, time: jax.Array) -> jax.Array:
        """``v_t`` [B, H, D] from one full prefix + suffix pass (no cache); ``observation`` must be preprocessed."""
        prefix_tokens, prefix_mask, prefix_ar = self.embed_prefix(observation)
        suffix_tokens, suffix_mask, suffix_ar, adarms_cond = self.embed_suffix(observation, x_t, time)
        input_mask = jnp.concatenate([prefix_mask, suffix_mask], axis=1)
        attn_mask = make_attn_mask(input_mask, jnp.concatenate([prefix_ar, suffix_ar]))
        positions = jnp.cumsum(input_mask, axis=1) - 1
        (_, suffix_out), _ = self.PaliGemma["llm"](
            [prefix_tokens, suffix_tokens], positions=positions, mask=attn_mask, adarms_cond=[None, adarms_cond]
        )
        return self.action_out_proj(suffix_out[:, -self.action_horizon :]).astype(jnp.float32)

    def compute_loss_and_metrics(
        self,
        rng: jax.Array,
        observation: _model.Observation,
        actions: _model.Actions,
        *,
        train: bool = False,
        noise: jax.Array | None = None,
        time: jax.Array | None = None,
        balance_weights: jax.Array | None = None,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Weighted flow-matching loss [B, H] and the per-group metrics (``loss/<g>``, ``loss_share/<g>``,
        ``weight/<g>``; empty when no action groups are configured) from one forward pass.

        ``noise`` [B, H, D] and ``time`` [B] default to N(0, I) and Beta(1.5, 1)·0.999 + 0.001;
        ``balance_weights`` [G] are the ``adaptive`` strategy's current weights (held by the trainer).
        """
        preprocess_rng, noise_rng, time_rng = jax.random.split(rng, 3)
        observation = self._preprocess(preprocess_rng, observation, train)
        if noise is None:
            noise = jax.random.normal(noise_rng, actions.shape)
        if time is None:
            time = jax.random.beta(time_rng, 1.5, 1.0, actions.shape[:1]) * 0.999 + 0.001
        t = time[:, None, None]
        x_t = t * noise + (1 - t) * actions
        u_t = noise - actions
        v_t = self.predict_velocity(observation, x_t, time)
        per_dim_err = jnp.square(v_t - u_t)
        return pi0_loss_utils.weighted_loss_and_metrics(
            self.loss_weighting, per_dim_err, actions, balance_weights=balance_weights
        )

    def compute_loss(
        self,
        rng: at.KeyArrayLike,
        observation: _model.Observation,
        actions: _model.Actions,
        *,
        train: bool = False,
        noise: _model.Actions | None = None,
        time: at.Float[at.Array, " b"] | None = None,
    ) -> at.Float[at.Array, "b ah"]:
        """Weighted flow-matching loss [B, H] (see ``compute_loss_and_metrics``)."""
        return self.compute_loss_and_metrics(rng, observation, actions, train=train, noise=noise, time=time)[0]

    def sample_actions(
        self,
        rng: at.KeyArrayLike,
        observation: _model.Observation,
        *,
        num_steps: int = 10,
        noise: jax.Array | None = None,
        prefix_actions: jax.Array | None = None,
        prefix_weights: jax.Array | None = None,
    ) -> _model.Actions:
        """Euler integration of the flow from t = 1 (noise) to t = 0 in ``num_steps`` steps.

        The prefix runs once into a KV cache; each step runs only the suffix, whose positions continue after the
        prefix's valid tokens.

        ``prefix_actions`` [B, H, D] with ``prefix_weights`` [B, H] in [0, 1] inpaint already-committed actions:
        before every step (and once more at t = 0) ``x_t += w · (t·noise + (1 − t)·prefix − x_t)``, the training
        interpolation of the prefix; rows with weight 1 are replaced, rows with weight 0 are free.
        """
        observation = self._preprocess(None, observation, False)
        dt = -1.0 / num_steps
        batch_size = observation.state.shape[0]
        if noise is None:
            noise = jax.random.normal(rng, (batch_size, self.action_horizon, self.action_dim))

        prefix_tokens, prefix_mask, prefix_ar = self.embed_prefix(observation)
        prefix_attn = make_attn_mask(prefix_mask, prefix_ar)
        prefix_positions = jnp.cumsum(prefix_mask, axis=1) - 1
        _, kv_cache = self.PaliGemma["llm"]([prefix_tokens, None], positions=prefix_positions, mask=prefix_attn)

        def inpaint(x_t, time):
            if prefix_actions is None:
                return x_t
            target = time * noise + (1 - time) * prefix_actions
            return x_t + prefix_weights[..., None] * (target - x_t)

        def step(carry):
            x_t, time = carry
            x_t = inpaint(x_t, time)
            suffix_tokens, suffix_mask, suffix_ar, adarms_cond = self.embed_suffix(
                observation, x_t, jnp.broadcast_to(time, (batch_size,))
            )
            suffix_len = suffix_tokens.shape[1]
            to_prefix = jnp.broadcast_to(prefix_mask[:, None, :], (batch_size, suffix_len, prefix_mask.shape[1]))
            attn_mask = jnp.concatenate([to_prefix, make_attn_mask(suffix_mask, suffix_ar)], axis=-1)
            positions = jnp.sum(prefix_mask, axis=-1)[:, None] + jnp.cumsum(suffix_mask, axis=-1) - 1
            (_, suffix_out), _ = self.PaliGemma["llm"](
                [None, suffix_tokens],
                positions=positions,
                mask=attn_mask,
                adarms_cond=[None, adarms_cond],
                kv_cache=kv_cache,
            )
            v_t = self.action_out_proj(suffix_out[:, -self.action_horizon :]).astype(jnp.float32)
            return x_t + dt * v_t, time + dt

        def keep_going(carry):
            return carry[1] >= -dt / 2

        x_0, _ = jax.lax.while_loop(keep_going, step, (noise, jnp.float32(1.0)))
        return inpaint(x_0, 0.0)
