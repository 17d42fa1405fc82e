import numpy as np
import pytest

from openpi.analysis import balance
from openpi.analysis import common
from openpi.policies import b1k_policy
from openpi.shared import action_groups as ag
from openpi.shared import normalize as _normalize

GROUPS = common.data_groups(ag.ActionGroups.create(b1k_policy.R1PRO_ACTION_GROUPS, 32), 23)


def _measured_scales(table, stats, by, use_quantiles):
    """Each group's scale measured on the normalized data itself, per episode, in plain numpy."""
    normed = [common.normalize(table.episode(i), stats, use_quantiles=use_quantiles) for i in range(len(table.lengths))]
    const = (stats.q99 - stats.q01 if use_quantiles else stats.std) < 1e-4
    out = {}
    for name, dims in GROUPS.items():
        live = [d for d in dims if not const[d]]
        if by == "std":
            per_dim = np.concatenate(normed)[:, live].std(axis=0)
        else:
            deltas = np.concatenate([np.diff(x[:, live], axis=0) for x in normed])
            per_dim = np.sqrt(np.mean(deltas**2, axis=0))
        out[name] = float(np.sqrt(np.mean(per_dim**2)))
    return out


def _assert_balanced(scales, tol=0.05):
    values = list(scales.values())
    assert max(values) / min(values) - 1 <= tol, f"group scales differ by more than {tol:.0%}: {scales}"


def _naive(stats, scale, target, use_quantiles):
    """The tempting mistake: std ← std · target / group_std (shrinks large groups' denominators)."""
    before = balance.group_scales(scale, stats, GROUPS, use_quantiles=use_quantiles)
    std, q01, q99 = stats.std.copy(), stats.q01.copy(), stats.q99.copy()
    for name, dims in GROUPS.items():
        if name == "trunk":
            dims = [d for d in dims if d != 6]
        f = target / before[name]
        if use_quantiles:
            c, half = (q01[list(dims)] + q99[list(dims)]) / 2, (q99[list(dims)] - q01[list(dims)]) / 2 * f
            q01[list(dims)], q99[list(dims)] = c - half, c + half
        else:
            std[list(dims)] *= f
    return _normalize.NormStats(mean=stats.mean, std=std, q01=q01, q99=q99)


@pytest.mark.parametrize("by", ["std", "delta"])
@pytest.mark.parametrize("use_quantiles", [False, True])
def test_balanced_groups_agree_within_5_percent(planted, by, use_quantiles):
    table = planted.table
    stats = common.data_norm_stats(table)
    kind = "quantile" if use_quantiles else "zscore"
    before = _measured_scales(table, stats, by, use_quantiles)
    if by == "delta":
        with pytest.raises(AssertionError):
            _assert_balanced(before)  # the planted data starts unbalanced (base moves far more)
    result = balance.balance_norm_stats(stats, balance.raw_scale(table, by), GROUPS)
    after = _measured_scales(table, result.stats, by, use_quantiles)
    _assert_balanced(after)
    for name in GROUPS:
        assert after[name] == pytest.approx(result.after[kind][name], rel=1e-4)
        assert result.after[kind][name] == pytest.approx(result.target[kind], rel=1e-6)
    # Means are kept; quantile centers are kept.
    np.testing.assert_array_equal(result.stats.mean, stats.mean)
    np.testing.assert_allclose(result.stats.q01 + result.stats.q99, stats.q01 + stats.q99, atol=1e-9)


@pytest.mark.parametrize("use_quantiles", [False, True])
def test_naive_formula_amplifies_the_largest_group(planted, use_quantiles):
    table = planted.table
    stats = common.data_norm_stats(table)
    scale = balance.raw_scale(table, "delta")
    before = _measured_scales(table, stats, "delta", use_quantiles)
    target = float(np.exp(np.mean(np.log(list(before.values())))))
    naive = _measured_scales(table, _naive(stats, scale, target, use_quantiles), "delta", use_quantiles)
    with pytest.raises(AssertionError, match="differ by more than"):
        _assert_balanced(naive)
    # The naive result is S²/target: the group that was largest gets even larger.
    largest = max(before, key=before.get)
    assert naive[largest] > before[largest]
    assert naive[largest] == pytest.approx(before[largest] ** 2 / target, rel=1e-3)


def test_constant_dims_are_untouched_and_never_divide_by_zero(planted):
    table = planted.table
    stats = common.data_norm_stats(table)
    assert stats.std[6] < 1e-4  # B1K's constant torso dim
    result = balance.balance_norm_stats(stats, balance.raw_scale(table, "delta"), GROUPS)
    assert result.stats.std[6] == stats.std[6]
    assert result.stats.q01[6] == stats.q01[6] and result.stats.q99[6] == stats.q99[6]
    for q in (False, True):
        normed = common.normalize(table.actions, result.stats, use_quantiles=q)
        assert np.all(np.isfinite(normed)) and np.all(normed[:, 6] == 0)
        assert np.abs(normed).max() < 1e3


def test_all_constant_group_keeps_factor_one(planted):
    table = planted.table
    stats = common.data_norm_stats(table)
    groups = dict(GROUPS) | {"trunk": (3, 4, 5), "still": (6,)}
    result = balance.balance_norm_stats(stats, balance.raw_scale(table, "std"), groups)
    assert result.factors["zscore"]["still"] == 1.0
    assert np.isnan(result.after["zscore"]["still"])
    assert "still" in balance.format_report(result, list(groups))


def test_explicit_target_and_errors(planted):
    table = planted.table
    stats = common.data_norm_stats(table)
    result = balance.balance_norm_stats(stats, balance.raw_scale(table, "std"), GROUPS, target=0.5)
    for name in GROUPS:
        assert result.after["zscore"][name] == pytest.approx(0.5, rel=1e-6)
    assert balance.spread(result.after["zscore"]) < 1e-6
    with pytest.raises(ValueError, match="choose 'std' or 'delta'"):
        balance.raw_scale(table, "range")
    with pytest.raises(ValueError, match="must be positive"):
        balance.balance_norm_stats(stats, balance.raw_scale(table, "std"), GROUPS, target=-1.0)
