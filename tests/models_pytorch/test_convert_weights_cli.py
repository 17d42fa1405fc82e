"""``scripts/convert_weights.py``: both subcommands through the real CLI parser, on a tiny pi0 .npz."""

import pathlib
import runpy
import sys

import numpy as np
import pytest

from openpi.models_pytorch import weight_conversion as wc

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _pi0_fixtures import random_jax_params
from _pi0_fixtures import tiny_config

SCRIPT = pathlib.Path(__file__).parents[2] / "scripts" / "convert_weights.py"


def _run(monkeypatch, *argv: str) -> None:
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *argv])
    runpy.run_path(str(SCRIPT), run_name="__main__")


def test_help_lists_both_directions(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _run(monkeypatch, "--help")
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "jax-to-pytorch" in out and "pytorch-to-jax" in out


def test_cli_round_trip(monkeypatch, tmp_path, capsys):
    params = random_jax_params(tiny_config(False))
    wc.save_jax_params(params, tmp_path / "params.npz")
    _run(
        monkeypatch,
        "jax-to-pytorch",
        "--params",
        str(tmp_path / "params.npz"),
        "--output-dir",
        str(tmp_path / "torch"),
        "--dtype",
        "float32",
        "--action-horizon",
        "8",
    )
    assert "pi05=False" in capsys.readouterr().out
    assert (tmp_path / "torch" / "model.safetensors").exists() and (tmp_path / "torch" / "config.json").exists()
    _run(monkeypatch, "pytorch-to-jax", "--input-dir", str(tmp_path / "torch"), "--output", str(tmp_path / "back.npz"))
    back = wc.flatten_params(wc.load_jax_params(tmp_path / "back.npz"))
    for key, value in wc.flatten_params(params).items():
        np.testing.assert_array_equal(back[key], value, err_msg=key)
