import dataclasses
import functools
import json

import numpy as np
import pytest

from openpi.datasets import stats as _stats
from openpi.policies import b1k_policy
from openpi.shared import normalize
from openpi.training import config as _config
from openpi.training import data_loader as _dl


def _loader_arrays(root, horizon, tmp_path):
    """State and actions exactly as the trainer's data loader yields them: ``pi05_b1k_demo``'s own pipeline
    (``config.data.create()``, no norm stats yet), without the model's padding."""
    config = _config.cli(["pi05_b1k_demo", f"--data.root={root}", f"--assets-base-dir={tmp_path}",
                          f"--model.action-horizon={horizon}", "--batch-size=1"])  # fmt: skip
    data_config = config.data_config()
    assert data_config.norm_stats is None
    loader = _dl.create_data_loader(config, data_config, shuffle=False, framework="numpy", output="dict")
    batches = [b for _, b in zip(range(len(loader)), loader)]
    state = np.concatenate([b["state"] for b in batches])[:, :23]
    actions = np.concatenate([b["actions"] for b in batches])[..., :23].reshape(-1, 23)
    assert len(state) == len(loader.dataset)
    return state, actions


@pytest.mark.parametrize("horizon", [1, 10])
def test_fast_path_equals_data_loader_stats(mini_v21, horizon, tmp_path):
    fast = _stats.compute_norm_stats(
        mini_v21, state_transform=b1k_policy.proprio_to_state, action_horizon=horizon, progress=False
    )
    state, actions = _loader_arrays(mini_v21, horizon, tmp_path)
    for key, exact in (("state", state.astype(np.float64)), ("actions", actions.astype(np.float64))):
        got = fast[key]
        np.testing.assert_allclose(got.mean, exact.mean(0), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(got.std, exact.std(0), rtol=1e-5, atol=1e-7)
        span = exact.max(0) - exact.min(0)
        for q, value in ((0.01, got.q01), (0.99, got.q99)):
            assert np.all(np.abs(value - np.quantile(exact, q, axis=0)) <= 0.01 * span + 1e-7), (key, q)


def test_chunk_weights_count_chunk_membership():
    length, horizon = 7, 3
    counts = np.zeros(length)
    for start in range(length):
        np.add.at(counts, np.minimum(start + np.arange(horizon), length - 1), 1)
    np.testing.assert_array_equal(_stats.chunk_weights(length, horizon), counts)


def test_max_frames_uses_a_subset(mini_v21):
    full = _stats.compute_norm_stats(mini_v21, progress=False)
    part = _stats.compute_norm_stats(mini_v21, max_frames=50, progress=False)
    assert len(full["state"].mean) == 256  # no state transform: the raw proprio
    assert not np.allclose(full["actions"].mean, part["actions"].mean)


def test_script_writes_openpi_norm_stats(mini_v21, tmp_path, load_script):
    script = load_script("compute_norm_stats")
    script.main(script.Args(root=mini_v21, output_dir=tmp_path / "assets"))
    raw = json.loads((tmp_path / "assets" / "norm_stats.json").read_text())
    assert set(raw["norm_stats"]) == {"state", "actions"}
    assert set(raw["norm_stats"]["actions"]) == {"mean", "std", "q01", "q99"}
    loaded = normalize.load(tmp_path / "assets")
    expected = _stats.compute_norm_stats(
        mini_v21, state_transform=functools.partial(b1k_policy.proprio_to_state, state_order="action"), progress=False
    )
    np.testing.assert_allclose(loaded["state"].mean, expected["state"].mean)
    assert len(loaded["state"].mean) == 23
    # Torso dim 6 is constant 0: its std is 0 and normalization must not blow up on it.
    assert loaded["actions"].std[6] == 0.0
    with pytest.raises(ValueError, match="--repo-id"):
        script.main(script.Args())


def test_script_takes_dataset_and_assets_from_a_config(mini_v21, tmp_path, load_script, monkeypatch):
    from openpi.training import config as _config

    script = load_script("compute_norm_stats")
    name = next(n for n in _config.configs() if n.endswith("_demo"))
    monkeypatch.chdir(tmp_path)
    config = _config.get_config(name)
    script.main(script.Args(config_name=name, root=mini_v21))
    asset_id = config.data.assets.asset_id or config.data.repo_id
    written = normalize.load(config.assets_dirs / asset_id)
    assert len(written["actions"].mean) == 23  # the B1K robot transform made a 23-dim state
    assert len(written["state"].mean) == 23


def test_norm_stats_script_covers_only_the_chosen_dims(mini_v21, tmp_path, load_script, monkeypatch):
    script = load_script("compute_norm_stats")
    full = _stats.compute_norm_stats(mini_v21, state_transform=b1k_policy.proprio_to_state, progress=False)
    dims = (22, 7, 0)
    script.main(script.Args(root=mini_v21, state_dims=dims, output_dir=tmp_path / "cli"))
    written = normalize.load(tmp_path / "cli")
    for field in ("mean", "std", "q01", "q99"):
        np.testing.assert_allclose(getattr(written["state"], field), getattr(full["state"], field)[list(dims)], rtol=1e-6)
    np.testing.assert_allclose(written["actions"].mean, full["actions"].mean, rtol=1e-6)  # actions untouched

    # From a config: its data.state_dims decide.
    name = "pi05_b1k_demo"
    config = _config.cli([name, "--data.state-dims", "3", "4"])
    monkeypatch.setattr(_config, "get_config", lambda *_: config)
    script.main(script.Args(config_name=name, root=mini_v21, action_horizon=1, output_dir=tmp_path / "config"))
    np.testing.assert_allclose(normalize.load(tmp_path / "config")["state"].mean, full["state"].mean[[3, 4]], rtol=1e-6)

    with pytest.raises(ValueError, match="outside the dataset's 23-dim state"):
        script.main(script.Args(root=mini_v21, state_dims=(23,), output_dir=tmp_path / "bad"))


def test_configs_sharing_a_recipe_share_one_computation(mini_v21, tmp_path, monkeypatch):
    """``norm_stats.write_all`` (the demos' and benchmarks' path): one computation per distinct recipe, written
    where each config's training reads them; per-frame counting keeps the chunk horizon for per-chunk stats."""
    from openpi.datasets import lerobot_meta
    from openpi.experiments import norm_stats
    from openpi.training import data_resolver

    names = ("pi05_b1k_demo", "pi0_b1k_uniform_demo", "pi05_b1k_delta_pertimestep_demo")
    configs = []
    for name in names:
        config = _config.get_config(name)
        data = dataclasses.replace(config.data, root=str(mini_v21))
        configs.append(dataclasses.replace(config, data=data, assets_base_dir=str(tmp_path)))
    computed = []
    compute = norm_stats.compute
    monkeypatch.setattr(norm_stats, "compute", lambda recipe, **kw: computed.append(recipe) or compute(recipe, **kw))
    episodes = lerobot_meta.LeRobotMetadata.load(mini_v21).episode_indices[:3]
    written = norm_stats.write_all(configs, chunked=False, episodes=episodes, progress=False)
    assert [r.action_horizon for r in computed] == [1, 50]  # the two flat configs share one computation
    flat = _stats.compute_norm_stats(mini_v21, state_transform=b1k_policy.proprio_to_state, episodes=episodes,
                                     progress=False)  # fmt: skip
    for config in configs:
        assert written[config.name] == data_resolver.resolve_train_config(config).stats_file
    for config in configs[:2]:
        loaded = normalize.load(written[config.name].parent)
        np.testing.assert_allclose(loaded["actions"].std, flat["actions"].std, rtol=1e-6)
        np.testing.assert_allclose(loaded["state"].mean, flat["state"].mean, rtol=1e-6)
    assert np.shape(normalize.load(written[names[2]].parent)["actions"].mean) == (50, 23)  # per chunk step
    norm_stats.write_all(configs, chunked=False, episodes=episodes, skip_existing=True, progress=False)
    assert len(computed) == 2  # a continuing comparison keeps the stats it has
