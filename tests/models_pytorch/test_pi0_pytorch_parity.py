"""PyTorch pi0 / pi0.5 against the JAX model, with weights converted from JAX: loss for every strategy, sampling,
and the bit-exact JAX → PyTorch → JAX round trip (in memory and through the files the CLI writes)."""

import pathlib
import sys

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from openpi.models import gemma as jax_gemma
from openpi.models_pytorch import pi0_pytorch
from openpi.models_pytorch import weight_conversion as wc
from openpi.shared import checkpoint_files

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import _pi0_fixtures
from _pi0_fixtures import batch
from _pi0_fixtures import observation
from _pi0_fixtures import random_jax_params
from _pi0_fixtures import tiny_config

one_torch_thread = _pi0_fixtures.one_torch_thread  # autouse fixture

STRATEGIES = ("original", "uniform", "per_dimension", "per_group")


@pytest.fixture(scope="module", params=[False, True], ids=["pi0", "pi05"])
def twins(request):
    """(config, JAX params, JAX model, PyTorch model with the converted params, batch)."""
    config = tiny_config(request.param)
    params = random_jax_params(config)
    jax_model = config.load(params)
    state_dict, spec = wc.jax_to_torch(params)
    assert spec.pi05 == config.pi05
    torch_model = pi0_pytorch.PI0Pytorch(config)
    wc.load_into(torch_model, state_dict)
    return config, params, jax_model, torch_model, batch(config)


@nnx.jit
def _jax_loss(model, obs, actions, noise, time):
    return model.compute_loss_and_metrics(jax.random.key(0), obs, actions, noise=noise, time=time)


def test_loss_matches_jax_for_every_strategy(twins):
    config, _, jax_model, torch_model, data = twins
    jax_obs, torch_obs = observation(data, "jax"), observation(data, "torch")
    for strategy in STRATEGIES:
        strategy_config = tiny_config(config.pi05, strategy)
        # Same weights, another loss weighting: swap the static description on both twins.
        jax_model.loss_weighting = strategy_config.loss_weighting
        torch_model.config = strategy_config
        jax_loss, jax_metrics = _jax_loss(
            jax_model, jax_obs, jnp.asarray(data["actions"]), jnp.asarray(data["noise"]), jnp.asarray(data["time"])
        )
        with torch.no_grad():
            torch_loss, torch_metrics = torch_model.compute_loss_and_metrics(
                torch_obs,
                torch.from_numpy(data["actions"]),
                noise=torch.from_numpy(data["noise"]),
                time=torch.from_numpy(data["time"]),
            )
        assert torch_loss.shape == (2, config.action_horizon)
        np.testing.assert_allclose(torch_loss.numpy(), np.asarray(jax_loss), atol=1e-4, rtol=0, err_msg=strategy)
        assert set(torch_metrics) == set(jax_metrics)
        for name, value in jax_metrics.items():
            np.testing.assert_allclose(torch_metrics[name].numpy(), np.asarray(value), atol=1e-4, err_msg=name)
        if strategy == "per_group":
            assert {"loss/left_arm", "loss_share/right_gripper", "weight/base"} <= set(torch_metrics)


def test_sample_actions_matches_jax(twins):
    _, _, jax_model, torch_model, data = twins
    jax_actions = jax_model.sample_actions(
        jax.random.key(0), observation(data, "jax"), noise=jnp.asarray(data["noise"]), num_steps=4
    )
    torch_actions = torch_model.sample_actions(
        observation(data, "torch"), noise=torch.from_numpy(data["noise"]), num_steps=4
    )
    np.testing.assert_allclose(torch_actions.numpy(), np.asarray(jax_actions), atol=1e-3, rtol=0)
    assert np.abs(np.asarray(jax_actions) - data["noise"]).max() > 0.1  # the flow moved the noise


def test_round_trip_is_bit_exact(twins):
    """JAX → PyTorch → JAX, starting from the state dict as openpi's safetensors store it (the tied embedding
    only under ``lm_head``)."""
    _, params, _, torch_model, _ = twins
    state_dict = {k: v for k, v in torch_model.state_dict().items() if k != wc.EMBED_TOKENS}
    back, _ = wc.torch_to_jax(state_dict)
    flat, flat_back = wc.flatten_params(params), wc.flatten_params(back)
    assert set(flat) == set(flat_back)
    for key, value in flat.items():
        assert flat_back[key].dtype == value.dtype, key
        np.testing.assert_array_equal(flat_back[key], value, err_msg=key)


def test_files_round_trip_and_reload(twins, tmp_path):
    """npz → model.safetensors + config.json → PyTorch model, and back to npz, bit for bit."""
    config, params, _, torch_model, _ = twins
    wc.save_jax_params(params, tmp_path / "params.npz")
    spec = wc.convert_jax_to_pytorch(
        tmp_path / "params.npz", tmp_path / "torch", dtype="float32", action_horizon=config.action_horizon
    )
    assert (spec.pi05, spec.vision_variant, spec.image_resolution) == (config.pi05, "mu/16", (64, 64))
    reloaded = wc.load_pytorch_model(tmp_path / "torch", max_token_len=config.max_token_len)
    for key, value in torch_model.state_dict().items():
        if key != wc.EXPERT_LM_HEAD:
            torch.testing.assert_close(reloaded.state_dict()[key], value, rtol=0, atol=0, msg=key)
    wc.convert_pytorch_to_jax(tmp_path / "torch", tmp_path / "back.npz")
    back = wc.flatten_params(wc.load_jax_params(tmp_path / "back.npz"))
    for key, value in wc.flatten_params(params).items():
        np.testing.assert_array_equal(back[key], value, err_msg=key)


