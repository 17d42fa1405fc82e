"""The whole fix on a CPU in minutes: tiny policies trained with each loss strategy, measured closed loop in a
real simulator and offline on the miniature B1K dataset, in one report.

    python scripts/demo.py                       # JAX, defaults below
    python scripts/demo.py --framework pytorch   # the PyTorch twin (B1K part; the simulator part is JAX)
    python scripts/demo.py --seeds 0 1 2         # the full comparison
    python scripts/demo.py --sim.no-enabled      # the B1K part only

Closed loop first (as ``demo_sim.py``): scripted-expert Meta-World demonstrations, one tiny pi0 per strategy and
seed, success on held-out layouts per task with Wilson intervals (``--sim.*`` options). Then the B1K part:
1. Writes the miniature B1K dataset (``openpi.datasets.mini_b1k``) to ``--dataset-root`` if it is absent.
   Its episodes mix navigation segments (base commands of 0.35–0.75, arms still) and manipulation segments
   (base still, arm joints moving 0.01–0.3 rad per chunk, grippers switching between ±1), with the scales of
   the real data, so the mechanism behind arm stagnation is present: in normalized units the base moves in
   large steps and the arms in small ones, and the ``original`` time weights follow the large steps.
2. Holds out the last ``--heldout-per-task`` episodes of every task; computes norm stats on the rest.
3. Trains one tiny model per strategy and seed: ``original`` (the B1K baseline, config ``pi05_b1k_demo``),
   ``per_group`` (``pi0_b1k_arm_focused_demo``) and ``uniform`` (``pi0_b1k_uniform_demo``). Everything but
   the loss weighting is identical. Runs go to offline wandb, grouped by seed and tagged by strategy.
4. Evaluates every checkpoint on the held-out episodes (as ``scripts/eval_policy.py`` does).
5. Writes ``report.md`` (per strategy: mean ± std over seeds, or the value and n=1 for one seed, of the
   per-group errors, arm activity ratio, gripper agreement, base error), ``report.json`` and PNG plots (per-group training loss; predicted vs
   ground-truth arm trajectories) under ``--output-dir``.

Nothing is tuned for a strategy to win: the data and seeds are fixed in advance, every seed is reported, and
the report states what was measured, whichever way it comes out. The work is done by ``openpi.experiments``
(``b1k_demo``, ``sim_demo``); this is its command line.
"""

import logging

import tyro

from openpi.experiments import b1k_demo
from openpi.shared import cli
from openpi.training import run_utils

Args = b1k_demo.Args
main = b1k_demo.main

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", force=True)
    cli.run_main(lambda: main(tyro.cli(Args, description=__doc__)), user_errors=run_utils.RUN_ERRORS)
