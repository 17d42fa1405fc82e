"""Under DDP (2 gloo ranks, each with half the batch) the per-rank weighted losses equal the 1-process ones when the
trainer's ``global_mean`` hook is passed, and are each half's own without it."""

import pathlib
import subprocess
import sys

import numpy as np

WORKER = pathlib.Path(__file__).with_name("ddp_loss_worker.py")
sys.path.insert(0, str(WORKER.parent))
import ddp_loss_worker as worker  # noqa: E402


def test_batch_means_cover_the_global_batch(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            "--standalone",
            str(WORKER),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    err, actions = worker.inputs()
    for strategy in ("original", "per_group"):
        single = worker.loss(err, actions, strategy).numpy()
        ranks = np.concatenate([np.load(tmp_path / f"{strategy}_global_{r}.npy") for r in range(2)])
        np.testing.assert_allclose(ranks, single, rtol=1e-6, atol=1e-7)
        # Without the hook each half is normalized on its own, as in one process: no implicit all-reduce.
        local = np.concatenate(
            [worker.loss(err[2 * r : 2 * r + 2], actions[2 * r : 2 * r + 2], strategy).numpy() for r in range(2)]
        )
        assert np.abs(local - single).max() > 1e-4
        ranks_local = np.concatenate([np.load(tmp_path / f"{strategy}_local_{r}.npy") for r in range(2)])
        np.testing.assert_allclose(ranks_local, local, rtol=1e-6, atol=1e-7)
