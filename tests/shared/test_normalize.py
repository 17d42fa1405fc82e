import numpy as np
import pytest

from openpi.shared import normalize


def _data(rng, n=20_000):
    return np.stack(
        [
            rng.normal(0.3, 2.0, n),  # gaussian
            rng.uniform(-1, 1, n) ** 3,  # heavy mass near 0
            np.where(rng.random(n) < 0.6, 1.0, -1.0),  # gripper-like two values
            np.full(n, 0.25),  # constant
            rng.exponential(5.0, n) + 100.0,  # skewed, far from 0
        ],
        axis=1,
    )


@pytest.mark.parametrize("batch", [1, 17, 1000, 20_000])
def test_running_stats_match_numpy(batch):
    rng = np.random.default_rng(0)
    x = _data(rng)
    # Start with a narrow batch so the histogram has to grow many times.
    order = np.argsort(np.abs(x[:, 0] - 0.3))
    x = x[order]
    stats = normalize.RunningStats()
    for i in range(0, len(x), batch):
        stats.update(x[i : i + batch])
    got = stats.get_statistics()
    np.testing.assert_allclose(got.mean, x.mean(0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.std, x.std(0), rtol=1e-9, atol=1e-12)
    span = x.max(0) - x.min(0)
    for q, value in [(0.01, got.q01), (0.99, got.q99)]:
        err = np.abs(value - np.quantile(x, q, axis=0))
        assert np.all(err <= 0.01 * span + 1e-12), (q, err, span)


def test_weights_equal_repetition():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 3))
    w = rng.integers(0, 4, size=500)
    weighted = normalize.RunningStats()
    weighted.update(x[:200], w[:200])
    weighted.update(x[200:], w[200:])
    expanded = np.repeat(x, w, axis=0)
    got = weighted.get_statistics()
    np.testing.assert_allclose(got.mean, expanded.mean(0), rtol=1e-10)
    np.testing.assert_allclose(got.std, expanded.std(0), rtol=1e-10)
    span = expanded.max(0) - expanded.min(0)
    assert np.all(np.abs(got.q99 - np.quantile(expanded, 0.99, axis=0)) <= 0.01 * span)


def test_running_stats_rejects_non_finite_and_empty():
    stats = normalize.RunningStats()
    with pytest.raises(ValueError, match="no data"):
        stats.get_statistics()
    with pytest.raises(ValueError, match="dim 1"):
        stats.update(np.array([[0.0, np.nan]]))


def test_save_load_roundtrip_and_format(tmp_path):
    stats = {
        "state": normalize.NormStats(mean=np.arange(3.0), std=np.ones(3), q01=-np.ones(3), q99=np.ones(3)),
        "actions": normalize.NormStats(mean=np.zeros(2), std=np.full(2, 0.5), q01=np.zeros(2), q99=np.ones(2)),
    }
    path = normalize.save(tmp_path / "assets" / "b1k", stats)
    import json

    raw = json.loads(path.read_text())
    assert set(raw["norm_stats"]["state"]) == {"mean", "std", "q01", "q99"}
    loaded = normalize.load(path.parent)
    for key in stats:
        for field in ("mean", "std", "q01", "q99"):
            np.testing.assert_array_equal(getattr(loaded[key], field), getattr(stats[key], field))
    with pytest.raises(FileNotFoundError, match=r"norm_stats\.json"):
        normalize.load(tmp_path / "nowhere")
