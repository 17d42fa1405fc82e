"""The JAX and PyTorch training steps call their model's loss the same way: with the same inputs both augment the
images (``train=True``) and pass the same switches, so the two trainers cannot drift apart silently; and the
PyTorch augmentation draws depend only on (seed, step, sample), so resumed and DDP runs augment alike."""

import dataclasses

import jax
import numpy as np
import pytest
import torch

from openpi.models import model as _model
from openpi.models import pi0
from openpi.models_pytorch import pi0_pytorch
from openpi.models_pytorch import preprocessing_pytorch
from openpi.training import config as _config
from openpi.training import jax_trainer
from openpi.training import pytorch_trainer
from openpi.training import sharding

DEMO = "pi0_b1k_adaptive_demo"  # the adaptive strategy: the step also hands runtime weights to the loss


def _config_and_batch():
    """The demo config with two random 32x32 cameras (one wrist), and one batch of 2 as numpy arrays."""
    config = _config.get_config(DEMO)
    model = dataclasses.replace(config.model, image_resolution=(32, 32))
    config = dataclasses.replace(config, model=model, batch_size=2)
    rng = np.random.default_rng(0)
    images = {name: rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32) for name in ("head", "left_wrist")}
    observation = {
        "image": images,
        "image_mask": {name: np.ones(2, bool) for name in images},
        "state": rng.standard_normal((2, model.action_dim)).astype(np.float32),
        "tokenized_prompt": np.zeros((2, model.max_token_len), np.int32),
        "tokenized_prompt_mask": np.ones((2, model.max_token_len), bool),
    }
    actions = rng.standard_normal((2, model.action_horizon, model.action_dim)).astype(np.float32)
    return config, observation, actions


def _spy(monkeypatch, cls, calls: list[dict]):
    """Records the switches every call of ``cls.compute_loss_and_metrics`` gets."""
    original = cls.compute_loss_and_metrics

    def spy(self, *args, **kwargs):
        calls.append({"train": kwargs.get("train", False), "runtime_weights": kwargs.get("balance_weights") is not None})
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "compute_loss_and_metrics", spy)


def _jax_step(config, observation, actions):
    mesh = sharding.make_mesh(1)
    state, _ = jax_trainer.init_train_state(config, mesh)
    obs = _model.Observation.from_dict(jax.tree.map(jax.numpy.asarray, observation))
    jax_trainer.train_step(config, jax.random.key(0), state, (obs, jax.numpy.asarray(actions)))


def _torch_step(config, observation, actions):
    model = pytorch_trainer.create_model(config, torch.device("cpu"))
    optimizer = pytorch_trainer.create_optimizer(config, model)
    obs = _model.Observation.from_dict(jax.tree.map(torch.as_tensor, observation))
    balance = pytorch_trainer.initial_loss_balance(config, None, torch.device("cpu"))
    pytorch_trainer.train_step(config, pytorch_trainer.LossAndMetrics(model), model, optimizer, 0, obs,
                               torch.as_tensor(actions), loss_balance=balance)


def test_both_training_steps_augment_and_pass_the_same_switches(monkeypatch, one_torch_thread):
    config, observation, actions = _config_and_batch()
    jax_calls, torch_calls = [], []
    _spy(monkeypatch, pi0.Pi0, jax_calls)
    _spy(monkeypatch, pi0_pytorch.PI0Pytorch, torch_calls)
    _jax_step(config, observation, actions)
    _torch_step(config, observation, actions)
    assert jax_calls == [{"train": True, "runtime_weights": True}]
    assert torch_calls == jax_calls


def test_pytorch_step_augments_each_sample_by_seed_step_and_row():
    images = torch.rand(4, 16, 16, 3) * 2 - 1

    def augmented(step, rows):
        generators = pytorch_trainer.augment_generators(3, step, rows)
        return preprocessing_pytorch.augment_images(images[rows.start : rows.stop], geometric=True,
                                                    generators=generators)

    full = augmented(5, range(0, 4))
    assert not torch.allclose(full, images)  # augmented at all
    assert torch.equal(full, augmented(5, range(0, 4)))  # a resumed run draws the same
    halves = torch.cat([augmented(5, range(0, 2)), augmented(5, range(2, 4))])
    assert torch.equal(full, halves)  # two DDP ranks draw what one process does
    assert not torch.allclose(full, augmented(6, range(0, 4)))  # another step, other draws


@pytest.mark.parametrize("geometric", [True, False])
def test_augmentation_without_generators_still_draws_from_torch_s_generator(geometric):
    images = torch.rand(2, 16, 16, 3) * 2 - 1
    torch.manual_seed(0)
    first = preprocessing_pytorch.augment_images(images, geometric=geometric)
    torch.manual_seed(0)
    assert torch.equal(first, preprocessing_pytorch.augment_images(images, geometric=geometric))
    assert not torch.equal(first, preprocessing_pytorch.augment_images(images, geometric=geometric))
