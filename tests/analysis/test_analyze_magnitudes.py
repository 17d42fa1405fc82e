import numpy as np
import pytest

from openpi.analysis import common
from openpi.analysis import magnitudes
from openpi.models import pi0_loss_utils
from openpi.policies import b1k_policy
from openpi.shared import action_groups as ag
from openpi.shared import loss_weighting as lw

GROUPS = ag.ActionGroups.create(b1k_policy.R1PRO_ACTION_GROUPS, 32)


def _reference(table, stats, use_quantiles):
    """Per-episode loops in plain numpy, independent of the analyzer's vectorized code."""
    eps = [table.episode(i).astype(np.float64) for i in range(len(table.lengths))]
    if use_quantiles:
        den = stats.q99 - stats.q01 + 1e-6
        norm = [np.where(den - 1e-6 < 1e-4, 0.0, (e - stats.q01) / den * 2 - 1) for e in eps]
    else:
        norm = [np.where(stats.std < 1e-4, 0.0, (e - stats.mean) / (stats.std + 1e-6)) for e in eps]
    out = {}
    for name, dims in zip(GROUPS.names, GROUPS.dims):
        dims = [d for d in dims if d < 23]
        if not dims:
            continue
        entry = {}
        for kind, data in (("raw", eps), ("normalized", norm)):
            allx = np.concatenate([x[:, dims] for x in data])
            deltas = np.concatenate([np.diff(x[:, dims], axis=0) for x in data])
            entry[kind] = {
                "mean_abs": np.abs(allx).mean(),
                "std": np.sqrt(np.mean([allx[:, j].var() for j in range(len(dims))])),
                "delta_rms": np.sqrt(np.mean(deltas**2)),
            }
        if name == "base":
            moving = np.concatenate([np.abs(x[1:, dims]).max(axis=1) > 1e-2 for x in eps])
        else:
            moving = np.concatenate([np.abs(np.diff(x[:, dims], axis=0)).max(axis=1) > 1e-3 for x in eps])
        entry["moving_fraction"] = moving.mean()
        out[name] = entry
    return out


@pytest.mark.parametrize("use_quantiles", [False, True])
def test_magnitudes_match_numpy_reference(planted, use_quantiles):
    table = planted.table
    stats = common.data_norm_stats(table)
    report = magnitudes.analyze(table, GROUPS, stats, use_quantiles=use_quantiles, max_chunks=256)
    ref = _reference(table, stats, use_quantiles)
    assert set(report["groups"]) == set(ref) == set(GROUPS.names) - {"padding"}
    for name, expected in ref.items():
        got = report["groups"][name]
        for kind in ("raw", "normalized"):
            for key, value in expected[kind].items():
                np.testing.assert_allclose(got[kind][key], value, rtol=1e-5, atol=1e-9, err_msg=f"{name} {kind} {key}")
        assert got["moving_fraction"] == pytest.approx(expected["moving_fraction"])
    # The planted structure shows: the base moves far more than the arms after normalization.
    assert (
        report["groups"]["base"]["normalized"]["delta_rms"]
        > 5 * report["groups"]["left_arm"]["normalized"]["delta_rms"]
    )


def test_weight_shares_match_training_weights(planted):
    """The numpy ops give the JAX twin's weights, so the shares are what training applies."""
    table = planted.table
    stats = common.data_norm_stats(table)
    normed = common.normalize(table.actions, stats, use_quantiles=False)
    starts = common.chunk_starts(table, 50, stride=25)
    chunks = np.pad(common.gather_chunks(normed, starts, 50), ((0, 0), (0, 0), (0, 9))).astype(np.float32)
    weights = dict.fromkeys(GROUPS.names, 1.0) | {"left_arm": 3.0, "right_arm": 3.0, "padding": 0.0}
    for strategy in lw.STRATEGIES:
        gw = weights if strategy in ("per_group", "per_dimension") else None
        weighting = lw.LossWeighting.create(strategy, 32, action_groups=GROUPS, group_weights=gw)
        np.testing.assert_allclose(
            common.full_weights(weighting, chunks),
            np.asarray(pi0_loss_utils.full_loss_weights(weighting, chunks)),
            rtol=1e-3,  # float32 reductions over ~1e6 elements differ in summation order
        )
        share, _ = magnitudes.weight_shares(weighting, chunks, GROUPS)
        assert sum(share.values()) == pytest.approx(1.0)
        if strategy == "uniform":
            for name, dims in zip(GROUPS.names, GROUPS.dims):
                assert share[name] == pytest.approx(len(dims) / 32)


