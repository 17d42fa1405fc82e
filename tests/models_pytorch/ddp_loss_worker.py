"""Run under torchrun by test_loss_utils_ddp.py: each rank saves its weighted losses for its half of the batch."""

import os
import sys

import numpy as np
import torch
import torch.distributed as dist

from openpi.models_pytorch import pi0_loss_utils_pytorch as tlu
from openpi.policies import b1k_policy

GROUPS = b1k_policy.R1PRO_ACTION_GROUPS_COMBINED_GRIPPERS
WEIGHTS = {"base": 1.0, "trunk": 2.0, "left_arm": 3.0, "right_arm": 3.0, "grippers": 2.5, "padding": 0.0}


def inputs():
    rng = np.random.default_rng(0)
    err = rng.random((4, 50, 32), dtype=np.float32)
    # Step sizes differ per sample (and stay below the cap), so each half has its own mean weight.
    scale = 0.01 * (1 + np.arange(4))[:, None, None]
    actions = np.cumsum(scale * rng.normal(size=(4, 50, 32)), axis=1).astype(np.float32)
    return err, actions


def loss(err, actions, strategy, global_mean=None):
    kwargs = dict(action_groups=GROUPS, group_weights=WEIGHTS) if strategy == "per_group" else {}
    return tlu.compute_weighted_loss(torch.tensor(err), torch.tensor(actions), weighting_strategy=strategy,
                                     global_mean=global_mean, **kwargs)


if __name__ == "__main__":
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    err, actions = inputs()
    half = slice(2 * rank, 2 * rank + 2)
    for strategy in ("original", "per_group"):
        # With the trainer's hook, and without it (no all-reduce happens behind the caller's back).
        for name, hook in (("global", tlu.ddp_global_mean), ("local", None)):
            out = loss(err[half], actions[half], strategy, hook).numpy()
            np.save(os.path.join(sys.argv[1], f"{strategy}_{name}_{rank}.npy"), out)
    dist.destroy_process_group()
