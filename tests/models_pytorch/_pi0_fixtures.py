"""Shared fixtures: tiny pi0 / pi0.5 configs, a JAX model with every parameter perturbed, one random batch."""

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from openpi.models import model as _model
from openpi.models import pi0_config
from openpi.policies import b1k_policy

BATCH = 2
HORIZON = 8
TOKENS = 6
RESOLUTION = (64, 64)
R1PRO_WEIGHTS = {
    "base": 0.5,
    "trunk": 1.0,
    "left_arm": 3.0,
    "left_gripper": 2.0,
    "right_arm": 3.0,
    "right_gripper": 2.0,
    "padding": 0.0,
}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny matmuls on shared cores: one intra-op thread is ~10x faster than two fighting for the CPU; denormals
    (tiny Adam moments, near-zero losses) flushed to zero, else a CPU step can take 100x longer."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)
    torch.set_num_threads(threads)


def tiny_config(pi05: bool, strategy: str = "uniform", **overrides) -> pi0_config.Pi0Config:
    """dummy Gemma experts, mu/16 SigLIP, float32; group-based strategies use the R1Pro layout."""
    kwargs = {
        "dtype": "float32",
        "paligemma_variant": "dummy",
        "action_expert_variant": "dummy",
        "vision_variant": "mu/16",
        "image_resolution": RESOLUTION,
        "pi05": pi05,
        "action_horizon": HORIZON,
        "max_token_len": TOKENS,
        "loss_weighting_strategy": strategy,
    }
    if strategy in ("per_group", "per_dimension"):
        kwargs |= {"action_groups": b1k_policy.R1PRO_ACTION_GROUPS, "group_weights": R1PRO_WEIGHTS}
    return pi0_config.Pi0Config(**(kwargs | overrides))


def random_jax_params(config: pi0_config.Pi0Config, seed: int = 1) -> dict:
    """Random JAX params shaped like the model's (no JAX init: that costs seconds), every leaf non-zero so the
    zero-initialised parts (norm scales, adaRMS, LoRA B) matter. Kernels get std 1/sqrt(fan-in axis)."""
    shapes = nnx.state(nnx.eval_shape(lambda: config.create(jax.random.key(0)))).to_pure_dict()
    rng = np.random.default_rng(seed)

    def draw(leaf):
        std = leaf.shape[-2] ** -0.5 if len(leaf.shape) >= 2 else 0.1
        return (rng.normal(size=leaf.shape) * std).astype(leaf.dtype)

    return jax.tree.map(draw, shapes)


def batch(config: pi0_config.Pi0Config, seed: int = 0, batch_size: int = BATCH) -> dict[str, np.ndarray]:
    """One random batch with a missing camera and padded prompts, so every mask and position matters."""
    rng = np.random.default_rng(seed)
    h, w = config.image_resolution
    shape = (batch_size, config.action_horizon, config.action_dim)
    prompt_lengths = np.where(np.arange(batch_size) % 2 == 0, min(4, config.max_token_len), config.max_token_len)
    return {
        "images": {k: rng.uniform(-1, 1, (batch_size, h, w, 3)).astype(np.float32) for k in _model.IMAGE_KEYS},
        "image_masks": {k: (np.arange(batch_size) % 2 == 0) | (k != "right_wrist_0_rgb") for k in _model.IMAGE_KEYS},
        "state": rng.normal(size=(batch_size, config.action_dim)).astype(np.float32),
        "tokenized_prompt": rng.integers(0, 257_152, (batch_size, config.max_token_len)).astype(np.int32),
        "tokenized_prompt_mask": np.arange(config.max_token_len)[None] < prompt_lengths[:, None],
        "actions": rng.normal(size=shape).astype(np.float32),
        "noise": rng.normal(size=shape).astype(np.float32),
        "time": np.linspace(0.3, 0.8, batch_size, dtype=np.float32),
    }


def observation(data: dict, framework: str) -> _model.Observation:
    """The batch as a JAX (``"jax"``) or PyTorch (``"torch"``) ``Observation``."""
    if framework == "jax":
        convert = jnp.asarray
    else:

        def convert(x):
            t = torch.from_numpy(np.asarray(x))
            return t.long() if t.dtype == torch.int32 else t

    return _model.Observation(
        images={k: convert(v) for k, v in data["images"].items()},
        image_masks={k: convert(v) for k, v in data["image_masks"].items()},
        state=convert(data["state"]),
        tokenized_prompt=convert(data["tokenized_prompt"]),
        tokenized_prompt_mask=convert(data["tokenized_prompt_mask"]),
    )
