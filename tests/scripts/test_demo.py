"""A short demo run (``scripts/demo.py``'s library, ``openpi.experiments``): every number in its report comes from
the evaluation JSON of the run that wrote it."""

import importlib.util
import json
import pathlib
import re

import numpy as np
import pytest

from openpi.experiments import b1k_demo
from openpi.experiments import report as _report
from openpi.experiments import runs
from openpi.experiments import sim_demo
from openpi.experiments import strategies
from openpi.training import config as _config


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    args = b1k_demo.Args(
        steps=4,
        seeds=(0, 1),
        strategies=("original", "per_group"),
        batch_size=4,
        output_dir=str(out / "report"),
        dataset_root=str(out / "mini"),
        num_tasks=1,
        episodes_per_task=3,
        frames_per_episode=120,
        eval_stride=40,
        sim=sim_demo.SimArgs(
            enabled=importlib.util.find_spec("metaworld") is not None,
            strategies=("per_group",),
            tasks=("reach-v3", "pick-place-v3"),
            episodes_per_task=1,
            steps=3,
            batch_size=4,
            eval_episodes=2,
            max_steps=10,
            dataset_root=str(out / "sim_data"),
        ),
    )
    result = b1k_demo.main(args)
    return args, result, out / "report"


def _eval(path):
    return json.loads(pathlib.Path(path).read_text())["overall"]


B1K_SECTION = "## Offline on the miniature B1K dataset"


def test_report_numbers_come_from_the_evaluation_json(demo_run):
    args, _, out = demo_run
    report = (out / "report.md").read_text().split(B1K_SECTION)[1]
    saved = json.loads((out / "report.json").read_text())
    for strategy in args.strategies:
        runs = saved["runs"][strategy]
        assert [r["seed"] for r in runs] == list(args.seeds)
        evals = [_eval(r["eval_json"]) for r in runs]
        # Every run's row quotes its own eval.json.
        for run, overall in zip(runs, evals, strict=True):
            row = f"| {strategy} | {run['seed']} | {overall['arm_activity_ratio']:.3f} | {overall['gripper_agreement']:.3f} |"
            assert row in report
        # The summary row is mean ± std over those files.
        ratios = [o["arm_activity_ratio"] for o in evals]
        left = [o["groups"]["left_arm"]["mse_normalized"] for o in evals]
        line = next(line for line in report.splitlines() if line.startswith(f"| {strategy} | ") and "±" in line)
        assert f"{np.mean(left):.3f} ± {np.std(left):.3f}" in line
        assert f"{np.mean(ratios):.3f} ± {np.std(ratios):.3f}" in line
        # The training-loss table quotes the last metrics.jsonl record of each run.
        metrics_files = [pathlib.Path(r["checkpoint"]).parent / "metrics.jsonl" for r in runs]
        last = [json.loads(f.read_text().splitlines()[-1]) for f in metrics_files]
        train_line = [line for line in report.splitlines() if line.startswith(f"| {strategy} | ") and "±" in line][1]
        arm = [m["loss/left_arm"] for m in last]
        assert f"{np.mean(arm):.3f} ± {np.std(arm):.3f}" in train_line


def test_report_has_plots_runs_and_held_out_split(demo_run):
    args, result, out = demo_run
    for name in ("loss_curves.png", "arm_trajectories.png"):
        assert (out / name).stat().st_size > 1000
    meta = result["meta"]
    assert meta["heldout_episodes"] and not set(meta["heldout_episodes"]) & set(meta["train_episodes"])
    for strategy in args.strategies:
        for run in result["runs"][strategy]:
            assert json.loads(pathlib.Path(run["eval_json"]).read_text())["episodes"] == meta["heldout_episodes"]
    sim_runs = len(args.sim.strategies) * len(args.seeds) if args.sim.enabled else 0
    assert len(list(out.glob("wandb/offline-run-*"))) == len(args.strategies) * len(args.seeds) + sim_runs
    assert re.search(r"Total time \d+ s", (out / "report.md").read_text())


