"""Loss strategies offline on the miniature B1K dataset: tiny models per strategy and seed, evaluated on held-out
episodes (per-group errors, arm activity ratio, gripper agreement, base error). It was the demo's second part; it
moved here because at any affordable length its tiny models predict jitter (arm activity ratio ~300 for every
strategy), so it shows no learning -- the mobile manipulator in ``scripts/demo.py`` is where the fix is measured.

    python benchmarks/mini_b1k_strategies.py                   # JAX, one seed
    python benchmarks/mini_b1k_strategies.py --seeds 0 1 --steps 800
    python benchmarks/mini_b1k_strategies.py --framework pytorch

Writes report.md, report.json and plots under ``--output-dir`` (the work is ``openpi.experiments.b1k_demo``).
"""

import logging

import tyro

from openpi.experiments import b1k_demo
from openpi.shared import cli
from openpi.training import run_utils

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", force=True)
    cli.run_main(lambda: b1k_demo.main(tyro.cli(b1k_demo.Args, description=__doc__)), user_errors=run_utils.RUN_ERRORS)
