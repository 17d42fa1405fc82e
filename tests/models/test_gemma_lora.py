"""Gemma and LoRA building blocks against explicit formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from openpi.models import gemma
from openpi.models import lora


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def _randomize(params, seed):
    leaves, treedef = jax.tree.flatten(params)
    rng = np.random.default_rng(seed)
    return jax.tree.unflatten(treedef, [jnp.asarray(rng.normal(size=x.shape), jnp.float32) for x in leaves])


@pytest.mark.parametrize(
    ("eqn", "expected"),
    [
        ("BTD,NDH->BTNH", ("BTD,NDL->BTNL", "BTNL,NLH->BTNH")),
        ("BSD,CKDH->CBSKH", ("BSD,CKDL->CBSKL", "CBSKL,CKLH->CBSKH")),
        ("BTNH,NHD->BTD", ("BTNH,NHL->BTL", "BTL,NLD->BTD")),
    ],
)
def test_lora_equations(eqn, expected):
    assert lora.lora_equations(eqn) == expected


def test_lora_einsum_starts_as_base_and_adds_scaled_low_rank_update():
    config = lora.LoRAConfig(rank=2, alpha=4.0)
    module = lora.Einsum(shape=(3, 5, 4), lora_config=config)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 6, 5)), jnp.float32)
    params = module.init(jax.random.key(0), "BTD,NDH->BTNH", x)["params"]
    assert params["lora_a"].shape == (3, 5, 2) and params["lora_b"].shape == (3, 2, 4)
    base = np.einsum("btd,ndh->btnh", x, params["w"])
    np.testing.assert_allclose(module.apply({"params": params}, "BTD,NDH->BTNH", x), base, rtol=1e-5, atol=1e-5)

    params = _randomize(params, 1)
    merged = np.asarray(params["w"]) + 2.0 * np.einsum("ndl,nlh->ndh", params["lora_a"], params["lora_b"])
    np.testing.assert_allclose(
        module.apply({"params": params}, "BTD,NDH->BTNH", x),
        np.einsum("btd,ndh->btnh", x, merged),
        rtol=1e-4,
        atol=1e-4,
    )


@pytest.mark.parametrize("with_lora", [False, True])
def test_feed_forward_is_geglu_with_tanh_gelu(with_lora):
    config = lora.LoRAConfig(rank=2, alpha=2.0) if with_lora else None
    module = lora.FeedForward(features=6, hidden_dim=10, lora_config=config)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, 6)), jnp.float32)
    params = _randomize(module.init(jax.random.key(0), x)["params"], 2)
    gating, linear = np.asarray(params["gating_einsum"]), np.asarray(params["linear"])
    if with_lora:
        assert params["gating_einsum_lora_a"].shape == (2, 6, 2) and params["linear_lora_b"].shape == (2, 6)
        gating = gating + np.einsum("cdl,clf->cdf", params["gating_einsum_lora_a"], params["gating_einsum_lora_b"])
        linear = linear + params["linear_lora_a"] @ params["linear_lora_b"]
    xn = np.asarray(x)
    expected = (_gelu_tanh(xn @ gating[0]) * (xn @ gating[1])) @ linear
    np.testing.assert_allclose(module.apply({"params": params}, x), expected, rtol=1e-4, atol=1e-4)


def test_rms_norm_and_adarms():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, 8)), jnp.float32)
    norm = gemma.RMSNorm()
    params = _randomize(norm.init(jax.random.key(0), x, None)["params"], 3)
    xn = np.asarray(x)
    normed = xn / np.sqrt(np.mean(xn**2, -1, keepdims=True) + 1e-6)
    out, gate = norm.apply({"params": params}, x, None)
    assert gate is None
    np.testing.assert_allclose(out, normed * (1 + np.asarray(params["scale"])), rtol=1e-5, atol=1e-5)

    cond = jnp.asarray(np.random.default_rng(1).normal(size=(2, 5)), jnp.float32)
    ada = norm.init(jax.random.key(0), x, cond)["params"]
    assert set(ada) == {"Dense_0"} and ada["Dense_0"]["kernel"].shape == (5, 24)
    np.testing.assert_array_equal(ada["Dense_0"]["kernel"], 0)  # zero init: identity modulation, zero gate
    ada = _randomize(ada, 4)
    mod = np.asarray(cond) @ np.asarray(ada["Dense_0"]["kernel"]) + np.asarray(ada["Dense_0"]["bias"])
    scale, shift, g = (m[:, None] for m in np.split(mod, 3, -1))
    out, gate = norm.apply({"params": ada}, x, cond)
    np.testing.assert_allclose(out, normed * (1 + scale) + shift, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gate, g, rtol=1e-6)


def test_rope_scores_depend_only_on_relative_position():
    rng = np.random.default_rng(0)
    q = jnp.asarray(rng.normal(size=(1, 1, 1, 16)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(1, 1, 1, 16)), jnp.float32)

    def score(pq, pk):
        rq = gemma.apply_rope(q, jnp.array([[pq]]))
        rk = gemma.apply_rope(k, jnp.array([[pk]]))
        return float(jnp.sum(rq * rk))

    assert score(3, 1) == pytest.approx(score(10, 8), rel=1e-4)
    assert score(3, 1) != pytest.approx(score(3, 2), rel=1e-3)
    np.testing.assert_allclose(gemma.apply_rope(q, jnp.array([[0]])), q)


def test_gemma_prefix_is_unaffected_by_the_suffix_and_cache_matches_full_pass():
    """Expert 1 attends to expert 0 through a block mask; decoding with the cache equals the full pass."""
    configs = (gemma.get_config("dummy"), gemma.get_config("dummy"))
    module = gemma.Module(configs=configs)
    rng = np.random.default_rng(6)
    prefix = jnp.asarray(rng.normal(size=(1, 5, 64)), jnp.float32)
    suffix = jnp.asarray(rng.normal(size=(1, 3, 64)), jnp.float32)
    causal_block = np.ones((1, 8, 8), bool)
    causal_block[:, :5, 5:] = False
    positions = jnp.arange(8)[None]
    # Initialising through __call__ skips the (unused, large) token embedding.
    params = module.init(jax.random.key(0), [prefix, suffix], positions, jnp.asarray(causal_block))["params"]
    params = _randomize(params, 5)
    (full_prefix, full_suffix), _ = module.apply(
        {"params": params}, [prefix, suffix], positions, jnp.asarray(causal_block)
    )
    (only_prefix, _), cache = module.apply(
        {"params": params}, [prefix, None], positions[:, :5], jnp.ones((1, 5, 5), bool)
    )
    np.testing.assert_allclose(full_prefix, only_prefix, rtol=1e-4, atol=1e-4)
    assert cache[0].shape == (4, 1, 5, 1, 16)
    (_, cached_suffix), _ = module.apply(
        {"params": params}, [None, suffix], positions[:, 5:], jnp.ones((1, 3, 8), bool), kv_cache=cache
    )
    np.testing.assert_allclose(cached_suffix, full_suffix, rtol=1e-4, atol=1e-4)


def test_unknown_variant_lists_choices():
    with pytest.raises(ValueError, match="gemma_2b_lora"):
        gemma.get_config("gemma_7b")
