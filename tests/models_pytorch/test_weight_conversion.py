"""Conversion on openpi's real parameter trees (shapes only, no memory) and the full-size PyTorch state dicts."""

import json
import pathlib
import re

import flax.nnx as nnx
import jax
import numpy as np
import pytest
import torch

from openpi.models import pi0_config
from openpi.models_pytorch import pi0_pytorch
from openpi.models_pytorch import weight_conversion as wc

REFERENCE = pathlib.Path("/work/shared/reference")
TREES = ["pi0", "pi05", "pi0_lora", "pi05_lora", "pi0_dummy", "pi05_dummy"]
pytestmark = pytest.mark.skipif(not REFERENCE.exists(), reason="openpi reference trees not available")


def _reference_tree(name: str) -> dict[str, jax.ShapeDtypeStruct]:
    params = json.loads((REFERENCE / "openpi_param_trees" / f"{name}.json").read_text())["params"]
    return {k: jax.ShapeDtypeStruct(tuple(v["shape"]), v["dtype"]) for k, v in params.items()}


def _meta_model(config: pi0_config.Pi0Config) -> pi0_pytorch.PI0Pytorch:
    with torch.device("meta"):
        return pi0_pytorch.PI0Pytorch(config)


@pytest.mark.parametrize("name", ["pi0", "pi05"])
def test_full_size_state_dict_matches_openpi(name):
    """Key set, shapes and (bfloat16 model) dtypes equal openpi's PyTorch checkpoints; the LM head is tied."""
    reference = json.loads((REFERENCE / "openpi_torch_keys" / f"torch_keys_{name}.json").read_text())
    model = _meta_model(pi0_config.Pi0Config(pi05=name == "pi05"))
    state_dict = model.state_dict()
    assert set(state_dict) == set(reference["params"])
    for key, expected in reference["params"].items():
        assert list(state_dict[key].shape) == expected["shape"], key
        assert str(state_dict[key].dtype).removeprefix("torch.") == expected["dtype"], key
    for first, second in reference["tied_keys"]:
        assert model.get_parameter(first) is model.get_parameter(second)


@pytest.mark.parametrize("name", TREES)
def test_reference_trees_convert_both_ways(name):
    """Every openpi tree (incl. LoRA and dummy) is detected from its leaves, maps onto exactly the PyTorch model's
    keys and shapes, and maps back onto exactly the JAX tree."""
    tree = _reference_tree(name)
    expected = json.loads((REFERENCE / "openpi_param_trees" / f"{name}.json").read_text())["config"]
    shapes, spec = wc.jax_to_torch_shapes(tree)
    assert spec.pi05 == expected["pi05"]
    assert (spec.paligemma_variant, spec.action_expert_variant) == (
        expected["paligemma_variant"],
        expected["action_expert_variant"],
    )
    assert (spec.vision_variant, spec.image_resolution, spec.action_dim) == ("So400m/14", (224, 224), 32)
    model_state = _meta_model(wc.pi0_config(spec)).state_dict()
    assert set(model_state) - set(shapes) == {wc.TIED_LM_HEAD, wc.EXPERT_LM_HEAD}
    for key, value in shapes.items():
        assert tuple(model_state[key].shape) == value.shape, key
    back, back_spec = wc.torch_to_jax_shapes(shapes)
    assert back_spec == spec
    flat = wc.flatten_params(back)
    assert set(flat) == set(tree)
    for key, value in tree.items():
        assert flat[key].shape == value.shape, key


def test_key_mapping_equals_openpi_converter():
    """The (JAX leaf, PyTorch key) pairs of pi0.5 are exactly those of openpi's own converter."""
    reference = json.loads((REFERENCE / "openpi_torch_keys" / "jax_to_torch_map_pi05.json").read_text())
    expected = {(m["jax"], m["torch"]) for m in reference["mapping"]}
    _, spec = wc.jax_to_torch_shapes(_reference_tree("pi05"))
    assert set(wc.key_mapping(spec)) == expected


def test_detection_reads_the_tree_not_the_name():
    """A pi0.5 tree under a pi0-looking name is pi0.5, and an unknown tree fails with a message naming why."""
    tree = {f"params/{k}/value": v for k, v in _reference_tree("pi05_dummy").items()}  # training-written layout
    assert wc.detect_jax(wc.flatten_params(tree)).pi05
    without_heads = {k: v for k, v in _reference_tree("pi0_dummy").items() if not k.startswith("state_proj")}
    with pytest.raises(ValueError, match="neither 'time_mlp_in'"):
        wc.detect_jax(without_heads)
    odd = dict(_reference_tree("pi0_dummy"))
    odd["PaliGemma/llm/layers/mlp/linear"] = jax.ShapeDtypeStruct((4, 100, 64), np.float32)
    with pytest.raises(ValueError, match="mlp_dim 100"):
        wc.detect_jax(odd)


def test_unknown_leaves_are_named():
    tree = dict(_reference_tree("pi0_dummy"))
    tree["PaliGemma/llm/extra/w"] = jax.ShapeDtypeStruct((3,), np.float32)
    with pytest.raises(ValueError, match=re.escape("PaliGemma/llm/extra/w")):
        wc.jax_to_torch_shapes(tree)


@pytest.mark.parametrize("vision", ["B/16", "S/16", "Ti/16", "mu/16"])
def test_vision_variants_convert(vision):
    """Each SigLIP size: the JAX model's tree (shape-only) is detected and maps onto the PyTorch model exactly."""
    config = pi0_config.Pi0Config(
        paligemma_variant="dummy", action_expert_variant="dummy", vision_variant=vision, pi05=True
    )
    tree = nnx.state(nnx.eval_shape(lambda: config.create(jax.random.key(0)))).to_pure_dict()
    shapes, spec = wc.jax_to_torch_shapes(tree)
    assert (spec.vision_variant, spec.image_resolution) == (vision, (224, 224))
    model_state = _meta_model(config).state_dict()
    assert set(model_state) - set(shapes) == {wc.TIED_LM_HEAD, wc.EXPERT_LM_HEAD}
    for key, value in shapes.items():
        assert tuple(model_state[key].shape) == value.shape, key


def test_small_vocab_converts_and_is_detected():
    """A tiny model's token table sized for the offline tokenizer (vocab_size=512): both frameworks build it,
    the converter reads the size from the tree, and every PyTorch tensor (LM heads included) has the JAX shape."""
    config = pi0_config.Pi0Config(
        paligemma_variant="dummy", action_expert_variant="dummy", vision_variant="mu/16", image_resolution=(32, 32),
        vocab_size=512,
    )
    tree = nnx.state(nnx.eval_shape(lambda: config.create(jax.random.key(0)))).to_pure_dict()
    shapes, spec = wc.jax_to_torch_shapes(tree)
    assert spec.vocab_size == 512 and shapes[wc.EMBED_TOKENS].shape == (512, 64)
    model_state = _meta_model(config).state_dict()
    assert tuple(model_state[wc.TIED_LM_HEAD].shape) == tuple(model_state[wc.EXPERT_LM_HEAD].shape) == (512, 64)
    for key, value in shapes.items():
        assert tuple(model_state[key].shape) == value.shape, key
    with pytest.raises(ValueError, match="vocab_size"):
        pi0_config.Pi0Config(vocab_size=0)
