"""The closed-loop part of the demo alone: tiny pi0 policies trained per loss strategy on scripted-expert
Meta-World demonstrations, then run in the simulator on held-out layouts (``scripts/demo.py`` runs it before
its B1K part; the work is ``openpi.experiments.sim_demo``).

Writes sim_report.md / sim_report.json and plots under ``--output-dir``. Example:
``python scripts/demo_sim.py --seeds 0 1 2 --sim.steps 1500 --sim.eval-episodes 10`` (an interrupted run
continues where it stopped when started again with the same ``--output-dir``).
"""

import dataclasses
import json
import logging
import os
import pathlib
from typing import Any

import tyro

from openpi.experiments import sim_demo
from openpi.shared import cli
from openpi.training import run_utils


@dataclasses.dataclass(frozen=True)
class Args:
    """The closed-loop comparison alone (``scripts/demo.py`` runs it before the B1K part)."""

    seeds: tuple[int, ...] = (0,)
    """One training run per strategy and seed."""
    output_dir: str = "demo_sim_output"
    """Checkpoints, evaluations, sim_report.md / .json and plots; runs already evaluated here are reused."""
    sim: sim_demo.SimArgs = dataclasses.field(default_factory=sim_demo.SimArgs)


def main(args: Args) -> dict[str, Any]:
    out = pathlib.Path(args.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ["WANDB_DIR"] = str(out)
    result = sim_demo.run(args.sim, args.seeds, out)
    report = "\n".join(sim_demo.write_report(args.sim, args.seeds, result, out))
    (out / "sim_report.md").write_text(report)
    (out / "sim_report.json").write_text(json.dumps({"args": dataclasses.asdict(args), **result}, indent=1))
    print(report)
    print(f"Report: {out / 'sim_report.md'}.")
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", force=True)
    cli.run_main(lambda: main(tyro.cli(Args, description=__doc__)), user_errors=run_utils.RUN_ERRORS)
