"""Offline evaluation of a trained policy on held-out episodes: per-group error (normalized and raw),
arm activity ratio, gripper open/close agreement and base velocity error, per task and overall.

    python scripts/eval_policy.py --config-name pi0_b1k_arm_focused --checkpoint checkpoints/.../30000 \
        --tasks turning_on_radio,picking_up_trash --num-episodes 5

Writes ``eval.json``, ``eval.md`` and ``eval_eval.png`` under ``--output-dir``. Held-out episodes: per task,
the last ``--num-episodes`` episodes not in the config's training episode list. Normalized errors use the
checkpoint's norm stats (unless ``--norm-stats-dir`` is given). The evaluation: ``openpi.experiments.evaluation``;
metrics: ``openpi.analysis.evaluation``.
"""

from openpi.analysis import sources
from openpi.experiments import evaluation

Args = evaluation.OfflineArgs
run = evaluation.offline


def main() -> None:
    sources.tool_main(Args, run, __doc__)


if __name__ == "__main__":
    main()
