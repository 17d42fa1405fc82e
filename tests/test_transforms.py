import warnings

import numpy as np
import pytest

from openpi import transforms as _t
from openpi.shared import normalize


def _stats(x):
    s = normalize.RunningStats()
    s.update(x)
    return s.get_statistics()


@pytest.mark.parametrize("use_quantiles", [False, True])
def test_normalize_roundtrip_and_constant_dim(use_quantiles):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4, 6)).astype(np.float32)
    x[..., 6 - 1] = 0.0  # constant dim, like B1K's torso dim 6
    stats = {"actions": _stats(x)}
    _t._WARNED.clear()  # an earlier test may have warned about the same stats
    with pytest.warns(UserWarning, match="'actions' dim 5"):
        normed = _t.Normalize(stats, use_quantiles=use_quantiles)({"actions": x.copy()})
    y = normed["actions"]
    assert np.all(np.isfinite(y))
    np.testing.assert_array_equal(y[..., 5], 0.0)
    unnormalize = _t.Unnormalize(stats, use_quantiles=use_quantiles)
    back = unnormalize({"actions": y})["actions"]
    np.testing.assert_allclose(back, x, atol=1e-5)


def test_constant_dim_warns_once_per_process_and_unnormalizes_to_constant():
    """A run builds Normalize and Unnormalize from the same stats several times (data loader, policy, validation);
    the warning appears once, even with Python's filter set to show every warning."""
    stats = {"state": normalize.NormStats(mean=np.array([0.0, 2.0]), std=np.array([1.0, 1e-9]))}
    _t._WARNED.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        norm = _t.Normalize(stats)
        norm({"state": np.array([1.0, 2.0])})
        _t.Normalize(stats)
        unnormalize = _t.Unnormalize(stats)
        _t.Normalize({"state": normalize.NormStats(mean=np.array([0.0, 2.0]), std=np.array([1e-9, 1.0]))})
    assert len([w for w in caught if "'state' dim 1" in str(w.message)]) == 1
    assert len([w for w in caught if "'state' dim 0" in str(w.message)]) == 1  # another message still shows
    # Whatever the model outputs on a constant dim, the robot gets the constant.
    out = unnormalize({"state": np.array([0.5, 123.0])})["state"]
    np.testing.assert_allclose(out, [0.5, 2.0], rtol=1e-5)


def test_constant_dims_warn_in_one_line_with_their_ranges():
    """Padded state has many constant dims: one warning names them all, as ranges."""
    std = np.ones(32)
    std[[3, 11, 12, 13, 31]] = 0.0
    _t._WARNED.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _t.Normalize({"state": normalize.NormStats(mean=np.zeros(32), std=std)})
    assert [str(w.message).split(":")[0] for w in caught] == ["Normalization of 'state' dims 3, 11-13, 31"]


def test_zscore_and_quantile_formulas():
    stats = {
        "a": normalize.NormStats(mean=np.array([1.0]), std=np.array([2.0]), q01=np.array([0.0]), q99=np.array([4.0]))
    }
    z = _t.Normalize(stats)({"a": np.array([5.0])})["a"]
    q = _t.Normalize(stats, use_quantiles=True)({"a": np.array([3.0])})["a"]
    np.testing.assert_allclose(z, [4.0 / (2.0 + 1e-6)], rtol=1e-6)
    np.testing.assert_allclose(q, [3.0 / (4.0 + 1e-6) * 2 - 1], rtol=1e-6)


def test_normalize_only_covers_stats_dims():
    stats = {"actions": normalize.NormStats(mean=np.zeros(2), std=np.full(2, 2.0))}
    out = _t.Unnormalize(stats)({"actions": np.ones((3, 4), np.float32)})["actions"]
    np.testing.assert_allclose(out[:, :2], 2.0, rtol=1e-5)
    np.testing.assert_array_equal(out[:, 2:], 1.0)


def test_quantile_requires_quantiles():
    with pytest.raises(ValueError, match="q01"):
        _t.Normalize({"a": normalize.NormStats(mean=np.zeros(1), std=np.ones(1))}, use_quantiles=True)


def test_delta_absolute_roundtrip():
    rng = np.random.default_rng(0)
    data = {"state": rng.normal(size=5), "actions": rng.normal(size=(3, 5))}
    mask = _t.make_bool_mask(2, -1, 2)
    assert mask == (True, True, False, True, True)
    delta = _t.DeltaActions(mask)({k: v.copy() for k, v in data.items()})
    np.testing.assert_allclose(delta["actions"][:, 2], data["actions"][:, 2])
    np.testing.assert_allclose(delta["actions"][:, 0], data["actions"][:, 0] - data["state"][0], rtol=1e-6)
    back = _t.AbsoluteActions(mask)(delta)
    np.testing.assert_allclose(back["actions"], data["actions"], rtol=1e-6, atol=1e-6)


def test_repack_group_composite_and_prompts():
    repack = _t.Repack({"state": "observation.state", "images": {"head": "obs/head"}})
    out = repack({"observation.state": 1, "obs": {"head": 2}, "other": 3})
    assert out == {"state": 1, "images": {"head": 2}}
    with pytest.raises(KeyError, match=r"observation\.state"):
        repack({"obs": {"head": 2}})

    group = _t.Group(inputs=[_t.InjectDefaultPrompt("a")]).push(inputs=[_t.PromptFromLeRobotTask({0: "b"})])
    assert len(group.inputs) == 2
    assert _t.compose(group.inputs)({"task_index": np.int64(0)})["prompt"] == "b"
    assert _t.InjectDefaultPrompt("x")({})["prompt"] == "x"
    assert _t.InjectDefaultPrompt("x")({"prompt": "y"})["prompt"] == "y"
    with pytest.raises(KeyError, match="task_index 5"):
        _t.PromptFromLeRobotTask({0: "b"})({"task_index": 5})


class _FakeTokenizer:
    def tokenize(self, prompt, state=None):
        tokens = np.zeros(8, np.int32)
        tokens[: len(prompt)] = [ord(c) for c in prompt]
        extra = 0 if state is None else 1
        return tokens + extra, tokens > 0


def test_tokenize_and_pad():
    data = {"prompt": "hi", "state": np.ones(3, np.float32), "actions": np.ones((2, 3), np.float32)}
    data = _t.TokenizePrompt(_FakeTokenizer())(data)
    assert "prompt" not in data
    assert data["tokenized_prompt"][:2].tolist() == [104, 105]
    assert data["tokenized_prompt_mask"].tolist()[:3] == [True, True, False]
    data = _t.PadStatesAndActions(5)(data)
    assert data["state"].shape == (5,) and data["actions"].shape == (2, 5)
    np.testing.assert_array_equal(data["actions"][:, 3:], 0)
    with pytest.raises(ValueError, match="action_dim"):
        _t.PadStatesAndActions(2)({"state": np.ones(3)})


def test_resize_images_keeps_aspect_and_dtype():
    img = np.zeros((40, 80, 3), np.uint8)
    img[:, :40] = 200
    out = _t.ResizeImages(64, 64)({"image": {"cam": img}})["image"]["cam"]
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    # 40×80 → 32×64, padded by 16 rows top and bottom.
    assert out[:16].max() == 0 and out[48:].max() == 0
    assert out[30, 10, 0] == 200 and out[30, 50, 0] == 0
    same = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    np.testing.assert_array_equal(_t.resize_with_pad(same, 4, 4), same)
