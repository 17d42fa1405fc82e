import json
import subprocess
import sys

import pytest

from openpi.experiments import compare

SCRIPT = compare.__file__.replace("src/openpi/experiments/compare.py", "scripts/compare_runs.py")


def _write(run_dir, rows):
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def two_runs(tmp_path):
    """Two fabricated runs: both log per-group losses; only the first validated and ran the simulator."""
    first = tmp_path / "cfg_a" / "s0"
    second = tmp_path / "cfg_b" / "s0"
    _write(first, [
        {"step": 10, "loss": 1.0, "loss/arm": 0.9, "loss/gripper": 0.5, "step_time": 0.1},
        {"step": 20, "loss": 0.8, "loss/arm": 0.7, "loss/gripper": 0.4, "val/mse_normalized/arm": 0.3,
         "val/arm_activity_ratio": 0.2, "val/seconds": 1.5, "sim/reach-v3/success": 0.5, "sim/seconds": 9.0},
    ])
    _write(second, [{"step": s, "loss": 1.0 / s, "loss/arm": 2.0 / s, "loss/gripper": 1.0 / s} for s in (5, 10, 15)])
    return first, second


def test_one_panel_per_metric_and_one_line_per_run(two_runs, tmp_path):
    out = tmp_path / "out" / "cmp.png"
    fig = compare.main(compare.Args(run_dirs=tuple(map(str, two_runs)), output=str(out)))
    assert out.stat().st_size > 1000
    panels = {ax.get_title(): ax for ax in fig.axes}
    # seconds and the overall loss are not panels
    assert list(panels) == ["loss/arm", "loss/gripper", "val/mse_normalized/arm", "val/arm_activity_ratio",
                            "sim/reach-v3/success"]
    lines = {title: {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()}
             for title, ax in panels.items()}
    assert lines["loss/arm"] == {"cfg_a/s0": ([10, 20], [0.9, 0.7]), "cfg_b/s0": ([5, 10, 15], [0.4, 0.2, 2.0 / 15])}
    assert lines["sim/reach-v3/success"] == {"cfg_a/s0": ([20], [0.5])}  # only the run that logged it


def test_a_directory_without_metrics_is_a_clear_error(two_runs, tmp_path):
    (tmp_path / "empty").mkdir()
    result = subprocess.run([sys.executable, SCRIPT, str(two_runs[0]), str(tmp_path / "empty"), "--output",
                             str(tmp_path / "x.png")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: {tmp_path / 'empty'} has no metrics.jsonl: give experiment directories "
                                     "a training run wrote (checkpoints/<config>/<exp>).")
    assert not (tmp_path / "x.png").exists()
