import jax
import numpy as np
import pytest
import torch

from openpi.models import model as _model
from openpi.models import tokenizer as _tokenizer
from openpi.training import data_loader as _dl


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


def test_jax_batches_are_observations(mini_v21):
    loader = _dl.create_lerobot_data_loader(
        root=mini_v21,
        transforms=_dl.b1k_transforms(image_size=32, tokenizer=_tokenizer.FallbackTokenizer(200)),
        action_horizon=10,
        batch_size=4,
        num_batches=2,
    )
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


def test_pytorch_batches_are_tensors(mini_v30):
    loader = _dl.create_lerobot_data_loader(
        root=mini_v30,
        transforms=_dl.b1k_transforms(image_size=32, tokenizer=_tokenizer.FallbackTokenizer(200)),
        action_horizon=5,
        batch_size=3,
        framework="pytorch",
        num_batches=1,
    )
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


def test_create_data_loader_from_training_config(mini_v21):
    """The trainer's entry point: a TrainConfig-like object and its runtime DataConfig."""
    import types

    from openpi import transforms as _t
    from openpi.datasets import stats as _stats
    from openpi.policies import b1k_policy

    pipeline = _dl.b1k_transforms(image_size=32, tokenizer=_tokenizer.FallbackTokenizer(200))
    norm_stats = _stats.compute_norm_stats(mini_v21, state_transform=b1k_policy.proprio_to_state, progress=False)
    data_config = types.SimpleNamespace(
        repo_id="mini",
        root=str(mini_v21),
        norm_stats=norm_stats,
        use_quantile_norm=True,
        action_key="action",
        repack_transforms=_t.Group(inputs=[pipeline[0]]),
        data_transforms=_t.Group(inputs=[pipeline[1]]),
        model_transforms=_t.Group(inputs=pipeline[3:]),
        episodes=(10, 10010),
        sample_weights_path=None,
    )
    config = types.SimpleNamespace(model=types.SimpleNamespace(action_horizon=6), batch_size=4, seed=0, num_workers=0)
    loader = _dl.create_data_loader(config, data_config, num_batches=3, output="dict", framework="numpy")
    assert loader.dataset.dataset.camera_keys == list(b1k_policy.B1K_CAMERAS)
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
