import json

import numpy as np
import pytest

from openpi.analysis import arm_heavy as ah
from openpi.datasets import episode_files


def _precision_recall(predicted: set, truth: set) -> tuple[float, float]:
    tp = len(predicted & truth)
    return tp / max(len(predicted), 1), tp / max(len(truth), 1)


def _window_truth(manipulation: np.ndarray, horizon: int) -> np.ndarray:
    """A window is truly arm-heavy when most of its frames lie in a planted manipulation segment."""
    c = np.concatenate([[0], np.cumsum(manipulation)])
    t = np.arange(len(manipulation))
    end = np.minimum(t + horizon, len(manipulation))
    return (c[end] - c[t]) * 2 >= end - t


def _window_scores(planted, weights):
    predicted, truth = set(), set()
    for ep, w in weights.items():
        predicted |= {(ep, int(t)) for t in np.flatnonzero(w > 1)}
        truth |= {(ep, int(t)) for t in np.flatnonzero(_window_truth(planted.manipulation[ep], 50))}
    return _precision_recall(predicted, truth)


def _labels(planted):
    return {ep: m.astype(np.int8) for ep, m in planted.manipulation.items()}


@pytest.mark.parametrize("use_annotations", [False, True])
def test_recovers_planted_arm_heavy_episodes(planted, use_annotations):
    criterion = ah.Criterion(use_annotations=use_annotations)
    sel = ah.select_episodes(planted.table, criterion, labels=_labels(planted))
    precision, recall = _precision_recall(set(sel.episodes), planted.arm_heavy_episodes)
    assert precision >= 0.9 and recall >= 0.9, (sorted(sel.episodes), sorted(planted.arm_heavy_episodes))
    assert {d["source"] for d in sel.details.values()} == {"annotations" if use_annotations else "motion"}


@pytest.mark.parametrize("use_annotations", [False, True])
def test_recovers_planted_arm_heavy_windows(planted, use_annotations):
    criterion = ah.Criterion(use_annotations=use_annotations, oversample=4.0)
    weights = ah.window_weights(planted.table, criterion, labels=_labels(planted))
    precision, recall = _window_scores(planted, weights)
    assert precision >= 0.9 and recall >= 0.9, (precision, recall)
    assert set(np.unique(np.concatenate(list(weights.values())))) <= {1.0, 4.0}
    for ep, w in weights.items():
        assert len(w) == len(planted.manipulation[ep])


def test_motion_sums_match_reference(planted):
    table = planted.table
    sel = ah.select_episodes(table)
    for i, ep in enumerate(table.episode_index.tolist()):
        a = table.episode(i).astype(np.float64)
        arm = np.abs(np.diff(a[:, list(range(7, 14)) + list(range(15, 22))], axis=0)).sum()
        base = np.linalg.norm(a[:, 0:3], axis=1).sum() / 30.0
        assert sel.details[ep]["arm_motion"] == pytest.approx(arm)
        assert sel.details[ep]["base_motion"] == pytest.approx(base)


def test_min_arm_movement_and_threshold(planted):
    table = planted.table
    assert ah.select_episodes(table, ah.Criterion(min_arm_movement=1e6)).episodes == []
    assert len(ah.select_episodes(table, ah.Criterion(arm_ratio_threshold=0.0, min_arm_movement=0.0)).episodes) == len(
        table.lengths
    )
    with pytest.raises(ValueError, match="horizon"):
        ah.Criterion(horizon=0)


def test_skill_labels_from_annotation():
    annotation = {
        "skill_annotation": [
            {"skill_type": ["navigation"], "frame_duration": [0, 40]},
            {"skill_type": "pick up from", "frame_duration": [40, 90]},
            {"skill_type": "place on", "frame_duration": [95, 200]},
        ]
    }
    labels = ah.skill_labels(annotation, 120)
    assert (labels[:40] == 0).all() and (labels[40:90] == 1).all() and (labels[90:95] == -1).all()
    assert (labels[95:] == 1).all()


def test_missing_annotations_fall_back_to_motion(planted):
    labels = _labels(planted)
    first = int(planted.table.episode_index[0])
    del labels[first]
    sel = ah.select_episodes(planted.table, ah.Criterion(use_annotations=True), labels=labels)
    assert sel.details[first]["source"] == "motion"


def test_file_formats_round_trip(planted, tmp_path):
    criterion = ah.Criterion(oversample=2.5)
    sel = ah.select_episodes(planted.table, criterion)
    path = episode_files.save_episode_list(tmp_path / "eps.json", sel, criterion=criterion, repo_id="x/y")
    assert episode_files.load_episode_list(path) == sel.episodes
    data = json.loads(path.read_text())
    assert data["format"] == "openpi.episode_list" and data["criterion"]["oversample"] == 2.5
    weights = ah.window_weights(planted.table, criterion)
    wpath = episode_files.save_sample_weights(tmp_path / "w.json", weights, criterion=criterion, repo_id="x/y")
    loaded = episode_files.load_sample_weights(wpath)
    assert set(loaded) == set(weights)
    for ep in weights:
        np.testing.assert_array_equal(loaded[ep], weights[ep])
    # Run-length encoding keeps the file small.
    assert wpath.stat().st_size < 50 * len(weights) * 20
    with pytest.raises(ValueError, match=r"is not a openpi\.episode_list file"):
        episode_files.load_episode_list(wpath)
    with pytest.raises(FileNotFoundError, match="filter_arm_heavy_episodes"):
        episode_files.load_sample_weights(tmp_path / "missing.json")
    bad = json.loads(wpath.read_text())
    first = next(iter(bad["weights"]))
    bad["weights"][first]["runs"] = bad["weights"][first]["runs"][1:]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="do not cover"):
        episode_files.load_sample_weights(tmp_path / "bad.json")


def test_sample_weight_fn_maps_loader_samples(planted, tmp_path):
    criterion = ah.Criterion()
    weights = ah.window_weights(planted.table, criterion)
    path = episode_files.save_sample_weights(tmp_path / "w.json", weights, criterion=criterion)
    fn = episode_files.sample_weight_fn(path)
    ep = int(planted.table.episode_index[0])
    frames = np.arange(len(weights[ep]))
    np.testing.assert_array_equal(fn(np.full(len(frames), ep), frames), weights[ep])
    with pytest.raises(KeyError, match="no entry for episode 99"):
        fn(np.array([99]), np.array([0]))
    with pytest.raises(ValueError, match="not frame 100000"):
        fn(np.array([ep]), np.array([100_000]))
