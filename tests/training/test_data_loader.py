import dataclasses

import jax
import numpy as np
import pytest
import torch

from openpi.datasets import stats as _stats
from openpi.models import model as _model
from openpi.policies import b1k_policy
from openpi.shared import normalize as _normalize
from openpi.training import config as _config
from openpi.training import data_loader as _dl


def _demo_config(root, tmp_path, *overrides: str) -> _config.TrainConfig:
    """``pi05_b1k_demo`` over ``root`` with 32-px images, its assets under ``tmp_path``, and ``overrides``."""
    return _config.cli(["pi05_b1k_demo", f"--data.root={root}", f"--assets-base-dir={tmp_path}",
                        "--model.image-resolution", "32", "32", "--num-workers=0", *overrides])  # fmt: skip


def _training_loader(config: _config.TrainConfig, **kwargs) -> _dl.DataLoader:
    """The trainer's own loader: the config's runtime data config (``create()``), then ``create_data_loader``."""
    return _dl.create_data_loader(config, config.data_config(), **kwargs)


def _raw_loader(root, **kwargs):
    """Batches of untransformed samples without video: enough to see which frames come out."""
    fields = dict(action_horizon=4, batch_size=8, camera_keys=(), framework="numpy", output="dict")
    return _dl.create_lerobot_data_loader(root=root, **{**fields, **kwargs})


def _frames(loader, batches=None):
    out = []
    for i, batch in enumerate(loader):
        if batches is not None and i >= batches:
            break
        out.extend(zip(batch["episode_index"].tolist(), batch["frame_index"].tolist()))
    return out


def test_jax_batches_are_observations(mini_v21, tmp_path):
    config = _demo_config(mini_v21, tmp_path, "--batch-size=4", "--model.action-horizon=10")
    loader = _training_loader(config, num_batches=2)
    batches = list(loader)
    assert len(batches) == 2
    observation, actions = batches[0]
    assert isinstance(observation, _model.Observation) and isinstance(actions, jax.Array)
    assert set(observation.images) == {"base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb"}
    image = observation.images["base_0_rgb"]
    assert image.shape == (4, 32, 32, 3) and image.dtype == np.float32
    assert float(image.min()) >= -1.0 and float(image.max()) <= 1.0
    assert observation.image_masks["left_wrist_0_rgb"].shape == (4,)
    assert observation.state.shape == (4, 32) and actions.shape == (4, 10, 32)
    np.testing.assert_array_equal(np.asarray(actions)[..., 23:], 0.0)
    assert observation.tokenized_prompt.shape == (4, 200) and observation.tokenized_prompt_mask.dtype == bool


def test_pytorch_batches_are_tensors(mini_v30, tmp_path):
    config = _demo_config(mini_v30, tmp_path, "--batch-size=3", "--model.action-horizon=5")
    loader = _training_loader(config, framework="pytorch", num_batches=1)
    observation, actions = next(iter(loader))
    assert isinstance(actions, torch.Tensor) and actions.shape == (3, 5, 32)
    assert isinstance(observation.images["base_0_rgb"], torch.Tensor)
    assert observation.images["base_0_rgb"].dtype == torch.float32


