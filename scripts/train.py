"""Train a pi0 / pi0.5 policy with JAX.

    python scripts/train.py --config-name=pi0_b1k_arm_focused --exp-name=arm
    python scripts/train.py pi05_b1k --exp-name=baseline            # openpi's positional form
    python scripts/train.py pi0_b1k_arm_focused --exp-name=arm --model.loss-weighting-strategy=original

Every config field can be overridden (``--help`` after a config name lists them). ``--resume`` continues
the experiment from its latest complete checkpoint; ``--resume-from=CONFIG/EXP`` starts from another
experiment's weights with a fresh optimizer (curriculum phase 2). Per-group losses (``loss/<group>``),
loss shares and weights go to wandb (offline without credentials) and to ``<checkpoint_dir>/metrics.jsonl``.
Several hosts: ``--coordinator-address=HOST:PORT --num-processes=N --process-id=I`` on each (or nothing
under SLURM / Open MPI, which JAX detects); see the README.
"""

from openpi.shared import compile_cache
from openpi.training import jax_trainer
from openpi.training import run_utils

if __name__ == "__main__":
    compile_cache.enable()  # a second run of the same model loads its compiled step from disk
    run_utils.training_main(jax_trainer.train, __doc__)
