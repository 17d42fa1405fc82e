"""Tiny pi0 / pi0.5 models: loss shape and gradients, loss-strategy routing, cached sampling, overfitting."""

import dataclasses

import flax.nnx as nnx
import flax.traverse_util as traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from openpi.models import model as _model
from openpi.models import pi0
from openpi.models import pi0_config
from openpi.models import pi0_loss_utils

BATCH = 2
GROUPS = {"base": (0, 3), "arm": (3, 7), "gripper": [7]}


def tiny_config(**overrides) -> pi0_config.Pi0Config:
    kwargs = {
        "paligemma_variant": "dummy",
        "action_expert_variant": "dummy",
        "vision_variant": "mu/16",
        "image_resolution": (32, 32),
        "dtype": "float32",
        "action_dim": 8,
        "action_horizon": 6,
        "max_token_len": 8,
    }
    return pi0_config.Pi0Config(**(kwargs | overrides))


def random_model(config: pi0_config.Pi0Config, seed: int) -> pi0.Pi0:
    """A model with random parameters everywhere, so zero-initialised parts (norm scales, adaRMS) matter.

    Built from the abstract model and numpy draws (std ~ 1/sqrt(fan-in)), which is much cheaper than initialising.
    """
    graphdef, state = nnx.split(nnx.eval_shape(config.create, jax.random.key(0)))
    rng = np.random.default_rng(seed)
    flat = traverse_util.flatten_dict(state.to_pure_dict())
    for key, spec in flat.items():
        scale = 1.0 if key[-1] == "input_embedding" else 0.5 / np.sqrt(spec.shape[-2]) if len(spec.shape) > 1 else 0.1
        flat[key] = jnp.asarray(scale * rng.standard_normal(spec.shape, dtype=np.float32))
    state.replace_by_pure_dict(traverse_util.unflatten_dict(flat))
    return nnx.merge(graphdef, state)


# Shared so that each model structure is compiled once for the uncached velocity.
_velocity = nnx.jit(lambda model, obs, x_t, time: model.predict_velocity(obs, x_t, time))


def make_batch(config: pi0_config.Pi0Config, seed: int = 0) -> tuple[_model.Observation, jax.Array]:
    """Random observation with one missing camera and padded prompts, so masks and positions matter."""
    rng = np.random.default_rng(seed)
    h, w = config.image_resolution
    images = {k: rng.uniform(-1, 1, (BATCH, h, w, 3)).astype(np.float32) for k in _model.IMAGE_KEYS}
    masks = {k: np.ones(BATCH, bool) for k in _model.IMAGE_KEYS}
    masks["right_wrist_0_rgb"] = np.array([True, False])
    tokens = rng.integers(0, 1000, (BATCH, config.max_token_len)).astype(np.int32)
    prompt_mask = np.arange(config.max_token_len)[None] < np.array([[5], [3]])
    obs = _model.Observation(
        images=images,
        image_masks=masks,
        state=rng.normal(size=(BATCH, config.action_dim)).astype(np.float32),
        tokenized_prompt=tokens,
        tokenized_prompt_mask=prompt_mask,
    )
    actions = np.cumsum(rng.normal(scale=0.3, size=(BATCH, config.action_horizon, config.action_dim)), axis=1)
    return jax.tree.map(jnp.asarray, obs), jnp.asarray(actions, jnp.float32)


def _setup(pi05: bool):
    config = tiny_config(pi05=pi05, action_groups=GROUPS, group_weights={"base": 1, "arm": 2, "gripper": 3})
    return config, random_model(config, seed=1)


@pytest.fixture(scope="module")
def pi0_setup():
    return _setup(pi05=False)


@pytest.fixture(scope="module")
def pi05_setup():
    return _setup(pi05=True)


@pytest.fixture(params=["pi0_setup", "pi05_setup"])
def setup(request):
    return request.getfixturevalue(request.param)


@pytest.mark.parametrize(("setup_name", "train"), [("pi0_setup", True), ("pi05_setup", False)])
def test_compute_loss_is_finite_per_step_and_differentiable(request, setup_name, train):
    config, model = request.getfixturevalue(setup_name)
    obs, actions = make_batch(config)

    @nnx.jit
    def loss_and_grads(model):
        def mean_loss(m):
            loss = m.compute_loss(jax.random.key(2), obs, actions, train=train)
            return jnp.mean(loss), loss

        return nnx.grad(mean_loss, has_aux=True)(model)

    grads, loss = loss_and_grads(model)
    assert loss.shape == (BATCH, config.action_horizon)
    assert np.all(np.isfinite(loss))
    flat = jax.tree.leaves(grads)
    assert all(np.all(np.isfinite(g)) for g in flat)
    assert np.abs(grads.action_out_proj.kernel.value).sum() > 0
    # The prefix influences the action expert through the shared attention.
    assert np.abs(grads.PaliGemma["img"].head.kernel.value).sum() > 0


