"""Weight loaders over openpi's checkpoint layout (orbax ``params/`` with a ``{"params": tree}`` item)."""

import flax.nnx as nnx
import flax.traverse_util as traverse_util
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import orbax.checkpoint as ocp
import pytest

from openpi.models import model as _model
from openpi.models import pi0_config
from openpi.training import weight_loaders

DUMMY = {"paligemma_variant": "dummy", "action_expert_variant": "dummy", "vision_variant": "mu/16"}


def abstract_params(config: pi0_config.Pi0Config) -> dict:
    return nnx.state(nnx.eval_shape(config.create, jax.random.key(0)), nnx.Param).to_pure_dict()


def random_tree(abstract: dict, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: rng.standard_normal(s.shape, dtype=np.float32), abstract)


def save_openpi_params(path, tree: dict, *, with_value_key: bool = False) -> str:
    if with_value_key:
        tree = traverse_util.unflatten_dict({(*k, "value"): v for k, v in traverse_util.flatten_dict(tree).items()})
    with ocp.PyTreeCheckpointer() as checkpointer:
        checkpointer.save(path / "params", {"params": tree})
    return str(path / "params")


def flat(tree: dict) -> dict:
    return traverse_util.flatten_dict(tree, sep="/")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    config = pi0_config.Pi0Config(**DUMMY)
    tree = random_tree(abstract_params(config))
    return config, tree, save_openpi_params(tmp_path_factory.mktemp("ckpt"), tree)


def test_checkpoint_loads_back_bit_exact(saved):
    config, tree, path = saved
    loaded = weight_loaders.CheckpointWeightLoader(path).load(abstract_params(config))
    assert flat(loaded).keys() == flat(tree).keys()
    for key, value in flat(tree).items():
        assert flat(loaded)[key].dtype == np.float32
        np.testing.assert_array_equal(flat(loaded)[key], value, err_msg=key)


def test_trailing_value_keys_from_training_are_stripped(tmp_path):
    tree = {"a": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}, "b": np.ones(4, np.float32)}
    restored = _model.restore_params(save_openpi_params(tmp_path, tree, with_value_key=True))
    assert flat(restored).keys() == {"a/kernel", "b"}
    np.testing.assert_array_equal(restored["a"]["kernel"], tree["a"]["kernel"])


def test_restore_params_casts_and_returns_jax_arrays(saved):
    _, tree, path = saved
    restored = _model.restore_params(path, restore_type=jax.Array, dtype=jnp.bfloat16)
    leaf = restored["action_in_proj"]["kernel"]
    assert isinstance(leaf, jax.Array) and leaf.dtype == jnp.bfloat16
    np.testing.assert_array_equal(leaf, tree["action_in_proj"]["kernel"].astype(ml_dtypes.bfloat16))


def test_wrong_shape_fails_naming_the_leaf_and_both_shapes(tmp_path):
    config = pi0_config.Pi0Config(**DUMMY)
    tree = random_tree(abstract_params(config))
    tree["action_in_proj"]["kernel"] = np.zeros((31, 64), np.float32)
    path = save_openpi_params(tmp_path, tree)
    with pytest.raises(ValueError, match=r"action_in_proj/kernel: .* has \(31, 64\), model expects \(32, 64\)"):
        weight_loaders.CheckpointWeightLoader(path).load(abstract_params(config))


def test_lora_leaves_come_from_init_extra_leaves_are_dropped_dtype_follows_model(saved):
    config, tree, path = saved
    model_params = {k: jax.ShapeDtypeStruct(v.shape, jnp.bfloat16) for k, v in flat(abstract_params(config)).items()}
    # LoRA factors a base checkpoint never has (shapes of the dummy q_einsum with rank 2).
    init_lora = {
        "PaliGemma/llm/layers/attn/q_einsum/lora_a": np.full((4, 8, 64, 2), 7, np.float32),
        "PaliGemma/llm/layers/attn/q_einsum/lora_b": np.full((4, 8, 2, 16), 7, np.float32),
    }
    del model_params["action_out_proj/bias"]  # a checkpoint leaf the model does not have
    target = traverse_util.unflatten_dict(model_params | init_lora, sep="/")

    loaded = flat(weight_loaders.CheckpointWeightLoader(path).load(target))
    assert loaded.keys() == (model_params | init_lora).keys()
    for key, value in init_lora.items():
        np.testing.assert_array_equal(loaded[key], value)
    key = "PaliGemma/llm/layers/attn/q_einsum/w"
    assert loaded[key].dtype == jnp.bfloat16
    np.testing.assert_array_equal(loaded[key], flat(tree)[key].astype(ml_dtypes.bfloat16))


def test_missing_non_lora_leaf_is_an_error(saved):
    config, tree, _ = saved
    partial = dict(tree)
    del partial["action_out_proj"]
    with pytest.raises(ValueError, match="missing leaf action_out_proj/bias"):
        weight_loaders.merge_params(partial, abstract_params(config), missing_regex=".*lora.*")


def test_config_load_builds_a_model_with_the_params_and_rejects_bad_shapes(saved):
    config, tree, _ = saved
    model = config.load(tree)
    state = flat(nnx.state(model, nnx.Param).to_pure_dict())
    np.testing.assert_array_equal(state["action_out_proj/kernel"], tree["action_out_proj"]["kernel"])
    bad = jax.tree.map(lambda x: x, tree)
    bad["state_proj"]["bias"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"shape mismatch at state_proj/bias: checkpoint has \(3,\)"):
        config.load(bad)


def test_paligemma_npz_loader_replaces_only_paligemma(tmp_path):
    config = pi0_config.Pi0Config(**DUMMY)
    init = random_tree(abstract_params(config), seed=1)
    npz = {f"params/{k.removeprefix('PaliGemma/')}": v + 1 for k, v in flat(init).items() if k.startswith("PaliGemma/")}
    np.savez(tmp_path / "pt_224.npz", **npz)
    loaded = flat(weight_loaders.PaliGemmaWeightLoader(str(tmp_path / "pt_224.npz")).load(init))
    np.testing.assert_array_equal(loaded["PaliGemma/img/head/kernel"], flat(init)["PaliGemma/img/head/kernel"] + 1)
    np.testing.assert_array_equal(loaded["action_in_proj/kernel"], flat(init)["action_in_proj/kernel"])
    with pytest.raises(FileNotFoundError, match=r"missing/pt_224\.npz"):
        weight_loaders.PaliGemmaWeightLoader(str(tmp_path / "missing" / "pt_224.npz")).load(init)


def test_noop_loader_keeps_params():
    params = {"a": np.ones(2)}
    assert weight_loaders.NoOpWeightLoader().load(params) is params


def test_remote_paths_resolve_to_the_local_openpi_cache_only(saved, tmp_path, monkeypatch):
    _, tree, path = saved
    monkeypatch.setenv("OPENPI_DATA_HOME", str(tmp_path))
    url = "gs://openpi-assets/checkpoints/pi0_base/params"
    with pytest.raises(FileNotFoundError, match="openpi-assets/checkpoints/pi0_base/params"):
        weight_loaders.CheckpointWeightLoader(url).load({})
    local = tmp_path / "openpi-assets" / "checkpoints" / "pi0_base" / "params"
    local.parent.mkdir(parents=True)
    local.symlink_to(path)
    restored = _model.restore_params(weight_loaders.local_asset_path(url))
    np.testing.assert_array_equal(restored["state_proj"]["bias"], tree["state_proj"]["bias"])
