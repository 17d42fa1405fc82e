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
def b1k_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("b1k")
    args = b1k_demo.Args(
        steps=4,
        seeds=(0, 1),
        strategies=("per_group",),  # one strategy: the rows and spreads are per strategy, each checked alike
        batch_size=4,
        output_dir=str(out / "report"),
        dataset_root=str(out / "mini"),
        num_tasks=1,
        episodes_per_task=3,
        frames_per_episode=120,
        eval_stride=40,
    )
    result = b1k_demo.main(args)
    return args, result, out / "report"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """``scripts/demo.py``'s default suite (the mobile manipulator), at a few steps and episodes."""
    if importlib.util.find_spec("robosuite") is None:
        pytest.skip("needs the sim extra: make demo installs it")
    out = tmp_path_factory.mktemp("demo")
    args = sim_demo.DemoArgs(
        seeds=(0, 1),
        output_dir=str(out / "report"),
        sim=sim_demo.SimArgs(strategies=("per_group",), episodes_per_task=1, steps=3, batch_size=4,
                             eval_episodes=2, max_steps=10, dataset_root=str(out / "mobile_data")),
    )
    result = sim_demo.main(args)
    return args, result, out / "report"


def _eval(path):
    return json.loads(pathlib.Path(path).read_text())["overall"]


B1K_SECTION = "## Offline on the miniature B1K dataset"


def test_report_numbers_come_from_the_evaluation_json(b1k_run):
    args, _, out = b1k_run
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


def test_report_has_plots_runs_and_held_out_split(b1k_run):
    args, result, out = b1k_run
    for name in ("loss_curves.png", "arm_trajectories.png"):
        assert (out / name).stat().st_size > 1000
    meta = result["meta"]
    assert meta["heldout_episodes"] and not set(meta["heldout_episodes"]) & set(meta["train_episodes"])
    for strategy in args.strategies:
        for run in result["runs"][strategy]:
            assert json.loads(pathlib.Path(run["eval_json"]).read_text())["episodes"] == meta["heldout_episodes"]
    assert len(list(out.glob("wandb/offline-run-*"))) == len(args.strategies) * len(args.seeds)
    assert re.search(r"Total time \d+ s", (out / "report.md").read_text())


def test_closed_loop_table_quotes_every_runs_eval_json(demo_run):
    args, result, out = demo_run
    report = (out / "report.md").read_text()
    assert args.sim.suite == "mobile" and args.sim.tasks == ("lift", "touch")  # the demo's default suite
    for strategy in args.sim.strategies:
        runs = result["runs"][strategy]
        assert [r["seed"] for r in runs] == list(args.seeds)
        evals = [json.loads(pathlib.Path(r["eval_json"]).read_text())["tasks"] for r in runs]
        for run, tasks in zip(runs, evals, strict=True):
            row = f"| {strategy} | {run['seed']} | " + " | ".join(
                f"{tasks[t]['overall']['success_rate']:.2f}" for t in args.sim.tasks)
            assert row in report
            assert all(len(tasks[t]["episodes"]) == args.sim.eval_episodes for t in args.sim.tasks)
        summary_line = next(line for line in report.splitlines() if line.startswith(f"| {strategy} | ") and "[" in line)
        for task in args.sim.tasks:
            rates = [e[task]["overall"]["success_rate"] for e in evals]
            assert f"{np.mean(rates):.2f} ± {np.std(rates):.2f}" in summary_line
            navigation = [e[task]["navigation"]["success_rate"] for e in evals]
            # None where the expert moved no arm joint within the step limit (it drives first).
            activity = [e[task]["arm_activity_ratio"] for e in evals if e[task]["arm_activity_ratio"] is not None]
            failure_line = next(line for line in report.splitlines() if line.startswith(f"| {strategy} | {task} | "))
            assert f"{np.mean(navigation):.2f} ± {np.std(navigation):.2f}" in failure_line
            assert failure_line.endswith(f" {np.mean(activity):.2f} |" if activity else " - |")
    for name in ("sim_success.png", "sim_loss_curves.png"):
        assert (out / name).stat().st_size > 1000
    assert len(list(out.glob("wandb/offline-run-*"))) == len(args.sim.strategies) * len(args.seeds)


def test_closed_loop_comparison_continues_from_finished_runs(demo_run, monkeypatch):
    args, result, out = demo_run
    from openpi.sim import closed_loop
    from openpi.training import jax_trainer

    def refuse(*_args, **_kwargs):
        raise AssertionError("a finished run was repeated")

    monkeypatch.setattr(jax_trainer, "train", refuse)
    monkeypatch.setattr(closed_loop, "evaluate_mobile", refuse)
    again = sim_demo.run(args.sim, args.seeds, out)
    assert again["summary"] == result["summary"]


def test_meta_world_summary_is_the_eval_files_success_over_seeds(tmp_path):
    """The fixed-base suite's table: per seed the file's rate, mean ± std over seeds, the pooled Wilson interval."""
    outcomes = {0: [True, False, True, True], 1: [False, False, True, False]}
    records = []
    for seed, episodes in outcomes.items():
        successes = sum(episodes)
        path = tmp_path / f"eval{seed}.json"
        path.write_text(json.dumps({"tasks": {"reach-v3": {
            "success_rate": successes / len(episodes), "successes": successes,
            "episodes": [{"success": e} for e in episodes]}}}))
        records.append({"seed": seed, "eval_json": str(path), "metrics": [{"loss/arm": 0.5 + seed, "loss/gripper": 1.0}]})
    summary = _report.summarize_sim({"uniform": records}, ("reach-v3",), "metaworld")["uniform"]
    cell = summary["tasks"]["reach-v3"]
    assert cell["per_seed"] == [0.75, 0.25] and cell["mean"] == 0.5 and cell["std"] == 0.25
    assert cell["pooled"] == [4, 8]
    # Wilson 95% for 4/8 by hand: centre 0.5, half-width z*sqrt(1/32 + z^2/256) / (1 + z^2/8).
    z = 1.959963984540054
    half = z * np.sqrt(0.25 / 8 + z * z / 256) / (1 + z * z / 8)
    np.testing.assert_allclose(cell["wilson95"], [0.5 - half, 0.5 + half], rtol=1e-6)  # the code rounds z to 1.959964
    assert summary["train_loss"] == {"arm": [1.0, 0.5], "gripper": [1.0, 0.0]}


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
    for name in (*strategies.B1K.values(), *strategies.METAWORLD.values(), *strategies.MOBILE.values()):
        built = runs.configure(_config.get_config(name), exp_name="e", seed=3, schedule=schedule, data_root=data,
                               output_dir=tmp_path, episodes_path=episodes, project_name="p", wandb=False)  # fmt: skip
        parsed = _config.cli([
            name, "--exp-name=e", "--seed=3", f"--data.root={data}", f"--data.episodes-path={episodes}",
            f"--assets-base-dir={tmp_path / 'assets'}", f"--checkpoint-base-dir={tmp_path / 'checkpoints'}",
            "--num-train-steps=7", "--save-interval=7", "--log-interval=3", "--lr-schedule.decay-steps=7",
            "--lr-schedule.warmup-steps=2", "--batch-size=5", "--project-name=p", "--no-wandb-enabled", "--overwrite",
        ])  # fmt: skip
        assert repr(built) == repr(parsed), name