def test_loss_strategy_reweights_the_same_per_dim_error(pi0_setup):
    config, model = pi0_setup
    obs, actions = make_batch(config)
    noise = jnp.asarray(np.random.default_rng(3).normal(size=actions.shape), jnp.float32)
    time = jnp.asarray([0.3, 0.8], jnp.float32)
    params = nnx.state(model, nnx.Param).to_pure_dict()

    # Independent per-dim error from an explicit flow-matching step.
    t = time[:, None, None]
    velocity = _velocity(model, obs, t * noise + (1 - t) * actions, time)
    err = np.asarray(jnp.square(velocity - (noise - actions)))

    dim_weights = np.arange(1.0, 9.0)
    configs = {
        strategy: dataclasses.replace(
            config,
            loss_weighting_strategy=strategy,
            dimension_weights=list(dim_weights) if strategy == "per_dimension" else None,
        )
        for strategy in ("uniform", "original", "per_dimension", "per_group")
    }
    # The same parameters under each strategy's model (they differ only in the static loss weighting).
    graphdefs = {strategy: nnx.graphdef(c.load(params)) for strategy, c in configs.items()}
    state = nnx.state(model)

    @jax.jit
    def losses_and_metrics(state):
        return {
            strategy: nnx.merge(graphdef, state).compute_loss_and_metrics(
                jax.random.key(0), obs, actions, noise=noise, time=time
            )
            for strategy, graphdef in graphdefs.items()
        }

    losses = {}
    for strategy, (loss, metrics) in losses_and_metrics(state).items():
        expected, expected_metrics = pi0_loss_utils.weighted_loss_and_metrics(
            configs[strategy].loss_weighting, err, actions
        )
        np.testing.assert_allclose(loss, expected, rtol=1e-5, atol=1e-7, err_msg=strategy)
        assert metrics.keys() == expected_metrics.keys()
        np.testing.assert_allclose(metrics["loss/arm"], err[..., 3:7].mean(), rtol=1e-5)
        np.testing.assert_allclose(metrics["loss/gripper"], err[..., 7].mean(), rtol=1e-5)
        losses[strategy] = np.asarray(loss)

    np.testing.assert_allclose(losses["uniform"], err.mean(-1), rtol=1e-5)
    np.testing.assert_allclose(losses["per_dimension"], (err * dim_weights / dim_weights.mean()).mean(-1), rtol=1e-5)
    assert not np.allclose(losses["uniform"], losses["per_group"])
    assert not np.allclose(losses["uniform"], losses["original"])


def test_sample_actions_matches_uncached_euler_reference(setup):
    config, model = setup
    obs, _ = make_batch(config, seed=4)
    noise = jax.random.normal(jax.random.key(5), (BATCH, config.action_horizon, config.action_dim))
    num_steps = 4

    sample = nnx.jit(lambda m, o, n: m.sample_actions(jax.random.key(0), o, num_steps=num_steps, noise=n))
    actions = sample(model, obs, noise)
    assert actions.shape == (BATCH, config.action_horizon, config.action_dim)
    np.testing.assert_array_equal(actions, sample(model, obs, noise))

    # Reference: recompute the whole prefix + suffix sequence at every Euler step, no KV cache.
    x, t, dt = noise, 1.0, -1.0 / num_steps
    for _ in range(num_steps):
        x = x + dt * _velocity(model, obs, x, jnp.full((BATCH,), t, jnp.float32))
        t += dt
    np.testing.assert_allclose(actions, x, atol=1e-4)
    assert not np.allclose(actions, noise, atol=1e-2)


def test_make_attn_mask_matches_definition():
    rng = np.random.default_rng(0)
    valid = rng.random((3, 7)) > 0.2
    ar = rng.random(7) > 0.6
    mask = np.asarray(pi0.make_attn_mask(jnp.asarray(valid), jnp.asarray(ar)))
    cumsum = np.cumsum(ar)
    for b in range(3):
        for i in range(7):
            for j in range(7):
                assert mask[b, i, j] == (valid[b, i] and valid[b, j] and cumsum[j] <= cumsum[i])


def test_posemb_sincos_matches_formula():
    t = np.array([0.0, 0.25, 1.0], np.float32)
    emb = np.asarray(pi0.posemb_sincos(jnp.asarray(t), 8, min_period=4e-3, max_period=4.0))
    period = 4e-3 * (4.0 / 4e-3) ** np.linspace(0, 1, 4)
    expected = np.concatenate([np.sin(2 * np.pi * t[:, None] / period), np.cos(2 * np.pi * t[:, None] / period)], -1)
    # float32 phases reach ~1.6e3 rad at the smallest period, hence the absolute tolerance.
    np.testing.assert_allclose(emb, expected, atol=5e-4)


def test_tiny_model_overfits_one_batch():
    config = tiny_config()
    model = config.create(jax.random.key(0))
    obs, actions = make_batch(config)
    noise = jax.random.normal(jax.random.key(1), actions.shape)
    time = jnp.asarray([0.4, 0.7])
    # The 257k-token embedding table stays fixed: it is most of the tiny model's parameters and irrelevant here.
    trainable = nnx.All(nnx.Param, nnx.Not(pi0_config.path_regex(".*input_embedding")))
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=trainable)

    @nnx.jit
    def train_step(model, optimizer):
        def loss_fn(m):
            return jnp.mean(m.compute_loss(jax.random.key(0), obs, actions, noise=noise, time=time))

        loss, grads = nnx.value_and_grad(loss_fn, argnums=nnx.DiffState(0, trainable))(model)
        optimizer.update(model, grads)
        return loss

    losses = [float(train_step(model, optimizer))]
    while len(losses) < 200 and losses[-1] >= losses[0] / 100:
        losses.append(float(train_step(model, optimizer)))
    assert losses[-1] < losses[0] / 10, f"loss {losses[0]:.3g} -> {losses[-1]:.3g} after {len(losses)} steps"
