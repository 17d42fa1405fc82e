"""``exclude_padding`` and the ``adaptive`` strategy: numpy references, zero padding gradient, JAX == PyTorch."""

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
GROUPS = b1k_policy.R1PRO_ACTION_GROUPS_COMBINED_GRIPPERS
NAMES = tuple(GROUPS)
REAL = 23  # R1Pro's real action dims; 23:32 is the padding group
WEIGHTS = {"base": 1.0, "trunk": 2.0, "left_arm": 3.0, "right_arm": 3.0, "grippers": 2.5, "padding": 0.7}
# float32 on both sides, same op order up to reductions: agreement to 1e-6 absolute on O(1) values.
TOL = 1e-6


def _weighting(strategy, *, exclude_padding=True, **kwargs):
    if strategy in ("per_group", "per_dimension"):
        kwargs.setdefault("group_weights", WEIGHTS)
    return lw.LossWeighting.create(
        strategy, D, action_groups=GROUPS, exclude_padding=exclude_padding, **kwargs
    )


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    err = rng.random((B, H, D), dtype=np.float32) * 2.0
    actions = np.cumsum(rng.normal(scale=0.15, size=(B, H, D)), axis=1).astype(np.float32)
    actions[..., REAL:] = 0.0  # padded targets are zeros, as PadStatesAndActions writes them
    return err, actions


ADAPTIVE_WEIGHTS = np.array([0.5, 2.0, 1.0, 1.5, 0.25, 4.0], np.float32)  # incl. a padding weight to be dropped


def _balance_weights(strategy, framework):
    if strategy != "adaptive":
        return None
    return jnp.asarray(ADAPTIVE_WEIGHTS) if framework == "jax" else torch.tensor(ADAPTIVE_WEIGHTS)


ALL = ("uniform", "original", "per_dimension", "per_group", "adaptive")


@pytest.mark.parametrize("strategy", ALL)
def test_padding_gets_zero_gradient_and_no_loss_share(strategy):
    weighting = _weighting(strategy)
    _, actions = _inputs(1)
    pred = np.random.default_rng(2).normal(size=(B, H, D)).astype(np.float32)

    def jax_loss(v):
        loss, metrics = jlu.weighted_loss_and_metrics(
            weighting, (v - actions) ** 2, jnp.asarray(actions), balance_weights=_balance_weights(strategy, "jax")
        )
        return jnp.mean(loss), metrics

    (loss_j, mj), grad_j = jax.value_and_grad(jax_loss, has_aux=True)(jnp.asarray(pred))
    v = torch.tensor(pred, requires_grad=True)
    loss_bh, mt = tlu.weighted_loss_and_metrics(
        weighting, (v - torch.tensor(actions)) ** 2, torch.tensor(actions),
        balance_weights=_balance_weights(strategy, "torch"),
    )
    loss_bh.mean().backward()
    for grad, metrics in ((np.asarray(grad_j), mj), (v.grad.numpy(), mt)):
        assert np.all(grad[..., REAL:] == 0.0)
        assert np.all(np.abs(grad[..., :REAL]).sum(axis=(0, 1)) > 0)
        assert float(metrics["loss_share/padding"]) == 0.0 and float(metrics["weight/padding"]) == 0.0
        assert abs(sum(float(metrics[f"loss_share/{n}"]) for n in NAMES) - 1.0) < 1e-5
    np.testing.assert_allclose(np.asarray(grad_j), v.grad.numpy(), atol=1e-7)
    assert abs(float(loss_j) - loss_bh.mean().item()) <= TOL


@pytest.mark.parametrize("strategy", ALL)
def test_weights_have_mean_one_over_real_dims_and_jax_equals_pytorch(strategy):
    weighting = _weighting(strategy)
    err, actions = _inputs(3)
    wj = np.asarray(jlu.full_loss_weights(weighting, jnp.asarray(actions), balance_weights=_balance_weights(strategy, "jax")))
    wt = tlu.full_loss_weights(weighting, torch.tensor(actions), balance_weights=_balance_weights(strategy, "torch"))
    assert abs(wj[..., :REAL].mean() - 1.0) < 1e-5 and np.all(wj[..., REAL:] == 0.0)
    np.testing.assert_allclose(wj, wt.numpy(), atol=TOL)
    loss_j, _ = jlu.weighted_loss_and_metrics(
        weighting, jnp.asarray(err), jnp.asarray(actions), balance_weights=_balance_weights(strategy, "jax")
    )
    loss_t, _ = tlu.weighted_loss_and_metrics(
        weighting, torch.tensor(err), torch.tensor(actions), balance_weights=_balance_weights(strategy, "torch")
    )
    # The loss is Σ_d W·err over the real dims / 23, independent of how many dims are padded.
    expected = (wj[..., :REAL].astype(np.float64) * err[..., :REAL]).sum(-1) / REAL
    np.testing.assert_allclose(np.asarray(loss_j), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss_t.numpy(), np.asarray(loss_j), atol=TOL)


def test_masked_uniform_loss_is_the_mean_error_over_real_dims():
    err, actions = _inputs(4)
    loss, _ = jlu.weighted_loss_and_metrics(_weighting("uniform"), jnp.asarray(err), jnp.asarray(actions))
    np.testing.assert_allclose(np.asarray(loss), err[..., :REAL].astype(np.float64).mean(-1), rtol=1e-6)
    # The same error on more padding dims leaves the masked loss unchanged; the upstream loss is diluted.
    upstream, _ = jlu.weighted_loss_and_metrics(
        _weighting("uniform", exclude_padding=False), jnp.asarray(err), jnp.asarray(actions)
    )
    np.testing.assert_allclose(np.asarray(upstream), err.mean(-1), rtol=1e-6)


