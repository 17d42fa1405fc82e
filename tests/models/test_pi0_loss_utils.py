"""The loss strategies against hand-written numpy references, and the JAX twin against the PyTorch twin."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from openpi.models import pi0_loss_utils as jlu
from openpi.models_pytorch import pi0_loss_utils_pytorch as tlu
from openpi.policies import b1k_policy
from openpi.shared import loss_weighting as lw

B, H, D = 4, 50, 32
GROUPS = b1k_policy.R1PRO_ACTION_GROUPS
WEIGHTS = {
    "base": 1.0,
    "trunk": 2.0,
    "left_arm": 3.0,
    "left_gripper": 2.5,
    "right_arm": 3.0,
    "right_gripper": 2.5,
    "padding": 0.0,
}
ALPHA, BETA, CAP, LO, HI = 0.2, 1.0, 0.5, 0.1, 3.0

STRATEGY_KWARGS = {
    "uniform": dict(weighting_strategy="uniform"),
    "original": dict(weighting_strategy="original"),
    "per_dimension": dict(weighting_strategy="per_dimension", action_groups=GROUPS, group_weights=WEIGHTS),
    "per_group": dict(weighting_strategy="per_group", action_groups=GROUPS, group_weights=WEIGHTS),
    "per_group_no_delta": dict(
        weighting_strategy="per_group", action_groups=GROUPS, group_weights=WEIGHTS, use_delta_weighting=False
    ),
}


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    err = rng.random((B, H, D), dtype=np.float32) * 2.0
    # Smooth-ish trajectories with occasional jumps, so delta weights vary and sometimes hit the cap.
    actions = np.cumsum(rng.normal(scale=0.15, size=(B, H, D)), axis=1).astype(np.float32)
    return err, actions


# ---- independent numpy references (loops, written straight from the formulas in ``openpi.shared.loss_weighting``'s docstring) ----


def _np_time_weight(chunk):
    """chunk [H, k] → clip(α + β·min(‖A_h − A_{h−1}‖, cap), lo, hi) per step, 0 change at h = 0."""
    w = np.empty(chunk.shape[0])
    for h in range(chunk.shape[0]):
        step = 0.0 if h == 0 else float(np.sqrt(np.sum((chunk[h].astype(np.float64) - chunk[h - 1]) ** 2)))
        w[h] = min(max(ALPHA + BETA * min(step, CAP), LO), HI)
    return w


def np_original(err, actions):
    w = np.stack([_np_time_weight(actions[b]) for b in range(B)])
    w = w / w.mean()
    return w * err.mean(axis=-1)


def group_dims(name):
    spec = GROUPS[name]
    return list(range(*spec)) if isinstance(spec, tuple) else list(spec)


def np_per_group_weights(actions, use_delta=True):
    W = np.zeros((B, H, D))
    for name in GROUPS:
        dims = group_dims(name)
        if use_delta:
            delta = np.stack([_np_time_weight(actions[b][:, dims]) for b in range(B)])
            delta = delta / delta.mean()
        else:
            delta = np.ones((B, H))
        W[:, :, dims] = WEIGHTS[name] * delta[..., None]
    return W / W.mean()


def _jax(name, err, actions):
    return np.asarray(jlu.compute_weighted_loss(jnp.asarray(err), jnp.asarray(actions), **STRATEGY_KWARGS[name]))


def _torch(name, err, actions):
    return tlu.compute_weighted_loss(torch.tensor(err), torch.tensor(actions), **STRATEGY_KWARGS[name]).numpy()


@pytest.mark.parametrize("name", list(STRATEGY_KWARGS))
def test_jax_equals_pytorch(name):
    err, actions = _inputs(1)
    j, t = _jax(name, err, actions), _torch(name, err, actions)
    assert j.shape == (B, H) and t.shape == (B, H)
    assert np.abs(j - t).max() <= 1e-6


def test_uniform_is_mean_over_dims():
    err, actions = _inputs(2)
    np.testing.assert_array_equal(_jax("uniform", err, actions), np.asarray(jnp.mean(jnp.asarray(err), axis=-1)))
    np.testing.assert_allclose(_torch("uniform", err, actions), err.mean(axis=-1), rtol=1e-6)


def test_original_matches_numpy_reference():
    err, actions = _inputs(3)
    expected = np_original(err, actions)
    np.testing.assert_allclose(_jax("original", err, actions), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_torch("original", err, actions), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("name", "use_delta"), [("per_group", True), ("per_group_no_delta", False)])
def test_per_group_matches_numpy_reference(name, use_delta):
    err, actions = _inputs(4)
    expected = (np_per_group_weights(actions, use_delta) * err).mean(axis=-1)
    np.testing.assert_allclose(_jax(name, err, actions), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_torch(name, err, actions), expected, rtol=1e-5, atol=1e-6)


def test_per_dimension_matches_numpy_reference():
    err, actions = _inputs(5)
    w = np.array([WEIGHTS[n] for n in GROUPS for _ in group_dims(n)])
    expected = (err * (w / w.mean())).mean(axis=-1)
    np.testing.assert_allclose(_jax("per_dimension", err, actions), expected, rtol=1e-5, atol=1e-7)


def test_per_group_with_equal_weights_and_no_delta_is_uniform():
    err, actions = _inputs(6)
    equal = {n: 1.7 for n in GROUPS}
    kwargs = dict(weighting_strategy="per_group", action_groups=GROUPS, group_weights=equal, use_delta_weighting=False)
    j = jlu.compute_weighted_loss(jnp.asarray(err), jnp.asarray(actions), **kwargs)
    np.testing.assert_array_equal(np.asarray(j), _jax("uniform", err, actions))
    t = tlu.compute_weighted_loss(torch.tensor(err), torch.tensor(actions), **kwargs)
    np.testing.assert_array_equal(t.numpy(), _torch("uniform", err, actions))


@pytest.mark.parametrize("name", list(STRATEGY_KWARGS))
def test_mean_weight_is_one(name):
    _, actions = _inputs(7)
    kwargs = {k.replace("weighting_strategy", "strategy"): v for k, v in STRATEGY_KWARGS[name].items()}
    weighting = lw.LossWeighting.create(kwargs.pop("strategy"), D, **kwargs)
    wj = np.asarray(jlu.full_loss_weights(weighting, jnp.asarray(actions)))
    wt = tlu.full_loss_weights(weighting, torch.tensor(actions)).numpy()
    assert wj.shape == (B, H, D)
    assert abs(wj.mean() - 1.0) < 1e-5 and abs(wt.mean() - 1.0) < 1e-5


@pytest.mark.parametrize("name", ["per_dimension", "per_group", "per_group_no_delta"])
def test_zero_weight_padding_gets_zero_gradient(name):
    _, actions = _inputs(8)
    pred = np.random.default_rng(9).normal(size=(B, H, D)).astype(np.float32)

    def jax_loss(v):
        per_dim = (v - jnp.asarray(actions)) ** 2
        return jnp.mean(jlu.compute_weighted_loss(per_dim, jnp.asarray(actions), **STRATEGY_KWARGS[name]))

    grad_j = np.asarray(jax.grad(jax_loss)(jnp.asarray(pred)))
    v = torch.tensor(pred, requires_grad=True)
    target = torch.tensor(actions, requires_grad=True)  # targets must not receive gradient through the weights
    torch.mean(tlu.compute_weighted_loss((v - target.detach()) ** 2, target, **STRATEGY_KWARGS[name])).backward()
    grad_t = v.grad.numpy()
    for grad in (grad_j, grad_t):
        assert np.all(grad[..., 23:] == 0.0)
        assert np.all(np.abs(grad[..., :23]).sum(axis=(0, 1)) > 0)
    assert target.grad is None or np.all(target.grad.numpy() == 0.0)
    np.testing.assert_allclose(grad_j, grad_t, atol=1e-7)


def test_group_metrics_match_numpy_and_frameworks():
    err, actions = _inputs(10)
    weighting = lw.LossWeighting.create("per_group", D, action_groups=GROUPS, group_weights=WEIGHTS)
    loss_j, mj = jlu.weighted_loss_and_metrics(weighting, jnp.asarray(err), jnp.asarray(actions))
    _, mt = tlu.weighted_loss_and_metrics(weighting, torch.tensor(err), torch.tensor(actions))
    W = np_per_group_weights(actions)
    total = (W * err).sum()
    shares = 0.0
    for name in GROUPS:
        dims = group_dims(name)
        np.testing.assert_allclose(float(mj[f"loss/{name}"]), err[..., dims].mean(), rtol=1e-5)
        np.testing.assert_allclose(float(mj[f"weight/{name}"]), W[..., dims].mean(), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(float(mj[f"loss_share/{name}"]), (W * err)[..., dims].sum() / total, atol=1e-6)
        shares += float(mj[f"loss_share/{name}"])
        for key in ("loss", "weight", "loss_share"):
            assert abs(float(mj[f"{key}/{name}"]) - float(mt[f"{key}/{name}"])) <= 1e-6
    assert abs(shares - 1.0) < 1e-5
    assert float(mj["loss_share/padding"]) == 0.0
    np.testing.assert_allclose(np.asarray(loss_j), (W * err).mean(axis=-1), rtol=1e-5, atol=1e-6)


def test_jit_with_static_weighting():
    err, actions = _inputs(11)
    weighting = lw.LossWeighting.create("per_group", D, action_groups=GROUPS, group_weights=WEIGHTS)
    fn = jax.jit(jlu.weighted_loss_and_metrics, static_argnums=0)
    loss, metrics = fn(weighting, jnp.asarray(err), jnp.asarray(actions))
    eager, _ = jlu.weighted_loss_and_metrics(weighting, jnp.asarray(err), jnp.asarray(actions))
    np.testing.assert_allclose(np.asarray(loss), np.asarray(eager), rtol=1e-6)
    assert set(metrics) == {f"{k}/{n}" for k in ("loss", "loss_share", "weight") for n in GROUPS}


def test_strategies_shift_emphasis_toward_arms():
    """With arm weights 3 and base 1, the arm groups' share of the weighted loss grows over uniform's."""
    err, actions = _inputs(12)
    shares = {}
    for strategy in ("uniform", "per_group"):
        weighting = lw.LossWeighting.create(
            strategy, D, action_groups=GROUPS, group_weights=WEIGHTS if strategy == "per_group" else None
        )
        _, m = jlu.weighted_loss_and_metrics(weighting, jnp.asarray(err), jnp.asarray(actions))
        shares[strategy] = float(m["loss_share/left_arm"]) / float(m["loss_share/base"])
    assert shares["per_group"] > 2.0 * shares["uniform"]
