"""Smoke demo (until the full end-to-end demo lands): how each strategy spreads the loss over R1Pro's groups.

Builds a synthetic normalized chunk batch in which the base moves a lot and the arms little (the B1K
situation), sets an equal per-dim error, and prints every group's share of the weighted loss under each
strategy. Under ``original`` the time weights follow the base's large steps; ``per_group`` shifts the
share to the arms and grippers.
"""

import dataclasses

import jax.numpy as jnp
import numpy as np
import tyro

from openpi.models import pi0_loss_utils
from openpi.policies import b1k_policy
from openpi.shared import loss_weighting as lw

ARM_FOCUSED_WEIGHTS = {"base": 1.0, "trunk": 2.0, "left_arm": 3.0, "right_arm": 3.0, "grippers": 2.5, "padding": 0.0}


@dataclasses.dataclass(frozen=True)
class Args:
    batch: int = 32
    horizon: int = 50
    seed: int = 0


def _synthetic_chunks(args: Args) -> np.ndarray:
    rng = np.random.default_rng(args.seed)
    actions = np.zeros((args.batch, args.horizon, 32), np.float32)
    actions[..., 0:3] = np.cumsum(rng.normal(scale=0.3, size=(args.batch, args.horizon, 3)), axis=1)  # base
    arms = np.r_[7:14, 15:22]
    actions[..., arms] = np.cumsum(rng.normal(scale=0.02, size=(args.batch, args.horizon, 14)), axis=1)
    actions[..., [14, 22]] = np.sign(rng.normal(size=(args.batch, 1, 2)))  # grippers mostly hold
    return actions


def main(args: Args) -> None:
    actions = jnp.asarray(_synthetic_chunks(args))
    err = jnp.ones_like(actions)  # equal error everywhere: shares then show the weighting alone
    groups = b1k_policy.R1PRO_ACTION_GROUPS_COMBINED_GRIPPERS
    names = [n for n in groups if n != "padding"]
    print("Share of the weighted loss per group (equal per-dim error), synthetic navigation-heavy chunks")
    print(f"{'strategy':<15}" + "".join(f"{n:>11}" for n in names))
    for strategy in lw.STRATEGIES:
        weights = ARM_FOCUSED_WEIGHTS if strategy in ("per_group", "per_dimension") else None
        weighting = lw.LossWeighting.create(strategy, 32, action_groups=groups, group_weights=weights)
        _, metrics = pi0_loss_utils.weighted_loss_and_metrics(weighting, err, actions)
        print(f"{strategy:<15}" + "".join(f"{float(metrics[f'loss_share/{n}']):>11.3f}" for n in names))


if __name__ == "__main__":
    main(tyro.cli(Args))
