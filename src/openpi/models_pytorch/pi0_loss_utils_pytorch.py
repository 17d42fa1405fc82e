"""PyTorch twin of the action-group loss weighting (math in ``openpi.shared.loss_weighting``).

Vectorized over batch and time; weights are detached so they carry no gradient. Under DDP the trainer passes
``global_mean=ddp_global_mean`` so batch means cover the global batch (all ranks), as the JAX twin's do with a
sharded global batch.
"""

import functools

import numpy as np
import torch

from openpi.shared import loss_weighting as _lw


class _TorchOps:
    def constant(self, values: np.ndarray, like: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(np.asarray(values), dtype=like.dtype, device=like.device)

    def take_last(self, x, indices):
        return x[..., torch.as_tensor(indices, dtype=torch.long, device=x.device)]

    def step_change(self, actions):
        return torch.cat([torch.zeros_like(actions[:, :1]), actions[:, 1:] - actions[:, :-1]], dim=1)

    def mean(self, x, axes):
        return x.mean(dim=axes, keepdim=True)

    def sum(self, x, axes):
        return x.sum(dim=axes)

    def matmul(self, x, y):
        return torch.matmul(x, y)

    def sqrt(self, x):
        return torch.sqrt(x)

    def clip(self, x, lo, hi):
        return torch.clamp(x, lo, hi)

    def minimum(self, x, value):
        return torch.clamp(x, max=value)

    def maximum(self, x, value):
        return torch.clamp(x, min=value)

    def stop_gradient(self, x):
        return x.detach()

    def ones_like(self, x):
        return torch.ones_like(x)


OPS = _TorchOps()


def ddp_global_mean(x: torch.Tensor) -> torch.Tensor:
    """The ``global_mean`` hook under DDP: the mean over the ranks of a batch mean over each rank's equal share of
    the global batch, so the weights equal the one-process (and JAX) ones. Detached: only weights use it."""
    out = x.detach().clone()
    torch.distributed.all_reduce(out)
    return out / torch.distributed.get_world_size()

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
