"""Training runs side by side, from their metrics.jsonl (for users without a wandb account): per-group training
loss, in-training validation (eval_policy's metrics, val/...) and closed-loop success (sim/...), one panel per
metric and one line per run, as a PNG.

    python scripts/compare_runs.py checkpoints/pi0_b1k_arm_focused/s0 checkpoints/pi05_b1k/s0 --output cmp.png

The work is done by ``openpi.experiments.compare``; this is its command line.
"""

import tyro

from openpi.experiments import compare
from openpi.shared import cli

if __name__ == "__main__":
    cli.run_main(lambda: compare.main(tyro.cli(compare.Args, description=__doc__)))
