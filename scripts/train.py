"""Train a pi0 / pi0.5 policy with JAX.

    python scripts/train.py --config-name=pi0_b1k_arm_focused --exp-name=arm
    python scripts/train.py pi05_b1k --exp-name=baseline            # openpi's positional form
    python scripts/train.py pi0_b1k_arm_focused --exp-name=arm --model.loss-weighting-strategy=original

Every config field can be overridden (``--help`` after a config name lists them). ``--resume`` continues
the experiment from its latest complete checkpoint; ``--resume-from=CONFIG/EXP`` starts from another
experiment's weights with a fresh optimizer (curriculum phase 2). Per-group losses (``loss/<group>``),
loss shares and weights go to wandb (offline without credentials) and to ``<checkpoint_dir>/metrics.jsonl``.
"""

import logging
import sys

from openpi.training import config as _config
from openpi.training import jax_trainer
from openpi.training import run_utils


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S", force=True
    )
    config = _config.cli(description=__doc__)
    try:
        jax_trainer.train(config)
    except run_utils.NonFiniteLossError as error:
        logging.error("%s", error)
        sys.exit(1)


if __name__ == "__main__":
    main()