def test_seeded_shuffle_drop_last_and_epochs(mini_v21):
    first = _frames(_raw_loader(mini_v21, seed=1, num_batches=5))
    assert first == _frames(_raw_loader(mini_v21, seed=1, num_batches=5))
    assert first != _frames(_raw_loader(mini_v21, seed=2, num_batches=5))
    loader = _raw_loader(mini_v21, seed=1)
    n = len(loader.dataset)
    assert len(loader) == n // 8
    epoch_one = _frames(loader, batches=len(loader))
    assert len(set(epoch_one)) == len(epoch_one) == (n // 8) * 8  # a permutation, last partial batch dropped
    two_epochs = _frames(_raw_loader(mini_v21, seed=1, num_batches=2 * len(loader)))
    assert two_epochs[: len(epoch_one)] == epoch_one and two_epochs[len(epoch_one) :] != epoch_one
    ordered = _frames(_raw_loader(mini_v21, shuffle=False, drop_last=False, num_batches=-(-n // 8)))
    assert len(ordered) == n and ordered == sorted(ordered, key=lambda x: (x[0], x[1]))


@pytest.mark.parametrize("start", [1, 7, 16, 23])
def test_start_batch_continues_the_uninterrupted_order(mini_v21, start):
    """Also across epoch boundaries: 40 batches of 8 span more than one epoch of the ~240-frame dataset."""
    uninterrupted = _frames(_raw_loader(mini_v21, seed=5, num_batches=start + 40))
    resumed = _frames(_raw_loader(mini_v21, seed=5, num_batches=40, start_batch=start))
    assert resumed == uninterrupted[8 * start :]


def test_episode_filter_and_sample_weights(mini_v21):
    kept = _frames(_raw_loader(mini_v21, episode_filter=lambda e: e >= 10_000, num_batches=6))
    assert {e for e, _ in kept} <= {10010, 10020}
    kept = _frames(_raw_loader(mini_v21, episodes=[20], num_batches=2))
    assert {e for e, _ in kept} == {20}

    def late_frames_of_episode_10(episodes, frames):
        return ((episodes == 10) & (frames >= 30)).astype(float)

    drawn = _frames(_raw_loader(mini_v21, sample_weights=late_frames_of_episode_10, num_batches=6))
    assert {e for e, _ in drawn} == {10} and min(f for _, f in drawn) >= 30
    with pytest.raises(ValueError, match="sample_weights"):
        _raw_loader(mini_v21, sample_weights=np.ones(3))
    with pytest.raises(ValueError, match="No episodes"):
        _raw_loader(mini_v21, episode_filter=lambda e: False)


def test_worker_processes_give_the_same_batches(mini_v21):
    single = _frames(_raw_loader(mini_v21, seed=3, num_batches=4))
    parallel = _frames(_raw_loader(mini_v21, seed=3, num_batches=4, num_workers=2))
    assert parallel == single


def test_create_data_loader_from_training_config(mini_v21, tmp_path):
    """The trainer's entry point: a registered config and its runtime DataConfig, with the norm stats and an
    episode list."""
    config = _demo_config(mini_v21, tmp_path, "--batch-size=4", "--model.action-horizon=6", "--seed=0")
    norm_stats = _stats.compute_norm_stats(mini_v21, state_transform=b1k_policy.proprio_to_state, progress=False)
    _normalize.save(config.assets_dirs / _config.DEMO_REPO_ID, norm_stats)
    data_config = dataclasses.replace(config.data_config(), episodes=(10, 10010))
    assert data_config.use_quantile_norm  # pi0.5's normalization
    loader = _dl.create_data_loader(config, data_config, num_batches=3, output="dict", framework="numpy")
    assert loader.dataset.dataset.camera_keys == list(config.data.image_keys.values())
    batches = list(loader)
    assert loader.dataset.dataset.episodes == [10, 10010]
    # Quantile-normalized actions of real dims lie in about [-1, 1]; constant torso dim 6 is exactly 0.
    actions = np.concatenate([b["actions"] for b in batches])
    assert actions.shape[1:] == (6, 32) and np.abs(actions[..., :23]).max() < 1.5
    np.testing.assert_array_equal(actions[..., 6], 0.0)
    # A resumed run continues the same order: from step 2 it sees what an uninterrupted run sees at step 2.
    resumed = _dl.create_data_loader(config, data_config, num_batches=1, output="dict", framework="numpy", start_step=2)
    np.testing.assert_array_equal(next(iter(resumed))["actions"], batches[2]["actions"])
    observation, actions = next(iter(_dl.create_data_loader(config, data_config, num_batches=1)))
    assert observation.images["base_0_rgb"].shape == (4, 32, 32, 3) and actions.shape == (4, 6, 32)
