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

from openpi.training import pytorch_trainer
from openpi.training import run_utils

if __name__ == "__main__":
    run_utils.training_main(pytorch_trainer.train, __doc__)
