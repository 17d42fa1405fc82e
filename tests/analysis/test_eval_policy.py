import numpy as np
import pytest

from openpi.analysis import common
from openpi.analysis import evaluation
from openpi.policies import b1k_policy
from openpi.shared import action_groups as ag

GROUPS = common.data_groups(ag.ActionGroups.create(b1k_policy.R1PRO_ACTION_GROUPS_COMBINED_GRIPPERS, 32), 23)


def _replay(table, horizon, arms_still=False, pad_to=None):
    """An oracle policy: looks up the true chunk; ``arms_still`` holds the arms at their first position."""
    position = {int(ep): p for p, ep in enumerate(table.episode_index)}

    def predict(obs):
        out = []
        for ep, frame in zip(obs["episode_index"], obs["frame_index"]):
            start = table.offsets[position[int(ep)]] + int(frame)
            chunk = table.actions[start : start + horizon].astype(np.float64).copy()
            if arms_still:
                arms = list(common.R1PRO_ROLES.arms)
                chunk[:, arms] = chunk[0, arms]
            out.append(chunk)
        out = np.stack(out)
        return out if pad_to is None else np.pad(out, ((0, 0), (0, 0), (0, pad_to - out.shape[-1])))

    return predict


def test_oracle_scores_perfectly(planted):
    table = planted.table
    stats = common.data_norm_stats(table)
    report = evaluation.evaluate(_replay(table, 50, pad_to=32), table, GROUPS, stats, horizon=50, batch_size=16)
    for m in [report["overall"], *report["per_task"].values()]:
        assert m["arm_activity_ratio"] == pytest.approx(1.0)
        assert m["gripper_agreement"] == 1.0
        assert m["base_velocity_rmse"] == 0.0
        for g in m["groups"].values():
            assert g["mse_raw"] == 0.0 and g["mse_normalized"] == 0.0 and g["mae_raw"] == 0.0
    assert set(report["per_task"]) == {"task_0", "task_1", "task_2"}
    assert sum(m["num_chunks"] for m in report["per_task"].values()) == report["overall"]["num_chunks"]
    assert report["overall"]["num_chunks"] == len(common.chunk_starts(table, 50, 50))
    md = evaluation.markdown_summary(report)
    assert "| **overall** |" in md and "| left_arm |" in md


def test_arms_still_policy_has_near_zero_activity(planted):
    table = planted.table
    stats = common.data_norm_stats(table)
    report = evaluation.evaluate(_replay(table, 50, arms_still=True), table, GROUPS, stats, horizon=50, stride=25)
    overall = report["overall"]
    assert overall["arm_activity_ratio"] < 0.05
    assert overall["groups"]["left_arm"]["mse_raw"] > 0 and overall["groups"]["base"]["mse_raw"] == 0.0
    assert overall["groups"]["left_arm"]["pred_delta_rms"] == 0.0
    assert overall["groups"]["left_arm"]["true_delta_rms"] > 0
    assert overall["gripper_agreement"] == 1.0 and overall["base_velocity_rmse"] == 0.0


def test_errors_match_reference(planted):
    """A policy with a known constant offset on the base gives exactly that error in raw and normalized units."""
    table = planted.table
    stats = common.data_norm_stats(table)
    oracle = _replay(table, 50)
    report = evaluation.evaluate(lambda obs: oracle(obs) + np.r_[[0.1, 0, 0], np.zeros(20)], table, GROUPS, stats)
    base = report["overall"]["groups"]["base"]
    assert base["mse_raw"] == pytest.approx(0.01 / 3)
    assert base["mae_raw"] == pytest.approx(0.1 / 3)
    assert base["mse_normalized"] == pytest.approx((0.1 / (stats.std[0] + 1e-6)) ** 2 / 3, rel=1e-4)
    assert report["overall"]["base_velocity_rmse"] == pytest.approx(np.sqrt(0.01 / 3))


def test_bad_prediction_shape_and_short_episodes(planted):
    table = planted.table
    stats = common.data_norm_stats(table)
    with pytest.raises(ValueError, match=r"predict returned shape \(2, 10, 23\)"):
        evaluation.evaluate(lambda obs: np.zeros((2, 10, 23)), table, GROUPS, stats, batch_size=2)
    with pytest.raises(ValueError, match="action_horizon=5000"):
        evaluation.evaluate(_replay(table, 5000), table, GROUPS, stats, horizon=5000)
