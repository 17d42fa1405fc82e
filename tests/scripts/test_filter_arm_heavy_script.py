import json

import numpy as np
import pytest

from openpi.datasets import episode_files


def _precision_recall(predicted: set, truth: set) -> tuple[float, float]:
    tp = len(predicted & truth)
    return tp / max(len(predicted), 1), tp / max(len(truth), 1)


def _true_windows(ground_truth, horizon=50) -> set:
    """Window starts whose chunk lies mostly in a planted manipulation segment."""
    out = set()
    for ep, info in ground_truth["episodes"].items():
        manip = np.zeros(info["length"])
        for seg in info["segments"]:
            if seg["skill_type"] == "manipulation":
                manip[seg["start"] : seg["end"]] = 1
        c = np.concatenate([[0], np.cumsum(manip)])
        t = np.arange(info["length"])
        end = np.minimum(t + horizon, info["length"])
        out |= {(int(ep), int(s)) for s in t[(c[end] - c[t]) * 2 >= end - t]}
    return out


@pytest.mark.parametrize("use_annotations", [False, True])
def test_episode_level_recovers_planted_episodes(mini_root, ground_truth, load_script, tmp_path, use_annotations):
    script = load_script("filter_arm_heavy_episodes")
    out = tmp_path / "eps.json"
    script.run(script.Args(root=str(mini_root), output_path=str(out), use_annotations=use_annotations))
    selected = set(episode_files.load_episode_list(out))
    precision, recall = _precision_recall(selected, set(ground_truth["arm_heavy_episodes"]))
    assert precision >= 0.9 and recall >= 0.9, (sorted(selected), ground_truth["arm_heavy_episodes"])
    details = json.loads(out.read_text())["details"]
    assert {d["source"] for d in details.values()} == {"annotations" if use_annotations else "motion"}


@pytest.mark.parametrize("use_annotations", [False, True])
def test_window_level_recovers_planted_windows(mini_root, ground_truth, load_script, tmp_path, use_annotations):
    script = load_script("filter_arm_heavy_episodes")
    out = tmp_path / "w.json"
    script.run(script.Args(root=str(mini_root), output_path=str(out), level="window", use_annotations=use_annotations))
    weights = episode_files.load_sample_weights(out)
    predicted = {(ep, int(t)) for ep, w in weights.items() for t in np.flatnonzero(w > 1)}
    precision, recall = _precision_recall(predicted, _true_windows(ground_truth))
    assert precision >= 0.9 and recall >= 0.9, (precision, recall)
    assert {ep: len(w) for ep, w in weights.items()} == {
        int(ep): info["length"] for ep, info in ground_truth["episodes"].items()
    }


def test_clear_errors(mini_root, load_script, tmp_path):
    script = load_script("filter_arm_heavy_episodes")
    with pytest.raises(FileNotFoundError, match="No LeRobot dataset"):
        script.run(script.Args(root=str(tmp_path / "missing"), output_path=str(tmp_path / "o.json")))
    with pytest.raises(ValueError, match="oversample"):
        script.run(script.Args(root=str(mini_root), output_path=str(tmp_path / "o.json"), oversample=0.0))


def test_sample_weights_file_plugs_into_the_data_loader(mini_root, load_script, tmp_path):
    """The window-level file, through ``episode_files.sample_weight_fn``, drives the training loader's sampler:
    arm-heavy chunks are drawn about as often as their share of the sampling mass."""
    from openpi.training import data_loader

    script = load_script("filter_arm_heavy_episodes")
    out = tmp_path / "w.json"
    script.run(script.Args(root=str(mini_root), output_path=str(out), level="window", oversample=4.0))
    weights = episode_files.load_sample_weights(out)
    all_w = np.concatenate(list(weights.values()))
    expected = all_w[all_w > 1].sum() / all_w.sum()
    loader = data_loader.create_lerobot_data_loader(
        root=mini_root,
        action_horizon=50,
        batch_size=250,
        camera_keys=(),
        num_batches=4,
        framework="numpy",
        output="dict",
        sample_weights=episode_files.sample_weight_fn(out),
    )
    drawn = [
        weights[int(e)][int(f)] > 1 for batch in loader for e, f in zip(batch["episode_index"], batch["frame_index"])
    ]
    assert np.mean(all_w > 1) < expected  # oversampling raises the share
    assert np.mean(drawn) == pytest.approx(expected, abs=0.05)
