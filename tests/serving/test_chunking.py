"""Chunk execution against hand-computed schedules, with a fake chunk policy whose chunks are easy to tell apart."""

import math

import numpy as np
import pytest

from openpi.serving import chunking

H, D = 6, 2


class FakePolicy:
    """Chunk of query q: rows ``100·q + row`` on both dims; records every call's prefix and weights."""

    def __init__(self):
        self.calls = []

    def __call__(self, obs, prefix=None, weights=None):
        self.calls.append((obs, None if prefix is None else prefix.copy(), None if weights is None else weights.copy()))
        q = len(self.calls) - 1
        return np.repeat((100.0 * q + np.arange(H))[:, None], D, axis=1)


def run(config, steps):
    policy = FakePolicy()
    executor = chunking.ChunkExecutor(policy, config)
    actions = np.stack([executor.act({"t": t}) for t in range(steps)])
    return actions[:, 0], policy.calls, executor


def test_receding_horizon_executes_k_then_replans():
    actions, calls, executor = run(chunking.ChunkingConfig(mode="receding", replan_every=4), 10)
    np.testing.assert_array_equal(actions, [0, 1, 2, 3, 100, 101, 102, 103, 200, 201])
    assert [c[0]["t"] for c in calls] == [0, 4, 8] and executor.queries == 3
    assert all(c[1] is None for c in calls)
    executor.reset()
    assert executor.queries == 0 and executor.act({"t": 0})[0] == 300  # a fresh chunk after reset


def test_temporal_ensembling_uses_act_weights():
    m = 0.5
    actions, calls, _ = run(chunking.ChunkingConfig(mode="ensemble", replan_every=2, ensemble_decay=m), 8)
    assert [c[0]["t"] for c in calls] == [0, 2, 4, 6]
    for t in range(8):
        starts = [s for s in (0, 2, 4, 6) if s <= t < s + H]  # chunks covering t, oldest first
        values = [100 * (s // 2) + (t - s) for s in starts]
        w = [math.exp(-m * i) for i in range(len(starts))]
        assert actions[t] == pytest.approx(sum(a * b for a, b in zip(w, values)) / sum(w))


def test_prefix_mode_passes_the_unexecuted_overlap_with_rtc_weights():
    config = chunking.ChunkingConfig(mode="prefix", replan_every=2, prefix_hard=1, prefix_soft=True)
    actions, calls, _ = run(config, 4)
    np.testing.assert_array_equal(actions, [0, 1, 100, 101])
    assert calls[0][1] is None
    prefix, weights = calls[1][1], calls[1][2]
    np.testing.assert_array_equal(prefix[:, 0], [2, 3, 4, 5])  # rows 2..5 of the first chunk, not yet executed
    overlap, hard = 4, 1
    expected = [1.0] + [
        c * (math.exp(c) - 1) / (math.e - 1) for c in ((overlap - i) / (overlap - hard + 1) for i in range(1, 4))
    ]
    np.testing.assert_allclose(weights, expected, rtol=1e-6)
    assert weights[1] > weights[2] > weights[3] > 0
    hard_only = chunking.prefix_weights(4, 2, soft=False)
    np.testing.assert_array_equal(hard_only, [1, 1, 0, 0])


def test_bad_settings_name_the_limit():
    with pytest.raises(ValueError, match=r"replan_every must be in \[1, 6\]"):
        run(chunking.ChunkingConfig(replan_every=7), 1)
    with pytest.raises(ValueError, match="needs an overlap"):
        run(chunking.ChunkingConfig(mode="prefix", replan_every=6), 1)
    with pytest.raises(ValueError, match=r"prefix_hard must be in \[0, 2\]"):
        chunking.ChunkingConfig(mode="prefix", replan_every=4, prefix_hard=3).validate(H)
