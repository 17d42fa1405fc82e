import numpy as np
import pytest

from openpi.policies import b1k_policy
from openpi.training import config as _config


def _proprio(n=5, seed=0):
    rng = np.random.default_rng(seed)
    proprio = rng.normal(size=(n, 256)).astype(np.float32)
    proprio[:, 193:195] = rng.uniform(0, 0.05, (n, 2))
    proprio[:, 232:234] = rng.uniform(0, 0.05, (n, 2))
    return proprio


def test_state_in_action_order():
    p = _proprio()
    s = b1k_policy.proprio_to_state(p)
    assert s.shape == (5, 23)
    np.testing.assert_array_equal(s[:, 0:3], p[:, 253:256])
    np.testing.assert_array_equal(s[:, 3:7], p[:, 236:240])
    np.testing.assert_array_equal(s[:, 7:14], p[:, 158:165])
    np.testing.assert_array_equal(s[:, 15:22], p[:, 197:204])
    np.testing.assert_allclose(s[:, 14], p[:, 193:195].sum(1) / 0.1 * 2 - 1, rtol=1e-6)
    np.testing.assert_allclose(s[:, 22], p[:, 232:234].sum(1) / 0.1 * 2 - 1, rtol=1e-6)
    # Fully open → +1, closed → -1, like the gripper actions.
    p[0, 193:195] = 0.05
    p[0, 232:234] = 0.0
    s0 = b1k_policy.proprio_to_state(p[0])
    assert s0.shape == (23,) and s0[14] == pytest.approx(1.0) and s0[22] == pytest.approx(-1.0)


def test_state_baseline_2025_order():
    p = _proprio()
    s = b1k_policy.proprio_to_state(p, "baseline_2025")
    np.testing.assert_array_equal(s[:, 14:21], p[:, 197:204])  # right arm at 14:21 in the baseline state
    np.testing.assert_allclose(s[:, 21], p[:, 193:195].sum(1), rtol=1e-6)  # raw width in metres
    np.testing.assert_allclose(s[:, 22], p[:, 232:234].sum(1), rtol=1e-6)
    with pytest.raises(ValueError, match="256"):
        b1k_policy.proprio_to_state(np.zeros(23))


def test_inputs_and_outputs(tmp_path):
    raw = {
        "observation.state": _proprio(1)[0],
        "action": np.ones((4, 23), np.float32),
        "task": "Turn on the radio.",
        "observation.images.rgb.head": np.full((8, 8, 3), 7, np.uint8),
        "observation.images.rgb.left_wrist": np.full((3, 8, 8), 0.5, np.float32),  # float CHW is accepted
        "observation.images.rgb.right_wrist": np.zeros((8, 8, 3), np.uint8),
    }
    config = _config.get_config("pi05_b1k_demo")  # its repack: B1K's keys → B1KInputs' input
    (repack,) = config.data.create(tmp_path, config.model).repack_transforms.inputs
    repacked = repack(raw)
    out = b1k_policy.B1KInputs()(repacked)
    assert out["state"].shape == (23,) and out["actions"].shape == (4, 23) and out["prompt"] == raw["task"]
    assert set(out["image"]) == {"base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb"}
    assert out["image"]["left_wrist_0_rgb"].shape == (8, 8, 3)
    assert out["image"]["left_wrist_0_rgb"].dtype == np.uint8 and out["image"]["left_wrist_0_rgb"][0, 0, 0] == 128
    assert all(bool(m) for m in out["image_mask"].values())
    # A missing wrist camera is black with its mask off.
    del repacked["images"]["right_wrist_0_rgb"]
    out = b1k_policy.B1KInputs()(repacked)
    assert not out["image_mask"]["right_wrist_0_rgb"] and out["image"]["right_wrist_0_rgb"].max() == 0
    padded = {"actions": np.arange(2 * 32, dtype=np.float32).reshape(2, 32)}
    assert b1k_policy.B1KOutputs()(padded)["actions"].shape == (2, 23)
