"""The jaxtyping shape annotations on the model interfaces hold for a real (tiny) pi0.5 model: each call's
arguments and result match its annotations with the dimension names bound per call, as ``jaxtyping.jaxtyped``
would check them, and the Observation's fields match theirs."""

import dataclasses
import inspect
import types
import typing

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import jaxtyping
import numpy as np

from openpi.models import model as _model
from openpi.models import pi0_config

BATCH = 2


def _matches(value, hint) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        return len(value) == len(args) and all(_matches(v, h) for v, h in zip(value, args, strict=True))
    if origin is dict:
        return all(_matches(v, args[1]) for v in value.values())
    if origin in (types.UnionType, typing.Union):
        return any(_matches(value, h) for h in args)
    return isinstance(value, hint)


def _checked_call(fn, *args, **kwargs):
    """Calls ``fn`` and asserts that its array arguments and its result match the annotations, one dimension
    memo for the whole call."""
    hints = typing.get_type_hints(fn)
    bound = inspect.signature(fn).bind(*args, **kwargs)
    with jaxtyping.jaxtyped("context"):
        for name, value in bound.arguments.items():
            if name in hints and isinstance(value, jax.Array):
                assert _matches(value, hints[name]), f"{fn.__name__}({name}): {value.shape} is not {hints[name]}"
        out = fn(*args, **kwargs)
        assert _matches(out, hints["return"]), f"{fn.__name__} returned {jax.tree.map(jnp.shape, out)}"
    return out


def test_model_interfaces_match_their_annotations():
    """pi0.5, so the optional adaRMS condition of ``embed_suffix`` is an array (pi0's is None); eager, ~1 min."""
    config = pi0_config.Pi0Config(
        paligemma_variant="dummy",
        action_expert_variant="dummy",
        vision_variant="mu/16",
        image_resolution=(32, 32),
        dtype="float32",
        action_dim=8,
        action_horizon=6,
        max_token_len=8,
        pi05=True,
    )
    model = nnx.eval_shape(config.create, jax.random.key(0))
    graphdef, state = nnx.split(model)
    state = jax.tree.map(lambda s: jnp.full(s.shape, 0.01, s.dtype), state)
    model = nnx.merge(graphdef, state)
    obs = config.fake_obs(BATCH)
    actions = jnp.asarray(np.random.default_rng(0).normal(size=(BATCH, 6, 8)), jnp.float32)
    time = jnp.full((BATCH,), 0.5)

    hints = typing.get_type_hints(_model.Observation)
    with jaxtyping.jaxtyped("context"):
        for field in dataclasses.fields(_model.Observation):
            value = getattr(obs, field.name)
            assert _matches(value, hints[field.name]), field.name

    _checked_call(model.embed_prefix, obs)  # its sequence length differs from the suffix's: one memo per call
    suffix = _checked_call(model.embed_suffix, obs, actions, time)
    assert suffix[3] is not None
    loss = _checked_call(model.compute_loss, jax.random.key(1), obs, actions)
    assert loss.shape == (BATCH, 6)
    sampled = _checked_call(model.sample_actions, jax.random.key(2), obs, num_steps=1)
    assert sampled.shape == actions.shape


def test_annotations_reject_a_wrong_shape():
    """The check can fail: once ``actions`` binds ah = 6, a loss of horizon 7 is not a ``"b ah"`` array."""
    loss_hint = typing.get_type_hints(_model.BaseModel.compute_loss)["return"]
    with jaxtyping.jaxtyped("context"):
        assert _matches(jnp.zeros((BATCH, 6, 8)), _model.Actions)
        assert not _matches(jnp.zeros((BATCH, 7)), loss_hint)
        assert _matches(jnp.zeros((BATCH, 6)), loss_hint)
    assert not _matches(jnp.zeros((BATCH, 6, 8), jnp.int32), _model.Actions)  # dtype is checked too
