"""JAX twin of the action-group loss weighting (math in ``openpi.shared.loss_weighting``).

Jit-compatible: the weighting description is static (hashable), arrays are traced, nothing loops over
batch or time.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from openpi.shared import loss_weighting as _lw


class _JaxOps:
    def constant(self, values: np.ndarray, like: jax.Array) -> jax.Array:
        return jnp.asarray(values, dtype=like.dtype)

    def take_last(self, x, indices):
        return jnp.take(x, jnp.asarray(indices), axis=-1)

    def step_change(self, actions):
        return jnp.concatenate([jnp.zeros_like(actions[:, :1]), actions[:, 1:] - actions[:, :-1]], axis=1)

    def mean(self, x, axes):
        return jnp.mean(x, axis=axes, keepdims=True)

    def sum(self, x, axes):
        return jnp.sum(x, axis=axes)

    def matmul(self, x, y):
        return jnp.matmul(x, y, precision=jax.lax.Precision.HIGHEST)

    def sqrt(self, x):
        return jnp.sqrt(x)

    def clip(self, x, lo, hi):
        return jnp.clip(x, lo, hi)

    def minimum(self, x, value):
        return jnp.minimum(x, value)

    def maximum(self, x, value):
        return jnp.maximum(x, value)

    def stop_gradient(self, x):
        return jax.lax.stop_gradient(x)

    def ones_like(self, x):
        return jnp.ones_like(x)


OPS = _JaxOps()

# The public API, bound to this framework's array calls. Signatures and docs: ``openpi.shared.loss_weighting``.
# ``compute_weighted_loss(per_dim_loss, actions, *, weighting_strategy, action_groups=None, group_weights=None,
#     dimension_weights=None, use_delta_weighting=True, exclude_padding=False, global_mean=None)`` -> [B, H]
compute_weighted_loss = functools.partial(_lw.compute_weighted_loss, ops=OPS)
# ``weighted_loss_and_metrics(weighting, per_dim_loss, actions, balance_weights=None, global_mean=None)`` -> ([B, H] loss, metrics)
weighted_loss_and_metrics = functools.partial(_lw.weighted_loss_and_metrics, ops=OPS)
# ``full_loss_weights(weighting, actions, balance_weights=None, global_mean=None)`` -> [B, H, D] weights
full_loss_weights = functools.partial(_lw.full_loss_weights, ops=OPS)
# The adaptive strategy's state: ``adaptive_balance_weights(weighting, state)`` -> [G] weights for this step,
# ``adaptive_update(weighting, state, group_losses)`` -> the state after it.
adaptive_balance_weights = functools.partial(_lw.adaptive_balance_weights, ops=OPS)
adaptive_update = functools.partial(_lw.adaptive_update, ops=OPS)
