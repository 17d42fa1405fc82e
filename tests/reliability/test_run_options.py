"""Run options that cannot work (issue 25): ``--keep-period 0`` (the first save failed, leaving a temporary
checkpoint) and a zero or negative learning rate (trained silently). Both trainers stop before anything is written."""

import pytest

from openpi.training import config as _config
from openpi.training import jax_trainer
from openpi.training import pytorch_trainer

BAD_OPTIONS = {
    "keep_period_0": (["--keep-period=0"], "--keep-period=0 must be a positive number of steps"),
    "zero_lr": (["--lr-schedule.peak-lr=0"], "--lr-schedule.peak-lr=0.0 must be a positive number"),
    "negative_lr": (["--lr-schedule.peak-lr=-1e-4"], "--lr-schedule.peak-lr=-0.0001 must be a positive number"),
    "negative_final_lr": (["--lr-schedule.decay-lr=-1e-6"], "--lr-schedule.decay-lr=-1e-06 must be >= 0"),
}


@pytest.mark.parametrize("trainer", [jax_trainer, pytorch_trainer], ids=["jax", "pytorch"])
@pytest.mark.parametrize("option", BAD_OPTIONS)
def test_an_option_that_cannot_work_stops_before_anything_is_written(run, trainer, option):
    args, _ = run
    extra, words = BAD_OPTIONS[option]
    config = _config.cli([*args, *extra])
    with pytest.raises(ValueError) as info:
        trainer.train(config, progress=False)
    assert words in str(info.value)
    assert not config.checkpoint_dir.exists()
