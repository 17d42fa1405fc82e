"""The PyTorch pi0 / pi0.5 on its own: it learns (overfits one batch), runs in bfloat16, and preprocesses images
like the JAX model."""

import pathlib
import sys

import jax.numpy as jnp
import numpy as np
import pytest
import torch

from openpi.models import model as _model
from openpi.models_pytorch import pi0_pytorch
from openpi.models_pytorch import preprocessing_pytorch

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import _pi0_fixtures
from _pi0_fixtures import batch
from _pi0_fixtures import observation
from _pi0_fixtures import tiny_config

one_torch_thread = _pi0_fixtures.one_torch_thread  # autouse fixture


@pytest.mark.parametrize("pi05", [False, True], ids=["pi0", "pi05"])
def test_overfits_one_batch(pi05):
    """Within 200 AdamW steps on one fixed batch (fixed noise and time) the loss falls at least 10x.

    Stops once it has. The 257k-row token embedding is frozen: its dense gradient would dominate the CPU step.
    """
    torch.manual_seed(0)
    config = tiny_config(pi05, "per_group", image_resolution=(32, 32))
    model = pi0_pytorch.PI0Pytorch(config)
    model.paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight.requires_grad_(False)
    data = batch(config)
    obs = observation(data, "torch")
    actions, noise, time = (torch.from_numpy(data[k]) for k in ("actions", "noise", "time"))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-3, weight_decay=0.0)
    losses = []
    for _ in range(200):
        loss, metrics = model.compute_loss_and_metrics(obs, actions, noise=noise, time=time)
        loss = loss.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if losses[-1] < losses[0] / 10:
            break
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1], len(losses))
    assert metrics["loss/left_arm"] < metrics["loss/left_arm"].new_tensor(losses[0])


def test_bfloat16_model_trains_and_samples():
    """Mixed precision like openpi: bf16 weights, float32 norms / embeddings / action projections, f32 outputs."""
    config = tiny_config(True, dtype="bfloat16", image_resolution=(32, 32))
    model = pi0_pytorch.PI0Pytorch(config)
    dtypes = {name: p.dtype for name, p in model.named_parameters()}
    assert dtypes["action_in_proj.weight"] == torch.float32
    assert dtypes["paligemma_with_expert.gemma_expert.model.layers.0.input_layernorm.dense.weight"] == torch.float32
    assert dtypes["paligemma_with_expert.gemma_expert.model.layers.0.mlp.up_proj.weight"] == torch.bfloat16
    data = batch(config)
    obs = observation(data, "torch")
    loss = model(obs, torch.from_numpy(data["actions"])).mean()
    loss.backward()
    assert torch.isfinite(loss) and loss.dtype == torch.float32
    assert model.action_in_proj.weight.grad is not None
    actions = model.sample_actions(obs, num_steps=2)
    assert actions.shape == data["actions"].shape and actions.dtype == torch.float32
    assert torch.isfinite(actions).all()


