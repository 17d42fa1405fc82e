import json

import numpy as np
import pytest

from openpi.analysis import common
from openpi.analysis import sources
from openpi.shared import normalize as _normalize

GROUPS = {
    "base": [0, 1, 2],
    "trunk": [3, 4, 5, 6],
    "left_arm": list(range(7, 14)),
    "left_gripper": [14],
    "right_arm": list(range(15, 22)),
    "right_gripper": [22],
}


def _scales(root, stats, by, use_quantiles):
    """Each group's scale on the dataset normalized with ``stats`` (per-episode deltas, constant dims skipped)."""
    table = sources.load_actions(sources.resolve(sources.SourceArgs(root=str(root))), progress=False)
    const = common.constant_dims(stats, use_quantiles=use_quantiles)
    normed = [common.normalize(table.episode(i), stats, use_quantiles=use_quantiles) for i in range(len(table.lengths))]
    out = {}
    for name, dims in GROUPS.items():
        live = [d for d in dims if not const[d]]
        if by == "std":
            per_dim = np.concatenate(normed)[:, live].std(0)
        else:
            per_dim = np.sqrt(np.mean(np.concatenate([np.diff(x[:, live], axis=0) for x in normed]) ** 2, axis=0))
        out[name] = float(np.sqrt(np.mean(per_dim**2)))
    return out


@pytest.mark.parametrize("by", ["std", "delta"])
def test_balanced_stats_equalize_groups(mini_root, load_script, tmp_path, by):
    script = load_script("recompute_balanced_norm_stats")
    summary = script.run(script.Args(root=str(mini_root), output_dir=str(tmp_path), balance_groups=True, balance_by=by))
    path = tmp_path / "balanced" / "norm_stats.json"
    assert summary["path"] == str(path)
    raw = json.loads(path.read_text())
    assert set(raw["norm_stats"]) == {"state", "actions"}
    assert set(raw["norm_stats"]["actions"]) == {"mean", "std", "q01", "q99"}
    stats = _normalize.load(path.parent)
    assert len(stats["state"].mean) == 23 and len(stats["actions"].mean) == 23
    for use_quantiles in (False, True):
        scales = _scales(mini_root, stats["actions"], by, use_quantiles)
        moving = {n: s for n, s in scales.items() if s > 1e-9}  # the torso never moves within an episode here
        assert max(moving.values()) / min(moving.values()) - 1 <= 0.05, (by, use_quantiles, scales)
    assert (tmp_path / "balanced" / "balance.png").exists()
    report = json.loads((tmp_path / "balanced" / "balance_report.json").read_text())
    assert report["balance_by"] == by and set(report["after"]) == {"zscore", "quantile"}


def test_without_balancing_copies_base_stats(mini_root, load_script, tmp_path):
    script = load_script("recompute_balanced_norm_stats")
    script.run(script.Args(root=str(mini_root), output_dir=str(tmp_path / "a"), asset_id="plain"))
    first = _normalize.load(tmp_path / "a" / "plain")
    # The written file is a valid base for a second, balanced run, whose state entry is copied unchanged.
    script.run(
        script.Args(
            root=str(mini_root),
            output_dir=str(tmp_path / "b"),
            norm_stats_dir=str(tmp_path / "a" / "plain"),
            balance_groups=True,
            balance_by="delta",
        )
    )
    second = _normalize.load(tmp_path / "b" / "balanced")
    np.testing.assert_array_equal(second["state"].std, first["state"].std)
    np.testing.assert_array_equal(second["actions"].mean, first["actions"].mean)
    assert not np.allclose(second["actions"].std, first["actions"].std)
    assert second["actions"].std[6] == first["actions"].std[6]  # the constant torso dim is untouched


def test_clear_errors(mini_root, load_script, tmp_path):
    script = load_script("recompute_balanced_norm_stats")
    with pytest.raises(FileNotFoundError, match=r"No norm_stats\.json"):
        script.run(script.Args(root=str(mini_root), output_dir=str(tmp_path), norm_stats_dir=str(tmp_path / "x")))
    with pytest.raises(ValueError, match=r"Unknown action group\(s\) \['wrist'\]"):
        script.run(script.Args(root=str(mini_root), output_dir=str(tmp_path), groups=("wrist",), balance_groups=True))
    with pytest.raises(FileNotFoundError, match="No LeRobot dataset"):
        script.run(script.Args(root=str(tmp_path / "missing"), output_dir=str(tmp_path)))


def test_analyzer_sees_balanced_groups_and_config_assets(mini_root, load_script, tmp_path, monkeypatch):
    """End to end: balance by delta into the config's assets, then the analyzer (which reads the config's
    norm-stats asset) reports equal normalized per-step change for every moving group."""
    pytest.importorskip("openpi.training.config")
    from openpi.training import config as _config

    name = "pi0_b1k_arm_focused_demo"
    monkeypatch.chdir(tmp_path)
    cfg = _config.get_config(name)
    balance = load_script("recompute_balanced_norm_stats")
    asset_dir = cfg.assets_dirs / cfg.data.repo_id  # the config's default asset id is its repo id
    balance.run(
        balance.Args(
            config_name=name,
            root=str(mini_root),
            output_dir=str(cfg.assets_dirs),
            asset_id=cfg.data.repo_id,
            balance_groups=True,
            balance_by="delta",
        )
    )
    analyze = load_script("analyze_action_magnitudes")
    report = analyze.run(analyze.Args(config_name=name, root=str(mini_root), output=str(tmp_path / "m.json")))
    assert report["norm_stats"] == str(asset_dir / "norm_stats.json")
    moving = [g["normalized"]["delta_rms"] for g in report["groups"].values() if g["normalized"]["delta_rms"] > 0]
    assert len(moving) == 4 and max(moving) / min(moving) - 1 <= 0.05
