"""The JAX model's parameter trees are exactly openpi's (names, shapes, dtypes), read from the reference files."""

import json
import pathlib

import flax.nnx as nnx
import flax.traverse_util as traverse_util
import jax
import pytest

from openpi.models import pi0_config

REFERENCE_DIR = pathlib.Path("/work/shared/reference/openpi_param_trees")
REFERENCES = ["pi0", "pi05", "pi0_lora", "pi05_lora", "pi0_dummy", "pi05_dummy"]


def _abstract_params(config: pi0_config.Pi0Config) -> dict[str, jax.ShapeDtypeStruct]:
    model = nnx.eval_shape(config.create, jax.random.key(0))
    return traverse_util.flatten_dict(nnx.state(model, nnx.Param).to_pure_dict(), sep="/")


@pytest.mark.parametrize("name", REFERENCES)
def test_param_tree_matches_openpi(name):
    reference = json.loads((REFERENCE_DIR / f"{name}.json").read_text())
    config = pi0_config.Pi0Config(**reference["config"])
    params = _abstract_params(config)

    expected = reference["params"]
    assert sorted(set(expected) - set(params)) == [], "leaves missing from the model"
    assert sorted(set(params) - set(expected)) == [], "leaves the checkpoint does not have"
    for key, spec in expected.items():
        assert list(params[key].shape) == spec["shape"], key
        assert str(params[key].dtype) == spec["dtype"], key
    assert len(params) == reference["num_leaves"]
    assert sum(p.size for p in params.values()) == reference["num_params"]


@pytest.mark.parametrize(
    ("paligemma", "expert", "num_frozen"),
    [("gemma_2b_lora", "gemma_300m", 9), ("gemma_2b", "gemma_300m_lora", 8), ("gemma_2b_lora", "gemma_300m_lora", 17)],
)
def test_lora_freeze_filter_freezes_base_llm_weights(paligemma, expert, num_frozen):
    config = pi0_config.Pi0Config(paligemma_variant=paligemma, action_expert_variant=expert)
    model = nnx.eval_shape(config.create, jax.random.key(0))
    frozen = traverse_util.flatten_dict(nnx.state(model, config.get_freeze_filter()).to_pure_dict(), sep="/")
    assert len(frozen) == num_frozen
    assert all("/llm/" in key and "lora" not in key for key in frozen)
    expert_keys = [key for key in frozen if "_1" in key]
    # Only the adapted expert's base weights are frozen: the action expert's carry the suffix ``_1``.
    assert len(expert_keys) == {9: 0, 8: 8, 17: 8}[num_frozen]


def test_no_lora_freezes_nothing():
    assert pi0_config.Pi0Config().get_freeze_filter() is nnx.Nothing


def test_unknown_variants_fail_early_naming_the_field():
    with pytest.raises(ValueError, match="paligemma_variant='gemma_7b'"):
        pi0_config.Pi0Config(paligemma_variant="gemma_7b")
    with pytest.raises(ValueError, match="Unknown SigLIP variant 'XXL/14'"):
        pi0_config.Pi0Config(vision_variant="XXL/14")
    with pytest.raises(ValueError, match="multiple of the patch size 14"):
        pi0_config.Pi0Config(image_resolution=(100, 100))
    with pytest.raises(ValueError, match="same depth"):
        pi0_config.Pi0Config(paligemma_variant="dummy", action_expert_variant="gemma_300m")


@pytest.mark.parametrize("pi05", [False, True])
def test_full_size_model_traces_loss_and_sampling(pi05):
    """openpi's real sizes (bfloat16, So400m/14 at 224x224) fit together; traced only, nothing is allocated."""
    config = pi0_config.Pi0Config(pi05=pi05)
    graphdef, state = nnx.split(nnx.eval_shape(config.create, jax.random.key(0)))
    obs, actions = config.inputs_spec(batch_size=2)

    def loss(state, obs, actions):
        return nnx.merge(graphdef, state).compute_loss_and_metrics(jax.random.key(0), obs, actions, train=True)

    def sample(state, obs):
        return nnx.merge(graphdef, state).sample_actions(jax.random.key(0), obs)

    assert jax.eval_shape(loss, state, obs, actions)[0].shape == (2, 50)
    assert jax.eval_shape(sample, state, obs).shape == (2, 50, 32)