def test_images_of_another_size_are_resized_like_jax():
    images = np.random.default_rng(0).uniform(-1, 1, (2, 48, 80, 3)).astype(np.float32)
    for height, width in [(32, 32), (96, 64)]:
        expected = np.asarray(_model.resize_with_pad(jnp.asarray(images), height, width))
        got = preprocessing_pytorch.resize_with_pad(torch.from_numpy(images), height, width).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_missing_image_masks_mean_present_and_time_is_sampled(monkeypatch):
    """Like the JAX model: cameras without a mask count as present; noise and time default to random draws."""
    config = tiny_config(False, image_resolution=(32, 32))
    model = pi0_pytorch.PI0Pytorch(config)
    data = batch(config)
    obs = observation(data, "torch")
    no_masks = _model.Observation(
        images=obs.images,
        image_masks={},
        state=obs.state,
        tokenized_prompt=obs.tokenized_prompt,
        tokenized_prompt_mask=obs.tokenized_prompt_mask,
    )
    all_masks = _model.Observation(
        images=obs.images,
        image_masks={k: torch.ones(2, dtype=torch.bool) for k in obs.images},
        state=obs.state,
        tokenized_prompt=obs.tokenized_prompt,
        tokenized_prompt_mask=obs.tokenized_prompt_mask,
    )
    fixed = {k: torch.from_numpy(data[k]) for k in ("noise", "time")}
    actions = torch.from_numpy(data["actions"])
    with torch.no_grad():
        torch.testing.assert_close(model(no_masks, actions, **fixed), model(all_masks, actions, **fixed))

    # The times the loss draws for 10,000 samples, caught where they enter the action expert (the model's
    # passes skipped: only the draw is under test).
    class Drawn(Exception):
        pass

    def catch_time(observation, x_t, time):
        raise Drawn(time)

    monkeypatch.setattr(model, "embed_prefix", lambda *args, **kwargs: (None, None, None))
    monkeypatch.setattr(model, "embed_suffix", catch_time)
    with pytest.raises(Drawn) as drawn:
        model.compute_loss_and_metrics(obs, torch.zeros(10_000, 1, 1))
    times = drawn.value.args[0]
    assert times.shape == (10_000,)
    assert 0.001 <= times.min() and times.max() <= 1.0
    assert abs(times.mean().item() - (0.6 * 0.999 + 0.001)) < 0.01  # Beta(1.5, 1) has mean 0.6


def test_train_time_augmentation():
    """``train=True`` augments like JAX: values stay in [-1, 1], a constant image stays constant under crop and
    rotation (only its colour moves), wrist cameras are never moved geometrically, and the loss changes."""
    torch.manual_seed(0)
    flat = torch.full((2, 32, 32, 3), 0.2)
    shifted = preprocessing_pytorch.augment_images(flat, geometric=True)
    assert shifted.min() >= -1 and shifted.max() <= 1
    torch.testing.assert_close(shifted, shifted[:, :1, :1].expand_as(shifted))
    edge = torch.zeros(1, 32, 32, 3)
    edge[:, :, 16:] = 1.0
    torch.manual_seed(1)
    moved = preprocessing_pytorch.augment_images(edge, geometric=True)
    torch.manual_seed(1)
    still = preprocessing_pytorch.augment_images(edge, geometric=False)
    assert not torch.allclose(moved, still)
    assert (still[:, :, :16] == still[0, 0, 0]).all() and (still[:, :, 16:] == still[0, 0, 31]).all()

    config = tiny_config(False, image_resolution=(32, 32))
    model = pi0_pytorch.PI0Pytorch(config)
    data = batch(config)
    args = (observation(data, "torch"), *(torch.from_numpy(data[k]) for k in ("actions", "noise", "time")))
    with torch.no_grad():
        plain = model(*args)
        torch.testing.assert_close(model(*args), plain)
        assert not torch.allclose(model(*args, train=True), plain)


def test_gradient_checkpointing_gives_the_same_gradients():
    config = tiny_config(True, image_resolution=(32, 32))
    torch.manual_seed(0)
    plain = pi0_pytorch.PI0Pytorch(config)
    checkpointed = pi0_pytorch.PI0Pytorch(config, gradient_checkpointing=True)
    checkpointed.load_state_dict(plain.state_dict())
    data = batch(config)
    args = (observation(data, "torch"), *(torch.from_numpy(data[k]) for k in ("actions", "noise", "time")))
    losses = []
    for model in (plain, checkpointed):
        loss = model(*args).mean()
        loss.backward()
        losses.append(loss.detach())
    torch.testing.assert_close(losses[0], losses[1])
    grads = dict(checkpointed.named_parameters())
    for name, param in plain.named_parameters():
        if param.grad is not None:
            torch.testing.assert_close(grads[name].grad, param.grad, msg=name)