def test_orbax_round_trip(tmp_path):
    """The openpi checkpoint layout (orbax ``params`` dir) in and out, detected as pi0.5 from the tree alone."""
    config = tiny_config(True)
    params = random_jax_params(config)
    wc.save_jax_params(params, tmp_path / "ckpt" / "params")
    spec = wc.convert_jax_to_pytorch(tmp_path / "ckpt" / "params", tmp_path / "torch", dtype="bfloat16")
    assert spec.pi05
    stored = wc.load_safetensors(tmp_path / "torch" / checkpoint_files.MODEL_FILE)
    assert stored["action_in_proj.weight"].dtype == np.float32  # kept float32 like openpi's bf16 model
    assert stored[f"{wc.EXPERT}.model.layers.0.mlp.up_proj.weight"].dtype.name == "bfloat16"
    wc.convert_pytorch_to_jax(tmp_path / "torch", tmp_path / "back" / "params")
    back = wc.flatten_params(wc.load_jax_params(tmp_path / "back" / "params"))
    # bfloat16 storage: every leaf comes back as bf16 or f32 and within bf16 rounding of the original.
    for key, value in wc.flatten_params(params).items():
        np.testing.assert_allclose(np.asarray(back[key], np.float32), value, rtol=1e-2, atol=1e-6, err_msg=key)


def test_lora_model_matches_jax():
    """LoRA on both experts (a tiny rank-4 ``dummy_lora`` variant registered for the test): the loss matches JAX,
    and the LoRA factors survive the round trip bit for bit."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(jax_gemma._LORA, "dummy_lora", ("dummy", 4, 8.0))
        patch.setattr(jax_gemma, "VARIANTS", (*jax_gemma.VARIANTS, "dummy_lora"))
        config = tiny_config(True, paligemma_variant="dummy_lora", action_expert_variant="dummy_lora")
        params = random_jax_params(config)
        state_dict, spec = wc.jax_to_torch(params)
        assert (spec.paligemma_variant, spec.action_expert_variant) == ("dummy_lora", "dummy_lora")
        assert state_dict[f"{wc.EXPERT}.model.layers.0.self_attn.o_proj.lora_b"].shape == (8, 4, 64)
        torch_model = pi0_pytorch.PI0Pytorch(config)
        wc.load_into(torch_model, state_dict)
        data = batch(config)
        jax_loss = _jax_loss(
            config.load(params),
            observation(data, "jax"),
            *(jnp.asarray(data[k]) for k in ("actions", "noise", "time")),
        )[0]
        with torch.no_grad():
            torch_loss = torch_model(
                observation(data, "torch"), *(torch.from_numpy(data[k]) for k in ("actions", "noise", "time"))
            )
        np.testing.assert_allclose(torch_loss.numpy(), np.asarray(jax_loss), atol=1e-4, rtol=0)
        back = wc.flatten_params(wc.torch_to_jax(torch_model.state_dict())[0])
        for key, value in wc.flatten_params(params).items():
            np.testing.assert_array_equal(back[key], value, err_msg=key)


def test_prefix_inpainting_matches_jax_and_a_numpy_euler_loop(twins):
    """Committed-prefix sampling: rows 0:3 hard (weight 1), 3:5 soft, the rest free. Both frameworks agree
    (float32, atol 1e-3 like plain sampling) and match an Euler loop written here on the JAX velocity."""
    config, _, jax_model, torch_model, data = twins
    steps, horizon = 4, config.action_horizon
    weights = np.zeros((2, horizon), np.float32)
    weights[:, :3], weights[:, 3:5] = 1.0, [0.6, 0.3]
    prefix, noise = data["actions"], data["noise"]
    jax_obs = observation(data, "jax")
    jax_actions = np.asarray(
        jax_model.sample_actions(
            None, jax_obs, noise=jnp.asarray(noise), num_steps=steps,
            prefix_actions=jnp.asarray(prefix), prefix_weights=jnp.asarray(weights),
        )
    )
    torch_actions = torch_model.sample_actions(
        observation(data, "torch"), noise=torch.from_numpy(noise), num_steps=steps,
        prefix_actions=torch.from_numpy(prefix), prefix_weights=torch.from_numpy(weights),
    ).numpy()
    np.testing.assert_allclose(torch_actions, jax_actions, atol=1e-3, rtol=0)

    preprocessed = jax_model._preprocess(None, jax_obs, False)
    x, w = noise.astype(np.float32), weights[..., None]
    for i in range(steps):
        t = np.float32(1.0 - i / steps)
        x = x + w * (t * noise + (1 - t) * prefix - x)
        v = np.asarray(jax_model.predict_velocity(preprocessed, jnp.asarray(x), jnp.full((2,), t)))
        x = x - v / steps
    x = x + w * (prefix - x)
    np.testing.assert_allclose(jax_actions, x, atol=1e-3, rtol=0)
    np.testing.assert_allclose(jax_actions[:, :3], prefix[:, :3], atol=1e-6, rtol=0)  # hard rows are the prefix

    free = np.asarray(jax_model.sample_actions(None, jax_obs, noise=jnp.asarray(noise), num_steps=steps))
    assert np.abs(jax_actions[:, 5:] - free[:, 5:]).max() > 1e-3  # the prefix steers the free rows too
