"""Every data decision (stats location, norm kind, state transform, episode list, held-out set) comes from
``data_resolver``: the data config's create(), the norm-stats script, the analysis tools and the policy loader
give the same answers for every registered config."""

import dataclasses
import importlib.util
import pathlib

import numpy as np
import pytest

from openpi.analysis import sources
from openpi.datasets import episode_files
from openpi.datasets import lerobot_meta
from openpi.policies import b1k_policy
from openpi.policies import lerobot_policy
from openpi.policies import policy_config
from openpi.shared import normalize as _normalize
from openpi.training import config as _config
from openpi.training import data_resolver
from openpi.training import mobile_configs

_SCRIPT = pathlib.Path(__file__).parents[2] / "scripts" / "compute_norm_stats.py"


def _norm_stats_script():
    spec = importlib.util.spec_from_file_location("compute_norm_stats_under_test", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Stop(Exception):
    pass


# Every config that reads B1K-shaped data (the miniature dataset stands in for it); the simulators' configs read
# 4- and 11-dim-action datasets that the tools rightly refuse to measure with B1K data.
SIMULATOR_REPO_IDS = {_config.SIM_REPO_ID, mobile_configs.MOBILE_REPO_ID}
B1K_SHAPED = sorted(name for name, c in _config.configs().items() if c.data.repo_id not in SIMULATOR_REPO_IDS)


@pytest.mark.parametrize("name", B1K_SHAPED)
def test_every_consumer_takes_the_resolvers_answers(name, mini_v21, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the registry's relative assets_base_dir lands here
    # The generic configs name their dataset, cameras and action groups on the command line.
    generic = ("--data.root", str(mini_v21), "--data.image-keys", "base_0_rgb", "x", "--model.action-groups", "all", "0:23")
    overrides = generic if "lerobot" in name else ()
    config = _config.get_config(name, overrides)
    decisions = data_resolver.resolve_train_config(config)
    data = config.data
    asset = data.assets.asset_id or data.repo_id or pathlib.Path(data.root).name  # generic configs: the root's name
    assert decisions.stats_dir == pathlib.Path(config.assets_dirs) / asset
    stats = {
        "state": _normalize.NormStats(mean=np.zeros(23), std=np.ones(23), q01=-np.ones(23), q99=np.ones(23)),
        "actions": _normalize.NormStats(mean=np.ones(23), std=np.ones(23), q01=-np.ones(23), q99=np.ones(23)),
    }
    if decisions.per_timestep_norm:  # action stats per chunk step
        rows = (config.model.action_horizon, 23)
        stats["actions"] = _normalize.NormStats(mean=np.ones(rows), std=np.ones(rows), q01=-np.ones(rows), q99=np.ones(rows))
    _normalize.save(decisions.stats_dir, stats)
    if decisions.episodes_path is not None:
        meta = lerobot_meta.LeRobotMetadata.load(mini_v21)
        selection = type("Selection", (), {"episodes": meta.episode_indices[:2], "details": {}})()
        episode_files.save_episode_list(decisions.episodes_path, selection, criterion=_Criterion())

    # create(): stats read from the resolver's file, its norm kind, state transform and episode list.
    data = dataclasses.replace(config.data, tokenizer="offline")
    created = data.create(config.assets_dirs, config.model)
    assert created.asset_id == decisions.asset_id
    assert created.use_quantile_norm == decisions.use_quantiles
    np.testing.assert_array_equal(created.norm_stats["actions"].mean, stats["actions"].mean)
    expected_episodes = None if decisions.episodes_path is None else episode_files.load_episode_list(decisions.episodes_path)
    assert (None if created.episodes is None else list(created.episodes)) == expected_episodes
    robot_inputs = created.data_transforms.inputs[0]
    order = data_resolver.STATE_ORDERS[config.data.robot]
    if order is None:
        assert isinstance(robot_inputs, lerobot_policy.LeRobotInputs)
    else:
        assert isinstance(robot_inputs, b1k_policy.B1KInputs) and robot_inputs.state_order == order

    # The norm-stats script writes where create() reads.
    script = _norm_stats_script()
    monkeypatch.setattr(script._lerobot_meta, "resolve_root", lambda repo_id, root=None: mini_v21)
    recipe, output_dir = script.plan(script.Args(config_name=name, config_overrides=overrides))
    assert output_dir == decisions.stats_dir
    assert (recipe.robot, recipe.state_dims, recipe.delta_action_mask, recipe.per_timestep) == (
        decisions.robot, decisions.state_dims, decisions.delta_action_mask, decisions.per_timestep_norm)

    # The analysis tools read the same file with the same norm kind.
    if not sources.trains_transformed_actions(config):
        source = sources.resolve(sources.SourceArgs(config_name=name, root=str(mini_v21), config_overrides=overrides))
        assert source.norm_stats_path == decisions.stats_file
        assert source.use_quantiles == decisions.use_quantiles

    # The policy loader falls back to the same file.
    seen = {}

    def capture(step_dir, data_config):
        seen["fallback"] = data_config.stats_file
        raise _Stop

    (tmp_path / "ckpt" / "params").mkdir(parents=True)
    monkeypatch.setattr(policy_config, "load_norm_stats", capture)
    monkeypatch.setattr(_config, "get_config", lambda *_: config)
    train_config = dataclasses.replace(config, data=data)
    with pytest.raises(_Stop):
        policy_config.create_trained_policy(train_config, tmp_path / "ckpt")
    assert seen["fallback"] == decisions.stats_file


@dataclasses.dataclass(frozen=True)
class _Criterion:
    note: str = "test"


def test_curriculum_training_episodes_are_never_held_out(mini_v21, tmp_path, monkeypatch, capsys):
    """phase1_arm_heavy names its list as a ``{assets_dir}`` template: the tools must expand it."""
    monkeypatch.chdir(tmp_path)
    config = _config.get_config("phase1_arm_heavy")
    assert "{assets_dir}" in config.data.episodes_path
    meta = lerobot_meta.LeRobotMetadata.load(mini_v21)
    training = meta.episode_indices[1::2]
    selection = type("Selection", (), {"episodes": training, "details": {}})()
    path = data_resolver.resolve_train_config(config).episodes_path
    episode_files.save_episode_list(path, selection, criterion=_Criterion())
    source = sources.resolve(sources.SourceArgs(config_name="phase1_arm_heavy", root=str(mini_v21)))
    heldout = sources.heldout_episodes(source, meta.episode_indices, per_task=100)
    assert heldout and not set(heldout) & set(training)
    assert set(heldout) == set(meta.episode_indices) - set(training)
    assert "notice" not in capsys.readouterr().err


def test_no_episode_list_says_heldout_are_training_episodes(mini_v21, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _config.get_config("pi0_b1k").data.episodes_path is None
    source = sources.resolve(sources.SourceArgs(config_name="pi0_b1k", root=str(mini_v21)))
    meta = source.meta
    sources.heldout_episodes(source, meta.episode_indices, per_task=1)
    assert "held-out episodes are training episodes" in capsys.readouterr().err


def test_heldout_keeps_the_last_per_task_outside_training():
    tasks = {0: "a", 1: "a", 2: "a", 10: "b", 11: "b"}
    chosen, notice = data_resolver.heldout_episodes([2], list(tasks), tasks, per_task=1)
    assert chosen == [1, 11] and notice is None
    chosen, notice = data_resolver.heldout_episodes(None, list(tasks), tasks, per_task=2)
    assert chosen == [1, 2, 10, 11] and notice == data_resolver.NO_EPISODE_LIST
