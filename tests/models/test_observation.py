"""Observation conversion, resizing with padding and train-time augmentation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from openpi.models import model as _model
from openpi.models import pi0_config


def _obs(images, masks=None, batch=2):
    return _model.Observation(
        images=images,
        image_masks=masks if masks is not None else {},
        state=jnp.zeros((batch, 4)),
    )


def test_from_dict_converts_uint8_images_to_minus_one_one_and_round_trips():
    data = {
        "image": {"base_0_rgb": np.array([[[[0, 255, 51]]]], np.uint8)},
        "image_mask": {"base_0_rgb": np.array([True])},
        "state": np.zeros((1, 4), np.float32),
        "tokenized_prompt": np.zeros((1, 3), np.int32),
        "tokenized_prompt_mask": np.ones((1, 3), bool),
    }
    obs = _model.Observation.from_dict(data)
    np.testing.assert_allclose(obs.images["base_0_rgb"][0, 0, 0], [-1.0, 1.0, -0.6], atol=1e-6)
    out = obs.to_dict()
    assert set(out) == {"image", "image_mask", "state", "tokenized_prompt", "tokenized_prompt_mask"}
    assert _model.Observation.from_dict(out).images["base_0_rgb"].dtype == np.float32


def test_from_dict_rejects_prompt_without_mask():
    with pytest.raises(ValueError, match="tokenized_prompt_mask"):
        _model.Observation.from_dict(
            {"image": {}, "image_mask": {}, "state": np.zeros((1, 2)), "tokenized_prompt": np.zeros((1, 3))}
        )


def test_resize_with_pad_keeps_aspect_ratio_and_pads_black():
    image = jnp.full((1, 40, 20, 3), 0.5)
    out = np.asarray(_model.resize_with_pad(image, 32, 32))
    assert out.shape == (1, 32, 32, 3)
    np.testing.assert_allclose(out[:, :, 8:24], 0.5, atol=1e-6)
    np.testing.assert_array_equal(out[:, :, :8], -1.0)
    np.testing.assert_array_equal(out[:, :, 24:], -1.0)


def test_preprocess_eval_resizes_fills_masks_and_checks_keys():
    images = {k: jnp.zeros((2, 64, 64, 3)) for k in _model.IMAGE_KEYS}
    out = _model.preprocess_observation(None, _obs(images), image_resolution=(32, 32))
    assert all(out.images[k].shape == (2, 32, 32, 3) for k in _model.IMAGE_KEYS)
    assert all(out.image_masks[k].tolist() == [True, True] for k in _model.IMAGE_KEYS)
    with pytest.raises(ValueError, match="missing \\['right_wrist_0_rgb'\\]"):
        _model.preprocess_observation(None, _obs({k: images[k] for k in _model.IMAGE_KEYS[:2]}))


def test_train_augmentation_moves_base_images_but_not_wrist_images():
    image = np.full((8, 32, 32, 3), -0.8, np.float32)
    image[:, 12, 20] = 0.9  # one bright pixel
    images = {k: jnp.asarray(image) for k in _model.IMAGE_KEYS}
    out = _model.preprocess_observation(jax.random.key(0), _obs(images, batch=8), train=True, image_resolution=(32, 32))

    def bright_spot(x):
        return [np.unravel_index(np.argmax(np.asarray(x[i]).sum(-1)), (32, 32)) for i in range(x.shape[0])]

    for key in _model.IMAGE_KEYS:
        aug = np.asarray(out.images[key])
        assert aug.min() >= -1.0 and aug.max() <= 1.0
        assert not np.allclose(aug, image)  # colour jitter applies to every camera
    assert all(p == (12, 20) for p in bright_spot(out.images["left_wrist_0_rgb"]))
    assert any(p != (12, 20) for p in bright_spot(out.images["base_0_rgb"]))
    # Samples get independent augmentations.
    assert not np.allclose(out.images["base_0_rgb"][0], out.images["base_0_rgb"][1])


def test_train_needs_rng():
    images = {k: jnp.zeros((1, 32, 32, 3)) for k in _model.IMAGE_KEYS}
    with pytest.raises(ValueError, match="needs an rng"):
        _model.preprocess_observation(None, _obs(images, batch=1), train=True)


def test_inputs_spec_and_fake_obs_have_openpi_shapes():
    config = pi0_config.Pi0Config()
    obs, actions = config.inputs_spec(batch_size=3)
    assert obs.images["base_0_rgb"].shape == (3, 224, 224, 3)
    assert obs.image_masks["left_wrist_0_rgb"].shape == (3,)
    assert obs.state.shape == (3, 32)
    assert obs.tokenized_prompt.shape == (3, 48) and obs.tokenized_prompt.dtype == jnp.int32
    assert actions.shape == (3, 50, 32)
    assert pi0_config.Pi0Config(pi05=True).inputs_spec()[0].tokenized_prompt.shape == (1, 200)
    assert config.model_type == _model.ModelType.PI0
    assert config.fake_act(2).shape == (2, 50, 32)
