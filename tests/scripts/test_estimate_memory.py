"""``scripts/estimate_memory.py`` and ``openpi.training.memory``: the parameter, trainable, optimizer and FSDP figures
against independent computations (a really initialised model, AdamW's two float32 moments, the path rule of
LoRA freezing), and the command line. Activations are counted analytically here (compiling takes minutes on a
busy CPU); ``benchmarks/memory_estimate.py`` checks the XLA figures against a measured peak."""

import math
import re
import sys

import flax.nnx as nnx
import jax
import numpy as np
import pytest

from openpi.training import config as _config
from openpi.training import memory

TINY = "metaworld_demo"  # 0.4 M parameters: really initialised in a second
LORA = ("--model.paligemma-variant", "gemma_2b_lora", "--model.action-expert-variant", "gemma_300m_lora")


def _estimate(name: str, overrides=(), **kwargs) -> memory.Estimate:
    return memory.estimate(_config.get_config(name, list(overrides)), activations="analytic", **kwargs)


def _path(path) -> str:
    return "/".join(str(p) for p in path)


def test_parameter_count_equals_the_initialised_model():
    config = _config.get_config(TINY)
    # One jitted init: eager initialisation compiles every small op on its own and takes twice as long.
    leaves = jax.tree.leaves(jax.jit(lambda key: nnx.state(config.model.create(key)).to_pure_dict())(jax.random.key(0)))
    result = _estimate(TINY)
    assert result.params.count == sum(np.asarray(x).size for x in leaves)
    assert result.params.bytes == sum(np.asarray(x).nbytes for x in leaves)
    assert result.params.by_dtype == {"float32": (result.params.count, result.params.bytes)}


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_optimizer_state_is_two_float32_moments_per_trainable_parameter(lora):
    overrides = LORA if lora else ()
    result = _estimate("pi05_b1k", overrides)
    # Trainable by openpi's rule, read from the paths: with both experts LoRA, every Gemma weight but the LoRA
    # factors is frozen; everything else (vision tower, projections) trains.
    model = nnx.eval_shape(lambda: _config.get_config("pi05_b1k", list(overrides)).model.create(jax.random.key(0)))
    frozen = [p for p, _ in nnx.to_flat_state(nnx.state(model)) if lora and "llm" in _path(p) and "lora" not in _path(p)]
    sizes = {_path(p): math.prod(v.value.shape) for p, v in nnx.to_flat_state(nnx.state(model))}
    trainable = sum(sizes.values()) - sum(sizes[_path(p)] for p in frozen)
    assert result.trainable.count == trainable
    assert result.grads.bytes == 4 * trainable
    float_bytes = result.opt_state.by_dtype["float32"][1]
    assert float_bytes == 2 * 4 * trainable  # AdamW: mu and nu, float32
    counters = {k: v for k, v in result.opt_state.by_dtype.items() if k != "float32"}
    assert sum(c for c, _ in counters.values()) <= 4  # step counters only (scalars)
    if lora:
        assert trainable < result.params.count / 5
        assert re.search(r"LoRA", memory.format_report(result))
    else:
        assert trainable == result.params.count


def test_fsdp_divides_the_sharded_parts_by_the_device_count():
    one = _estimate("pi05_b1k", batch_size=32, fsdp_devices=1)
    four = _estimate("pi05_b1k", batch_size=32, fsdp_devices=4)
    for part in ("params", "opt_state", "ema", "grads"):
        whole, split = getattr(one, part), getattr(four, part)
        assert whole.per_device == whole.bytes
        # Large leaves are split 4 ways; leaves under 4096 elements (norm scales, biases) stay whole.
        assert whole.bytes / 4 <= split.per_device <= whole.bytes / 4 * 1.001, part
    assert four.state_per_device == pytest.approx(one.state_per_device / 4, rel=1e-3)
    # The batch is split too: 4 devices with 32 samples each hold the activations of 8.
    assert four.activations.train_remat == _estimate("pi05_b1k", batch_size=8).activations.train_remat
    assert four.gathered_layer > 0 and one.gathered_layer == 0
    assert four.train_peak() < one.train_peak() / 3


def test_sharded_bytes_keep_small_and_indivisible_leaves_whole():
    tree = {
        "big": jax.ShapeDtypeStruct((64, 128), np.float32),  # split along 128
        "small": jax.ShapeDtypeStruct((8, 8), np.float32),  # under 4096 elements: replicated
        "odd": jax.ShapeDtypeStruct((67, 71), np.float32),  # no dim divisible by 4: replicated
    }
    assert memory.sharded_bytes(tree, 4) == 64 * 128 * 4 // 4 + 8 * 8 * 4 + 67 * 71 * 4
    assert memory.sharded_bytes(tree, 1) == (64 * 128 + 8 * 8 + 67 * 71) * 4


def test_remat_saves_activations_and_they_grow_with_the_batch():
    small, large = _estimate("pi05_b1k", batch_size=4), _estimate("pi05_b1k", batch_size=8)
    assert large.activations.train_remat == 2 * small.activations.train_remat
    assert small.activations.train_remat < small.activations.train_no_remat / 4
    assert small.inference_params["bfloat16"] * 2 == small.inference_params["float32"]


def test_cli_prints_every_section(load_script, monkeypatch, capsys):
    script = load_script("estimate_memory")
    monkeypatch.setattr(sys, "argv", ["estimate_memory.py", "--config-name", TINY, "--activations", "analytic",
                                      "--batch-size", "4", "--fsdp-devices", "2", "--model.action-horizon", "5"])
    script.main()
    out = capsys.readouterr().out
    for section in ("Parameters", "Trainable parameters", "Optimizer state", "EMA", "Gradients",
                    "Activations per device (batch 2", "with remat", "without remat", "Peak per device",
                    "training, remat", "inference, bfloat16 params"):
        assert section in out, section


@pytest.mark.parametrize("argv", [["--config-name", "pi05_bk1"], ["--config-name", TINY, "--batch-size", "3",
                                                                  "--fsdp-devices", "2"]])
def test_cli_bad_input_is_one_error_line(load_script, monkeypatch, capsys, argv):
    script = load_script("estimate_memory")
    monkeypatch.setattr(sys, "argv", ["estimate_memory.py", *argv, "--activations", "analytic"])
    with pytest.raises(SystemExit) as exit_info:
        script.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