def test_suggested_weights_equalize_motion(planted):
    table = planted.table
    stats = common.data_norm_stats(table)
    report = magnitudes.analyze(table, GROUPS, stats, max_chunks=10_000, max_weight_ratio=1e6)
    suggested = report["suggested_group_weights"]
    assert suggested["padding"] == 0.0
    energy = {n: suggested[n] * len(g["dims"]) * g["normalized"]["delta_rms"] ** 2 for n, g in report["groups"].items()}
    np.testing.assert_allclose(list(energy.values()), next(iter(energy.values())), rtol=1e-9)
    # Without config weights, per_dimension uses the suggestion: every group's share of the motion is close to equal.
    share = report["motion_share"]["per_dimension"]
    groups = [n for n in share if n != "padding"]
    assert max(share[n] for n in groups) / min(share[n] for n in groups) < 1.25


def test_suggested_weights_cap_and_motionless_groups():
    w = magnitudes.suggest_group_weights({"a": 1.0, "b": 1e-6, "c": 0.0}, {"a": 1, "b": 1, "c": 1}, max_weight_ratio=10)
    assert w["c"] == 0.0 and w["b"] == pytest.approx(10 * w["a"])
    assert (w["a"] + w["b"] + w["c"]) / 3 == pytest.approx(1.0)


def test_configured_group_weights_are_used(planted):
    stats = common.data_norm_stats(planted.table)
    weights = {
        "base": 1.0,
        "trunk": 2.0,
        "left_arm": 3.0,
        "left_gripper": 2.5,
        "right_arm": 3.0,
        "right_gripper": 2.5,
        "padding": 0.0,
    }
    configured = lw.LossWeighting.create("per_group", 32, action_groups=GROUPS, group_weights=weights)
    report = magnitudes.analyze(planted.table, GROUPS, stats, configured=configured, max_chunks=64)
    assert report["group_weights_used"] == weights
    assert report["weight_share"]["per_dimension"]["left_arm"] > report["weight_share"]["uniform"]["left_arm"]


def test_group_selection_and_unknown_group(planted):
    stats = common.data_norm_stats(planted.table)
    report = magnitudes.analyze(planted.table, GROUPS, stats, group_names=["base", "left_arm"], max_chunks=64)
    assert list(report["groups"]) == ["base", "left_arm"]
    text = magnitudes.format_table(report)
    assert "left_arm" in text and "right_arm" not in text.split("Share")[0]
    with pytest.raises(ValueError, match=r"Unknown action group\(s\) \['elbow'\].*left_arm"):
        magnitudes.analyze(planted.table, GROUPS, stats, group_names=["elbow"])


def test_too_short_episodes_for_chunks(planted):
    short = planted.table.select([0])
    with pytest.raises(ValueError, match="action_horizon=1000"):
        magnitudes.analyze(short, GROUPS, common.data_norm_stats(short), horizon=1000)


def test_recommends_masked_adaptive_for_padded_imbalanced_data(planted):
    """B1K-like data padded to 32 dims, base steps far larger than arm steps: exclude padding and balance."""
    stats = common.data_norm_stats(planted.table)
    report = magnitudes.analyze(planted.table, GROUPS, stats, max_chunks=256)
    rec = report["recommendation"]
    assert rec["padding_weight_share"] == pytest.approx(9 / 32)  # uniform weights: padding's share of the dims
    moving = {n: g["normalized"]["delta_rms"] for n, g in report["groups"].items() if g["moving_fraction"] > 0}
    assert rec["motion_imbalance"] == pytest.approx(max(moving.values()) / min(moving.values()))
    assert rec["motion_imbalance"] > magnitudes.IMBALANCE_LIMIT
    assert rec["strategy"] == "adaptive" and rec["exclude_padding"]
    assert "Recommended: loss_weighting_strategy='adaptive', exclude_padding=True" in magnitudes.format_table(report)


def test_recommends_plain_uniform_for_balanced_unpadded_data():
    """Every dim the same i.i.d. jitter around 1 (same normalized step size), no padding: nothing to fix."""
    rng = np.random.default_rng(0)
    episodes = {e: (1.0 + rng.normal(scale=0.05, size=(300, 23))).astype(np.float32) for e in range(6)}
    table = common.ActionTable.from_episodes(episodes, dict.fromkeys(episodes, "task"))
    unpadded = ag.ActionGroups.create({k: v for k, v in b1k_policy.R1PRO_ACTION_GROUPS.items() if k != "padding"}, 23)
    report = magnitudes.analyze(table, unpadded, common.data_norm_stats(table), max_chunks=128)
    rec = report["recommendation"]
    assert rec["padding_weight_share"] == 0.0 and not rec["exclude_padding"]
    assert rec["motion_imbalance"] < 1.5 and rec["strategy"] == "uniform"


def test_recommendation_thresholds():
    rec = magnitudes.recommend_strategy(0.01, {"a": 1.0, "b": 2.9, "still": 0.0}, {"a": 0.5, "b": 0.5, "still": 0.0})
    assert rec["strategy"] == "uniform" and not rec["exclude_padding"] and rec["motion_imbalance"] == pytest.approx(2.9)
    rec = magnitudes.recommend_strategy(0.3, {"a": 1.0, "b": 3.1}, {"a": 0.5, "b": 0.5})
    assert rec["strategy"] == "adaptive" and rec["exclude_padding"]