def test_closed_loop_table_quotes_every_runs_eval_json(demo_run):
    args, result, out = demo_run
    if not args.sim.enabled:
        pytest.skip("needs the sim extra: pip install -e '.[sim]'")
    report = (out / "report.md").read_text().split(B1K_SECTION)[0]
    for strategy in args.sim.strategies:
        runs = result["sim"]["runs"][strategy]
        assert [r["seed"] for r in runs] == list(args.seeds)
        evals = [json.loads(pathlib.Path(r["eval_json"]).read_text())["tasks"] for r in runs]
        for run, tasks in zip(runs, evals, strict=True):
            row = f"| {strategy} | {run['seed']} | " + " | ".join(f"{tasks[t]['success_rate']:.2f}" for t in args.sim.tasks)
            assert row in report
            assert all(len(tasks[t]["episodes"]) == args.sim.eval_episodes for t in args.sim.tasks)
        summary_line = next(line for line in report.splitlines() if line.startswith(f"| {strategy} | ") and "[" in line)
        for task in args.sim.tasks:
            rates = [e[task]["success_rate"] for e in evals]
            assert f"{np.mean(rates):.2f} ± {np.std(rates):.2f}" in summary_line
    for name in ("sim_success.png", "sim_loss_curves.png"):
        assert (out / name).stat().st_size > 1000


def test_closed_loop_comparison_continues_from_finished_runs(demo_run, monkeypatch):
    args, result, out = demo_run
    if not args.sim.enabled:
        pytest.skip("needs the sim extra: pip install -e '.[sim]'")
    from openpi.sim import closed_loop
    from openpi.training import jax_trainer

    def refuse(*_args, **_kwargs):
        raise AssertionError("a finished run was repeated")

    monkeypatch.setattr(jax_trainer, "train", refuse)
    monkeypatch.setattr(closed_loop, "evaluate", refuse)
    again = sim_demo.run(args.sim, args.seeds, out)
    assert again["summary"] == result["sim"]["summary"]


def test_one_seed_cells_say_n1_instead_of_a_zero_spread():
    assert _report.spread(0.12345, 0.0, 1) == "0.123 (n=1)"
    assert _report.spread(0.12345, 0.01, 2, ".2f") == "0.12 ± 0.01"
    rows = {s: {"seeds": [0], "tasks": {"reach": {"mean": m, "std": 0.0}}} for s, m in (("a", 0.8), ("b", 0.2))}
    assert _report.verdict(rows, "reach") == "one seed, no spread"
    for row, m in zip(rows.values(), (0.8, 0.2), strict=True):
        row["seeds"], row["tasks"]["reach"]["std"] = [0, 1], 0.1 * m
    assert _report.verdict(rows, "reach") == "a best"


def test_run_configs_equal_the_command_lines_they_replace(tmp_path):
    """A run's config is built as an object; it equals what the same settings give on the command line."""
    schedule = runs.Schedule(steps=7, batch_size=5, log_interval=3, warmup_steps=2)
    data, episodes = tmp_path / "data", tmp_path / "train_episodes.json"
    for name in (*strategies.B1K.values(), *strategies.SIM.values()):
        built = runs.configure(_config.get_config(name), exp_name="e", seed=3, schedule=schedule, data_root=data,
                               output_dir=tmp_path, episodes_path=episodes, project_name="p", wandb=False)  # fmt: skip
        parsed = _config.cli([
            name, "--exp-name=e", "--seed=3", f"--data.root={data}", f"--data.episodes-path={episodes}",
            f"--assets-base-dir={tmp_path / 'assets'}", f"--checkpoint-base-dir={tmp_path / 'checkpoints'}",
            "--num-train-steps=7", "--save-interval=7", "--log-interval=3", "--lr-schedule.decay-steps=7",
            "--lr-schedule.warmup-steps=2", "--batch-size=5", "--project-name=p", "--no-wandb-enabled", "--overwrite",
        ])  # fmt: skip
        assert repr(built) == repr(parsed), name
