"""The fix on a CPU in about a quarter of an hour: tiny pi0 policies trained with each loss strategy on scripted-expert
demonstrations of a mobile manipulator (R1Pro's action semantics: base velocities, absolute arm joints, gripper),
then run closed loop on held-out layouts, in one report.

    python scripts/demo.py                               # original vs per_group, one seed, mobile manipulator
    python scripts/demo.py --seeds 0 1 2                 # the comparison with seed spreads
    python scripts/demo.py --sim.suite metaworld         # Meta-World's fixed-base arm (the control without a base)
    python scripts/demo.py --sim.strategies original per_group masked adaptive

1. Writes the expert dataset when absent (``--sim.dataset-root``; 20 demos per task, each drives the base to the
   object, then lifts or touches it).
2. Computes norm stats; trains one tiny model per strategy and seed (everything but the loss weighting identical).
3. Runs every checkpoint on the same held-out layouts, scoring navigation, manipulation and overall success with
   Wilson intervals, and the arm activity ratio against the expert (below 1: the arm stagnates; above: jitters).
4. Writes ``report.md`` / ``report.json`` and plots under ``--output-dir``.

Nothing is tuned for a strategy to win: the data and seeds are fixed in advance, every seed is reported, and a
difference inside the seed spread is reported as not resolved. The offline comparison on the miniature B1K
dataset is ``benchmarks/mini_b1k_strategies.py``. The work is done by ``openpi.experiments.sim_demo``.
"""

import logging

import tyro

from openpi.experiments import sim_demo
from openpi.shared import cli
from openpi.training import run_utils

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", force=True)
    cli.run_main(lambda: sim_demo.main(tyro.cli(sim_demo.DemoArgs, description=__doc__)),
                 user_errors=run_utils.RUN_ERRORS)