def test_masked_per_group_matches_numpy_reference():
    err, actions = _inputs(5)
    weighting = _weighting("per_group", use_delta_weighting=False)
    w = np.array([WEIGHTS[n] for n in NAMES])[weighting.groups.dim_to_group]
    w[REAL:] = 0.0
    w = w / w[:REAL].mean()
    loss, _ = jlu.weighted_loss_and_metrics(weighting, jnp.asarray(err), jnp.asarray(actions))
    np.testing.assert_allclose(np.asarray(loss), (err * w).sum(-1) / REAL, rtol=1e-5)


def test_exclude_padding_without_a_padding_group_excludes_nothing_and_adaptive_needs_groups():
    """Nothing names padding, so every dim is real (the data config refuses that when the data is padded)."""
    assert lw.LossWeighting.create("uniform", D, exclude_padding=True).real_dims.all()
    with pytest.raises(ValueError, match="'adaptive' needs action_groups"):
        lw.LossWeighting.create("adaptive", D)


# ---- the adaptive rule ----------------------------------------------------------------------------------------


def _run_adaptive(weighting, group_loss_fn, steps, ops_update, ops_weights, to_array):
    """Feeds ``group_loss_fn(step)`` [G] into the state for ``steps`` updates; returns the weights after each."""
    state = {k: to_array(v) for k, v in lw.adaptive_init(weighting).items()}
    history = []
    for step in range(steps):
        state = ops_update(weighting, state, to_array(np.asarray(group_loss_fn(step), np.float32)))
        history.append(np.asarray(ops_weights(weighting, state)))
    return np.stack(history), state


def _normalized(weighting, raw):
    """Per group, the weight its dims get after ``loss_weights``' rescaling (mean 1 over real dims)."""
    counts = weighting.real_dims.astype(np.float64) @ weighting.groups.membership
    return raw * (counts > 0) / ((raw * counts).sum(-1, keepdims=True) / counts.sum())


def _lagging(step):
    """Base and grippers lose 90% of their loss over 40 steps; the arms and trunk only 20%."""
    progress = min(step / 40.0, 1.0)
    scale = np.array([1.5, 0.8, 1.0, 1.0, 0.2, 1.0])  # groups start at different loss scales
    drop = np.array([0.9, 0.2, 0.2, 0.2, 0.9, 0.9])
    return scale * (1.0 - drop * progress)


def test_adaptive_weights_move_toward_the_lagging_groups_and_match_numpy():
    weighting = _weighting("adaptive", adaptive=lw.AdaptiveBalance(decay=0.5, warmup_steps=5))
    history, _ = _run_adaptive(weighting, _lagging, 60, jlu.adaptive_update, jlu.adaptive_balance_weights, jnp.asarray)
    weights = _normalized(weighting, history)
    # Warmup: uniform over the real dims.
    np.testing.assert_allclose(weights[:4], np.broadcast_to(np.arange(6) < 5, (4, 6)), atol=1e-6)
    final = weights[-1]
    arms = [NAMES.index(n) for n in ("trunk", "left_arm", "right_arm")]
    assert np.all(final[arms] > 1.2) and final[NAMES.index("base")] < 0.5 and final[NAMES.index("grippers")] < 0.5
    # Independent numpy reference of the rule: base = mean of the first 5 losses, ema with decay 0.5.
    losses = np.stack([_lagging(s) for s in range(60)])
    base = losses[:5].mean(0)
    ema = losses[0]
    for s in range(1, 60):
        ema = 0.5 * ema + 0.5 * losses[s]
    np.testing.assert_allclose(final, _normalized(weighting, ema / base), rtol=1e-5)
    torch_history, _ = _run_adaptive(
        weighting, _lagging, 60, tlu.adaptive_update, tlu.adaptive_balance_weights, torch.tensor
    )
    np.testing.assert_allclose(torch_history, history, rtol=1e-6, atol=TOL)


def test_adaptive_weights_stay_fixed_when_groups_improve_alike():
    """Groups at different scales that improve at the same relative rate keep weight 1 each."""
    weighting = _weighting("adaptive", adaptive=lw.AdaptiveBalance(decay=0.8, warmup_steps=3))
    scale = np.array([1.5, 0.8, 1.0, 1.0, 0.2, 1.0])
    history, _ = _run_adaptive(
        weighting, lambda s: scale * 0.97**s, 50, jlu.adaptive_update, jlu.adaptive_balance_weights, jnp.asarray
    )
    np.testing.assert_allclose(_normalized(weighting, history)[:, :5], 1.0, atol=1e-5)


def test_adaptive_weights_enter_the_loss_as_group_weights():
    weighting = _weighting("adaptive")
    err, actions = _inputs(6)
    raw = ADAPTIVE_WEIGHTS.astype(np.float64)
    expected_w = _normalized(weighting, raw)[weighting.groups.dim_to_group]
    loss, metrics = jlu.weighted_loss_and_metrics(
        weighting, jnp.asarray(err), jnp.asarray(actions), balance_weights=jnp.asarray(ADAPTIVE_WEIGHTS)
    )
    np.testing.assert_allclose(np.asarray(loss), (err * expected_w).sum(-1) / REAL, rtol=1e-5)
    for i, name in enumerate(NAMES):
        np.testing.assert_allclose(float(metrics[f"weight/{name}"]), _normalized(weighting, raw)[i], rtol=1e-5)
