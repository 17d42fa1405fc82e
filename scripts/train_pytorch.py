"""Train a pi0 / pi0.5 policy with PyTorch, in one process or under torchrun (DDP).

    python scripts/train_pytorch.py --config-name=pi0_b1k_arm_focused --exp-name=arm
    python scripts/train_pytorch.py pi05_b1k --exp-name=baseline          # openpi's positional form
    torchrun --standalone --nproc_per_node=2 scripts/train_pytorch.py pi0_b1k_arm_focused --exp-name=arm

Every config field can be overridden (``--help`` after a config name lists them); ``--batch-size`` is the
global batch, split evenly over the processes (gloo on CPU, nccl on GPU). ``--resume`` continues the experiment
from its latest complete checkpoint (model, optimizer, step, data position, the same wandb run);
``--resume-from=CONFIG/EXP`` starts from another experiment's weights with a fresh optimizer (curriculum
phase 2). Checkpoints: ``<checkpoint_dir>/<step>/{model.safetensors, optimizer.pt, metadata.pt, assets/}``.
Per-group losses (``loss/<group>``), loss shares and weights go to wandb (offline without credentials) and to
``<checkpoint_dir>/metrics.jsonl``. ``--pytorch-compile`` wraps the model's loss in ``torch.compile``.
"""

import logging
import sys

from openpi.training import config as _config
from openpi.training import pytorch_trainer
from openpi.training import run_utils


def main() -> None:
    # force: an imported library may already have configured the root logger, which would hide our INFO lines.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S", force=True
    )
    config = _config.cli(description=__doc__)
    try:
        pytorch_trainer.train(config)
    except run_utils.NonFiniteLossError as error:
        logging.error("%s", error)
        sys.exit(1)


if __name__ == "__main__":
    main()
