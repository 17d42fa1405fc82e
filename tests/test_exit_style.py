"""Every command line ends a user error the same way: one ``error: ...`` line on stderr, exit status 2, no traceback
(``openpi.shared.cli``). Run as real subprocesses: a trainer script, a tool script and a ``python -m`` module."""

import os
import pathlib
import subprocess
import sys

import pytest

from openpi.shared import cli

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("command", "named"),
    [
        (["scripts/train.py", "pi0_b1k_demo", "--data.root={missing}", "--assets-base-dir={tmp}/assets",
          "--checkpoint-base-dir={tmp}/checkpoints"], "{missing}"),
        (["scripts/compute_norm_stats.py", "--root", "{missing}"], "{missing}"),
        (["-m", "openpi.datasets.mini_b1k", "--root", "{tmp}"], "{tmp}"),  # not empty: needs --overwrite
    ],
    ids=["train", "compute_norm_stats", "mini_b1k"],
)  # fmt: skip
def test_a_user_error_is_one_error_line_and_status_2(tmp_path, command, named):
    (tmp_path / "kept.txt").write_text("")
    fill = {"missing": tmp_path / "no_dataset", "tmp": tmp_path}
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "WANDB_MODE": "offline"}
    result = subprocess.run([sys.executable, *(a.format(**fill) for a in command)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert len(errors) == 1 and errors[0] == result.stderr.splitlines()[-1], result.stderr[-2000:]
    assert named.format(**fill) in errors[0]


def test_error_message_keeps_only_what_the_user_reads():
    assert cli.error_message(KeyError("Task 'x' is not in the tasks.")) == "Task 'x' is not in the tasks."
    worker = ("Caught ValueError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
              '  File "a.py", line 1, in f\nValueError: bad frame 3\n')  # fmt: skip
    assert cli.error_message(ValueError(worker)) == "bad frame 3"
